"""`matchcore stream`: continuous clearance of a message stream (SPEC §5).

Messages come from a file (optionally followed), stdin, customs XML, or a loopback TCP port;
verdict events go to stdout, a file, or TCP clients. With `--state-dir` every accepted message
is logged before it counts, and a restart resumes exactly where the previous run stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..exceptions import InputError, MatchcoreError
from ..schema import TABLES
from .common import EXIT_OK

ENGINES = ("auto", "kernel", "reference")
INPUT_FORMATS = ("ndjson", "msgpack", "ceb")
_REFERENCE_TABLES = ("products", "enterprises", "hs_lists", "quota_ledger")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def duration(text: str) -> float:
    """Seconds from "90", "250ms", "30s", "15m", "24h" or "2d" (argparse type)."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (like 30s, 15m, 24h)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def add_parser(subparsers: Any) -> None:
    """Register `stream` and its options."""
    parser = subparsers.add_parser(
        "stream",
        help="match documents continuously as they arrive",
        description=(
            "Read order, payment, waybill and inventory messages (NDJSON or length-prefixed "
            "MessagePack), match each order once its documents are complete, and write "
            "versioned verdict events."
        ),
    )
    inputs = parser.add_argument_group("inputs")
    inputs.add_argument(
        "--references",
        metavar="DIR",
        type=Path,
        help="directory with products, enterprises (and hs_lists, quota_ledger) files",
    )
    inputs.add_argument("--input", metavar="FILE", help="message file, or - for stdin")
    inputs.add_argument(
        "--input-format",
        choices=INPUT_FORMATS,
        default="ndjson",
        help="ndjson (default), msgpack (4-byte big-endian length prefix), ceb (customs XML "
        "file or directory)",
    )
    inputs.add_argument("--follow", action="store_true", help="keep reading as the file grows")
    inputs.add_argument(
        "--listen", metavar="PORT", type=int, help="accept messages on 127.0.0.1:PORT (0: any)"
    )
    rules = parser.add_argument_group("rules")
    rules.add_argument("--rules", metavar="FILE", type=Path, help="rule settings (TOML)")
    rules.add_argument("--engine", choices=ENGINES, default="auto")
    rules.add_argument(
        "--inventory", action="store_true", help="inventory rules on: wait for the inventory too"
    )
    rules.add_argument(
        "--completion-window",
        type=duration,
        default=24 * 3600.0,
        metavar="DURATION",
        help="after this much processing time an incomplete order gets `incomplete` (24h)",
    )
    outputs = parser.add_argument_group("outputs")
    outputs.add_argument("--output", metavar="FILE", default="-", help="verdicts (default: -)")
    outputs.add_argument("--output-format", choices=("ndjson", "msgpack"), default="ndjson")
    outputs.add_argument(
        "--output-listen", metavar="PORT", type=int, help="serve verdicts on 127.0.0.1:PORT"
    )
    outputs.add_argument("--dead-letters", metavar="FILE", type=Path, help="bad messages")
    state = parser.add_argument_group("durability and batching")
    state.add_argument(
        "--state-dir",
        metavar="DIR",
        type=Path,
        help="log + snapshots here (exit code 4 when a write to the log fails: a restart "
        "recovers what was committed)",
    )
    state.add_argument(
        "--no-fsync", action="store_true", help="log without fsync (faster, not crash-safe)"
    )
    state.add_argument(
        "--commit-interval",
        type=duration,
        default=0.005,
        metavar="DURATION",
        help="group commit (fsync) at least this often (5ms)",
    )
    state.add_argument(
        "--commit-records",
        type=int,
        default=1000,
        metavar="N",
        help="... or after this many log records (1000)",
    )
    state.add_argument(
        "--snapshot-interval",
        type=duration,
        default=30.0,
        metavar="DURATION",
        help="write a snapshot and start a new log segment this often (30s)",
    )
    state.add_argument(
        "--reevaluate",
        action="store_true",
        help="the rules changed since the state was built: evaluate every order again "
        "(changed verdicts get new versions); without it such a restart is refused",
    )
    state.add_argument(
        "--batch-size",
        type=int,
        default=4096,
        metavar="N",
        help="evaluate when this many orders wait (4096)",
    )
    state.add_argument(
        "--batch-interval",
        type=duration,
        default=0.005,
        metavar="DURATION",
        help="... or when the oldest waited this long (5ms; longer while the engine is busy)",
    )
    observe = parser.add_argument_group("observability")
    observe.add_argument(
        "--stats",
        action="store_true",
        help="print the counters as JSON at the end (with only --state-dir: of that state)",
    )
    observe.add_argument(
        "--stats-interval", type=duration, metavar="DURATION", help="a counters line on stderr"
    )


