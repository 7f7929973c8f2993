"""The reference engine: SPEC §3 written plainly in Polars, the correctness oracle.

One module per rule group (links, orders, lines, parties, limits); this module runs them in
order and assembles the `EngineOutput` of docs/internals.md.
"""

from __future__ import annotations

import polars as pl

from ...rules import Rule, RuleSettings
from ..base import ORDER_RESULT_SCHEMA, SUBJECT_SCHEMA, CanonicalTables, EngineOutput
from .limits import annual_walk
from .lines import computed_tax, line_checks, line_failures, order_lines
from .links import attach_documents, link_documents
from .orders import limit_value, order_checks
from .parties import party_failures

__all__ = ["ReferenceEngine"]

RULE_BITS = [rule.bit for rule in Rule]


def rule_bits(checks: dict[Rule, pl.Expr], settings: RuleSettings) -> pl.Expr:
    """UInt64 mask of the failed checks among the rules that are not `off`."""
    bits = [
        pl.when(fails.fill_null(False))
        .then(pl.lit(rule.bit, pl.UInt64))
        .otherwise(pl.lit(0, pl.UInt64))
        for rule, fails in checks.items()
        if settings.enabled(rule)
    ]
    return pl.sum_horizontal(bits) if bits else pl.lit(0, pl.UInt64)


def subject_bits(subjects: pl.DataFrame) -> pl.DataFrame:
    """(order_row, subject_mask): the bits of the subject rules each order fails."""
    bit = pl.col("rule").replace_strict(
        list(range(len(RULE_BITS))), RULE_BITS, return_dtype=pl.UInt64
    )
    return subjects.group_by("order_row").agg(bit.unique().sum().alias("subject_mask"))


def failed_subjects(
    wide: pl.DataFrame, lines: pl.DataFrame, tables: CanonicalTables, settings: RuleSettings
) -> pl.DataFrame:
    """Subject rows of the enabled line and party rules, sorted by order, rule, subject."""
    inventory_rules = tables.inventories is not None
    parts = [
        line_failures(lines, line_checks(tables.hs_lists is not None)).with_columns(
            pl.lit(None, pl.Int8).alias("party")
        ),
        party_failures(wide, tables, inventory_rules).with_columns(
            pl.lit(None, pl.Int64).alias("line_row")
        ),
    ]
    enabled = [rule.value for rule in Rule if settings.enabled(rule)]
    schema: dict = SUBJECT_SCHEMA
    subjects = pl.concat([part.select(list(schema)).cast(schema) for part in parts])
    return subjects.filter(pl.col("rule").is_in(enabled)).sort(
        "order_row", "rule", "party", "line_row", nulls_last=False
    )


def walk_skips(settings: RuleSettings) -> int:
    """Bits of the rules whose failure takes an order out of the annual walk (SPEC §3.1)."""
    return settings.mask_of("reject") & ~Rule.ANNUAL_LIMIT_EXCEEDED.bit


def with_annual_limit(
    wide: pl.DataFrame, tables: CanonicalTables, settings: RuleSettings
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The orders with `annual_spent` and the annual bit added to `reason_mask`, and the
    updated ledger. The walk runs whatever the rule's severity; only the bit depends on it."""
    skipped = (pl.col("reason_mask") & pl.lit(walk_skips(settings), pl.UInt64)) != 0
    walk_input = wide.select(
        "order_row",
        "buyer_id_number",
        "_app_year",
        "app_time",
        "ebp_code",
        "order_no",
        "limit_value",
        skipped.alias("skipped"),
    )
    walked, ledger = annual_walk(walk_input, tables.quota_ledger, settings.parameters.annual_limit)
    enabled = settings.enabled(Rule.ANNUAL_LIMIT_EXCEEDED)
    annual_bit = pl.lit(Rule.ANNUAL_LIMIT_EXCEEDED.bit if enabled else 0, pl.UInt64)
    fails = pl.col("annual_fails").fill_null(False)
    orders = (
        wide.join(walked, on="order_row", how="left")
        .sort("order_row")
        .with_columns(
            pl.col("reason_mask") + pl.when(fails).then(annual_bit).otherwise(pl.lit(0, pl.UInt64))
        )
    )
    return orders, ledger


class ReferenceEngine:
    """SPEC §3 in plain Polars; see docs/internals.md for the output contract."""

    name = "reference"

    def run(self, tables: CanonicalTables, settings: RuleSettings) -> EngineOutput:
        """Evaluate every enabled rule for every order row."""
        p = settings.parameters
        inventory_rules = tables.inventories is not None
        links = link_documents(tables, inventory_rules)
        orders = links.orders.with_columns(limit_value().alias("limit_value"))
        lines = order_lines(orders, links.lines, tables)
        orders = orders.join(computed_tax(lines, p), on="order_row", how="left").sort("order_row")
        wide = attach_documents(orders, tables)
        subjects = failed_subjects(wide, lines, tables, settings)
        order_mask = rule_bits(order_checks(p, inventory_rules), settings)
        wide = (
            wide.join(subject_bits(subjects), on="order_row", how="left")
            .sort("order_row")
            .with_columns((order_mask + pl.col("subject_mask").fill_null(0)).alias("reason_mask"))
        )
        wide, ledger = with_annual_limit(wide, tables, settings)
        schema: dict = ORDER_RESULT_SCHEMA
        return EngineOutput(
            orders=wide.select(list(schema)).cast(schema),
            subjects=subjects,
            orphans=links.orphans,
            ledger=ledger,
        )
