"""The annual-limit walk of SPEC §3.1 and the updated quota ledger, for the reference engine.

Buyer-years whose running total never exceeds the limit are settled with one cumulative sum;
only those that overflow are walked order by order (inherently sequential, in a plain loop).
"""

from __future__ import annotations

import polars as pl

from ..base import LEDGER_SCHEMA

BUYER_YEAR = ["buyer_id_number", "year"]
WALK_ORDER = [*BUYER_YEAR, "app_time", "ebp_code", "order_no", "order_row"]


def starting_ledger(ledger: pl.DataFrame | None) -> pl.DataFrame:
    """(buyer_id_number, year, used) before this run; empty without a quota ledger."""
    if ledger is None:
        return pl.DataFrame(schema=LEDGER_SCHEMA)
    return ledger.select(BUYER_YEAR + ["used"]).cast(LEDGER_SCHEMA)  # type: ignore[arg-type]


def walk_from(frame: pl.DataFrame, annual_limit: int) -> pl.DataFrame:
    """Walk the rows (in walk order) one at a time: `annual_spent`, `annual_fails`.

    A row with `_walk_start` begins its buyer-year's walk with `spent` = `_spent_before`.
    """
    spent_before: list[int] = []
    fails: list[bool] = []
    spent = 0
    rows = zip(
        frame["_walk_start"].to_list(),
        frame["_spent_before"].to_list(),
        frame["limit_value"].to_list(),
        strict=True,
    )
    for starts, start_spent, value in rows:
        if starts:
            spent = start_spent
        spent_before.append(spent)
        refused = spent + value > annual_limit
        fails.append(refused)
        if not refused:
            spent += value
    return frame.with_columns(
        pl.Series("annual_spent", spent_before, dtype=pl.Int64),
        pl.Series("annual_fails", fails, dtype=pl.Boolean),
    )


def settle(walked: pl.DataFrame, annual_limit: int) -> pl.DataFrame:
    """`annual_spent` / `annual_fails` of every walked order.

    Up to a buyer-year's first order that would exceed the limit, the running total is a plain
    cumulative sum; only from that order on is the walk sequential.
    """
    over = pl.col("used") + pl.col("_reached") > annual_limit
    position = pl.int_range(pl.len()).over(BUYER_YEAR)
    first_over = pl.when(over.any()).then(over.arg_max()).otherwise(pl.len()).over(BUYER_YEAR)
    walked = walked.with_columns(
        (pl.col("used") + pl.col("_reached") - pl.col("limit_value")).alias("_spent_before"),
        (position - first_over).alias("_since_first_over"),
    )
    calm = walked.filter(pl.col("_since_first_over") < 0).with_columns(
        pl.col("_spent_before").alias("annual_spent"), pl.lit(False).alias("annual_fails")
    )
    rough = walk_from(
        walked.filter(pl.col("_since_first_over") >= 0).with_columns(
            (pl.col("_since_first_over") == 0).alias("_walk_start")
        ),
        annual_limit,
    )
    columns = ["order_row", *BUYER_YEAR, "limit_value", "annual_spent", "annual_fails"]
    return pl.concat([calm.select(columns), rough.select(columns)])


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
    )
    results = settle(walked, annual_limit)
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
