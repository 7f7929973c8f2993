"""SPEC §3 written by hand as DuckDB SQL over the canonical tables: the "good data engineer"
baseline of the comparative benchmark. Gives, per order row, the `reason_mask`, `computed_tax`
and `limit_value`; the §3.1 annual walk is exact SQL too (window sums settle the buyer-years that
never reach the limit, a recursive CTE walks the few that do).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import duckdb
import polars as pl

from matchcore.engine.base import CanonicalTables
from matchcore.rules import Party, Rule, RuleSettings
from matchcore.schema import MONEY_SCALE, ROLE_BITS, ROW

#: Fields of an order's single linked payment / waybill that the checks read.
PAYMENT_FIELDS = (
    "pay_code",
    "pay_transaction_id",
    "payer_id_number",
    "payer_name",
    "amount_paid",
    "currency",
    "pay_time",
)
WAYBILL_FIELDS = ("logistics_code", "logistics_no", "consignee", "consignee_telephone", "app_time")

#: Columns each canonical table contributes to the SQL (only these are handed to DuckDB).
USED_COLUMNS: dict[str, tuple[str, ...]] = {
    "orders": (
        ROW,
        "ebp_code",
        "order_no",
        "ebc_code",
        "goods_value",
        "freight",
        "discount",
        "tax_total",
        "actual_paid",
        "currency",
        "buyer_id_type",
        "buyer_id_number",
        "buyer_name",
        "pay_code",
        "pay_transaction_id",
        "consignee",
        "consignee_telephone",
        "app_time",
        "_app_year",
        "_app_ymd",
    ),
    "order_items": ("ebp_code", "order_no", "item_no", "qty", "price", "total_price"),
    "payments": ("ebp_code", "order_no", *PAYMENT_FIELDS),
    "waybills": ("ebp_code", "order_no", *WAYBILL_FIELDS),
    "inventories": (
        "ebp_code",
        "order_no",
        "ebc_code",
        "buyer_id_number",
        "logistics_code",
        "logistics_no",
        "agent_code",
    ),
    "products": (
        "ebc_code",
        "item_no",
        "hs_code",
        "vat_rate",
        "consumption_tax_rate",
        "status",
        "valid_from",
        "valid_to",
    ),
    "enterprises": ("code", "roles", "credit_class", "status", "valid_from", "valid_to"),
    "hs_lists": ("hs_prefix", "list"),
    "quota_ledger": ("buyer_id_number", "year", "used"),
}

#: GB 11643 weights of the first 17 digits of a resident ID number.
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)

#: 0.01 CNY in units of qty × price (ten-thousandths squared).
LINE_TOTAL_TOLERANCE = 100 * MONEY_SCALE


@dataclass(frozen=True)
class Plan:
    """What the SQL depends on besides the data: which optional tables exist, the parameters."""

    inventory_rules: bool
    hs_lists: bool
    ledger: bool
    settings: RuleSettings


# --- documents linked to each order key --------------------------------------------------------


def waybill_edges_sql(plan: Plan) -> str:
    """(order key, waybill fields) for every order key a waybill names (docs/internals.md)."""
    direct = """
        SELECT ebp_code, order_no, logistics_code, logistics_no, consignee,
               consignee_telephone, app_time
        FROM waybills WHERE order_no IS NOT NULL OR ebp_code IS NOT NULL"""
    if not plan.inventory_rules:
        return direct
    return (
        direct
        + """
        UNION ALL
        SELECT i.ebp_code, i.order_no, w.logistics_code, w.logistics_no, w.consignee,
               w.consignee_telephone, w.app_time
        FROM waybills w JOIN inventories i
          ON w.logistics_code = i.logistics_code AND w.logistics_no = i.logistics_no
        WHERE w.order_no IS NULL AND w.ebp_code IS NULL"""
    )


def single_document_sql(source: str, prefix: str, columns: tuple[str, ...]) -> str:
    """Per order key: how many documents link, and the fields of one (used only when 1 links)."""
    fields = ", ".join(f"any_value({c}) AS {prefix}_{c}" for c in columns)
    return f"""
        SELECT ebp_code, order_no, count(*)::INTEGER AS {prefix}_count, {fields}
        FROM {source} GROUP BY ebp_code, order_no"""


def wide_orders_sql(plan: Plan) -> str:
    """Every order row with its key's copy count and its linked payment, waybill, inventory
    and line totals: the frame the order-level and party checks read."""
    payment = single_document_sql("payments", "pay", PAYMENT_FIELDS)
    waybill = single_document_sql("waybill_edges", "wb", WAYBILL_FIELDS)
    inventory_join = inventory_cols = ""
    if plan.inventory_rules:
        inventory_cols = """, i.ebc_code AS inv_ebc_code, i.buyer_id_number AS inv_buyer_id_number,
            i.logistics_code AS inv_logistics_code, i.logistics_no AS inv_logistics_no,
            i.agent_code AS inv_agent_code, i.order_no IS NOT NULL AS has_inventory"""
        inventory_join = "LEFT JOIN inventories i USING (ebp_code, order_no)"
    return f"""
        WITH waybill_edges AS ({waybill_edges_sql(plan)}),
        order_keys AS (
            SELECT ebp_code, order_no, count(*)::INTEGER AS order_copies
            FROM orders GROUP BY ebp_code, order_no),
        item_keys AS (
            SELECT ebp_code, order_no, count(*)::INTEGER AS item_count,
                   sum(total_price)::BIGINT AS items_total
            FROM order_items GROUP BY ebp_code, order_no),
        pay AS ({payment}),
        wb AS ({waybill})
        SELECT o.*, k.order_copies,
               coalesce(p.pay_count, 0) AS pay_count, p.* EXCLUDE (ebp_code, order_no, pay_count),
               coalesce(w.wb_count, 0) AS wb_count, w.* EXCLUDE (ebp_code, order_no, wb_count),
               coalesce(n.item_count, 0) AS item_count, n.items_total,
               o.goods_value + o.freight - o.discount AS limit_value,
               {buyer_id_parts_sql()}
               {inventory_cols}
        FROM orders o
        JOIN order_keys k USING (ebp_code, order_no)
        LEFT JOIN pay p USING (ebp_code, order_no)
        LEFT JOIN wb w USING (ebp_code, order_no)
        LEFT JOIN item_keys n USING (ebp_code, order_no)
        {inventory_join}"""


# --- line rules and §3.2 tax -------------------------------------------------------------------


def product_flags_sql(plan: Plan) -> str:
    """Products with `on_positive` / `prohibited` from the HS prefix lists."""
    if not plan.hs_lists:
        return "SELECT *, true AS on_positive, false AS prohibited FROM products"
    return """
        SELECT p.ebc_code, p.item_no, any_value(p.vat_rate) AS vat_rate,
               any_value(p.consumption_tax_rate) AS consumption_tax_rate,
               any_value(p.status) AS status, any_value(p.valid_from) AS valid_from,
               any_value(p.valid_to) AS valid_to,
               coalesce(bool_or(h.list = 'positive'), false) AS on_positive,
               coalesce(bool_or(h.list = 'prohibited'), false) AS prohibited
        FROM products p LEFT JOIN hs_lists h ON starts_with(p.hs_code, h.hs_prefix)
        GROUP BY p.ebc_code, p.item_no"""


def line_tax_sql(tax_discount: float) -> str:
    """t_i of SPEC §3.2 in float64, in the stated operation order; null when not finite."""
    share = (
        "CASE WHEN o.items_total = 0 THEN 0.0::DOUBLE ELSE "
        "(o.freight - o.discount)::DOUBLE * i.total_price::DOUBLE / o.items_total::DOUBLE END"
    )
    dutiable = f"(i.total_price::DOUBLE + {share})"
    c, v = "f.consumption_tax_rate", "f.vat_rate"
    consumption = f"({dutiable} * {c} / (1.0::DOUBLE - {c}))"
    vat = f"(({dutiable} + {consumption}) * {v})"
    raw = f"round_even({tax_discount!r}::DOUBLE * ({consumption} + {vat}), 0)"
    return f"CASE WHEN isfinite({raw}) THEN try_cast({raw} AS BIGINT) END"


def line_checks_sql(plan: Plan) -> str:
    """Per order row with lines: the line-rule failures and the §3.2 computed tax."""
    filed = """(f.item_no IS NOT NULL AND f.status = 'active'
                AND (f.valid_from IS NULL OR o.app_time >= f.valid_from)
                AND (f.valid_to IS NULL OR o.app_time < f.valid_to))"""
    line_total = (
        "abs(i.qty::HUGEINT * i.price::HUGEINT - i.total_price::HUGEINT * "
        f"{MONEY_SCALE}) > {LINE_TOTAL_TOLERANCE}"
    )
    # Halves of a cent go towards +inf: floor((Σt + 50) / 100) × 100 in exact integers.
    tax_sum = "(sum(t) + 50)"
    rounded = f"({tax_sum} - (({tax_sum} % 100) + 100) % 100)::BIGINT"
    return f"""
        SELECT _row,
               bool_or(line_total_bad) AS line_total_bad,
               bool_or(NOT filed) AS not_filed,
               bool_or(filed AND NOT on_positive) AS not_positive,
               bool_or(filed AND prohibited) AS prohibited,
               CASE WHEN bool_and(coalesce(filed AND rate < 1.0 AND t IS NOT NULL, false))
                    THEN {rounded} END AS computed_tax
        FROM (
            SELECT o._row, {line_total} AS line_total_bad, {filed} AS filed,
                   f.on_positive, f.prohibited, f.consumption_tax_rate AS rate,
                   {line_tax_sql(plan.settings.parameters.tax_discount)} AS t
            FROM wide o
            JOIN order_items i USING (ebp_code, order_no)
            LEFT JOIN product_flags f ON f.ebc_code = o.ebc_code AND f.item_no = i.item_no)
        GROUP BY _row"""


# --- party rules -------------------------------------------------------------------------------


def party_sources(plan: Plan) -> list[tuple[Party, str, str]]:
    """(party, code column of the wide frame, when the party is checked)."""
    sources = [
        (Party.EBP, "o.ebp_code", "true"),
        (Party.EBC, "o.ebc_code", "true"),
        (Party.PAY, "o.pay_pay_code", "o.pay_count = 1"),
        (Party.LOGISTICS, "o.wb_logistics_code", "o.wb_count = 1"),
    ]
    if plan.inventory_rules:
        sources.append((Party.AGENT, "o.inv_agent_code", "o.has_inventory"))
    return sources


def party_checks_sql(plan: Plan) -> tuple[str, dict[Rule, str]]:
    """The enterprise joins, and the failure expression of each party rule over them."""
    joins, not_filed, inactive, dishonest = [], [], [], []
    for party, code, checked in party_sources(plan):
        e = f"e_{party.role}"
        joins.append(f"LEFT JOIN enterprises {e} ON {e}.code = {code} AND {checked}")
        found = f"({checked} AND {e}.code IS NOT NULL)"
        not_filed.append(
            f"({checked} AND ({e}.code IS NULL OR ({e}.roles & {ROLE_BITS[party.role]}) = 0))"
        )
        inactive.append(
            f"({found} AND ({e}.status <> 'active'"
            f" OR ({e}.valid_from IS NOT NULL AND o.app_time < {e}.valid_from)"
            f" OR ({e}.valid_to IS NOT NULL AND o.app_time >= {e}.valid_to)))"
        )
        dishonest.append(f"({found} AND {e}.credit_class = 'dishonest')")
    checks = {
        Rule.ENTERPRISE_NOT_FILED: " OR ".join(not_filed),
        Rule.ENTERPRISE_INACTIVE: " OR ".join(inactive),
        Rule.ENTERPRISE_DISHONEST: " OR ".join(dishonest),
    }
    return "\n".join(joins), checks


# --- order-level rules -------------------------------------------------------------------------


def buyer_id_parts_sql() -> str:
    """The ID number's parts the GB 11643 check reads, computed once per order row."""
    b = "o.buyer_id_number"
    return f"""regexp_full_match({b}, '[0-9]{{17}}[0-9X]') AS id_well_formed,
               try_cast(substr({b}, 1, 17) AS BIGINT) AS id_first17,
               substr({b}, 18, 1) AS id_check,
               try_cast(substr({b}, 7, 8) AS INTEGER) AS id_ymd"""


