"""Crash safety of `matchcore stream --state-dir` (SPEC §5): SIGKILL at random moments.

The CLI runs on a file input; it is killed again and again and restarted on the same state
directory. Its verdict output is then checked against an uninterrupted run: every order's
final verdict equal, none lost, no verdict_id emitted twice with different contents.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec

from benchmarks.soak_stream import final_contents, kill_moment, read_events

REPO = Path(__file__).resolve().parents[2]
KILLS = 20
ORDERS = 300


def _messages(kit: Any, rng: random.Random) -> list[bytes]:
    """Three documents per order, some newer revisions, cancels, redeliveries and bad lines,
    shuffled within short windows (documents of an order arrive close together)."""
    messages: list[dict[str, Any]] = []
    for number in range(ORDERS):
        order_no = f"C{number:05d}"
        buyer = kit.resident_id(rng.randrange(40))
        app_time = f"2024-03-01 {10 + number % 12}:00:00"
        messages += [
            kit.order_msg(order_no, buyer=buyer, goods="3000", tax="273.91", app_time=app_time),
            dict(kit.payment_msg(order_no, amount="3283.91", buyer=buyer)),
            kit.waybill_msg(order_no),
        ]
        if rng.random() < 0.1:
            messages.append(kit.payment_msg(order_no, amount="1", buyer=buyer, revision=1))
        if rng.random() < 0.03:
            messages.append(
                {
                    "doc_type": "order",
                    "op": "cancel",
                    "revision": 1,
                    "ebp_code": kit.EBP,
                    "order_no": order_no,
                }
            )
        if rng.random() < 0.05:
            messages.append(messages[-1])  # a redelivery
    lines = [msgspec.json.encode(m) for m in messages]
    lines += [b'{"doc_type": "payment", "amount_paid": -1}', b"not json"]
    shuffled: list[bytes] = []
    for start in range(0, len(lines), 40):
        window = lines[start : start + 40]
        rng.shuffle(window)
        shuffled += window
    return shuffled


def _command(tmp: Path, state: str, output: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "matchcore",
        "stream",
        "--references",
        str(tmp / "refs"),
        "--input",
        str(tmp / "input.ndjson"),
        "--state-dir",
        str(tmp / state),
        "--output",
        str(tmp / output),
        "--dead-letters",
        str(tmp / f"{state}.dead.ndjson"),
        "--engine",
        "reference",
        "--batch-size",
        "128",
        "--commit-interval",
        "2ms",
        "--snapshot-interval",
        "700ms",
        "--stats-interval",
        "20ms",
        "--stats",
    ]


def _environment() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO))


def _stats(stderr: bytes) -> dict[str, int]:
    """The counters `--stats` prints as the last line on stderr."""
    return dict(json.loads(stderr.decode().splitlines()[-1]))


def _check_counters(
    stats: dict[str, int], calm: dict[str, int], events: list[dict[str, Any]]
) -> None:
    """The counters of the state (docs/internals.md, "Counters") after every kill: what came in
    as an uninterrupted run counts it, and one emitted_<verdict> per verdict_id written (how
    many versions there are depends on the micro-batches, which depend on timing)."""
    for name in ("accepted", "duplicates", "stale", "dead_lettered", "pending"):
        assert stats.get(name, 0) == calm.get(name, 0), name
    verdicts = Counter(e["verdict"] for e in {e["verdict_id"]: e for e in events}.values())
    emitted = {name: count for name, count in stats.items() if name.startswith("emitted_")}
    assert emitted == {f"emitted_{verdict}": count for verdict, count in verdicts.items()}


def test_sigkill_and_restart_lose_nothing(kit, tmp_path):
    rng = random.Random(20261127)
    kit.write_references(tmp_path / "refs")
    (tmp_path / "input.ndjson").write_bytes(b"\n".join(_messages(kit, rng)) + b"\n")
    env = _environment()

    calm = subprocess.run(
        _command(tmp_path, "calm", "calm.ndjson"),
        env=env,
        check=True,
        timeout=120,
        stderr=subprocess.PIPE,
    )
    expected = final_contents(read_events(tmp_path / "calm.ndjson"))
    assert len(expected) > ORDERS * 0.9  # orders cancelled before any verdict have none

    # Alone this takes ~35 s; the margin is for a busy CI machine, where each restart (an
    # interpreter importing Polars) takes seconds.
    kills, finished, deadline = 0, False, time.monotonic() + 300
    sizes_after_kills: list[int] = []
    output = tmp_path / "crashy.ndjson"
    while kills < KILLS or not finished:
        assert time.monotonic() < deadline, f"gave up after {kills} kills"
        process = subprocess.Popen(
            _command(tmp_path, "crashy", "crashy.ndjson"), env=env, stderr=subprocess.PIPE
        )
        if kills >= KILLS:
            _, stderr = process.communicate(timeout=120)
            assert process.returncode == 0, stderr.decode()
            finished = True
            _check_counters(_stats(stderr), _stats(calm.stderr), read_events(output))
            continue
        kill_moment(process, output, rng)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.communicate(timeout=30)
        sizes_after_kills.append(output.stat().st_size if output.exists() else 0)
        finished = finished or process.returncode == 0

    final_size = (tmp_path / "crashy.ndjson").stat().st_size
    assert any(0 < size < final_size for size in sizes_after_kills)  # killed mid-stream
    events = read_events(tmp_path / "crashy.ndjson")  # every line whole: no torn output
    by_id: dict[str, dict[str, Any]] = {}
    for event in events:
        assert by_id.setdefault(event["verdict_id"], event) == event, event["verdict_id"]
    assert final_contents(events) == expected
    dead = (tmp_path / "crashy.dead.ndjson").read_text().splitlines()
    assert {json.loads(line)["raw"] for line in dead} == {
        '{"doc_type": "payment", "amount_paid": -1}',
        "not json",
    }
