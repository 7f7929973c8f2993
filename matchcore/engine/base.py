"""What every engine takes and gives: canonical tables in, raw per-order results out.

Engines decide which rules fail; `matchcore.render` turns their raw output into the SPEC §4
tables (texts, masking, ordering), so every engine's outputs are formatted by one piece of code.
See docs/internals.md for the exact meaning of every column.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Protocol

import polars as pl

from ..rules import RuleSettings


@dataclass(frozen=True)
class CanonicalTables:
    """Normalised input tables (schema.py dtypes, plus `_row`); unique-key tables de-duplicated.

    `orders` also carries `_app_year` and `_app_ymd`. Optional tables are None when not given.
    """

    orders: pl.DataFrame
    order_items: pl.DataFrame
    payments: pl.DataFrame
    waybills: pl.DataFrame
    products: pl.DataFrame
    enterprises: pl.DataFrame
    inventories: pl.DataFrame | None = None
    hs_lists: pl.DataFrame | None = None
    quota_ledger: pl.DataFrame | None = None

    def __repr__(self) -> str:
        """Each table's shape only: the rows hold personal data, which is never logged, and
        Polars cannot print every datetime a table may hold."""
        shapes = ", ".join(f"{name}={_shape(getattr(self, name))}" for name in TABLE_NAMES)
        return f"CanonicalTables({shapes})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """The same in IPython's pretty printer (and hypothesis', which reports drawn tables):
        it would print a dataclass field by field."""
        printer.text(repr(self))


def _shape(table: object) -> str:
    """`<rows x columns>` of a Polars frame or an Arrow table; None as it is."""
    if table is None:
        return "None"
    if isinstance(table, pl.DataFrame):
        return f"<{table.height} rows x {table.width} columns>"
    rows, columns = getattr(table, "num_rows", "?"), getattr(table, "num_columns", "?")
    return f"<{rows} rows x {columns} columns>"


#: The names of the canonical tables, in `CanonicalTables` order.
TABLE_NAMES = tuple(field.name for field in fields(CanonicalTables))

#: (table, column) of every column the compiled kernel reads, in the order of its column index
#: (`ColumnIndex` in src_ext/context.pxd; src_ext/kernel.pyx takes its COLUMNS from here). Of the
#: document tables, these and each table's key are all the engines read: the streaming matcher
#: keeps a document's values of those columns only (matchcore/stream/matcher.py,
#: `_kept_columns`).
KERNEL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("orders", "order_no"),
    ("orders", "ebp_code"),
    ("orders", "ebc_code"),
    ("orders", "goods_value"),
    ("orders", "freight"),
    ("orders", "discount"),
    ("orders", "tax_total"),
    ("orders", "actual_paid"),
    ("orders", "currency"),
    ("orders", "buyer_id_type"),
    ("orders", "buyer_id_number"),
    ("orders", "buyer_name"),
    ("orders", "pay_code"),
    ("orders", "pay_transaction_id"),
    ("orders", "consignee"),
    ("orders", "consignee_telephone"),
    ("orders", "app_time"),
    ("orders", "_app_year"),
    ("orders", "_app_ymd"),
    ("payments", "pay_code"),
    ("payments", "pay_transaction_id"),
    ("payments", "order_no"),
    ("payments", "ebp_code"),
    ("payments", "payer_id_number"),
    ("payments", "payer_name"),
    ("payments", "amount_paid"),
    ("payments", "currency"),
    ("payments", "pay_time"),
    ("waybills", "logistics_code"),
    ("waybills", "logistics_no"),
    ("waybills", "order_no"),
    ("waybills", "ebp_code"),
    ("waybills", "consignee"),
    ("waybills", "consignee_telephone"),
    ("waybills", "app_time"),
    ("order_items", "order_no"),
    ("order_items", "ebp_code"),
    ("order_items", "item_no"),
    ("order_items", "qty"),
    ("order_items", "price"),
    ("order_items", "total_price"),
    ("inventories", "order_no"),
    ("inventories", "ebp_code"),
    ("inventories", "ebc_code"),
    ("inventories", "logistics_code"),
    ("inventories", "logistics_no"),
    ("inventories", "agent_code"),
    ("inventories", "buyer_id_number"),
    ("products", "ebc_code"),
    ("products", "item_no"),
    ("products", "hs_code"),
    ("products", "vat_rate"),
    ("products", "consumption_tax_rate"),
    ("products", "status"),
    ("products", "valid_from"),
    ("products", "valid_to"),
    ("hs_lists", "hs_prefix"),
    ("hs_lists", "list"),
    ("enterprises", "code"),
    ("enterprises", "roles"),
    ("enterprises", "credit_class"),
    ("enterprises", "status"),
    ("enterprises", "valid_from"),
    ("enterprises", "valid_to"),
    ("quota_ledger", "buyer_id_number"),
    ("quota_ledger", "year"),
    ("quota_ledger", "used"),
)

#: The compiled kernel's marker for null in its int64 outputs (INT64_MIN).
NULL_INT64 = -(2**63)

#: Schema of EngineOutput.orders: one row per canonical order row, in the same order.
ORDER_RESULT_SCHEMA: dict[str, pl.DataType] = {
    "reason_mask": pl.UInt64(),
    "order_copies": pl.Int32(),
    "payment_count": pl.Int32(),
    "waybill_count": pl.Int32(),
    "item_count": pl.Int32(),
    "payment_row": pl.Int64(),
    "waybill_row": pl.Int64(),
    "inventory_row": pl.Int64(),
    "items_total": pl.Int64(),
    "computed_tax": pl.Int64(),
    "limit_value": pl.Int64(),
    "annual_spent": pl.Int64(),
}

#: Schema of EngineOutput.subjects: one row per failed (order, rule, subject) of subject rules.
SUBJECT_SCHEMA: dict[str, pl.DataType] = {
    "order_row": pl.Int64(),
    "rule": pl.UInt8(),
    "party": pl.Int8(),
    "line_row": pl.Int64(),
    "variant": pl.UInt8(),
}

#: Schema of EngineOutput.orphans: documents linked to no order.
ORPHAN_SCHEMA: dict[str, pl.DataType] = {
    "document": pl.String(),  # "payment" | "waybill" | "order_item" | "inventory"
    "doc_row": pl.Int64(),  # 0-based position in that canonical table
}

#: Schema of EngineOutput.ledger: the updated quota ledger (SPEC §3.1).
LEDGER_SCHEMA: dict[str, pl.DataType] = {
    "buyer_id_number": pl.String(),
    "year": pl.Int64(),
    "used": pl.Int64(),
}


@dataclass(frozen=True)
class EngineOutput:
    """Raw engine results; columns and meanings in docs/internals.md."""

    orders: pl.DataFrame
    subjects: pl.DataFrame
    orphans: pl.DataFrame
    ledger: pl.DataFrame


class Engine(Protocol):
    """An implementation of SPEC §3."""

    name: str

    def run(self, tables: CanonicalTables, settings: RuleSettings) -> EngineOutput: ...
