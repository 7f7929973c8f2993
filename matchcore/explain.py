"""Why one order got its verdict: its documents and filings side by side, and every rule's
outcome (pass / fail / skipped / off) with the values it compared.

Failures come from the engine's `reason_mask` (the engines decide); this module only looks the
order's few rows up and states the comparisons, so a per-order Python walk is cheap here.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal

import msgspec
import polars as pl
import polars.selectors as cs

from .engine.base import CanonicalTables, EngineOutput
from .exceptions import InputError
from .masking import mask_value
from .money import format_money
from .render import time_value_text
from .report.aggregate import DESCRIBED_EXPECTATIONS
from .rules import LINE_RULES, PARTY_RULES, Party, Rule, RuleSettings
from .schema import (
    ENTERPRISES,
    IDENTITY_COLUMNS,
    INVENTORIES,
    MONEY_SCALE,
    ORDER_ITEMS,
    ORDERS,
    PAYMENTS,
    PRODUCTS,
    ROLE_BITS,
    WAYBILLS,
    Kind,
    Table,
)

Outcome = Literal["pass", "fail", "skipped", "off"]
Document = dict[str, str | None]


class RuleOutcome(msgspec.Struct, frozen=True):
    """One rule's outcome for the order, the values it compared, and its exception rows."""

    rule: str
    severity: str
    outcome: Outcome
    field: str = ""
    expected: str = ""
    actual: str = ""
    note: str = ""
    exceptions: list[dict[str, Any]] = []


class Explanation(msgspec.Struct, frozen=True):
    """An order's verdict explained: documents, filings and rule outcomes (identity masked)."""

    ebp_code: str
    order_no: str
    verdict: str
    reasons: list[str]
    copies: int
    masked: bool
    order: Document
    payments: list[Document]
    waybills: list[Document]
    inventory: Document | None
    items: list[Document]
    products: list[Document]
    enterprises: list[Document]
    rules: list[RuleOutcome]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (what `matchcore explain --json` prints)."""
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]

    def outcome(self, rule: Rule | str) -> RuleOutcome:
        """The outcome of one rule, by `Rule` or code."""
        code = rule.name if isinstance(rule, Rule) else str(rule).upper()
        return next(r for r in self.rules if r.rule == code)

    def print(self, console: Any = None) -> None:
        """Show the explanation as rich tables (stdout unless a console is given)."""
        print_explanation(self, console)


# -- value formatting --------------------------------------------------------------------------


def _roles_text(bits: int | None) -> str | None:
    if bits is None:
        return None
    return ",".join(role for role, bit in ROLE_BITS.items() if bits & bit)


def _value_text(table: Table, column: str, value: object, mask: bool) -> str | None:
    """One canonical value as display text: money/qty exact, times local, identity masked."""
    if value is None:
        return None
    kind = table.column(column).kind
    if kind in (Kind.MONEY, Kind.QTY):
        return format_money(int(value))  # type: ignore[call-overload]
    if kind is Kind.TIME:
        return time_value_text(int(value))  # type: ignore[call-overload]
    if kind is Kind.ROLES:
        return _roles_text(int(value))  # type: ignore[call-overload]
    if mask and table.column(column).identity:
        return mask_value(str(value), column)
    return str(value)


def _document(table: Table, row: dict[str, Any] | None, mask: bool) -> Document | None:
    """A canonical row as column -> display text (schema columns only, in schema order)."""
    if row is None:
        return None
    doc: Document = {c: _value_text(table, c, row.get(c), mask) for c in table.column_names}
    if "_row" in row:
        doc["source_row"] = str(row["_row"])
    return doc


# -- looking the order's rows up ------------------------------------------------------------------


def _dicts(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts, times as int64 microseconds: Python's `datetime` cannot hold every time
    a table may (years beyond 1-9999 in UTC or in China)."""
    return frame.with_columns(cs.datetime().to_physical()).to_dicts()


