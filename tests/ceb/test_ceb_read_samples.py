"""read_ceb on the hand-written sample messages and on every kind of source."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from types import SimpleNamespace

import polars as pl

from matchcore.io.ceb import read_ceb

TRACE = ["_file", "_message", "_document", "_index"]


def test_order_message_maps_head_and_lines(samples: Path) -> None:
    data = read_ceb(samples / "order_311.xml")
    orders = data.tables["orders"]
    assert orders["order_no"].to_list() == ["SO20250315000001", "SO20250315000002"]
    first = orders.row(0, named=True)
    assert first["actual_paid"] == "292.39"  # from acturalPaid
    assert first["goods_value"] == "258.00"
    assert first["buyer_reg_no"] == "buyer_0001"
    assert first["note"] == "gift & wrap"  # entity decoded
    assert first["app_time"] == "2025-03-15 10:30:00"
    assert first["_message"] == "A1B2C3D4-0311-4000-8000-000000000001"
    assert first["_document"] == "A1B2C3D4-0311-4000-8000-000000000101"
    assert first["_file"].endswith("order_311.xml")
    assert orders["_index"].to_list() == [1, 2]
    assert orders["discount"].to_list() == ["0", "5.00"]
    lines = data.tables["order_items"]
    assert lines.select("order_no", "gnum", "item_no", "qty").rows() == [
        ("SO20250315000001", "1", "SKU-0001", "2"),
        ("SO20250315000001", "2", "SKU-0002", "1.5"),
        ("SO20250315000002", "1", "SKU-0003", "1"),
    ]
    assert lines["ebp_code"].unique().to_list() == ["3105961682"]
    assert data.rejects.height == 0
    assert "inventories" not in data.tables  # no CEB621 given: inventory rules stay off


def test_multi_head_message_keeps_lines_with_their_head(samples: Path) -> None:
    data = read_ceb(samples / "order_311_multihead.xml")
    orders = data.tables["orders"]
    assert orders["order_no"].to_list() == [
        "SO20250316000001",
        "SO20250316000002",
        "SO20250316000003",
    ]
    assert orders["_index"].to_list() == [1, 2, 3]
    lines = data.tables["order_items"]
    assert lines.select("order_no", "item_no").rows() == [
        ("SO20250316000001", "SKU-0010"),
        ("SO20250316000002", "SKU-0011"),
        ("SO20250316000003", "SKU-0012"),
        ("SO20250316000003", "SKU-0013"),
    ]


def test_gbk_message_is_decoded_by_its_declaration(samples: Path) -> None:
    raw = (samples / "order_311_gbk.xml").read_bytes()
    assert "陈静".encode("gbk") in raw
    data = read_ceb(samples / "order_311_gbk.xml")
    assert data.tables["orders"]["buyer_name"].to_list() == ["陈静"]
    assert data.tables["order_items"]["item_name"].to_list() == ["保温杯"]


def test_payment_with_signature_is_read(samples: Path) -> None:
    payments = read_ceb(samples / "payment_411.xml").tables["payments"]
    assert payments.select("pay_transaction_id", "amount_paid", "pay_time").rows() == [
        ("PAY20250315000001", "292.39", "2025-03-15 10:31:05"),
        ("PAY20250315000002", "125.45", "2025-03-15 10:46:10"),
    ]
    assert payments["payer_name"].to_list() == ["王小明", "李华"]


def test_waybill_in_default_namespace(samples: Path) -> None:
    waybills = read_ceb(samples / "waybill_511.xml").tables["waybills"]
    assert waybills.select("logistics_no", "order_no", "weight").rows() == [
        ("LP000000000001", "SO20250315000001", "2.35"),
        ("LP000000000002", None, "0.4"),
    ]


def test_inventory_head_is_read_and_lines_ignored(samples: Path) -> None:
    inventories = read_ceb(samples / "inventory_621.xml").tables["inventories"]
    assert inventories.height == 1
    row = inventories.row(0, named=True)
    assert (row["trade_mode"], row["agent_code"], row["logistics_no"]) == (
        "9610",
        "3107980001",
        "LP000000000002",
    )
    assert row["app_time"] == "2025-03-15 13:00:00"


def test_directory_is_read_recursively_in_name_order(samples: Path, tmp_path: Path) -> None:
    root = tmp_path / "ceb"
    (root / "b" / "deeper").mkdir(parents=True)
    shutil.copy(samples / "order_311.xml", root / "b" / "deeper" / "x.xml")
    shutil.copy(samples / "order_311_multihead.xml", root / "a.xml")
    (root / "readme.txt").write_text("not a message")
    data = read_ceb(root)
    assert data.tables["orders"]["order_no"].to_list() == [
        "SO20250316000001",
        "SO20250316000002",
        "SO20250316000003",
        "SO20250315000001",
        "SO20250315000002",
    ]
    assert data.notes["files"] == 2


def test_zip_file_and_zip_bytes_equal_the_directory(samples: Path, tmp_path: Path) -> None:
    archive = tmp_path / "samples.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(samples.glob("*.xml")):
            zipped.write(path, f"msgs/{path.name}")
    from_dir = read_ceb(samples)
    for source in (archive, archive.read_bytes()):
        from_zip = read_ceb(source)
        assert set(from_zip.tables) == set(from_dir.tables)
        for name, frame in from_dir.tables.items():
            assert from_zip.tables[name].drop("_file").equals(frame.drop("_file"))
        assert from_zip.tables["orders"]["_file"][0].endswith("!msgs/order_311_gbk.xml")


def test_bytes_input_is_one_message(ceb: SimpleNamespace) -> None:
    data = read_ceb(ceb.message(ceb.order_document(lines=2)))
    assert data.tables["orders"]["order_no"].to_list() == ["T0001"]
    assert data.tables["order_items"]["gnum"].to_list() == ["1", "2"]
    assert data.tables["orders"]["_file"].to_list() == ["<bytes>"]


def test_parquet_reference_tables_beside_the_xml_are_read(samples: Path, tmp_path: Path) -> None:
    root = tmp_path / "ceb"
    root.mkdir()
    shutil.copy(samples / "order_311.xml", root / "o.xml")
    products = pl.DataFrame({"ebc_code": ["3105961683"], "item_no": ["SKU-0001"]})
    products.write_parquet(root / "products.parquet")
    data = read_ceb(root)
    assert data.tables["products"].equals(products)
    assert "enterprises" not in data.tables
    sources = data.sources()
    assert sources["orders"].frame.equals(data.tables["orders"])
    assert "orders" in sources["orders"].label


def test_gb18030_message(samples: Path, tmp_path: Path) -> None:
    text = (samples / "order_311_gbk.xml").read_bytes().decode("gbk")
    text = text.replace('encoding="GBK"', 'encoding="GB18030"').replace("陈静", "陈静𠀀")
    path = tmp_path / "gb18030.xml"
    path.write_bytes(text.encode("gb18030"))
    assert read_ceb(path).tables["orders"]["buyer_name"].to_list() == ["陈静𠀀"]


def test_zip_inside_a_directory_is_read(samples: Path, tmp_path: Path) -> None:
    root = tmp_path / "ceb"
    root.mkdir()
    with zipfile.ZipFile(root / "batch.zip", "w") as zipped:
        zipped.write(samples / "payment_411.xml", "payment_411.xml")
    shutil.copy(samples / "order_311.xml", root / "order_311.xml")
    data = read_ceb(root)
    assert data.tables["payments"].height == 2
    assert data.tables["orders"].height == 2
    assert data.tables["payments"]["_file"][0] == f"{root / 'batch.zip'}!payment_411.xml"