def buyer_id_invalid_sql() -> str:
    """GB 11643: 17 digits + check character, a real birth date not after the order's day."""
    weighted = " + ".join(
        f"(o.id_first17 // {10 ** (16 - k)} % 10) * {w}" for k, w in enumerate(ID_WEIGHTS)
    )
    y, m, d = "(o.id_ymd // 10000)", "(o.id_ymd // 100 % 100)", "(o.id_ymd % 100)"
    leap = f"(({y} % 4 = 0 AND {y} % 100 <> 0) OR {y} % 400 = 0)"
    month_days = (
        f"CASE WHEN {m} = 2 THEN (CASE WHEN {leap} THEN 29 ELSE 28 END) "
        f"WHEN {m} IN (4, 6, 9, 11) THEN 30 ELSE 31 END"
    )
    # CASE guarantees the digit arithmetic only runs on well-formed numbers.
    valid = f"""CASE WHEN coalesce(o.id_well_formed, false) THEN
            o.id_check = substr('10X98765432', (({weighted}) % 11)::INTEGER + 1, 1)
            AND {y} >= 1 AND {m} BETWEEN 1 AND 12 AND {d} >= 1 AND {d} <= {month_days}
            AND o.id_ymd <= o._app_ymd
        ELSE false END"""
    return f"o.buyer_id_type = '1' AND NOT ({valid})"