def _row(frame: pl.DataFrame, position: int) -> dict[str, Any]:
    """The row at `position` as `_dicts` gives it."""
    return _dicts(frame.slice(position, 1))[0]


class _Order:
    """The canonical rows of one order row and its linked documents (raw values)."""

    def __init__(
        self, tables: CanonicalTables, raw: EngineOutput, position: int, copies: int
    ) -> None:
        self.tables = tables
        self.position = position
        self.copies = copies
        self.order: dict[str, Any] = _row(tables.orders, position)
        self.out: dict[str, Any] = raw.orders.row(position, named=True)
        self.subjects = raw.subjects.filter(pl.col("order_row") == position)
        key = (pl.col("ebp_code") == self.order["ebp_code"]) & (
            pl.col("order_no") == self.order["order_no"]
        )
        self.payments = self._linked(tables.payments, self.out["payment_row"], key)
        self.waybills = self._linked(tables.waybills, self.out["waybill_row"], key)
        self.items = _dicts(tables.order_items.filter(key).sort("gnum"))
        inventory_row = self.out["inventory_row"]
        self.inventory = (
            _row(tables.inventories, inventory_row)
            if tables.inventories is not None and inventory_row is not None
            else None
        )
        item_nos = [item["item_no"] for item in self.items]
        self.products = {
            p["item_no"]: p
            for p in _dicts(
                tables.products.filter(
                    (pl.col("ebc_code") == self.order["ebc_code"])
                    & pl.col("item_no").is_in(item_nos)
                )
            )
        }

    @staticmethod
    def _linked(frame: pl.DataFrame, row: int | None, key: pl.Expr) -> list[dict[str, Any]]:
        """The single linked row, or every row carrying the order's key when there are several."""
        if row is not None:
            return [_row(frame, row)]
        return _dicts(frame.filter(key))

    @property
    def payment(self) -> dict[str, Any] | None:
        return self.payments[0] if self.out["payment_count"] == 1 and self.payments else None

    @property
    def waybill(self) -> dict[str, Any] | None:
        return self.waybills[0] if self.out["waybill_count"] == 1 and self.waybills else None

    def parties(self) -> list[tuple[Party, str]]:
        """The (party, code) pairs the party rules check (docs/internals.md)."""
        found = [(Party.EBP, self.order["ebp_code"]), (Party.EBC, self.order["ebc_code"])]
        if self.payment is not None:
            found.append((Party.PAY, self.payment["pay_code"]))
        if self.waybill is not None:
            found.append((Party.LOGISTICS, self.waybill["logistics_code"]))
        if self.inventory is not None:
            found.append((Party.AGENT, self.inventory["agent_code"]))
        return [(party, code) for party, code in found if code is not None]

    def enterprise(self, code: str) -> dict[str, Any] | None:
        rows = self.tables.enterprises.filter(pl.col("code") == code)
        return _row(rows, 0) if rows.height else None


def _find_position(tables: CanonicalTables, order_no: str, ebp_code: str | None) -> tuple[int, int]:
    """(position of the first order row with this key, number of rows with the key)."""
    wanted = pl.col("order_no") == order_no.strip()
    if ebp_code is not None:
        wanted &= pl.col("ebp_code") == ebp_code.strip()
    found = tables.orders.select("ebp_code", "order_no").with_row_index("pos").filter(wanted)
    where = f" on platform {ebp_code!r}" if ebp_code is not None else ""
    if found.height == 0:
        raise InputError(f"orders: no order {order_no!r}{where}")
    platforms = found.get_column("ebp_code").unique(maintain_order=True).to_list()
    if len(platforms) > 1:
        raise InputError(
            f"orders: order {order_no!r} exists on several platforms "
            f"({', '.join(map(str, platforms))}); choose one with --ebp-code"
        )
    return int(found.get_column("pos")[0]), found.height


# -- the values each rule compares -------------------------------------------------------------

Check = tuple[str, str, str, str]  # field, expected, actual, note
SKIP = "skip"  # note prefix meaning "the rule did not run for this order"


