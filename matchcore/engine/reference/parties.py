"""Party rules of SPEC §3 (ENTERPRISE_NOT_FILED, _INACTIVE, _DISHONEST) for the reference engine.

Each order names up to five parties (rules.Party); a party read from a missing or duplicated
document is not checked. Every failing party gives one subject row.
"""

from __future__ import annotations

import polars as pl

from ...rules import Party, Rule
from ...schema import ROLE_BITS
from ..base import CanonicalTables
from .links import INVENTORY, PAY, WAYBILL


def party_codes(wide: pl.DataFrame, inventory_rules: bool) -> pl.DataFrame:
    """(order_row, party, code, app_time) for every party the order's checks read."""
    sources: list[tuple[Party, str, pl.Expr]] = [
        (Party.EBP, "ebp_code", pl.lit(True)),
        (Party.EBC, "ebc_code", pl.lit(True)),
        (Party.PAY, PAY + "pay_code", pl.col("payment_count") == 1),
        (Party.LOGISTICS, WAYBILL + "logistics_code", pl.col("waybill_count") == 1),
    ]
    if inventory_rules:
        sources.append(
            (Party.AGENT, INVENTORY + "agent_code", pl.col("inventory_row").is_not_null())
        )
    return pl.concat(
        [
            wide.filter(checked).select(
                "order_row",
                pl.lit(party.value, pl.Int8).alias("party"),
                pl.col(column).alias("code"),
                "app_time",
            )
            for party, column, checked in sources
        ]
    )


def role_bit(party: pl.Expr) -> pl.Expr:
    """The ROLE_BITS bit of a party number."""
    bits = [ROLE_BITS[p.role] for p in Party]
    return party.replace_strict(list(range(len(bits))), bits, return_dtype=pl.UInt8)


def not_filed_variant() -> pl.Expr:
    """0 code not in enterprises, 1 filed without the party's role, null when filed."""
    lacks_role = (pl.col("roles") & role_bit(pl.col("party"))) == 0
    return pl.when(pl.col("_found").is_null()).then(0).when(lacks_role).then(1).otherwise(None)


def inactive_variant() -> pl.Expr:
    """0 status not active, 1 before valid_from, 2 at or after valid_to, null when active."""
    app_time = pl.col("app_time")
    return (
        pl.when(pl.col("_found").is_null())
        .then(None)
        .when(pl.col("status") != "active")
        .then(0)
        .when(pl.col("valid_from").is_not_null() & (app_time < pl.col("valid_from")))
        .then(1)
        .when(pl.col("valid_to").is_not_null() & (app_time >= pl.col("valid_to")))
        .then(2)
        .otherwise(None)
    )


def dishonest_variant() -> pl.Expr:
    return pl.when(pl.col("credit_class") == "dishonest").then(0).otherwise(None)


PARTY_CHECKS = {
    Rule.ENTERPRISE_NOT_FILED: not_filed_variant,
    Rule.ENTERPRISE_INACTIVE: inactive_variant,
    Rule.ENTERPRISE_DISHONEST: dishonest_variant,
}


def party_failures(
    wide: pl.DataFrame, tables: CanonicalTables, inventory_rules: bool
) -> pl.DataFrame:
    """Subject rows (order_row, rule, party, variant) of every failed party rule."""
    filings = tables.enterprises.select(
        pl.col("code"),
        "roles",
        "credit_class",
        "status",
        "valid_from",
        "valid_to",
        pl.lit(True).alias("_found"),
    )
    parties = party_codes(wide, inventory_rules).join(filings, on="code", how="left")
    frames = [
        parties.with_columns(variant().cast(pl.UInt8).alias("variant"))
        .filter(pl.col("variant").is_not_null())
        .select("order_row", pl.lit(rule.value, pl.UInt8).alias("rule"), "party", "variant")
        for rule, variant in PARTY_CHECKS.items()
    ]
    return pl.concat(frames)