def order_checks_sql(plan: Plan) -> dict[Rule, str]:
    """Failure expression of every rule decided on one wide order row (plus line aggregates)."""
    p = plan.settings.parameters
    has_pay, has_wb = "o.pay_count = 1", "o.wb_count = 1"
    digits = "regexp_replace({}, '[^0-9]', '', 'g')"
    times = "o.app_time, o.pay_pay_time, o.wb_app_time"
    checks = {
        Rule.ORDER_DUPLICATE: "o.order_copies > 1",
        Rule.PAYMENT_MISSING: "o.pay_count = 0",
        Rule.PAYMENT_DUPLICATE: "o.pay_count > 1",
        Rule.WAYBILL_MISSING: "o.wb_count = 0",
        Rule.WAYBILL_DUPLICATE: "o.wb_count > 1",
        Rule.ITEMS_MISSING: "o.item_count = 0",
        Rule.PAY_AMOUNT_MISMATCH: f"""{has_pay}
            AND abs(o.pay_amount_paid - o.actual_paid) > {p.amount_tolerance}""",
        Rule.PAYER_ID_MISMATCH: f"""{has_pay}
            AND o.pay_payer_id_number IS DISTINCT FROM o.buyer_id_number""",
        Rule.PAYER_NAME_MISMATCH: f"""{has_pay}
            AND o.pay_payer_name IS DISTINCT FROM o.buyer_name""",
        Rule.PAY_REFERENCE_MISMATCH: f"""{has_pay} AND (
            (o.pay_code IS NOT NULL AND o.pay_code IS DISTINCT FROM o.pay_pay_code)
            OR (o.pay_transaction_id IS NOT NULL
                AND o.pay_transaction_id IS DISTINCT FROM o.pay_pay_transaction_id))""",
        Rule.CURRENCY_MISMATCH: f"{has_pay} AND o.currency IS DISTINCT FROM o.pay_currency",
        Rule.ORDER_TOTAL_MISMATCH: (
            "abs(o.goods_value + o.freight - o.discount + o.tax_total - o.actual_paid)"
            f" > {p.amount_tolerance}"
        ),
        Rule.GOODS_VALUE_MISMATCH: f"""o.item_count > 0
            AND abs(o.goods_value - o.items_total) > {p.amount_tolerance}""",
        Rule.LINE_TOTAL_MISMATCH: "l.line_total_bad",
        Rule.CONSIGNEE_MISMATCH: f"{has_wb} AND o.wb_consignee IS DISTINCT FROM o.consignee",
        Rule.CONSIGNEE_PHONE_MISMATCH: f"""{has_wb} AND o.consignee_telephone IS NOT NULL
            AND o.wb_consignee_telephone IS NOT NULL
            AND {digits.format("o.consignee_telephone")}
                <> {digits.format("o.wb_consignee_telephone")}""",
        Rule.ARRIVAL_WINDOW_EXCEEDED: f"""{has_pay} AND {has_wb}
            AND epoch_us(greatest({times})) - epoch_us(least({times})) > {p.arrival_window_us}""",
        Rule.BUYER_ID_INVALID: buyer_id_invalid_sql(),
        Rule.SINGLE_LIMIT_EXCEEDED: f"o.limit_value > {p.single_limit}",
        Rule.PRODUCT_NOT_FILED: "l.not_filed",
        Rule.PRODUCT_PROHIBITED: "l.prohibited",
        Rule.TAX_MISMATCH: f"""l.computed_tax IS NOT NULL
            AND abs(o.tax_total - l.computed_tax) > {p.tax_tolerance}""",
    }
    if plan.hs_lists:
        checks[Rule.PRODUCT_NOT_ON_POSITIVE_LIST] = "l.not_positive"
    if plan.inventory_rules:
        checks[Rule.INVENTORY_MISSING] = "NOT coalesce(o.has_inventory, false)"
        checks[Rule.INVENTORY_MISMATCH] = """o.has_inventory AND (
            o.inv_ebc_code IS DISTINCT FROM o.ebc_code
            OR o.inv_buyer_id_number IS DISTINCT FROM o.buyer_id_number
            OR (o.wb_count = 1 AND (o.inv_logistics_code IS DISTINCT FROM o.wb_logistics_code
                                   OR o.inv_logistics_no IS DISTINCT FROM o.wb_logistics_no)))"""
    return checks


