"""Aggregations behind the report: every chart and table is a small frame computed here.

All work is vectorised Polars over the full result, so a 10M-order run reduces to a few
hundred rows before anything is rendered. Money stays Int64 ten-thousandths throughout.
"""

from __future__ import annotations

import polars as pl

from ..engine.reference.orders import time_span_us
from ..masking import NAME_COLUMNS, mask_name_expr, mask_tail_expr
from ..rules import PARTY_RULES, Rule, RuleSettings
from ..schema import IDENTITY_COLUMNS, MONEY_SCALE
from .source import ReportData

#: Verdicts in severity order (streaming adds `incomplete`).
VERDICT_ORDER: tuple[str, ...] = ("pass", "review", "reject", "incomplete")
#: Parties whose failure rates are compared, with the column that names them.
PARTY_ROLES: tuple[tuple[str, str], ...] = (
    ("platform (ebp)", "ebp_code"),
    ("e-commerce enterprise (ebc)", "ebc_code"),
    ("payment company", "pay_code"),
    ("logistics company", "logistics_code"),
)
#: Arrival-gap buckets, in hours (left-closed).
GAP_BREAKS_HOURS: tuple[float, ...] = (1, 6, 12, 24, 48, 168)
GAP_LABELS: tuple[str, ...] = (
    "<1 h",
    "1-6 h",
    "6-12 h",
    "12-24 h",
    "24-48 h",
    "2-7 days",
    "≥7 days",
)
#: Annual-limit usage buckets: tenths of the limit, then "at or over the limit".
USAGE_LABELS: tuple[str, ...] = tuple(f"{10 * i}-{10 * i + 10}%" for i in range(10)) + ("≥100%",)
#: Columns of the exception table embedded in the report.
EXCEPTION_COLUMNS: tuple[str, ...] = (
    "ebp_code", "order_no", "rule", "severity", "subject", "field", "expected", "actual",
)  # fmt: skip


def _failed_expr(rule: Rule) -> pl.Expr:
    """True where the order's reason_mask has `rule`'s bit."""
    return (pl.col("reason_mask") & pl.lit(rule.bit, dtype=pl.UInt64)) != 0


def verdict_breakdown(verdicts: pl.DataFrame) -> pl.DataFrame:
    """Orders per verdict (every batch verdict listed, zero when none) and their share."""
    counts = verdicts.group_by("verdict").len("orders")
    order = pl.DataFrame({"verdict": list(VERDICT_ORDER), "rank": range(len(VERDICT_ORDER))})
    frame = (
        order.join(counts, on="verdict", how="full", coalesce=True)
        .with_columns(pl.col("orders").fill_null(0).cast(pl.Int64))
        .filter((pl.col("orders") > 0) | (pl.col("verdict") != "incomplete"))
        .sort("rank", nulls_last=True)
        .drop("rank")
    )
    total = max(verdicts.height, 1)
    return frame.with_columns((pl.col("orders") / total).alias("share"))


def rules_ranked(verdicts: pl.DataFrame, settings: RuleSettings) -> pl.DataFrame:
    """Failed rules ranked by orders failing them: rule, severity, orders, share of orders."""
    row = verdicts.select([_failed_expr(rule).sum().alias(rule.name) for rule in Rule]).row(0)
    total = max(verdicts.height, 1)
    frame = pl.DataFrame(
        {
            "rule": [rule.name for rule in Rule],
            "severity": [settings.severity_of(rule) for rule in Rule],
            "orders": [int(n or 0) for n in row],
        },
        schema={"rule": pl.String, "severity": pl.String, "orders": pl.Int64},
    )
    return (
        frame.filter(pl.col("orders") > 0)
        .with_columns((pl.col("orders") / total).alias("share"))
        .sort(["orders", "rule"], descending=[True, False])
    )


