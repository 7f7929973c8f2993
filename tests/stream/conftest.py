"""Streaming test kit: reference tables, document factories, a hand-moved clock, a matcher
factory. Tests reach the helpers through the `kit` fixture; `final_documents` and
`batch_verdicts` (what batch says of a stream's final documents) and `failing_fsync` are
imported."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import polars as pl
import pytest

import matchcore
from matchcore import schema
from matchcore.rules import RuleSettings
from matchcore.stream.matcher import References

# Valid GB 11643 resident ID numbers (17 digits and their check character).
BUYER_IDS = ("11010519491231002X", "440524188001010014")

EBP, EBC, PAY, LOGISTICS, AGENT = "EBP001", "EBC001", "PAY001", "LOG001", "AGT001"


def resident_id(serial: int) -> str:
    """A valid GB 11643 resident ID number (born 1990-01-01) for buyer `serial` (< 1000)."""
    body = f"11010519900101{serial:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


def write_references(directory: Any) -> None:
    """The reference tables as CSV files with their standard names."""
    directory.mkdir(parents=True, exist_ok=True)
    products_frame().write_csv(directory / "products.csv")
    enterprises_frame().write_csv(directory / "enterprises.csv")
    hs_lists_frame().write_csv(directory / "hs_lists.csv")


def products_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ebc_code": [EBC, EBC, EBC],
            "item_no": ["SKU1", "SKU2", "SKU3"],
            "hs_code": ["3304990000", "1901101000", "9999999999"],
            "vat_rate": ["0.13", "0.13", "0.13"],
            "consumption_tax_rate": ["0", "0", "0.15"],
            "status": ["active", "active", "revoked"],
        }
    )


def enterprises_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "code": [EBP, EBC, PAY, LOGISTICS, AGENT],
            "roles": ["ebp", "ebc", "pay", "logistics", "agent"],
            "credit_class": ["general"] * 5,
            "status": ["active"] * 5,
        }
    )


def hs_lists_frame() -> pl.DataFrame:
    return pl.DataFrame({"hs_prefix": ["3304", "1901"], "list": ["positive", "positive"]})


def order_msg(
    order_no: str,
    *,
    buyer: str = BUYER_IDS[0],
    goods: str = "100",
    freight: str = "10",
    tax: str = "10.01",
    paid: str | None = None,
    app_time: str = "2024-03-01 10:00:00",
    revision: int = 0,
    op: str = "upsert",
    item_no: str = "SKU1",
) -> dict[str, Any]:
    paid = paid if paid is not None else str(Decimal(goods) + Decimal(freight) + Decimal(tax))
    return {
        "doc_type": "order",
        "op": op,
        "revision": revision,
        "order_no": order_no,
        "ebp_code": EBP,
        "ebc_code": EBC,
        "goods_value": goods,
        "freight": freight,
        "tax_total": tax,
        "actual_paid": paid,
        "buyer_id_number": buyer,
        "buyer_name": "Li Lei",
        "consignee": "Li Lei",
        "app_time": app_time,
        "items": [
            {"gnum": 1, "item_no": item_no, "qty": "1", "price": goods, "total_price": goods}
        ],
    }


def payment_msg(
    order_no: str,
    *,
    amount: str = "120.01",
    tx: str | None = None,
    buyer: str = BUYER_IDS[0],
    revision: int = 0,
    op: str = "upsert",
) -> dict[str, Any]:
    return {
        "doc_type": "payment",
        "op": op,
        "revision": revision,
        "pay_code": PAY,
        "pay_transaction_id": tx or f"T-{order_no}",
        "order_no": order_no,
        "ebp_code": EBP,
        "payer_id_number": buyer,
        "payer_name": "Li Lei",
        "amount_paid": amount,
        "pay_time": "2024-03-01 10:05:00",
    }


def waybill_msg(
    order_no: str, *, consignee: str = "Li Lei", revision: int = 0, op: str = "upsert"
) -> dict[str, Any]:
    return {
        "doc_type": "waybill",
        "op": op,
        "revision": revision,
        "logistics_code": LOGISTICS,
        "logistics_no": f"L-{order_no}",
        "order_no": order_no,
        "ebp_code": EBP,
        "consignee": consignee,
        "app_time": "2024-03-01 11:00:00",
    }


class FakeClock:
    """A processing-time clock the test moves by hand."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def feed_all(matcher: Any, messages: list[dict[str, Any]]) -> list[Any]:
    """Feed mappings as JSON bytes; returns the FeedResults."""
    import msgspec

    return [matcher.feed(msgspec.json.encode(m)) for m in messages]


