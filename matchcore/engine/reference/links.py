"""Document linking of SPEC §2 for the reference engine: which payments, waybills, lines and
inventories belong to each order row, the per-order counts, the orphans, and the "wide" order
frame that carries the fields of the single linked payment, waybill and inventory.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from ...schema import INVENTORIES
from ..base import ORPHAN_SCHEMA, CanonicalTables

ORDER_KEY = ["ebp_code", "order_no"]
LOGISTICS_KEY = ["logistics_code", "logistics_no"]

#: Prefixes of the linked documents' columns in the wide order frame.
PAY, WAYBILL, INVENTORY = "pay.", "wb.", "inv."


def with_position(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    """`frame` with its 0-based row position as an Int64 column `name`."""
    return frame.with_row_index(name).with_columns(pl.col(name).cast(pl.Int64))


def waybill_edges(tables: CanonicalTables) -> pl.DataFrame:
    """(doc_row, ebp_code, order_no) for every order key each waybill names.

    A waybill that carries any part of an order key links by that key only; one that carries
    none links through every inventory naming its (logistics_code, logistics_no).
    """
    waybills = with_position(tables.waybills, "doc_row")
    names_order = pl.col("order_no").is_not_null() | pl.col("ebp_code").is_not_null()
    direct = waybills.filter(names_order).select("doc_row", *ORDER_KEY)
    if tables.inventories is None:
        return direct
    via_inventory = (
        waybills.filter(~names_order)
        .select("doc_row", *LOGISTICS_KEY)
        .join(tables.inventories.select(*LOGISTICS_KEY, *ORDER_KEY), on=LOGISTICS_KEY)
        .select("doc_row", *ORDER_KEY)
    )
    return pl.concat([direct, via_inventory])


def document_edges(frame: pl.DataFrame, *extra: str) -> pl.DataFrame:
    """(doc_row, ebp_code, order_no, *extra) of a table that links by its own order key."""
    return with_position(frame, "doc_row").select("doc_row", *ORDER_KEY, *extra)


def with_key_id(edges: pl.DataFrame, keys: pl.DataFrame) -> pl.DataFrame:
    """`edges` with the `key_id` of the order key they name (null: no such order)."""
    return edges.join(keys, on=ORDER_KEY, how="left").drop(ORDER_KEY)


def link_counts(edges: pl.DataFrame, prefix: str) -> pl.DataFrame:
    """Per key_id: how many documents link (`<prefix>_count`) and the first one's position."""
    return (
        edges.filter(pl.col("key_id").is_not_null())
        .group_by("key_id")
        .agg(
            pl.len().cast(pl.Int32).alias(f"{prefix}_count"),
            pl.col("doc_row").min().alias(f"{prefix}_first"),
        )
    )


def single_row(count: str, first: str) -> pl.Expr:
    """The linked document's position when exactly one links, else null."""
    return pl.when(pl.col(count) == 1).then(pl.col(first)).otherwise(None)


def unlinked(edges: pl.DataFrame, rows: int, document: str) -> pl.DataFrame:
    """(document, doc_row) of the rows of a table none of whose edges reach an order."""
    linked = edges.filter(pl.col("key_id").is_not_null()).select("doc_row")
    every = pl.DataFrame({"doc_row": pl.int_range(0, rows, eager=True, dtype=pl.Int64)})
    return (
        every.join(linked.unique(), on="doc_row", how="anti")
        .sort("doc_row")
        .select(pl.lit(document).alias("document"), "doc_row")
    )


@dataclass(frozen=True)
class Links:
    """Order rows with their link columns, their lines, and the orphan documents."""

    orders: pl.DataFrame  # order rows + order_row, key_id and the link columns
    lines: pl.DataFrame  # (line_row, key_id, order line columns) of lines that reach an order
    orphans: pl.DataFrame  # EngineOutput.orphans


def link_documents(tables: CanonicalTables, inventory_rules: bool) -> Links:
    """Link every document to the order rows (docs/internals.md "Linking").

    Order keys get a dense integer `key_id` once, so every later join is on one integer.
    Adds `order_row`, `key_id`, `order_copies`, `payment_count`/`payment_row`,
    `waybill_count`/`waybill_row`, `item_count`, `items_total` and `inventory_row`.
    """
    orders = with_position(tables.orders, "order_row")
    grouped = orders.group_by(ORDER_KEY).agg(
        pl.col("order_row"), pl.len().cast(pl.Int32).alias("order_copies")
    )
    keys = with_position(grouped, "key_id")
    row_keys = keys.select("order_row", "key_id", "order_copies").explode("order_row")
    orders = orders.join(row_keys, on="order_row", how="left")
    keys = keys.select(*ORDER_KEY, "key_id")
    payments = with_key_id(document_edges(tables.payments), keys)
    waybills = with_key_id(waybill_edges(tables), keys)
    line_columns = ("gnum", "item_no", "qty", "price", "total_price")
    items = with_key_id(document_edges(tables.order_items, *line_columns), keys)
    item_totals = (
        items.filter(pl.col("key_id").is_not_null())
        .group_by("key_id")
        .agg(
            pl.len().cast(pl.Int32).alias("item_count"),
            pl.col("total_price").sum().alias("items_total"),
        )
    )
    orders = (
        orders.join(link_counts(payments, "payment"), on="key_id", how="left")
        .join(link_counts(waybills, "waybill"), on="key_id", how="left")
        .join(item_totals, on="key_id", how="left")
    )
    orphan_parts = [
        unlinked(payments, tables.payments.height, "payment"),
        unlinked(waybills, tables.waybills.height, "waybill"),
        unlinked(items, tables.order_items.height, "order_item"),
    ]
    if tables.inventories is not None:
        inventories = with_key_id(document_edges(tables.inventories), keys)
        orphan_parts.append(unlinked(inventories, tables.inventories.height, "inventory"))
    if inventory_rules and tables.inventories is not None:
        found = inventories.filter(pl.col("key_id").is_not_null()).rename(
            {"doc_row": "inventory_row"}
        )
        orders = orders.join(found, on="key_id", how="left")
    else:
        orders = orders.with_columns(pl.lit(None, pl.Int64).alias("inventory_row"))
    orders = orders.sort("order_row").with_columns(
        pl.col("payment_count", "waybill_count", "item_count").fill_null(0),
        single_row("payment_count", "payment_first").alias("payment_row"),
        single_row("waybill_count", "waybill_first").alias("waybill_row"),
    )
    return Links(
        orders=orders.drop("payment_first", "waybill_first"),
        lines=items.filter(pl.col("key_id").is_not_null()).rename({"doc_row": "line_row"}),
        orphans=pl.concat(orphan_parts).cast(ORPHAN_SCHEMA),  # type: ignore[arg-type]
    )


def attach_documents(orders: pl.DataFrame, tables: CanonicalTables) -> pl.DataFrame:
    """The orders with the columns of their single payment, waybill and inventory, prefixed
    `pay.`, `wb.`, `inv.` (null when there is no single such document)."""
    wide = orders
    attached = (
        (tables.payments, "payment_row", PAY),
        (tables.waybills, "waybill_row", WAYBILL),
        (tables.inventories, "inventory_row", INVENTORY),
    )
    for frame, position, prefix in attached:
        if frame is None:  # an absent optional table: its columns are null
            absent = INVENTORIES.polars_schema()
            wide = wide.with_columns(pl.lit(None, t).alias(prefix + c) for c, t in absent.items())
            continue
        prefixed = with_position(frame, position).rename({c: prefix + c for c in frame.columns})
        wide = wide.join(prefixed, on=position, how="left")
    return wide.sort("order_row")
