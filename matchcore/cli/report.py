"""`matchcore report`: the self-contained HTML report of a result directory.

RESULT_DIR is what `matchcore match --out` (or `MatchResult.write`) produced; the page opens
offline in any browser.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import EXIT_OK, print_json, stderr_console


def add_parser(subparsers: Any) -> None:
    """Register `report` and its options."""
    parser = subparsers.add_parser(
        "report",
        help="write an HTML report of a result directory",
        description=(
            "Write one self-contained HTML file (charts and tables, no network access needed) "
            "from the verdicts, exceptions, orphans, ledger and rejects in RESULT_DIR."
        ),
    )
    parser.add_argument(
        "result_dir", metavar="RESULT_DIR", type=Path, help="output of `match --out`"
    )
    parser.add_argument(
        "-o", "--output", metavar="FILE", type=Path, default=Path("report.html"),
        help="the HTML file to write (default: report.html)",
    )  # fmt: skip
    parser.add_argument("--title", help="title shown at the top of the report")
    parser.add_argument(
        "--rules", metavar="FILE", type=Path,
        help="the rule settings (TOML) of the run, for severities and limits (default: SPEC's)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print what was written as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")


def run(args: argparse.Namespace) -> int:
    """Run `matchcore report`."""
    from ..report import load_result_dir, write_report
    from ..rules import RuleSettings

    data = load_result_dir(args.result_dir)
    if args.rules is not None:
        data.settings = RuleSettings.from_toml(args.rules)
    path = write_report(data, args.output, title=args.title)
    size = path.stat().st_size
    if args.json:
        print_json({"report": str(path), "bytes": size, "orders": data.verdicts.height})
    elif not args.quiet:
        stderr_console().print(
            f"wrote {path} ({size / 1e6:.1f} MB, {data.verdicts.height:,} orders)"
        )
    return EXIT_OK
