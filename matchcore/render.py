"""Turn an engine's raw `EngineOutput` into the SPEC §4 tables: verdicts, exceptions, orphans and
ledger, with exact money, texts for the exception values and identity masking. Every engine's
output goes through this one module, so all engines format alike. The field / expected / actual
of every rule are listed in docs/internals.md, "Exception texts"; `ORDER_RULE_TEXTS`,
`party_texts` and `line_texts` below are that table in code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from .china_time import china_time
from .engine.base import CanonicalTables, EngineOutput
from .engine.reference.links import INVENTORY, PAY, WAYBILL, attach_documents, with_position
from .engine.reference.orders import DEFAULT_CURRENCY, arrival_gap_us, order_total
from .masking import mask_expr
from .money import format_money_expr, to_decimal_series
from .rules import LINE_RULES, PARTY_RULES, Party, Rule, RuleSettings
from .schema import IDENTITY_COLUMNS, MONEY_SCALE, ROLE_BITS, ROW

__all__ = ["Rendered", "render"]

#: Units of qty × price: ten-thousandths of CNY times ten-thousandths of a unit.
LINE_PRODUCT_SCALE = MONEY_SCALE * MONEY_SCALE

EXCEPTION_SCHEMA: dict[str, pl.DataType] = {
    "ebp_code": pl.String(),
    "order_no": pl.String(),
    "rule": pl.String(),
    "severity": pl.String(),
    "subject": pl.String(),
    "field": pl.String(),
    "expected": pl.String(),
    "actual": pl.String(),
}

ORPHAN_OUTPUT_SCHEMA: dict[str, pl.DataType] = {
    "document": pl.String(),
    "row": pl.Int64(),
    "ebp_code": pl.String(),
    "order_no": pl.String(),
    "doc_code": pl.String(),
    "doc_no": pl.String(),
    "reason": pl.String(),
}


@dataclass(frozen=True)
class Rendered:
    """The SPEC §4 tables of one run (money as Decimal(18, 4) where the column is money)."""

    verdicts: pl.DataFrame
    exceptions: pl.DataFrame
    orphans: pl.DataFrame
    ledger: pl.DataFrame


Texts = tuple[pl.Expr, pl.Expr, pl.Expr]  # field, expected, actual


# -- text helpers ---------------------------------------------------------------------------


def money(column: str) -> pl.Expr:
    return format_money_expr(pl.col(column))


def count(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.String)


def text(value: str) -> pl.Expr:
    return pl.lit(value, pl.String)


def time_text(expr: pl.Expr) -> pl.Expr:
    """Asia/Shanghai `YYYY-MM-DD HH:MM:SS`, with `.ffffff` only when sub-second, for any time:
    years past 9999 as "+10000", before year 0 as "-0001" (ISO 8601, as chrono writes them)."""
    china = china_time(expr)
    local, year = china.local, china.year
    sign = pl.when(year < 0).then(text("-")).when(year > 9999).then(text("+")).otherwise(text(""))
    digits = year.abs().cast(pl.String).str.pad_start(4, "0")
    whole = sign + digits + local.dt.strftime("-%m-%d %H:%M:%S")
    micro = local.dt.microsecond()
    fraction = text(".") + micro.cast(pl.String).str.pad_start(6, "0")
    return pl.when(micro != 0).then(whole + fraction).otherwise(whole)


def time_value_text(microseconds: int | None) -> str | None:
    """One UTC time (microseconds since the epoch) as `time_text` shows it.

    Formatted by Polars, not Python's `datetime`, which holds only years 1-9999 while a
    time's UTC or China date may lie beyond (year 10000 prints as "+10000", ISO 8601).
    """
    if microseconds is None:
        return None
    value = pl.lit(microseconds, pl.Int64).cast(pl.Datetime("us", "UTC"))
    return str(pl.select(time_text(value)).item())


def seconds_text(microseconds: pl.Expr) -> pl.Expr:
    """Microseconds -> seconds as text, with decimals only when not whole."""
    whole = (microseconds // 1_000_000).cast(pl.String)
    fraction = (
        (microseconds % 1_000_000).cast(pl.String).str.pad_start(6, "0").str.strip_chars_end("0")
    )
    return pl.when(fraction == "").then(whole).otherwise(whole + "." + fraction)


class Masker:
    """Masks identity values (SPEC §4) unless the caller asked for them in clear."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, expr: pl.Expr, column: str) -> pl.Expr:
        return mask_expr(expr, column) if self.enabled else expr


