"""CEB XML throughput: write_ceb, read_ceb and iter_messages on generated data, one core.

A "message" here is one CEB document (a head with its lists). Times are process CPU seconds
(the best of `--repeat` runs), so other load on the machine distorts them less than wall time.

    python -m benchmarks.bench_ceb --orders 20000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lxml import etree

from matchcore.generate import generate
from matchcore.io.ceb import iter_messages, read_ceb, write_ceb


def best_cpu_seconds(run: Callable[[], object], repeat: int) -> float:
    """The smallest process CPU time of `repeat` runs."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best


def streaming(payloads: list[bytes]) -> Callable[[], int]:
    """A run of iter_messages over every message (bytes already in memory)."""
    return lambda: sum(1 for data in payloads for _ in iter_messages(data))


def parsing_only(payloads: list[bytes]) -> Callable[[], int]:
    """lxml parsing alone (no values taken): the floor under every reader."""
    parser = etree.XMLParser(collect_ids=False, resolve_entities=False, remove_comments=True)
    return lambda: sum(len(etree.fromstring(data, parser)) for data in payloads)


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
        write_s = best_cpu_seconds(
            lambda: write_ceb(tables, out, documents_per_message=args.per_message), args.repeat
        )
        files = sorted(out.rglob("*.xml"))
        megabytes = sum(p.stat().st_size for p in files) / 1e6
        data = read_ceb(out)
        documents = sum(v for k, v in data.notes.items() if k.endswith(".documents"))
        read_s = best_cpu_seconds(lambda: read_ceb(out), args.repeat)
        payloads = [path.read_bytes() for path in files]
        stream_s = best_cpu_seconds(streaming(payloads), args.repeat)
        parse_s = best_cpu_seconds(parsing_only(payloads), args.repeat)
        order_payloads = [p.read_bytes() for p in sorted((out / "orders").glob("*.xml"))]
        order_docs = data.notes["orders.documents"]
        orders_s = best_cpu_seconds(streaming(order_payloads), args.repeat)

    print(
        f"{args.orders} orders -> {documents} documents in {len(files)} files, {megabytes:.1f} MB"
    )
    print(f"{'step':<34}{'CPU s':>9}{'documents/s':>14}")
    rows = [
        ("write_ceb (all tables)", write_s, documents),
        ("read_ceb (all documents)", read_s, documents),
        ("iter_messages (all documents)", stream_s, documents),
        ("lxml parse only (all documents)", parse_s, documents),
        ("iter_messages (CEB311 orders only)", orders_s, order_docs),
    ]
    for name, seconds, count in rows:
        print(f"{name:<34}{seconds:>9.3f}{count / seconds:>14,.0f}")


if __name__ == "__main__":
    main()