def _m(units: int | None) -> str:
    return format_money(units) or ""


def _exact_text(value: Decimal) -> str:
    """An exact CNY amount as plain text with at least two decimals ("100.00", "1.23456")."""
    text = f"{value.normalize():f}"
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


class _Checks:
    """States each rule's comparison for one order; a note starting with SKIP means skipped."""

    def __init__(self, o: _Order, settings: RuleSettings, mask: bool) -> None:
        self.o = o
        self.params = settings.parameters
        self.mask = mask

    def ident(self, value: str | None, column: str) -> str:
        if value is None:
            return ""
        return mask_value(value, column) or "" if self.mask else value

    def need_payment(self) -> str:
        return "" if self.o.payment is not None else f"{SKIP}: needs exactly one payment"

    def need_waybill(self) -> str:
        return "" if self.o.waybill is not None else f"{SKIP}: needs exactly one waybill"

    def need_items(self) -> str:
        return "" if self.o.items else f"{SKIP}: the order has no lines"

    # documents counted
    def counted(self, field: str, count_column: str, expected: str) -> Check:
        return field, expected, str(self.o.out[count_column]), ""

    # payment comparisons
    def pay_amount(self) -> Check:
        pay, order = self.o.payment, self.o.order
        tolerance = f" ± {_m(self.params.amount_tolerance)}" if self.params.amount_tolerance else ""
        actual = _m(pay["amount_paid"]) if pay else ""
        return "amount_paid", _m(order["actual_paid"]) + tolerance, actual, self.need_payment()

    def pay_compare(self, field: str, order_column: str, pay_column: str) -> Check:
        pay = self.o.payment
        expected = self.ident(self.o.order[order_column], order_column)
        actual = self.ident(pay[pay_column], pay_column) if pay else ""
        return field, expected, actual, self.need_payment()

    def pay_reference(self) -> Check:
        pay, order = self.o.payment, self.o.order
        cols = ("pay_code", "pay_transaction_id")
        expected = " / ".join(order[c] or "(not named)" for c in cols)
        actual = " / ".join(pay[c] or "" for c in cols) if pay else ""
        note = self.need_payment()
        if not note and all(order[c] is None for c in cols):
            note = "the order names no payment reference"
        return "pay_code / pay_transaction_id", expected, actual, note

    def currency(self) -> Check:
        pay = self.o.payment
        actual = (pay["currency"] or "142") if pay else ""
        return "currency", self.o.order["currency"] or "142", actual, self.need_payment()

    # order arithmetic
    def order_total(self) -> Check:
        o = self.o.order
        total = o["goods_value"] + o["freight"] - o["discount"] + o["tax_total"]
        note = "goods_value + freight − discount + tax_total"
        return "actual_paid", _m(total), _m(o["actual_paid"]), note

    def goods_value(self) -> Check:
        items_total = self.o.out["items_total"]
        return "goods_value", _m(items_total), _m(self.o.order["goods_value"]), self.need_items()

    def line_totals(self) -> Check:
        expected, actual = [], []
        for item in self.o.items:
            # qty and price are both ten-thousandths: the product is in 1e-8 CNY, shown exactly.
            exact = Decimal(item["qty"]) * Decimal(item["price"]) / Decimal(MONEY_SCALE**2)
            expected.append(f"{item['gnum']}: {_exact_text(exact)}")
            actual.append(f"{item['gnum']}: {_m(item['total_price'])}")
        note = self.need_items() or "qty × price per line (gnum); tolerance 0.01"
        return "total_price", "; ".join(expected), "; ".join(actual), note

    # waybill comparisons
    def consignee(self) -> Check:
        wb = self.o.waybill
        expected = self.ident(self.o.order["consignee"], "consignee")
        actual = self.ident(wb["consignee"], "consignee") if wb else ""
        return "consignee", expected, actual, self.need_waybill()

    def consignee_phone(self) -> Check:
        wb, column = self.o.waybill, "consignee_telephone"
        order_phone = self.o.order[column]
        wb_phone = wb[column] if wb else None
        note = self.need_waybill()
        if not note and (order_phone is None or wb_phone is None):
            note = f"{SKIP}: a phone is missing"
        digits = lambda v: "".join(ch for ch in v or "" if "0" <= ch <= "9")  # noqa: E731
        expected = self.ident(digits(order_phone) or None, column)
        return column, expected, self.ident(digits(wb_phone) or None, column), note

    def arrival(self) -> Check:
        pay, wb = self.o.payment, self.o.waybill
        window = f"≤ {self.params.arrival_window} s"
        if pay is None or wb is None:
            return "arrival_window", window, "", f"{SKIP}: needs one payment and one waybill"
        times = [self.o.order["app_time"], pay["pay_time"], wb["app_time"]]
        seconds = (max(times) - min(times)) / 1_000_000  # times are microseconds
        return "arrival_window", window, f"{seconds:g} s ({seconds / 3600:.1f} h)", ""

    def buyer_id(self) -> Check:
        o = self.o.order
        note = "" if o["buyer_id_type"] == "1" else f"{SKIP}: buyer_id_type is not 1"
        actual = self.ident(o["buyer_id_number"], "buyer_id_number")
        return "buyer_id_number", "GB 11643 resident ID", actual, note

    def single_limit(self) -> Check:
        limit_value = self.o.out["limit_value"]
        return "limit_value", f"≤ {_m(self.params.single_limit)}", _m(limit_value), ""

    def annual_limit(self) -> Check:
        spent, value = self.o.out["annual_spent"], self.o.out["limit_value"]
        expected = f"≤ {_m(self.params.annual_limit)}"
        if spent is None:
            return "annual_limit", expected, "", f"{SKIP}: the order fails another reject rule"
        note = f"spent before {_m(spent)} + limit_value {_m(value)}"
        return "annual_limit", expected, _m(spent + value), note

    # filings
    def party_states(
        self, expected: str, describe: Callable[[Party, dict[str, Any] | None], str]
    ) -> Check:
        actual = "; ".join(
            f"{party.role} {code}: {describe(party, self.o.enterprise(code))}"
            for party, code in self.o.parties()
        )
        return "parties", expected, actual, ""

    @staticmethod
    def filed_state(party: Party, ent: dict[str, Any] | None) -> str:
        if ent is None:
            return "not filed"
        roles = _roles_text(ent["roles"]) or "none"
        has_role = bool(ent["roles"] & ROLE_BITS[party.role])
        return f"filed as {party.role}" if has_role else f"filed without the role (roles {roles})"

    def active_state(self, party: Party, ent: dict[str, Any] | None) -> str:
        if ent is None:
            return "not filed"
        when = self.o.order["app_time"]
        if ent["status"] != "active":
            return f"status {ent['status']}"
        if ent["valid_from"] is not None and when < ent["valid_from"]:
            return f"valid from {time_value_text(ent['valid_from'])}"
        if ent["valid_to"] is not None and when >= ent["valid_to"]:
            return f"valid to {time_value_text(ent['valid_to'])}"
        return "active"

    @staticmethod
    def credit_state(party: Party, ent: dict[str, Any] | None) -> str:
        return "not filed" if ent is None else f"credit {ent['credit_class']}"

    def product_state(self, item: dict[str, Any]) -> str:
        product = self.o.products.get(item["item_no"])
        when = self.o.order["app_time"]
        if product is None:
            return "not filed"
        if product["status"] != "active":
            return f"status {product['status']}"
        if product["valid_from"] is not None and when < product["valid_from"]:
            return f"valid from {time_value_text(product['valid_from'])}"
        if product["valid_to"] is not None and when >= product["valid_to"]:
            return f"valid to {time_value_text(product['valid_to'])}"
        return "filed"

    def products_filed(self) -> Check:
        states = [f"{i['gnum']} {i['item_no']}: {self.product_state(i)}" for i in self.o.items]
        return "item_no", "filed and active", "; ".join(states), self.need_items()

    def hs_list(self, list_name: str, expected: str) -> Check:
        hs_lists = self.o.tables.hs_lists
        prefixes = (
            []
            if hs_lists is None
            else hs_lists.filter(pl.col("list") == list_name)["hs_prefix"].to_list()
        )
        states = []
        for item in self.o.items:
            if self.product_state(item) != "filed":
                continue
            hs = self.o.products[item["item_no"]]["hs_code"]
            listed = any(hs.startswith(prefix) for prefix in prefixes)
            states.append(f"{item['gnum']} {hs}: {'listed' if listed else 'not listed'}")
        note = self.need_items() or ("" if states else "no filed line to check")
        if hs_lists is None and not note:
            note = "no hs_lists table"
        return "hs_code", expected, "; ".join(states), note

    def tax(self) -> Check:
        computed = self.o.out["computed_tax"]
        tolerance = _m(self.params.tax_tolerance)
        if computed is None:
            note = f"{SKIP}: no lines, a line not filed, or a consumption rate ≥ 1"
            return "tax_total", "", _m(self.o.order["tax_total"]), note
        return "tax_total", f"{_m(computed)} ± {tolerance}", _m(self.o.order["tax_total"]), ""

    # inventory
    def inventory_count(self) -> Check:
        return "inventory", "1", "1" if self.o.inventory is not None else "0", ""

    def inventory_match(self) -> Check:
        inv, o, wb = self.o.inventory, self.o.order, self.o.waybill
        if inv is None:
            return "inventory", "", "", f"{SKIP}: the order has no inventory"
        pairs = [("ebc_code", o["ebc_code"], inv["ebc_code"])]
        pairs.append(
            (
                "buyer_id_number",
                self.ident(o["buyer_id_number"], "buyer_id_number"),
                self.ident(inv["buyer_id_number"], "buyer_id_number"),
            )
        )
        if wb is not None:
            for column in ("logistics_code", "logistics_no"):
                pairs.append((column, wb[column], inv[column]))
        fields = ", ".join(p[0] for p in pairs)
        return (
            fields,
            " / ".join(str(p[1]) for p in pairs),
            " / ".join(str(p[2]) for p in pairs),
            "" if wb is not None else "logistics not compared: no single waybill",
        )

    def table(self) -> dict[Rule, Callable[[], Check]]:
        """Rule -> the function stating its comparison for this order."""
        return {
            Rule.ORDER_DUPLICATE: lambda: self.counted("order", "order_copies", "1"),
            Rule.PAYMENT_MISSING: lambda: self.counted("payment", "payment_count", ">=1"),
            Rule.PAYMENT_DUPLICATE: lambda: self.counted("payment", "payment_count", "<=1"),
            Rule.WAYBILL_MISSING: lambda: self.counted("waybill", "waybill_count", ">=1"),
            Rule.WAYBILL_DUPLICATE: lambda: self.counted("waybill", "waybill_count", "<=1"),
            Rule.ITEMS_MISSING: lambda: self.counted("order_items", "item_count", ">=1"),
            Rule.PAY_AMOUNT_MISMATCH: self.pay_amount,
            Rule.PAYER_ID_MISMATCH: lambda: self.pay_compare(
                "payer_id_number", "buyer_id_number", "payer_id_number"
            ),
            Rule.PAYER_NAME_MISMATCH: lambda: self.pay_compare(
                "payer_name", "buyer_name", "payer_name"
            ),
            Rule.PAY_REFERENCE_MISMATCH: self.pay_reference,
            Rule.CURRENCY_MISMATCH: self.currency,
            Rule.ORDER_TOTAL_MISMATCH: self.order_total,
            Rule.GOODS_VALUE_MISMATCH: self.goods_value,
            Rule.LINE_TOTAL_MISMATCH: self.line_totals,
            Rule.CONSIGNEE_MISMATCH: self.consignee,
            Rule.CONSIGNEE_PHONE_MISMATCH: self.consignee_phone,
            Rule.ARRIVAL_WINDOW_EXCEEDED: self.arrival,
            Rule.BUYER_ID_INVALID: self.buyer_id,
            Rule.SINGLE_LIMIT_EXCEEDED: self.single_limit,
            Rule.ANNUAL_LIMIT_EXCEEDED: self.annual_limit,
            Rule.ENTERPRISE_NOT_FILED: lambda: self.party_states(
                "each party filed with its role", self.filed_state
            ),
            Rule.ENTERPRISE_INACTIVE: lambda: self.party_states(
                "each party active and valid", self.active_state
            ),
            Rule.ENTERPRISE_DISHONEST: lambda: self.party_states(
                "no party dishonest", self.credit_state
            ),
            Rule.PRODUCT_NOT_FILED: self.products_filed,
            Rule.PRODUCT_NOT_ON_POSITIVE_LIST: lambda: self.hs_list(
                "positive", "on a positive prefix"
            ),
            Rule.PRODUCT_PROHIBITED: lambda: self.hs_list("prohibited", "on no prohibited prefix"),
            Rule.TAX_MISMATCH: self.tax,
            Rule.INVENTORY_MISSING: self.inventory_count,
            Rule.INVENTORY_MISMATCH: self.inventory_match,
        }


