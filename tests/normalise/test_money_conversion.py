"""Money and qty conversion to int64 ten-thousandths (SPEC §1): exact text and decimals."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matchcore.normalise import normalise_table


def _goods_value(frame: pl.DataFrame) -> tuple[list[int | None], pl.DataFrame]:
    canonical, rejects = normalise_table(frame, "orders", "orders.csv")
    return canonical["goods_value"].to_list(), rejects


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("123.45", 1_234_500),
        (" +7 ", 70_000),
        ("1.23450", 12_345),
        ("1.2345000000000000000000", 12_345),
        (".5", 5_000),
        ("5.", 50_000),
        ("0", 0),
        ("-0.00", 0),
        ("000000000000000000000000012.5", 125_000),
        ("99999999999999.9999", 999_999_999_999_999_999),
        ("922337203685477.5807", 9_223_372_036_854_775_807),
        ("\u00a012.3\t", 123_000),
    ],
)
def test_decimal_text_converts_exactly(column_frame, text: str, units: int) -> None:
    values, rejects = _goods_value(column_frame("orders", "goods_value", [text]))
    assert rejects.is_empty()
    assert values == [units]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0.00005", "more than 4 decimal places"),
        ("1.23456", "more than 4 decimal places"),
        ("-1", "negative amount"),
        ("-0.0001", "negative amount"),
        ("1e3", "not a decimal number"),
        ("1,000", "not a decimal number"),
        ("12.3.4", "not a decimal number"),
        ("+-1", "not a decimal number"),
        (".", "not a decimal number"),
        ("１２", "not a decimal number"),
        ("abc", "not a decimal number"),
        ("922337203685477.5808", "too large"),
        ("922337203685478", "too large"),
        ("-922337203685478", "too large"),
        ("123456789012345678901234", "too large"),
    ],
)
def test_bad_decimal_text_is_rejected(column_frame, text: str, message: str) -> None:
    frame = column_frame("orders", "goods_value", ["1", text])
    values, rejects = _goods_value(frame)
    assert values == [10_000]
    assert rejects.select("table", "file", "row", "column", "value").row(0) == (
        "orders",
        "orders.csv",
        2,
        "goods_value",
        text,
    )
    assert message in rejects["message"][0]


def test_arrow_decimals_convert_exactly(column_frame) -> None:
    values = [Decimal("123.4500"), Decimal("99999999999999.9999"), Decimal("0.0001")]
    arrow = pa.array(values, pa.decimal128(18, 4))
    frame = column_frame("orders", "goods_value", [0, 0, 0]).with_columns(
        pl.Series("goods_value", arrow)
    )
    result, rejects = _goods_value(frame)
    assert rejects.is_empty()
    assert result == [1_234_500, 999_999_999_999_999_999, 1]


def test_fine_decimals_keep_only_significant_places(column_frame) -> None:
    arrow = pa.array(
        [Decimal("1.234500"), Decimal("1.234567"), Decimal("-2")], pa.decimal128(20, 6)
    )
    frame = column_frame("orders", "goods_value", [0, 0, 0]).with_columns(
        pl.Series("goods_value", arrow)
    )
    result, rejects = _goods_value(frame)
    assert result == [12_345]
    assert rejects["row"].to_list() == [2, 3]
    assert rejects["message"].to_list() == ["more than 4 decimal places", "negative amount"]


def test_decimal_overflow_is_rejected(column_frame) -> None:
    # 10^37 x 10^4 does not fit a 38-digit decimal either: rejected, not an error.
    huge = [Decimal("10") ** 20, Decimal("10") ** 37, -(Decimal("10") ** 37)]
    arrow = pa.array([Decimal("1"), *huge], pa.decimal128(38, 0))
    frame = column_frame("orders", "goods_value", [0] * 4).with_columns(
        pl.Series("goods_value", arrow)
    )
    result, rejects = _goods_value(frame)
    assert result == [10_000]
    assert rejects["row"].to_list() == [2, 3, 4]
    assert set(rejects["message"].to_list()) == {"too large (overflows int64 ten-thousandths)"}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    precision=st.integers(1, 38),
    scale_seed=st.integers(0, 4),
    digits=st.lists(st.integers(0, 10**38 - 1), min_size=1, max_size=6),
)
def test_decimals_of_any_precision_convert_exactly(
    column_frame, precision: int, scale_seed: int, digits: list[int]
) -> None:
    """Small decimals are scaled from their stored integer, wide ones by decimal arithmetic:
    both give the exact ten-thousandths, and values beyond int64 are rejected."""
    scale = min(scale_seed, precision)
    stored = [d % 10**precision for d in digits]
    values = [Decimal(f"{n}e-{scale}") for n in stored]  # exact: no context rounding
    arrow = pa.array(values, pa.decimal128(precision, scale))
    frame = column_frame("orders", "goods_value", [0] * len(values)).with_columns(
        pl.Series("goods_value", arrow)
    )
    result, rejects = _goods_value(frame)
    units = [n * 10 ** (4 - scale) for n in stored]
    fits = [u for u in units if u < 2**63]
    assert result == fits
    assert rejects["message"].to_list() == [
        "too large (overflows int64 ten-thousandths)" for u in units if u >= 2**63
    ]


def test_integers_are_whole_units(column_frame) -> None:
    frame = column_frame("orders", "goods_value", [5, -5, 922_337_203_685_478, 0], pl.Int64)
    result, rejects = _goods_value(frame)
    assert result == [50_000, 0]
    assert rejects["row"].to_list() == [2, 3]
    assert rejects["message"].to_list() == [
        "negative amount",
        "too large (overflows int64 ten-thousandths)",
    ]


@pytest.mark.parametrize(
    ("value", "units"),
    [
        (0.1, 1_000),
        (2.5, 25_000),
        (0.00125, 12),  # 12.5 -> even
        (0.00135, 14),  # 13.5 -> even
        (1.23455, 12_346),  # 12345.5 -> even
        (5e-05, 0),  # 0.5 -> even
        (0.00015, 1),  # x * 10000 is 1.4999999999999998 in float64
    ],
)
def test_floats_round_half_to_even_after_scaling(column_frame, value: float, units: int) -> None:
    result, rejects = _goods_value(column_frame("orders", "goods_value", [value], pl.Float64))
    assert rejects.is_empty()
    assert result == [units]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.5, 1e300])
def test_bad_floats_are_rejected(column_frame, value: float) -> None:
    result, rejects = _goods_value(column_frame("orders", "goods_value", [1.0, value], pl.Float64))
    assert result == [10_000]
    assert rejects["row"].to_list() == [2]


def test_qty_uses_the_same_units(make_raw) -> None:
    frame = make_raw("order_items", {"qty": "2.5", "price": "0.0001", "total_price": "3"})
    canonical, rejects = normalise_table(frame, "order_items", "items.csv")
    assert rejects.is_empty()
    assert canonical.select("qty", "price", "total_price").row(0) == (25_000, 1, 30_000)


@settings(max_examples=60, deadline=None)
@given(
    units=st.lists(st.integers(min_value=0, max_value=2**63 - 1), min_size=1, max_size=20),
    zeros=st.integers(min_value=0, max_value=3),
    plus=st.booleans(),
)
def test_any_in_range_decimal_text_round_trips(units: list[int], zeros: int, plus: bool) -> None:
    # Text made by Python's Decimal from known units must convert back to exactly those units.
    texts = [
        ("+" if plus else "") + f"{Decimal(u).scaleb(-4):f}" + ("0" * zeros if u % 10 else "")
        for u in units
    ]
    frame = pl.DataFrame({"buyer_id_number": ["1"] * len(texts), "year": ["2024"] * len(texts)})
    frame = frame.with_columns(
        pl.Series("buyer_id_number", [str(i) for i in range(len(texts))]), used=pl.Series(texts)
    )
    canonical, rejects = normalise_table(frame, "quota_ledger", "ledger.csv")
    assert rejects.is_empty()
    assert canonical["used"].to_list() == units


def test_blank_amounts_are_null_in_plain_and_messy_columns(column_frame) -> None:
    for values in (["", "1.5", None], ["", " 1.5 ", None]):
        frame = column_frame("orders", "discount", values)
        canonical, rejects = normalise_table(frame, "orders", "orders.csv")
        assert rejects.is_empty()
        assert canonical["discount"].to_list() == [0, 15_000, 0]
        frame = column_frame("orders", "goods_value", values)
        canonical, rejects = normalise_table(frame, "orders", "orders.csv")
        assert canonical["goods_value"].to_list() == [15_000]
        assert rejects.select("row", "message").rows() == [
            (1, "required value is missing"),
            (3, "required value is missing"),
        ]
