"""Fixtures for normalisation tests: minimal valid raw rows per table, as text like a CSV."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl
import pytest

from matchcore.schema import TABLES, Kind

#: One valid raw row per table (required columns only, all text).
VALID_ROWS: dict[str, dict[str, str]] = {
    "orders": {
        "order_no": "O1",
        "ebp_code": "EBP1",
        "ebc_code": "EBC1",
        "goods_value": "100.00",
        "freight": "10",
        "tax_total": "0",
        "actual_paid": "110",
        "buyer_id_number": "110105194912310025",
        "buyer_name": "张三",
        "consignee": "李四",
        "app_time": "2024-03-01 10:00:00",
    },
    "order_items": {
        "order_no": "O1",
        "ebp_code": "EBP1",
        "gnum": "1",
        "item_no": "I1",
        "qty": "1",
        "price": "100",
        "total_price": "100",
    },
    "payments": {
        "pay_code": "PAY1",
        "pay_transaction_id": "T1",
        "order_no": "O1",
        "ebp_code": "EBP1",
        "payer_id_number": "110105194912310025",
        "payer_name": "张三",
        "amount_paid": "110",
        "pay_time": "2024-03-01 10:05:00",
    },
    "waybills": {
        "logistics_code": "LOG1",
        "logistics_no": "W1",
        "consignee": "李四",
        "app_time": "2024-03-01 11:00:00",
    },
    "inventories": {
        "order_no": "O1",
        "ebp_code": "EBP1",
        "ebc_code": "EBC1",
        "logistics_code": "LOG1",
        "logistics_no": "W1",
        "agent_code": "AG1",
        "trade_mode": "9610",
        "buyer_id_number": "110105194912310025",
        "app_time": "2024-03-01 12:00:00",
    },
    "products": {
        "ebc_code": "EBC1",
        "item_no": "I1",
        "hs_code": "3304990099",
        "vat_rate": "0.13",
        "consumption_tax_rate": "0.15",
        "status": "active",
    },
    "hs_lists": {"hs_prefix": "3304", "list": "positive"},
    "enterprises": {
        "code": "EBP1",
        "roles": "ebp",
        "credit_class": "general",
        "status": "active",
    },
    "quota_ledger": {"buyer_id_number": "110105194912310025", "year": "2024", "used": "0"},
}

RawFactory = Callable[..., pl.DataFrame]


@pytest.fixture
def make_raw() -> RawFactory:
    """Build a raw text frame of `table`: one row per override dict over the valid row."""

    def build(
        table: str, *overrides: dict[str, str | None], **columns: list[object]
    ) -> pl.DataFrame:
        if columns:
            return pl.DataFrame(columns)
        rows = [{**VALID_ROWS[table], **o} for o in (overrides or ({},))]
        names = list(dict.fromkeys(k for row in rows for k in row))
        return pl.DataFrame(
            {name: [row.get(name) for row in rows] for name in names},
            schema={name: pl.String for name in names},
        )

    return build


@pytest.fixture
def column_frame() -> Callable[..., pl.DataFrame]:
    """A raw frame of `table` with valid text rows and `column` replaced by `values`."""

    def build(
        table: str, column: str, values: list[object], dtype: pl.DataType | None = None
    ) -> pl.DataFrame:
        base = {k: [v] * len(values) for k, v in VALID_ROWS[table].items()}
        spec = TABLES[table]
        if spec.unique:  # distinct keys, so no row is a duplicate of another
            distinct = next(
                k for k in spec.key if k != column and spec.column(k).kind is not Kind.INT
            )
            base[distinct] = [f"{base[distinct][0]}-{i}" for i in range(len(values))]
        frame = pl.DataFrame(base, schema={k: pl.String for k in base})
        return frame.with_columns(pl.Series(column, values, dtype=dtype, strict=False))

    return build
