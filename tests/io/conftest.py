"""Fixtures for reader tests: a small typed orders table and a writer per file format."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.ipc
import pytest

from matchcore.normalise import normalise_table


@pytest.fixture
def orders_frame() -> pl.DataFrame:
    """Three orders as a producer would hold them: decimal money, zoned times, some nulls."""
    money = pa.decimal128(18, 4)
    table = pa.table(
        {
            "order_no": ["O1", "O2", "O3"],
            "ebp_code": ["EBP1", "EBP1", "EBP2"],
            "ebc_code": ["EBC1", "EBC1", "EBC2"],
            "goods_value": pa.array(
                [Decimal("100.5"), Decimal("0.0001"), Decimal("4999.99")], money
            ),
            "freight": pa.array([Decimal("10"), Decimal("0"), Decimal("0")], money),
            "discount": pa.array([None, Decimal("1.25"), None], money),
            "tax_total": pa.array([Decimal("7.04"), Decimal("0"), Decimal("350")], money),
            "actual_paid": pa.array([Decimal("117.54"), Decimal("0"), Decimal("5349.99")], money),
            "buyer_id_number": ["11010519491231002x", "110105194912310025", "440524188001010014"],
            "buyer_name": ["张三", "李\u3000四", "王五"],
            "consignee": ["张三", "李四", "Wang  Wu"],
            "consignee_telephone": ["13800000000", None, "13900000000"],
            "app_time": pa.array(
                [
                    dt.datetime(2024, 3, 1, 2, 0, tzinfo=dt.UTC),
                    dt.datetime(2024, 3, 1, 16, 30, tzinfo=dt.UTC),
                    dt.datetime(2023, 12, 31, 16, 0, 0, 250000, tzinfo=dt.UTC),
                ],
                pa.timestamp("us", "UTC"),
            ),
            "note": [None, "gift", None],
        }
    )
    return pl.DataFrame(pl.from_arrow(table))


@pytest.fixture
def expected_orders(orders_frame: pl.DataFrame) -> pl.DataFrame:
    """The canonical form of `orders_frame` (normalised from memory; checked in test_memory)."""
    canonical, rejects = normalise_table(orders_frame, "orders", "<orders>")
    assert rejects.is_empty()
    return canonical


Writer = Callable[[pl.DataFrame, Path], None]


def _write_ipc_stream(frame: pl.DataFrame, path: Path) -> None:
    with (
        pa.OSFile(str(path), "wb") as sink,
        pyarrow.ipc.new_stream(sink, frame.to_arrow().schema) as w,
    ):
        w.write_table(frame.to_arrow())


WRITERS: dict[str, Writer] = {
    "parquet": lambda frame, path: frame.write_parquet(path),
    "csv": lambda frame, path: frame.write_csv(path),
    "arrow": lambda frame, path: frame.write_ipc(path),
    "feather": lambda frame, path: frame.write_ipc(path),
    "ipc": _write_ipc_stream,
    "ndjson": lambda frame, path: frame.write_ndjson(path),
    "jsonl": lambda frame, path: frame.write_ndjson(path),
}


@pytest.fixture
def write_as(tmp_path: Path) -> Callable[[pl.DataFrame, str, str], Path]:
    """Write `frame` as `<name>.<ext>` in a temporary directory and return the path."""

    def write(frame: pl.DataFrame, name: str, ext: str) -> Path:
        path = tmp_path / f"{name}.{ext}"
        WRITERS[ext](frame, path)
        return path

    return write
