"""CSV reader: every column read as text; bad bytes and bad values reported with the file."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from matchcore.exceptions import InputError, SchemaError
from matchcore.io import read_csv, read_source
from matchcore.normalise import normalise_table

HEADER = (
    "order_no,ebp_code,ebc_code,goods_value,freight,tax_total,actual_paid,"
    "buyer_id_number,buyer_name,consignee,app_time,note\n"
)
GOOD = "O1,EBP1,EBC1,100,10,0,110,110105194912310025,张三,李四,2024-03-01 10:00:00,\n"


def _write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "orders.csv"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_round_trip(orders_frame: pl.DataFrame, expected_orders: pl.DataFrame, write_as) -> None:
    path = write_as(orders_frame, "orders", "csv")
    raw = read_source(path, "orders")
    assert set(raw.frame.schema.values()) == {pl.String()}
    canonical, rejects = normalise_table(raw, "orders")
    assert rejects.is_empty()
    assert_frame_equal(canonical, expected_orders)


def test_nothing_lost_to_type_inference(tmp_path: Path) -> None:
    text = (
        "ebc_code,item_no,hs_code,vat_rate,consumption_tax_rate,status\n"
        "E1,007,0101010101,0.13,0,active\n"
    )
    path = tmp_path / "products.csv"
    path.write_text(text)
    canonical, _ = normalise_table(read_csv(path), "products")
    assert canonical.select("item_no", "hs_code").row(0) == ("007", "0101010101")


def test_quoted_fields(tmp_path: Path) -> None:
    line = (
        'O1,EBP1,EBC1,100,10,0,110,110105194912310025,张三,"李四",2024-03-01 10:00:00,'
        '"a, ""b""\nc"\n'
    )
    canonical, _ = normalise_table(read_csv(_write(tmp_path, HEADER + line)), "orders")
    assert canonical["note"].to_list() == ['a, "b" c']


def test_bad_values_become_rejects_with_file_and_row(tmp_path: Path) -> None:
    rows = [
        GOOD,
        GOOD.replace(",100,", ",100.00001,"),
        GOOD.replace(",100,", ",-100,"),
        GOOD.replace(",100,", ",1O0,"),
        GOOD.replace("2024-03-01 10:00:00", "2024-03-01 10:00:99"),
        GOOD.replace(",张三,", ",,"),
    ]
    path = _write(tmp_path, HEADER + "".join(rows))
    canonical, rejects = normalise_table(read_source(path, "orders"), "orders")
    assert canonical["_row"].to_list() == [1]
    assert rejects.select("file", "row", "column", "message").rows() == [
        (str(path), 2, "goods_value", "more than 4 decimal places"),
        (str(path), 3, "goods_value", "negative amount"),
        (str(path), 4, "goods_value", "not a decimal number"),
        (str(path), 5, "app_time", "not a valid time (ISO 8601 or yyyyMMddHHmmss)"),
        (str(path), 6, "buyer_name", "required value is missing"),
    ]


def test_missing_column_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, HEADER.replace("goods_value,", "") + GOOD.replace("100,", "", 1))
    with pytest.raises(
        SchemaError, match=f"orders: required column 'goods_value' is missing \\(file {path}\\)"
    ):
        normalise_table(read_csv(path), "orders")


@pytest.mark.parametrize("content", [b"", b"order_no\xff\xfe,\x00\x81\n\xc3\x28,\xa0\xa1\n"])
def test_empty_or_garbage_bytes(tmp_path: Path, content: bytes) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(InputError, match=f"{path}: cannot read as CSV"):
        read_csv(path)


def test_byte_order_mark_and_crlf(tmp_path: Path) -> None:
    text = "\ufeff" + (HEADER + GOOD + GOOD.replace("O1", "O2")).replace("\n", "\r\n")
    canonical, rejects = normalise_table(read_csv(_write(tmp_path, text)), "orders")
    assert rejects.is_empty()
    assert canonical["order_no"].to_list() == ["O1", "O2"]
    assert canonical["note"].to_list() == [None, None]


def test_unreadable_csv_message_does_not_quote_content(tmp_path: Path) -> None:
    path = _write(tmp_path, 'order_no,buyer_name\nO1,"张三 110105194912310025\n')
    with pytest.raises(InputError) as error:
        read_csv(path)
    assert str(path) in str(error.value)
    assert "110105194912310025" not in str(error.value)
    assert "张三" not in str(error.value)
