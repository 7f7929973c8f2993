"""Assembles the self-contained HTML report: aggregates, chart specs, exception sample.

The Vega scripts are inlined once (bundled by vl-convert and cached on disk), every data set is
embedded as JSON, and nothing is fetched when the page opens, so it works offline.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import importlib.metadata
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl

from ..exceptions import MatchcoreError
from ..money import format_money
from . import charts
from .aggregate import (
    PARTY_ROLES,
    amounts_by_rule,
    arrival_gaps,
    exception_counts,
    exception_sample,
    limit_usage,
    party_exception_rows,
    party_failure_rates,
    rules_ranked,
    verdict_breakdown,
)
from .source import ReportData, from_result
from .template import CHARTS_JS, CSS, TABLE_JS

#: Exception rows embedded in the page at most (the rest are counted, not listed).
MAX_EXCEPTION_ROWS = 20_000
DEFAULT_TITLE = "matchcore report"
#: Makes the bundled libraries global, for the page's own scripts.
GLOBALS_SNIPPET = "window.vegaEmbed = vegaEmbed; window.vega = vega; window.vegaLite = vegaLite;"


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "matchcore"


@lru_cache(maxsize=1)
def vega_bundle() -> str:
    """Vega, Vega-Lite and vega-embed as one script (bundling takes seconds; cached on disk)."""
    import vl_convert

    version = importlib.metadata.version("vl-convert-python")
    snippet = hashlib.sha256(GLOBALS_SNIPPET.encode()).hexdigest()[:8]
    name = f"vega-bundle-{version}-{vl_convert.get_vega_version()}-{snippet}.js"
    cached = _cache_dir() / name
    try:
        return cached.read_text(encoding="utf-8")
    except OSError:
        pass
    # Inside an inline <script>, "</script" would end the element early.
    bundle = vl_convert.javascript_bundle(GLOBALS_SNIPPET).replace("</script", "<\\/script")
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(bundle, encoding="utf-8")
        partial.replace(cached)
    except OSError:
        pass  # a read-only home only costs the bundling time again
    return bundle


def script_json(value: Any) -> str:
    """JSON that is safe inside a <script> element (no `</script>` or `<!--` can appear)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _count(value: int | None) -> str:
    return f"{int(value or 0):,}"


