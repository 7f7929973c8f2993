"""Streaming benchmark: documents/s sustained, verdict latency, state bytes per pending order.

Documents come from `matchcore.generate` (orders, payments, waybills as JSON messages, the
documents of an order arriving close together), fed through `DurableMatcher` the way the CLI
feeds a file, with durability on (fsync'd log in a temporary state directory) and off.
Run: `.venv/bin/python -m benchmarks.bench_stream --orders 20000`.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import random
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from typing import Any

import msgspec
import polars as pl

from matchcore.generate import generate
from matchcore.stream.matcher import References, StreamMatcher
from matchcore.stream.messages import (
    JSON_DECODER,
    MSGPACK_DECODER,
    VerdictEvent,
    canonical_code,
)
from matchcore.stream.state import DurableMatcher

_DOC_TABLES = {"orders": "order", "payments": "payment", "waybills": "waybill"}


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column as message text: times ISO 8601 with offset, numbers as decimal text."""
    columns = []
    for name, dtype in frame.schema.items():
        if name == "gnum":
            columns.append(pl.col(name).cast(pl.Int64))
        elif isinstance(dtype, pl.Datetime):
            fmt = "%Y-%m-%dT%H:%M:%S%z" if dtype.time_zone else "%Y-%m-%dT%H:%M:%S"
            columns.append(pl.col(name).dt.strftime(fmt))
        else:
            columns.append(pl.col(name).cast(pl.String))
    return frame.select(columns)


def make_documents(
    orders: int, seed: int = 1
) -> tuple[list[bytes], list[tuple[str, str] | None], Any]:
    """JSON messages for `orders` generated orders, the order key each message completes (None
    for messages that complete nothing), and the generated data (for its references)."""
    data = generate(orders, seed=seed, inventories=False, anomaly_rate=0.05)
    tables = {name: _as_text(frame) for name, frame in data.tables.items()}
    items: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for item in tables["order_items"].to_dicts():
        key = (item.pop("ebp_code"), item.pop("order_no"))
        items.setdefault(key, []).append(item)
    by_order: dict[tuple[str, str], list[dict[str, Any]]] = {}
    loose: list[dict[str, Any]] = []
    for table, doc_type in _DOC_TABLES.items():
        for row in tables[table].to_dicts():
            message = {k: v for k, v in row.items() if v is not None}
            message["doc_type"] = doc_type
            if doc_type == "order":
                message["items"] = items.get((row["ebp_code"], row["order_no"]), [])
            # As the matcher keys it: a document whose key differs only in text that
            # canonicalises away belongs to the same order (and completes it).
            key = (canonical_code(row.get("ebp_code")), canonical_code(row.get("order_no")))
            (by_order.setdefault(key, []) if None not in key else loose).append(message)
    rng = random.Random(seed)
    groups = list(by_order.items())
    rng.shuffle(groups)
    feed: list[tuple[dict[str, Any], tuple[str, str] | None]] = []
    window: list[tuple[dict[str, Any], tuple[str, str]]] = []
    for key, messages in groups:  # documents of ~300 orders interleave
        window += [(m, key) for m in messages]
        if len(window) >= 1000:
            feed += _interleaved(window, rng)
            window = []
    feed += _interleaved(window, rng) + [(m, None) for m in loose]
    encode = msgspec.json.Encoder().encode
    return [encode(m) for m, _ in feed], [k for _, k in feed], data


def _interleaved(window: list[tuple[dict[str, Any], Any]], rng: random.Random) -> list[Any]:
    """Shuffle a window and mark the last message of each order's set with its key."""
    rng.shuffle(window)
    seen_last: dict[Any, int] = {key: index for index, (_, key) in enumerate(window)}
    return [(m, key if seen_last[key] == i else None) for i, (m, key) in enumerate(window)]


def references_of(data: Any) -> References:
    """The normalised reference tables of generated data."""
    return References.from_frames(
        data.tables["products"],
        data.tables["enterprises"],
        hs_lists=data.tables.get("hs_lists"),
        quota_ledger=data.tables.get("quota_ledger"),
    )


