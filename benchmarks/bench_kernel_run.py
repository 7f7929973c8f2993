"""pytest-benchmark suite for a whole kernel run (every rule, annual walk, output frames) on
200k generated orders, next to the reference engine on the same canonical tables.

    .venv/bin/python -m pytest benchmarks/bench_kernel_run.py
"""

from __future__ import annotations

import pytest

from matchcore.engine.kernel import KernelEngine
from matchcore.engine.reference import ReferenceEngine
from matchcore.generate import generate
from matchcore.normalise import load_tables
from matchcore.rules import RuleSettings

ORDERS = 200_000


@pytest.fixture(scope="module")
def tables():
    return load_tables(generate(ORDERS, seed=1).tables).tables


@pytest.mark.parametrize("threads", [1, 2])
def test_kernel_run(benchmark, tables, threads):
    out = benchmark(KernelEngine(threads=threads).run, tables, RuleSettings())
    assert out.orders.height == tables.orders.height


def test_reference_run(benchmark, tables):
    out = benchmark.pedantic(ReferenceEngine().run, (tables, RuleSettings()), rounds=2)
    assert out.orders.height == tables.orders.height
