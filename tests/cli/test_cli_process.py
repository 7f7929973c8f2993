"""`python -m matchcore` as a real process: exit codes, clean stdout, no traceback on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "matchcore", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_match_json_in_a_process(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = _run("match", "--data", str(data_dir), "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["orders"] == 4
    assert (out / "verdicts.parquet").is_file()
    assert json.loads((out / "summary.json").read_text())["verdicts"] == summary["verdicts"]


def test_missing_file_in_a_process(data_dir: Path, tmp_path: Path) -> None:
    done = _run("match", "--data", str(data_dir), "--payments", str(tmp_path / "gone.csv"))
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "gone.csv" in lines[0]
    assert "Traceback" not in done.stderr
