"""Customs XML through the command line: generate as CEB, match it, write receipts."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from matchcore.cli import main
from matchcore.io.ceb import read_ceb


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


@pytest.mark.parametrize("year", ["9", "9994"])
def test_generate_ceb_in_the_first_and_last_years_reads_back(tmp_path: Path, year: str) -> None:
    """Every generated time has a four-digit year in China, so the XML holds them all."""
    ceb = tmp_path / "ceb"
    args = ["generate", "--orders", "40", "--year", year, "--out", str(ceb), "--format", "ceb"]
    assert main([*args, "--quiet"]) == 0
    data = read_ceb(ceb)
    assert data.rejects.height == 0
    assert data.tables["orders"]["app_time"].str.slice(0, 4).unique().to_list() == [f"{year:0>4}"]
