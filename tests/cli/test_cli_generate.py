"""`matchcore generate` writes a data set that `matchcore match` reads, with its ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from matchcore.cli import main


def test_generated_data_matches_its_ground_truth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    assert main(["generate", "--orders", "300", "--seed", "5", "--out", str(data), "--json"]) == 0
    generated = json.loads(capsys.readouterr().out)
    assert generated["orders"] == 300 and generated["format"] == "parquet"
    assert (data / "orders.parquet").is_file()

    assert main(["match", "--data", str(data), "--engine", "reference", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    truth = pl.read_parquet(data / "truth.parquet")
    assert summary["orders"] == truth.height == 300
    expected = dict(truth.group_by("verdict").len().iter_rows())
    assert {k: v for k, v in summary["verdicts"].items() if v} == expected


def test_csv_format_and_anomaly_rate(tmp_path: Path) -> None:
    data = tmp_path / "csv"
    args = ["generate", "--orders", "50", "--out", str(data), "--format", "csv"]
    assert main([*args, "--anomaly-rate", "0", "--quiet"]) == 0
    assert pl.read_csv(data / "orders.csv").height == 50
    knobs = json.loads((data / "generate.json").read_text())
    assert knobs["anomaly_rate"] == 0


@pytest.mark.parametrize(
    "bad",
    [
        ["--orders", "0"],
        ["--orders", "ten"],
        ["--anomaly-rate", "1.5"],
        ["--year", "10000", "--format", "ceb"],
        ["--year", "0", "--format", "ceb"],
    ],
)
def test_bad_knobs_are_usage_errors(
    bad: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["generate", "--orders", "10", "--out", str(tmp_path), *bad]
    assert main(args) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_a_year_outside_the_generator_range_names_the_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["generate", "--orders", "10", "--out", str(tmp_path / "out"), "--format", "ceb"]
    assert main([*args, "--year", "10000"]) == 2
    assert "year must be between 9 and 9994, not 10000" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