def amounts_by_rule(verdicts: pl.DataFrame) -> pl.DataFrame:
    """Per failed rule, the orders failing it and the sum of their `limit_value` (exact units)."""
    if "limit_value" not in verdicts.columns:
        return pl.DataFrame(schema={"rule": pl.String, "orders": pl.Int64, "at_stake": pl.Int64})
    value = pl.col("limit_value").cast(pl.Int64).fill_null(0)
    exprs: list[pl.Expr] = []
    for rule in Rule:
        exprs.append(_failed_expr(rule).sum().alias(f"n{rule.value}"))
        exprs.append(value.filter(_failed_expr(rule)).sum().alias(f"v{rule.value}"))
    row = verdicts.select(exprs).row(0, named=True)
    frame = pl.DataFrame(
        {
            "rule": [rule.name for rule in Rule],
            "orders": [int(row[f"n{rule.value}"] or 0) for rule in Rule],
            "at_stake": [int(row[f"v{rule.value}"] or 0) for rule in Rule],
        },
        schema={"rule": pl.String, "orders": pl.Int64, "at_stake": pl.Int64},
    )
    return frame.filter(pl.col("orders") > 0).sort(["at_stake", "rule"], descending=[True, False])


def _order_parties(data: ReportData) -> pl.DataFrame | None:
    """One row per order row: its parties' codes and whether it failed (verdict not pass).

    Needs the canonical tables and raw engine output; None when the result has none (a result
    directory), or when they do not line up with the verdicts.
    """
    tables, raw = data.tables, data.raw
    if tables is None or raw is None or tables.orders.height != data.verdicts.height:
        return None
    pay_codes = tables.payments.get_column("pay_code")
    logistics_codes = tables.waybills.get_column("logistics_code")
    return pl.DataFrame(
        {
            "ebp_code": tables.orders.get_column("ebp_code"),
            "ebc_code": tables.orders.get_column("ebc_code"),
            "pay_code": pay_codes.gather(raw.orders.get_column("payment_row")),
            "logistics_code": logistics_codes.gather(raw.orders.get_column("waybill_row")),
            "failed": data.verdicts.get_column("verdict") != "pass",
        }
    )


def party_exception_rows(exceptions: pl.DataFrame) -> pl.DataFrame:
    """Filing exceptions (ENTERPRISE_* rules) per enterprise code named as their subject."""
    empty = pl.DataFrame(schema={"code": pl.String, "rule": pl.String, "rows": pl.Int64})
    if exceptions.height == 0 or "subject" not in exceptions.columns:
        return empty
    party_rules = [rule.name for rule in PARTY_RULES]
    return (
        exceptions.lazy()
        .filter(pl.col("rule").is_in(party_rules))
        .group_by(pl.col("subject").alias("code"), "rule")
        .agg(pl.len().cast(pl.Int64).alias("rows"))
        .sort(["rows", "code", "rule"], descending=[True, False, False])
        .collect()
    )


def party_failure_rates(data: ReportData, top: int = 15) -> pl.DataFrame:
    """Per party role, the `top` parties by failed orders: orders, failed, rate.

    Uses the canonical tables when present (all four roles); from a result directory only the
    platform (ebp) is known for every order.
    """
    parties = _order_parties(data)
    if parties is None:
        parties = data.verdicts.select("ebp_code", (pl.col("verdict") != "pass").alias("failed"))
    roles = [(label, column) for label, column in PARTY_ROLES if column in parties.columns]
    per_role = [
        parties.lazy()
        .filter(pl.col(column).is_not_null())
        .group_by(pl.col(column).alias("code"))
        .agg(pl.len().cast(pl.Int64).alias("orders"), pl.col("failed").sum().cast(pl.Int64))
        .with_columns(pl.lit(label).alias("role"))
        for label, column in roles
    ]
    frame = pl.concat(per_role).collect()
    return (
        frame.with_columns((pl.col("failed") / pl.col("orders")).alias("rate"))
        .sort(["failed", "code"], descending=[True, False])
        .group_by("role", maintain_order=True)
        .head(top)
        .select("role", "code", "orders", "failed", "rate")
    )


