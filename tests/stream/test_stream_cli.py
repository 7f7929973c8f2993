"""`matchcore stream` end to end: file input, dead letters, counters, resuming, MessagePack."""

from __future__ import annotations

import json

import msgspec
import pytest

from matchcore.cli import main
from matchcore.stream.io import frame


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
