"""pytest-benchmark suites for the kernel's parts: hashing, hash-table build and probe, and the
Arrow import, on synthetic keys shaped like order numbers (19 bytes, outside the 12-byte view).

    .venv/bin/python -m pytest benchmarks/bench_kernel_parts.py
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from matchcore._native.kernel import ArrowColumn, hash_table_test, key_hashes_test

ROWS = 1_000_000


@pytest.fixture(scope="module")
def order_numbers() -> pl.Series:
    """ROWS distinct order numbers in random order, as Polars strings (string_view)."""
    rng = np.random.default_rng(1)
    numbers = rng.permutation(ROWS)
    return (
        pl.Series("order_no", numbers)
        .cast(pl.String)
        .str.pad_start(13, "0")
        .str.replace(r"^", "CB2025010")
    )


def test_hash_keys(benchmark, order_numbers):
    column = ArrowColumn(order_numbers)
    hashes = benchmark(key_hashes_test, column)
    assert len(np.unique(hashes)) == ROWS


@pytest.mark.parametrize("threads", [1, 2])
def test_build_and_probe(benchmark, order_numbers, threads):
    column = ArrowColumn(order_numbers)
    first, found = benchmark(
        hash_table_test, column, column, part_bits=threads - 1, threads=threads
    )
    assert np.array_equal(first, np.arange(ROWS, dtype=np.int32))
    assert np.array_equal(found, first)


def test_arrow_import(benchmark, order_numbers):
    column = benchmark(ArrowColumn, order_numbers)
    assert len(column) == ROWS
