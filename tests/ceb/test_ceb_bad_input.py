"""Bad CEB input becomes rejects naming file, message, element and problem; the rest goes on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from matchcore.exceptions import InputError
from matchcore.io.ceb import parser, read_ceb

Writer = Callable[[str, bytes], Path]


def _good(ceb: SimpleNamespace) -> bytes:
    return ceb.message(ceb.order_document(orderNo="GOOD1"), guid="MSG-GOOD")


def test_malformed_file_is_rejected_whole_and_others_are_read(
    ceb: SimpleNamespace, write_message: Writer
) -> None:
    broken = ceb.message(ceb.order_document(orderNo="LOST1"), guid="MSG-BROKEN")[:-40]
    bad = write_message("a_broken.xml", broken)
    write_message("b_good.xml", _good(ceb))
    data = read_ceb(bad.parent)
    assert data.tables["orders"]["order_no"].to_list() == ["GOOD1"]
    assert data.tables["order_items"]["order_no"].to_list() == ["GOOD1"]
    assert data.rejects.height == 1
    reject = data.rejects.row(0, named=True)
    assert reject["file"] == str(bad)
    assert reject["table"] == "orders"
    assert "MSG-BROKEN" in reject["message"]
    assert "malformed XML" in reject["message"]
    assert data.notes["messages_rejected"] == 1


def test_wrong_namespace_is_rejected(ceb: SimpleNamespace) -> None:
    data = read_ceb(ceb.message(ceb.order_document(), namespace="http://example.com/other"))
    assert data.tables["orders"].height == 0
    (text,) = data.rejects["message"].to_list()
    assert "http://example.com/other" in text
    assert "http://www.chinaport.gov.cn/ceb" in text


def test_unknown_message_type_is_rejected(ceb: SimpleNamespace) -> None:
    data = read_ceb(ceb.message(ceb.order_document(), root="CEB999Message"))
    (text,) = data.rejects["message"].to_list()
    assert "CEB999Message" in text


def test_document_in_another_namespace_is_rejected(ceb: SimpleNamespace) -> None:
    stray = '<Order xmlns="urn:x"><OrderHead><orderNo>X</orderNo></OrderHead></Order>'
    data = read_ceb(ceb.message(stray + ceb.order_document()))
    assert data.tables["orders"]["order_no"].to_list() == ["T0001"]
    (reject,) = data.rejects.to_dicts()
    assert reject["column"] == "Order"
    assert "urn:x" in reject["message"]


def test_message_without_documents_is_reported(ceb: SimpleNamespace) -> None:
    data = read_ceb(ceb.message("", guid="MSG-EMPTY"))
    (reject,) = data.rejects.to_dicts()
    assert "MSG-EMPTY" in reject["message"]
    assert "no Order" in reject["message"]


def test_lines_before_any_head_are_reported(ceb: SimpleNamespace) -> None:
    line = f"<ceb:OrderList>{ceb.elements(ceb.LINE_FIELDS)}</ceb:OrderList>"
    data = read_ceb(ceb.message(f"<ceb:Order>{line}</ceb:Order>"))
    reasons = data.rejects["message"].to_list()
    assert any("OrderList before any OrderHead" in r for r in reasons)
    assert data.tables["order_items"].height == 0


def test_missing_required_element_rejects_that_document_only(ceb: SimpleNamespace) -> None:
    docs = ceb.order_document(orderNo=None, guid="DOC-NO-ORDER") + ceb.order_document(
        orderNo="T0002"
    )
    data = read_ceb(ceb.message(docs, guid="MSG-7"))
    assert data.tables["orders"]["order_no"].to_list() == ["T0002"]
    assert data.tables["order_items"]["order_no"].to_list() == ["T0002"]
    (reject,) = data.rejects.to_dicts()
    assert (reject["table"], reject["row"], reject["column"]) == ("orders", 1, "orderNo")
    assert reject["value"] is None
    assert "MSG-7" in reject["message"] and "DOC-NO-ORDER" in reject["message"]
    assert "required element is missing" in reject["message"]


def test_blank_required_element_counts_as_missing(ceb: SimpleNamespace) -> None:
    data = read_ceb(ceb.message(ceb.order_document(consignee="   ")))
    assert data.tables["orders"].height == 0
    assert data.rejects["column"].to_list() == ["consignee"]


@pytest.mark.parametrize(
    ("element", "value", "problem"),
    [
        ("goodsValue", "12,5", "not a decimal number"),
        ("acturalPaid", "1e3", "not a decimal number"),
        ("appTime", "2025-04-01", "not a time yyyyMMddHHmmss"),
        ("appTime", "20250231100000", "not a time yyyyMMddHHmmss"),
        ("appTime", "00000101000000", "not a time yyyyMMddHHmmss"),  # years are 1-9999
        ("appType", "7", "must be 1, 2 or 3"),
    ],
)
def test_bad_values_are_rejected_with_element_and_value(
    ceb: SimpleNamespace, element: str, value: str, problem: str
) -> None:
    data = read_ceb(ceb.message(ceb.order_document(**{element: value})))
    assert data.tables["orders"].height == 0
    (reject,) = data.rejects.to_dicts()
    assert (reject["column"], reject["value"]) == (element, value)
    assert problem in reject["message"]


def test_missing_app_type_is_rejected(ceb: SimpleNamespace) -> None:
    data = read_ceb(ceb.message(ceb.order_document(appType=None)))
    assert data.rejects["column"].to_list() == ["appType"]


def test_bad_line_number_rejects_the_line_not_the_order(ceb: SimpleNamespace) -> None:
    line = {**ceb.LINE_FIELDS, "gnum": "2", "qty": "two"}
    bad_line = f"<ceb:OrderList>{ceb.elements(line)}</ceb:OrderList>"
    doc = ceb.order_document(lines=1).replace("</ceb:Order>", bad_line + "</ceb:Order>")
    data = read_ceb(ceb.message(doc))
    assert data.tables["orders"].height == 1
    assert data.tables["order_items"]["gnum"].to_list() == ["1"]
    (reject,) = data.rejects.to_dicts()
    assert (reject["table"], reject["column"], reject["value"]) == ("order_items", "qty", "two")
    assert "OrderList #2" in reject["message"]


def test_bad_payment_time_is_rejected(ceb: SimpleNamespace) -> None:
    message = ceb.message(ceb.payment_document(payTime="yesterday"), root="CEB411Message")
    data = read_ceb(message)
    assert data.tables["payments"].height == 0
    assert data.rejects.select("table", "column", "value").rows() == [
        ("payments", "payTime", "yesterday")
    ]


def test_rejects_never_show_identity_values(ceb: SimpleNamespace) -> None:
    doc = ceb.order_document(orderNo=None, goodsValue="x")
    data = read_ceb(ceb.message(doc))
    assert data.rejects.height == 2
    for column in ("value", "message"):
        for text in data.rejects[column].drop_nulls().to_list():
            assert "110105199003071239" not in text and "张三" not in text


def test_streaming_parse_gives_the_same_documents_and_rejects(
    ceb: SimpleNamespace, write_message: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = "".join(ceb.order_document(orderNo=f"S{n}", lines=2) for n in range(5))
    good = write_message("a.xml", ceb.message(docs))
    write_message("b.xml", ceb.message(ceb.order_document(orderNo="LOST"))[:-30])
    whole = read_ceb(good.parent)
    monkeypatch.setattr(parser, "WHOLE_PARSE_LIMIT", 0)
    streamed = read_ceb(good.parent)
    for name in ("orders", "order_items"):
        assert streamed.tables[name].equals(whole.tables[name])
    assert streamed.tables["orders"]["order_no"].to_list() == [f"S{n}" for n in range(5)]
    assert streamed.rejects.height == 1
    assert "malformed XML" in streamed.rejects["message"][0]
    assert "MSG-1" in streamed.rejects["message"][0]


def test_missing_path_raises_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_ceb(tmp_path / "nowhere")


def test_corrupt_zip_raises_input_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.zip"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match="zip"):
        read_ceb(path)


def test_unsupported_source_type_raises_input_error() -> None:
    with pytest.raises(InputError, match="path or bytes"):
        read_ceb(42)  # type: ignore[arg-type]


def test_rejects_of_unknown_messages_reach_the_sources(ceb: SimpleNamespace) -> None:
    data = read_ceb(ceb.message("", root="CEB999Message"))
    sources = data.sources()
    assert sources["orders"].rejects.height == 1
    assert sum(source.rejects.height for source in sources.values()) == 1


def test_rejected_inventory_message_still_turns_inventory_rules_on(
    ceb: SimpleNamespace, write_message: Writer
) -> None:
    write_message("o.xml", ceb.message(ceb.order_document()))
    broken = write_message("i.xml", ceb.message("<ceb:Inventory>", root="CEB621Message"))
    data = read_ceb(broken.parent)
    assert data.tables["inventories"].height == 0
    assert data.sources()["inventories"].rejects["file"].to_list() == [str(broken)]
