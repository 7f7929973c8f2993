"""A builder of canonical input tables for the rule tests: a baseline order that passes every
rule (with its payment, waybill, line, product and filings), plus overrides per test.

Money is written as CNY text and converted exactly; times are Asia/Shanghai wall-clock texts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest

import matchcore
from matchcore.api import match_tables
from matchcore.engine.base import CanonicalTables
from matchcore.normalise import order_dates
from matchcore.result import MatchResult
from matchcore.rules import RuleSettings
from matchcore.schema import (
    ENTERPRISES,
    HS_LISTS,
    INVENTORIES,
    ORDER_ITEMS,
    ORDERS,
    PAYMENTS,
    PRODUCTS,
    QUOTA_LEDGER,
    ROLE_BITS,
    ROW,
    WAYBILLS,
    Table,
)

CHINA = ZoneInfo("Asia/Shanghai")
UTC = ZoneInfo("UTC")

#: A valid GB 11643 resident ID (check character X), born 1949-12-31.
BUYER_ID = "11010519491231002X"


def cny(amount: str) -> int:
    """CNY text -> ten-thousandths."""
    return int(Decimal(amount) * 10_000)


def at(local: str) -> datetime:
    """Asia/Shanghai wall-clock text -> aware UTC datetime."""
    return datetime.fromisoformat(local).replace(tzinfo=CHINA).astimezone(UTC)


def order(**overrides: Any) -> dict[str, Any]:
    """Baseline order O1: goods 100.00 + freight 10.00 + tax 10.01 = paid 120.01."""
    row = {
        "order_no": "O1",
        "ebp_code": "EBP1",
        "ebc_code": "EBC1",
        "goods_value": cny("100"),
        "freight": cny("10"),
        "discount": 0,
        "tax_total": cny("10.01"),
        "actual_paid": cny("120.01"),
        "currency": "142",
        "buyer_id_type": "1",
        "buyer_id_number": BUYER_ID,
        "buyer_name": "张三",
        "buyer_telephone": "13800000001",
        "pay_code": "PAY1",
        "pay_transaction_id": "T1",
        "consignee": "张三",
        "consignee_telephone": "138-0000-0001",
        "consignee_address": "北京市",
        "app_time": at("2025-03-01 10:00:00"),
    }
    row.update(overrides)
    return row


def item(**overrides: Any) -> dict[str, Any]:
    """Baseline line 1 of O1: 2 × 50.00 = 100.00 of SKU1."""
    row = {
        "order_no": "O1",
        "ebp_code": "EBP1",
        "gnum": 1,
        "item_no": "SKU1",
        "qty": 2 * 10_000,
        "price": cny("50"),
        "total_price": cny("100"),
    }
    row.update(overrides)
    return row


def payment(**overrides: Any) -> dict[str, Any]:
    row = {
        "pay_code": "PAY1",
        "pay_transaction_id": "T1",
        "order_no": "O1",
        "ebp_code": "EBP1",
        "payer_id_type": "1",
        "payer_id_number": BUYER_ID,
        "payer_name": "张三",
        "amount_paid": cny("120.01"),
        "currency": "142",
        "pay_time": at("2025-03-01 10:05:00"),
    }
    row.update(overrides)
    return row


def waybill(**overrides: Any) -> dict[str, Any]:
    row = {
        "logistics_code": "LOG1",
        "logistics_no": "W1",
        "order_no": "O1",
        "ebp_code": "EBP1",
        "consignee": "张三",
        "consignee_telephone": "13800000001",
        "app_time": at("2025-03-01 12:00:00"),
    }
    row.update(overrides)
    return row


def inventory(**overrides: Any) -> dict[str, Any]:
    row = {
        "order_no": "O1",
        "ebp_code": "EBP1",
        "ebc_code": "EBC1",
        "logistics_code": "LOG1",
        "logistics_no": "W1",
        "agent_code": "AGT1",
        "trade_mode": "9610",
        "buyer_id_number": BUYER_ID,
        "app_time": at("2025-03-01 13:00:00"),
    }
    row.update(overrides)
    return row


def product(**overrides: Any) -> dict[str, Any]:
    """SKU1 of EBC1: HS 0401100000, VAT 13 %, no consumption tax."""
    row = {
        "ebc_code": "EBC1",
        "item_no": "SKU1",
        "hs_code": "0401100000",
        "vat_rate": 0.13,
        "consumption_tax_rate": 0.0,
        "status": "active",
    }
    row.update(overrides)
    return row


def enterprise(code: str, *roles: str, **overrides: Any) -> dict[str, Any]:
    row = {
        "code": code,
        "roles": sum(ROLE_BITS[r] for r in roles),
        "credit_class": "general",
        "status": "active",
    }
    row.update(overrides)
    return row


def filings() -> list[dict[str, Any]]:
    return [
        enterprise("EBP1", "ebp"),
        enterprise("EBC1", "ebc"),
        enterprise("PAY1", "pay"),
        enterprise("LOG1", "logistics"),
        enterprise("AGT1", "agent"),
    ]


def frame(table: Table, rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Canonical frame of `table` from rows (absent columns null, `_row` 1-based)."""
    schema = table.polars_schema()
    data = [{**{c: None for c in schema}, **r, ROW: i + 1} for i, r in enumerate(rows)]
    return pl.DataFrame(data, schema=schema, orient="row")


def orders_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return frame(ORDERS, rows).with_columns(order_dates(pl.col("app_time")))


