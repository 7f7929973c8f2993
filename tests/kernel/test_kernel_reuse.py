"""What a stream's kernel keeps between micro-batches (reference columns, their lookup tables,
the parameters) never changes an output, and a pyarrow table's columns are read in one pass
exactly as column by column."""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matchcore._native.kernel import ArrowColumn, ArrowLayoutError, TableImport, import_table
from matchcore._native.packed import TableSchema, from_columns
from matchcore.engine.kernel import KernelEngine
from matchcore.rules import RuleSettings

FIXTURES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@settings(max_examples=25, deadline=None, suppress_health_check=FIXTURES)
@given(data=st.data())
def test_reused_references_give_the_output_of_a_fresh_run(
    data, random_tables, random_settings, arrow_tables, outputs_equal
):
    """Runs over two sets of reference tables, back and forth, with changing settings: the
    kept lookup tables are rebuilt when the references change and reused when they do not."""
    first, second = data.draw(random_tables), data.draw(random_tables)
    # The second batch's documents against the first's references: reuse with other orders.
    mixed = dataclasses.replace(
        second, products=first.products, enterprises=first.enterprises, hs_lists=first.hs_lists
    )
    kept = KernelEngine(threads=1)
    kept.reuse_references = True
    for tables in (first, mixed, second, first, arrow_tables(second, "string")):
        rules = data.draw(random_settings)
        outputs_equal(kept.run(tables, rules), KernelEngine(threads=1).run(tables, rules))


def test_reference_lookup_tables_are_built_once_per_references(make_tables):
    tables = make_tables(
        products=[{"ebc_code": "C1", "item_no": "I1", "status": "active"}],
        enterprises=[{"code": "C1", "status": "active"}],
    )
    kept = KernelEngine(threads=1)
    kept.reuse_references = True
    kept.run(tables, RuleSettings())
    kept.run(dataclasses.replace(tables, orders=tables.orders.clear()), RuleSettings())
    assert kept._prepared.builds == 1
    kept.run(dataclasses.replace(tables, products=tables.products.clone()), RuleSettings())
    assert kept._prepared.builds == 2
    fresh = KernelEngine(threads=1)  # a batch run keeps nothing
    fresh.run(tables, RuleSettings())
    assert fresh._prepared.builds == 0


def _chunked_table() -> pa.Table:
    """Two record batches, the second sliced, with nulls in every column."""
    first = pa.record_batch(
        {"text": ["a", None, "ccc"], "number": [1, None, 3], "small": pa.array([7, 8, None])}
    )
    second = pa.record_batch(
        {"text": ["d", "e", None, "f"], "number": [None, 5, 6, 7], "small": pa.array([1, 2, 3, 4])}
    ).slice(1)
    return pa.Table.from_batches([first, second.cast(first.schema)])


def test_import_table_reads_each_column_as_arrow_column_does():
    table = _chunked_table()
    names = ["number", "missing", "text"]
    imported = import_table(table, names, frozenset({"text"}))
    assert list(imported) == names
    for name in ("number", "text"):
        assert imported[name].to_pylist() == ArrowColumn(table.column(name)).to_pylist()
        assert imported[name].to_pylist() == table.column(name).to_pylist()
        assert imported[name].format == ArrowColumn(table.column(name)).format
    assert imported["missing"].to_pylist() == []


def test_import_table_of_a_later_duplicate_name_reads_the_last_column():
    table = pa.Table.from_arrays([pa.array(["x"]), pa.array(["y"])], names=["a", "a"])
    assert import_table(table, ["a"])["a"].to_pylist() == ["y"]


def test_import_table_refuses_a_column_it_cannot_read_and_names_it():
    table = pa.table({"fine": ["x"], "bad": pa.array([1.5], pa.float32())})
    with pytest.raises(ArrowLayoutError, match="column bad: .*not supported"):
        import_table(table, ["fine", "bad"])
    assert import_table(table, ["fine"])["fine"].to_pylist() == ["x"]  # not read: no error


def test_import_table_finds_names_that_share_a_start_or_are_not_ascii():
    table = pa.table({"ab": ["1"], "a": ["2"], "abc": ["3"], "é": ["4"], "e": ["5"]})
    names = ["a", "abc", "é", "ab", "missing", "a\x00b"]
    imported = import_table(table, names)
    assert [imported[name].to_pylist() for name in names] == [["2"], ["3"], ["4"], ["1"], [], []]


def test_a_table_import_reads_table_after_table_as_import_table_does():
    """One reader over tables of one schema object (the stream's micro-batch tables, whose
    columns it finds once), then of another, whose columns are elsewhere, then of a pyarrow
    table: every read gives what a fresh import gives."""
    first = pa.schema([("text", pa.string()), ("number", pa.int64()), ("small", pa.int32())])
    second = pa.schema([("small", pa.int32()), ("other", pa.string()), ("text", pa.string())])
    shapes = {schema: TableSchema(schema) for schema in (first, second)}
    tables = [
        from_columns(shapes[first], [["a", None], [1, 2], [None, 3]]),
        from_columns(shapes[first], [["b"], [None], [4]]),
        from_columns(shapes[second], [[5, None, 6], ["x", "y", None], ["c", None, "d"]]),
        _chunked_table(),
        from_columns(shapes[first], [[], [], []]),
    ]
    names = ["number", "missing", "text", "small"]
    reader = TableImport(names, frozenset({"text"}))
    for table in tables:
        read = reader.read(table)
        arrow = pa.table(table)
        assert [column.to_pylist() for column in read] == [
            arrow.column(name).to_pylist() if name in arrow.column_names else [] for name in names
        ]
        fresh = import_table(table, names)
        assert [column.format for column in read] == [fresh[name].format for name in names]
    reader.release()
    assert [len(column) for column in read] == [0, 0, 0, 0]