# -- verdicts -------------------------------------------------------------------------------


def has_any(mask: int) -> pl.Expr:
    return (pl.col("reason_mask") & pl.lit(mask, pl.UInt64)) != 0


def verdict_expr(settings: RuleSettings) -> pl.Expr:
    """reject if a failed rule is `reject`, else review if one is `review`, else pass."""
    return (
        pl.when(has_any(settings.mask_of("reject")))
        .then(text("reject"))
        .when(has_any(settings.mask_of("review")))
        .then(text("review"))
        .otherwise(text("pass"))
    )


def reasons_expr(settings: RuleSettings) -> pl.Expr:
    """Failed rule codes in rule order."""
    codes = [
        pl.when(has_any(rule.bit)).then(text(rule.name)) for rule in Rule if settings.enabled(rule)
    ]
    if not codes:
        return pl.lit([], pl.List(pl.String))
    return pl.concat_list(codes).list.drop_nulls()


def verdict_table(context: pl.DataFrame, settings: RuleSettings) -> pl.DataFrame:
    """(reason_mask, verdict, reasons) for each distinct mask: few, however many orders."""
    masks = context.select(pl.col("reason_mask").unique())
    return masks.with_columns(
        verdict_expr(settings).alias("verdict"), reasons_expr(settings).alias("reasons")
    )


def linked_value(table: pl.DataFrame, column: str, position: pl.Series) -> pl.Series:
    """`column` of the row at `position` in `table` (null where the position is null)."""
    return table[column].gather(position).alias(column)


def render_verdicts(
    context: pl.DataFrame, tables: CanonicalTables, settings: RuleSettings
) -> pl.DataFrame:
    frame = context.join(
        verdict_table(context, settings), on="reason_mask", how="left", maintain_order="left"
    ).select(
        "ebp_code", "order_no", "verdict", "reasons", "reason_mask", "computed_tax", "limit_value"
    )
    return frame.with_columns(
        linked_value(tables.payments, "pay_transaction_id", context["payment_row"]),
        linked_value(tables.waybills, "logistics_no", context["waybill_row"]),
        to_decimal_series(frame["computed_tax"]),
        to_decimal_series(frame["limit_value"]),
    ).select(
        "ebp_code",
        "order_no",
        "verdict",
        "reasons",
        "reason_mask",
        "pay_transaction_id",
        "logistics_no",
        "computed_tax",
        "limit_value",
    )


# -- exception texts of the rules without subjects -------------------------------------------


def counted(document: str, column: str, expected: str = "1") -> Callable[..., Texts]:
    """A document count: field = the document, expected a fixed text, actual the count."""
    return lambda m, p: (text(document), text(expected), count(column))


def compared(field: str, expected: str, actual: str, kind: str = "text") -> Callable[..., Texts]:
    """A field compared between two columns; `kind` is text, money or an identity column."""

    def texts(m: Masker, p: object) -> Texts:
        if kind == "money":
            return text(field), money(expected), money(actual)
        if kind == "text":
            return text(field), pl.col(expected), pl.col(actual)
        return text(field), m(pl.col(expected), kind), m(pl.col(actual), kind)

    return texts


def first_difference(
    pairs: list[tuple[str, str, str]], m: Masker, *, named_only: bool = False
) -> Texts:
    """Texts of the first (field, expected column, actual column) whose values differ; with
    `named_only`, a null expected value does not count as a difference."""
    field = expected = actual = pl.lit(None, pl.String)
    for name, left, right in reversed(pairs):
        differs = pl.col(left).ne_missing(pl.col(right))
        if named_only:
            differs = differs & pl.col(left).is_not_null()
        left_text, right_text = pl.col(left), pl.col(right)
        if name in IDENTITY_COLUMNS:
            left_text, right_text = m(left_text, name), m(right_text, name)
        field = pl.when(differs).then(text(name)).otherwise(field)
        expected = pl.when(differs).then(left_text).otherwise(expected)
        actual = pl.when(differs).then(right_text).otherwise(actual)
    return field, expected, actual