def complete_set(order_no: str, **order_options: Any) -> list[dict[str, Any]]:
    """Order, payment and waybill of one order that passes every rule by default."""
    return [order_msg(order_no, **order_options), payment_msg(order_no), waybill_msg(order_no)]


def inventory_msg(order_no: str, *, buyer: str = BUYER_IDS[0], revision: int = 0) -> dict[str, Any]:
    return {
        "doc_type": "inventory",
        "revision": revision,
        "order_no": order_no,
        "ebp_code": EBP,
        "ebc_code": EBC,
        "logistics_code": LOGISTICS,
        "logistics_no": f"L-{order_no}",
        "agent_code": AGENT,
        "trade_mode": "9610",
        "buyer_id_number": buyer,
        "app_time": "2024-03-01 12:00:00",
    }


@pytest.fixture(scope="session")
def references() -> References:
    return References.from_frames(products_frame(), enterprises_frame(), hs_lists=hs_lists_frame())


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def make_matcher(references: References, clock: FakeClock) -> Any:
    """A StreamMatcher on the reference engine with the test clock (keyword overrides)."""
    from matchcore.stream.matcher import StreamMatcher

    def build(**options: Any) -> StreamMatcher:
        options.setdefault("engine", "reference")
        options.setdefault("clock", clock)
        return StreamMatcher(references, **options)

    return build


@pytest.fixture(scope="session")
def kit() -> SimpleNamespace:
    return SimpleNamespace(
        BUYER_IDS=BUYER_IDS,
        resident_id=resident_id,
        write_references=write_references,
        EBP=EBP,
        order_msg=order_msg,
        payment_msg=payment_msg,
        waybill_msg=waybill_msg,
        inventory_msg=inventory_msg,
        complete_set=complete_set,
        feed_all=feed_all,
        products_frame=products_frame,
        enterprises_frame=enterprises_frame,
        hs_lists_frame=hs_lists_frame,
        FakeClock=FakeClock,
    )


def final_documents(feed: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per document type, the newest revision of each key that is not cancelled."""
    keys = {
        "order": ("ebp_code", "order_no"),
        "payment": ("pay_code", "pay_transaction_id"),
        "waybill": ("logistics_code", "logistics_no"),
    }
    newest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for message in feed:
        key = (message["doc_type"], *(message[k] for k in keys[message["doc_type"]]))
        if key not in newest or message["revision"] > newest[key]["revision"]:
            newest[key] = message
    final: dict[str, list[dict[str, Any]]] = {kind: [] for kind in keys}
    for (kind, *_), message in sorted(newest.items()):
        if message.get("op", "upsert") != "cancel":
            final[kind].append(message)
    return final


def failing_fsync(
    monkeypatch: pytest.MonkeyPatch, fails: Callable[[str], bool], code: int = errno.EIO
) -> None:
    """Make `os.fsync` raise OSError(`code`) for a file whose path `fails`; others sync."""
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if fails(os.readlink(f"/proc/self/fd/{fd}")):
            raise OSError(code, os.strerror(code))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def _frame(rows: list[dict[str, Any]], table: schema.Table) -> pl.DataFrame:
    types = {
        c.name: (pl.Int64() if c.kind == schema.Kind.INT else pl.String()) for c in table.columns
    }
    return pl.DataFrame({name: [row.get(name) for row in rows] for name in types}, schema=types)


def batch_verdicts(
    final: dict[str, list[dict[str, Any]]],
    kit: Any,
    ledger: pl.DataFrame | None = None,
    rules: RuleSettings | None = None,
) -> dict[str, tuple]:
    """Per order number, (verdict, reasons, reason mask) of batch on these final documents."""
    items = [
        dict(item, order_no=order["order_no"], ebp_code=order["ebp_code"])
        for order in final["order"]
        for item in order["items"]
    ]
    result = matchcore.match(
        orders=_frame(final["order"], schema.ORDERS),
        order_items=_frame(items, schema.ORDER_ITEMS),
        payments=_frame(final["payment"], schema.PAYMENTS),
        waybills=_frame(final["waybill"], schema.WAYBILLS),
        products=kit.products_frame(),
        enterprises=kit.enterprises_frame(),
        hs_lists=kit.hs_lists_frame(),
        quota_ledger=ledger,
        rules=rules if rules is not None else RuleSettings(),
        engine="reference",
    )
    return {
        row["order_no"]: (row["verdict"], tuple(row["reasons"]), int(row["reason_mask"]))
        for row in result.verdicts.iter_rows(named=True)
    }
