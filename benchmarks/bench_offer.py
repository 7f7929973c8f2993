"""Intake benchmark: CPU time per document of `DurableMatcher.offer`, without flushes.

The bench_stream messages are offered to a matcher that never flushes (no polls, no automatic
flush), so what is measured is the per-document path alone: decode and check, the log record,
conversion, linking and bookkeeping. Durable (a state directory; nothing is committed) and in
memory. Timings on a shared machine are noisy: compare trees by alternating runs.
Run: `PYTHONPATH=. .venv/bin/python -m benchmarks.bench_offer --orders 5000`.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time

from benchmarks.bench_stream import make_documents, references_of
from matchcore.stream.matcher import References, StreamMatcher
from matchcore.stream.state import DurableMatcher


def offer_cpu(references: References, messages: list[bytes], *, durable: bool) -> float:
    """CPU seconds per document of offering every message once."""
    with tempfile.TemporaryDirectory(prefix="bench-offer-") as state_dir:
        matcher = StreamMatcher(references, clock=lambda: 0.0)
        processor = DurableMatcher(matcher, state_dir if durable else None)
        processor.recover()
        matcher.auto_flush = False  # recover() turns it on
        gc.collect()
        started = time.process_time()
        for position, raw in enumerate(messages, start=1):
            processor.offer(raw, position, now=0.0)
        seconds = time.process_time() - started
        processor.close(snapshot=False)  # flushes: not measured
    return seconds / len(messages)


def main() -> None:
    """Generate, offer `--repeat` times durable and in memory, print min and median."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    messages, _, data = make_documents(args.orders)
    references = references_of(data)
    runs: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.repeat):
        for durable in runs:
            runs[durable].append(offer_cpu(references, messages, durable=durable))
    for durable, seconds in runs.items():
        label = "durable" if durable else "in memory"
        print(
            f"offer, {label:<9}: {1e6 * min(seconds):6.2f} us CPU per document (min), "
            f"{1e6 * statistics.median(seconds):6.2f} (median) of {len(messages):,} documents"
        )


if __name__ == "__main__":
    main()