def pay_reference_texts(m: Masker, p: object) -> Texts:
    return first_difference(
        [
            ("pay_code", "pay_code", PAY + "pay_code"),
            ("pay_transaction_id", "pay_transaction_id", PAY + "pay_transaction_id"),
        ],
        m,
        named_only=True,
    )


def inventory_mismatch_texts(m: Masker, p: object) -> Texts:
    return first_difference(
        [
            ("ebc_code", "ebc_code", INVENTORY + "ebc_code"),
            ("buyer_id_number", "buyer_id_number", INVENTORY + "buyer_id_number"),
            ("logistics_code", WAYBILL + "logistics_code", INVENTORY + "logistics_code"),
            ("logistics_no", WAYBILL + "logistics_no", INVENTORY + "logistics_no"),
        ],
        m,
    )


def currency_texts(m: Masker, p: object) -> Texts:
    order, paid = (pl.col(c).fill_null(DEFAULT_CURRENCY) for c in ("currency", PAY + "currency"))
    return text("currency"), order, paid


def order_total_texts(m: Masker, p: object) -> Texts:
    return text("actual_paid"), format_money_expr(order_total()), money("actual_paid")


def arrival_texts(m: Masker, p: RuleSettings) -> Texts:
    window = pl.lit(p.parameters.arrival_window_us, pl.Int64)
    return text("arrival_window"), seconds_text(window), seconds_text(arrival_gap_us())


def buyer_id_texts(m: Masker, p: object) -> Texts:
    return (
        text("buyer_id_number"),
        text("GB 11643 resident ID"),
        m(pl.col("buyer_id_number"), "buyer_id_number"),
    )


def single_limit_texts(m: Masker, p: RuleSettings) -> Texts:
    limit = pl.lit(p.parameters.single_limit, pl.Int64)
    return text("limit_value"), format_money_expr(limit), money("limit_value")


def annual_limit_texts(m: Masker, p: RuleSettings) -> Texts:
    limit = pl.lit(p.parameters.annual_limit, pl.Int64)
    reached = pl.col("annual_spent") + pl.col("limit_value")
    return text("annual_limit"), format_money_expr(limit), format_money_expr(reached)


ORDER_RULE_TEXTS: dict[Rule, Callable[[Masker, RuleSettings], Texts]] = {
    Rule.ORDER_DUPLICATE: counted("order", "order_copies"),
    Rule.PAYMENT_MISSING: counted("payment", "payment_count"),
    Rule.PAYMENT_DUPLICATE: counted("payment", "payment_count"),
    Rule.WAYBILL_MISSING: counted("waybill", "waybill_count"),
    Rule.WAYBILL_DUPLICATE: counted("waybill", "waybill_count"),
    Rule.ITEMS_MISSING: counted("order_items", "item_count", ">=1"),
    Rule.PAY_AMOUNT_MISMATCH: compared("amount_paid", "actual_paid", PAY + "amount_paid", "money"),
    Rule.PAYER_ID_MISMATCH: compared(
        "payer_id_number", "buyer_id_number", PAY + "payer_id_number", "payer_id_number"
    ),
    Rule.PAYER_NAME_MISMATCH: compared(
        "payer_name", "buyer_name", PAY + "payer_name", "payer_name"
    ),
    Rule.PAY_REFERENCE_MISMATCH: pay_reference_texts,
    Rule.CURRENCY_MISMATCH: currency_texts,
    Rule.ORDER_TOTAL_MISMATCH: order_total_texts,
    Rule.GOODS_VALUE_MISMATCH: compared("goods_value", "items_total", "goods_value", "money"),
    Rule.CONSIGNEE_MISMATCH: compared("consignee", "consignee", WAYBILL + "consignee", "consignee"),
    Rule.CONSIGNEE_PHONE_MISMATCH: compared(
        "consignee_telephone",
        "consignee_telephone",
        WAYBILL + "consignee_telephone",
        "consignee_telephone",
    ),
    Rule.ARRIVAL_WINDOW_EXCEEDED: arrival_texts,
    Rule.BUYER_ID_INVALID: buyer_id_texts,
    Rule.SINGLE_LIMIT_EXCEEDED: single_limit_texts,
    Rule.ANNUAL_LIMIT_EXCEEDED: annual_limit_texts,
    Rule.TAX_MISMATCH: compared("tax_total", "computed_tax", "tax_total", "money"),
    Rule.INVENTORY_MISSING: lambda m, p: (text("inventory"), text("1"), text("0")),
    Rule.INVENTORY_MISMATCH: inventory_mismatch_texts,
}