def _off_reason(rule: Rule, tables: CanonicalTables, settings: RuleSettings) -> str | None:
    """Why a rule is off for this run (severity off, or its optional table absent), else None."""
    if not settings.enabled(rule):
        return "severity off"
    if rule is Rule.PRODUCT_NOT_ON_POSITIVE_LIST and tables.hs_lists is None:
        return "no hs_lists table"
    if rule in (Rule.INVENTORY_MISSING, Rule.INVENTORY_MISMATCH) and tables.inventories is None:
        return "no inventories table"
    return None


def _order_exceptions(exceptions: pl.DataFrame, order: dict[str, Any]) -> pl.DataFrame:
    if exceptions.height == 0:
        return exceptions
    return exceptions.filter(
        (pl.col("ebp_code") == order["ebp_code"]) & (pl.col("order_no") == order["order_no"])
    )


def _masked_exception(row: dict[str, Any], mask: bool) -> dict[str, Any]:
    """An exception row as JSON-able text; identity values masked (again) when asked."""
    out = {k: (str(v) if v is not None else None) for k, v in row.items()}
    field = out.get("field") or ""
    if mask and field in IDENTITY_COLUMNS:
        described = out.get("rule") in DESCRIBED_EXPECTATIONS
        for key in ("actual",) if described else ("expected", "actual"):
            out[key] = mask_value(out.get(key), field)
    return out


