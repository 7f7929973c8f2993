"""Arrow IPC reader: file and stream formats under .arrow, .ipc and .feather."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from matchcore.exceptions import InputError
from matchcore.io import read_ipc, read_source
from matchcore.io.ipc import EXTENSIONS
from matchcore.normalise import normalise_table


@pytest.mark.parametrize("ext", ["arrow", "feather", "ipc"])
def test_round_trip(
    orders_frame: pl.DataFrame, expected_orders: pl.DataFrame, write_as, ext: str
) -> None:
    path = write_as(orders_frame, "orders", ext)
    raw = read_source(path, "orders")
    assert raw.label == str(path)
    canonical, rejects = normalise_table(raw, "orders")
    assert rejects.is_empty()
    assert_frame_equal(canonical, expected_orders)


def test_format_is_told_by_content_not_extension(
    orders_frame: pl.DataFrame, write_as, tmp_path: Path
) -> None:
    stream = write_as(orders_frame, "orders", "ipc")  # the stream format
    renamed = stream.rename(tmp_path / "stream.arrow")
    assert read_ipc(renamed).frame.height == 3


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_garbage_bytes(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"orders.{ext}"
    path.write_bytes(b"ARROW1 but then nonsense" * 5)
    with pytest.raises(InputError, match=f"{path}: cannot read as Arrow IPC"):
        read_source(path, "orders")
    path.write_bytes(b"\x01\x02garbage")
    with pytest.raises(InputError, match=str(path)):
        read_source(path, "orders")