def _table(headers: list[tuple[str, bool]], rows: list[list[object]]) -> str:
    """An HTML table; a header's flag marks a numeric (right-aligned) column."""
    head = "".join(
        f'<th class="n">{_esc(h)}</th>' if n else f"<th>{_esc(h)}</th>" for h, n in headers
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{_esc(v)}</td>' if numeric else f"<td>{_esc(v)}</td>"
            for v, (_, numeric) in zip(row, headers, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class _Page:
    """Collects sections and chart specs, then renders the page."""

    def __init__(self) -> None:
        self.sections: list[str] = []
        self.specs: dict[str, dict[str, Any]] = {}

    def chart(self, spec: dict[str, Any]) -> str:
        chart_id = f"mc-chart-{len(self.specs) + 1}"
        self.specs[chart_id] = spec
        return f'<div class="mc-chart" id="{chart_id}"></div>'

    def section(self, section_id: str, title: str, body: str) -> None:
        self.sections.append(f'<section id="{section_id}"><h2>{_esc(title)}</h2>{body}</section>')


def _cards(data: ReportData, verdicts: pl.DataFrame) -> str:
    by_verdict = dict(zip(verdicts["verdict"].to_list(), verdicts["orders"].to_list(), strict=True))
    cards = [("orders", data.verdicts.height, "")]
    cards += [(v, by_verdict.get(v, 0), v) for v in ("pass", "review", "reject")]
    cards += [
        ("exception rows", data.exceptions.height, ""),
        ("orphan documents", data.orphans.height, ""),
        ("rejected input rows", data.rejects.height, ""),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card {cls}"><div class="v">{_count(n)}</div>'
            f'<div class="k">{_esc(k)}</div></div>'
            for k, n, cls in cards
        )
        + "</div>"
    )


def _verdict_section(page: _Page, data: ReportData) -> None:
    frame = verdict_breakdown(data.verdicts)
    page.section(
        "verdicts", "Verdicts", _cards(data, frame) + page.chart(charts.verdict_chart(frame))
    )


def _rules_section(page: _Page, data: ReportData) -> None:
    ranked = rules_ranked(data.verdicts, data.settings)
    if ranked.height == 0:
        page.section("rules", "Failed rules", '<p class="note">No rule failed.</p>')
        return
    counts = exception_counts(data.exceptions)
    rows_by_rule = counts.group_by("rule").agg(pl.col("rows").sum())
    table = ranked.join(rows_by_rule, on="rule", how="left").with_columns(
        pl.col("rows").fill_null(0)
    )
    rows = [
        [r["rule"], r["severity"], _count(r["orders"]), f"{r['share']:.2%}", _count(r["rows"])]
        for r in table.iter_rows(named=True)
    ]
    headers = [("rule", False), ("severity", False), ("orders", True), ("of all orders", True),
               ("exception rows", True)]  # fmt: skip
    body = (
        '<div class="grid">'
        + page.chart(charts.rules_chart(ranked))
        + _table(headers, rows)
        + "</div>"
    )
    page.section("rules", "Failed rules, ranked", body)


def _amounts_section(page: _Page, data: ReportData) -> None:
    frame = amounts_by_rule(data.verdicts)
    if frame.height == 0:
        return
    rows = [
        [r["rule"], _count(r["orders"]), format_money(r["at_stake"])]
        for r in frame.iter_rows(named=True)
    ]
    note = (
        '<p class="note">Sum of the limit value (goods + freight − discount) of the orders '
        "failing each rule; an order failing several rules counts under each.</p>"
    )
    body = (
        note
        + '<div class="grid">'
        + page.chart(charts.amounts_chart(frame))
        + _table([("rule", False), ("orders", True), ("CNY at stake", True)], rows)
        + "</div>"
    )
    page.section("amounts", "Amounts at stake by rule", body)


def _parties_section(page: _Page, data: ReportData) -> None:
    rates = party_failure_rates(data)
    parts: list[str] = []
    if data.tables is None:
        parts.append(
            '<p class="note">Made from a result directory: only the platform of every order is '
            "known. Reports made by <code>matchcore match --report</code> also rank e-commerce "
            "enterprises, payment and logistics companies.</p>"
        )
    charts_html = [
        page.chart(charts.party_chart(rates.filter(pl.col("role") == role), role))
        for role, _ in PARTY_ROLES
        if role in rates.get_column("role")
    ]
    parts.append('<div class="grid">' + "".join(charts_html) + "</div>")
    filing = party_exception_rows(data.exceptions).head(25)
    if filing.height:
        rows = [[r["code"], r["rule"], _count(r["rows"])] for r in filing.iter_rows(named=True)]
        parts.append("<h3>Filing exceptions by enterprise</h3>")
        parts.append(
            _table([("enterprise", False), ("rule", False), ("exception rows", True)], rows)
        )
    page.section("parties", "Failure rates by party", "".join(parts))


def _limits_section(page: _Page, data: ReportData) -> None:
    limit = data.settings.parameters.annual_limit
    frame = limit_usage(data.ledger, limit)
    note = (
        f'<p class="note">Updated quota ledger: {_count(data.ledger.height)} buyer-years; annual '
        f"limit {_esc(format_money(limit))} CNY.</p>"
    )
    page.section("limits", "Annual-limit usage", note + page.chart(charts.usage_chart(frame)))


def _gaps_section(page: _Page, data: ReportData) -> None:
    frame = arrival_gaps(data)
    if frame is None:
        body = (
            '<p class="note">Not available: the document times are not in a result directory. '
            "Reports made by <code>matchcore match --report</code> include them.</p>"
        )
    else:
        window_h = data.settings.parameters.arrival_window / 3600
        body = (
            f'<p class="note">Orders with one payment and one waybill; arrival window '
            f"{window_h:g} h.</p>" + page.chart(charts.gaps_chart(frame))
        )
    page.section("gaps", "Arrival-time gaps", body)


def _documents_section(page: _Page, data: ReportData) -> None:
    rows: list[list[object]] = []
    if data.orphans.height and "document" in data.orphans.columns:
        counts = data.orphans.group_by("document").len().sort("document")
        rows += [[f"orphan {d}", _count(n)] for d, n in counts.iter_rows()]
    if data.rejects.height:
        by = next((c for c in ("table", "file") if c in data.rejects.columns), None)
        if by is None:
            rows.append(["rejected input rows", _count(data.rejects.height)])
        else:
            counts = data.rejects.group_by(by).len().sort(by)
            rows += [[f"rejected rows: {t}", _count(n)] for t, n in counts.iter_rows()]
    body = (
        _table([("documents", False), ("rows", True)], rows)
        if rows
        else ('<p class="note">No orphan documents and no rejected input rows.</p>')
    )
    page.section("documents", "Orphans and rejected input", body)


def _exceptions_section(page: _Page, data: ReportData, limit: int) -> str:
    """The exception table's HTML; returns the JSON data block it reads."""
    sample = exception_sample(data.exceptions, limit)
    total = data.exceptions.height
    note = (
        f'<p class="note">{_count(sample.height)} of {_count(total)} exception rows are listed'
        + (" (a sample spread over the rules). " if sample.height < total else ". ")
        + "Identity values are masked.</p>"
    )
    headers = "".join(f"<th>{_esc(c)}</th>" for c in sample.columns)
    body = (
        note
        + '<div class="filters"><label>rule <select id="mc-f-rule"><option value="">all</option>'
        '</select></label><label>severity <select id="mc-f-sev"><option value="">all</option>'
        '</select></label><label>search <input id="mc-f-text" type="search" '
        'placeholder="order, party, field…"></label><span class="pager"><button id="mc-prev">'
        '‹ prev</button> <button id="mc-next">next ›</button></span> <span id="mc-exc-info" '
        'class="note"></span></div>'
        f'<table id="mc-exc-table"><thead><tr>{headers}</tr></thead><tbody></tbody></table>'
    )
    page.section("exceptions", "Exceptions", body)
    payload = {"columns": sample.columns, "rows": [list(r) for r in sample.iter_rows()]}
    return f'<script type="application/json" id="mc-exc-data">{script_json(payload)}</script>'


def render_html(
    data: ReportData, *, title: str | None = None, max_exceptions: int = MAX_EXCEPTION_ROWS
) -> str:
    """The whole report page for `data`, as one HTML string."""
    page = _Page()
    _verdict_section(page, data)
    _rules_section(page, data)
    _amounts_section(page, data)
    _parties_section(page, data)
    _limits_section(page, data)
    _gaps_section(page, data)
    _documents_section(page, data)
    exception_data = _exceptions_section(page, data, max_exceptions)
    heading = title or DEFAULT_TITLE
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    engine = data.summary.get("engine")
    meta = f"{_count(data.verdicts.height)} orders · generated {generated}"
    meta += f" · engine {_esc(engine)}" if engine else ""
    meta += f" · source {_esc(data.source)}" if data.source else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(heading)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>{_esc(heading)}</h1><div class="meta">{meta}</div></header><main>'
        + "".join(page.sections)
        + "</main>"
        + exception_data
        + f'<script type="application/json" id="mc-chart-specs">{script_json(page.specs)}</script>'
        + f"<script>{vega_bundle()}</script><script>{CHARTS_JS}</script><script>{TABLE_JS}</script>"
        + "</body></html>"
    )


def write_report(result: Any, path: str | Path, *, title: str | None = None) -> Path:
    """Write the HTML report of a `MatchResult` (or a `ReportData`) to `path`; returns the path.

    Raises MatchcoreError when the file cannot be written.
    """
    data = result if isinstance(result, ReportData) else from_result(result)
    text = render_html(data, title=title)
    target = Path(path)
    try:
        if target.parent and not target.parent.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise MatchcoreError(f"{target}: cannot write report ({exc.strerror or exc})") from None
    return target


__all__ = ["MAX_EXCEPTION_ROWS", "render_html", "vega_bundle", "write_report"]
