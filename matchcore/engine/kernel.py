"""The compiled kernel engine: hands the canonical columns to `matchcore._native.kernel`
zero-copy (Arrow PyCapsule interface) and turns its arrays into the `EngineOutput` tables.

Tables may be Polars DataFrames or any Arrow producer with columns (pyarrow Tables, ...), or
the streaming matcher's micro-batch tables (`matchcore._native.packed.Table`), read as a stream.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np
import polars as pl
import pyarrow as pa

from .._native import kernel as _kernel  # ImportError here means "not built"
from ..exceptions import SchemaError
from ..rules import RuleSettings
from .base import (
    LEDGER_SCHEMA,
    NULL_INT64,
    ORDER_RESULT_SCHEMA,
    ORPHAN_SCHEMA,
    SUBJECT_SCHEMA,
    TABLE_NAMES,
    CanonicalTables,
    EngineOutput,
)

try:
    from .._native.packed import Table as _PackedTable

    #: Tables imported in one read of their Arrow stream (a stream's micro-batch).
    _STREAMED: tuple[type, ...] = (pa.Table, _PackedTable)
except ImportError:  # not built: the matcher makes pyarrow tables
    _STREAMED = (pa.Table,)

NULLABLE_ORDER_COLUMNS = (
    "payment_row",
    "waybill_row",
    "inventory_row",
    "items_total",
    "computed_tax",
    "annual_spent",
)


def _height(table: Any) -> int:
    """Row count of a Polars frame or an Arrow table."""
    if table is None:
        return 0
    if isinstance(table, pl.DataFrame):
        return table.height
    return int(table.num_rows)


def _columns_of(table: Any) -> dict[str, Any]:
    """A frame's or table's columns by name, each one Arrow exporter (absent table: none)."""
    if table is None:
        return {}
    if isinstance(table, pl.DataFrame):
        return {column.name: column for column in table.get_columns()}
    if not isinstance(table, pa.Table) and isinstance(table, _STREAMED):
        table = pa.table(table)  # (it has no columns of its own)
    return dict(zip(table.column_names, table.columns, strict=True))


def _single_chunk(column: Any) -> Any:
    """Polars columns as one chunk: every kernel accessor then skips the row -> chunk lookup;
    the copy is a sequential pass, cheaper than a lookup on every access (measured at 1M)."""
    if isinstance(column, pl.Series) and column.n_chunks() > 1:
        return column.rechunk()
    return column


def _column_source(table: Any, name: str) -> Any:
    """The column `name` of a frame/table as an Arrow exporter, or None when it is absent."""
    return _single_chunk(_columns_of(table).get(name))


#: The filed records: a stream evaluates many micro-batches against the same ones.
REFERENCE_TABLES = ("products", "enterprises", "hs_lists", "quota_ledger")
#: The reference tables `PreparedReferences` builds its lookup tables from.
_PREPARED_FROM = ("products", "enterprises", "hs_lists")
#: Imported columns of reference (or absent) tables, per table name: the table they came from
#: and its columns in kernel order (an ArrowColumn is read-only to the kernel, so one import
#: serves every run).
ImportCache = dict[str, tuple[Any, list[Any]]]


class _KernelTable(NamedTuple):
    """One table the kernel reads: its name, its (table, column) keys in the kernel's order,
    their column names, and the names of those read in random row order (see SEQUENTIAL)."""

    name: str
    keys: list[tuple[str, str]]
    columns: list[str]
    huge: frozenset[str]


def _kernel_tables() -> list[_KernelTable]:
    """The kernel's columns grouped by table, in the kernel's order (COLUMNS lists a table's
    columns together)."""
    grouped: dict[str, list[tuple[str, str]]] = {}
    for key in _kernel.COLUMNS:
        grouped.setdefault(key[0], []).append(key)
    assert [key for keys in grouped.values() for key in keys] == list(_kernel.COLUMNS)
    return [
        _KernelTable(
            name,
            keys,
            [column for _, column in keys],
            frozenset(column for _, column in keys if (name, column) not in _kernel.SEQUENTIAL),
        )
        for name, keys in grouped.items()
    ]


_KERNEL_TABLES = _kernel_tables()


def _import_columns(
    tables: CanonicalTables,
    cache: ImportCache | None = None,
    readers: dict[str, Any] | None = None,
) -> list[Any]:
    """One kernel ArrowColumn per (table, column) the kernel reads, in its fixed order.

    Huge pages only for the columns read in random row order: moving the others costs a copy.
    With `cache`, reference tables seen in an earlier call (the same objects), and absent
    tables, are not imported again: for a micro-batch of a few orders that import costs more
    than the run. With `readers` (kernel TableImports by table name), the tables they are for
    are read into the same columns every call (see `TableImport`): the caller releases them.
    """
    columns: list[Any] = []
    for kernel_table in _KERNEL_TABLES:
        table = getattr(tables, kernel_table.name)
        cached = cache.get(kernel_table.name) if cache is not None else None
        if cached is not None and cached[0] is table:
            columns += cached[1]
            continue
        reader = readers.get(kernel_table.name) if readers is not None else None
        if reader is not None and table is not None:
            columns += _import_table(table, kernel_table, reader)
            continue
        imported = _import_table(table, kernel_table)
        # An absent table (None) is absent columns, the same in every call.
        if cache is not None and (kernel_table.name in REFERENCE_TABLES or table is None):
            cache[kernel_table.name] = (table, imported)
        columns += imported
    return columns


def _import_table(table: Any, kernel_table: _KernelTable, reader: Any = None) -> list[Any]:
    """The kernel ArrowColumns of one table (absent table or column: an absent column), read
    by `reader` when given (a kernel TableImport of the table's columns)."""
    if isinstance(table, _STREAMED):  # a stream's micro-batch: its columns in one read
        if reader is None:
            reader = _kernel.TableImport(kernel_table.columns, kernel_table.huge)
        try:
            return list(reader.read(table))
        except _kernel.ArrowLayoutError as exc:
            raise SchemaError(f"table {kernel_table.name}, {exc}") from None
    by_name = _columns_of(table)
    return [_import_column(by_name, key) for key in kernel_table.keys]


def _import_column(columns: dict[str, Any], key: tuple[str, str]) -> Any:
    table_name, column_name = key
    source = _single_chunk(columns.get(column_name))
    try:
        return _kernel.ArrowColumn(source, huge=key not in _kernel.SEQUENTIAL)
    except _kernel.ArrowLayoutError as exc:
        raise SchemaError(f"table {table_name}, column {column_name}: {exc}") from None


def _parameters(tables: CanonicalTables, settings: RuleSettings) -> dict[str, Any]:
    p = settings.parameters
    return {
        "amount_tolerance": p.amount_tolerance,
        "tax_tolerance": p.tax_tolerance,
        "single_limit": p.single_limit,
        "annual_limit": p.annual_limit,
        "arrival_window_us": p.arrival_window_us,
        "tax_discount": float(p.tax_discount),
        "enabled_mask": settings.enabled_mask,
        "reject_mask": settings.mask_of("reject"),
        "inventory_rules": tables.inventories is not None,
        "positive_list": tables.hs_lists is not None,
    }


def _nullable(values: np.ndarray, name: str) -> pl.Series:
    """An Int64 series with the kernel's null marker turned into nulls."""
    series = pl.Series(name, values)
    return series.set(series == NULL_INT64, None) if (values == NULL_INT64).any() else series


def _orders_frame(raw: dict[str, Any]) -> pl.DataFrame:
    columns = [
        _nullable(raw[name], name) if name in NULLABLE_ORDER_COLUMNS else pl.Series(name, raw[name])
        for name in ORDER_RESULT_SCHEMA
    ]
    return pl.DataFrame(columns).cast(ORDER_RESULT_SCHEMA)  # type: ignore[arg-type]


def _subjects_frame(raw: dict[str, np.ndarray]) -> pl.DataFrame:
    """Subject rows in the contract's order: order_row, rule, party, line_row (nulls first)."""
    frame = pl.DataFrame(
        {
            "order_row": raw["order_row"],
            "rule": raw["rule"],
            "party": pl.Series(raw["party"]).set(pl.Series(raw["party"] < 0), None),
            "line_row": pl.Series(raw["line_row"]).set(pl.Series(raw["line_row"] < 0), None),
            "variant": raw["variant"],
        }
    ).cast(SUBJECT_SCHEMA)  # type: ignore[arg-type]
    return frame.sort("order_row", "rule", "party", "line_row", nulls_last=False)


def _orphans_frame(raw: dict[str, Any], inventories_given: bool) -> pl.DataFrame:
    """Documents linked to no order, by document kind then row."""
    unlinked = [
        ("payment", np.flatnonzero(raw["pay_order"] < 0)),
        ("waybill", np.flatnonzero(raw["wb_linked"] == 0)),
        ("order_item", np.flatnonzero(raw["item_order"] < 0)),
    ]
    if inventories_given:
        unlinked.append(("inventory", np.flatnonzero(raw["inv_order"] < 0)))
    frames = [
        pl.DataFrame(
            {
                "document": pl.repeat(doc, len(rows), eager=True, dtype=pl.String),
                "doc_row": rows.astype(np.int64),
            }
        )
        for doc, rows in unlinked
    ]
    return pl.concat(frames).cast(ORPHAN_SCHEMA)  # type: ignore[arg-type]


def _ledger_frame(raw: dict[str, Any], tables: CanonicalTables) -> pl.DataFrame:
    """Walked (buyer, year, used) plus the input ledger rows no order touched, sorted."""
    at = np.flatnonzero(raw["ledger_buyer_row"] >= 0)
    buyers = _column_as_series(tables.orders, "buyer_id_number").gather(raw["ledger_buyer_row"][at])
    walked = pl.DataFrame(
        {"buyer_id_number": buyers, "year": raw["ledger_year"][at], "used": raw["ledger_used"][at]}
    ).cast(LEDGER_SCHEMA)  # type: ignore[arg-type]
    parts = [walked]
    if tables.quota_ledger is not None and _height(tables.quota_ledger):
        untouched = np.flatnonzero(raw["ledger_matched"] == 0)
        ledger = pl.DataFrame(
            {name: _column_as_series(tables.quota_ledger, name) for name in LEDGER_SCHEMA}
        ).cast(LEDGER_SCHEMA)  # type: ignore[arg-type]
        parts.append(ledger[untouched])
    return pl.concat(parts).sort("buyer_id_number", "year")


def _column_as_series(table: Any, name: str) -> pl.Series:
    source = _column_source(table, name)
    if isinstance(source, pl.Series):
        return source
    return pl.Series(name, source)


class KernelEngine:
    """SPEC §3 in one compiled pass (src_ext/); identical output to the reference engine."""

    name = "kernel"

    def __init__(self, *, threads: int | None = None) -> None:
        self.threads = threads or os.cpu_count() or 1
        #: Seconds spent in each kernel phase by the last run (reference_tables, link,
        #: evaluate, subjects, annual), for benchmarks and diagnostics.
        self.last_timings: dict[str, float] = {}
        #: Keep the reference tables' imported columns between runs (a stream runs many
        #: micro-batches against the same ones); off for batch runs, which run once.
        self.reuse_references = False
        self._imports: ImportCache = {}
        #: Readers of the tables that change from run to run, when reused (see `TableImport`):
        #: not of those the lookup tables are built from (`_prepared` compares their columns).
        self._readers = {
            kernel_table.name: _kernel.TableImport(kernel_table.columns, kernel_table.huge)
            for kernel_table in _KERNEL_TABLES
            if kernel_table.name not in _PREPARED_FROM
        }
        self._prepared = _kernel.PreparedReferences()  # their lookup tables, when reused
        self._last_parameters: tuple[Any, ...] | None = None

    def run_raw(self, tables: CanonicalTables, settings: RuleSettings) -> dict[str, Any]:
        """The kernel's own arrays: per order row (`reason_mask`, `payment_row`, ... as in
        ORDER_RESULT_SCHEMA, nulls as NULL_INT64), subjects, orphans and the walked ledger."""
        sizes = {name: _height(getattr(tables, name)) for name in TABLE_NAMES}
        reuse = self.reuse_references
        try:
            raw: dict[str, Any] = _kernel.run(
                _import_columns(
                    tables, self._imports if reuse else None, self._readers if reuse else None
                ),
                sizes,
                self._parameters(tables, settings) if reuse else _parameters(tables, settings),
                self.threads,
                self._prepared if reuse else None,
            )
        finally:
            if reuse:  # the tables' arrays: not kept until the next run
                for reader in self._readers.values():
                    reader.release()
        self.last_timings = dict(raw["timings"])
        return raw

    def _parameters(self, tables: CanonicalTables, settings: RuleSettings) -> dict[str, Any]:
        """`_parameters`, kept while the settings and the optional tables given stay the same
        (a stream evaluates every micro-batch with the same: working out the masks costs more
        than comparing)."""
        given = (tables.inventories is not None, tables.hs_lists is not None)
        last = self._last_parameters
        if (
            last is not None
            and last[0] == given
            and last[1] == settings.parameters
            and last[2] == settings.severity
        ):
            return last[3]  # type: ignore[no-any-return]
        parameters = _parameters(tables, settings)
        self._last_parameters = (given, settings.parameters, dict(settings.severity), parameters)
        return parameters

    def run(self, tables: CanonicalTables, settings: RuleSettings) -> EngineOutput:
        """Link, evaluate every enabled rule and walk the annual limit for every order row."""
        raw = self.run_raw(tables, settings)
        return EngineOutput(
            orders=_orders_frame(raw),
            subjects=_subjects_frame(raw["subjects"]),
            orphans=_orphans_frame(raw, tables.inventories is not None),
            ledger=_ledger_frame(raw, tables),
        )


__all__ = ["KernelEngine"]
