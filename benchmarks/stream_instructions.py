"""The streaming matcher's instructions per document, for callgrind: a count that the noise of a
shared machine does not move, to compare two trees where CPU seconds cannot tell them apart.

The whole stream runs at fixed points (a flush every 384 documents, a poll and so a group
commit every 256, a processing clock that moves 50 µs a document), so both trees do the same
work: the instructions of one pass are the difference between a run with one pass and a run
with none (the set-up, and one pass that warms up, are in both).

    python -m benchmarks.stream_instructions make build/bench/stream.pkl --orders 2000
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python -m benchmarks.stream_instructions run build/bench/stream.pkl --passes 0
    (the same with --passes 1; add --in-memory for no state directory)

To measure another tree, run the same file from it (`PYTHONPATH=.` in that tree).
"""

from __future__ import annotations

import argparse
import pickle
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


def run(path: Path, passes: int, durable: bool) -> None:
    """A warm-up pass and `passes` more, each a fresh matcher fed every message."""
    messages, references = pickle.loads(path.read_bytes())
    clock = [0.0]
    for _ in range(passes + 1):
        with tempfile.TemporaryDirectory(prefix="stream-instructions-") as state_dir:
            matcher = StreamMatcher(references, clock=lambda: clock[0], batch_interval=1e9)
            processor = DurableMatcher(
                matcher, state_dir if durable else None, deliver=lambda events: None
            )
            processor.recover()
            for position, raw in enumerate(messages, start=1):
                clock[0] += STEP
                processor.offer(raw, position)
                if position % FLUSH_EVERY == 0:
                    matcher.flush()
                if position % POLL_EVERY == 0:
                    processor.poll()
            processor.close()
    counters = matcher.counters.as_dict()
    print(f"{len(messages):,} messages a pass; last pass: {counters}")


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
    args = parser.parse_args()
    if args.command == "make":
        make(args.path, args.orders, args.seed)
    else:
        run(args.path, args.passes, durable=not args.in_memory)


if __name__ == "__main__":
    main()
