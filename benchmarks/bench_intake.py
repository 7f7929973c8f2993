"""Streaming intake alone: CPU per document of decode + check, and of conversion to canonical rows.

The documents are `bench_stream`'s (JSON messages of generated orders, payments, waybills).
Each pass takes every document in turn as `DurableMatcher.offer` and `StreamMatcher._apply` do:
one pass decodes and checks only, the other also converts (the document's key, its link and its
canonical rows packed, what the matcher keeps: `matcher._intake_of`); conversion is the
difference. The two passes alternate; medians of process CPU time are reported.
Run: `.venv/bin/python -m benchmarks.bench_intake --orders 5000`.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable

from benchmarks.bench_stream import make_documents
from matchcore.stream.matcher import _INTAKES, _intake_of, decode_bytes


def _decode_only(messages: list[bytes]) -> None:
    for raw in messages:
        decode_bytes(raw)


def _decode_and_convert(messages: list[bytes]) -> None:
    for raw in messages:
        message = decode_bytes(raw)
        intake = _INTAKES.get(message.__class__) or _intake_of(message.__class__)
        intake.key(message)
        intake.keep(message)


def _cpu_seconds(run: Callable[[list[bytes]], None], messages: list[bytes]) -> float:
    started = time.process_time()
    run(messages)
    return time.process_time() - started


def main() -> None:
    """Generate the documents, time the passes, print microseconds per document."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    messages, _, _ = make_documents(args.orders, args.seed)
    _decode_and_convert(messages)  # every document must be accepted (and warms the caches)
    decode: list[float] = []
    both: list[float] = []
    gc.disable()  # collections would land on whichever pass happens to trigger them
    try:
        for _ in range(args.repeat):
            decode.append(_cpu_seconds(_decode_only, messages))
            both.append(_cpu_seconds(_decode_and_convert, messages))
    finally:
        gc.enable()
    per_document = 1e6 / len(messages)
    checked, total = statistics.median(decode), statistics.median(both)
    print(
        f"{len(messages):,} documents, CPU µs per document (median of {args.repeat}): "
        f"decode + check {checked * per_document:.2f}, "
        f"conversion {(total - checked) * per_document:.2f}, total {total * per_document:.2f}"
    )


if __name__ == "__main__":
    main()
