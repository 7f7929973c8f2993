"""The HTML report of a matching run: verdicts, failed rules, parties, limits, exceptions.

`write_report(result, path)` takes a `MatchResult`; `load_result_dir(dir)` reads what
`MatchResult.write` produced, for `matchcore report`.
"""

from .page import render_html, write_report
from .source import ReportData, from_result, load_result_dir

__all__ = ["ReportData", "from_result", "load_result_dir", "render_html", "write_report"]
