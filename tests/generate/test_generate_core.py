"""generate(): determinism, SPEC §2 shape, realistic content, consistent clean orders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from matchcore.exceptions import InputError
from matchcore.generate import GeneratedData, generate
from matchcore.rules import Rule
from matchcore.schema import TABLES

from .test_generate_people import valid_by_hand


def clean_rows(data: GeneratedData) -> pl.Series:
    return data.truth["reason_mask"] == 0


def test_deterministic_for_a_seed() -> None:
    first, second = generate(800, seed=3), generate(800, seed=3)
    for name, frame in first.tables.items():
        assert frame.equals(second.tables[name]), name
    assert first.truth.equals(second.truth)
    assert not generate(800, seed=4).tables["orders"].equals(first.tables["orders"])


def test_columns_follow_the_spec(data_small: GeneratedData) -> None:
    assert set(data_small.tables) == set(TABLES)
    for name, frame in data_small.tables.items():
        table = TABLES[name]
        assert set(frame.columns) <= set(table.column_names), name
        assert set(table.required_columns) <= set(frame.columns), name


def test_money_is_decimal_and_times_have_a_zone(data_small: GeneratedData) -> None:
    orders = data_small.tables["orders"]
    for column in ("goods_value", "freight", "discount", "tax_total", "actual_paid"):
        assert orders.schema[column] == pl.Decimal(18, 4)
    assert data_small.tables["order_items"].schema["qty"] == pl.Decimal(18, 4)
    assert data_small.tables["quota_ledger"].schema["used"] == pl.Decimal(18, 4)
    assert orders.schema["app_time"].time_zone is not None  # type: ignore[union-attr]


def test_truth_has_one_row_per_order(data_small: GeneratedData) -> None:
    truth, orders = data_small.truth, data_small.tables["orders"]
    assert truth.height == orders.height == 600
    assert truth["order_no"].equals(orders["order_no"].str.normalize("NFKC").str.strip_chars())
    masks = truth["reason_mask"].to_list()
    named = [sum(1 << Rule[code].value for code in codes) for codes in truth["reasons"]]
    assert masks == named


def test_enterprise_codes_and_roles(data_small: GeneratedData) -> None:
    enterprises = data_small.tables["enterprises"].with_columns(
        pl.col("roles", "credit_class", "status").str.to_lowercase()
    )
    assert enterprises["code"].str.contains(r"^\d{4}[0-9A-Z]{6}$").all()
    assert enterprises["credit_code"].str.len_chars().eq(18).all()
    roles = set(",".join(enterprises["roles"].to_list()).split(","))
    assert roles == {"ebp", "ebc", "pay", "logistics", "agent"}
    assert {"advanced", "general", "dishonest"} == set(enterprises["credit_class"])
    assert {"active", "abnormal", "revoked"} == set(enterprises["status"])


def test_products_hs_codes_and_rates(data_small: GeneratedData) -> None:
    products = data_small.tables["products"]
    assert products["hs_code"].str.contains(r"^\d{10}$").all()
    assert set(products["vat_rate"]) == {0.09, 0.13}
    rates = products["consumption_tax_rate"]
    assert (rates == 0).mean() > 0.5 and {0.15, 0.3} <= set(rates)


def test_buyer_ids_of_clean_orders_are_valid(data_20k: GeneratedData) -> None:
    orders = data_20k.tables["orders"].filter(clean_rows(data_20k))
    residents = orders.filter(pl.col("buyer_id_type") == "1")["buyer_id_number"]
    assert residents.len() > 19_000 * 0.9
    assert all(valid_by_hand(t) for t in residents.gather(np.arange(0, residents.len(), 37)))


def test_order_totals_and_line_totals_add_up(data_20k: GeneratedData) -> None:
    orders = _units(data_20k.tables["orders"]).filter(clean_rows(data_20k))
    assert (
        orders["goods_value"] + orders["freight"] - orders["discount"] + orders["tax_total"]
        == orders["actual_paid"]
    ).all()
    assert (orders["goods_value"] + orders["freight"] - orders["discount"] <= 50_000_000).all()
    items = _units(data_20k.tables["order_items"])
    sums = items.group_by("order_no").agg(pl.col("total_price").sum())
    joined = orders.join(sums, on="order_no", how="left")
    assert (joined["goods_value"] == joined["total_price"]).all()


def _units(frame: pl.DataFrame) -> pl.DataFrame:
    """Decimal(18, 4) money -> int64 ten-thousandths (exact)."""
    return frame.with_columns(
        (pl.col(c).cast(pl.String).str.replace(r"\.", "").cast(pl.Int64)).alias(c)
        for c, t in frame.schema.items()
        if t == pl.Decimal(18, 4)
    )


def python_tax(lines: list[tuple[int, float, float]], freight_less_discount: int) -> int:
    """SPEC §3.2 in plain Python floats, one order (independent of the generator)."""
    goods = sum(p for p, _, _ in lines)
    total = 0
    for price, vat, consumption in lines:
        share = 0.0 if goods == 0 else float(freight_less_discount) * float(price) / float(goods)
        dutiable = float(price) + share
        ct = dutiable * consumption / (1.0 - consumption)
        v = (dutiable + ct) * vat
        total += round(0.7 * (ct + v))  # Python's round is half-to-even
    return (total + 50) // 100 * 100


def test_tax_of_clean_orders_matches_spec(data_20k: GeneratedData) -> None:
    orders = _units(data_20k.tables["orders"]).with_columns(clean=clean_rows(data_20k))
    orders = orders.filter("clean").head(400)
    items = _units(data_20k.tables["order_items"]).join(
        data_20k.tables["products"].rename({"ebc_code": "ebc"}),
        on="item_no",
        how="left",
    )
    lines_of = items.group_by("order_no").agg("total_price", "vat_rate", "consumption_tax_rate")
    lines_of = {r[0]: list(zip(r[1], r[2], r[3], strict=True)) for r in lines_of.iter_rows()}
    checked = 0
    for order_no, freight, discount, tax in orders.select(
        "order_no", "freight", "discount", "tax_total"
    ).iter_rows():
        expected = python_tax(lines_of[order_no], freight - discount)
        assert abs(tax - expected) <= 1_000  # clean orders may sit within the 0.10 tolerance
        checked += tax == expected
    assert checked > 350  # most clean orders carry the exact tax


def test_every_rule_kind_is_in_the_truth(data_20k: GeneratedData) -> None:
    found = set(data_20k.truth["reasons"].explode().drop_nulls())
    assert found == {rule.name for rule in Rule}
    rate = (data_20k.truth["reason_mask"] != 0).mean()
    assert 0.04 < rate < 0.07


def test_documents_are_shuffled(data_20k: GeneratedData) -> None:
    positions = data_20k.tables["orders"].with_row_index("pos").select("order_no", "pos")
    paid = data_20k.tables["payments"].join(positions, on="order_no", maintain_order="left")["pos"]
    assert not paid.is_sorted()


def test_anomaly_shares_and_disabled_tables() -> None:
    data = generate(
        3000,
        seed=2,
        anomaly_rate=0.1,
        inventories=False,
        hs_lists=False,
        anomaly_shares={"TAX_MISMATCH": 5, Rule.PAYER_NAME_MISMATCH: 0},
    )
    reasons = data.truth["reasons"].explode().drop_nulls()
    assert "inventories" not in data.tables and "hs_lists" not in data.tables
    assert not reasons.is_in(
        [
            "INVENTORY_MISSING",
            "INVENTORY_MISMATCH",
            "PRODUCT_PROHIBITED",
            "PRODUCT_NOT_ON_POSITIVE_LIST",
            "PAYER_NAME_MISMATCH",
        ]
    ).any()
    counts = reasons.value_counts().to_dict(as_series=False)
    tax = dict(zip(counts["reasons"], counts["count"], strict=True))["TAX_MISMATCH"]
    assert tax > 5 * 8  # five times an equal share of the 300 anomalies over 24 kinds


@pytest.mark.parametrize("fmt", ["parquet", "csv", "ndjson"])
def test_write_every_format(tmp_path: Path, fmt: str, data_small: GeneratedData) -> None:
    data_small.write(tmp_path, fmt)  # type: ignore[arg-type]
    names = {p.name for p in tmp_path.iterdir()}
    assert {f"{t}.{fmt}" for t in data_small.tables} <= names
    assert {"truth.parquet", "truth_orphans.parquet", "generate.json"} <= names
    back = pl.read_parquet(tmp_path / "truth.parquet")
    assert back.equals(data_small.truth)
    if fmt == "parquet":
        orders = pl.read_parquet(tmp_path / "orders.parquet")
        assert orders.equals(data_small.tables["orders"])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"orders": 0},
        {"orders": 10, "anomaly_rate": 1.5},
        {"orders": 10, "format": "xml"},
        {"orders": 10, "anomaly_shares": {"NO_SUCH_RULE": 1}},
        {"orders": 10, "orders_per_buyer": 0},
        {"orders": 10, "year": 8},
        {"orders": 10, "year": 9995},
    ],
)
def test_bad_knobs_raise_input_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(InputError):
        generate(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("year", [9, 9994])
def test_years_at_both_ends_give_times_of_that_year(year: int) -> None:
    """The first and last order years: filings 8 years before and 5 after are still dates."""
    data = generate(40, seed=2, year=year)
    for name, column in (("orders", "app_time"), ("waybills", "app_time")):
        assert data.tables[name][column].dt.year().unique().to_list() == [year]


def test_sample_data_set_is_current() -> None:
    sample = Path(__file__).resolve().parents[2] / "datasets" / "sample"
    data = generate(10_000, seed=1)
    assert pl.read_parquet(sample / "truth.parquet").equals(data.truth)
    assert pl.read_parquet(sample / "orders.parquet").equals(data.tables["orders"])
