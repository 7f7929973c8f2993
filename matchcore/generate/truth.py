"""Ground truth: the tax of SPEC §3.2, the annual-limit walk of SPEC §3.1, and the truth tables.

Computed from what the generator built and injected, never by calling an engine, so the
engines can be checked against it. Everything is vectorised over orders and lines.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ..rules import DEFAULT_SEVERITY, Rule

#: Rules whose default severity is `reject` (those make the annual walk skip an order).
REJECT_BITS = sum(rule.bit for rule in Rule if DEFAULT_SEVERITY[rule] == "reject")
ANNUAL_BIT = Rule.ANNUAL_LIMIT_EXCEEDED.bit
RULE_NAMES = [rule.name for rule in Rule]


def order_tax(
    line_order: np.ndarray,
    total_price: np.ndarray,
    freight_less_discount: np.ndarray,
    vat: np.ndarray,
    consumption: np.ndarray,
    n_orders: int,
    tax_discount: float = 0.7,
) -> np.ndarray:
    """SPEC §3.2 computed tax per order in ten-thousandths (a multiple of 100).

    `line_order` maps each line to its order (0-based); the other line arrays are per line,
    `freight_less_discount` per order. float64 throughout, in the spec's operation order.
    """
    goods = np.zeros(n_orders, dtype=np.int64)
    np.add.at(goods, line_order, total_price)
    p = total_price.astype(np.float64)
    big_p = goods[line_order].astype(np.float64)
    f = freight_less_discount[line_order].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(big_p == 0.0, 0.0, f * p / big_p)
        dutiable = p + share
        consumption_tax = dutiable * consumption / (1.0 - consumption)
        vat_tax = (dutiable + consumption_tax) * vat
        line_tax = np.rint(tax_discount * (consumption_tax + vat_tax)).astype(np.int64)
    total = np.zeros(n_orders, dtype=np.int64)
    np.add.at(total, line_order, line_tax)
    return half_up_to_cent(total)


def half_up_to_cent(units: np.ndarray) -> np.ndarray:
    """Ten-thousandths rounded half-up to a multiple of 100 (0.01 CNY); inputs are >= 0."""
    return (units + 50) // 100 * 100


def annual_walk(
    buyer: np.ndarray,
    year: np.ndarray,
    sort_keys: list[np.ndarray | pl.Series],
    limit_value: np.ndarray,
    rejected: np.ndarray,
    start_used: np.ndarray,
    annual_limit: int,
) -> np.ndarray:
    """SPEC §3.1: which orders fail the annual limit.

    `buyer` and `year` group the orders; `sort_keys` (app_time, ebp_code, order_no) order them
    inside a group; `rejected` marks orders failing another reject rule (skipped);
    `start_used` is the ledger's `used` for the order's group. Vectorised by rank: each step
    advances every group by one order, so the loop runs max-orders-per-buyer times.
    """
    n = len(buyer)
    frame = pl.DataFrame({"buyer": buyer, "year": year, "row": np.arange(n)})
    for i, key in enumerate(sort_keys):
        frame = frame.with_columns(pl.Series(f"k{i}", key))
    frame = frame.sort(["buyer", "year"] + [f"k{i}" for i in range(len(sort_keys))])
    rows = frame["row"].to_numpy()
    group_key = (
        frame.select(
            (
                pl.col("buyer").ne(pl.col("buyer").shift())
                | pl.col("year").ne(pl.col("year").shift())
            )
            .fill_null(True)
            .cum_sum()
            - 1
        )
        .to_series()
        .to_numpy()
    )
    starts = np.flatnonzero(np.r_[True, group_key[1:] != group_key[:-1]])
    rank = np.arange(n) - starts[group_key]
    spent = start_used[rows[starts]].astype(np.int64)
    failed = np.zeros(n, dtype=bool)
    by_rank = np.argsort(rank, kind="stable")
    bounds = np.searchsorted(rank[by_rank], np.arange(rank.max() + 2 if n else 1))
    for r in range(len(bounds) - 1):
        pos = by_rank[bounds[r] : bounds[r + 1]]
        order = rows[pos]
        group = group_key[pos]
        walked = ~rejected[order]
        over = walked & (spent[group] + limit_value[order] > annual_limit)
        failed[order] = over
        spent[group] += np.where(walked & ~over, limit_value[order], 0)
    return failed


def reasons_of(masks: np.ndarray) -> pl.Series:
    """Rule codes of each mask, in rule order, as a List(String) column."""
    frame = pl.DataFrame({"mask": masks.astype(np.uint64)}).with_row_index("i")
    bits = pl.DataFrame(
        {
            "bit": np.left_shift(np.uint64(1), np.arange(len(RULE_NAMES), dtype=np.uint64)),
            "name": RULE_NAMES,
        }
    )
    long = (
        frame.filter(pl.col("mask") != 0)  # most orders are clean: keep the cross join small
        .join(bits, how="cross")
        .filter((pl.col("mask") & pl.col("bit")) != 0)
        .group_by("i", maintain_order=True)
        .agg(pl.col("name"))
    )
    return (
        frame.join(long, on="i", how="left")
        .sort("i")
        .select(pl.col("name").fill_null(pl.lit([], dtype=pl.List(pl.String))))
        .to_series()
        .alias("reasons")
    )
