"""NDJSON reader: bad lines become rejects with their line number; the other lines go on."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from matchcore.exceptions import InputError
from matchcore.io import read_ndjson, read_source
from matchcore.normalise import normalise_table

ORDER = {
    "order_no": "O1",
    "ebp_code": "EBP1",
    "ebc_code": "EBC1",
    "goods_value": 100,
    "freight": 10.5,
    "tax_total": "0",
    "actual_paid": 110.5,
    "buyer_id_number": "110105194912310025",
    "buyer_name": "张三",
    "consignee": "李四",
    "app_time": "2024-03-01 10:00:00",
}


def _line(**changes: object) -> str:
    return json.dumps({**ORDER, **changes}, ensure_ascii=False)


def _write(tmp_path: Path, lines: list[str], ext: str = "ndjson") -> Path:
    path = tmp_path / f"orders.{ext}"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("ext", ["ndjson", "jsonl"])
def test_round_trip(
    orders_frame: pl.DataFrame, expected_orders: pl.DataFrame, write_as, ext: str
) -> None:
    raw = read_source(write_as(orders_frame, "orders", ext), "orders")
    canonical, rejects = normalise_table(raw, "orders")
    assert rejects.is_empty()
    assert_frame_equal(canonical, expected_orders)


def test_json_numbers_keep_their_decimal_digits(tmp_path: Path) -> None:
    lines = [
        '{"order_no": "O1", "goods_value": 123.45, "freight": 0.1}',
        '{"order_no": "O2", "goods_value": 0.00005, "freight": 12345678901234.5678}',
    ]
    lines = [
        line[:-1] + ', "ebp_code": "E", "ebc_code": "C", "tax_total": 0, "actual_paid": 0, '
        '"buyer_id_number": "1", "buyer_name": "n", "consignee": "c", '
        '"app_time": "20240301100000"}'
        for line in lines
    ]
    canonical, rejects = normalise_table(
        read_ndjson(_write(tmp_path, lines), table="orders"), "orders"
    )
    assert canonical.select("goods_value", "freight").row(0) == (1_234_500, 1_000)
    assert rejects.select("row", "column", "message").row(0) == (
        2,
        "goods_value",
        "more than 4 decimal places",
    )


def test_bad_lines_go_to_rejects_and_the_rest_goes_on(tmp_path: Path) -> None:
    lines = [
        _line(order_no="O1"),
        '{"order_no": "O2", "goods_value": ',
        "",
        "[1, 2, 3]",
        _line(order_no="O5", goods_value="-3"),
        "   ",
        _line(order_no="O7"),
    ]
    path = _write(tmp_path, lines)
    raw = read_source(path, "orders")
    canonical, rejects = normalise_table(raw, "orders")
    assert canonical.select("order_no", "_row").rows() == [("O1", 1), ("O7", 7)]
    assert rejects.select("table", "file", "row", "column").rows() == [
        ("orders", str(path), 2, None),
        ("orders", str(path), 4, None),
        ("orders", str(path), 5, "goods_value"),
    ]
    assert rejects["message"][0].startswith("line is not valid JSON")
    assert rejects["message"][1] == "line is not a JSON object"


def test_blank_lines_do_not_shift_row_numbers(tmp_path: Path) -> None:
    path = _write(tmp_path, ["", _line(order_no="O2"), "", _line(order_no="O4", app_time="never")])
    canonical, rejects = normalise_table(read_source(path, "orders"), "orders")
    assert canonical["_row"].to_list() == [2]
    assert rejects["row"].to_list() == [4]


def test_a_file_with_no_json_object_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "orders.ndjson"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00garbage\xff\n")
    with pytest.raises(InputError, match=f"{path}: cannot read as NDJSON"):
        read_source(path, "orders")


def test_roles_list_survives(tmp_path: Path) -> None:
    path = tmp_path / "enterprises.jsonl"
    rows = [
        {"code": "E1", "roles": ["ebp", "ebc"], "credit_class": "general", "status": "active"},
        {"code": "E2", "roles": ["pay"], "credit_class": "advanced", "status": "active"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    canonical, rejects = normalise_table(read_source(path, "enterprises"), "enterprises")
    assert rejects.is_empty()
    assert canonical["roles"].to_list() == [3, 4]
