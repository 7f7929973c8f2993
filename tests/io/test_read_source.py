"""read_source: picking the reader, and errors for sources that cannot be read at all;
check_source: the same errors from cheap checks."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from matchcore.exceptions import InputError
from matchcore.io import RawSource, check_source, read_source


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


@pytest.mark.parametrize("ext", ["parquet", "csv", "arrow", "feather", "ipc", "ndjson", "jsonl"])
def test_check_source_passes_what_read_source_reads(
    orders_frame: pl.DataFrame, write_as: Callable[[pl.DataFrame, str, str], Path], ext: str
) -> None:
    path = write_as(orders_frame, "orders", ext)
    check_source(path, "orders")
    assert read_source(path, "orders").frame.height == 3


def _missing(path: Path) -> None:
    pass


def _directory(path: Path) -> None:
    path.mkdir()


def _bytes(content: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content)


#: Files that cannot be opened as their format, and the message `read_source` gives for them.
UNREADABLE: list[tuple[str, Callable[[Path], None], str]] = [
    ("orders.parquet", _missing, "input file {path} does not exist"),
    ("orders.csv", _directory, "input {path} is not a regular file"),
    ("orders.xlsx", _bytes(b"PK"), "{path}: unknown file extension for table orders"),
    ("orders.parquet", _bytes(b"PAR1 truncated"), "{path}: cannot read as Parquet"),
    ("orders.csv", _bytes(b""), "{path}: cannot read as CSV"),
    ("orders.arrow", _bytes(b"ARROW1 but then nonsense" * 5), "{path}: cannot read as Arrow IPC"),
    ("orders.ipc", _bytes(b"\x01\x02garbage"), "{path}: cannot read as Arrow IPC"),
]


@pytest.mark.parametrize(("name", "make", "message"), UNREADABLE)
def test_check_source_gives_the_error_of_a_full_read(
    tmp_path: Path, name: str, make: Callable[[Path], None], message: str
) -> None:
    path = tmp_path / name
    make(path)
    expected = re.escape(message.format(path=path))
    with pytest.raises(InputError, match=expected):
        read_source(path, "orders")
    with pytest.raises(InputError, match=expected):
        check_source(path, "orders")


def test_check_source_refuses_an_unknown_object_and_leaves_frames_alone() -> None:
    with pytest.raises(InputError, match="orders: cannot read a source of type dict"):
        check_source({"order_no": ["O1"]}, "orders")
    check_source(pl.LazyFrame({"a": [1]}).map_batches(_never), "orders")  # not collected


def _never(frame: pl.DataFrame) -> pl.DataFrame:
    raise AssertionError("an in-memory source was read")
