"""What every engine takes and gives: canonical tables in, raw per-order results out.

Engines decide which rules fail; `matchcore.render` turns their raw output into the SPEC §4
tables (texts, masking, ordering), so every engine's outputs are formatted by one piece of code.
See docs/internals.md for the exact meaning of every column.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Protocol

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


#: The names of the canonical tables, in `CanonicalTables` order.
TABLE_NAMES = tuple(field.name for field in fields(CanonicalTables))

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
