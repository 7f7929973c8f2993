"""The DuckDB SQL implementation of the benchmark gives the reference engine's per-order results
(reason_mask, computed_tax, limit_value) on generated data, with and without optional tables and
with non-default rule settings."""

from __future__ import annotations

import dataclasses

import polars as pl
import pytest

from benchmarks.duckdb_engine import DuckDBEngine
from matchcore.engine.base import CanonicalTables
from matchcore.engine.reference import ReferenceEngine
from matchcore.generate import generate
from matchcore.normalise import load_tables
from matchcore.rules import Rule, RuleSettings

COMPARED = ("reason_mask", "computed_tax", "limit_value")


@pytest.fixture(scope="module")
def tables() -> CanonicalTables:
    """~5k generated orders with a raised anomaly rate, so every rule fails somewhere."""
    return load_tables(generate(5_000, seed=11, anomaly_rate=0.3).tables).tables


@pytest.fixture(scope="module")
def bare_tables() -> CanonicalTables:
    """Generated orders without inventories, HS lists or a quota ledger."""
    raw = generate(2_000, seed=12, anomaly_rate=0.3, inventories=False, hs_lists=False).tables
    raw = {name: frame for name, frame in raw.items() if name != "quota_ledger"}
    return load_tables(raw).tables


def assert_same_results(tables: CanonicalTables, settings: RuleSettings) -> pl.DataFrame:
    """Run both engines and assert equal per-order columns; return the reference's."""
    expected = ReferenceEngine().run(tables, settings).orders.select(COMPARED)
    actual = DuckDBEngine(threads=2).run(tables, settings)
    assert actual.height == expected.height
    for column in COMPARED:
        same = expected[column].eq_missing(actual[column])
        assert same.all(), f"{column}: {(~same).sum()} order rows differ"
    return expected


def rules_failing(masks: pl.Series) -> set[Rule]:
    combined = 0
    for value in masks.unique().to_list():
        combined |= value
    return {rule for rule in Rule if combined & rule.bit}


@pytest.fixture(scope="module")
def default_results(tables: CanonicalTables) -> pl.DataFrame:
    return assert_same_results(tables, RuleSettings())


def test_duckdb_equals_reference_on_generated_data(default_results: pl.DataFrame) -> None:
    # The comparison is only meaningful if the data makes (nearly) every rule fail somewhere.
    failing = rules_failing(default_results["reason_mask"])
    assert {Rule.ANNUAL_LIMIT_EXCEEDED, Rule.TAX_MISMATCH, Rule.BUYER_ID_INVALID} <= failing
    assert len(failing) >= 25


def test_duckdb_equals_reference_with_rules_off_and_changed(tables: CanonicalTables) -> None:
    settings = RuleSettings.from_overrides(
        {"ORDER_TOTAL_MISMATCH": "off", "TAX_MISMATCH": "review", "PAYER_NAME_MISMATCH": "warn"},
        annual_limit="8000",
        tax_tolerance="0",
        arrival_window="6h",
    )
    expected = assert_same_results(tables, settings)
    assert Rule.ORDER_TOTAL_MISMATCH not in rules_failing(expected["reason_mask"])


def test_duckdb_equals_reference_without_optional_tables(bare_tables: CanonicalTables) -> None:
    assert bare_tables.inventories is None and bare_tables.hs_lists is None
    expected = assert_same_results(bare_tables, RuleSettings())
    failing = rules_failing(expected["reason_mask"])
    assert Rule.INVENTORY_MISSING not in failing
    assert Rule.PRODUCT_NOT_ON_POSITIVE_LIST not in failing


def test_duckdb_detects_a_changed_payment(
    tables: CanonicalTables, default_results: pl.DataFrame
) -> None:
    """Payment amounts changed after the fact flip PAY_AMOUNT_MISMATCH in both engines."""
    payments = tables.payments.with_columns(
        pl.when(pl.int_range(pl.len()) < 50)
        .then(pl.col("amount_paid") + 1_000_000)
        .otherwise(pl.col("amount_paid"))
        .alias("amount_paid")
    )
    changed = dataclasses.replace(tables, payments=payments)
    after = assert_same_results(changed, RuleSettings())["reason_mask"]
    bit = Rule.PAY_AMOUNT_MISMATCH.bit

    def amount_failures(masks: pl.Series) -> int:
        return int(((masks & bit) != 0).sum())

    assert amount_failures(after) > amount_failures(default_results["reason_mask"])
