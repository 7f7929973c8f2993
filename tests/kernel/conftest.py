"""Fixtures for the kernel tests: small random canonical tables that stress linking (shared and
duplicated keys, nulls, orphans) and rule boundaries, and exact comparison of engine outputs.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta

import polars as pl
import polars.selectors as cs
import pyarrow as pa
import pytest
from hypothesis import note
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from matchcore.engine.base import CanonicalTables, EngineOutput
from matchcore.normalise import order_dates
from matchcore.rules import SEVERITIES, Rule, RuleSettings
from matchcore.schema import TABLES

UTC = UTC
EBP = ["E1", "E2"]
ORDER_NO = ["A", "B", "C", "ORDER-000000000000001"]  # one longer than a 12-byte inline view
ITEMS = ["I1", "I2", "SKU-0000000000042"]
EBC = ["C1", "C2"]
PAY = ["P1", "P2"]
LOGISTICS = ["L1", "L2"]
LOGISTICS_NO = ["W1", "W2", "W3"]
AGENTS = ["G1"]
# Valid GB 11643 numbers (checked by hand), an invalid check digit and a birth date in future.
BUYER_IDS = ["11010519491231002X", "110105194912310021", "440524188001010014", "110105205001010010"]
NAMES = ["张三", "李四", "Zhang San"]
PHONES = ["138-0000-1111", "13800001111", "139 0000 2222"]
HS_CODES = ["0101210010", "0101290090", "3304990099", "8517120000"]
BASE_TIME = datetime(2024, 12, 31, 10, 0, tzinfo=UTC)
BASE_US = (BASE_TIME - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
FAR_TIMES = [-(2**63), 2**63 - 1]


def _app_dates(orders: pl.DataFrame) -> pl.DataFrame:
    return orders.with_columns(order_dates(pl.col("app_time")))


def canonical(name: str, rows: list[dict]) -> pl.DataFrame:
    """A canonical frame of table `name` (schema.py dtypes, `_row`) from partial row dicts."""
    schema = TABLES[name].polars_schema()
    data = {c: [r.get(c) for r in rows] for c in schema if c != "_row"}
    data["_row"] = list(range(1, len(rows) + 1))
    frame = pl.DataFrame(data, schema=schema)
    return frame


def _unique(frame: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    """First row per key, like normalisation does for unique-key tables."""
    return frame.unique(subset=key, keep="first", maintain_order=True)


def _times(draw: st.DrawFn) -> int:
    """UTC microseconds near BASE_TIME, now and then an end of int64 (two ends are 2**64 - 1
    apart, beyond int64; their China years are beyond chrono)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(FAR_TIMES))
    hours = draw(st.sampled_from([0, 1, 13, 14, 20, 23, 24, 25, 48]))
    return BASE_US + hours * 3_600_000_000 + draw(st.sampled_from([0, 1]))


def _money(draw: st.DrawFn) -> int:
    return draw(st.sampled_from([0, 1, 99, 100, 1_000, 10_000, 1_000_000, 50_000_000]))