def _outcomes(o: _Order, result: Any, settings: RuleSettings, mask: bool) -> list[RuleOutcome]:
    checks = _Checks(o, settings, mask).table()
    mask_bits = int(o.out["reason_mask"] or 0)
    exceptions = _order_exceptions(result.exceptions, o.order)
    outcomes = []
    for rule in Rule:
        severity = settings.severity_of(rule)
        field, expected, actual, note = checks[rule]()
        off = _off_reason(rule, o.tables, settings)
        rows: list[dict[str, Any]] = []
        if off is not None:
            outcome: Outcome = "off"
            expected, actual, note = "", "", off
        elif mask_bits & rule.bit:
            outcome = "fail"
            rows = [
                _masked_exception(r, mask)
                for r in exceptions.filter(pl.col("rule") == rule.name).to_dicts()
            ]
            if rule in PARTY_RULES | LINE_RULES and not note:
                note = "subjects: " + ", ".join(sorted({str(r.get("subject")) for r in rows}))
        elif note.startswith(SKIP):
            outcome = "skipped"
            note = note[len(SKIP) + 2 :]
        else:
            outcome = "pass"
        outcomes.append(
            RuleOutcome(rule.name, severity, outcome, field, expected, actual, note, rows)
        )
    return outcomes


def _enterprise_docs(o: _Order, mask: bool) -> list[Document]:
    docs = []
    for party, code in o.parties():
        doc = _document(ENTERPRISES, o.enterprise(code), mask) or {"code": code, "filed": "no"}
        docs.append({"party": party.role, **doc})
    return docs


