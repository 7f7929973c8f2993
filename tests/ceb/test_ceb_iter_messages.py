"""iter_messages: one CEB message -> documents in the streaming message shape."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from matchcore.exceptions import InputError
from matchcore.io.ceb import iter_messages


def test_order_message_yields_orders_with_items(samples: Path) -> None:
    documents = list(iter_messages((samples / "order_311.xml").read_bytes()))
    assert [d["order_no"] for d in documents] == ["SO20250315000001", "SO20250315000002"]
    first = documents[0]
    assert (first["doc_type"], first["op"], first["revision"]) == (
        "order",
        "upsert",
        20250315103000,
    )
    assert first["actual_paid"] == "292.39"
    assert first["app_time"] == "2025-03-15 10:30:00"
    assert first["guid"] == "A1B2C3D4-0311-4000-8000-000000000101"
    assert [item["item_no"] for item in first["items"]] == ["SKU-0001", "SKU-0002"]
    assert first["items"][1] == {
        "ebp_code": "3105961682",
        "order_no": "SO20250315000001",
        "gnum": 2,
        "item_no": "SKU-0002",
        "item_name": "维生素片",
        "bar_code": "9300000000011",
        "unit": "142",
        "qty": "1.5",
        "price": "40.00",
        "total_price": "60.00",
        "country": "601",
    }


def test_delete_is_a_cancel(samples: Path) -> None:
    documents = list(iter_messages((samples / "order_311_modify_delete.xml").read_bytes()))
    assert [(d["op"], d["revision"]) for d in documents] == [
        ("upsert", 20250315110000),
        ("cancel", 20250315120000),
    ]


def test_other_document_types(samples: Path) -> None:
    (payment, _) = iter_messages((samples / "payment_411.xml").read_bytes())
    assert payment["doc_type"] == "payment"
    assert payment["pay_time"] == "2025-03-15 10:31:05"
    assert "items" not in payment and "app_time" not in payment
    waybills = list(iter_messages((samples / "waybill_511.xml").read_bytes()))
    assert [w["doc_type"] for w in waybills] == ["waybill", "waybill"]
    assert waybills[1]["order_no"] is None
    (inventory,) = iter_messages((samples / "inventory_621.xml").read_bytes())
    assert (inventory["doc_type"], inventory["trade_mode"]) == ("inventory", "9610")


def test_gbk_message(samples: Path) -> None:
    (order,) = iter_messages((samples / "order_311_gbk.xml").read_bytes())
    assert order["consignee"] == "陈静"


def test_bad_time_gives_revision_zero(ceb: SimpleNamespace) -> None:
    (order,) = iter_messages(ceb.message(ceb.order_document(appTime="soon")))
    assert (order["revision"], order["app_time"]) == (0, None)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda data: data[:-20],
        lambda data: data.replace(b"chinaport.gov.cn", b"example.com"),
        lambda data: data.replace(b"<ceb:OrderHead>", b"<ceb:Other>").replace(
            b"</ceb:OrderHead>", b"</ceb:Other>"
        ),
    ],
    ids=["malformed", "namespace", "no-head"],
)
def test_unusable_message_raises_before_yielding(ceb: SimpleNamespace, mutate) -> None:  # type: ignore[no-untyped-def]
    data = mutate(ceb.message(ceb.order_document() + ceb.order_document(orderNo="T2")))
    documents = iter_messages(data)
    with pytest.raises(InputError, match="CEB"):
        next(documents)


def test_every_sample_document_is_accepted_by_the_streaming_layer(samples: Path) -> None:
    from matchcore.stream.messages import from_mapping

    kinds = []
    for path in sorted(samples.glob("*.xml")):
        for document in iter_messages(path.read_bytes()):
            message = from_mapping(document)
            kinds.append(type(message).__name__)
            assert message.revision == document["revision"]
    assert kinds.count("Order") == 8 and kinds.count("Payment") == 2
    assert kinds.count("Waybill") == 2 and kinds.count("Inventory") == 1


def test_line_number_that_is_not_an_integer_stays_text(ceb: SimpleNamespace) -> None:
    doc = ceb.order_document().replace("<ceb:gnum>1</ceb:gnum>", "<ceb:gnum>1a</ceb:gnum>")
    (order,) = iter_messages(ceb.message(doc))
    assert order["items"][0]["gnum"] == "1a"
