"""Message decoding: strict types, amounts, keys, required fields, times (SPEC §5)."""

from __future__ import annotations

import msgspec
import polars as pl
import pytest

from matchcore.normalise import normalise_table
from matchcore.schema import PAYMENTS
from matchcore.stream.matcher import decode_bytes
from matchcore.stream.messages import (
    BadMessage,
    Order,
    Payment,
    canonical_code,
    canonical_id_number,
    decode_json,
    decode_msgpack,
    encode_message,
    from_mapping,
    order_key_of,
)


def _payment(**changes):
    message = {
        "doc_type": "payment",
        "pay_code": "PAY001",
        "pay_transaction_id": "T1",
        "order_no": "O1",
        "ebp_code": "EBP001",
        "payer_id_number": "11010519491231002X",
        "payer_name": "Li Lei",
        "amount_paid": "120.01",
        "pay_time": "2024-03-01T10:05:00+08:00",
    }
    message.update(changes)
    return {k: v for k, v in message.items() if v is not None}


def test_json_and_msgpack_decode_to_the_same_message(kit):
    data = kit.order_msg("O1")
    from_json = decode_json(msgspec.json.encode(data))
    from_msgpack = decode_msgpack(msgspec.msgpack.encode(data))
    assert isinstance(from_json, Order) and from_json == from_msgpack
    assert from_json.items[0].total_price == "100" and from_json.key() == ("EBP001", "O1")
    assert decode_msgpack(encode_message(from_json)) == from_json


@pytest.mark.parametrize(
    ("amount", "text"), [(120, "120"), (12.5, "12.50"), ("1.50000", "1.50000")]
)
def test_numeric_amounts_become_text(amount, text):
    assert decode_json(msgspec.json.encode(_payment(amount_paid=amount))).amount_paid == text


def test_float_amounts_mean_what_they_mean_in_batch():
    floats = [12.5, 0.00005, 0.00015, 2.675, 1e-9, 1234.56785]
    texts = [decode_json(msgspec.json.encode(_payment(amount_paid=v))).amount_paid for v in floats]
    as_floats, _ = normalise_table(_payments_frame(pl.Series(floats)), PAYMENTS)
    as_texts, _ = normalise_table(_payments_frame(pl.Series(texts)), PAYMENTS)
    assert as_texts["amount_paid"].to_list() == as_floats["amount_paid"].to_list()


def _payments_frame(amounts: pl.Series) -> pl.DataFrame:
    row = _payment()
    return pl.DataFrame(
        {name: [row[name]] * len(amounts) for name in row if name != "doc_type"}
    ).with_columns(amount_paid=amounts)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"amount_paid": "-1"}, "invalid amount"),
        ({"amount_paid": -0.5}, "invalid amount"),
        ({"amount_paid": "1.23456"}, "invalid amount"),
        ({"amount_paid": "1e3"}, "invalid amount"),
        ({"amount_paid": "\u0661\u0662"}, "invalid amount"),  # digits other than ASCII
        ({"amount_paid": True}, "schema"),
        ({"pay_code": None}, "missing key"),
        ({"pay_code": "   "}, "missing key"),
        ({"payer_name": None}, "required field payer_name"),
        ({"pay_time": "2024-02-30 10:00:00"}, "not a valid time"),
        ({"doc_type": "invoice"}, "schema"),
        ({"revision": "2"}, "schema"),
        ({"op": "delete"}, "schema"),
    ],
)
def test_bad_messages_are_refused_with_a_reason(changes, reason):
    raw = msgspec.json.encode(_payment(**changes))
    with pytest.raises(BadMessage, match=reason) as caught:
        decode_json(raw)
    assert "Li Lei" not in caught.value.reason and "11010519491231002X" not in caught.value.reason


def test_undecodable_bytes_are_refused():
    for raw in (b"{not json", b"plain text", b"\x93\x01\x02\x03", b""):
        with pytest.raises(BadMessage):
            decode_bytes(raw)


def test_a_cancel_needs_only_the_key():
    message = decode_json(
        b'{"doc_type": "payment", "op": "cancel", "revision": 3,'
        b' "pay_code": "PAY001", "pay_transaction_id": "T1"}'
    )
    assert isinstance(message, Payment) and (message.op, message.revision) == ("cancel", 3)


def test_item_lines_are_checked(kit):
    data = kit.order_msg("O1")
    del data["items"][0]["price"]
    with pytest.raises(BadMessage, match=r"items\[0\]: required field price"):
        from_mapping(data)


def test_keys_compare_like_the_normaliser():
    assert canonical_code("  A\u3000 B  ") == "A B"  # NFKC turns the ideographic space into " "
    assert canonical_code("ＡＢ１") == "AB1"
    assert canonical_code(" \t ") is None
    assert canonical_id_number("11010519491231002x") == "11010519491231002X"


def test_waybill_links_by_its_own_key_or_not_at_all():
    base = {
        "doc_type": "waybill",
        "logistics_code": "L",
        "logistics_no": "1",
        "consignee": "c",
        "app_time": "2024-03-01 10:00:00",
    }
    assert order_key_of(from_mapping(base)) is None
    assert order_key_of(from_mapping(dict(base, order_no="O1", ebp_code="E"))) == ("E", "O1")
    assert order_key_of(from_mapping(dict(base, order_no="O1"))) == ("", "")