def exception_frame(
    frame: pl.LazyFrame, rule: pl.Expr, subject: pl.Expr, texts: Texts, sort_keys: list[pl.Expr]
) -> pl.LazyFrame:
    """Exception rows in output columns plus the sort keys (`_order_row`, `_rule`, ...)."""
    field, expected, actual = texts
    return frame.select(
        "ebp_code",
        "order_no",
        rule.alias("_rule"),
        subject.alias("subject"),
        field.alias("field"),
        expected.alias("expected"),
        actual.alias("actual"),
        *sort_keys,
    )


def order_rule_exceptions(
    context: pl.LazyFrame, settings: RuleSettings, m: Masker
) -> list[pl.LazyFrame]:
    keys = [
        pl.col("order_row").alias("_order_row"),
        pl.lit(None, pl.Int8).alias("_party"),
        pl.lit(None, pl.Int64).alias("_gnum"),
    ]
    return [
        exception_frame(
            context.filter(has_any(rule.bit)),
            pl.lit(rule.value, pl.UInt8),
            text(""),
            texts(m, settings),
            keys,
        )
        for rule, texts in ORDER_RULE_TEXTS.items()
        if settings.enabled(rule)
    ]


# -- exception texts of the party and line rules ----------------------------------------------


def choose(selector: pl.Expr, options: dict[int, pl.Expr]) -> pl.Expr:
    """The option whose key equals `selector`, else null."""
    chosen: pl.Expr = pl.lit(None)
    for key, expr in reversed(options.items()):
        chosen = pl.when(selector == key).then(expr).otherwise(chosen)
    return chosen


def roles_text() -> pl.Expr:
    """The filed roles as "ebp,ebc" (or "none")."""
    names = [
        pl.when((pl.col("roles") & bit) != 0).then(text(name)) for name, bit in ROLE_BITS.items()
    ]
    joined = pl.concat_list(names).list.drop_nulls().list.join(",")
    return pl.when(joined == "").then(text("none")).otherwise(joined)


def party_texts() -> Texts:
    rule, variant, party = pl.col("rule"), pl.col("variant"), pl.col("party")
    column = party.replace_strict(
        [p.value for p in Party], [p.column for p in Party], return_dtype=pl.String
    )
    role = party.replace_strict(
        [p.value for p in Party], [p.role for p in Party], return_dtype=pl.String
    )
    app_time = time_text(pl.col("app_time"))
    inactive = {
        0: (text("status"), text("active"), pl.col("status")),
        1: (text("valid_from"), time_text(pl.col("valid_from")), app_time),
        2: (text("valid_to"), time_text(pl.col("valid_to")), app_time),
    }
    by_rule = {
        Rule.ENTERPRISE_NOT_FILED.value: (
            column,
            role,
            pl.when(variant == 0).then(text("not filed")).otherwise(roles_text()),
        ),
        Rule.ENTERPRISE_INACTIVE.value: tuple(
            choose(variant, {v: texts[i] for v, texts in inactive.items()}) for i in range(3)
        ),
        Rule.ENTERPRISE_DISHONEST.value: (
            text("credit_class"),
            text("advanced or general"),
            pl.col("credit_class"),
        ),
    }
    return tuple(choose(rule, {r: texts[i] for r, texts in by_rule.items()}) for i in range(3))  # type: ignore[return-value]


