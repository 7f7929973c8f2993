"""The kernel equals the reference engine exactly, on random small inputs and every layout."""

from __future__ import annotations

from dataclasses import fields

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from matchcore.engine.base import CanonicalTables
from matchcore.engine.kernel import KernelEngine
from matchcore.engine.reference import ReferenceEngine
from matchcore.rules import RuleSettings

FIXTURES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
LAYOUTS = [
    "string",
    "large_string",
    "string_view+chunked",
    "string+sliced",
    "large_string+chunked+sliced",
]


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURES)
@given(data=st.data())
def test_kernel_equals_reference(data, random_tables, random_settings, outputs_equal):
    tables = data.draw(random_tables)
    rules = data.draw(random_settings)
    outputs_equal(KernelEngine(threads=2).run(tables, rules), ReferenceEngine().run(tables, rules))


@settings(max_examples=15, deadline=None, suppress_health_check=FIXTURES)
@given(data=st.data())
def test_single_thread_equals_two_threads(data, random_tables, outputs_equal):
    tables = data.draw(random_tables)
    rules = RuleSettings()
    outputs_equal(
        KernelEngine(threads=1).run(tables, rules), KernelEngine(threads=2).run(tables, rules)
    )


@pytest.mark.parametrize("layout", LAYOUTS)
@settings(max_examples=8, deadline=None, suppress_health_check=FIXTURES)
@given(data=st.data())
def test_arrow_layouts_give_identical_output(
    layout, data, random_tables, arrow_tables, outputs_equal
):
    tables = data.draw(random_tables)
    rules = RuleSettings()
    expected = KernelEngine().run(tables, rules)
    outputs_equal(KernelEngine().run(arrow_tables(tables, layout), rules), expected)


@settings(max_examples=10, deadline=None, suppress_health_check=FIXTURES)
@given(data=st.data())
def test_duckdb_tables_give_identical_output(data, random_tables, outputs_equal):
    tables = data.draw(random_tables)
    rules = RuleSettings()
    con = duckdb.connect()

    def through_duckdb(frame):
        if frame is None:
            return None
        con.register("t", frame.to_arrow())
        table = con.sql("SELECT * FROM t").arrow().read_all()
        con.unregister("t")
        return table

    converted = CanonicalTables(
        **{f.name: through_duckdb(getattr(tables, f.name)) for f in fields(tables)}
    )
    outputs_equal(KernelEngine().run(converted, rules), KernelEngine().run(tables, rules))


#: Tables with order numbers, copied with the copy's number appended to them.
COPIED = ("orders", "payments", "waybills", "order_items", "inventories")


def copied_tables(tables: CanonicalTables, copies: int) -> CanonicalTables:
    """`copies` copies of the orders and documents, each copy's links its own (documents naming
    no order link across copies, as they would in one batch), the reference tables as given."""

    def copied(frame):
        parts = [frame.with_columns(pl.col("order_no") + f"#{k}") for k in range(copies)]
        joined = pl.concat(parts)
        return joined.with_columns(
            pl.int_range(1, joined.height + 1, dtype=joined.schema["_row"]).alias("_row")
        )

    return CanonicalTables(
        **{
            f.name: copied(getattr(tables, f.name))
            if f.name in COPIED and getattr(tables, f.name) is not None
            else getattr(tables, f.name)
            for f in fields(tables)
        }
    )


@settings(max_examples=4, deadline=None, suppress_health_check=FIXTURES)
@given(data=st.data())
def test_large_tables_equal_reference(data, random_tables, outputs_equal):
    # Over CACHED_ROWS orders (src_ext/hashtable.pxd): the prefetched, blocked passes that a
    # micro-batch's small tables skip.
    tables = data.draw(random_tables)
    assume(tables.orders.height > 0)
    copies = 4100 // tables.orders.height + 1
    large = copied_tables(tables, copies)
    rules = RuleSettings()
    expected = ReferenceEngine().run(large, rules)
    outputs_equal(KernelEngine(threads=1).run(large, rules), expected)
    outputs_equal(KernelEngine(threads=2).run(large, rules), expected)