@st.composite
def tables_strategy(draw: st.DrawFn) -> CanonicalTables:
    """Random small canonical tables with overlapping keys on every side."""
    pick = st.sampled_from
    maybe = lambda values: st.one_of(st.none(), pick(values))  # noqa: E731
    orders = []
    for _ in range(draw(st.integers(0, 6))):
        goods = _money(draw)
        freight = draw(pick([0, 100, 2_000]))
        discount = draw(pick([0, 100]))
        tax = draw(pick([0, 1_000, 9_100, 9_200]))
        paid = goods + freight - discount + tax + draw(pick([0, 0, 1, -1, 100]))
        orders.append(
            {
                "order_no": draw(pick(ORDER_NO)),
                "ebp_code": draw(pick(EBP)),
                "ebc_code": draw(pick(EBC)),
                "goods_value": goods,
                "freight": freight,
                "discount": discount,
                "tax_total": tax,
                "actual_paid": max(paid, 0),
                "currency": draw(pick(["142", "142", "502"])),
                "buyer_id_type": draw(pick(["1", "1", "2"])),
                "buyer_id_number": draw(pick(BUYER_IDS)),
                "buyer_name": draw(pick(NAMES)),
                "pay_code": draw(maybe(PAY)),
                "pay_transaction_id": draw(maybe(["T1", "T2"])),
                "consignee": draw(pick(NAMES)),
                "consignee_telephone": draw(maybe(PHONES)),
                "app_time": _times(draw),
            }
        )
    payments = [
        {
            "pay_code": draw(pick(PAY)),
            "pay_transaction_id": draw(pick(["T1", "T2"])),
            "order_no": draw(pick(ORDER_NO + ["Z"])),
            "ebp_code": draw(pick(EBP)),
            "payer_id_number": draw(pick(BUYER_IDS)),
            "payer_name": draw(pick(NAMES)),
            "amount_paid": _money(draw),
            "currency": draw(pick(["142", "502"])),
            "pay_time": _times(draw),
        }
        for _ in range(draw(st.integers(0, 6)))
    ]
    waybills = [
        {
            "logistics_code": draw(pick(LOGISTICS)),
            "logistics_no": draw(pick(LOGISTICS_NO)),
            "order_no": draw(maybe(ORDER_NO)),
            "ebp_code": draw(maybe(EBP)),
            "consignee": draw(pick(NAMES)),
            "consignee_telephone": draw(maybe(PHONES)),
            "app_time": _times(draw),
        }
        for _ in range(draw(st.integers(0, 6)))
    ]
    items = [
        {
            "order_no": draw(pick(ORDER_NO + ["Z"])),
            "ebp_code": draw(pick(EBP)),
            "gnum": gnum,
            "item_no": draw(pick(ITEMS)),
            "qty": draw(pick([10_000, 20_000, 15_000])),
            "price": draw(pick([10_000, 333_333, 1])),
            "total_price": draw(pick([10_000, 20_000, 333_333, 500_000, 0, 10_100])),
        }
        for gnum in range(draw(st.integers(0, 8)))
    ]
    products = [
        {
            "ebc_code": draw(pick(EBC)),
            "item_no": draw(pick(ITEMS)),
            "hs_code": draw(pick(HS_CODES)),
            "vat_rate": draw(pick([0.13, 0.09, 0.0, None])),
            "consumption_tax_rate": draw(pick([0.0, 0.15, 0.3, 1.0, None])),
            "status": draw(pick(["active", "active", "revoked"])),
            "valid_from": draw(st.one_of(st.none(), st.just(BASE_TIME + timedelta(hours=14)))),
            "valid_to": draw(st.one_of(st.none(), st.just(BASE_TIME + timedelta(hours=24)))),
        }
        for _ in range(draw(st.integers(0, 6)))
    ]
    enterprises = [
        {
            "code": code,
            "roles": draw(st.integers(0, 31)),
            "credit_class": draw(pick(["advanced", "general", "dishonest"])),
            "status": draw(pick(["active", "active", "abnormal", "revoked"])),
            "valid_from": draw(st.one_of(st.none(), st.just(BASE_TIME + timedelta(hours=13)))),
            "valid_to": draw(st.one_of(st.none(), st.just(BASE_TIME + timedelta(hours=24)))),
        }
        for code in draw(st.lists(pick(EBP + EBC + PAY + LOGISTICS + AGENTS), max_size=8))
    ]
    frames = {
        "orders": _app_dates(canonical("orders", orders)),
        "payments": canonical("payments", payments),
        "waybills": canonical("waybills", waybills),
        "order_items": _unique(canonical("order_items", items), ["ebp_code", "order_no", "gnum"]),
        "products": _unique(canonical("products", products), ["ebc_code", "item_no"]),
        "enterprises": _unique(canonical("enterprises", enterprises), ["code"]),
    }
    if draw(st.booleans()):
        inventories = [
            {
                "order_no": draw(pick(ORDER_NO + ["Z"])),
                "ebp_code": draw(pick(EBP)),
                "ebc_code": draw(pick(EBC)),
                "logistics_code": draw(pick(LOGISTICS)),
                "logistics_no": draw(pick(LOGISTICS_NO)),
                "agent_code": draw(pick(AGENTS + ["X"])),
                "trade_mode": "9610",
                "buyer_id_number": draw(pick(BUYER_IDS)),
                "app_time": BASE_TIME,
            }
            for _ in range(draw(st.integers(0, 5)))
        ]
        frames["inventories"] = _unique(
            canonical("inventories", inventories), ["ebp_code", "order_no"]
        )
    if draw(st.booleans()):
        prefixes = [
            {
                "hs_prefix": draw(pick(HS_CODES))[: draw(st.integers(4, 10))],
                "list": draw(pick(["positive", "positive", "prohibited"])),
            }
            for _ in range(draw(st.integers(0, 5)))
        ]
        frames["hs_lists"] = canonical("hs_lists", prefixes)
    if draw(st.booleans()):
        ledger = [
            {
                "buyer_id_number": draw(pick(BUYER_IDS)),
                "year": draw(pick([2024, 2025])),
                "used": draw(pick([0, 1_000, 259_000_000])),
            }
            for _ in range(draw(st.integers(0, 4)))
        ]
        frames["quota_ledger"] = _unique(
            canonical("quota_ledger", ledger), ["buyer_id_number", "year"]
        )
    for name, frame in frames.items():  # a failing example's rows (times as integers: Polars
        if frame is not None:  # cannot print the ends of int64 as datetimes)
            note(f"{name}: {frame.with_columns(cs.temporal().cast(pl.Int64)).rows()}")
    return CanonicalTables(**frames)