def explain(
    result: Any, order_no: str, ebp_code: str | None = None, *, mask: bool = True
) -> Explanation:
    """Explain one order of a `MatchResult`: its documents, filings and every rule's outcome.

    `ebp_code` picks the platform when the order number exists on several. With duplicated
    order rows the first copy is explained (`copies` says how many there are). Identity values
    are masked unless `mask=False`. Raises InputError when the order is not in the result.
    """
    tables: CanonicalTables | None = getattr(result, "_tables", None)
    raw: EngineOutput | None = getattr(result, "_raw", None)
    if tables is None or raw is None:
        raise InputError("explain needs a result made by matchcore.match (it keeps the inputs)")
    settings: RuleSettings = getattr(result, "_settings", None) or RuleSettings()
    position, copies = _find_position(tables, order_no, ebp_code)
    o = _Order(tables, raw, position, copies)
    verdict_row = result.verdicts.row(position, named=True)
    order_doc = _document(ORDERS, o.order, mask) or {}
    return Explanation(
        ebp_code=str(o.order["ebp_code"]),
        order_no=str(o.order["order_no"]),
        verdict=str(verdict_row["verdict"]),
        reasons=[str(r) for r in verdict_row["reasons"] or []],
        copies=copies,
        masked=mask,
        order=order_doc,
        payments=[_document(PAYMENTS, p, mask) or {} for p in o.payments],
        waybills=[_document(WAYBILLS, w, mask) or {} for w in o.waybills],
        inventory=_document(INVENTORIES, o.inventory, mask),
        items=[_document(ORDER_ITEMS, i, mask) or {} for i in o.items],
        products=[_document(PRODUCTS, p, mask) or {} for p in o.products.values()],
        enterprises=_enterprise_docs(o, mask),
        rules=_outcomes(o, result, settings, mask),
    )


