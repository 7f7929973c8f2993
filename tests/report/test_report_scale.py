"""The report of a 1M-order run: made in seconds, a few MB (aggregated before rendering)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from matchcore.report import write_report
from matchcore.report.page import vega_bundle


@pytest.mark.slow
def test_million_order_report_is_small_and_quick(tmp_path: Path) -> None:
    import matchcore.api
    from matchcore.generate import generate

    data = generate(1_000_000, seed=1)
    result = matchcore.api.match(**data.tables, engine="auto")
    vega_bundle()  # bundling the scripts is a one-off cost, cached on disk
    start = time.perf_counter()
    path = write_report(result, tmp_path / "report.html")
    seconds = time.perf_counter() - start
    size = path.stat().st_size
    assert size < 10_000_000, size
    assert seconds < 30, seconds
