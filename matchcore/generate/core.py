"""`generate()`: a synthetic, realistic data set for every SPEC §2 table, with ground truth.

Orders are built clean first (buyers, parties, lines, money, times), then each anomaly order is
changed so it fails exactly its own rule, then the documents are derived from the orders, and
the truth is computed from what was injected (plus the annual-limit walk). All per-order work is
vectorised with numpy and Polars; randomness comes from one seed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from ..exceptions import InputError
from ..money import to_decimal_series
from ..rules import DEFAULT_SEVERITY, Parameters, Rule
from . import people
from .anomalies import (
    CLEAN,
    Variant,
    assign_kinds,
    assign_variants,
    enabled_shares,
    kind_counts,
)
from .catalog import BAD_PRODUCT_KINDS, INJECTABLE_ROLES, Catalog, build_catalog
from .truth import REJECT_BITS, annual_walk, order_tax, reasons_of

Format = Literal["parquet", "csv", "ndjson"]
FORMATS: tuple[str, ...] = ("parquet", "csv", "ndjson")
TZ = "Asia/Shanghai"
US = 1_000_000  # microseconds per second
UNITS = 10_000  # ten-thousandths per CNY
CENT = 100  # ten-thousandths per cent
BLOCK_ORDERS = 1_000_000  # orders generated at a time (bounds the working memory)
ANNUAL_GROUP = 8  # orders of one buyer in an "annual limit by many orders" group
DEFAULT = Parameters()
#: Order years whose filings (dated from 8 years before to 5 after) are dates Python holds, so
#: every generated time has a four-digit year (as CEB's yyyyMMddHHmmss needs).
FIRST_YEAR, LAST_YEAR = 1 + 8, 9999 - 5

MONEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "orders": ("goods_value", "freight", "discount", "tax_total", "actual_paid"),
    "order_items": ("qty", "price", "total_price"),
    "payments": ("amount_paid",),
    "waybills": ("freight", "insured_fee", "weight"),
    "quota_ledger": ("used",),
}


@dataclass
class GeneratedData:
    """Raw input tables (SPEC §2 column names) plus the ground truth.

    `truth`: one row per orders row, in file order: `ebp_code`, `order_no`, `reasons`
    (List(String), rule order), `reason_mask` (UInt64, bit = Rule.value), `verdict`,
    `computed_tax` and `limit_value` (Decimal(18, 4); tax null where SPEC skips it).
    `truth_orphans`: `document`, `row` (1-based row number in that table's file), `reason`.
    """

    tables: dict[str, pl.DataFrame]
    truth: pl.DataFrame
    truth_orphans: pl.DataFrame
    knobs: dict[str, object] = field(default_factory=dict)

    def write(self, out: str | Path, format: Format = "parquet") -> Path:
        """Write every table as `<name>.<format>`, plus `truth.parquet`,
        `truth_orphans.parquet` and `generate.json` (the knobs), into directory `out`."""
        if format not in FORMATS:
            raise InputError(f"unknown format {format!r}; formats are {', '.join(FORMATS)}")
        path = Path(out)
        try:
            path.mkdir(parents=True, exist_ok=True)
            for name, frame in self.tables.items():
                target = path / f"{name}.{format}"
                if format == "parquet":
                    frame.write_parquet(target)
                elif format == "csv":
                    frame.write_csv(target)
                else:
                    frame.write_ndjson(target)
            self.truth.write_parquet(path / "truth.parquet")
            self.truth_orphans.write_parquet(path / "truth_orphans.parquet")
            (path / "generate.json").write_text(json.dumps(self.knobs, indent=2) + "\n")
        except OSError as exc:
            raise InputError(f"{path}: cannot write generated data ({exc.strerror})") from None
        return path


def generate(
    orders: int,
    *,
    seed: int = 0,
    anomaly_rate: float = 0.05,
    out: str | Path | None = None,
    format: Format = "parquet",
    inventories: bool = True,
    hs_lists: bool = True,
    anomaly_shares: dict[Rule | str, float] | None = None,
    variant_rate: float = 0.05,
    via_inventory_rate: float = 0.03,
    orders_per_buyer: float = 4.0,
    ledger_rate: float = 0.10,
    passport_rate: float = 0.01,
    year: int = 2025,
) -> GeneratedData:
    """Generate `orders` order rows with their documents, reference data and ground truth.

    `anomaly_rate` of the order rows carry one injected anomaly, split over the 29 rule kinds
    by `anomaly_shares` (rule code -> relative weight, default equal). `variant_rate` of the
    clean orders get a harmless spelling or near-miss that must pass. Written to `out` in
    `format` when given. Deterministic for a seed. See datasets/README.md for every knob.
    """
    _check_knobs(
        orders,
        anomaly_rate,
        variant_rate,
        via_inventory_rate,
        orders_per_buyer,
        ledger_rate,
        passport_rate,
        format,
        year,
    )
    sizes = _block_sizes(orders)
    seeds = np.random.SeedSequence(seed).spawn(1 + len(sizes))
    catalog = build_catalog(np.random.default_rng(seeds[0]), year)
    shares = enabled_shares(_rule_keys(anomaly_shares), inventories=inventories, hs_lists=hs_lists)
    injected = {rule.name: 0 for rule in Rule}
    parts: list[GeneratedData] = []
    start = _Offsets()
    for size, block_seed in zip(sizes, seeds[1:], strict=True):
        counts = kind_counts(size, anomaly_rate, shares)
        counts[Rule.ORDER_DUPLICATE] = min(counts[Rule.ORDER_DUPLICATE], size // 2)
        rng, shuffle = (np.random.default_rng(s) for s in block_seed.spawn(2))
        kinds = assign_kinds(rng, size - counts[Rule.ORDER_DUPLICATE], counts)
        variants = assign_variants(rng, kinds, variant_rate, inventories=inventories)
        plan = _Plan(rng, catalog, kinds, variants, year, inventories, hs_lists, start)
        plan.build(orders_per_buyer, ledger_rate, passport_rate, via_inventory_rate)
        parts.append(plan.assemble(shuffle))
        start = plan.next_offsets()
        for rule in Rule:
            injected[rule.name] += counts[rule]
        del plan  # keep one block's working arrays alive at a time
    data = _concat(parts)
    data.knobs = {
        "orders": orders,
        "seed": seed,
        "anomaly_rate": anomaly_rate,
        "inventories": inventories,
        "hs_lists": hs_lists,
        "anomaly_shares": {r.name: shares[r] for r in Rule},
        "variant_rate": variant_rate,
        "via_inventory_rate": via_inventory_rate,
        "orders_per_buyer": orders_per_buyer,
        "ledger_rate": ledger_rate,
        "passport_rate": passport_rate,
        "year": year,
        "injected": injected,
    }
    if out is not None:
        data.write(out, format)
    return data


@dataclass(frozen=True)
class _Offsets:
    """Where a block's numbering starts, so numbers and people are unique across blocks."""

    orders: int = 0
    buyers: int = 0


def _block_sizes(orders: int) -> list[int]:
    """Orders per block: blocks of at most BLOCK_ORDERS, as even as possible. Buyers never
    span blocks, so each block's annual walk is complete and memory stays bounded."""
    blocks = -(-orders // BLOCK_ORDERS)
    base, extra = divmod(orders, blocks)
    return [base + (1 if i < extra else 0) for i in range(blocks)]


def _concat(parts: list[GeneratedData]) -> GeneratedData:
    """One data set from blocks: tables stacked, orphan rows shifted by earlier blocks."""
    if len(parts) == 1:
        return parts[0]
    tables = {name: pl.concat([p.tables[name] for p in parts]) for name in parts[0].tables}
    tables["products"] = parts[0].tables["products"]
    tables["enterprises"] = parts[0].tables["enterprises"]
    if "hs_lists" in tables:
        tables["hs_lists"] = parts[0].tables["hs_lists"]
    table_of = {
        "payment": "payments",
        "waybill": "waybills",
        "order_item": "order_items",
        "inventory": "inventories",
    }
    seen = dict.fromkeys(table_of.values(), 0)
    orphans = []
    for part in parts:
        shift = pl.col("document").replace_strict(
            {doc: seen[name] for doc, name in table_of.items()}, return_dtype=pl.Int64
        )
        orphans.append(part.truth_orphans.with_columns(pl.col("row") + shift))
        for name in seen:
            seen[name] += part.tables[name].height if name in part.tables else 0
    return GeneratedData(tables, pl.concat([p.truth for p in parts]), pl.concat(orphans))


def _check_knobs(
    orders: int,
    anomaly_rate: float,
    variant_rate: float,
    via: float,
    per_buyer: float,
    ledger: float,
    passport: float,
    format: str,
    year: int,
) -> None:
    """Raise InputError naming the first knob out of range."""
    if not isinstance(orders, int) or isinstance(orders, bool) or orders < 1:
        raise InputError(f"orders must be a positive integer, not {orders!r}")
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise InputError(f"year must be between {FIRST_YEAR} and {LAST_YEAR}, not {year!r}")
    for name, value in (
        ("anomaly_rate", anomaly_rate),
        ("variant_rate", variant_rate),
        ("via_inventory_rate", via),
        ("ledger_rate", ledger),
        ("passport_rate", passport),
    ):
        if not 0.0 <= float(value) <= 1.0:
            raise InputError(f"{name} must be between 0 and 1, not {value!r}")
    if per_buyer < 1.0:
        raise InputError(f"orders_per_buyer must be at least 1, not {per_buyer!r}")
    if format not in FORMATS:
        raise InputError(f"unknown format {format!r}; formats are {', '.join(FORMATS)}")


def _rule_keys(shares: dict[Rule | str, float] | None) -> dict[Rule, float] | None:
    """Anomaly shares keyed by Rule, accepting rule codes as strings."""
    if shares is None:
        return None
    keyed: dict[Rule, float] = {}
    for key, value in shares.items():
        try:
            rule = key if isinstance(key, Rule) else Rule[str(key).strip().upper()]
        except KeyError:
            raise InputError(f"anomaly_shares: unknown rule code {key!r}") from None
        if value < 0:
            raise InputError(f"anomaly_shares: share of {rule.name} must be >= 0")
        keyed[rule] = float(value)
    return keyed


def _where(kinds: np.ndarray, rule: Rule) -> np.ndarray:
    """Positions of the orders injected with `rule`."""
    return np.flatnonzero(kinds == rule.value)


def _replaced(
    series: pl.Series, positions: np.ndarray, values: pl.Series | str | None
) -> pl.Series:
    """A copy of `series` with `values` at `positions` (Series.scatter works in place)."""
    if len(positions) == 0:
        return series
    return series.clone().scatter(positions, values)


def _different(new: pl.Series, old: pl.Series, suffix: str) -> pl.Series:
    """`new`, except where it happens to equal `old`: there `old + suffix` (always differs)."""
    return pl.select(pl.when(new == old).then(old + suffix).otherwise(new)).to_series()


def _signed(rng: np.random.Generator, base: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """`base` plus or minus `delta` at random, never below zero (then always plus)."""
    minus = (rng.random(len(base)) < 0.5) & (base >= delta)
    return np.where(minus, base - delta, base + delta)


def _china_micros(year: int, month: int, day: int) -> int:
    """Microseconds since the epoch of midnight on that day in Asia/Shanghai."""
    moment = datetime(year, month, day, tzinfo=timezone(timedelta(hours=8)))
    return int(moment.timestamp()) * US


def _times(micros: np.ndarray) -> pl.Series:
    """Epoch microseconds -> timestamps with time zone Asia/Shanghai."""
    return (
        pl.Series(micros.astype(np.int64)).cast(pl.Datetime("us", "UTC")).dt.convert_time_zone(TZ)
    )


class _Plan:
    """Per-order arrays of one generation run, built step by step."""

    def __init__(
        self,
        rng: np.random.Generator,
        catalog: Catalog,
        kinds: np.ndarray,
        variants: np.ndarray,
        year: int,
        inventories: bool,
        hs_lists: bool,
        start: _Offsets,
    ) -> None:
        """Remember the block's plan: kinds and variants per base order, the catalogue."""
        self.rng = rng
        self.start = start
        self.catalog = catalog
        self.kinds = kinds
        self.variants = variants
        self.year = year
        self.with_inventories = inventories
        self.with_hs_lists = hs_lists
        self.n = len(kinds)

    def next_offsets(self) -> _Offsets:
        """Offsets for the block after this one."""
        return _Offsets(self.start.orders + self.n, self.start.buyers + self.buyer_count)

    def of(self, rule: Rule) -> np.ndarray:
        """Positions of the orders injected with `rule`."""
        return _where(self.kinds, rule)

    def variant(self, v: Variant) -> np.ndarray:
        """Positions of the orders given variant `v`."""
        return np.flatnonzero(self.variants == v.value)

    # -- building ---------------------------------------------------------------------------

    def build(
        self, per_buyer: float, ledger_rate: float, passport_rate: float, via_rate: float
    ) -> None:
        """Every per-order array, clean first, then changed by the injected kinds."""
        self._times()
        self._buyers(per_buyer, passport_rate)
        self._parties()
        self._lines()
        self._money()
        self._ledger(ledger_rate)
        self._numbers()
        clean = (self.kinds == CLEAN) & (self.variants == Variant.NONE.value)
        self.via_inventory = clean & (self.rng.random(self.n) < via_rate) & self.with_inventories

    def _times(self) -> None:
        """Order, payment, waybill and inventory times (the waybill late for ARRIVAL)."""
        rng, n = self.rng, self.n
        first, last = _china_micros(self.year, 1, 3), _china_micros(self.year, 12, 28)
        self.app = rng.integers(first // US, last // US, n) * US
        self.pay_time = self.app + rng.integers(60, 6 * 3600, n) * US
        self.waybill_time = self.app + rng.integers(600, 20 * 3600, n) * US
        late = self.of(Rule.ARRIVAL_WINDOW_EXCEEDED)
        self.waybill_time[late] = (
            self.app[late] + rng.integers(24 * 3600 + 1, 72 * 3600, len(late)) * US
        )
        exact = self.variant(Variant.WINDOW_EXACTLY_24H)
        self.waybill_time[exact] = self.app[exact] + DEFAULT.arrival_window_us
        self.inventory_time = self.waybill_time + rng.integers(600, 7200, n) * US
        self.app_ymd = _times(self.app).dt.strftime("%Y%m%d")

    def _buyers(self, per_buyer: float, passport_rate: float) -> None:
        """Buyers (annual-limit kinds get their own), identities, consignees."""
        rng, n = self.rng, self.n
        pool = max(1, int(round(self.n / per_buyer)))
        buyer = rng.integers(0, pool, n)
        annual = self.of(Rule.ANNUAL_LIMIT_EXCEEDED)
        # one order each, the ledger almost full (anomaly) or exactly full after it (variant)
        self.ledger_orders = np.concatenate(
            [annual[::2], self.variant(Variant.LEDGER_EXACTLY_FULL)]
        )
        grouped = annual[1::2]  # eight big orders of one buyer
        buyer[self.ledger_orders] = pool + np.arange(len(self.ledger_orders))
        buyer[grouped] = pool + len(self.ledger_orders) + np.arange(len(grouped)) // ANNUAL_GROUP
        self.grouped = grouped
        total = int(buyer.max()) + 1 if n else pool
        self.buyer_count = total
        passport = rng.random(total) < passport_rate
        passport[pool:] = False
        person = self.start.buyers + np.arange(total)
        shift = int(self.catalog.id_shift)
        ids = pl.select(
            pl.when(pl.Series(passport))
            .then(people.unique_passport_numbers(person, shift))
            .otherwise(people.unique_resident_ids(person, shift))
        ).to_series()
        self.buyer = buyer
        self.buyer_type = pl.Series(np.where(passport, "2", "1")).gather(buyer)
        self.buyer_id = ids.gather(buyer)
        self.canonical_buyer = self.buyer_id  # the ID as normalised (generated clean)
        self.buyer_name = people.chinese_names(rng, total).gather(buyer)
        self.buyer_phone = people.mobiles(rng, total).gather(buyer)
        self.buyer_address = people.addresses(rng, total).gather(buyer)
        invalid = self.of(Rule.BUYER_ID_INVALID)
        self.buyer_id = _replaced(
            self.buyer_id, invalid, people.invalid_resident_ids(rng, len(invalid), self.year)
        )
        self.buyer_type = _replaced(self.buyer_type, invalid, "1")
        other = rng.random(n) < 0.2  # someone else receives the parcel
        self.consignee = pl.select(
            pl.when(pl.Series(other)).then(people.chinese_names(rng, n)).otherwise(self.buyer_name)
        ).to_series()
        self.consignee_phone = pl.select(
            pl.when(pl.Series(other)).then(people.mobiles(rng, n)).otherwise(self.buyer_phone)
        ).to_series()
        self.consignee_address = pl.select(
            pl.when(pl.Series(other)).then(people.addresses(rng, n)).otherwise(self.buyer_address)
        ).to_series()

    def _parties(self) -> None:
        """Platform, enterprise, payment company, carrier and agent of each order."""
        rng, n, good = self.rng, self.n, self.catalog.good
        self.ebc_index = rng.integers(0, len(good["ebc"]), n)
        self.ebc = pl.Series(good["ebc"]).gather(self.ebc_index)
        self.pay_index = rng.integers(0, len(good["pay"]), n)
        party = {
            role: pl.Series(good[role]).gather(
                self.pay_index if role == "pay" else rng.integers(0, len(good[role]), n)
            )
            for role in INJECTABLE_ROLES
        }
        roles = INJECTABLE_ROLES if self.with_inventories else INJECTABLE_ROLES[:-1]
        for rule in (
            Rule.ENTERPRISE_NOT_FILED,
            Rule.ENTERPRISE_INACTIVE,
            Rule.ENTERPRISE_DISHONEST,
        ):
            orders = self.of(rule)
            role_of = rng.integers(0, len(roles), len(orders))
            for r, role in enumerate(roles):
                at = orders[role_of == r]
                codes = pl.Series(self.catalog.bad[(rule, role)])
                party[role] = _replaced(
                    party[role], at, codes.gather(rng.integers(0, len(codes), len(at)))
                )
        self.ebp, self.pay_code = party["ebp"], party["pay"]
        self.logistics, self.agent = party["logistics"], party["agent"]

    def _lines(self) -> None:
        """1-5 lines per order from the ebc's clean products; product kinds swap line 1."""
        rng, n, cat = self.rng, self.n, self.catalog
        count = rng.choice(np.arange(1, 6), size=n, p=[0.45, 0.25, 0.15, 0.1, 0.05])
        self.line_order = np.repeat(np.arange(n), count)
        self.line_start = np.cumsum(count) - count
        lines = len(self.line_order)
        self.gnum = np.arange(lines) - self.line_start[self.line_order] + 1
        slot = rng.integers(0, cat.good_products, lines)
        bad_slot = {kind: cat.good_products + i for i, kind in enumerate(BAD_PRODUCT_KINDS)}
        not_filed = self.of(Rule.PRODUCT_NOT_FILED)
        slot[self.line_start[not_filed]] = np.array(
            [bad_slot[k] for k in ("unfiled", "revoked", "expired", "not_yet_valid")]
        )[np.arange(len(not_filed)) % 4]
        slot[self.line_start[self.of(Rule.PRODUCT_NOT_ON_POSITIVE_LIST)]] = bad_slot["not_positive"]
        prohibited = self.of(Rule.PRODUCT_PROHIBITED)
        self.prohibited_outside = prohibited[1::2]  # also off the positive list
        slot[self.line_start[prohibited[::2]]] = bad_slot["prohibited_inside"]
        slot[self.line_start[self.prohibited_outside]] = bad_slot["prohibited_outside"]
        flat = self.ebc_index[self.line_order] * cat.product_item_no.shape[1] + slot
        self.item_no = pl.Series(cat.product_item_no.ravel().tolist()).gather(flat)
        self.item_name = pl.Series(cat.product_name.ravel().tolist()).gather(flat)
        self.vat = cat.product_vat.ravel()[flat]
        self.consumption = cat.product_ct.ravel()[flat]

    def _money(self) -> None:
        """Prices, totals, freight, discount, SPEC §3.2 tax, and the money anomalies."""
        rng, n = self.rng, self.n
        lines = len(self.line_order)
        budget = np.clip(np.exp(rng.normal(np.log(250.0), 0.9, n)), 20.0, 3800.0)
        high = self.of(Rule.SINGLE_LIMIT_EXCEEDED)
        budget[high] = rng.uniform(5200.0, 9000.0, len(high))
        budget[self.grouped] = rng.uniform(3500.0, 3900.0, len(self.grouped))
        weight = rng.random(lines) + 0.2
        weight_sum = np.bincount(self.line_order, weights=weight, minlength=n)
        target_cents = budget[self.line_order] * 100.0 * weight / weight_sum[self.line_order]
        qty = rng.choice(np.array([1, 2, 3]), size=lines, p=[0.7, 0.2, 0.1])
        price_cents = np.maximum(100, np.rint(target_cents / qty / 10.0).astype(np.int64) * 10)
        qty_units = qty * UNITS
        price = price_cents * CENT
        total = qty * price
        rounded = self.line_start[self.variant(Variant.LINE_TOTAL_ROUNDED)]
        qty_units[rounded] -= UNITS // 2  # e.g. 1.5 kg at an odd-cent price (never more)
        price[rounded] += CENT
        exact = qty_units[rounded] * price[rounded]  # in 1e-8 CNY
        total[rounded] = (exact + 500_000) // 1_000_000 * CENT  # to the cent, half up
        wrong = self.line_start[self.of(Rule.LINE_TOTAL_MISMATCH)]
        price[wrong] += rng.integers(2, 300, len(wrong)) * CENT  # >= 0.02 CNY per unit
        self.qty, self.price, self.total_price = qty_units, price, total
        goods = np.zeros(n, dtype=np.int64)
        np.add.at(goods, self.line_order, total)
        freight = np.where(rng.random(n) < 0.4, 0, rng.integers(5, 31, n) * UNITS)
        discount = np.where(rng.random(n) < 0.7, 0, rng.integers(1, 21, n) * UNITS)
        discount = np.minimum(discount, goods // 2 // CENT * CENT)  # keeps every d_i > 0
        at_limit = self.variant(Variant.LIMIT_EXACTLY_SINGLE)
        freight[at_limit] = DEFAULT.single_limit - goods[at_limit] + discount[at_limit]
        tax = order_tax(
            self.line_order,
            total,
            freight - discount,
            self.vat,
            self.consumption,
            n,
            DEFAULT.tax_discount,
        )
        tax_total = tax.copy()
        near = self.variant(Variant.TAX_WITHIN_TOLERANCE)
        tax_total[near] = np.maximum(0, tax[near] + rng.integers(-10, 11, len(near)) * CENT)
        off = self.of(Rule.TAX_MISMATCH)
        tax_total[off] = _signed(rng, tax[off], rng.integers(11, 5001, len(off)) * CENT)
        goods_value = goods.copy()
        actual = goods + freight - discount + tax_total
        changed = self.of(Rule.GOODS_VALUE_MISMATCH)
        delta = rng.integers(1, 10_001, len(changed)) * CENT
        goods_value[changed] += delta
        actual[changed] += delta  # the order still adds up
        total_off = self.of(Rule.ORDER_TOTAL_MISMATCH)
        actual[total_off] = _signed(
            rng, actual[total_off], rng.integers(1, 5001, len(total_off)) * CENT
        )
        paid = actual.copy()
        pay_off = self.of(Rule.PAY_AMOUNT_MISMATCH)
        paid[pay_off] = _signed(rng, actual[pay_off], rng.integers(1, 5001, len(pay_off)) * CENT)
        self.computed_tax = tax
        self.goods_value, self.freight, self.discount = goods_value, freight, discount
        self.tax_total, self.actual_paid, self.amount_paid = tax_total, actual, paid
        self.limit_value = goods_value + freight - discount

    def _ledger(self, ledger_rate: float) -> None:
        """Quota ledger: small prior use for some buyers, nearly full for the ledger anomalies."""
        rng = self.rng
        orders = self.ledger_orders
        lv = self.limit_value[orders]
        room = (lv * rng.uniform(0.1, 0.9, len(orders))).astype(np.int64) // CENT * CENT
        exact = self.variants[orders] == Variant.LEDGER_EXACTLY_FULL.value
        full = DEFAULT.annual_limit - np.where(exact, lv, room)
        buyers, first = np.unique(self.buyer, return_index=True)
        some = rng.random(len(buyers)) < ledger_rate
        some[np.isin(buyers, self.buyer[orders])] = False
        small = rng.integers(0, 300_001, int(some.sum())) * CENT
        last_year = rng.random(len(buyers)) < ledger_rate / 3
        ids = pl.concat(
            [
                self.canonical_buyer.gather(orders),
                self.canonical_buyer.gather(first[some]),
                self.canonical_buyer.gather(first[last_year]),
            ]
        )
        used = np.concatenate(
            [full, small, rng.integers(0, 2_600_001, int(last_year.sum())) * CENT]
        )
        years = np.concatenate(
            [
                np.full(len(orders) + int(some.sum()), self.year),
                np.full(int(last_year.sum()), self.year - 1),
            ]
        )
        padded = rng.random(len(ids)) < 0.1  # spelled with spaces: must still match
        spelled = pl.select(pl.when(pl.Series(padded)).then(" " + ids + " ").otherwise(ids))
        order = rng.permutation(len(used))
        self.ledger = pl.DataFrame(
            {
                "buyer_id_number": spelled.to_series().gather(order),
                "year": years[order].astype(np.int64),
                "used": used[order],
            }
        )
        self.start_used = np.zeros(self.n, dtype=np.int64)
        self.start_used[orders] = full
        keys = buyers[some]  # sorted, as np.unique returns them
        if len(keys):
            pos = np.minimum(np.searchsorted(keys, self.buyer), len(keys) - 1)
            hit = keys[pos] == self.buyer
            self.start_used[hit] = small[pos[hit]]

    def _numbers(self) -> None:
        """Order numbers, payment transaction IDs and waybill numbers (all unique)."""
        rng, n = self.rng, self.n
        first = self.start.orders
        self.order_no = "CB" + self.app_ymd + people.digits(first + rng.permutation(n), 9)
        self.transaction = "T" + self.app_ymd + people.digits(first + rng.permutation(n), 12)
        carriers = ("SF", "YT", "ZT", "JD", "EMS", "DHL", "YD", "BS")
        self.logistics_no = people.pick(rng, carriers, n) + people.digits(
            first + rng.permutation(n) + 10**11, 12
        )

    # -- documents ------------------------------------------------------------------------

    def _split(self, rule: Rule) -> tuple[np.ndarray, np.ndarray]:
        """Orders of a missing-document kind: (document dropped, document re-keyed)."""
        orders = self.of(rule)
        return orders[::2], orders[1::2]

    def orders_frame(self) -> pl.DataFrame:
        """The orders table of the base orders (duplicated copies are added later)."""
        rng, n, cat = self.rng, self.n, self.catalog
        currency = pl.Series(["142"] * n, dtype=pl.String)
        currency = _replaced(currency, self.variant(Variant.CURRENCY_DEFAULTED), None)
        pay_code, transaction = self.pay_code, self.transaction
        absent = self.variant(Variant.PAY_REFERENCE_ABSENT)
        pay_code = _replaced(pay_code, absent, None)
        transaction = _replaced(transaction, absent, None)
        no_discount = self.variant(Variant.DISCOUNT_NULL)
        discount = _replaced(
            pl.Series(self.discount), no_discount[self.discount[no_discount] == 0], None
        )
        no_type = self.variant(Variant.BUYER_ID_TYPE_NULL)
        buyer_type = _replaced(
            self.buyer_type, no_type[(self.buyer_type.gather(no_type) == "1").to_numpy()], None
        )
        lower = self.variant(Variant.BUYER_ID_LOWER)
        buyer_id = _replaced(
            self.buyer_id, lower, " " + self.buyer_id.gather(lower).str.to_lowercase() + "  "
        )
        ref = self.of(Rule.PAY_REFERENCE_MISMATCH)
        by_code, by_id = ref[::2], ref[1::2]
        others = pl.Series(cat.good["pay"])
        shift = (self.pay_index[by_code] + rng.integers(1, len(others), len(by_code))) % len(others)
        pay_code = _replaced(pay_code, by_code, others.gather(shift))
        transaction = _replaced(transaction, by_id, transaction.gather(by_id) + "A")
        return pl.DataFrame(
            {
                "order_no": self.order_no,
                "ebp_code": self.ebp,
                "ebc_code": self.ebc,
                "goods_value": self.goods_value,
                "freight": self.freight,
                "discount": discount,
                "tax_total": self.tax_total,
                "actual_paid": self.actual_paid,
                "currency": currency,
                "buyer_id_type": buyer_type,
                "buyer_id_number": buyer_id,
                "buyer_name": self.buyer_name,
                "buyer_telephone": self.buyer_phone,
                "pay_code": pay_code,
                "pay_transaction_id": transaction,
                "consignee": self.consignee,
                "consignee_telephone": self.consignee_phone,
                "consignee_address": self.consignee_address,
                "app_time": _times(self.app),
                "ebp_name": self.ebp.replace_strict(cat.names, default=None),
                "ebc_name": self.ebc.replace_strict(cat.names, default=None),
                "note": pl.Series([None] * n, dtype=pl.String),
            }
        )

    def items_frame(self) -> tuple[pl.DataFrame, np.ndarray]:
        """Order lines, and the base order of each line (-1 for orphan lines)."""
        dropped, rekeyed = self._split(Rule.ITEMS_MISSING)
        keep = ~np.isin(self.line_order, dropped)
        orphan = np.isin(self.line_order, rekeyed)
        order_no = self.order_no.gather(self.line_order)
        order_no = pl.select(
            pl.when(pl.Series(orphan)).then(order_no + "R").otherwise(order_no)
        ).to_series()
        frame = pl.DataFrame(
            {
                "order_no": order_no,
                "ebp_code": self.ebp.gather(self.line_order),
                "gnum": self.gnum.astype(np.int64),
                "item_no": self.item_no,
                "item_name": self.item_name,
                "qty": self.qty,
                "unit": pl.Series(["007"] * len(self.line_order)),  # customs unit code: piece
                "price": self.price,
                "total_price": self.total_price,
                "country": people.pick(
                    self.rng, ("116", "133", "304", "303", "502", "601"), len(self.line_order)
                ),
                "bar_code": None,
            }
        )
        owner = np.where(orphan, -1, self.line_order)
        return frame.filter(pl.Series(keep)), owner[keep]

    def payments_frame(self) -> tuple[pl.DataFrame, np.ndarray]:
        """Payments (one per order, minus the missing, plus the duplicates) and each one's
        order (-1 for orphans)."""
        rng, n = self.rng, self.n
        payer_id, payer_name = self.buyer_id, self.buyer_name
        wrong_id = self.of(Rule.PAYER_ID_MISMATCH)
        payer_id = _replaced(
            payer_id,
            wrong_id,
            _different(people.resident_ids(rng, len(wrong_id)), payer_id.gather(wrong_id), "0"),
        )
        wrong_name = self.of(Rule.PAYER_NAME_MISMATCH)
        payer_name = _replaced(
            payer_name,
            wrong_name,
            _different(
                people.chinese_names(rng, len(wrong_name)), payer_name.gather(wrong_name), "伟"
            ),
        )
        padded = self.variant(Variant.PAYER_NAME_PADDED)
        payer_name = _replaced(payer_name, padded, " " + payer_name.gather(padded) + "\u3000")
        wide = self.variant(Variant.PAYER_ID_FULL_WIDTH)
        payer_id = _replaced(
            payer_id,
            wide,
            payer_id.gather(wide).str.replace_many(
                list("0123456789"), [chr(0xFF10 + d) for d in range(10)]
            ),
        )
        currency = pl.Series(["142"] * n, dtype=pl.String)
        foreign = self.of(Rule.CURRENCY_MISMATCH)
        currency = _replaced(
            currency, foreign, people.pick(rng, ("502", "344", "116"), len(foreign))
        )
        order_no = self.order_no
        spaced = self.variant(Variant.PAYMENT_KEY_PADDED)
        order_no = _replaced(order_no, spaced, "  " + order_no.gather(spaced) + "\t")
        spaced = self.variant(Variant.PAY_CODE_PADDED)
        pay_code = _replaced(self.pay_code, spaced, self.pay_code.gather(spaced) + " ")
        dropped, rekeyed = self._split(Rule.PAYMENT_MISSING)
        order_no = _replaced(order_no, rekeyed, order_no.gather(rekeyed) + "R")
        frame = pl.DataFrame(
            {
                "pay_code": pay_code,
                "pay_transaction_id": self.transaction,
                "order_no": order_no,
                "ebp_code": self.ebp,
                "payer_id_type": self.buyer_type,
                "payer_id_number": payer_id,
                "payer_name": payer_name,
                "amount_paid": self.amount_paid,
                "currency": currency,
                "pay_time": _times(self.pay_time),
            }
        )
        owner = np.arange(n)
        owner[rekeyed] = -1
        keep = np.ones(n, dtype=bool)
        keep[dropped] = False
        twice = self.of(Rule.PAYMENT_DUPLICATE)
        extra = _take(frame, twice)
        fresh = twice[1::2]  # half resent as is, half with a new transaction ID
        extra = extra.with_columns(
            pl.when(pl.Series(np.isin(twice, fresh)))
            .then(pl.col("pay_transaction_id") + "B")
            .otherwise(pl.col("pay_transaction_id"))
        )
        return (
            pl.concat([frame.filter(pl.Series(keep)), extra]),
            np.concatenate([owner[keep], twice]),
        )

    def waybills_frame(self) -> tuple[pl.DataFrame, np.ndarray]:
        """Waybills and each one's order (-1 for orphans)."""
        rng, n = self.rng, self.n
        consignee, phone = self.consignee, self.consignee_phone
        other = self.of(Rule.CONSIGNEE_MISMATCH)
        consignee = _replaced(
            consignee,
            other,
            _different(people.chinese_names(rng, len(other)), consignee.gather(other), "伟"),
        )
        padded = self.variant(Variant.CONSIGNEE_PADDED)
        consignee = _replaced(consignee, padded, "\u3000" + consignee.gather(padded) + " ")
        other_phone = self.of(Rule.CONSIGNEE_PHONE_MISMATCH)
        phone = _replaced(
            phone,
            other_phone,
            _different(people.mobiles(rng, len(other_phone)), phone.gather(other_phone), "0"),
        )
        dashed = self.variant(Variant.PHONE_FORMATTED)
        dashed_phone = phone.gather(dashed)
        phone = _replaced(
            phone,
            dashed,
            dashed_phone.str.slice(0, 3)
            + "-"
            + dashed_phone.str.slice(3, 4)
            + "-"
            + dashed_phone.str.slice(7),
        )
        phone = _replaced(phone, self.variant(Variant.PHONE_ABSENT), None)
        dropped, rekeyed = self._split(Rule.WAYBILL_MISSING)
        order_no = _replaced(self.order_no, rekeyed, self.order_no.gather(rekeyed) + "R")
        via = pl.Series(self.via_inventory)
        frame = pl.DataFrame(
            {
                "logistics_code": self.logistics,
                "logistics_no": self.logistics_no,
                "order_no": pl.select(pl.when(via).then(None).otherwise(order_no)).to_series(),
                "ebp_code": pl.select(pl.when(via).then(None).otherwise(self.ebp)).to_series(),
                "freight": self.freight,
                "insured_fee": np.where(rng.random(n) < 0.8, 0, rng.integers(1, 50, n) * CENT),
                "weight": rng.integers(1, 500, n) * 100,  # 0.01 .. 5 kg in 0.0001 kg
                "consignee": consignee,
                "consignee_telephone": phone,
                "consignee_address": self.consignee_address,
                "app_time": _times(self.waybill_time),
            }
        )
        owner = np.arange(n)
        owner[rekeyed] = -1
        keep = np.ones(n, dtype=bool)
        keep[dropped] = False
        twice = self.of(Rule.WAYBILL_DUPLICATE)
        extra = _take(frame, twice).with_columns(
            pl.when(pl.Series(np.isin(twice, twice[1::2])))
            .then(pl.col("logistics_no") + "B")
            .otherwise(pl.col("logistics_no"))
        )
        return (
            pl.concat([frame.filter(pl.Series(keep)), extra]),
            np.concatenate([owner[keep], twice]),
        )

    def inventories_frame(self) -> tuple[pl.DataFrame, np.ndarray]:
        """Inventories and each one's order (-1 for orphans)."""
        rng, n, cat = self.rng, self.n, self.catalog
        ebc, buyer_id = self.ebc, self.buyer_id
        logistics, logistics_no = self.logistics, self.logistics_no
        wrong = self.of(Rule.INVENTORY_MISMATCH)
        field_of = np.arange(len(wrong)) % 4
        at = wrong[field_of == 0]
        shift = (self.ebc_index[at] + rng.integers(1, len(cat.good["ebc"]), len(at))) % len(
            cat.good["ebc"]
        )
        ebc = _replaced(ebc, at, pl.Series(cat.good["ebc"]).gather(shift))
        at = wrong[field_of == 1]
        buyer_id = _replaced(
            buyer_id, at, _different(people.resident_ids(rng, len(at)), buyer_id.gather(at), "0")
        )
        at = wrong[field_of == 2]
        logistics_no = _replaced(logistics_no, at, logistics_no.gather(at) + "C")
        at = wrong[field_of == 3]
        carriers = pl.Series(cat.good["logistics"])
        moved = carriers.gather(rng.integers(0, len(carriers), len(at)))
        logistics = _replaced(logistics, at, _different(moved, logistics.gather(at), "X"))
        lower = self.variant(Variant.INVENTORY_ID_LOWER)
        buyer_id = _replaced(buyer_id, lower, " " + buyer_id.gather(lower).str.to_lowercase())
        dropped, rekeyed = self._split(Rule.INVENTORY_MISSING)
        order_no = _replaced(self.order_no, rekeyed, self.order_no.gather(rekeyed) + "R")
        frame = pl.DataFrame(
            {
                "order_no": order_no,
                "ebp_code": self.ebp,
                "ebc_code": ebc,
                "logistics_code": logistics,
                "logistics_no": logistics_no,
                "agent_code": self.agent,
                "trade_mode": np.where(rng.random(n) < 0.8, "9610", "1210"),
                "buyer_id_number": buyer_id,
                "app_time": _times(self.inventory_time),
            }
        )
        owner = np.arange(n)
        owner[rekeyed] = -1
        keep = np.ones(n, dtype=bool)
        keep[dropped] = False
        return frame.filter(pl.Series(keep)), owner[keep]

    # -- truth and assembly ---------------------------------------------------------------

    def injected_masks(self) -> np.ndarray:
        """Rules each base order fails by its injected kind (annual limit comes later)."""
        kinds = self.kinds.astype(np.int64)
        masks = np.where(kinds >= 0, np.left_shift(1, np.maximum(kinds, 0)), 0).astype(np.uint64)
        masks[self.of(Rule.ANNUAL_LIMIT_EXCEEDED)] = 0
        if self.with_hs_lists:
            masks[self.prohibited_outside] |= np.uint64(Rule.PRODUCT_NOT_ON_POSITIVE_LIST.bit)
        return masks

    def tax_skipped(self) -> np.ndarray:
        """Orders whose computed tax SPEC skips: no lines, or a line that is not filed."""
        skipped = np.zeros(self.n, dtype=bool)
        skipped[self.of(Rule.ITEMS_MISSING)] = True  # lines dropped or re-keyed away
        skipped[self.of(Rule.PRODUCT_NOT_FILED)] = True
        return skipped

    def assemble(self, shuffle: np.random.Generator) -> GeneratedData:
        """All tables in file order (documents shuffled), the truth and the orphans."""
        orders = self.orders_frame()
        copies = self.of(Rule.ORDER_DUPLICATE)
        spelling = pl.Series(np.arange(len(copies)) % 3)
        full_width = pl.col("order_no").str.replace_many(
            list("0123456789"), [chr(0xFF10 + d) for d in range(10)]
        )
        copy_frame = _take(orders, copies).with_columns(
            # the same key once normalised: as is, with a trailing space, in full-width digits
            pl.when(spelling == 1)
            .then(pl.col("order_no") + " ")
            .when(spelling == 2)
            .then(full_width)
            .otherwise(pl.col("order_no")),
            note=pl.lit("重复申报"),
        )
        base_of_row = np.concatenate([np.arange(self.n), copies])
        row_time = self.app[base_of_row]
        file_order = np.argsort(row_time, kind="stable")
        base_of_row = base_of_row[file_order]
        orders = _take(pl.concat([orders, copy_frame]), file_order)
        rank = np.empty(self.n, dtype=np.int64)  # file position of each base order's first row
        rank[base_of_row[::-1]] = np.arange(len(base_of_row))[::-1]

        items, item_owner = self.items_frame()
        line_rank = np.where(item_owner >= 0, rank[np.maximum(item_owner, 0)], -1)
        # orphan lines stay next to the order they were cut from
        kept_lines = np.flatnonzero(~np.isin(self.line_order, self._split(Rule.ITEMS_MISSING)[0]))
        line_rank = np.where(item_owner >= 0, line_rank, rank[self.line_order[kept_lines]])
        order_lines = np.lexsort((items["gnum"].to_numpy(), line_rank))
        items = _take(items, order_lines)
        item_owner = item_owner[order_lines]

        tables: dict[str, pl.DataFrame] = {"orders": orders, "order_items": items}
        owners: dict[str, np.ndarray] = {"order_item": item_owner}
        for name, doc, (frame, owner) in (
            ("payments", "payment", self.payments_frame()),
            ("waybills", "waybill", self.waybills_frame()),
        ):
            perm = shuffle.permutation(frame.height)
            tables[name], owners[doc] = _take(frame, perm), owner[perm]
        if self.with_inventories:
            frame, owner = self.inventories_frame()
            perm = shuffle.permutation(frame.height)
            tables["inventories"], owners["inventory"] = _take(frame, perm), owner[perm]
        tables["products"] = self.catalog.products
        tables["enterprises"] = self.catalog.enterprises
        if self.with_hs_lists:
            tables["hs_lists"] = self.catalog.hs_lists
        tables["quota_ledger"] = self.ledger
        tables = {name: _with_decimals(name, frame) for name, frame in tables.items()}
        truth = self.truth(base_of_row)
        orphans = pl.concat(
            [
                pl.DataFrame(
                    {
                        "document": doc,
                        "row": np.flatnonzero(owner < 0).astype(np.int64) + 1,
                        "reason": "NO_ORDER",
                    },
                    schema={"document": pl.String, "row": pl.Int64, "reason": pl.String},
                )
                for doc, owner in owners.items()
            ]
        )
        return GeneratedData(tables, truth, orphans)

    def truth(self, base_of_row: np.ndarray) -> pl.DataFrame:
        """Truth per order row: injected rules, ORDER_DUPLICATE copies, the annual walk."""
        masks = self.injected_masks()[base_of_row]
        copies = np.isin(base_of_row, self.of(Rule.ORDER_DUPLICATE))
        masks[copies] |= np.uint64(Rule.ORDER_DUPLICATE.bit)
        rejected = (masks & np.uint64(REJECT_BITS)) != 0
        limit_value = self.limit_value[base_of_row]
        over = annual_walk(
            self.canonical_buyer.gather(base_of_row).to_numpy(),
            np.full(len(base_of_row), self.year),
            [
                self.app[base_of_row],
                self.ebp.gather(base_of_row),
                self.order_no.gather(base_of_row),
            ],
            limit_value,
            rejected,
            self.start_used[base_of_row],
            DEFAULT.annual_limit,
        )
        masks[over] |= np.uint64(Rule.ANNUAL_LIMIT_EXCEEDED.bit)
        tax = pl.Series(self.computed_tax[base_of_row])
        tax = pl.select(
            pl.when(pl.Series(self.tax_skipped()[base_of_row])).then(None).otherwise(tax)
        ).to_series()
        return pl.DataFrame(
            {
                "ebp_code": self.ebp.gather(base_of_row),
                "order_no": self.order_no.gather(base_of_row),
                "reasons": reasons_of(masks),
                "reason_mask": pl.Series(masks, dtype=pl.UInt64),
                "verdict": _verdicts(masks),
                "computed_tax": to_decimal_series(tax.alias("computed_tax")),
                "limit_value": to_decimal_series(pl.Series("limit_value", limit_value)),
            }
        )


def _take(frame: pl.DataFrame, rows: np.ndarray) -> pl.DataFrame:
    """Rows of `frame` by position; one chunk first, as gathering across chunks is ~10x slower."""
    return frame.rechunk()[rows]


def _verdicts(masks: np.ndarray) -> pl.Series:
    """SPEC §3 verdict of each mask under the default severities."""
    review = sum(r.bit for r in Rule if DEFAULT_SEVERITY[r] == "review")
    verdict = np.where(
        (masks & np.uint64(REJECT_BITS)) != 0,
        "reject",
        np.where((masks & np.uint64(review)) != 0, "review", "pass"),
    )
    return pl.Series("verdict", verdict)


def _with_decimals(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Money and qty columns as Decimal(18, 4), exactly (SPEC §1)."""
    columns = [c for c in MONEY_COLUMNS.get(name, ()) if c in frame.columns]
    if not columns:
        return frame
    return frame.with_columns(
        [to_decimal_series(frame[c].cast(pl.Int64).alias(c)) for c in columns]
    )
