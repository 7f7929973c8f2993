"""read_source: picking the reader, and errors for sources that cannot be read at all."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from matchcore.exceptions import InputError
from matchcore.io import RawSource, read_source


def test_missing_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "orders.parquet"
    with pytest.raises(InputError, match=f"input file {path} does not exist"):
        read_source(path, "orders")


def test_unknown_extension_names_file_and_table(tmp_path: Path) -> None:
    path = tmp_path / "orders.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(InputError, match=f"{path}: unknown file extension for table orders"):
        read_source(str(path), "orders")


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "orders.csv"
    folder.mkdir()
    with pytest.raises(InputError, match="is not a regular file"):
        read_source(folder, "orders")


def test_extension_case_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "ORDERS.CSV"
    path.write_text("order_no\nO1\n")
    assert read_source(path, "orders").frame["order_no"].to_list() == ["O1"]


def test_a_raw_source_passes_through() -> None:
    raw = RawSource(frame=pl.DataFrame({"a": [1]}), label="stream orders")
    assert read_source(raw, "orders") is raw