@st.composite
def settings_strategy(draw: st.DrawFn) -> RuleSettings:
    """Defaults, or random severities (including off) and boundary-prone parameters."""
    if draw(st.booleans()):
        return RuleSettings()
    severity = {
        rule.name: draw(st.sampled_from(SEVERITIES)) for rule in Rule if draw(st.booleans())
    }
    return RuleSettings.from_overrides(
        severity,
        amount_tolerance=draw(st.sampled_from(["0", "0.01", "1"])),
        tax_tolerance=draw(st.sampled_from(["0", "0.10"])),
        single_limit=draw(st.sampled_from(["100", "5000"])),
        annual_limit=draw(st.sampled_from(["150", "26000"])),
        tax_discount=draw(st.sampled_from([0.7, 1.0])),
        arrival_window=draw(st.sampled_from(["1h", "24h"])),
    )


def sorted_orphans(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort("document", "doc_row")


def assert_outputs_equal(actual: EngineOutput, expected: EngineOutput) -> None:
    """Every EngineOutput table equal, column by column (orphans compared as a set)."""
    assert_frame_equal(actual.orders, expected.orders)
    assert_frame_equal(actual.subjects, expected.subjects)
    assert_frame_equal(sorted_orphans(actual.orphans), sorted_orphans(expected.orphans))
    assert_frame_equal(actual.ledger, expected.ledger)


def to_arrow_tables(tables: CanonicalTables, layout: str) -> CanonicalTables:
    """The same tables as pyarrow Tables: strings as `string`, `large_string` or `string_view`,
    optionally chunked (three chunks) or sliced (a dummy first row cut off)."""
    string_type = {"string": pa.string(), "large_string": pa.large_string()}

    def convert(frame: pl.DataFrame | None) -> pa.Table | None:
        if frame is None:
            return None
        table = frame.to_arrow()
        target = string_type.get(layout.split("+")[0])
        if target is not None:
            schema = pa.schema(
                [
                    f.with_type(target)
                    if pa.types.is_string_view(f.type)
                    or pa.types.is_string(f.type)
                    or pa.types.is_large_string(f.type)
                    else f
                    for f in table.schema
                ]
            )
            table = table.cast(schema)
        if "+chunked" in layout and table.num_rows >= 2:
            third = max(table.num_rows // 3, 1)
            table = pa.concat_tables(
                [table.slice(0, third), table.slice(third, third), table.slice(2 * third)]
            )
        if "+sliced" in layout and table.num_rows >= 1:
            table = pa.concat_tables([table.slice(0, 1), table]).combine_chunks().slice(1)
        return table

    return CanonicalTables(**{f.name: convert(getattr(tables, f.name)) for f in fields(tables)})


@pytest.fixture
def make_tables():
    """Build CanonicalTables from per-table row dicts (missing optional tables stay None)."""

    def build(**rows: list[dict]) -> CanonicalTables:
        frames = {}
        for name in ("orders", "order_items", "payments", "waybills", "products", "enterprises"):
            frames[name] = canonical(name, rows.get(name, []))
        frames["orders"] = _app_dates(frames["orders"])
        for name in ("inventories", "hs_lists", "quota_ledger"):
            if name in rows:
                frames[name] = canonical(name, rows[name])
        return CanonicalTables(**frames)

    return build


@pytest.fixture
def random_tables() -> st.SearchStrategy[CanonicalTables]:
    """Strategy of random small canonical tables (draw it with hypothesis' st.data())."""
    return tables_strategy()


@pytest.fixture
def random_settings() -> st.SearchStrategy[RuleSettings]:
    """Strategy of random rule settings."""
    return settings_strategy()


@pytest.fixture
def outputs_equal():
    """assert_outputs_equal, as a fixture."""
    return assert_outputs_equal


@pytest.fixture
def arrow_tables():
    """to_arrow_tables, as a fixture."""
    return to_arrow_tables
