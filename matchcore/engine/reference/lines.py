"""Line rules of SPEC §3 (line totals, product filings, HS lists) and the tax of §3.2, for the
reference engine. Works on one row per (order row, order line): a duplicated order sees its lines
once per copy.
"""

from __future__ import annotations

import polars as pl

from ...rules import Parameters, Rule
from ...schema import MONEY_SCALE
from ..base import CanonicalTables

PRODUCT_KEY = ["ebc_code", "item_no"]

#: 0.01 CNY in units of qty × price (ten-thousandths × ten-thousandths).
LINE_TOTAL_TOLERANCE = 100 * MONEY_SCALE


def prefix_match(hs_code: pl.Expr, prefixes: pl.Series) -> pl.Expr:
    """True when some prefix in `prefixes` starts `hs_code` (vectorised per prefix length)."""
    matched = pl.lit(False)
    for length in sorted(set(prefixes.str.len_chars().to_list())):
        same_length = prefixes.filter(prefixes.str.len_chars() == length)
        matched = matched | hs_code.str.slice(0, length).is_in(same_length.implode())
    return matched.fill_null(False)


def product_flags(tables: CanonicalTables) -> pl.DataFrame:
    """Products with `_found`, `_on_positive` and `_prohibited` (without hs_lists every product
    counts as on the positive list and none as prohibited)."""
    products = tables.products.with_columns(pl.lit(True).alias("_found"))
    if tables.hs_lists is None:
        return products.with_columns(
            pl.lit(True).alias("_on_positive"), pl.lit(False).alias("_prohibited")
        )
    lists = tables.hs_lists

    def prefixes(name: str) -> pl.Series:
        return lists.filter(pl.col("list") == name)["hs_prefix"].drop_nulls().unique()

    hs_code = pl.col("hs_code")
    return products.with_columns(
        prefix_match(hs_code, prefixes("positive")).alias("_on_positive"),
        prefix_match(hs_code, prefixes("prohibited")).alias("_prohibited"),
    )


def not_filed_variant() -> pl.Expr:
    """PRODUCT_NOT_FILED variant (docs/internals.md), null when the line's product is filed."""
    app_time = pl.col("app_time")
    return (
        pl.when(pl.col("_found").is_null())
        .then(0)
        .when(pl.col("status") != "active")
        .then(1)
        .when(pl.col("valid_from").is_not_null() & (app_time < pl.col("valid_from")))
        .then(2)
        .when(pl.col("valid_to").is_not_null() & (app_time >= pl.col("valid_to")))
        .then(3)
        .otherwise(None)
        .cast(pl.UInt8)
    )


def order_lines(orders: pl.DataFrame, items: pl.DataFrame, tables: CanonicalTables) -> pl.DataFrame:
    """One row per (order row, line): line amounts, product rates and the filing variant.

    `items` are the linked lines with their `key_id` (links.Links.lines).
    """
    products = product_flags(tables).select(
        *PRODUCT_KEY,
        "_found",
        "status",
        "valid_from",
        "valid_to",
        "vat_rate",
        "consumption_tax_rate",
        "_on_positive",
        "_prohibited",
    )
    heads = orders.select(
        "order_row", "key_id", "ebc_code", "app_time", "freight", "discount", "items_total"
    )
    lines = heads.join(items, on="key_id").join(products, on=PRODUCT_KEY, how="left")
    return lines.with_columns(not_filed_variant().alias("not_filed_variant")).sort(
        "order_row", "line_row"
    )


def line_total_mismatch() -> pl.Expr:
    """|qty × price − total_price| > 0.01 CNY, exactly, with a 128-bit product."""
    product = pl.col("qty").cast(pl.Int128) * pl.col("price").cast(pl.Int128)
    declared = pl.col("total_price").cast(pl.Int128) * MONEY_SCALE
    return (product - declared).abs() > LINE_TOTAL_TOLERANCE


def is_filed() -> pl.Expr:
    return pl.col("not_filed_variant").is_null()


def not_on_positive_list() -> pl.Expr:
    return is_filed() & ~pl.col("_on_positive")


def product_prohibited() -> pl.Expr:
    return is_filed() & pl.col("_prohibited")


def line_checks(hs_lists_given: bool) -> dict[Rule, tuple[pl.Expr, pl.Expr]]:
    """Per line rule: (fails, variant) expressions over the order-line frame."""
    zero = pl.lit(0, pl.UInt8)
    checks = {
        Rule.LINE_TOTAL_MISMATCH: (line_total_mismatch(), zero),
        Rule.PRODUCT_NOT_FILED: (~is_filed(), pl.col("not_filed_variant")),
        Rule.PRODUCT_PROHIBITED: (product_prohibited(), zero),
    }
    if hs_lists_given:
        checks[Rule.PRODUCT_NOT_ON_POSITIVE_LIST] = (not_on_positive_list(), zero)
    return checks


def line_tax(p: Parameters) -> pl.Expr:
    """t_i of SPEC §3.2 in float64, in exactly the stated operation order; null if not finite."""
    f64 = pl.Float64
    price = pl.col("total_price").cast(f64)
    total = pl.col("items_total").cast(f64)
    shipping = (pl.col("freight") - pl.col("discount")).cast(f64)
    share = pl.when(pl.col("items_total") == 0).then(0.0).otherwise(shipping * price / total)
    dutiable = price + share
    c = pl.col("consumption_tax_rate")
    consumption = dutiable * c / (1.0 - c)
    vat = (dutiable + consumption) * pl.col("vat_rate")
    raw = (pl.lit(p.tax_discount, f64) * (consumption + vat)).round(0, mode="half_to_even")
    # Non-finite or out-of-range values become null: the order's tax is then skipped.
    return pl.when(raw.is_finite()).then(raw).otherwise(None).cast(pl.Int64, strict=False)


def round_half_up_to_cent(units: pl.Expr) -> pl.Expr:
    """Ten-thousandths -> a multiple of 100 (0.01 CNY), halves upward (towards +inf)."""
    return (units + 50) // 100 * 100


def computed_tax(lines: pl.DataFrame, p: Parameters) -> pl.DataFrame:
    """(order_row, computed_tax) for orders with lines; null when §3.2 says skip."""
    taxed = lines.with_columns(line_tax(p).alias("_t"))
    usable = (
        is_filed() & (pl.col("consumption_tax_rate") < 1.0) & pl.col("_t").is_not_null()
    ).fill_null(False)
    return taxed.group_by("order_row").agg(
        pl.when(usable.all())
        .then(round_half_up_to_cent(pl.col("_t").sum()))
        .otherwise(None)
        .alias("computed_tax")
    )


def line_failures(lines: pl.DataFrame, checks: dict[Rule, tuple[pl.Expr, pl.Expr]]) -> pl.DataFrame:
    """Subject rows (order_row, rule, line_row, variant) of every failed line rule."""
    frames = [
        lines.filter(fails.fill_null(False)).select(
            "order_row",
            pl.lit(rule.value, pl.UInt8).alias("rule"),
            "line_row",
            variant.cast(pl.UInt8).alias("variant"),
        )
        for rule, (fails, variant) in checks.items()
    ]
    return pl.concat(frames) if frames else pl.DataFrame()
