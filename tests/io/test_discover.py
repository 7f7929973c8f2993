"""discover: the standard `<table>.<ext>` files of a data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from matchcore.exceptions import InputError, SchemaError
from matchcore.io import discover
from matchcore.schema import REQUIRED_TABLES


def _touch(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).write_text("x\n")


def test_finds_every_table_file(tmp_path: Path) -> None:
    exts = ["parquet", "csv", "arrow", "ipc", "feather", "ndjson"]
    files = [f"{table}.{ext}" for table, ext in zip(REQUIRED_TABLES, exts, strict=True)]
    _touch(tmp_path, *files, "quota_ledger.jsonl", "notes.txt", "orders_old.csv")
    found = discover(tmp_path)
    assert found == {
        **{table: tmp_path / f for table, f in zip(REQUIRED_TABLES, files, strict=True)},
        "quota_ledger": tmp_path / "quota_ledger.jsonl",
    }


def test_missing_required_table(tmp_path: Path) -> None:
    _touch(tmp_path, *(f"{t}.csv" for t in REQUIRED_TABLES if t != "products"))
    with pytest.raises(SchemaError, match="required table products is missing"):
        discover(tmp_path)


def test_required_table_supplied_elsewhere_need_not_be_in_the_directory(tmp_path: Path) -> None:
    _touch(tmp_path, *(f"{t}.csv" for t in REQUIRED_TABLES if t != "products"))
    found = discover(tmp_path, supplied={"products"})
    assert "products" not in found
    assert set(found) == set(REQUIRED_TABLES) - {"products"}


def test_two_files_for_one_table(tmp_path: Path) -> None:
    _touch(tmp_path, *(f"{t}.csv" for t in REQUIRED_TABLES), "payments.parquet")
    with pytest.raises(
        InputError,
        match=r"table payments has more than one file \(payments.parquet, payments.csv\)",
    ):
        discover(tmp_path)


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist or is not a directory"):
        discover(tmp_path / "nowhere")
