"""Streaming converts one document at a time; it must agree with the batch normaliser exactly.

Random raw values (white space of every kind, full-width and compatibility characters, amounts
at the edges of the exact-decimal rules, times in every accepted form and some that are not)
go through `normalise_table` as one frame and through `RowMaker` row by row: the same rows are
rejected and the kept rows hold the same canonical values.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matchcore import schema
from matchcore.china_time import NEAR_FROM_US, NEAR_TO_US
from matchcore.normalise import normalise_table
from matchcore.stream.canonical import (
    Invalid,
    RowMaker,
    china_dates,
    clean_text,
    python_china_dates,
    units,
    utc_micros,
)

_SPACES = [" ", "\t", "\n", "\u3000", "\xa0", "\u2003", "\x85", "\x1c", "\x1f", "  "]
_PIECES = ["a", "B", "Ab 1", "李雷", "ＡＢＣ", "①", "ﬁ", "x\u0301", "-", "0"]

texts = st.one_of(
    st.none(),
    st.lists(st.sampled_from(_SPACES + _PIECES), max_size=5).map("".join),
    st.text(max_size=6),
)
amounts = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "0",
            "-0",
            "-0.00",
            "+5",
            "007.50",
            ".5",
            "1.23450",
            "1.23456",
            "1e3",
            " 12.5 ",
            "\u300012",
            "12\x1c",
            "-1",
            "99999999999999.9999",
            "",
            ".",
        ]
    ),
    st.decimals(min_value=0, max_value=10**14, places=4, allow_nan=False).map(str),
)
times = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "2024-03-01 10:00:00",
            "2024-03-01T10:00:00+08:00",
            "2024-03-01T10:00Z",
            "20240301103000",
            "20240301",
            "2024-03-01",
            "2024-02-30 10:00:00",
            "1988-04-17 02:30:00",
            "1988-09-11 00:30:00",
            "2024-03-01 24:00:00",
            "2024-03-01 10:00:00.1234567",
            "2024-03-01T10:00:00-0530",
            " 2024-03-01 10:00:00 ",
            "2024/03/01",
            "2024-03-01 10:00:00 +08",
            # Instants past the ends of Python's datetime (Polars has no such limit).
            "9999-12-31T23:00:00-08:00",
            "0001-01-01T00:00:00",
            "0001-01-01T00:00:00+09:00",
            "1900-12-31 23:58:00",
        ]
    ),
    st.datetimes().map(lambda d: d.isoformat(sep=" ")),
)


def _strategy(column: schema.Column) -> st.SearchStrategy[Any]:
    if column.kind in (schema.Kind.MONEY, schema.Kind.QTY):
        return amounts
    if column.kind is schema.Kind.TIME:
        return times
    if column.kind is schema.Kind.INT:
        return st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1))
    if column.kind is schema.Kind.ENUM:
        return st.one_of(texts, st.sampled_from([*column.values, " 9610 ", "１２１０"]))
    return texts


def _valid(column: schema.Column) -> Any:
    """A value every column of its kind accepts."""
    kind = column.kind
    if kind is schema.Kind.ENUM:
        return column.values[0]
    if kind is schema.Kind.INT:
        return 1
    if kind in (schema.Kind.MONEY, schema.Kind.QTY):
        return "1.5"
    return "2024-03-01 10:00:00" if kind is schema.Kind.TIME else "v"


@st.composite
def _rows(draw: Any, table: schema.Table) -> list[dict[str, Any]]:
    """Rows valid but for one column, which takes random values (so a difference in that
    column's conversion is not hidden by another column rejecting the row)."""
    column = draw(st.sampled_from(table.columns))
    values = draw(st.lists(_strategy(column), min_size=1, max_size=6))
    rows = []
    for number, value in enumerate(values, start=1):
        row = {c.name: _valid(c) for c in table.columns}
        # Distinct keys, unless the key column is the one varied.
        if table is schema.ORDER_ITEMS:
            row["gnum"] = number
        else:
            row["order_no"] = f"O{number}"
        row[column.name] = value
        rows.append(row)
    return rows


def _raw_frame(table: schema.Table, rows: list[dict[str, Any]]) -> pl.DataFrame:
    types = {
        c.name: pl.Int64() if c.kind is schema.Kind.INT else pl.String() for c in table.columns
    }
    return pl.DataFrame(rows, schema=types, orient="row")


def _comparable(frame: Any) -> Any:
    """Rows of the canonical columns and order dates, times as integers (Python's datetime
    stops at year 9999)."""
    frame = pl.DataFrame(frame)
    names = [n for n in frame.columns if n != schema.ROW]
    return frame.select(pl.col(names).to_physical()).iter_rows()


def _stream_rows(table: schema.Table, rows: list[dict[str, Any]]) -> list[tuple[Any, ...] | None]:
    maker = RowMaker(table)
    converted: list[tuple[Any, ...] | None] = []
    for row in rows:
        try:
            converted.append(maker.row(SimpleNamespace(**row)))
        except Invalid:
            converted.append(None)
    return converted


@pytest.mark.parametrize(
    "table",
    [schema.ORDERS, schema.ORDER_ITEMS, schema.PAYMENTS, schema.WAYBILLS, schema.INVENTORIES],
    ids=lambda t: t.name,
)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_rows_equal_the_batch_normaliser(table: schema.Table, data: Any) -> None:
    rows = data.draw(_rows(table))
    canonical, rejects = normalise_table(_raw_frame(table, rows), table)
    rejected_rows = set(rejects["row"].to_list())
    streamed = _stream_rows(table, rows)
    # Batch drops later copies of a unique key; streaming keys documents itself.
    messages = zip(rejects["row"], rejects["message"], strict=True)
    duplicates = {row for row, message in messages if "duplicate" in message}
    kept = iter(_comparable(RowMaker(table).frame([r for r in streamed if r is not None])))
    expected = iter(_comparable(canonical))
    for number, row in enumerate(streamed, start=1):
        if number in duplicates:
            assert row is not None
            next(kept)
            continue
        assert (row is None) == (number in rejected_rows), (number, rows[number - 1])
        if row is not None:
            assert next(kept) == next(expected)


def test_text_is_cleaned_like_polars() -> None:
    assert clean_text("  Li\u3000 Lei\t") == "Li Lei"
    assert clean_text("ＡＢＣ") == "ABC"
    assert clean_text("a\x1cb") == "a\x1cb"  # not White_Space: Polars keeps it, so do we
    assert clean_text(" \u2003 ") is None


def test_amounts_and_times() -> None:
    assert units("007.50") == 75_000
    assert units("-0.00") == 0
    with pytest.raises(Invalid):
        units("1.23456")
    with pytest.raises(Invalid):
        units("-1")
    assert utc_micros("1970-01-01T00:00:00Z") == 0
    assert utc_micros("19700101080000") == 0  # Asia/Shanghai wall time
    with pytest.raises(Invalid):
        utc_micros("1988-04-17 02:30:00")  # skipped by daylight saving in Shanghai


_INT64 = (-(2**63), 2**63 - 1)
_DAY_US = 86_400_000_000
#: Where the China date could slip: the ends of int64 and of chrono's years (±262,143), where
#: far times start to be moved by 400-year cycles, and the zone's changes of rules.
_DATE_EDGES = [
    *_INT64,
    8_210_266_876_800_000_000,  # 262143-01-01 UTC
    -8_334_601_228_800_000_000,  # -262143-01-01 UTC
    NEAR_FROM_US,
    NEAR_TO_US,
    -2_177_481_943_000_000,  # 1901-01-01 local mean time, the first rule
    694_195_200_000_000,  # 1992-01-01 +08:00, the last one
]
any_micros = st.one_of(
    st.integers(*_INT64),
    st.sampled_from(_DATE_EDGES).flatmap(
        lambda edge: st.integers(
            max(edge - 2 * _DAY_US, _INT64[0]), min(edge + 2 * _DAY_US, _INT64[1])
        )
    ),
)


@settings(max_examples=100, deadline=None)
@given(micros=st.lists(any_micros, min_size=1, max_size=8))
def test_order_dates_equal_the_batch_normaliser_for_every_int64_time(micros: list[int]) -> None:
    """Text times stop at year 9999, Datetime input (Parquet, IPC, frames) goes to the ends of
    int64: batch gives those the China dates of streaming's converter (Python and compiled)."""
    rows = [
        {**{c.name: _valid(c) for c in schema.ORDERS.columns}, "order_no": f"O{i}"}
        for i in range(len(micros))
    ]
    raw = _raw_frame(schema.ORDERS, rows).with_columns(
        pl.Series("app_time", micros, pl.Int64).cast(pl.Datetime("us", "UTC"))
    )
    canonical, rejects = normalise_table(raw, schema.ORDERS)
    assert rejects.is_empty()
    expected = [python_china_dates(m) for m in micros]
    assert canonical.select(schema.APP_YEAR, schema.APP_YMD).rows() == expected
    assert [china_dates(m) for m in micros] == expected