@dataclass
class RunResult:
    """One measured run."""

    label: str
    documents: int
    seconds: float
    cpu_seconds: float  # of this process, all threads: documents per CPU second is per core
    verdicts: int
    latencies: list[float]

    @property
    def per_second(self) -> float:
        return self.documents / self.seconds

    @property
    def per_cpu_second(self) -> float:
        return self.documents / self.cpu_seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def run_stream(
    references: References,
    messages: list[bytes],
    completes: list[tuple[str, str] | None],
    *,
    durable: bool,
    engine: str = "auto",
    poll_every: int = 256,
    rate: float | None = None,
) -> RunResult:
    """Feed every message as the CLI does; latency = last document of a set -> its verdict.

    With `rate` (documents/s) the feed is paced, polling while it waits, to see the latency
    of a stream that is not saturated."""
    offered_at: dict[tuple[str, str], float] = {}
    latencies: list[float] = []
    verdicts = 0

    def deliver(events: list[VerdictEvent]) -> None:
        nonlocal verdicts
        now = time.perf_counter()
        verdicts += len(events)
        for event in events:
            started = offered_at.pop((event.ebp_code, event.order_no), None)
            if started is not None:
                latencies.append(now - started)

    with tempfile.TemporaryDirectory(prefix="bench-stream-") as state_dir:
        matcher = StreamMatcher(references, engine=engine, clock=time.time)
        processor = DurableMatcher(matcher, state_dir if durable else None, deliver=deliver)
        processor.recover()
        # The set-up's and earlier runs' garbage would otherwise be collected inside this
        # one, a stall that would land on this run's latencies.
        gc.collect()
        started, cpu_started = time.perf_counter(), time.process_time()
        if rate is None:
            _flood(processor, messages, completes, offered_at, poll_every)
        else:  # one at a time, polling while it waits
            pairs = zip(messages, completes, strict=True)
            for position, (raw, key) in enumerate(pairs, start=1):
                while time.perf_counter() - started < position / rate:
                    processor.poll()
                    time.sleep(0.0005)
                processor.offer(raw, position)
                if key is not None:
                    offered_at[key] = time.perf_counter()
                processor.poll()
        processor.close()
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
    label = "durable (fsync)" if durable else "in memory"
    if rate is not None:
        label += f" @{rate:,.0f}/s"
    return RunResult(label, len(messages), seconds, cpu_seconds, verdicts, latencies)


def _flood(
    processor: DurableMatcher,
    messages: list[bytes],
    completes: list[tuple[str, str] | None],
    offered_at: dict[tuple[str, str], float],
    poll_every: int,
) -> None:
    """Every message as fast as it is taken, as `run_file` feeds a file: the messages between
    two polls in one call (a message counts as offered when its call starts: it waits from
    then)."""
    for start in range(0, len(messages), poll_every):
        end = min(start + poll_every, len(messages))
        now = time.perf_counter()
        for key in completes[start:end]:
            if key is not None:
                offered_at[key] = now
        processor.offer_many(messages[start:end], range(start + 1, end + 1))
        if end % poll_every == 0:
            processor.poll()


def pending_state_bytes(
    references: References, messages: list[bytes], orders: int
) -> tuple[float, float]:
    """(Python heap bytes, snapshot bytes) per pending order: orders and payments only.

    Documents arrive a millisecond apart (each order slot's arrival time is its own object,
    as in a live stream) and are flushed once at the end, as a stream flushes within
    milliseconds: what is measured is what a pending order keeps while it waits."""
    pending = [raw for raw in messages if b'"doc_type":"waybill"' not in raw][: orders * 2]
    matcher, heap = _state_heap(references, pending)
    count = matcher.pending() or 1  # orders waiting for their waybill
    return heap / count, len(matcher.snapshot()) / count


def complete_state_bytes(references: References, messages: list[bytes]) -> float:
    """Python heap bytes per order once every document of `messages` came and its order was
    evaluated, as `pending_state_bytes` measures (the engine's first-use state left out: the
    first message is fed and flushed before counting). Texts the JSON intake's cache (one per
    process) holds from earlier runs of the same messages are not counted: run alone for the
    whole figure."""
    matcher, heap = _state_heap(references, messages[1:], warm=messages[0])
    return heap / (len(matcher._slots) or 1)


def _state_heap(
    references: References, messages: list[bytes], warm: bytes | None = None
) -> tuple[StreamMatcher, int]:
    """A matcher fed `messages` a millisecond apart, flushed once and drained, and the Python
    heap that took (`warm`: fed, flushed and drained before counting)."""
    arrivals = itertools.count()
    matcher = StreamMatcher(references, engine="reference", clock=lambda: next(arrivals) / 1e3)
    matcher.auto_flush = False
    if warm is not None:
        matcher.feed(warm)
        matcher.flush()
        matcher.drain()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for raw in messages:
        matcher.feed(raw)
    matcher.flush()
    matcher.drain()
    heap = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return matcher, heap


