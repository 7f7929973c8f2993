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
    assert canonical.schema["_app_ymd"] == pl.Int32


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