def _reference_sources(directory: Path | None) -> dict[str, Path]:
    """The reference tables' files in `directory`, by standard name."""
    if directory is None:
        raise InputError("--references DIR is required (products and enterprises files)")
    from ..io import TABLE_EXTENSIONS

    if not directory.is_dir():
        raise InputError(f"references directory {directory} does not exist")
    found: dict[str, Path] = {}
    for name in _REFERENCE_TABLES:
        files = [directory / f"{name}.{ext}" for ext in TABLE_EXTENSIONS]
        files = [f for f in files if f.is_file()]
        if len(files) > 1:
            raise InputError(f"{directory}: table {name} has more than one file")
        if files:
            found[name] = files[0]
        elif not TABLES[name].optional:
            raise InputError(f"{directory}: reference table {name} is missing")
    return found


class _Discard:
    """The sink of a run that only inspects a state directory."""

    cut = 0

    def write(self, events: object) -> None:
        """Nothing is delivered."""

    def sync(self) -> None:
        """Nothing to sync."""

    def close(self) -> None:
        """Nothing to close."""


def _inspecting(args: argparse.Namespace) -> bool:
    """True for `--stats --state-dir DIR` without an input: report that state, change nothing."""
    return args.input is None and args.listen is None and bool(args.stats and args.state_dir)


def _build(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """The processor, verdict sink and dead-letter file for these arguments."""
    from ..api import resolve_settings
    from ..stream.io import DeadLetters, VerdictSink
    from ..stream.matcher import References, StreamMatcher
    from ..stream.state import DurableMatcher

    sources = _reference_sources(args.references)
    references = References.from_frames(
        sources["products"],
        sources["enterprises"],
        hs_lists=sources.get("hs_lists"),
        quota_ledger=sources.get("quota_ledger"),
    )
    if references.rejects is not None and references.rejects.height:
        sys.stderr.write(
            f"matchcore stream: warning: {references.rejects.height} reference rows rejected "
            "(run `matchcore match` on the references to see them)\n"
        )
    matcher = StreamMatcher(
        references,
        resolve_settings(args.rules),
        inventory_rules=args.inventory,
        completion_window=args.completion_window,
        batch_size=args.batch_size,
        batch_interval=args.batch_interval,
        engine=args.engine,
    )
    inspecting = _inspecting(args)
    sink = _Discard() if inspecting else VerdictSink.to_path(args.output, args.output_format)
    dead = DeadLetters(None if inspecting else args.dead_letters)

    def before_snapshot() -> None:
        sink.sync()
        dead.sync()

    processor = DurableMatcher(
        matcher,
        args.state_dir,
        sync=not args.no_fsync,
        commit_interval=args.commit_interval,
        commit_records=args.commit_records,
        snapshot_interval=args.snapshot_interval,
        deliver=sink.write,
        before_snapshot=before_snapshot,
        on_dead_letter=dead.write,
        reevaluate=args.reevaluate,
    )
    return processor, sink, dead


class _Reporter:
    """The periodic counters line on stderr."""

    def __init__(self, processor: Any, interval: float | None) -> None:
        self.processor = processor
        self.interval = interval
        self.started = time.monotonic()
        self.last = self.started

    def __call__(self) -> None:
        if self.interval is None:
            return
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self.print_line()

    def print_line(self) -> None:
        from ..stream.stats import stats_line

        line = stats_line(self.processor.stats(), elapsed=time.monotonic() - self.started)
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def _close_outputs(*outputs: Any, quiet: bool) -> None:
    """Close every output, also when one fails; the first failure is raised unless `quiet`
    (an error already ends the run: it is the one to report, as a full disk that stopped the
    state log fails the outputs' syncs too)."""
    failure: OSError | None = None
    for output in outputs:
        try:
            output.close()
        except OSError as exc:
            failure = failure or exc
    if failure is not None and not quiet:
        raise failure


def run(args: argparse.Namespace) -> int:
    """Run the stream until its input ends (or SIGTERM / Ctrl-C with --follow or --listen)."""
    if args.input is None and args.listen is None and not _inspecting(args):
        raise InputError("give --input FILE (or -), or --listen PORT")
    if args.state_dir is not None and not _inspecting(args):
        _bind_state_to_input(args)
    processor, sink, dead = _build(args)
    report = processor.recover()
    for note in report.notes:
        sys.stderr.write(f"matchcore stream: {note}\n")
    for path, cut in ((args.output, sink.cut), (args.dead_letters, dead.cut)):
        if cut:
            sys.stderr.write(
                f"matchcore stream: cut a torn frame of {cut} bytes from the end of {path} "
                "(written when a run was killed; it is written again)\n"
            )
    if _inspecting(args):
        print(json.dumps(processor.stats(), indent=2))
        return EXIT_OK
    stopping = {"flag": False}

    def request_stop(signum: int, frame: object) -> None:
        stopping["flag"] = True

    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, request_stop)}
    if args.follow or args.listen is not None:  # Ctrl-C ends an endless run cleanly
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, request_stop)
    reporter = _Reporter(processor, args.stats_interval)
    stopped_by_error = True
    try:
        if args.listen is not None:
            _serve_tcp(args, processor, stopping)  # closes the processor when it stops
        else:
            _consume_input(args, processor, report.position, stopping, reporter)
            processor.close()
        stopped_by_error = False
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _close_outputs(sink, dead, quiet=stopped_by_error)
    if args.stats_interval is not None:
        reporter.print_line()
    if args.stats:
        sys.stderr.write(json.dumps(processor.stats()) + "\n")
    return EXIT_OK