def line_texts() -> Texts:
    rule, variant = pl.col("rule"), pl.col("variant")
    app_time = time_text(pl.col("app_time"))
    product = pl.col("qty").cast(pl.Int128) * pl.col("price").cast(pl.Int128)
    not_filed = {
        0: (text("item_no"), text("filed"), text("not filed")),
        1: (text("status"), text("active"), pl.col("status")),
        2: (text("valid_from"), time_text(pl.col("valid_from")), app_time),
        3: (text("valid_to"), time_text(pl.col("valid_to")), app_time),
    }
    by_rule = {
        Rule.LINE_TOTAL_MISMATCH.value: (
            text("total_price"),
            format_money_expr(product, LINE_PRODUCT_SCALE),
            money("total_price"),
        ),
        Rule.PRODUCT_NOT_FILED.value: tuple(
            choose(variant, {v: texts[i] for v, texts in not_filed.items()}) for i in range(3)
        ),
        Rule.PRODUCT_NOT_ON_POSITIVE_LIST.value: (
            text("hs_code"),
            text("positive"),
            pl.col("hs_code"),
        ),
        Rule.PRODUCT_PROHIBITED.value: (text("hs_code"), text("not prohibited"), pl.col("hs_code")),
    }
    return tuple(choose(rule, {r: texts[i] for r, texts in by_rule.items()}) for i in range(3))  # type: ignore[return-value]


def party_code() -> pl.Expr:
    return choose(
        pl.col("party"),
        {
            Party.EBP.value: pl.col("ebp_code"),
            Party.EBC.value: pl.col("ebc_code"),
            Party.PAY.value: pl.col(PAY + "pay_code"),
            Party.LOGISTICS.value: pl.col(WAYBILL + "logistics_code"),
            Party.AGENT.value: pl.col(INVENTORY + "agent_code"),
        },
    )


def subject_exceptions(
    context: pl.LazyFrame, tables: CanonicalTables, subjects: pl.DataFrame
) -> list[pl.LazyFrame]:
    """Exception rows of the party and line rules, from the engine's subject rows."""
    heads = context.select(
        "order_row",
        "ebp_code",
        "order_no",
        "ebc_code",
        "app_time",
        PAY + "pay_code",
        WAYBILL + "logistics_code",
        INVENTORY + "agent_code",
    )
    rows = subjects.lazy().join(heads, on="order_row", how="left")
    party_rules = [r.value for r in PARTY_RULES]
    parties = (
        rows.filter(pl.col("rule").is_in(party_rules))
        .with_columns(party_code().alias("_code"))
        .join(
            tables.enterprises.lazy().select(
                pl.col("code").alias("_code"),
                "roles",
                "credit_class",
                "status",
                "valid_from",
                "valid_to",
            ),
            on="_code",
            how="left",
        )
    )
    items = (
        with_position(tables.order_items, "line_row")
        .lazy()
        .select("line_row", "gnum", "item_no", "qty", "price", "total_price")
    )
    products = tables.products.lazy().select(
        "ebc_code", "item_no", "hs_code", "status", "valid_from", "valid_to"
    )
    lines = (
        rows.filter(pl.col("rule").is_in([r.value for r in LINE_RULES]))
        .join(items, on="line_row", how="left")
        .join(products, on=["ebc_code", "item_no"], how="left")
    )
    keys = [pl.col("order_row").alias("_order_row"), pl.col("party").alias("_party")]
    return [
        exception_frame(
            parties,
            pl.col("rule"),
            pl.col("_code").fill_null(""),
            party_texts(),
            [*keys, pl.lit(None, pl.Int64).alias("_gnum")],
        ),
        exception_frame(
            lines,
            pl.col("rule"),
            pl.col("gnum").cast(pl.String),
            line_texts(),
            [*keys, pl.col("gnum").alias("_gnum")],
        ),
    ]


