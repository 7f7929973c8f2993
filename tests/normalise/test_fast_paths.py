"""The fast paths of normalisation give exactly what the general path gives.

Fast paths: text that needs no change is used as is, text that only needs trimming skips NFKC,
only the rows that need it go through NFKC, whole-column plain formats for amounts and times,
messages worked out only for the flagged rows, a hash check before looking for duplicate keys.
The general path is forced by claiming no whole-column fact and sending every row to NFKC.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matchcore import normalise
from matchcore.normalise import normalise_table

_CLEAN_CODES = ["O1", "O2", "EBP1", "A-7", "张三", "李 四"]
_MESSY_CODES = [" O1", "O2 ", "", "Ｏ３", "a\tb", "x  y", "张\u3000三", "  "]
_AMOUNTS = ["0", "12.5", "100.00", " 7 ", "1.23456", "-3", "abc", "", "99999999999999999999"]
_TIMES = [
    "2024-03-01 10:00:00",
    "2024-03-01T10:00:00+08:00",
    "20240301100000",
    "2024-02-30 10:00:00",
    "soon",
    "",
]


def _general_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """No whole-column fact holds, and every text row needs NFKC and white-space cleaning."""
    monkeypatch.setattr(normalise, "_profiles", lambda raw, table: defaultdict(normalise._Profile))
    monkeypatch.setattr(normalise, "_NEEDS_CLEANING", "")


def _both_paths(
    monkeypatch: pytest.MonkeyPatch, raw: pl.DataFrame, table: str
) -> tuple[tuple[pl.DataFrame, pl.DataFrame], tuple[pl.DataFrame, pl.DataFrame]]:
    fast = normalise_table(raw, table, f"{table}.parquet")
    with monkeypatch.context() as patched:
        _general_path(patched)
        general = normalise_table(raw, table, f"{table}.parquet")
    return fast, general


def _assert_same(
    fast: tuple[pl.DataFrame, pl.DataFrame], general: tuple[pl.DataFrame, pl.DataFrame]
) -> None:
    assert fast[0].schema == general[0].schema
    assert fast[0].equals(general[0])
    assert fast[1].equals(general[1])


_code = st.sampled_from(_CLEAN_CODES)
_any_code = st.one_of(_code, st.sampled_from(_MESSY_CODES), st.none())


@st.composite
def _typed_orders(draw: st.DrawFn) -> pl.DataFrame:
    """Orders as Parquet gives them: typed money and times, text clean or messy by column."""
    rows = draw(st.integers(1, 12))
    messy = draw(st.booleans())
    codes = st.lists(_any_code if messy else _code, min_size=rows, max_size=rows)
    money = st.lists(
        st.one_of(st.none(), st.decimals(0, 10**6, places=4).map(Decimal)),
        min_size=rows,
        max_size=rows,
    )
    times = st.lists(
        st.one_of(st.none(), st.datetimes(datetime(2000, 1, 1), datetime(2030, 1, 1))),
        min_size=rows,
        max_size=rows,
    )
    decimal = pl.Decimal(18, 4)
    return pl.DataFrame(
        {
            "order_no": draw(codes),
            "ebp_code": draw(st.lists(_code, min_size=rows, max_size=rows)),
            "ebc_code": draw(codes),
            "goods_value": pl.Series(draw(money), dtype=decimal),
            "freight": pl.Series(draw(money), dtype=decimal),
            "tax_total": pl.Series(draw(money), dtype=decimal),
            "actual_paid": pl.Series(draw(money), dtype=decimal),
            "buyer_id_number": draw(codes),
            "buyer_name": draw(codes),
            "consignee": draw(codes),
            "note": draw(codes),
            "app_time": pl.Series(draw(times), dtype=pl.Datetime("us", "Asia/Shanghai")),
        }
    )


@st.composite
def _text_items(draw: st.DrawFn) -> pl.DataFrame:
    """Order lines as text (CSV-like): amounts and gnum that may be malformed, repeated keys."""
    rows = draw(st.integers(1, 12))
    texts = st.lists(st.one_of(st.sampled_from(_AMOUNTS), st.none()), min_size=rows, max_size=rows)
    return pl.DataFrame(
        {
            "order_no": draw(st.lists(_any_code, min_size=rows, max_size=rows)),
            "ebp_code": draw(st.lists(_code, min_size=rows, max_size=rows)),
            "gnum": draw(
                st.lists(st.sampled_from(["1", "2", " 3 ", "x", ""]), min_size=rows, max_size=rows)
            ),
            "item_no": draw(st.lists(_any_code, min_size=rows, max_size=rows)),
            "qty": draw(texts),
            "price": draw(texts),
            "total_price": draw(texts),
        }
    )


@st.composite
def _text_payments(draw: st.DrawFn) -> pl.DataFrame:
    """Payments as text: times in several layouts (some invalid), amounts clean or not."""
    rows = draw(st.integers(1, 12))
    plain = draw(st.booleans())
    times = st.sampled_from(_TIMES[:1] if plain else _TIMES)
    amounts = st.sampled_from(["1", "2.50", "100.0001"] if plain else _AMOUNTS)
    return pl.DataFrame(
        {
            "pay_code": draw(st.lists(_code, min_size=rows, max_size=rows)),
            "pay_transaction_id": draw(st.lists(_any_code, min_size=rows, max_size=rows)),
            "order_no": draw(st.lists(_code, min_size=rows, max_size=rows)),
            "ebp_code": draw(st.lists(_code, min_size=rows, max_size=rows)),
            "payer_id_number": draw(
                st.lists(
                    st.sampled_from(["11010519491231002x", " 1 ", "ａ"]),
                    min_size=rows,
                    max_size=rows,
                )
            ),
            "payer_name": draw(st.lists(_any_code, min_size=rows, max_size=rows)),
            "amount_paid": draw(st.lists(amounts, min_size=rows, max_size=rows)),
            "pay_time": draw(st.lists(st.one_of(times, st.none()), min_size=rows, max_size=rows)),
        }
    )


_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_SETTINGS
@given(raw=_typed_orders())
def test_typed_orders_fast_and_general_paths_agree(monkeypatch, raw: pl.DataFrame) -> None:
    _assert_same(*_both_paths(monkeypatch, raw, "orders"))


@_SETTINGS
@given(raw=_text_items())
def test_text_items_fast_and_general_paths_agree(monkeypatch, raw: pl.DataFrame) -> None:
    _assert_same(*_both_paths(monkeypatch, raw, "order_items"))


@_SETTINGS
@given(raw=_text_payments())
def test_text_payments_fast_and_general_paths_agree(monkeypatch, raw: pl.DataFrame) -> None:
    _assert_same(*_both_paths(monkeypatch, raw, "payments"))


def test_whole_column_text_facts() -> None:
    raw = pl.DataFrame(
        {"order_no": ["O1", "O2"], "ebp_code": [" E1", "E2"], "note": ["张三", None]}
    )
    profiles = normalise._profiles(raw, normalise.TABLES["orders"])
    # Clean text is used as is; a padded value needs trimming only.
    assert profiles["order_no"].plain_text and profiles["order_no"].trimmed
    assert profiles["note"].plain_text and profiles["note"].trimmed
    assert profiles["ebp_code"].plain_text and not profiles["ebp_code"].trimmed


def test_few_messy_rows_are_cleaned_and_bad_rows_rejected_once_per_problem() -> None:
    rows = 1000
    order_no = [f"O{i}" for i in range(rows)]
    order_no[10], order_no[500] = "  Ｏ１０ ", ""  # one to clean, one that becomes missing
    goods = [Decimal("1.5")] * rows
    goods[500] = None
    raw = pl.DataFrame(
        {
            "order_no": order_no,
            "ebp_code": "EBP1",
            "ebc_code": "EBC1",
            "goods_value": pl.Series(goods, dtype=pl.Decimal(18, 4)),
            "freight": pl.Series([Decimal(0)] * rows, dtype=pl.Decimal(18, 4)),
            "tax_total": pl.Series([Decimal(0)] * rows, dtype=pl.Decimal(18, 4)),
            "actual_paid": pl.Series([Decimal(0)] * rows, dtype=pl.Decimal(18, 4)),
            "buyer_id_number": "11010519491231002x",
            "buyer_name": "张三",
            "consignee": "李四",
            "app_time": pl.Series([datetime(2024, 3, 1)] * rows, dtype=pl.Datetime("us")),
        }
    )
    canonical, rejects = normalise_table(raw, "orders", "orders.parquet")
    assert canonical.height == rows - 1
    assert canonical["order_no"][10] == "O10"
    assert canonical["buyer_id_number"][0] == "11010519491231002X"
    assert canonical["_row"].n_chunks() == 1
    assert rejects.select("row", "column", "message").rows() == [
        (501, "order_no", "required value is missing"),
        (501, "goods_value", "required value is missing"),
    ]
