"""CEB XML throughput: write_ceb, read_ceb and iter_messages on generated data, one core.

A "message" here is one CEB document (a head with its lists). Times are process CPU seconds
(the best of `--repeat` runs), so other load on the machine distorts them less than wall time;
wall seconds (also the best of the runs) are shown beside them. The last lines (`RESULT ...`)
state messages/s of read_ceb and iter_messages with the data size and the command, for recording.
read_ceb reads messages with the compiled scan (io/ceb/fast.py); the rows "read_ceb, lxml path
only", "compiled scan only" and "lxml parse only" show the reference path and the two floors.

    python -m benchmarks.bench_ceb --orders 20000
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lxml import etree

from matchcore.generate import generate
from matchcore.io.ceb import fast, iter_messages, read_ceb, write_ceb
from matchcore.io.ceb.documents import MessageInfo

Timing = tuple[float, float]  # (CPU seconds, wall seconds)


def best_seconds(run: Callable[[], object], repeat: int) -> Timing:
    """The smallest process CPU time and the smallest wall time of `repeat` runs."""
    best_cpu = best_wall = float("inf")
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return best_cpu, best_wall


def streaming(payloads: list[bytes]) -> Callable[[], int]:
    """A run of iter_messages over every message (bytes already in memory)."""
    return lambda: sum(1 for data in payloads for _ in iter_messages(data))


def parsing_only(payloads: list[bytes]) -> Callable[[], int]:
    """lxml parsing alone (no values taken): the floor under every reader."""
    parser = etree.XMLParser(collect_ids=False, resolve_entities=False, remove_comments=True)
    return lambda: sum(len(etree.fromstring(data, parser)) for data in payloads)


def scanning_only(payloads: list[bytes]) -> Callable[[], int]:
    """The compiled scan alone (documents built, no tables): the fast path's floor."""
    return lambda: sum(len(fast.scan_message(data, MessageInfo()) or ()) for data in payloads)


def read_lxml_only(out: Path) -> Callable[[], object]:
    """read_ceb with every message parsed by lxml (the reference path)."""

    def run() -> object:
        with fast.lxml_only():
            return read_ceb(out)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--per-message", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    tables = generate(args.orders, seed=args.seed).tables
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ceb"
        write_t = best_seconds(
            lambda: write_ceb(tables, out, documents_per_message=args.per_message), args.repeat
        )
        files = sorted(out.rglob("*.xml"))
        megabytes = sum(p.stat().st_size for p in files) / 1e6
        data = read_ceb(out)
        documents = sum(v for k, v in data.notes.items() if k.endswith(".documents"))
        read_t = best_seconds(lambda: read_ceb(out), args.repeat)
        read_lxml_t = best_seconds(read_lxml_only(out), args.repeat)
        payloads = [path.read_bytes() for path in files]
        stream_t = best_seconds(streaming(payloads), args.repeat)
        scan_t = best_seconds(scanning_only(payloads), args.repeat)
        parse_t = best_seconds(parsing_only(payloads), args.repeat)
        order_payloads = [p.read_bytes() for p in sorted((out / "orders").glob("*.xml"))]
        order_docs = data.notes["orders.documents"]
        orders_t = best_seconds(streaming(order_payloads), args.repeat)

    size = f"{documents} messages in {len(files)} files, {megabytes:.1f} MB"
    print(f"{args.orders} orders -> {size}")
    print(f"{'step':<36}{'CPU s':>8}{'msg/s CPU':>12}{'wall s':>8}{'msg/s wall':>12}")
    rows = [
        ("write_ceb (all tables)", write_t, documents),
        ("read_ceb (all documents)", read_t, documents),
        ("read_ceb, lxml path only", read_lxml_t, documents),
        ("iter_messages (all documents)", stream_t, documents),
        ("compiled scan only (all documents)", scan_t, documents),
        ("lxml parse only (all documents)", parse_t, documents),
        ("iter_messages (CEB311 orders only)", orders_t, order_docs),
    ]
    for name, (cpu, wall), count in rows:
        print(f"{name:<36}{cpu:>8.3f}{count / cpu:>12,.0f}{wall:>8.3f}{count / wall:>12,.0f}")
    command = shlex.join(["python", "-m", "benchmarks.bench_ceb", *sys.argv[1:]])
    for name, (cpu, wall) in (("read_ceb", read_t), ("iter_messages", stream_t)):
        print(
            f"RESULT {name}: {documents / cpu:,.0f} messages/s CPU, {documents / wall:,.0f} "
            f"messages/s wall (best of {args.repeat}; {size}; one core; command: {command})"
        )


if __name__ == "__main__":
    main()