def snapshot_pauses(references: References, messages: list[bytes]) -> tuple[float, float]:
    """Seconds intake stops for one snapshot of the durable state after `messages`:
    written in the foreground, and by a forked child (median of 3 each)."""
    pauses: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as state_dir:
        processor = DurableMatcher(StreamMatcher(references, clock=time.time), state_dir)
        processor.recover()
        for position, raw in enumerate(messages, start=1):
            processor.offer(raw, position)
        processor.commit()
        for background in (False, True) * 3:
            started = time.perf_counter()
            processor.snapshot(background=background)
            pauses[background].append(time.perf_counter() - started)
            processor.wait_for_snapshot()  # not counted: intake could go on meanwhile
        processor.close()
    return sorted(pauses[False])[1], sorted(pauses[True])[1]


def decode_floor(messages: list[bytes], repeat: int = 5) -> tuple[float, float]:
    """CPU seconds per message msgspec alone takes to decode these messages into the message
    types (JSON as given, and the same messages as MessagePack), best of `repeat`: no matcher
    can take documents faster than it decodes them."""
    decoded = [JSON_DECODER.decode(raw) for raw in messages]
    packed = [msgspec.msgpack.encode(message) for message in decoded]
    best = {}
    for name, decode, inputs in (
        ("json", JSON_DECODER.decode, messages),
        ("msgpack", MSGPACK_DECODER.decode, packed),
    ):
        times = []
        for _ in range(repeat):
            started = time.process_time()
            for raw in inputs:
                decode(raw)
            times.append(time.process_time() - started)
        best[name] = min(times) / len(inputs)
    return best["json"], best["msgpack"]


def _print_run(result: RunResult) -> None:
    print(
        f"{result.label:<28}{result.per_second:>12,.0f}{result.per_cpu_second:>12,.0f}"
        f"{result.seconds:>12.2f}{result.verdicts:>12,}"
        f"{1000 * result.percentile(0.5):>12.1f}{1000 * result.percentile(0.99):>12.1f}"
        f"{1000 * max(result.latencies, default=0.0):>12.1f}",
        flush=True,
    )


def main() -> None:
    """Generate, run in memory and durable, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--engine", default="auto", choices=("auto", "kernel", "reference"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--paced", type=float, default=500.0, help="documents/s of the paced latency run"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="flood runs (in memory, durable) made this many times"
    )
    parser.add_argument(
        "--floods-only",
        action="store_true",
        help="only the flood runs: to compare two trees, run this file from each, alternating",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    messages, completes, data = make_documents(args.orders, args.seed)
    references = references_of(data)
    print(f"generated {len(messages):,} messages in {time.perf_counter() - started:.1f} s")
    header = ("docs/s", "docs/CPU s", "seconds", "verdicts", "p50 ms", "p99 ms", "max ms")
    print(f"{'run':<28}" + "".join(f"{h:>12}" for h in header))
    for _ in range(args.repeat):
        for durable in (False, True):
            _print_run(
                run_stream(references, messages, completes, durable=durable, engine=args.engine)
            )
    if args.floods_only:
        return
    paced = run_stream(
        references,
        messages[:3000],
        completes[:3000],
        durable=True,
        engine=args.engine,
        rate=args.paced,
    )
    _print_run(paced)
    json_floor, msgpack_floor = decode_floor(messages)
    print(
        f"msgspec decode alone: {1e6 * json_floor:.2f} us per message as JSON "
        f"({1 / json_floor:,.0f} per CPU s), {1e6 * msgpack_floor:.2f} us as MessagePack "
        f"({1 / msgpack_floor:,.0f} per CPU s)"
    )
    heap, snapshot = pending_state_bytes(references, messages, min(args.orders, 20_000))
    print(f"state per pending order: {heap:,.0f} B Python heap, {snapshot:,.0f} B in a snapshot")
    complete = complete_state_bytes(references, messages)
    print(f"state per order, all its documents in and evaluated: {complete:,.0f} B Python heap")
    foreground, background = snapshot_pauses(references, messages)
    print(
        f"intake stops for a snapshot of this state: {1000 * foreground:,.1f} ms written in "
        f"the foreground, {1000 * background:,.1f} ms written by a forked child"
    )


if __name__ == "__main__":
    main()
