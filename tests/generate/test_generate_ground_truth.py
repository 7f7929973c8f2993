"""The ground truth agrees with the reference engine, order by order and orphan by orphan.

The truth is computed by the generator from what it injected; the engine never sees it. Any
difference is a bug in one of the two, to be settled against SPEC.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import matchcore.generate.core as generate_core
from matchcore.api import match, match_directory
from matchcore.generate import GeneratedData, generate
from matchcore.money import POLARS_MONEY


def assert_engine_agrees(
    data: GeneratedData, engine: str = "reference", **match_options: object
) -> None:
    result = match(**data.tables, engine=engine, **match_options)  # type: ignore[arg-type]
    verdicts, truth = result.verdicts, data.truth
    assert verdicts.height == truth.height
    differ = np.flatnonzero(verdicts["reason_mask"].to_numpy() != truth["reason_mask"].to_numpy())
    assert differ.size == 0, (
        f"{differ.size} orders differ, first at row {differ[0]}: truth "
        f"{truth['reasons'][int(differ[0])].to_list()} engine "
        f"{verdicts['reasons'][int(differ[0])].to_list()}"
    )
    assert verdicts["reasons"].to_list() == truth["reasons"].to_list()
    assert verdicts["verdict"].equals(truth["verdict"])
    for column in ("computed_tax", "limit_value"):
        assert verdicts[column].cast(POLARS_MONEY).equals(truth[column]), column
    engine_orphans = result.orphans.select("document", "row").sort("document", "row")
    assert engine_orphans.equals(
        data.truth_orphans.select("document", "row").sort("document", "row")
    )


def test_ground_truth_20k(data_20k: GeneratedData) -> None:
    assert_engine_agrees(data_20k)


def test_ground_truth_20k_compiled_kernel(data_20k: GeneratedData) -> None:
    assert_engine_agrees(data_20k, engine="kernel")


def test_ground_truth_100k() -> None:
    assert_engine_agrees(generate(100_000, seed=12))


def test_ground_truth_without_optional_tables() -> None:
    assert_engine_agrees(
        generate(5_000, seed=13, inventories=False, hs_lists=False, anomaly_rate=0.3)
    )


def test_ground_truth_at_a_high_anomaly_rate() -> None:
    assert_engine_agrees(
        generate(
            8_000, seed=14, anomaly_rate=0.6, variant_rate=0.5, via_inventory_rate=0.3, year=2024
        )
    )


def test_ground_truth_across_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generate_core, "BLOCK_ORDERS", 2_500)
    data = generate(9_000, seed=15, anomaly_rate=0.2)
    keys = data.tables["orders"]["order_no"].str.normalize("NFKC").str.strip_chars().n_unique()
    copies = data.truth["reasons"].list.contains("ORDER_DUPLICATE").sum()
    assert keys + copies // 2 == 9_000  # order numbers are unique across blocks
    assert_engine_agrees(data)


@pytest.mark.parametrize("orders", [1, 3, 40])
def test_ground_truth_of_tiny_sets_full_of_anomalies(orders: int) -> None:
    assert_engine_agrees(generate(orders, seed=orders, anomaly_rate=1.0))


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_ground_truth_through_files(tmp_path: Path, fmt: str) -> None:
    data = generate(3_000, seed=16, anomaly_rate=0.2, out=tmp_path, format=fmt)  # type: ignore
    result = match_directory(tmp_path, engine="reference")
    truth = pl.read_parquet(tmp_path / "truth.parquet")
    assert truth.equals(data.truth)
    assert result.verdicts["reasons"].to_list() == truth["reasons"].to_list()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    orders=st.integers(1, 400),
    seed=st.integers(0, 2**32 - 1),
    anomaly_rate=st.floats(0.0, 1.0),
    variant_rate=st.floats(0.0, 1.0),
    inventories=st.booleans(),
    hs_lists=st.booleans(),
)
def test_ground_truth_for_any_knobs(
    orders: int,
    seed: int,
    anomaly_rate: float,
    variant_rate: float,
    inventories: bool,
    hs_lists: bool,
) -> None:
    data = generate(
        orders,
        seed=seed,
        anomaly_rate=anomaly_rate,
        variant_rate=variant_rate,
        inventories=inventories,
        hs_lists=hs_lists,
        orders_per_buyer=1.5,
    )
    assert data.truth.height == orders
    assert_engine_agrees(data)
