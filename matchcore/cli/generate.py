"""`matchcore generate`: synthetic orders, payments, waybills and filings with known anomalies.

A thin wrapper over `matchcore.generate.generate`; `--format ceb` writes the documents as customs
XML (via `matchcore.io.ceb.write_ceb`) next to the reference tables.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..api import require
from .common import EXIT_OK, add_output_flags, print_json, show_progress

TABLE_FORMATS = ("parquet", "csv", "ndjson")
FORMATS = (*TABLE_FORMATS, "ceb")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a fraction between 0 and 1")
    return value


def add_parser(subparsers: Any) -> None:
    """Register `generate` and its options."""
    parser = subparsers.add_parser(
        "generate",
        help="generate a synthetic data set with known anomalies",
        description=(
            "Write synthetic orders, order items, payments, waybills, filings and the ground "
            "truth (which rule each anomalous order should fail) to a directory."
        ),
    )
    parser.add_argument("--orders", type=_positive_int, required=True, metavar="N")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="default: 0")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR")
    parser.add_argument("--format", choices=FORMATS, default="parquet", help="default: parquet")
    parser.add_argument(
        "--anomaly-rate",
        type=_rate,
        default=None,
        metavar="R",
        help="share of orders given an anomaly (default: the generator's)",
    )
    parser.add_argument("--year", type=int, default=None, metavar="YYYY", help="year of the orders")
    parser.add_argument(
        "--no-inventories", action="store_true", help="no inventories table (inventory rules off)"
    )
    parser.add_argument(
        "--no-hs-lists", action="store_true", help="no HS lists table (positive list rule off)"
    )
    add_output_flags(parser)


def generator_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for the generator: only the knobs given on the command line."""
    options: dict[str, Any] = {"seed": args.seed}
    if args.anomaly_rate is not None:
        options["anomaly_rate"] = args.anomaly_rate
    if args.year is not None:
        options["year"] = args.year
    if args.no_inventories:
        options["inventories"] = False
    if args.no_hs_lists:
        options["hs_lists"] = False
    return options


def generate_files(orders: int, out: Path, fmt: str, options: dict[str, Any]) -> Any:
    """Run the generator into `out` in `fmt`; "ceb" writes the documents as customs XML, the
    reference tables and the ground truth as Parquet."""
    generate = require("matchcore.generate", "generate", "the data generator")
    if fmt != "ceb":
        return generate(orders, out=out, format=fmt, **options)
    write_ceb = require("matchcore.io.ceb", "write_ceb", "customs XML output (--format ceb)")
    generated = generate(orders, **options)
    write_ceb(generated.tables, out)
    generated.truth.write_parquet(out / "truth.parquet")
    generated.truth_orphans.write_parquet(out / "truth_orphans.parquet")
    return generated


def run(args: argparse.Namespace) -> int:
    """Run `matchcore generate`."""
    from ..progress import PhaseTracker
    from .common import stdout_console

    with PhaseTracker(display=show_progress(args)) as tracker, tracker.phase("generate"):
        generate_files(args.orders, args.out, args.format, generator_options(args))
    seconds = tracker.timings.get("generate", 0.0)
    if args.json:
        print_json(
            {"orders": args.orders, "seed": args.seed, "out": str(args.out),
             "format": args.format, "seconds": seconds}
        )  # fmt: skip
    elif not args.quiet:
        stdout_console().print(
            f"generated {args.orders:,} orders (seed {args.seed}) in {args.out} "
            f"as {args.format} in {seconds:.2f} s"
        )
    return EXIT_OK