# -- terminal view ----------------------------------------------------------------------------

#: Rows of the side-by-side view: label, then the column in order, payment, waybill, inventory.
SIDE_BY_SIDE: tuple[tuple[str, str | None, str | None, str | None, str | None], ...] = (
    ("order_no", "order_no", "order_no", "order_no", "order_no"),
    ("ebp_code", "ebp_code", "ebp_code", "ebp_code", "ebp_code"),
    ("ebc_code", "ebc_code", None, None, "ebc_code"),
    ("amount", "actual_paid", "amount_paid", None, None),
    ("currency", "currency", "currency", None, None),
    ("buyer / payer id", "buyer_id_number", "payer_id_number", None, "buyer_id_number"),
    ("buyer / payer name", "buyer_name", "payer_name", None, None),
    ("pay_code", "pay_code", "pay_code", None, None),
    ("pay_transaction_id", "pay_transaction_id", "pay_transaction_id", None, None),
    ("consignee", "consignee", None, "consignee", None),
    ("consignee_telephone", "consignee_telephone", None, "consignee_telephone", None),
    ("consignee_address", "consignee_address", None, "consignee_address", None),
    ("logistics_code", None, None, "logistics_code", "logistics_code"),
    ("logistics_no", None, None, "logistics_no", "logistics_no"),
    ("time", "app_time", "pay_time", "app_time", "app_time"),
    ("goods_value", "goods_value", None, None, None),
    ("freight", "freight", None, "freight", None),
    ("discount", "discount", None, None, None),
    ("tax_total", "tax_total", None, None, None),
    ("source_row", "source_row", "source_row", "source_row", "source_row"),
)
OUTCOME_STYLES = {"pass": "green", "fail": "bold red", "skipped": "yellow", "off": "dim"}
VERDICT_STYLES = {"pass": "bold green", "review": "bold yellow", "reject": "bold red"}


