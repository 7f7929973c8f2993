"""The annual-limit walk of SPEC §3.1 and the updated quota ledger, for the reference engine.

Buyer-years whose running total never exceeds the limit are settled with one cumulative sum;
only those that overflow are walked order by order (inherently sequential, in a plain loop).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ..base import LEDGER_SCHEMA

BUYER_YEAR = ["buyer_id_number", "year"]
WALK_ORDER = [*BUYER_YEAR, "app_time", "ebp_code", "order_no", "order_row"]


def starting_ledger(ledger: pl.DataFrame | None) -> pl.DataFrame:
    """(buyer_id_number, year, used) before this run; empty without a quota ledger."""
    if ledger is None:
        return pl.DataFrame(schema=LEDGER_SCHEMA)
    return ledger.select(BUYER_YEAR + ["used"]).cast(LEDGER_SCHEMA)  # type: ignore[arg-type]


def walk_overflowing(frame: pl.DataFrame, annual_limit: int) -> pl.DataFrame:
    """Walk buyer-years (sorted in walk order) one order at a time: `annual_spent`, `fails`."""
    first_of_group = (
        (pl.col("buyer_id_number") != pl.col("buyer_id_number").shift())
        | (pl.col("year") != pl.col("year").shift())
    ).fill_null(True)
    starts = frame.select(first_of_group)[:, 0].to_list()
    values = frame["limit_value"].to_list()
    used = frame["used"].to_list()
    spent_before = np.empty(len(values), dtype=np.int64)
    fails = np.zeros(len(values), dtype=bool)
    spent = 0
    for i, value in enumerate(values):
        if starts[i]:
            spent = used[i]
        spent_before[i] = spent
        if spent + value > annual_limit:
            fails[i] = True
        else:
            spent += value
    return frame.with_columns(
        pl.Series("annual_spent", spent_before), pl.Series("annual_fails", fails)
    )


def annual_walk(
    orders: pl.DataFrame, ledger: pl.DataFrame | None, annual_limit: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """SPEC §3.1 over `orders` (order_row, buyer_id_number, _app_year, app_time, ebp_code,
    order_no, limit_value, skipped).

    Returns (order_row, annual_spent, annual_fails) for the orders not skipped, and the updated
    ledger (every input ledger row plus every buyer-year with an order row).
    """
    start = starting_ledger(ledger)
    orders = orders.with_columns(pl.col("_app_year").cast(pl.Int64).alias("year"))
    walked = (
        orders.filter(~pl.col("skipped"))
        .join(start, on=BUYER_YEAR, how="left")
        .with_columns(pl.col("used").fill_null(0))
        .sort(WALK_ORDER)
        .with_columns(pl.col("limit_value").cum_sum().over(BUYER_YEAR).alias("_reached"))
        .with_columns(
            (pl.col("used") + pl.col("_reached") > annual_limit)
            .any()
            .over(BUYER_YEAR)
            .alias("_overflows")
        )
    )
    calm = walked.filter(~pl.col("_overflows")).with_columns(
        (pl.col("used") + pl.col("_reached") - pl.col("limit_value")).alias("annual_spent"),
        pl.lit(False).alias("annual_fails"),
    )
    rough = walk_overflowing(walked.filter(pl.col("_overflows")), annual_limit)
    columns = ["order_row", *BUYER_YEAR, "limit_value", "annual_spent", "annual_fails"]
    results = pl.concat([calm.select(columns), rough.select(columns)])
    added = (
        results.filter(~pl.col("annual_fails"))
        .group_by(BUYER_YEAR)
        .agg(pl.col("limit_value").sum().alias("added"))
    )
    keys = pl.concat([orders.select(BUYER_YEAR), start.select(BUYER_YEAR)]).unique()
    updated = (
        keys.join(start, on=BUYER_YEAR, how="left")
        .join(added, on=BUYER_YEAR, how="left")
        .select(
            *BUYER_YEAR,
            (pl.col("used").fill_null(0) + pl.col("added").fill_null(0)).alias("used"),
        )
        .sort(BUYER_YEAR)
        .cast(LEDGER_SCHEMA)  # type: ignore[arg-type]
    )
    return results.select("order_row", "annual_spent", "annual_fails"), updated
