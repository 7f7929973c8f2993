"""The streaming matcher's instructions per document, for callgrind: a count that the noise of a
shared machine does not move, to compare two trees where CPU seconds cannot tell them apart.

The whole stream runs at fixed points (a flush every 384 documents, a poll and so a group
commit every 256, a processing clock that moves 50 µs a document), so both trees do the same
work: the instructions of one pass are the difference between a run with one pass and a run
with none (the set-up, and one pass that warms up, are in both).

    python -m benchmarks.stream_instructions make build/bench/stream.pkl --orders 2000
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python -m benchmarks.stream_instructions run build/bench/stream.pkl --passes 0
    (the same with --passes 1; add --in-memory for no state directory, --chunk 256 to hand
    the documents between those points over in calls of up to 256, as the CLI does)

To measure another tree, run the same file from it (`PYTHONPATH=.` in that tree); for a tree
whose copy of this file is older, run this one by its path (`python .../stream_instructions.py
run ...`): the feeding loop's own cost is then the same in both.
"""

from __future__ import annotations

import os

# OpenBLAS's idle worker threads spin and add instructions that vary from run to run; the
# stream uses no BLAS. Set before NumPy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import functools
import itertools
import pickle
import sys
import tempfile
from pathlib import Path

from matchcore.stream.matcher import StreamMatcher
from matchcore.stream.state import DurableMatcher

#: Flush and poll every this many documents; the clock's step per document (seconds).
FLUSH_EVERY, POLL_EVERY, STEP = 384, 256, 5e-5


def make(path: Path, orders: int, seed: int) -> None:
    """Generate `bench_stream`'s messages and references once (not under callgrind)."""
    from .bench_stream import make_documents, references_of

    messages, _, data = make_documents(orders, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps((messages, references_of(data))))
    print(f"{len(messages):,} messages for {orders:,} orders in {path}")


def run(path: Path, passes: int, durable: bool, chunk: int) -> list[DurableMatcher]:
    """A warm-up pass and `passes` more, each a fresh matcher fed every message (`chunk` > 1:
    up to that many a call, `offer_many`). The clock moves `STEP` at each document's arrival
    (a read of it: `offer` reads it once a document), in C: the same times and the same cost
    whether documents are offered one by one or many at once."""
    messages, references = pickle.loads(path.read_bytes())
    arrivals = itertools.count(1)
    clock = functools.partial(next, map(STEP.__mul__, arrivals))
    calls = _calls(len(messages), chunk) if chunk > 1 else None
    kept = []
    for done in range(0, (passes + 1) * len(messages), len(messages)):
        with tempfile.TemporaryDirectory(prefix="stream-instructions-") as state_dir:
            matcher = StreamMatcher(references, clock=clock, batch_interval=1e9)
            processor = DurableMatcher(
                matcher, state_dir if durable else None, deliver=lambda events: None
            )
            processor.recover()
            if calls is None:
                for position, raw in enumerate(messages, start=1):
                    processor.offer(raw, position)
                    _between(matcher, processor, position, done)
            else:
                for start, end in calls:
                    processor.offer_many(messages[start:end], range(start + 1, end + 1))
                    _between(matcher, processor, end, done)
            processor.close()  # its flush reads the clock once more
        # Kept, and returned for the caller to hold until the process leaves: freeing a
        # pass's state would be counted in the next pass (when `processor` is bound again),
        # or at the return (the last pass's: one pass's more with `--passes 1` than with 0).
        kept.append(processor)
    counters = matcher.counters.as_dict()
    print(f"{len(messages):,} messages a pass; last pass: {counters}")
    return kept


def _between(matcher: StreamMatcher, processor: DurableMatcher, position: int, done: int) -> None:
    """The fixed flush and poll points after document `position` of a pass (`done`
    documents came before the pass)."""
    if position % FLUSH_EVERY == 0:
        matcher.flush((done + position) * STEP)
    if position % POLL_EVERY == 0:
        processor.poll((done + position) * STEP)


def _calls(count: int, chunk: int) -> list[tuple[int, int]]:
    """The [start, end) ranges of `count` documents offered in calls of up to `chunk`, none
    across a flush or poll point."""
    calls = []
    start = 0
    while start < count:
        end = min(start + chunk, count)
        for every in (FLUSH_EVERY, POLL_EVERY):
            end = min(end, (start // every + 1) * every)
        calls.append((start, end))
        start = end
    return calls


def main() -> None:
    """`make` the data, or `run` passes over it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    made = commands.add_parser("make", help="generate the messages and references")
    made.add_argument("path", type=Path)
    made.add_argument("--orders", type=int, default=2000)
    made.add_argument("--seed", type=int, default=1)
    ran = commands.add_parser("run", help="feed them, `--passes` times after a warm-up")
    ran.add_argument("path", type=Path)
    ran.add_argument("--passes", type=int, default=1)
    ran.add_argument("--in-memory", action="store_true", help="no state directory")
    ran.add_argument(
        "--chunk", type=int, default=1, help="documents a call (offer_many when over 1)"
    )
    args = parser.parse_args()
    if args.command == "make":
        make(args.path, args.orders, args.seed)
    else:
        kept = run(args.path, args.passes, durable=not args.in_memory, chunk=args.chunk)
        # No interpreter teardown: freeing the passes' state (`kept`) at exit would be
        # counted as streaming work.
        sys.stdout.flush()
        os._exit(0 if kept else 1)


if __name__ == "__main__":
    main()