def checked_orders_sql(plan: Plan) -> str:
    """Every order row with its reason_mask (all rules but §3.1), computed_tax, limit_value."""
    party_joins, party_checks = party_checks_sql(plan)
    checks = {**order_checks_sql(plan), **party_checks}
    bits = " + ".join(
        f"CASE WHEN coalesce({expr}, false) THEN {rule.bit} ELSE 0 END"
        for rule, expr in sorted(checks.items())
        if plan.settings.enabled(rule)
    )
    # One statement: DuckDB keeps the CTEs in memory instead of writing temp tables.
    return f"""
        WITH wide AS MATERIALIZED ({wide_orders_sql(plan)}),
        product_flags AS ({product_flags_sql(plan)}),
        line_checks AS ({line_checks_sql(plan)})
        SELECT o._row, o.buyer_id_number, o._app_year, o.app_time, o.ebp_code, o.order_no,
               o.limit_value, l.computed_tax, ({bits or "0"})::BIGINT AS reason_mask
        FROM wide o
        LEFT JOIN line_checks l USING (_row)
        {party_joins}"""


# --- §3.1 annual walk --------------------------------------------------------------------------


def walk_sql(plan: Plan) -> list[str]:
    """Statements that leave `annual_failed(_row)`: the orders failing the annual limit.

    Buyer-years whose running total stays within the limit are settled by a window sum; the
    others are walked exactly, one order per recursion step, by a recursive CTE.
    """
    settings = plan.settings
    limit = settings.parameters.annual_limit
    other_rejects = settings.mask_of("reject") & ~Rule.ANNUAL_LIMIT_EXCEEDED.bit
    ledger_join = ledger_used = ""
    if plan.ledger:
        ledger_join = """LEFT JOIN quota_ledger q
            ON q.buyer_id_number = c.buyer_id_number AND q.year = c._app_year"""
        ledger_used = "q.used"
    used = f"coalesce({ledger_used or 'NULL'}, 0)::BIGINT"
    return [
        f"""CREATE OR REPLACE TEMP TABLE walk_rows AS
        SELECT c._row, c.buyer_id_number, c._app_year, c.limit_value, {used} AS used,
               row_number() OVER w AS step,
               {used} + sum(c.limit_value) OVER w AS reached
        FROM checked c {ledger_join}
        WHERE (c.reason_mask & {other_rejects}) = 0
        WINDOW w AS (PARTITION BY c.buyer_id_number, c._app_year
                     ORDER BY c.app_time, c.ebp_code, c.order_no, c._row
                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)""",
        f"""CREATE OR REPLACE TEMP TABLE overflowing AS
        SELECT w._row, w.buyer_id_number, w._app_year, w.step, w.limit_value, w.used
        FROM walk_rows w
        JOIN (SELECT buyer_id_number, _app_year FROM walk_rows
              GROUP BY buyer_id_number, _app_year HAVING max(reached) > {limit}) g
          USING (buyer_id_number, _app_year)""",
        f"""CREATE OR REPLACE TEMP TABLE annual_failed AS
        WITH RECURSIVE walk(buyer_id_number, _app_year, step, _row, spent, fails) AS (
            SELECT buyer_id_number, _app_year, step, _row,
                   CASE WHEN used + limit_value > {limit} THEN used ELSE used + limit_value END,
                   used + limit_value > {limit}
            FROM overflowing WHERE step = 1
            UNION ALL
            SELECT r.buyer_id_number, r._app_year, r.step, r._row,
                   CASE WHEN w.spent + r.limit_value > {limit} THEN w.spent
                        ELSE w.spent + r.limit_value END,
                   w.spent + r.limit_value > {limit}
            FROM walk w JOIN overflowing r
              ON r.buyer_id_number = w.buyer_id_number AND r._app_year = w._app_year
             AND r.step = w.step + 1)
        SELECT _row FROM walk WHERE fails""",
    ]


