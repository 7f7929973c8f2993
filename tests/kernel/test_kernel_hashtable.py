"""The kernel's hashing and hash table: first-row-wins builds, exact key comparison under forced
collisions, nulls matching nothing, and partitioned parallel builds equal to serial ones."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matchcore._native.kernel import ArrowColumn, hash_bytes_test, hash_table_test, key_hashes_test

KEYS = ["A", "B", "A", None, "ORDER-000000000000001", "ORDER-000000000000002", "B", "", ""]
FIRST = [0, 1, 0, -1, 4, 5, 1, 7, 7]


def test_hash_depends_on_every_byte_and_the_seed():
    base = b"CB20250103000016466"
    hashes = {hash_bytes_test(base[:i] + b"X" + base[i + 1 :]) for i in range(len(base))}
    assert len(hashes) == len(base)
    assert hash_bytes_test(base, 1) != hash_bytes_test(base, 2)
    assert hash_bytes_test(b"") != hash_bytes_test(b"\0")


def test_pair_keys_are_not_concatenations():
    left = ArrowColumn(pl.Series(["AB", "A"]))
    right = ArrowColumn(pl.Series(["C", "BC"]))
    first, second = key_hashes_test(left, right)
    assert first != second


def test_null_differs_from_empty_string():
    nulls, empties = key_hashes_test(ArrowColumn(pl.Series([None, ""], dtype=pl.String)))
    assert nulls != empties


@pytest.mark.parametrize("copy_keys", [False, True])
@pytest.mark.parametrize("hash_mask", [~0 & (2**64 - 1), 0, 0xFFFFFFFF00000000, 0x3])
@pytest.mark.parametrize(("part_bits", "threads"), [(0, 1), (1, 2), (2, 2)])
def test_build_keeps_first_row_and_probes_exactly(hash_mask, part_bits, threads, copy_keys):
    column = ArrowColumn(pl.Series(KEYS, dtype=pl.String))
    probes = ["A", "ORDER-000000000000002", "C", None, "", "B"]
    probe = ArrowColumn(pl.Series(probes, dtype=pl.String))
    first, found = hash_table_test(
        column,
        probe,
        hash_mask=hash_mask,
        part_bits=part_bits,
        threads=threads,
        copy_keys=copy_keys,
    )
    assert first.tolist() == FIRST
    assert found.tolist() == [0, 5, -1, -1, 7, 1]


@pytest.mark.parametrize("copy_keys", [False, True])
def test_many_keys_with_colliding_tags(copy_keys):
    keys = [f"K{i:05d}" for i in range(3000)] * 2
    column = ArrowColumn(pl.Series(keys))
    first, found = hash_table_test(
        column, column, hash_mask=0xFF, part_bits=1, threads=2, copy_keys=copy_keys
    )
    expected = np.array([i % 3000 for i in range(6000)], dtype=np.int32)
    assert np.array_equal(first, expected)
    assert np.array_equal(found, expected)


def test_key_copies_and_keys_too_long_to_copy_compare_exactly():
    # A copy holds 30 key bytes: longer keys compare from the column; every tag collides.
    keys = ["X" * 30, "X" * 31, "X" * 29 + "Y", "X" * 31, "X" * 30, "X" * 30 + "Y", None]
    probes = ["X" * 30, "X" * 31, "X" * 30 + "Y", "X" * 29, "X" * 32, None]
    first, found = hash_table_test(
        ArrowColumn(pl.Series(keys, dtype=pl.String)),
        ArrowColumn(pl.Series(probes, dtype=pl.String)),
        hash_mask=0,
        copy_keys=True,
    )
    assert first.tolist() == [0, 1, 2, 1, 0, 5, -1]
    assert found.tolist() == [0, 1, 5, -1, -1, -1]


KEY_TEXT = st.one_of(st.none(), st.sampled_from(["", "A", "B", "ORDER-000000000000001"]))


@settings(max_examples=50, deadline=None)
@given(
    keys=st.lists(KEY_TEXT, max_size=40),
    probes=st.lists(KEY_TEXT, max_size=40),
    filler=st.integers(0, 5000),
)
def test_small_and_pipelined_probes_find_the_first_row(keys, probes, filler):
    # `filler` distinct keys make some tables too large for the unpipelined probe of a
    # micro-batch's tables; both probes must find what a dict of first rows finds.
    keys = keys + [f"F{i}" for i in range(filler)]
    first_of: dict[str, int] = {}
    for row, key in enumerate(keys):
        if key is not None:
            first_of.setdefault(key, row)
    build = ArrowColumn(pl.Series(keys, dtype=pl.String))
    probe = ArrowColumn(pl.Series(probes, dtype=pl.String))
    expected = [-1 if key is None else first_of.get(key, -1) for key in probes]
    for pipelined in (False, True):
        first, found = hash_table_test(build, probe, pipelined=pipelined)
        assert found.tolist() == expected
        assert first.tolist() == [-1 if key is None else first_of[key] for key in keys]