def _cell(doc: Document | None, column: str | None) -> str:
    """A document value for a rich table, with markup characters escaped (input text)."""
    from rich.markup import escape

    if doc is None or column is None:
        return ""
    return escape(doc.get(column) or "")


def _documents_table(ex: Explanation) -> Any:
    from rich.table import Table as RichTable

    pay = ex.payments[0] if ex.payments else None
    wb = ex.waybills[0] if ex.waybills else None
    heads = [
        "order" + (f" (1 of {ex.copies})" if ex.copies > 1 else ""),
        "payment" + (f" (1 of {len(ex.payments)})" if len(ex.payments) > 1 else ""),
        "waybill" + (f" (1 of {len(ex.waybills)})" if len(ex.waybills) > 1 else ""),
        "inventory",
    ]
    table = RichTable(title="Documents", title_justify="left")
    table.add_column("", style="bold")
    for head in heads:
        table.add_column(head)
    for label, *columns in SIDE_BY_SIDE:
        docs = (ex.order, pay, wb, ex.inventory)
        cells = [_cell(doc, col) for doc, col in zip(docs, columns, strict=True)]
        if any(cells):
            table.add_row(label, *cells)
    return table


def _rows_table(title: str, docs: list[Document], columns: list[str]) -> Any:
    from rich.table import Table as RichTable

    table = RichTable(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for doc in docs:
        table.add_row(*[_cell(doc, c) for c in columns])
    return table


def _lines(text: str) -> str:
    """Per-line or per-party values ("a; b") one per terminal line, with markup escaped."""
    from rich.markup import escape

    return escape(text).replace("; ", "\n")


def _rules_table(ex: Explanation) -> Any:
    from rich.table import Table as RichTable

    table = RichTable(title="Rules", title_justify="left")
    table.add_column("rule", no_wrap=True)
    for column in ("severity", "outcome", "field", "expected", "actual", "note"):
        table.add_column(column, overflow="fold")
    for r in ex.rules:
        style = OUTCOME_STYLES[r.outcome]
        table.add_row(
            r.rule,
            r.severity,
            f"[{style}]{r.outcome}[/]",
            r.field,
            _lines(r.expected),
            _lines(r.actual),
            _lines(r.note),
            style="dim" if r.outcome == "off" else None,
        )
    return table


def print_explanation(ex: Explanation, console: Any = None) -> None:
    """Print an explanation as rich tables: documents side by side, lines, filings, rules."""
    from rich.console import Console
    from rich.markup import escape

    console = console or Console()
    style = VERDICT_STYLES.get(ex.verdict, "bold")
    reasons = ", ".join(ex.reasons) or "no failed rule"
    console.print(
        f"[bold]Order {escape(ex.ebp_code)} / {escape(ex.order_no)}[/]: "
        f"[{style}]{ex.verdict}[/] ({escape(reasons)})"
    )
    if ex.copies > 1:
        console.print(f"{ex.copies} order rows share this key; the first is explained.")
    console.print(_documents_table(ex))
    item_columns = ["gnum", "item_no", "item_name", "qty", "price", "total_price"]
    console.print(_rows_table("Order lines", ex.items, item_columns))
    product_columns = ["item_no", "hs_code", "vat_rate", "consumption_tax_rate", "status",
                       "valid_from", "valid_to"]  # fmt: skip
    console.print(_rows_table("Product filings", ex.products, product_columns))
    enterprise_columns = ["party", "code", "name", "roles", "status", "credit_class",
                          "valid_from", "valid_to"]  # fmt: skip
    console.print(_rows_table("Enterprise filings", ex.enterprises, enterprise_columns))
    console.print(_rules_table(ex))
    if not ex.masked:
        console.print("[yellow]Identity values are shown in clear.[/]")
