"""Soak test of `matchcore stream --state-dir`: hundreds of SIGKILLs, then compare.

Writes generated documents to a file, runs the CLI once without interruption, then again on a
fresh state directory killing it at random moments (`--kills` times) and restarting it until
it finishes. Checks: every line whole, no verdict_id with two contents, every order's final
verdict equal to the uninterrupted run. Run: `.venv/bin/python -m benchmarks.soak_stream`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_stream import make_documents

REPO = Path(__file__).resolve().parents[1]


def _write_inputs(directory: Path, orders: int, seed: int) -> None:
    messages, _, data = make_documents(orders, seed)
    (directory / "input.ndjson").write_bytes(b"\n".join(messages) + b"\n")
    refs = directory / "refs"
    refs.mkdir()
    for name in ("products", "enterprises", "hs_lists", "quota_ledger"):
        frame = data.tables.get(name)
        if frame is not None:
            frame.write_parquet(refs / f"{name}.parquet")


def _command(directory: Path, name: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "matchcore",
        "stream",
        "--references",
        str(directory / "refs"),
        "--input",
        str(directory / "input.ndjson"),
        "--state-dir",
        str(directory / f"{name}.state"),
        "--output",
        str(directory / f"{name}.ndjson"),
        "--batch-size",
        "256",
        "--commit-interval",
        "2ms",
        "--snapshot-interval",
        "1s",
        "--stats-interval",
        "20ms",
    ]


def read_events(path: Path) -> list[dict[str, Any]]:
    """The verdict events of an NDJSON output file (a torn line fails to parse)."""
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def final_contents(events: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Each order's newest verdict, without its id and version."""
    final: dict[tuple[str, str], dict[str, Any]] = {}
    for event in events:
        key = (event["ebp_code"], event["order_no"])
        if key not in final or event["version"] > final[key]["version"]:
            final[key] = event
    return {
        key: {k: v for k, v in event.items() if k not in ("verdict_id", "version")}
        for key, event in final.items()
    }


def kill_moment(
    process: subprocess.Popen[bytes],
    output: Path,
    rng: random.Random,
    *,
    idle: float = 1.0,
    delay: float = 0.05,
) -> None:
    """Wait for a moment to kill `process`: mostly up to `delay` s after this run wrote
    verdicts to `output` (so the kill lands mid-stream), sometimes any moment of start-up or
    recovery (up to `idle` s)."""
    if rng.random() < 0.25:
        time.sleep(rng.uniform(0.05, idle))
        return
    size_at_start = output.stat().st_size if output.exists() else 0
    deadline = time.monotonic() + 20
    while process.poll() is None and time.monotonic() < deadline:
        if output.exists() and output.stat().st_size > size_at_start:
            break
        time.sleep(0.002)
    time.sleep(rng.uniform(0.0, delay))


def _final(path: Path) -> tuple[dict[Any, dict[str, Any]], int]:
    """Final contents per order, and the number of events, checking ids on the way."""
    events = read_events(path)
    by_id: dict[str, dict[str, Any]] = {}
    for event in events:
        if by_id.setdefault(event["verdict_id"], event) != event:
            raise SystemExit(f"verdict {event['verdict_id']} emitted with two contents")
    return final_contents(events), len(events)


def main() -> None:
    """Run the soak and print what it found."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--kills", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with tempfile.TemporaryDirectory(prefix="soak-stream-") as tmp:
        directory = Path(tmp)
        _write_inputs(directory, args.orders, args.seed)
        subprocess.run(_command(directory, "calm"), env=env, check=True, stderr=subprocess.DEVNULL)
        expected, _ = _final(directory / "calm.ndjson")
        kills, started = 0, time.monotonic()
        while True:
            process = subprocess.Popen(
                _command(directory, "crashy"), env=env, stderr=subprocess.DEVNULL
            )
            if kills >= args.kills:
                process.communicate()
                if process.returncode != 0:
                    raise SystemExit(f"final run failed with code {process.returncode}")
                break
            kill_moment(process, directory / "crashy.ndjson", rng, idle=1.5, delay=0.5)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            process.communicate()
        found, events = _final(directory / "crashy.ndjson")
        lost = set(expected) - set(found)
        different = [k for k in expected if k in found and found[k] != expected[k]]
        print(
            f"{kills} kills in {time.monotonic() - started:.0f} s; {events:,} events written; "
            f"{len(expected):,} orders: {len(lost)} lost, {len(different)} with another verdict"
        )
        if lost or different:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