# --- the engine --------------------------------------------------------------------------------


def available_memory_limit(share: float = 0.8) -> str | None:
    """`share` of the memory available now (Linux MemAvailable), as a DuckDB memory_limit.

    DuckDB's default (80% of all RAM) does not know that the Arrow inputs it scans already fill
    much of it (about 13 GiB at 10M orders), and it would be killed instead of spilling to disk.
    """
    try:
        with open("/proc/meminfo") as meminfo:
            fields = dict(line.split(":", 1) for line in meminfo)
    except OSError:
        return None
    available_kib = int(fields["MemAvailable"].split()[0])
    return f"{int(available_kib * share) // 1024}MiB"


class DuckDBEngine:
    """SPEC §3 in DuckDB SQL over the canonical tables (registered as Arrow, not copied)."""

    name = "duckdb"

    def __init__(self, *, threads: int | None = None) -> None:
        self.threads = threads or os.cpu_count() or 1

    def run(self, tables: CanonicalTables, settings: RuleSettings) -> pl.DataFrame:
        """(reason_mask UInt64, computed_tax, limit_value) per order row, in order-row order."""
        plan = Plan(
            inventory_rules=tables.inventories is not None,
            hs_lists=tables.hs_lists is not None,
            ledger=tables.quota_ledger is not None,
            settings=settings,
        )
        annual_bit = (
            Rule.ANNUAL_LIMIT_EXCEEDED.bit if settings.enabled(Rule.ANNUAL_LIMIT_EXCEEDED) else 0
        )
        config: dict[str, str | int] = {"threads": self.threads}
        limit = available_memory_limit()
        if limit is not None:
            config["memory_limit"] = limit
        with (
            tempfile.TemporaryDirectory(prefix="matchcore-duckdb-") as spill,
            duckdb.connect(config={**config, "temp_directory": spill}) as con,
        ):
            for name, columns in USED_COLUMNS.items():
                frame = getattr(tables, name)
                if frame is not None:
                    # string_view keeps Polars' buffers as they are (no copy to large_string).
                    arrow = frame.select(columns).to_arrow(compat_level=pl.CompatLevel.newest())
                    con.register(name, arrow)
            con.execute(f"CREATE TEMP TABLE checked AS {checked_orders_sql(plan)}")
            for statement in walk_sql(plan):
                con.execute(statement)
            result = con.sql(
                f"""SELECT (c.reason_mask + CASE WHEN a._row IS NULL THEN 0
                                              ELSE {annual_bit} END)::UBIGINT AS reason_mask,
                           c.computed_tax, c.limit_value
                    FROM checked c LEFT JOIN annual_failed a USING (_row)
                    ORDER BY c._row"""
            ).pl()
        return result


__all__ = ["DuckDBEngine"]