#: Input table name -> attribute of Case.
TABLE_ROWS = {
    "orders": "orders",
    "order_items": "items",
    "payments": "payments",
    "waybills": "waybills",
    "products": "products",
    "enterprises": "enterprises",
    "inventories": "inventories",
    "hs_lists": "hs_lists",
    "quota_ledger": "quota_ledger",
}
MONEY_COLUMNS = {
    "goods_value",
    "freight",
    "discount",
    "tax_total",
    "actual_paid",
    "price",
    "total_price",
    "amount_paid",
    "insured_fee",
    "used",
    "qty",
}


def as_raw(column: str, value: Any) -> Any:
    """One canonical value as input text: money/qty in CNY, times naive in China time."""
    if value is None:
        return None
    if column in MONEY_COLUMNS:
        return str(Decimal(value) / 10_000)
    if isinstance(value, datetime):
        return value.astimezone(CHINA).replace(tzinfo=None).isoformat(sep=" ")
    if column == "roles":
        return ",".join(role for role, bit in ROLE_BITS.items() if value & bit)
    return value


@dataclass
class Case:
    """Rows of every table; `run()` matches them with the reference engine."""

    orders: list[dict[str, Any]] = field(default_factory=lambda: [order()])
    items: list[dict[str, Any]] = field(default_factory=lambda: [item()])
    payments: list[dict[str, Any]] = field(default_factory=lambda: [payment()])
    waybills: list[dict[str, Any]] = field(default_factory=lambda: [waybill()])
    products: list[dict[str, Any]] = field(default_factory=lambda: [product()])
    enterprises: list[dict[str, Any]] = field(default_factory=filings)
    inventories: list[dict[str, Any]] | None = None
    hs_lists: list[dict[str, Any]] | None = None
    quota_ledger: list[dict[str, Any]] | None = None

    def tables(self) -> CanonicalTables:
        def optional(table: Table, rows: list[dict[str, Any]] | None) -> pl.DataFrame | None:
            return None if rows is None else frame(table, rows)

        return CanonicalTables(
            orders=orders_frame(self.orders),
            order_items=frame(ORDER_ITEMS, self.items),
            payments=frame(PAYMENTS, self.payments),
            waybills=frame(WAYBILLS, self.waybills),
            products=frame(PRODUCTS, self.products),
            enterprises=frame(ENTERPRISES, self.enterprises),
            inventories=optional(INVENTORIES, self.inventories),
            hs_lists=optional(HS_LISTS, self.hs_lists),
            quota_ledger=optional(QUOTA_LEDGER, self.quota_ledger),
        )

    def raw_tables(self) -> dict[str, pl.DataFrame]:
        """The rows as a user would give them: money as CNY text, naive China times, roles as
        comma-separated text (for runs through `matchcore.match`, normalisation included)."""
        raw: dict[str, pl.DataFrame] = {}
        for name, attribute in TABLE_ROWS.items():
            rows = getattr(self, attribute)
            if rows is not None:
                raw[name] = pl.DataFrame([{k: as_raw(k, v) for k, v in r.items()} for r in rows])
        return raw

    def match(self, **options: Any) -> MatchResult:
        """`matchcore.match` on `raw_tables()` with the reference engine."""
        return matchcore.match(**self.raw_tables(), engine="reference", **options)

    def run(
        self, settings: RuleSettings | None = None, *, mask_identity: bool = True
    ) -> MatchResult:
        return match_tables(
            self.tables(), settings, engine="reference", mask_identity=mask_identity
        )


def complete_orders(*specs: dict[str, Any]) -> Case:
    """A case with one complete order per spec of order overrides: each gets its own payment,
    waybill and line (same amounts as the baseline), times equal to its app_time."""
    case = Case(orders=[], items=[], payments=[], waybills=[])
    for spec in specs:
        head = order(**spec)
        key = {"order_no": head["order_no"], "ebp_code": head["ebp_code"]}
        transaction = f"T-{head['ebp_code']}-{head['order_no']}"
        head["pay_transaction_id"] = transaction
        case.orders.append(head)
        case.items.append(item(**key))
        case.payments.append(
            payment(
                **key,
                pay_transaction_id=transaction,
                pay_time=head["app_time"],
                payer_id_number=head["buyer_id_number"],
            )
        )
        case.waybills.append(
            waybill(
                **key,
                logistics_no=f"W-{head['ebp_code']}-{head['order_no']}",
                app_time=head["app_time"],
            )
        )
    return case


def severities(**levels: str) -> RuleSettings:
    return RuleSettings.from_overrides(levels)


def reasons(result: MatchResult, row: int = 0) -> list[str]:
    """Failed rule codes of one order row."""
    return list(result.verdicts["reasons"][row])


def exception_rows(result: MatchResult, rule: str) -> list[dict[str, Any]]:
    """(subject, field, expected, actual) rows of one rule."""
    rows = result.exceptions.filter(pl.col("rule") == rule)
    return rows.select("order_no", "subject", "field", "expected", "actual").to_dicts()


def valid_resident_id(first17: str) -> str:
    """A resident ID number with its GB 11643 check character, computed here by hand rules."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(first17, weights, strict=True))
    return first17 + "10X98765432"[total % 11]


@pytest.fixture
def kit() -> SimpleNamespace:
    """The builder helpers, for test modules (import-mode=importlib cannot import conftest)."""
    return SimpleNamespace(
        Case=Case,
        order=order,
        item=item,
        payment=payment,
        waybill=waybill,
        inventory=inventory,
        product=product,
        enterprise=enterprise,
        filings=filings,
        cny=cny,
        at=at,
        severities=severities,
        reasons=reasons,
        exception_rows=exception_rows,
        valid_resident_id=valid_resident_id,
        BUYER_ID=BUYER_ID,
        complete_orders=complete_orders,
    )