def render_exceptions(
    context: pl.DataFrame,
    tables: CanonicalTables,
    output: EngineOutput,
    settings: RuleSettings,
    m: Masker,
) -> pl.DataFrame:
    """One row per failed (order, rule, subject), sorted by order row, rule, party, gnum."""
    # Only orders that failed something need the fields of their linked documents.
    failed = context.filter(pl.col("reason_mask") != 0)
    lazy = attach_documents(failed, tables).lazy()
    parts = order_rule_exceptions(lazy, settings, m) + subject_exceptions(
        lazy, tables, output.subjects
    )
    names = [rule.name for rule in Rule]
    severities = [settings.severity_of(rule) for rule in Rule]
    rule_values = [rule.value for rule in Rule]
    combined = pl.concat(
        [part.with_columns(pl.col("_rule").cast(pl.UInt8)) for part in parts],
        how="vertical_relaxed",
    )
    return (
        combined.sort("_order_row", "_rule", "_party", "_gnum", nulls_last=False)
        .with_columns(
            pl.col("_rule")
            .replace_strict(rule_values, names, return_dtype=pl.String)
            .alias("rule"),
            pl.col("_rule")
            .replace_strict(rule_values, severities, return_dtype=pl.String)
            .alias("severity"),
        )
        .select(list(EXCEPTION_SCHEMA))
        .cast(EXCEPTION_SCHEMA)  # type: ignore[arg-type]
        .collect()
    )


# -- orphans and ledger -----------------------------------------------------------------------

#: Per orphan document: its table and the (doc_code, doc_no) columns that name it.
ORPHAN_DOCUMENTS: dict[str, tuple[str, str | None, str | None]] = {
    "payment": ("payments", "pay_code", "pay_transaction_id"),
    "waybill": ("waybills", "logistics_code", "logistics_no"),
    "order_item": ("order_items", None, "gnum"),
    "inventory": ("inventories", None, None),
}


def render_orphans(tables: CanonicalTables, orphans: pl.DataFrame) -> pl.DataFrame:
    """Orphan rows with their source row number and identifying columns, by document then row."""
    frames = []
    for document, (table_name, code, number) in ORPHAN_DOCUMENTS.items():
        table = getattr(tables, table_name)
        rows = orphans.filter(pl.col("document") == document)
        if table is None or rows.height == 0:
            continue
        # Orphans are few: pick their rows by position before deriving any text.
        source = table[rows["doc_row"]].select(
            pl.col(ROW).alias("row"),
            "ebp_code",
            "order_no",
            (pl.col(code) if code else pl.lit(None, pl.String)).alias("doc_code"),
            (pl.col(number).cast(pl.String) if number else pl.lit(None, pl.String)).alias("doc_no"),
        )
        frames.append(pl.concat([rows, source], how="horizontal"))
    if not frames:
        return pl.DataFrame(schema=ORPHAN_OUTPUT_SCHEMA)
    document_order = {name: i for i, name in enumerate(ORPHAN_DOCUMENTS)}
    return (
        pl.concat(frames)
        .sort(pl.col("document").replace_strict(document_order, return_dtype=pl.Int8), "doc_row")
        .with_columns(text("NO_ORDER").alias("reason"))
        .select(list(ORPHAN_OUTPUT_SCHEMA))
        .cast(ORPHAN_OUTPUT_SCHEMA)  # type: ignore[arg-type]
    )


def render_ledger(ledger: pl.DataFrame, m: Masker) -> pl.DataFrame:
    frame = ledger.with_columns(m(pl.col("buyer_id_number"), "buyer_id_number"))
    return frame.with_columns(to_decimal_series(frame["used"]))


# -- entry point ----------------------------------------------------------------------------


def order_context(tables: CanonicalTables, output: EngineOutput) -> pl.DataFrame:
    """Order rows (with `order_row`) side by side with the engine's results for them."""
    orders = with_position(tables.orders, "order_row")
    return pl.concat([orders, output.orders], how="horizontal")


def render(
    tables: CanonicalTables,
    output: EngineOutput,
    settings: RuleSettings,
    *,
    mask_identity: bool = True,
) -> Rendered:
    """The SPEC §4 tables from an engine's raw output; identity values masked by default."""
    masker = Masker(mask_identity)
    context = order_context(tables, output)
    return Rendered(
        verdicts=render_verdicts(context, tables, settings),
        exceptions=render_exceptions(context, tables, output, settings, masker),
        orphans=render_orphans(tables, output.orphans),
        ledger=render_ledger(output.ledger, masker),
    )