def limit_usage(ledger: pl.DataFrame, annual_limit: int) -> pl.DataFrame:
    """Buyer-years per band of ledger `used` as a share of the annual limit (exact integers)."""
    labels = pl.DataFrame({"band": list(USAGE_LABELS), "rank": range(len(USAGE_LABELS))})
    if ledger.height == 0 or "used" not in ledger.columns or annual_limit <= 0:
        counts = pl.DataFrame(schema={"rank": pl.Int64, "buyers": pl.Int64})
    else:
        band = (pl.col("used").cast(pl.Int64) * 10 // annual_limit).clip(0, 10)
        counts = ledger.group_by(band.alias("rank")).agg(pl.len().cast(pl.Int64).alias("buyers"))
    return (
        labels.join(counts.with_columns(pl.col("rank").cast(pl.Int64)), on="rank", how="left")
        .with_columns(pl.col("buyers").fill_null(0))
        .sort("rank")
        .select("band", "buyers")
    )


def arrival_gaps(data: ReportData) -> pl.DataFrame | None:
    """Orders per band of the gap between the order, payment and waybill times.

    Only orders with a single payment and a single waybill; None without canonical tables.
    """
    tables, raw = data.tables, data.raw
    if tables is None or raw is None or tables.orders.height != raw.orders.height:
        return None
    times = pl.DataFrame(
        {
            "order": tables.orders.get_column("app_time"),
            "pay": tables.payments.get_column("pay_time").gather(raw.orders["payment_row"]),
            "waybill": tables.waybills.get_column("app_time").gather(raw.orders["waybill_row"]),
        }
    ).drop_nulls()
    hours = time_span_us(pl.col("order"), pl.col("pay"), pl.col("waybill")) / 3.6e9
    # Band index = how many break points the gap reaches (bands are left-closed).
    band = pl.sum_horizontal([hours >= limit for limit in GAP_BREAKS_HOURS])
    bands = times.select(band.alias("rank"))
    counts = bands.group_by("rank").agg(pl.len().cast(pl.Int64).alias("orders"))
    order = pl.DataFrame({"band": list(GAP_LABELS), "rank": range(len(GAP_LABELS))})
    return (
        order.join(counts.with_columns(pl.col("rank").cast(pl.Int64)), on="rank", how="left")
        .with_columns(pl.col("orders").fill_null(0))
        .sort("rank")
        .select("band", "orders")
    )


def exception_counts(exceptions: pl.DataFrame) -> pl.DataFrame:
    """Exception rows per (rule, severity), most first."""
    if exceptions.height == 0 or "rule" not in exceptions.columns:
        return pl.DataFrame(schema={"rule": pl.String, "severity": pl.String, "rows": pl.Int64})
    return (
        exceptions.group_by("rule", "severity")
        .agg(pl.len().cast(pl.Int64).alias("rows"))
        .sort(["rows", "rule"], descending=[True, False])
    )


#: Rules whose `expected` text describes the rule ("GB 11643 resident ID"), not a person's value.
DESCRIBED_EXPECTATIONS = frozenset({Rule.BUYER_ID_INVALID.name})


def masked_identity_values(frame: pl.DataFrame) -> pl.DataFrame:
    """`expected`/`actual` masked where `field` is an identity column (idempotent on masked text).

    The result tables are masked by default; this keeps the report safe when the caller asked
    for unmasked outputs.
    """
    names = sorted(NAME_COLUMNS)
    numbers = sorted(IDENTITY_COLUMNS - NAME_COLUMNS)
    field = pl.col("field")
    descriptive = pl.col("rule").is_in(sorted(DESCRIBED_EXPECTATIONS))
    return frame.with_columns(
        [
            pl.when((column == "expected") & descriptive)
            .then(pl.col(column))
            .when(field.is_in(names))
            .then(mask_name_expr(pl.col(column)))
            .when(field.is_in(numbers))
            .then(mask_tail_expr(pl.col(column)))
            .otherwise(pl.col(column))
            .alias(column)
            for column in ("expected", "actual")
        ]
    )


def exception_sample(exceptions: pl.DataFrame, limit: int) -> pl.DataFrame:
    """At most `limit` exception rows, spread over rules so rare rules appear; identity masked."""
    if exceptions.height == 0:
        return pl.DataFrame(schema={c: pl.String for c in EXCEPTION_COLUMNS})
    present = [c for c in EXCEPTION_COLUMNS if c in exceptions.columns]
    frame = exceptions.select([pl.col(c).cast(pl.String) for c in present])
    frame = frame.with_columns(
        [pl.lit(None, dtype=pl.String).alias(c) for c in EXCEPTION_COLUMNS if c not in present]
    ).select(EXCEPTION_COLUMNS)
    if frame.height > limit:
        rules = max(frame.get_column("rule").n_unique(), 1)
        per_rule = max(limit // rules, 1)
        frame = frame.filter(pl.int_range(pl.len()).over("rule") < per_rule).head(limit)
    return masked_identity_values(frame)


def money_cny(units: pl.Expr) -> pl.Expr:
    """Ten-thousandths -> CNY as a float, for chart axes only (tables show exact text)."""
    return units.cast(pl.Float64) / MONEY_SCALE
