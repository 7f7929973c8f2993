"""`matchcore stream` end to end: file input, dead letters, counters, resuming, MessagePack."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest

from matchcore.cli import main
from matchcore.stream.io import frame

from .conftest import failing_fsync


@pytest.fixture()
def workspace(kit, tmp_path):
    kit.write_references(tmp_path / "refs")
    return tmp_path


def _args(tmp, *extra):
    return ["stream", "--references", str(tmp / "refs"), "--engine", "reference", *extra]


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_file_in_verdicts_and_dead_letters_out(kit, workspace, capsys):
    lines = [msgspec.json.encode(m) for m in kit.complete_set("O1") + kit.complete_set("O2")]
    lines.insert(2, b'{"doc_type": "waybill", "logistics_code": "L"}')
    (workspace / "in.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    out, dead = workspace / "out.ndjson", workspace / "dead.ndjson"
    code = main(
        _args(
            workspace,
            "--input",
            str(workspace / "in.ndjson"),
            "--output",
            str(out),
            "--dead-letters",
            str(dead),
            "--stats",
        )
    )
    assert code == 0
    assert [(e["order_no"], e["verdict"]) for e in _lines(out)] == [("O1", "pass"), ("O2", "pass")]
    [letter] = _lines(dead)
    assert letter["reason"].startswith("missing key") and letter["position"] > 0
    assert letter["raw"] == '{"doc_type": "waybill", "logistics_code": "L"}'
    stats = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert (stats["accepted"], stats["dead_lettered"], stats["emitted_pass"]) == (6, 1, 2)


def test_restart_resumes_after_the_committed_offset(kit, workspace, capsys):
    source = workspace / "in.ndjson"
    source.write_bytes(b"".join(msgspec.json.encode(m) + b"\n" for m in kit.complete_set("O1")))
    out = workspace / "out.ndjson"
    common = ["--input", str(source), "--output", str(out), "--state-dir", str(workspace / "s")]
    assert main(_args(workspace, *common)) == 0
    with open(source, "ab") as handle:  # the file grows between runs
        for message in kit.complete_set("O2"):
            handle.write(msgspec.json.encode(message) + b"\n")
    assert main(_args(workspace, *common, "--stats")) == 0
    assert [e["verdict_id"] for e in _lines(out)] == ["EBP001/O1/1", "EBP001/O2/1"]
    stats = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert stats["accepted"] == 6 and stats.get("duplicates", 0) == 0
    assert main(_args(workspace, "--state-dir", str(workspace / "s"), "--stats")) == 0
    assert json.loads(capsys.readouterr().out)["emitted_pass"] == 2


def test_a_torn_verdict_at_the_end_of_the_output_is_cut_and_written_again(kit, workspace, capsys):
    """A run killed in the middle of writing verdicts leaves part of a line; the next run cuts
    it, says so, and its recovery writes the verdict again, so every line parses."""
    source, out = workspace / "in.ndjson", workspace / "out.ndjson"
    source.write_bytes(b"".join(msgspec.json.encode(m) + b"\n" for m in kit.complete_set("O1")))
    common = ["--input", str(source), "--output", str(out), "--state-dir", str(workspace / "s")]
    process = subprocess.Popen(
        [sys.executable, "-m", "matchcore", *_args(workspace, *common, "--follow")],
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])),
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and out.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        process.kill()  # no close: the verdict is in the log after the last snapshot
        process.wait()
    whole = out.read_bytes()
    out.write_bytes(whole[: len(whole) // 2])  # as a kill in the middle of the write leaves it
    assert main(_args(workspace, *common)) == 0
    assert f"cut a torn frame of {len(whole) // 2} bytes from the end of {out}" in (
        capsys.readouterr().err
    )
    assert [e["verdict_id"] for e in _lines(out)] == ["EBP001/O1/1"]


def test_msgpack_input_and_output(kit, workspace):
    source = workspace / "in.msgpack"
    source.write_bytes(
        b"".join(frame(msgspec.msgpack.encode(m), "msgpack") for m in kit.complete_set("O1"))
    )
    out = workspace / "out.msgpack"
    args = [
        "--input",
        str(source),
        "--input-format",
        "msgpack",
        "--output",
        str(out),
        "--output-format",
        "msgpack",
    ]
    assert main(_args(workspace, *args)) == 0
    data = out.read_bytes()
    length = int.from_bytes(data[:4], "big")
    assert len(data) == 4 + length
    assert msgspec.msgpack.decode(data[4:])["verdict"] == "pass"


def test_missing_references_is_a_usage_error(workspace, capsys):
    code = main(["stream", "--references", str(workspace / "nowhere"), "--input", "-"])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


def test_customs_xml_input_matches_like_batch(tmp_path):
    from matchcore.api import match
    from matchcore.generate import generate
    from matchcore.io.ceb import write_ceb

    data = generate(60, seed=3, inventories=False, anomaly_rate=0.3)
    write_ceb(data.tables, tmp_path / "ceb")
    out = tmp_path / "out.ndjson"
    args = [
        "stream",
        "--references",
        str(tmp_path / "ceb"),
        "--engine",
        "reference",
        "--input",
        str(tmp_path / "ceb"),
        "--input-format",
        "ceb",
        "--output",
        str(out),
    ]
    assert main(args) == 0
    final = {}
    for event in _lines(out):
        final[(event["ebp_code"], event["order_no"])] = event
    batch = match(**data.tables, engine="reference").verdicts
    compared = 0
    for row in batch.iter_rows(named=True):
        event = final.get((row["ebp_code"], row["order_no"]))
        if any(r.endswith("_DUPLICATE") or r.endswith("_MISSING") for r in row["reasons"]):
            continue  # a stream keeps one version per document key; incomplete sets wait
        assert event is not None and event["verdict"] == row["verdict"]
        assert event["reasons"] == list(row["reasons"])
        compared += 1
    assert compared >= 40


def test_follow_times_out_an_idle_order_and_stops_on_sigterm(kit, workspace):
    source, out = workspace / "in.ndjson", workspace / "out.ndjson"
    source.write_bytes(msgspec.json.encode(kit.order_msg("LONELY")) + b"\n")
    command = [
        sys.executable,
        "-m",
        "matchcore",
        *_args(
            workspace,
            "--input",
            str(source),
            "--follow",
            "--completion-window",
            "1s",
            "--output",
            str(out),
            "--state-dir",
            str(workspace / "s"),
        ),
    ]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and out.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)  # no new input: only the completion window can produce this
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr.decode()
    [event] = _lines(out)
    assert (event["verdict"], event["missing"]) == ("incomplete", ["payment", "waybill"])
    assert list((workspace / "s").glob("snapshot-*.bin"))


def test_a_state_directory_refuses_another_input(kit, workspace, capsys):
    first, second = workspace / "a.ndjson", workspace / "b.ndjson"
    for path in (first, second):
        path.write_bytes(msgspec.json.encode(kit.order_msg("O1")) + b"\n")
    state = ["--state-dir", str(workspace / "s"), "--output", str(workspace / "out.ndjson")]
    assert main(_args(workspace, "--input", str(first), *state)) == 0
    assert main(_args(workspace, "--input", str(second), *state)) == 2
    assert "belongs to input" in capsys.readouterr().err


@pytest.mark.parametrize("failing", [("log-",), ("log-", "out.")])
def test_a_failed_state_log_ends_the_run_with_code_4_and_a_restart_recovers(
    kit, workspace, capsys, monkeypatch, failing
):
    """An fsync of the log that fails (an I/O error, a disk full) ends the run at once with
    one line saying to restart, exit code 4, no traceback, also when the output file then
    fails to sync as it is closed; the restart delivers every verdict."""
    source, out = workspace / "in.ndjson", workspace / "out.ndjson"
    messages = kit.complete_set("O1") + kit.complete_set("O2")
    source.write_bytes(b"".join(msgspec.json.encode(m) + b"\n" for m in messages))
    run = _args(workspace, "--input", str(source), "--output", str(out))
    run += ["--state-dir", str(workspace / "s"), "--batch-size", "1"]
    failing_fsync(monkeypatch, lambda path: os.path.basename(path).startswith(failing))
    assert main(run) == 4
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("matchcore: error: a write or fsync of the state log ")
    assert "Input/output error" in line and "restart the process to recover" in line
    assert out.read_bytes() == b""  # nothing was committed: nothing delivered
    monkeypatch.undo()
    assert main(run) == 0
    assert [e["verdict_id"] for e in _lines(out)] == ["EBP001/O1/1", "EBP001/O2/1"]


def test_a_batch_size_out_of_range_is_a_usage_error(kit, workspace, capsys):
    (workspace / "in.ndjson").write_bytes(msgspec.json.encode(kit.order_msg("O1")) + b"\n")
    run = _args(workspace, "--input", str(workspace / "in.ndjson"), "--batch-size", "0")
    assert main([*run, "--output", str(workspace / "out.ndjson")]) == 2
    assert "error: batch size 0: expected a whole number from 1 to" in capsys.readouterr().err


def test_listen_acks_and_serves_verdicts_to_tcp_clients(kit, workspace):
    import os
    import re
    import signal
    import socket
    import subprocess
    import sys
    from pathlib import Path

    command = [
        sys.executable,
        "-m",
        "matchcore",
        *_args(
            workspace, "--listen", "0", "--output-listen", "0", "--state-dir", str(workspace / "s")
        ),
    ]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    try:
        assert process.stderr is not None
        intake_port, output_port = map(
            int, re.findall(r":(\d+)", process.stderr.readline().decode())
        )
        with (
            socket.create_connection(("127.0.0.1", output_port), timeout=60) as output,
            socket.create_connection(("127.0.0.1", intake_port), timeout=60) as intake,
        ):
            intake.sendall(b"".join(msgspec.json.encode(m) + b"\n" for m in kit.complete_set("N1")))
            acks = intake.makefile("rb")
            while (ack := json.loads(acks.readline())["ack"]) < 3:  # acks grow with commits
                assert ack > 0
            verdict = json.loads(output.makefile("rb").readline())
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert (verdict["verdict_id"], verdict["verdict"]) == ("EBP001/N1/1", "pass")
