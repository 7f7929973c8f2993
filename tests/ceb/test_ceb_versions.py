"""appType 1/2/3: new documents stay, the latest version wins after a modify, deletes drop."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from matchcore.io.ceb import read_ceb


def _orders(ceb: SimpleNamespace, *versions: dict[str, str]) -> bytes:
    return ceb.message("".join(ceb.order_document(**v) for v in versions))


def test_modify_with_later_time_replaces_the_original(ceb: SimpleNamespace) -> None:
    data = read_ceb(
        _orders(
            ceb,
            {"appType": "1", "appTime": "20250401100000", "goodsValue": "100.00"},
            {"appType": "2", "appTime": "20250401110000", "goodsValue": "90.00"},
        )
    )
    assert data.tables["orders"]["goods_value"].to_list() == ["90.00"]
    assert data.tables["order_items"].height == 1  # the lines of the kept version only
    assert (data.notes["orders.superseded"], data.notes["orders.deleted"]) == (1, 0)


def test_latest_app_time_wins_whatever_the_input_order(ceb: SimpleNamespace) -> None:
    data = read_ceb(
        _orders(
            ceb,
            {"appType": "2", "appTime": "20250401120000", "goodsValue": "80.00"},
            {"appType": "1", "appTime": "20250401100000", "goodsValue": "100.00"},
            {"appType": "2", "appTime": "20250401110000", "goodsValue": "90.00"},
        )
    )
    assert data.tables["orders"]["goods_value"].to_list() == ["80.00"]
    assert data.notes["orders.superseded"] == 2


def test_equal_times_are_decided_by_input_order(ceb: SimpleNamespace) -> None:
    data = read_ceb(
        _orders(
            ceb,
            {"appType": "2", "appTime": "20250401100000", "goodsValue": "1.00"},
            {"appType": "2", "appTime": "20250401100000", "goodsValue": "2.00"},
        )
    )
    assert data.tables["orders"]["goods_value"].to_list() == ["2.00"]


def test_delete_drops_the_document_and_is_counted(ceb: SimpleNamespace) -> None:
    data = read_ceb(
        _orders(
            ceb,
            {"appType": "1", "appTime": "20250401100000"},
            {"appType": "3", "appTime": "20250401110000"},
            {"appType": "1", "appTime": "20250401100000", "orderNo": "T0002"},
        )
    )
    assert data.tables["orders"]["order_no"].to_list() == ["T0002"]
    assert data.tables["order_items"]["order_no"].to_list() == ["T0002"]
    assert data.notes["orders.deleted"] == 1


def test_new_after_a_delete_restores_the_document(ceb: SimpleNamespace) -> None:
    data = read_ceb(
        _orders(
            ceb,
            {"appType": "3", "appTime": "20250401100000"},
            {"appType": "1", "appTime": "20250401110000", "goodsValue": "70.00"},
        )
    )
    assert data.tables["orders"]["goods_value"].to_list() == ["70.00"]
    assert data.notes["orders.deleted"] == 0


def test_repeated_new_declarations_are_all_kept(ceb: SimpleNamespace) -> None:
    data = read_ceb(_orders(ceb, {"appType": "1"}, {"appType": "1"}))
    # Duplicate declarations are what ORDER_DUPLICATE reports, so both copies stay.
    assert data.tables["orders"]["order_no"].to_list() == ["T0001", "T0001"]
    assert data.notes["orders.superseded"] == 0


def test_versions_across_files_and_types(samples: Path) -> None:
    data = read_ceb(samples)
    orders = data.tables["orders"]
    assert orders["order_no"].to_list() == [
        "SO20250317000001",
        "SO20250315000001",
        "SO20250316000001",
        "SO20250316000002",
        "SO20250316000003",
    ]
    modified = orders.filter(orders["order_no"] == "SO20250315000001").row(0, named=True)
    assert (modified["goods_value"], modified["actual_paid"]) == ("198.00", "226.92")
    lines = data.tables["order_items"].filter(
        data.tables["order_items"]["order_no"] == "SO20250315000001"
    )
    assert lines["item_no"].to_list() == ["SKU-0001"]
    assert (data.notes["orders.deleted"], data.notes["orders.superseded"]) == (1, 2)
    assert data.notes["orders.documents"] == 8


def test_payment_versions_use_the_payment_key(ceb: SimpleNamespace) -> None:
    docs = ceb.payment_document(appType="1", amountPaid="10.00") + ceb.payment_document(
        appType="2", appTime="20250401110000", amountPaid="12.00"
    )
    data = read_ceb(ceb.message(docs, root="CEB411Message"))
    assert data.tables["payments"]["amount_paid"].to_list() == ["12.00"]
