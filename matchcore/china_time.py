"""Asia/Shanghai wall time of any UTC time Arrow holds (int64 microseconds), in Polars.

chrono, behind Polars' time zones, calendar fields and strftime, stops near year ±262,000 (null
or a panic beyond), while int64 microseconds reach about ±292,000. A far time is moved by whole
400-year Gregorian cycles (146,097 days: the same calendar, month and day) into years chrono
holds, converted there, and its year moved back after. The moved time keeps its Asia/Shanghai
offset: later times land in 2370-2769 (UTC+8 since 1992), earlier ones in 1170-1569 (local mean
time, +08:05:43, until 1901). `stream/canonical.py` does the same in Python, value by value.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from .schema import CHINA_TZ

__all__ = [
    "CYCLE_US",
    "CYCLE_YEARS",
    "FOUR_DIGIT_FROM_US",
    "FOUR_DIGIT_TO_US",
    "NEAR_FROM_US",
    "NEAR_TO_US",
    "ChinaTime",
    "china_time",
    "china_wall_to_utc",
    "exact_micros",
]

#: The Gregorian calendar repeats every 400 years (146,097 days).
CYCLE_YEARS = 400
CYCLE_US = 146_097 * 86_400 * 1_000_000


def _year_us(year: int) -> int:
    """Microseconds from the epoch to the start of `year`, UTC."""
    return (dt.datetime(year, 1, 1) - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)


#: Times outside these years are moved by whole cycles before chrono sees them.
NEAR_FROM_US, NEAR_TO_US = _year_us(1000), _year_us(3000)
#: Wall times with a four-digit year: from 0001-01-01 to before 10000-01-01 (one cycle after
#: 9600, as Python's dates stop at 9999), in microseconds as if the wall time were UTC.
FOUR_DIGIT_FROM_US, FOUR_DIGIT_TO_US = _year_us(1), _year_us(9600) + CYCLE_US

_DAY_US = 86_400_000_000
_UNIT_US = {"us": 1, "ms": 1_000}  # microseconds per unit (ns are divided)


def exact_micros(expr: pl.Expr, dtype: pl.Date | pl.Datetime) -> pl.Expr:
    """A Date (its midnight) or Datetime as exact microseconds: Int128, nothing wraps around."""
    physical = expr.to_physical().cast(pl.Int128)
    if isinstance(dtype, pl.Date):
        return physical * _DAY_US
    if dtype.time_unit == "ns":
        return physical // 1_000  # floor, as Polars casts
    return physical * _UNIT_US[dtype.time_unit]


@dataclass(frozen=True)
class ChinaTime:
    """A UTC time in Asia/Shanghai: `local`, the wall time moved back by `cycles` whole 400-year
    cycles (0 for years 1000-2999), has the real month, day and time of day."""

    local: pl.Expr  # Datetime("us", "Asia/Shanghai")
    cycles: pl.Expr  # Int64

    @property
    def year(self) -> pl.Expr:
        """The real year (Int64)."""
        return self.local.dt.year().cast(pl.Int64) + self.cycles * CYCLE_YEARS


def _cycles_moved(us: pl.Expr) -> pl.Expr:
    """Whole cycles to take from a far time (microseconds): divisions first, so nothing
    overflows, and only far times move (near ones keep their exact zone rules)."""
    cycles = us // CYCLE_US
    return (
        pl.when(us >= NEAR_TO_US)
        .then(cycles - 1)
        .when(us < NEAR_FROM_US)
        .then(cycles + 2)
        .otherwise(0)
    )


def china_time(expr: pl.Expr) -> ChinaTime:
    """`expr`, a UTC Datetime, in Asia/Shanghai for every int64 value (see the module text)."""
    us = expr.dt.cast_time_unit("us").to_physical()
    cycles = _cycles_moved(us)
    moved = (us - cycles * CYCLE_US).cast(pl.Datetime("us", "UTC"))
    return ChinaTime(moved.dt.convert_time_zone(CHINA_TZ), cycles)


def china_wall_to_utc(wall_us: pl.Expr) -> pl.Expr:
    """UTC microseconds of Asia/Shanghai wall times (Int64 microseconds), for every value: the
    earlier instant when ambiguous, null when a clock change skipped it. Int128, since a wall
    time in the first hours of int64 lies before int64 in UTC."""
    cycles = _cycles_moved(wall_us)
    moved = (wall_us - cycles * CYCLE_US).cast(pl.Datetime("us"))
    local = moved.dt.replace_time_zone(CHINA_TZ, ambiguous="earliest", non_existent="null")
    return local.to_physical().cast(pl.Int128) + cycles.cast(pl.Int128) * CYCLE_US
