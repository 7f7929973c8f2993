"""In-memory sources: Polars, pyarrow (string, large_string, string_view), C streams, DuckDB."""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

from matchcore.exceptions import InputError
from matchcore.io import read_source
from matchcore.normalise import normalise_table


def test_canonical_values_of_the_sample(expected_orders: pl.DataFrame) -> None:
    first = expected_orders.row(0, named=True)
    assert first["goods_value"] == 1_005_000
    assert first["discount"] == 0
    assert first["buyer_id_number"] == "11010519491231002X"
    assert expected_orders["buyer_name"].to_list() == ["张三", "李 四", "王五"]
    assert expected_orders["consignee"].to_list() == ["张三", "李四", "Wang Wu"]
    assert expected_orders["discount"].to_list() == [0, 12_500, 0]
    assert expected_orders["_app_ymd"].to_list() == [20240301, 20240302, 20240101]
    assert expected_orders["app_time"][2] == dt.datetime(
        2023, 12, 31, 16, 0, 0, 250000, tzinfo=dt.UTC
    )


def _normalised(source: object) -> tuple[pl.DataFrame, str]:
    raw = read_source(source, "orders")
    canonical, rejects = normalise_table(raw, "orders")
    assert rejects.is_empty()
    return canonical, raw.label


def _with_string_type(frame: pl.DataFrame, string_type: pa.DataType) -> pa.Table:
    table = frame.to_arrow()
    fields = [
        pa.field(f.name, string_type)
        if pa.types.is_string(f.type)
        or pa.types.is_large_string(f.type)
        or pa.types.is_string_view(f.type)
        else f
        for f in table.schema
    ]
    return table.cast(pa.schema(fields))


@pytest.mark.parametrize(
    ("make", "label"),
    [
        (lambda f: f, "<orders: polars DataFrame>"),
        (lambda f: f.lazy(), "<orders: polars LazyFrame>"),
        (lambda f: _with_string_type(f, pa.string()), "<orders: pyarrow Table>"),
        (lambda f: _with_string_type(f, pa.large_string()), "<orders: pyarrow Table>"),
        (lambda f: _with_string_type(f, pa.string_view()), "<orders: pyarrow Table>"),
        (lambda f: f.to_arrow().to_batches()[0], "<orders: pyarrow RecordBatch>"),
        (
            lambda f: pa.RecordBatchReader.from_batches(
                f.to_arrow().schema, f.to_arrow().to_batches()
            ),
            "<orders: pyarrow RecordBatchReader>",
        ),
    ],
)
def test_in_memory_sources_give_the_same_canonical_frame(
    orders_frame: pl.DataFrame, expected_orders: pl.DataFrame, make, label: str
) -> None:
    canonical, got_label = _normalised(make(orders_frame))
    assert got_label == label
    assert_frame_equal(canonical, expected_orders)


def test_dictionary_encoded_text(orders_frame: pl.DataFrame, expected_orders: pl.DataFrame) -> None:
    table = orders_frame.to_arrow()
    index = table.schema.get_field_index("ebp_code")
    table = table.set_column(index, "ebp_code", table["ebp_code"].dictionary_encode())
    canonical, _ = _normalised(table)
    assert_frame_equal(canonical, expected_orders)


def test_arrow_c_stream_of_a_duckdb_relation(
    orders_frame: pl.DataFrame, expected_orders: pl.DataFrame
) -> None:
    connection = duckdb.connect()
    connection.register("orders_view", orders_frame.to_arrow())
    relation = connection.sql("select * from orders_view order by order_no")
    assert hasattr(relation, "__arrow_c_stream__")
    canonical, label = _normalised(relation)
    assert label.startswith("<orders: duckdb")
    assert_frame_equal(canonical, expected_orders)


def test_generic_arrow_c_stream(orders_frame: pl.DataFrame, expected_orders: pl.DataFrame) -> None:
    class Producer:
        def __init__(self, table: pa.Table) -> None:
            self._table = table

        def __arrow_c_stream__(self, requested_schema: object = None) -> object:
            return self._table.__arrow_c_stream__(requested_schema)

    canonical, label = _normalised(Producer(orders_frame.to_arrow()))
    assert label.startswith("<orders: ") and label.endswith(" Producer>")
    assert_frame_equal(canonical, expected_orders)


def test_unsupported_object_is_an_input_error() -> None:
    with pytest.raises(InputError, match="orders: cannot read a source of type dict"):
        read_source({"order_no": ["O1"]}, "orders")


def test_failing_producer_is_an_input_error() -> None:
    class Broken:
        def __arrow_c_stream__(self, requested_schema: object = None) -> object:
            raise RuntimeError("connection lost")

    with pytest.raises(InputError, match=r"<orders: \S+ Broken>: cannot read.*connection lost"):
        read_source(Broken(), "orders")
