"""Times (SPEC §1): everything becomes UTC; naive inputs and dates are Asia/Shanghai."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matchcore.normalise import normalise_table

UTC = dt.UTC


def _app_times(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    return normalise_table(frame, "orders", "orders.csv")


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2024-03-01 10:00:00", dt.datetime(2024, 3, 1, 2, 0, tzinfo=UTC)),
        ("2024-03-01T10:00:00", dt.datetime(2024, 3, 1, 2, 0, tzinfo=UTC)),
        ("20240301100000", dt.datetime(2024, 3, 1, 2, 0, tzinfo=UTC)),
        (" 2024-03-01 10:00:00 ", dt.datetime(2024, 3, 1, 2, 0, tzinfo=UTC)),
    ],
)
def test_plain_layouts_are_shanghai_time(column_frame, text: str, utc: dt.datetime) -> None:
    canonical, rejects = _app_times(column_frame("orders", "app_time", [text]))
    assert rejects.is_empty()
    assert canonical["app_time"].to_list() == [utc]


def test_mixed_layouts_in_one_column(column_frame) -> None:
    texts = [
        "2024-03-01 10:00:00",
        "2024-03-01T10:00:00+08:00",
        "2024-03-01T02:00:00Z",
        "2024-03-01 02:00:00+0000",
        "2024-02-29T20:30:00-05:30",
        "20240301100000",
        "2024-03-01T10:00:00.123456789",
        "2024-03-01",
        "20240301",
        "2024-03-01 10:00",
    ]
    canonical, rejects = _app_times(column_frame("orders", "app_time", texts))
    assert rejects.is_empty()
    two = dt.datetime(2024, 3, 1, 2, 0, tzinfo=UTC)
    midnight = dt.datetime(2024, 2, 29, 16, 0, tzinfo=UTC)
    assert canonical["app_time"].to_list() == [
        two,
        two,
        two,
        two,
        two,
        two,
        two + dt.timedelta(microseconds=123456),
        midnight,
        midnight,
        two,
    ]
    assert canonical.schema["app_time"] == pl.Datetime("us", "UTC")


@pytest.mark.parametrize(
    "texts",
    [
        ["2024-03-01 10:00:00", "2024-02-30 10:00:00"],  # plain layout, impossible date
        ["2024-03-01T10:00:00Z", "2024-13-01"],
        ["2024-03-01T10:00:00Z", "yesterday"],
        ["2024-03-01T10:00:00Z", "2024-03-01 25:00:00"],
        ["20240301100000", "20240301106100"],
    ],
)
def test_invalid_times_are_rejected(column_frame, texts: list[str]) -> None:
    canonical, rejects = _app_times(column_frame("orders", "app_time", texts))
    assert canonical["_row"].to_list() == [1]
    assert rejects.select("row", "column", "value").row(0) == (2, "app_time", texts[1])
    assert rejects["message"][0].startswith("not a valid time")


def test_arrow_timestamps(column_frame) -> None:
    naive = pl.Series("app_time", [dt.datetime(2024, 3, 1, 10, 0)], dtype=pl.Datetime("ns"))
    zoned = naive.dt.replace_time_zone("Europe/Berlin")
    expected = {
        "naive": dt.datetime(2024, 3, 1, 2, 0, tzinfo=UTC),
        "zoned": dt.datetime(2024, 3, 1, 9, 0, tzinfo=UTC),
    }
    for name, series in (("naive", naive), ("zoned", zoned)):
        frame = column_frame("orders", "app_time", ["x"]).with_columns(series)
        canonical, rejects = _app_times(frame)
        assert rejects.is_empty()
        assert canonical["app_time"].to_list() == [expected[name]]


def test_dates_are_midnight_in_shanghai(column_frame) -> None:
    frame = column_frame("orders", "app_time", ["x"]).with_columns(
        pl.Series("app_time", [dt.date(2024, 3, 1)])
    )
    canonical, _ = _app_times(frame)
    assert canonical["app_time"].to_list() == [dt.datetime(2024, 2, 29, 16, 0, tzinfo=UTC)]


def test_order_year_and_day_are_in_shanghai(column_frame) -> None:
    frame = column_frame("orders", "app_time", ["2024-01-01 00:30:00", "2023-12-31T23:30:00Z"])
    canonical, _ = _app_times(frame)
    assert canonical["app_time"].to_list()[0] == dt.datetime(2023, 12, 31, 16, 30, tzinfo=UTC)
    assert canonical["_app_year"].to_list() == [2024, 2024]
    assert canonical["_app_ymd"].to_list() == [20240101, 20240101]
    assert canonical.schema["_app_year"] == pl.Int32
    assert canonical.schema["_app_ymd"] == pl.Int64


# Beyond chrono's years (about ±262,000; Polars gave null there) and past Int32's YYYYMMDD
# (from year 214,748; it wrapped around). Expected dates by NumPy, which has no such limit:
# np.datetime64((us + offset) // 86_400_000_000, "D"), offset +8 h, or +08:05:43 before 1901.
@pytest.mark.parametrize(
    ("micros", "year", "ymd"),
    [
        (2**63 - 1, 294_247, 2_942_470_110),
        (-(2**63), -290_308, -2_903_078_778),
        (8 * 10**18, 255_479, 2_554_791_128),
        (-8 * 10**18, -251_540, -2_515_399_797),
        (7 * 10**18, 223_791, 2_237_910_303),
    ],
)
def test_order_year_and_day_of_far_times(column_frame, micros: int, year: int, ymd: int) -> None:
    frame = column_frame("orders", "app_time", [micros], pl.Int64).with_columns(
        pl.col("app_time").cast(pl.Datetime("us", "UTC"))
    )
    canonical, rejects = _app_times(frame)
    assert rejects.is_empty()
    assert canonical.select(pl.col("app_time").to_physical()).item() == micros
    assert canonical.select("_app_year", "_app_ymd").row(0) == (year, ymd)


_HOURS_8 = 8 * 3_600_000_000


@pytest.mark.parametrize(
    ("dtype", "raw", "utc", "year", "ymd"),
    [
        # naive: Asia/Shanghai wall times, 8 hours ahead of UTC at the end of int64
        (pl.Datetime("us"), 2**63 - 1, 2**63 - 1 - _HOURS_8, 294_247, 2_942_470_110),
        (pl.Datetime("ms"), 9 * 10**15, 9 * 10**18 - _HOURS_8, 287_168, 2_871_680_824),
        (pl.Date, 10**8, 10**8 * 86_400_000_000 - _HOURS_8, 275_760, 2_757_600_913),
    ],
)
def test_far_naive_times_and_dates_are_shanghai_time(
    column_frame, dtype: pl.DataType, raw: int, utc: int, year: int, ymd: int
) -> None:
    physical = pl.Int32 if dtype == pl.Date else pl.Int64
    frame = column_frame("orders", "app_time", [raw], physical).with_columns(
        pl.col("app_time").cast(dtype)
    )
    canonical, rejects = _app_times(frame)
    assert rejects.is_empty()
    row = canonical.select(pl.col("app_time").to_physical(), "_app_year", "_app_ymd").row(0)
    assert row == (utc, year, ymd)


@pytest.mark.parametrize(
    ("dtype", "raw", "shown"),
    [
        (pl.Datetime("ms", "UTC"), 2**63 - 1, "9223372036854775807 ms since 1970-01-01"),
        (pl.Datetime("ms"), -(2**62), "-4611686018427387904 ms since 1970-01-01"),
        (pl.Date, 2**31 - 1, "2147483647 days since 1970-01-01"),
        # a wall time at the start of int64 lies 8:05:43 (local mean time) before it in UTC
        (pl.Datetime("us"), -(2**63), "-9223372036854775808 us since 1970-01-01"),
    ],
)
def test_times_beyond_int64_microseconds_are_rejected(
    column_frame, dtype: pl.DataType, raw: int, shown: str
) -> None:
    physical = pl.Int32 if dtype == pl.Date else pl.Int64
    frame = column_frame("orders", "app_time", [raw, 0], physical).with_columns(
        pl.col("app_time").cast(dtype)
    )
    canonical, rejects = _app_times(frame)
    assert canonical["_row"].to_list() == [2]
    assert rejects.select("row", "column", "value", "message").rows() == [
        (1, "app_time", shown, "time out of range (int64 microseconds since 1970, UTC)")
    ]


def test_optional_times_may_be_null(column_frame) -> None:
    frame = column_frame("products", "valid_from", [None, "2024-01-01"])
    canonical, rejects = normalise_table(frame, "products", "products.csv")
    assert rejects.is_empty()
    assert canonical["valid_from"].to_list() == [None, dt.datetime(2023, 12, 31, 16, tzinfo=UTC)]


@pytest.mark.parametrize("fill", ["2024-03-01 10:00:00", "2024-03-01T10:00:00Z"])
def test_blank_optional_times_are_null(column_frame, fill: str) -> None:
    frame = column_frame("products", "valid_to", ["", fill, None])
    canonical, rejects = normalise_table(frame, "products", "products.csv")
    assert rejects.is_empty()
    assert canonical["valid_to"].null_count() == 2


_SHANGHAI = ZoneInfo("Asia/Shanghai")
_LAYOUTS = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y%m%d%H%M%S", "%Y-%m-%dT%H:%M:%S%z"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.datetimes(min_value=dt.datetime(1995, 1, 1), max_value=dt.datetime(2090, 1, 1)),
            st.sampled_from(_LAYOUTS),
            st.integers(min_value=-12 * 4, max_value=14 * 4),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_times_match_python_reference(column_frame, stamps: list[tuple]) -> None:
    texts, expected = [], []
    for moment, layout, quarter_hours in stamps:
        moment = moment.replace(microsecond=0)
        zone = (
            dt.timezone(dt.timedelta(minutes=15 * quarter_hours)) if "%z" in layout else _SHANGHAI
        )
        local = moment.replace(tzinfo=zone)
        texts.append(local.strftime(layout))
        expected.append(local.astimezone(UTC))
    for column in (texts, texts[:1]):  # mixed layouts, and one plain layout
        canonical, rejects = _app_times(column_frame("orders", "app_time", column))
        assert rejects.is_empty()
        assert canonical["app_time"].to_list() == expected[: len(column)]
