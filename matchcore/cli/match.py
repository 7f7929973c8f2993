"""`matchcore match`: read the tables, run the rules, write the outputs and print a summary.

Inputs come from a data directory (standard file names), customs XML (`--ceb`) and one option
per table; later ones override earlier ones. Exit code 3 when `--fail-on` is reached.
"""

from __future__ import annotations

import argparse
from collections.abc import Collection
from pathlib import Path
from typing import Any

from ..api import require
from ..exceptions import SchemaError
from ..schema import REQUIRED_TABLES, TABLES
from .common import EXIT_FAIL_ON, EXIT_OK, add_output_flags, print_json, show_progress

FORMATS = ("parquet", "csv", "ndjson", "ipc")
ENGINES = ("auto", "kernel", "reference")
FAIL_ON = {"reject": ("reject",), "review": ("review", "reject")}


def _table_option(table: str) -> str:
    return "--" + table.replace("_", "-")


def add_parser(subparsers: Any) -> None:
    """Register `match` and its options."""
    parser = subparsers.add_parser(
        "match",
        help="match orders, payments and waybills and write verdicts",
        description=(
            "Check each order against its payment, waybill and the filings; write verdicts, "
            "exceptions, orphans, the updated quota ledger and rejected input rows."
        ),
    )
    inputs = parser.add_argument_group("inputs")
    inputs.add_argument("--data", metavar="DIR", type=Path, help="directory of standard files")
    inputs.add_argument(
        "--ceb", metavar="DIR", type=Path, help="customs XML messages (directory, file or zip)"
    )
    for table in TABLES:
        inputs.add_argument(
            _table_option(table),
            dest=table,
            metavar="FILE",
            type=Path,
            help=f"the {table} table (overrides --data/--ceb)",
        )
    rules = parser.add_argument_group("rules")
    rules.add_argument("--rules", metavar="FILE", type=Path, help="rule settings (TOML)")
    rules.add_argument(
        "--engine", choices=ENGINES, default="auto", help="auto = kernel when built (default)"
    )
    outputs = parser.add_argument_group("outputs")
    outputs.add_argument("--out", metavar="DIR", type=Path, help="write the output tables here")
    outputs.add_argument("--format", choices=FORMATS, default="parquet", help="default: parquet")
    outputs.add_argument("--report", metavar="FILE", type=Path, help="write an HTML report")
    outputs.add_argument("--receipts", metavar="DIR", type=Path, help="write customs receipts")
    outputs.add_argument(
        "--no-mask", action="store_true", help="identity values in clear in the outputs"
    )
    outputs.add_argument(
        "--fail-on",
        choices=tuple(FAIL_ON),
        help="exit with code 3 when any order gets this verdict (review includes reject)",
    )
    add_output_flags(parser)


def gather_sources(args: argparse.Namespace) -> dict[str, Any]:
    """Table name -> source from --data, then --ceb, then the per-table options."""
    sources: dict[str, Any] = {}
    given = {t: getattr(args, t) for t in TABLES if getattr(args, t) is not None}
    if args.data is not None:
        sources.update(_discover(args.data, supplied=given))
    if args.ceb is not None:
        _check_files(given)  # a bad table file fails before the XML is parsed
        sources.update(_read_ceb(args.ceb))
    sources.update(given)
    missing = [t for t in REQUIRED_TABLES if t not in sources]
    if missing:
        options = ", ".join(_table_option(t) for t in missing)
        raise SchemaError(
            f"missing required table {', '.join(missing)}: give {options} or --data DIR"
        )
    return sources


def _discover(directory: Path, *, supplied: Collection[str]) -> dict[str, Any]:
    discover = require("matchcore.io", "discover", "--data")
    return dict(discover(directory, supplied=supplied))


def _check_files(files: dict[str, Path]) -> None:
    check_sources = require("matchcore.io", "check_sources", "reading table files")
    check_sources(files)


def _read_ceb(source: Path) -> dict[str, Any]:
    read_ceb = require("matchcore.io.ceb", "read_ceb", "customs XML input (--ceb)")
    return dict(read_ceb(source).sources())


def fail_on_reached(verdict_counts: dict[str, int], fail_on: str | None) -> bool:
    """True when some order has a verdict at or above the `--fail-on` level."""
    if fail_on is None:
        return False
    return any(verdict_counts.get(verdict, 0) > 0 for verdict in FAIL_ON[fail_on])


def _write_extras(result: Any, args: argparse.Namespace) -> None:
    """The HTML report and the customs receipts, when asked for."""
    if args.report is not None:
        write_report = require("matchcore.report", "write_report", "the HTML report (--report)")
        write_report(result, args.report)
    if args.receipts is not None:
        write_receipts = require(
            "matchcore.io.ceb", "write_receipts", "customs receipts (--receipts)"
        )
        write_receipts(result, args.receipts)


def run(args: argparse.Namespace) -> int:
    """Run `matchcore match`."""
    from ..api import match_sources, resolve_settings
    from ..progress import PhaseTracker
    from .common import print_summary, stdout_console

    settings = resolve_settings(args.rules)  # a bad rules file fails before any reading
    with PhaseTracker(display=show_progress(args)) as tracker:
        with tracker.phase("read"):
            sources = gather_sources(args)
        result = match_sources(
            sources,
            rules=settings,
            engine=args.engine,
            mask_identity=not args.no_mask,
            progress=tracker,
        )
        with tracker.phase("write"):
            if args.out is not None:
                result.write(args.out, args.format)
            _write_extras(result, args)
    if args.json:
        print_json(result.summary_dict())
    elif not args.quiet:
        print_summary(result, stdout_console())
    return EXIT_FAIL_ON if fail_on_reached(result.verdict_counts(), args.fail_on) else EXIT_OK
