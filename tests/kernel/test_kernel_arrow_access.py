"""The kernel's Arrow access layer reads every layout it accepts in place, with nulls, slices
and chunks, and refuses the rest with a clear error."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pyarrow as pa
import pytest

from matchcore._native.kernel import ArrowColumn, ArrowLayoutError
from matchcore.engine.base import CanonicalTables
from matchcore.engine.kernel import _import_columns
from matchcore.exceptions import SchemaError

TEXTS = [
    "a",
    None,
    "",
    "exactly12byt",
    "thirteen byte",
    "张三的很长的名字",
    None,
    "ORDER-000000000000001",
]


@pytest.mark.parametrize(
    "source",
    [
        pl.Series(TEXTS),
        pa.array(TEXTS, pa.string()),
        pa.array(TEXTS, pa.large_string()),
        pa.array(TEXTS, pa.string_view()),
        pa.chunked_array([TEXTS[:3], TEXTS[3:]], pa.string()),
        pa.chunked_array([[], TEXTS[:5], [], TEXTS[5:]], pa.large_string()),
        pa.chunked_array([TEXTS[:1], TEXTS[1:5], TEXTS[5:]], pa.string_view()),
        pl.concat([pl.Series(TEXTS[:4]), pl.Series(TEXTS[4:])], rechunk=False),
    ],
    ids=[
        "polars",
        "string",
        "large_string",
        "string_view",
        "chunked",
        "chunked-empty",
        "chunked-unequal",
        "polars-chunked",
    ],
)
def test_strings_read_in_every_layout(source):
    assert ArrowColumn(source).to_pylist() == TEXTS


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string(), pa.string_view()])
def test_sliced_strings_honour_the_offset(kind):
    sliced = pa.array(["skip", *TEXTS, "tail"], kind).slice(1, len(TEXTS))
    assert ArrowColumn(sliced).to_pylist() == TEXTS


def test_sliced_chunks_of_a_chunked_array():
    column = pa.chunked_array(
        [pa.array(["x", "a", "b"]).slice(1), pa.array(["c", None, "y"]).slice(0, 2)]
    )
    reader = ArrowColumn(column)
    assert reader.to_pylist() == ["a", "b", "c", None]
    assert reader.n_chunks == 2


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (pa.array([1, None, -(2**62)], pa.int64()), [1, None, -(2**62)]),
        (pa.array([7, None, -3], pa.int32()), [7, None, -3]),
        (pa.array([0, 31, None], pa.uint8()), [0, 31, None]),
        (pa.array([0.13, None, 1.5], pa.float64()), [0.13, None, 1.5]),
        (pl.Series([5, None, 6], dtype=pl.Int64), [5, None, 6]),
        (pa.array([None, None], pa.null()), [None, None]),
    ],
    ids=["int64", "int32", "uint8", "float64", "polars-int64", "null"],
)
def test_fixed_width_values_and_nulls(source, expected):
    assert ArrowColumn(source).to_pylist() == expected


def test_timestamps_read_as_microseconds():
    moment = datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    series = pl.Series([moment, None]).cast(pl.Datetime("us", "UTC"))
    micros = int(moment.timestamp()) * 1_000_000 + 6
    assert ArrowColumn(series).to_pylist() == [micros, None]


def test_sliced_validity_bitmap_with_offset_beyond_a_byte():
    values = [None if i % 3 == 0 else i for i in range(40)]
    sliced = pa.array(values, pa.int64()).slice(11, 20)
    assert ArrowColumn(sliced).to_pylist() == values[11:31]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (pa.array(["skip", "a", "", "张三", "tail"], pa.string()).slice(1, 3), ["a", "", "张三"]),
        (pa.array([9, 1, -(2**62), 9], pa.int64()).slice(1, 2), [1, -(2**62)]),
        (pa.array(["a", "b", None], pa.string()).slice(0, 2), ["a", "b"]),  # a bitmap, no null
    ],
    ids=["utf8", "int64", "utf8-bitmap"],
)
def test_one_chunk_without_nulls_is_read_at_its_offset(source, expected):
    """Such columns (a stream's micro-batch tables) are read through their dense pointers."""
    assert ArrowColumn(source).to_pylist() == expected


def test_absent_column_is_all_null_and_empty():
    column = ArrowColumn(None)
    assert len(column) == 0
    assert column.to_pylist() == []


def test_unsupported_layout_is_refused():
    with pytest.raises(ArrowLayoutError, match="not supported"):
        ArrowColumn(pa.array([1.5], pa.float32()))
    with pytest.raises(ArrowLayoutError, match="does not export Arrow data"):
        ArrowColumn([1, 2, 3])


def test_unsupported_column_type_names_table_and_column(make_tables):
    tables = make_tables()
    bad = CanonicalTables(
        **{
            **tables.__dict__,
            "products": tables.products.with_columns(pl.col("vat_rate").cast(pl.Float32)),
        }
    )
    with pytest.raises(SchemaError, match="table products, column vat_rate"):
        _import_columns(bad)


def test_polars_strings_are_not_converted():
    """Polars hands out string_view; the kernel reads that layout as is."""
    assert ArrowColumn(pl.Series(["x"])).format == "vu"
