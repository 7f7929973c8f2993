"""Customs XML through the command line: generate as CEB, match it, write receipts."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from matchcore.cli import main


def test_generate_ceb_then_match_it_with_receipts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ceb, receipts = tmp_path / "ceb", tmp_path / "receipts"
    args = ["generate", "--orders", "120", "--seed", "3", "--out", str(ceb), "--format", "ceb"]
    assert main([*args, "--quiet"]) == 0
    assert list((ceb / "orders").glob("*.xml"))
    assert (ceb / "truth.parquet").is_file()

    match = ["match", "--ceb", str(ceb), "--engine", "reference", "--json"]
    assert main([*match, "--receipts", str(receipts)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["orders"] == pl.read_parquet(ceb / "truth.parquet").height
    assert list(receipts.glob("*.xml"))
