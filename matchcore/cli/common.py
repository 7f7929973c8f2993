"""What every command shares: exit codes, error handling, consoles, JSON output, summary table.

A command's `run(args)` returns an exit code; `guarded` turns errors into codes and one-line
messages. Progress and tables go to stderr / stdout through rich; `--json` output is plain.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..exceptions import MatchcoreError, StateLogError

if TYPE_CHECKING:
    from rich.console import Console

    from ..result import MatchResult

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2  # bad usage or bad input: a MatchcoreError or an OS error on a named file
EXIT_FAIL_ON = 3  # `--fail-on` threshold reached
EXIT_STATE_LOG = 4  # `stream`: a write or fsync of the state log failed; a restart recovers
EXIT_INTERRUPTED = 130

PROG = "matchcore"


def stderr_console() -> Console:
    """A rich console on stderr (progress, messages)."""
    from rich.console import Console

    return Console(stderr=True)


def stdout_console() -> Console:
    """A rich console on stdout (human-readable results)."""
    from rich.console import Console

    return Console()


def error(message: str) -> None:
    """Print `matchcore: error: <message>` as one line on stderr."""
    first_line = " ".join(str(message).split())
    sys.stderr.write(f"{PROG}: error: {first_line}\n")
    sys.stderr.flush()


def print_json(data: Any) -> None:
    """Write `data` as JSON to stdout, and nothing else."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def show_progress(args: argparse.Namespace) -> bool:
    """Show a progress display when stderr is a terminal and the user did not ask for quiet."""
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def add_output_flags(parser: argparse.ArgumentParser) -> None:
    """`--json` and `--quiet`, with the same meaning in every command."""
    parser.add_argument(
        "--json", action="store_true", help="print the summary as JSON on stdout, nothing else"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress display and no summary table"
    )


def guarded(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Call `run(args)`, mapping errors to exit codes with a one-line message on stderr.

    MatchcoreError and OS errors -> 2 (a failed state log: 4), Ctrl-C -> 130, anything else
    -> 1 with a hint to rerun with --debug, which prints the traceback instead.
    """
    debug = bool(getattr(args, "debug", False))
    try:
        return int(run(args) or EXIT_OK)
    except MatchcoreError as exc:
        if debug:
            traceback.print_exc()
        error(str(exc))
        return EXIT_STATE_LOG if isinstance(exc, StateLogError) else EXIT_USAGE
    except BrokenPipeError:  # `matchcore ... | head`: the reader left, nothing more to say
        _silence_stdout()
        return EXIT_OK
    except OSError as exc:
        if debug:
            traceback.print_exc()
        where = f"{exc.filename}: " if exc.filename else ""
        error(f"{where}{exc.strerror or exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        error("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if debug:
            traceback.print_exc()
            return EXIT_INTERNAL
        # Only the type and first line: third-party messages can be long (or quote data).
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        error(f"internal error: {type(exc).__name__}{': ' + first if first else ''}")
        sys.stderr.write(f"{PROG}: rerun with --debug for the traceback\n")
        return EXIT_INTERNAL


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _format_seconds(seconds: float) -> str:
    return f"{seconds:.3f} s" if seconds < 10 else f"{seconds:.1f} s"


def print_summary(result: MatchResult, console: Console, *, top_rules: int = 5) -> None:
    """A short table of a run: verdicts, top failed rules, rejects, orphans, timings, speed."""
    from rich.table import Table

    orders = result.verdicts.height
    table = Table(title=f"matchcore: {orders:,} orders ({result.engine} engine)", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    table.add_column("detail")
    styles = {"pass": "green", "review": "yellow", "reject": "red"}
    for verdict, count in result.verdict_counts().items():
        share = f"{100 * count / orders:.1f} %" if orders else ""
        table.add_row(f"[{styles.get(verdict, '')}]{verdict}", f"{count:,}", share)
    failed = sorted(
        ((n, rule) for rule, n in result.rule_counts().items() if n), key=lambda x: (-x[0], x[1])
    )
    for n, rule in failed[:top_rules]:
        table.add_row("failed rule", f"{n:,}", rule)
    table.add_row("rejected input rows", f"{result.rejects.height:,}", _by_key(result, "rejects"))
    table.add_row("orphans", f"{result.orphans.height:,}", _by_key(result, "orphans"))
    table.add_row("exceptions", f"{result.exceptions.height:,}", "")
    for phase, seconds in result.timings.items():
        table.add_row("time", _format_seconds(seconds), phase)
    speed = result.orders_per_second()
    if speed is not None:
        table.add_row("throughput", f"{speed:,.0f}", "orders/s")
    console.print(table)


def _by_key(result: MatchResult, section: str) -> str:
    """`key n, key n` for one summary section (empty when it has no rows)."""
    summary = result.summary.filter(section=section)
    return ", ".join(f"{k} {v:,}" for k, v in zip(summary["key"], summary["value"], strict=True))
