"""Document linking of SPEC §2 for the reference engine: which payments, waybills, lines and
inventories belong to each order row, the per-order counts, the orphans, and the "wide" order
frame that carries the fields of the single linked payment, waybill and inventory.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from ...schema import INVENTORIES, PAYMENTS, WAYBILLS
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
    """`edges` with the `key_id` of the order key they name (null: no such order).

    Matched on a 64-bit hash of the key (one integer join instead of two string columns, about
    twice as fast), then confirmed on the key itself, so a hash collision cannot link wrongly.
    """
    digest = pl.struct(ORDER_KEY).hash().alias("_digest")
    edges = edges.with_row_index("_edge")  # a waybill may have several edges: match each one
    candidates = edges.select("_edge", *ORDER_KEY, digest).join(
        keys.select(*ORDER_KEY, "key_id", digest), on="_digest", suffix="_key"
    )
    same_key = (pl.col("ebp_code") == pl.col("ebp_code_key")) & (
        pl.col("order_no") == pl.col("order_no_key")
    )
    confirmed = candidates.filter(same_key).select("_edge", "key_id")
    return (
        edges.drop(ORDER_KEY)
        .join(confirmed, on="_edge", how="left", maintain_order="left")
        .drop("_edge")
    )


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
    grouped = orders.select("order_row", *ORDER_KEY).group_by(ORDER_KEY)
    keys = with_position(
        grouped.agg(pl.col("order_row"), pl.len().cast(pl.Int32).alias("order_copies")), "key_id"
    )
    key_ids = keys.select(*ORDER_KEY, "key_id")
    payments = with_key_id(document_edges(tables.payments), key_ids)
    waybills = with_key_id(waybill_edges(tables), key_ids)
    line_columns = ("gnum", "item_no", "qty", "price", "total_price")
    items = with_key_id(document_edges(tables.order_items, *line_columns), key_ids)
    item_totals = (
        items.filter(pl.col("key_id").is_not_null())
        .group_by("key_id")
        .agg(
            pl.len().cast(pl.Int32).alias("item_count"),
            pl.col("total_price").sum().alias("items_total"),
        )
    )
    # Link columns are worked out per key on a narrow frame, then spread to the order rows.
    per_key = (
        keys.select("key_id", "order_row", "order_copies")
        .join(link_counts(payments, "payment"), on="key_id", how="left")
        .join(link_counts(waybills, "waybill"), on="key_id", how="left")
        .join(item_totals, on="key_id", how="left")
    )
    orphan_parts = [
        unlinked(payments, tables.payments.height, "payment"),
        unlinked(waybills, tables.waybills.height, "waybill"),
        unlinked(items, tables.order_items.height, "order_item"),
    ]
    if tables.inventories is not None:
        inventories = with_key_id(document_edges(tables.inventories), key_ids)
        orphan_parts.append(unlinked(inventories, tables.inventories.height, "inventory"))
    if inventory_rules and tables.inventories is not None:
        found = inventories.filter(pl.col("key_id").is_not_null()).rename(
            {"doc_row": "inventory_row"}
        )
        per_key = per_key.join(found, on="key_id", how="left")
    else:
        per_key = per_key.with_columns(pl.lit(None, pl.Int64).alias("inventory_row"))
    per_row = (
        per_key.explode("order_row")
        .sort("order_row")
        .with_columns(
            pl.col("payment_count", "waybill_count", "item_count").fill_null(0),
            single_row("payment_count", "payment_first").alias("payment_row"),
            single_row("waybill_count", "waybill_first").alias("waybill_row"),
        )
        .drop("order_row", "payment_first", "waybill_first")
    )
    orders = pl.concat([orders, per_row], how="horizontal")
    return Links(
        orders=orders,
        lines=items.filter(pl.col("key_id").is_not_null()).rename({"doc_row": "line_row"}),
        orphans=pl.concat(orphan_parts).cast(ORPHAN_SCHEMA),  # type: ignore[arg-type]
    )


#: Columns of the single linked documents that rules and outputs read.
ATTACHED_COLUMNS: dict[str, tuple[str, ...]] = {
    PAY: (
        "pay_code",
        "pay_transaction_id",
        "payer_id_number",
        "payer_name",
        "amount_paid",
        "currency",
        "pay_time",
    ),
    WAYBILL: (
        "logistics_code",
        "logistics_no",
        "consignee",
        "consignee_telephone",
        "app_time",
    ),
    INVENTORY: ("ebc_code", "buyer_id_number", "logistics_code", "logistics_no", "agent_code"),
}


def attach_documents(orders: pl.DataFrame, tables: CanonicalTables) -> pl.DataFrame:
    """The orders with the columns of their single payment, waybill and inventory, prefixed
    `pay.`, `wb.`, `inv.` (null when there is no single such document, or no such table)."""
    attached = (
        (tables.payments, "payment_row", PAY, PAYMENTS),
        (tables.waybills, "waybill_row", WAYBILL, WAYBILLS),
        (tables.inventories, "inventory_row", INVENTORY, INVENTORIES),
    )
    parts = [orders]
    for frame, position, prefix, table in attached:
        columns = ATTACHED_COLUMNS[prefix]
        if frame is None:
            schema = table.polars_schema()
            nulls = [pl.lit(None, schema[c]).alias(prefix + c) for c in columns]
            parts.append(orders.select("order_row").with_columns(nulls).drop("order_row"))
            continue
        # a null position gathers a null row
        rows = frame.select([pl.col(c).gather(orders[position]).alias(prefix + c) for c in columns])
        parts.append(rows)
    return pl.concat(parts, how="horizontal")
