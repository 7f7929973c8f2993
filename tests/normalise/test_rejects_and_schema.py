"""Schema errors, absent columns, defaults, and the shape of rejects (SPEC §2, §4)."""

from __future__ import annotations

import polars as pl
import pytest

from matchcore.exceptions import SchemaError
from matchcore.io import REJECTS_SCHEMA, RawSource
from matchcore.normalise import normalise_table
from matchcore.schema import ORDERS, TABLES


def test_missing_required_column_names_table_column_and_file(make_raw) -> None:
    frame = make_raw("orders").drop("goods_value")
    with pytest.raises(SchemaError) as error:
        normalise_table(frame, "orders", "data/orders.csv")
    message = str(error.value)
    assert "orders" in message
    assert "'goods_value'" in message
    assert "data/orders.csv" in message


@pytest.mark.parametrize(
    ("column", "series"),
    [
        ("goods_value", pl.Series("goods_value", [{"a": 1}])),
        ("app_time", pl.Series("app_time", [True])),
        ("order_no", pl.Series("order_no", [1.5])),
        ("roles", pl.Series("roles", [[1, 2]])),
    ],
)
def test_unconvertible_column_type_is_a_schema_error(
    make_raw, column: str, series: pl.Series
) -> None:
    table = "enterprises" if column == "roles" else "orders"
    frame = make_raw(table).with_columns(series)
    with pytest.raises(SchemaError) as error:
        normalise_table(frame, table, "<in memory>")
    assert f"{table}: column '{column}'" in str(error.value)
    assert "<in memory>" in str(error.value)


def test_canonical_schema_extra_columns_dropped_absent_optional_filled(make_raw) -> None:
    frame = make_raw("orders").with_columns(pl.lit("x").alias("unexpected"))
    canonical, rejects = normalise_table(frame, "orders", "orders.csv")
    assert rejects.is_empty()
    expected = {**ORDERS.polars_schema(), "_app_year": pl.Int32(), "_app_ymd": pl.Int64()}
    assert dict(canonical.schema) == expected
    row = canonical.row(0, named=True)
    assert (row["discount"], row["currency"], row["buyer_id_type"]) == (0, "142", "1")
    assert row["note"] is None
    assert row["_row"] == 1


def test_defaults_fill_nulls_but_keep_values(make_raw) -> None:
    frame = make_raw(
        "orders", {"discount": None, "currency": " "}, {"discount": "2.5", "currency": "502"}
    )
    canonical, _ = normalise_table(frame, "orders", "orders.csv")
    assert canonical["discount"].to_list() == [0, 25_000]
    assert canonical["currency"].to_list() == ["142", "502"]


def test_each_problem_is_one_reject_and_the_row_leaves_once(make_raw) -> None:
    frame = make_raw(
        "orders",
        {},
        {"goods_value": "-1", "app_time": "never", "order_no": None},
        {"freight": "1.00001"},
        {},
    )
    canonical, rejects = normalise_table(frame, "orders", "orders.csv")
    assert canonical["_row"].to_list() == [1, 4]
    assert dict(rejects.schema) == REJECTS_SCHEMA
    assert rejects.select("row", "column", "message").rows() == [
        (2, "order_no", "required value is missing"),
        (2, "goods_value", "negative amount"),
        (2, "app_time", "not a valid time (ISO 8601 or yyyyMMddHHmmss)"),
        (3, "freight", "more than 4 decimal places"),
    ]
    assert set(rejects["table"]) == {"orders"}
    assert set(rejects["file"]) == {"orders.csv"}


def test_given_row_numbers_are_used(make_raw) -> None:
    frame = make_raw("orders", {}, {"goods_value": "bad"})
    source = RawSource(frame=frame, label="orders.ndjson", rows=pl.Series([3, 7]))
    canonical, rejects = normalise_table(source, "orders")
    assert canonical["_row"].to_list() == [3]
    assert rejects.select("file", "row").row(0) == ("orders.ndjson", 7)


def test_identity_values_are_masked_in_rejects(make_raw) -> None:
    frame = make_raw(
        "quota_ledger",
        {"buyer_id_number": "110105194912310025", "used": "-5"},
        {"buyer_id_number": "11010519491231002x", "used": "10"},
        {"buyer_id_number": "11010519491231002X", "used": "20"},
    )
    canonical, rejects = normalise_table(frame, "quota_ledger", "ledger.csv")
    assert canonical["used"].to_list() == [100_000]
    assert rejects["value"].to_list() == ["-5", "**************002X|2024"]
    assert all("1101051949" not in m for m in rejects["message"].to_list())


def test_unknown_table_name_is_a_schema_error(make_raw) -> None:
    with pytest.raises(SchemaError, match="unknown table 'order'"):
        normalise_table(make_raw("orders"), "order")


def test_empty_frame_gives_empty_canonical_table(make_raw) -> None:
    canonical, rejects = normalise_table(make_raw("orders").clear(), "orders")
    assert canonical.height == 0
    assert rejects.is_empty()
    assert canonical.schema["goods_value"] == pl.Int64


@pytest.mark.parametrize("table", list(TABLES))
def test_every_table_gets_its_canonical_dtypes(make_raw, table: str) -> None:
    canonical, rejects = normalise_table(make_raw(table), table, f"{table}.csv")
    assert rejects.is_empty()
    assert canonical.height == 1
    extra = {"_app_year": pl.Int32(), "_app_ymd": pl.Int64()} if table == "orders" else {}
    assert dict(canonical.schema) == {**TABLES[table].polars_schema(), **extra}
