"""Parquet reader: round trip, garbage bytes, unconvertible column types."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from matchcore.exceptions import InputError, SchemaError
from matchcore.io import read_parquet, read_source
from matchcore.normalise import normalise_table


def test_round_trip(orders_frame: pl.DataFrame, expected_orders: pl.DataFrame, write_as) -> None:
    path = write_as(orders_frame, "orders", "parquet")
    raw = read_source(path, "orders")
    assert raw.label == str(path)
    canonical, rejects = normalise_table(raw, "orders")
    assert rejects.is_empty()
    assert_frame_equal(canonical, expected_orders)


def test_garbage_bytes(tmp_path: Path) -> None:
    path = tmp_path / "orders.parquet"
    path.write_bytes(b"\x00\xffnot a parquet file at all" * 10)
    with pytest.raises(InputError, match=f"{path}: cannot read as Parquet"):
        read_parquet(path)


def test_wrong_column_type_names_table_column_and_file(
    orders_frame: pl.DataFrame, write_as
) -> None:
    frame = orders_frame.with_columns(pl.struct(pl.col("goods_value")).alias("goods_value"))
    path = write_as(frame, "orders", "parquet")
    with pytest.raises(SchemaError) as error:
        normalise_table(read_source(path, "orders"), "orders")
    assert str(error.value).startswith("orders: column 'goods_value' has type Struct")
    assert str(path) in str(error.value)


def test_float_money_is_rounded(orders_frame: pl.DataFrame, write_as) -> None:
    frame = orders_frame.with_columns(pl.Series("goods_value", [100.5, 0.00015, -1.0]))
    canonical, rejects = normalise_table(
        read_source(write_as(frame, "orders", "parquet"), "orders"), "orders"
    )
    assert canonical["goods_value"].to_list() == [1_005_000, 1]
    assert rejects.select("row", "column", "value", "message").row(0) == (
        3,
        "goods_value",
        "-1.0",
        "negative amount",
    )
