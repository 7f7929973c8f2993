"""Micro-batch benchmark: CPU time of one `StreamMatcher` flush of N complete orders.

One matcher per N takes the documents of N generated orders at a time (`bench_stream`'s
messages, the orders in the order the feed completes them) and flushes; each flush but the
first is timed. Then the engine call of the last flush is timed alone, repeated: building the
batch's tables (`_batch_for`) and the evaluator. Under a flood a flush holds 100-500 orders,
so the fixed cost of these calls is much of the cost per document. Timings on a shared machine
are noisy: compare trees by alternating runs (`matchcore` is imported from the current
directory). Run: `PYTHONPATH=. .venv/bin/python -m benchmarks.bench_flush --sizes 20,100,500`.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

import msgspec

from benchmarks.bench_stream import make_documents, references_of
from matchcore.stream.matcher import References, StreamMatcher


def cpu_seconds(call: Callable[[], Any], repeat: int) -> list[float]:
    """CPU seconds of each of `repeat` calls (collection paused, as in a flush)."""
    times = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeat):
            started = time.process_time()
            call()
            times.append(time.process_time() - started)
    finally:
        gc.enable()
    return times


def flush_seconds(
    references: References, groups: list[list[bytes]]
) -> tuple[list[float], StreamMatcher]:
    """CPU seconds of each flush of one matcher fed `groups` one after the other, a flush
    after each (the first not counted: it reads the references once); and the matcher."""
    matcher = StreamMatcher(references, clock=lambda: 0.0)
    matcher.auto_flush = False
    times = []
    for group in groups:
        for raw in group:
            matcher.feed(raw, now=0.0)
        times += cpu_seconds(lambda: matcher.flush(0.0), 1)
    return times[1:], matcher


def engine_call_seconds(
    matcher: StreamMatcher, group: list[bytes], repeat: int
) -> tuple[list[float], list[float]]:
    """CPU seconds of building the batch of the orders of `group` (fed and flushed), and of
    evaluating it, each `repeat` times."""
    keys = sorted({order_key(raw) for raw in group})
    linked = {key: matcher._linked(key) for key in keys}
    linked = {key: documents for key, documents in linked.items() if documents.order is not None}
    build = cpu_seconds(lambda: matcher._batch_for(linked, {}), repeat)
    batch = matcher._batch_for(linked, {})
    evaluate = cpu_seconds(lambda: matcher._evaluate(batch.tables, matcher.settings), repeat)
    return build, evaluate


def summary(seconds: list[float]) -> str:
    """Median and range in microseconds."""
    low, mid, high = min(seconds), statistics.median(seconds), max(seconds)
    return f"{1e6 * mid:7.0f} [{1e6 * low:.0f}-{1e6 * high:.0f}]"


class _Keyed(msgspec.Struct):
    """The order key a message names (an order's own, a payment's or waybill's order)."""

    ebp_code: str | None = None
    order_no: str | None = None


_DECODE_KEY = msgspec.json.Decoder(_Keyed).decode


def order_key(raw: bytes) -> tuple[str | None, str | None]:
    """The order key a JSON message names."""
    message = _DECODE_KEY(raw)
    return message.ebp_code, message.order_no


def order_groups(
    messages: list[bytes], completes: list[tuple[str, str] | None], size: int
) -> list[list[bytes]]:
    """The messages of complete orders in groups of `size` orders, in the order the feed
    completes them (messages naming no order left out)."""
    by_order: dict[tuple[str | None, str | None], list[bytes]] = {}
    for raw in messages:
        by_order.setdefault(order_key(raw), []).append(raw)
    completed = [key for key in completes if key is not None]
    return [
        [raw for key in completed[start : start + size] for raw in by_order[key]]
        for start in range(0, len(completed) - size + 1, size)
    ]


def main() -> None:
    """Generate once, time each size, print a table of medians [min-max] in µs CPU."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,100,500")
    parser.add_argument("--flushes", type=int, default=10, help="flushes timed per size")
    parser.add_argument("--repeat", type=int, default=100, help="engine calls timed per size")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    messages, completes, data = make_documents(max(sizes) * (args.flushes + 1))
    references = references_of(data)
    print(f"{'orders':>6} {'docs':>6}  µs CPU per call, median [min-max]")
    for size in sizes:
        groups = order_groups(messages, completes, size)[: args.flushes + 1]
        flush, matcher = flush_seconds(references, groups)
        build, evaluate = engine_call_seconds(matcher, groups[-1], args.repeat)
        docs = statistics.median(len(group) for group in groups)
        print(
            f"{size:>6} {docs:>6.0f}  flush {summary(flush)}   batch {summary(build)}"
            f"   evaluate {summary(evaluate)}"
        )


if __name__ == "__main__":
    main()