def _bind_state_to_input(args: argparse.Namespace) -> None:
    """Remember which input a state directory follows; refuse another one (its committed
    offset would be meaningless there)."""
    where = args.state_dir / "input.json"
    source = "-" if args.input in (None, "-") else str(Path(args.input).resolve())
    current = {"input": source if args.listen is None else "tcp", "format": args.input_format}
    if where.is_file():
        try:
            recorded = json.loads(where.read_text())
        except (OSError, ValueError):
            raise InputError(f"{where}: unreadable; remove it to bind the state anew") from None
        if recorded != current:
            raise InputError(
                f"state directory {args.state_dir} belongs to input {recorded.get('input')} "
                f"({recorded.get('format')}); use another --state-dir"
            )
        return
    args.state_dir.mkdir(parents=True, exist_ok=True)
    temp = where.with_suffix(".tmp")
    temp.write_text(json.dumps(current) + "\n")
    temp.replace(where)


def _consume_input(
    args: argparse.Namespace,
    processor: Any,
    position: int | None,
    stopping: dict[str, bool],
    reporter: _Reporter,
) -> None:
    from ..stream.io import open_input, run_file, run_messages

    resume = position if (position is not None and args.input != "-") else 0
    if args.input_format == "ceb":
        run_messages(processor, _ceb_messages(args.input), start=resume)
        return
    handle = open_input(args.input, resume)
    try:
        run_file(
            processor,
            handle,
            args.input_format,
            start=resume,
            follow=args.follow,
            stop=lambda: stopping["flag"],
            on_progress=reporter,
        )
    finally:
        if handle is not sys.stdin.buffer:
            handle.close()


def _ceb_messages(path: str) -> Iterator[dict[str, Any]]:
    """Messages from customs XML (a file, or every *.xml under a directory in name order)
    through `matchcore.io.ceb.iter_messages`."""
    try:
        from ..io.ceb import iter_messages
    except ImportError:
        raise MatchcoreError("customs XML input is not available in this build") from None
    if path == "-":
        yield from iter_messages(sys.stdin.buffer.read())
        return
    root = Path(path)
    files = sorted(root.rglob("*.xml")) if root.is_dir() else [root]
    if not files or not files[0].is_file():
        raise InputError(f"{root}: no customs XML messages found")
    for file in files:
        yield from iter_messages(file.read_bytes())


def _serve_tcp(args: argparse.Namespace, processor: Any, stopping: dict[str, bool]) -> None:
    from ..stream.io import TcpService

    if args.input_format == "ceb":
        raise InputError("--listen takes NDJSON or MessagePack frames, not customs XML")
    # The file/stdout sink keeps receiving verdicts unless they go to TCP clients instead.
    keep_sink = args.output != "-" or args.output_listen is None
    service = TcpService(
        processor,
        args.input_format,
        port=args.listen,
        output_port=args.output_listen,
        output_framing=args.output_format,
        extra_sink=processor.deliver if keep_sink else None,
    )

    def ready(port: int, output_port: int | None) -> None:
        where = f" verdicts on 127.0.0.1:{output_port}" if output_port is not None else ""
        sys.stderr.write(f"matchcore stream: listening on 127.0.0.1:{port}{where}\n")
        sys.stderr.flush()

    async def main() -> None:
        async def watch() -> None:
            while not stopping["flag"]:
                await asyncio.sleep(0.05)
            service.stop()

        watcher = asyncio.ensure_future(watch())
        await service.serve(ready)
        watcher.cancel()

    asyncio.run(main())
