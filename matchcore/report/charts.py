"""Vega-Lite chart specifications (built with Altair) for the report's aggregate frames.

Each function takes one small frame from `aggregate` and returns a JSON-able spec with its data
inlined; the HTML page embeds them and draws them with the bundled Vega scripts, offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import altair as alt
import polars as pl

from .aggregate import GAP_LABELS, USAGE_LABELS, money_cny

Spec = dict[str, Any]

VERDICT_COLORS = {
    "pass": "#2e7d32",
    "review": "#f9a825",
    "reject": "#c62828",
    "incomplete": "#757575",
}
SEVERITY_COLORS = {"reject": "#c62828", "review": "#f9a825", "warn": "#1565c0", "off": "#9e9e9e"}
WIDTH = 520
PARTY_WIDTH = 300  # two party charts side by side
#: Counts are whole numbers: no ticks between integers.
COUNT_AXIS = alt.Axis(tickMinStep=1, format=",d")


def _spec(chart: alt.TopLevelMixin) -> Spec:
    """The chart as a dict, without the `$schema` URL (the page says the mode itself)."""
    spec: Spec = chart.to_dict(validate=False)  # the specs are fixed; validation costs ~0.2 s each
    spec.pop("$schema", None)
    return spec


def _scale(colors: dict[str, str]) -> alt.Scale:
    return alt.Scale(domain=list(colors), range=list(colors.values()))


def _bar_height(rows: int) -> int:
    return max(60, 22 * rows)


def verdict_chart(frame: pl.DataFrame) -> Spec:
    """Orders per verdict, coloured by verdict."""
    chart = (
        alt.Chart(alt.Data(values=frame.to_dicts()))
        .mark_bar()
        .encode(
            x=alt.X("orders:Q", title="orders", axis=COUNT_AXIS),
            y=alt.Y("verdict:N", sort=list(VERDICT_COLORS), title=None),
            color=alt.Color("verdict:N", scale=_scale(VERDICT_COLORS), legend=None),
            tooltip=["verdict:N", "orders:Q", alt.Tooltip("share:Q", format=".2%")],
        )
        .properties(width=WIDTH, height=_bar_height(frame.height))
    )
    return _spec(chart)


def rules_chart(frame: pl.DataFrame) -> Spec:
    """Orders failing each rule, most first, coloured by severity."""
    chart = (
        alt.Chart(alt.Data(values=frame.to_dicts()))
        .mark_bar()
        .encode(
            x=alt.X("orders:Q", title="orders failing the rule", axis=COUNT_AXIS),
            y=alt.Y("rule:N", sort="-x", title=None),
            color=alt.Color("severity:N", scale=_scale(SEVERITY_COLORS)),
            tooltip=["rule:N", "severity:N", "orders:Q", alt.Tooltip("share:Q", format=".2%")],
        )
        .properties(width=WIDTH, height=_bar_height(frame.height))
    )
    return _spec(chart)


def amounts_chart(frame: pl.DataFrame) -> Spec:
    """CNY at stake (sum of the failing orders' limit value) per rule."""
    values = frame.with_columns(money_cny(pl.col("at_stake")).alias("cny")).to_dicts()
    chart = (
        alt.Chart(alt.Data(values=values))
        .mark_bar(color="#6a1b9a")
        .encode(
            x=alt.X("cny:Q", title="CNY at stake"),
            y=alt.Y("rule:N", sort="-x", title=None),
            tooltip=["rule:N", "orders:Q", alt.Tooltip("cny:Q", format=",.2f", title="CNY")],
        )
        .properties(width=WIDTH, height=_bar_height(frame.height))
    )
    return _spec(chart)


def party_chart(frame: pl.DataFrame, role: str) -> Spec:
    """Failure rate (orders not passing) of the parties of one role with most failed orders,
    each bar labelled "failed / orders"."""
    values = frame.with_columns(
        (pl.col("failed").cast(pl.String) + " / " + pl.col("orders").cast(pl.String)).alias("label")
    ).to_dicts()
    base = alt.Chart(alt.Data(values=values)).encode(
        x=alt.X("rate:Q", title="share of orders not passing", axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("code:N", sort="-x", title=None),
        tooltip=["code:N", "orders:Q", "failed:Q", alt.Tooltip("rate:Q", format=".2%")],
    )  # fmt: skip
    bars = base.mark_bar(color="#00838f")
    labels = base.mark_text(align="left", dx=3, fontSize=10).encode(text="label:N")
    chart = (bars + labels).properties(
        width=PARTY_WIDTH, height=_bar_height(frame.height), title=role
    )
    return _spec(chart)


def usage_chart(frame: pl.DataFrame) -> Spec:
    """Buyer-years per band of annual-limit usage."""
    return _band_chart(
        frame, USAGE_LABELS, "buyers", "ledger used / annual limit", "buyer-years", "#ef6c00"
    )


def gaps_chart(frame: pl.DataFrame) -> Spec:
    """Orders per band of the gap between order, payment and waybill times."""
    return _band_chart(
        frame, GAP_LABELS, "orders", "latest minus earliest document time", "orders", "#1565c0"
    )


def _band_chart(
    frame: pl.DataFrame,
    bands: Sequence[str],
    count: str,
    x_title: str,
    y_title: str,
    color: str,
) -> Spec:
    """A bar per band (in the given order) with its count."""
    chart = (
        alt.Chart(alt.Data(values=frame.to_dicts()))
        .mark_bar(color=color)
        .encode(
            x=alt.X("band:N", sort=list(bands), title=x_title),
            y=alt.Y(f"{count}:Q", title=y_title, axis=COUNT_AXIS),
            tooltip=["band:N", f"{count}:Q"],
        )
        .properties(width=WIDTH, height=220)
    )
    return _spec(chart)
