"""`matchcore explain`: why one order got its verdict.

Runs the match on the data directory, then shows the order's documents and filings side by side
and every rule's outcome with the values compared (or the same as JSON).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..exceptions import MatchcoreError
from .common import EXIT_OK, print_json, stdout_console

ENGINES = ("auto", "kernel", "reference")


def add_parser(subparsers: Any) -> None:
    """Register `explain` and its options."""
    parser = subparsers.add_parser(
        "explain",
        help="explain the verdict of one order",
        description=(
            "Match the data in DIR and show one order's documents, the filings it touched and "
            "each rule's outcome (pass, fail, skipped, off) with the values compared."
        ),
    )
    parser.add_argument("order_no", metavar="ORDER_NO", help="the order number")
    parser.add_argument(
        "--data", metavar="DIR", type=Path, required=True, help="directory of standard files"
    )
    parser.add_argument(
        "--ebp-code", metavar="CODE", help="platform, when the number is on several"
    )
    parser.add_argument("--rules", metavar="FILE", type=Path, help="rule settings (TOML)")
    parser.add_argument("--engine", choices=ENGINES, default="auto", help="default: auto")
    parser.add_argument("--json", action="store_true", help="print the explanation as JSON")
    parser.add_argument(
        "--no-mask", action="store_true", help="show identity values (IDs, names, phones) in clear"
    )


def run(args: argparse.Namespace) -> int:
    """Run `matchcore explain`."""
    from ..api import match_directory, resolve_settings
    from ..explain import explain

    if not args.data.is_dir():
        raise MatchcoreError(f"--data {args.data}: not a directory")
    result = match_directory(
        args.data,
        rules=resolve_settings(args.rules),
        engine=args.engine,
        mask_identity=not args.no_mask,
    )
    explanation = explain(result, args.order_no, ebp_code=args.ebp_code, mask=not args.no_mask)
    if args.json:
        print_json(explanation.to_dict())
    else:
        explanation.print(stdout_console())
    return EXIT_OK
