"""The compiled intake (src_ext/intake.pyx) against its Python twins.

Every compiled converter and check handles the common forms of values itself and hands the rest
to the Python function it twins; on random and edge values (unicode, full-width digits, white
space, signs, exponents, many places, overflow, odd time offsets, midnight in China, leap days)
both give the same value, or fail the same way. Whole messages decode to the same message, or
are refused with the same reason, as when msgspec checked amount text itself.
"""

from __future__ import annotations

import dataclasses
import sys
import zlib
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from matchcore import schema
from matchcore.stream import canonical, matcher, messages, state
from matchcore.stream.canonical import RowMaker
from matchcore.stream.matcher import References
from matchcore.stream.messages import BadMessage

from .conftest import (
    BUYER_IDS,
    complete_set,
    inventory_msg,
    order_msg,
    payment_msg,
    waybill_msg,
)

intake: Any
try:
    from matchcore._native import intake
except ImportError:  # not built: the Python twins are all there is (messages are still tested)
    intake = None
compiled = pytest.mark.skipif(intake is None, reason="the intake extension is not built")


def _outcome(function: Any, value: Any) -> tuple[str, Any]:
    """What a call gives: its value, or the type and message of what it raises."""
    try:
        return ("value", function(value))
    except Exception as exc:  # noqa: BLE001 - any difference at all is a failure
        return (type(exc).__name__, str(exc))


def _same(compiled: Any, python: Any, value: Any) -> None:
    assert _outcome(compiled, value) == _outcome(python, value), repr(value)


# --- text ------------------------------------------------------------------------------------

_CHARACTERS = [
    "a", "Z", "x", "0", "-", " ", "  ", "\t", "\n", "\r", "\x0b", "\x1c", "\x1f", "\x85", "\xa0",
    "\u3000", "\u2003", "\u200b", "李", "雷", "\u4dff", "\u4e00", "\u9fff", "\ua000", "Ａ", "ｂ",
    "１", "①", "ﬁ", "x\u0301", "é", "\U0001f600", "\ud800",
]  # fmt: skip
texts = st.one_of(
    st.lists(st.sampled_from(_CHARACTERS), max_size=8).map("".join),
    st.text(max_size=10),
)


@compiled
@settings(max_examples=500, deadline=None)
@given(texts)
@example("  Li\u3000 Lei\t")
@example(" \u2003 ")
@example("")
@example("   ")
def test_text(value: str) -> None:
    _same(canonical.clean_text, canonical.python_clean_text, value)


@compiled
@settings(max_examples=300, deadline=None)
@given(texts)
@example(" 11010519491231002x ")
@example("ab李")
def test_id_numbers(value: str) -> None:
    column = dataclasses.replace(schema.PAYMENTS.column("payer_id_number"), required=False)
    other = dataclasses.replace(column, name="other")
    maker = RowMaker(schema.Table("ids", (column, other), key=(), unique=False))
    source = SimpleNamespace(payer_id_number=value, other=value)
    assert maker.row(source) == maker.python_row(source)
    _same(canonical.id_number, canonical.python_id_number, value)


# --- amounts ---------------------------------------------------------------------------------

_DIGITS = st.text("0123456789", max_size=20)
amount_texts = st.one_of(
    st.builds(
        lambda space, sign, whole, point, fraction, tail, end: (
            f"{space}{sign}{whole}{point}{fraction}{tail}{end}"
        ),
        st.sampled_from(["", "", " ", "\u3000", "\t"]),
        st.sampled_from(["", "", "+", "-"]),
        _DIGITS,
        st.sampled_from(["", ".", ".", ","]),
        st.text("0123456789", max_size=10),
        st.sampled_from(["", "", "", "e3", "E-2", "0000", "x", "１"]),
        st.sampled_from(["", "", " ", "\x1c", "\n"]),
    ),
    st.text("0123456789.+-e ", max_size=12),
    st.text(max_size=6),
)
_AMOUNT_EDGES = [
    "0", "-0", "-0.00", "+5", "007.50", ".5", "5.", ".", "", "1.23450", "1.23456",
    "1.00000", "99999999999999.9999", "100000000000000", "922337203685477.5807",
    "922337203685477.5808", "9223372036854775807", "00000000000000000000001",
    "0.00000000", "１２", "\u0661", "12\x1c", "\u300012", "1e3", "596.3000", "0.1700", "00.0000",
    "00000000000001.0500", "100000000000000.0000", "1.2x00", "12.34\x00",
]  # fmt: skip


@compiled
@settings(max_examples=1000, deadline=None)
@given(amount_texts)
def test_amounts(value: str) -> None:
    _same(canonical.units, canonical.python_units, value)


@compiled
@pytest.mark.parametrize("value", _AMOUNT_EDGES)
def test_amount_edges(value: str) -> None:
    _same(canonical.units, canonical.python_units, value)
    money_text = intake.Converter(intake.MONEY_TEXT, messages._money_text)
    _same(money_text, messages._money_text, value)


@compiled
@settings(max_examples=1000, deadline=None)
@given(amount_texts)
def test_amount_text_check(value: str) -> None:
    _same(intake.Converter(intake.MONEY_TEXT, messages._money_text), messages._money_text, value)


# --- times -----------------------------------------------------------------------------------

_ZONES = st.one_of(
    st.sampled_from(["", "", "Z", "z", "+08:00", "+0800", "+08", "-05:30", "+00:00", " +08:00"]),
    st.builds(
        lambda space, sign, hh, colon, mm: f"{space}{sign}{hh:02d}{colon}{mm}",
        st.sampled_from(["", " "]),
        st.sampled_from(["+", "-"]),
        st.integers(0, 99),
        st.sampled_from(["", ":"]),
        st.sampled_from(["", "00", "30", "45", "59", "60", "99"]),
    ),
)
#: Instants near midnight in China (16:00 UTC), leap days, the daylight-saving years before 1992.
_INSTANTS = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.builds(
        lambda day, seconds: datetime(2024, 1, 1) + timedelta(days=day, seconds=seconds),
        st.integers(-20000, 3000),
        st.sampled_from([57599, 57600, 57601, 86399, 0, 28799, 28800]),
    ),
    st.builds(
        lambda year, hour: datetime(year, 2, 28, hour) + timedelta(days=1),
        st.sampled_from([1900, 1988, 1992, 2000, 2023, 2024, 2100]),
        st.integers(0, 23),
    ),
    st.datetimes(min_value=datetime(1985, 1, 1), max_value=datetime(1993, 1, 1)),
)


@st.composite
def time_texts(draw: Any) -> str:
    instant = draw(_INSTANTS)
    form = draw(st.sampled_from(["iso", "iso", "iso", "customs", "date", "customs-date"]))
    if form == "customs":
        return instant.strftime("%Y%m%d%H%M%S")
    if form == "customs-date":
        return instant.strftime("%Y%m%d")
    date = f"{instant.year:04d}-{instant.month:02d}-{instant.day:02d}"
    if form == "date":
        return date + draw(st.sampled_from(["", "", "Z", " +08:00"]))
    sep = draw(st.sampled_from(["T", " ", "t"]))
    clock = f"{instant.hour:02d}:{instant.minute:02d}"
    if draw(st.booleans()):
        clock += f":{instant.second:02d}"
        places = draw(st.integers(0, 10))
        if places:
            digits = f"{instant.microsecond:06d}{draw(st.integers(0, 999)):03d}0"[:places]
            clock += draw(st.sampled_from([".", ","])) + digits
    return date + sep + clock + draw(_ZONES)


_TIME_EDGES = [
    "2024-03-01 10:00:00", "2024-03-01T10:00:00+08:00", "2024-03-01T10:00Z", "20240301103000",
    "20240301", "2024-03-01", "2024-02-30 10:00:00", "1988-04-17 02:30:00",
    "1988-09-11 00:30:00", "2024-03-01 24:00:00", "2024-03-01 10:00:00.1234567",
    "2024-03-01T10:00:00-0530", " 2024-03-01 10:00:00 ", "2024/03/01", "2024-03-01 10:00:00 +08",
    "2024-02-29T23:59:59+08:00", "2023-02-29T00:00:00+08:00", "1900-02-29", "2000-02-29",
    "1991-12-31T23:59:59", "1992-01-01T00:00:00", "9999-12-31T23:00:00-08:00",
    "0001-01-01T00:00:00+01:00", "2024-03-01T10:00:00+99:99", "2024-03-01T10:00:00+08:",
    "2024-03-01T10:00:00+8", "2024-03-01T", "2024-03-01T10", "2024-03-01T10:00:0",
    "20240230103000", "20241301", "2024030112", "2025-05-15T12:10:26+0800", "２０２４-03-01",
    "2025-05-15T12:10:26-08:00", "2024-02-30T10:00:00+0800", "2024-03-01T10:00:00+2400",
    "2024-03-01T10:00:00+08:0x", "2024-03-01T10:00:00+08000", "2024-03-01 10:00:00+0800",
    "1988-04-17T02:30:00+0900", "2024-03-01T24:00:00+0800", "2024-03-01T10:00:00+0860",
]  # fmt: skip


@compiled
@settings(max_examples=1500, deadline=None)
@given(st.one_of(time_texts(), st.text("0123456789-:+TZ .", max_size=26)))
def test_times(value: str) -> None:
    _same(canonical.utc_micros, canonical.python_utc_micros, value)
    _same(intake.Converter(intake.VALID_TIME, messages._valid_time), messages._valid_time, value)


@compiled
@pytest.mark.parametrize("value", _TIME_EDGES)
def test_time_edges(value: str) -> None:
    _same(canonical.utc_micros, canonical.python_utc_micros, value)
    _same(intake.Converter(intake.VALID_TIME, messages._valid_time), messages._valid_time, value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CHINA_MIDNIGHT_2024 = int((datetime(2024, 1, 1, 16, tzinfo=UTC) - _EPOCH).total_seconds())


@compiled
@settings(max_examples=1000, deadline=None)
@given(
    st.one_of(
        st.integers(-(10**17), 2 * 10**17),
        st.builds(
            lambda day, offset: (_CHINA_MIDNIGHT_2024 + 86400 * day) * 10**6 + offset,
            st.integers(-20000, 3000),
            st.sampled_from([-1, 0, 1, -(10**6), 999_999]),
        ),
        st.integers(2**62, 2**63 - 1),
        st.integers(-(2**63), -(2**62)),
    )
)
def test_china_dates(micros: int) -> None:
    _same(canonical.china_dates, canonical.python_china_dates, micros)


# --- rows ------------------------------------------------------------------------------------


def _values(column: schema.Column) -> st.SearchStrategy[Any]:
    if column.kind in (schema.Kind.MONEY, schema.Kind.QTY):
        return st.one_of(st.none(), amount_texts, st.sampled_from(_AMOUNT_EDGES))
    if column.kind is schema.Kind.TIME:
        return st.one_of(st.none(), time_texts(), st.sampled_from(_TIME_EDGES))
    if column.kind is schema.Kind.INT:
        return st.one_of(st.none(), st.integers(-(2**64), 2**64), st.booleans())
    if column.kind is schema.Kind.ENUM:
        return st.one_of(st.none(), texts, st.sampled_from([*column.values, " 9610 ", "１２１０"]))
    return st.one_of(st.none(), texts)


@compiled
@pytest.mark.parametrize(
    "table",
    [schema.ORDERS, schema.ORDER_ITEMS, schema.PAYMENTS, schema.WAYBILLS, schema.INVENTORIES],
    ids=lambda t: t.name,
)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_rows(table: schema.Table, data: Any) -> None:
    """Rows of every column, and rows of the columns the matcher keeps, compiled and not;
    a kept row is the row of every column less the others (and less the document's own key
    and link, which the matcher holds apart), or fails the same way. An order line's order
    key is not the line's: neither maker reads it."""
    kept = matcher._ROWS[table.name]
    source = SimpleNamespace(**{c.name: data.draw(_values(c)) for c in table.columns[kept.given :]})
    every = RowMaker(table, apart=table.column_names[: kept.given], given=kept.given)
    whole = _row_outcome(every, source)
    if whole[0] == "value":
        values = dict(zip(every.held_names, whole[1], strict=True))
        whole = ("value", tuple(values[name] for name in kept.held_names))
    assert _row_outcome(kept, source) == whole


def _row_outcome(maker: RowMaker, source: Any) -> tuple[str, Any]:
    """A maker's row of `source` (or its failure), the same compiled and in Python."""
    outcome = _outcome(maker.row, source)
    assert outcome == _outcome(maker.python_row, source)
    return outcome


# --- messages --------------------------------------------------------------------------------

_BASE: dict[str, dict[str, Any]] = {
    "order": {
        "doc_type": "order",
        "order_no": "O1",
        "ebp_code": "EBP001",
        "ebc_code": "EBC001",
        "goods_value": "100",
        "freight": "0",
        "tax_total": "0",
        "actual_paid": "100",
        "buyer_id_number": "11010519491231002X",
        "buyer_name": "Li Lei",
        "consignee": "Li Lei",
        "app_time": "2024-03-01T10:00:00+08:00",
        "items": [
            {"gnum": 1, "item_no": "SKU1", "qty": "1", "price": "100", "total_price": "100"},
            {"gnum": 2, "item_no": "SKU2", "qty": "2", "price": "0", "total_price": "0"},
        ],
    },
    "payment": {
        **payment_msg("O1", tx="T1"),
        "pay_time": "2024-03-01T10:05:00+08:00",  # the compiled time path's common form
    },
    "waybill": {
        "doc_type": "waybill",
        "logistics_code": "L",
        "logistics_no": "1",
        "freight": "5",
        "weight": "1.5",
        "consignee": "c",
        "app_time": "20240301100000",
    },
    "inventory": {
        "doc_type": "inventory",
        "order_no": "O1",
        "ebp_code": "EBP001",
        "ebc_code": "EBC001",
        "logistics_code": "L",
        "logistics_no": "1",
        "agent_code": "A",
        "trade_mode": "9610",
        "buyer_id_number": "11010519491231002X",
        "app_time": "2024-03-01 10:00:00",
    },
}
_FIELD_VALUES = st.one_of(
    st.sampled_from([None, "", "   ", "\x1c", "\u3000", "x", True, [], {}, -1, 0, 7, 10**14]),
    st.sampled_from([0.5, -0.5, 12.345678, 1e14, "cancel", "upsert", "delete", 3]),
    st.sampled_from(_AMOUNT_EDGES),
    st.sampled_from(_TIME_EDGES),
    amount_texts,
)


@st.composite
def mutated_messages(draw: Any) -> dict[str, Any]:
    """A valid message with one to three fields (of it or of a line) changed or removed."""
    message = msgspec.json.decode(msgspec.json.encode(draw(st.sampled_from(list(_BASE.values())))))
    for _ in range(draw(st.integers(1, 3))):
        holder = message
        lines = message.get("items")
        if isinstance(lines, list) and len(lines) == 2 and draw(st.booleans()):
            holder = lines[draw(st.integers(0, 1))]
        name = draw(st.sampled_from([*holder, "op", "revision"]))
        value = draw(_FIELD_VALUES)
        if value is None:
            holder.pop(name, None)
        else:
            holder[name] = value
    return message


def _reference(raw: Any, decode: Any, kind: str) -> tuple[str, Any]:
    """How the message fared when msgspec checked amount text while decoding (the `_STRICT`
    twins), then the Python checks."""
    try:
        message = decode(raw)
    except msgspec.MsgspecError as exc:
        return ("bad", messages._validation_reason(exc, kind))
    try:
        return ("ok", msgspec.json.encode(messages.check_message(message)))
    except BadMessage as exc:
        return ("bad", exc.reason)


def _decoded(raw: Any, decode: Any) -> tuple[str, Any]:
    try:
        return ("ok", msgspec.json.encode(decode(raw)))
    except BadMessage as exc:
        return ("bad", exc.reason)


@settings(max_examples=1500, deadline=None)
@given(mutated_messages())
def test_messages_fare_as_with_strict_decoding(data: dict[str, Any]) -> None:
    as_json = msgspec.json.encode(data)
    assert _decoded(as_json, messages.decode_json) == _reference(
        as_json, messages._STRICT_JSON.decode, "JSON"
    )
    as_msgpack = msgspec.msgpack.encode(data)
    assert _decoded(as_msgpack, messages.decode_msgpack) == _reference(
        as_msgpack, messages._STRICT_MSGPACK.decode, "MessagePack"
    )
    assert _decoded(data, messages.from_mapping) == _reference(
        data, messages._strict_convert, "mapping"
    )


def _kept(intake: Any, message: Any) -> tuple[Any, ...]:
    """What an intake keeps of a message: its key, then its link and packed rows (or what
    converting raised)."""
    return (intake.key(message), _outcome(intake.keep, message))


def is_interned(text: str) -> bool:
    """Whether `text` is the interned copy of its text (a copy of it interned is `text`)."""
    return sys.intern("".join(list(text))) is text


def shared_as_kept(value: Any) -> bool:
    """A key's or link's company code, or a buyer's ID number, is the interned copy (see
    `matcher._shared_key`; a document's number, a key's second part, need not be)."""
    if isinstance(value, tuple):
        return is_interned(value[0])
    return value is None or is_interned(value)


_REPEATED_LINE = {
    **_BASE["order"],
    "items": [{**line, "gnum": 1} for line in _BASE["order"]["items"]],
}


@compiled
@settings(max_examples=1000, deadline=None)
@given(mutated_messages())
@example(_REPEATED_LINE)
@example({**_BASE["payment"], "ebp_code": " "})
@example({**_BASE["inventory"], "logistics_no": None})
def test_document_intake(data: dict[str, Any]) -> None:
    """The compiled intake keeps of a document what the Python one does, checked or not (an
    unchecked message has values that do not convert)."""
    try:
        message = messages._convert(data)
    except msgspec.MsgspecError:
        return
    kind = messages.message_type(message)
    compiled_intake = matcher._compiled_intake(kind, type(message))
    kept = _kept(compiled_intake, message)
    assert kept == _kept(matcher._DocumentIntake(kind), message)
    assert shared_as_kept(kept[0])
    if kept[1][0] == "value":
        assert shared_as_kept(kept[1][1][0])


def test_amount_fields_are_the_declared_ones() -> None:
    """`AMOUNTS` names exactly the `Amount` fields: the strict twins check those."""
    for cls in (messages.Item, messages.Order, messages.Payment, messages.Waybill):
        amounts = {f.name for f in msgspec.structs.fields(cls) if f.type == messages.Amount | None}
        assert amounts == set(cls.AMOUNTS)
    assert not messages.Inventory.AMOUNTS


# --- log records -----------------------------------------------------------------------------

_EDGE_INTEGERS = [0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**63]
_EDGE_INTEGERS += [-1, -32, -33, -128, -129, -(2**15), -(2**15) - 1, -(2**31), -(2**31) - 1]


@compiled
@settings(max_examples=500, deadline=None)
@given(
    st.binary(max_size=100) | st.binary(min_size=80, max_size=600),
    st.integers(0, 2**32 - 1),
    st.integers(0, 15),
)
def test_log_checksums(data: bytes, start: int, skip: int) -> None:
    """The compiled CRC-32 is zlib's, from any start (every length, every alignment; from 64
    bytes on, the carry-less multiplication path where the CPU has it), and so is the table
    path alone, which is all a CPU without PCLMULQDQ runs."""
    expected = zlib.crc32(data[skip:], start)
    assert intake.crc32_of(data[skip:], start) == expected
    assert intake.crc32_of(data[skip:], start, fold=False) == expected


@compiled
def test_log_checksums_every_length() -> None:
    """Every length up to 1,100 bytes (each tail after the 16-byte blocks, each count of
    64-byte blocks), on data whose bits are all used."""
    data = bytes(range(256)) * 5
    for length in range(1100):
        expected = zlib.crc32(data[:length], length)
        assert intake.crc32_of(data[:length], length) == expected
        assert intake.crc32_of(data[:length], length, fold=False) == expected


@compiled
@settings(max_examples=1000, deadline=None)
@given(
    now=st.one_of(st.floats(), st.integers(0, 2**40), st.sampled_from([0.0, -0.0, 1.5e9])),
    position=st.one_of(
        st.none(), st.integers(-(2**63), 2**64 - 1), st.sampled_from(_EDGE_INTEGERS)
    ),
    raw=st.one_of(
        st.binary(max_size=300), st.sampled_from([255, 256, 65535, 65536]).map(b"m".__mul__)
    ),
)
def test_input_records(now: float, position: int | None, raw: bytes) -> None:
    """The compiled INPUT record is byte for byte the one msgspec and `encode_record` make
    (old logs replay, and new ones read as before)."""
    python = state.python_input_record(state.INPUT, now, position, raw)
    buffer = intake.LogBuffer()
    buffer.input(state.INPUT, state.python_input_record, now, position, raw)
    buffer.input(state.INPUT, state.python_input_record, now, position, raw)
    assert bytes(buffer) == python * 2  # framed in place, one after the other
    assert state.read_records(python) == ([(state.INPUT, python[9:])], len(python))


# --- the usual message in one call: decoded, then taken into the matcher's state ----------------


@compiled
@settings(max_examples=500, deadline=None)
@given(mutated_messages(), st.sampled_from(["", " ", "\n\t "]), st.booleans())
@example(_BASE["order"], "", True)
@example(_BASE["payment"], " ", False)
def test_message_decoder(data: dict[str, Any], space: str, as_json: bool) -> None:
    """The compiled decoder gives the message `decode_bytes` gives, or leaves it to Python."""
    raw = space.encode() + (msgspec.json.encode(data) if as_json else msgspec.msgpack.encode(data))
    assert messages.decode_checked is not None
    fast = messages.decode_checked(raw)
    python = _decoded(raw, _python_decode_bytes)
    if fast is not None:
        assert ("ok", msgspec.json.encode(fast)) == python
    assert _decoded(raw, matcher.decode_bytes) == python


def _python_decode_bytes(raw: bytes) -> Any:
    """`decode_bytes` without the compiled decoder."""
    saved, matcher.decode_checked = matcher.decode_checked, None
    try:
        return matcher.decode_bytes(raw)
    finally:
        matcher.decode_checked = saved


def test_undecodable_bytes_are_left_to_python() -> None:
    for raw in (b"", b"   ", b"[1]", b"\x92\x01\x02", b"{not json", b"\x81\xa1a\x01"):
        assert messages.decode_checked is None or messages.decode_checked(raw) is None, raw
        with pytest.raises(BadMessage):
            matcher.decode_bytes(raw)


_ORDER_NOS = ["O1", "O2", "O3", " O1 "]  # " O1 " is O1 once canonical


@st.composite
def stream_messages(draw: Any) -> dict[str, Any]:
    """A document of a few orders: new, again, newer, older, cancelled, with odd links or a
    value that does not convert."""
    kind = draw(st.sampled_from(["order", "payment", "waybill", "inventory"]))
    order_no = draw(st.sampled_from(_ORDER_NOS))
    buyer = draw(st.sampled_from([*BUYER_IDS, " 11010519491231002x", None]))
    if kind == "order":
        message = order_msg(
            order_no, buyer=buyer or "", item_no=draw(st.sampled_from(["SKU1", "SKU2"]))
        )
        if buyer is None:
            del message["buyer_id_number"]
    elif kind == "payment":
        message = payment_msg(order_no, tx=draw(st.sampled_from(["T1", "T2", None])))
    elif kind == "waybill":
        message = waybill_msg(order_no)
        message["logistics_no"] = draw(st.sampled_from(["L1", "L2", f"L-{order_no}"]))
    else:
        message = inventory_msg(order_no, buyer=buyer or BUYER_IDS[0])
    if kind in ("payment", "waybill"):  # linked by a whole order key, half of one, or none
        link = draw(st.sampled_from(["whole", "whole", "half", "none"]))
        if link != "whole":
            del message["ebp_code"]
        if link == "none":
            del message["order_no"]
    if draw(st.integers(0, 9)) == 0:  # a value a batch would reject
        message["app_time" if kind != "payment" else "pay_time"] = "2024-02-30 10:00:00"
    message["revision"] = draw(st.integers(0, 2))
    message["op"] = draw(st.sampled_from(["upsert", "upsert", "upsert", "cancel"]))
    return message


class _Counted:
    """A matcher's compiled path, counting the messages it took."""

    def __init__(self, new_upserts: Any) -> None:
        self.new_upserts, self.taken = new_upserts, 0

    def apply(self, matcher: Any, message: Any, now: float) -> Any:
        result = self.new_upserts.apply(matcher, message, now)
        self.taken += result is not None
        return result


def _state(stream: Any) -> tuple[Any, ...]:
    """Everything the matcher keeps between flushes, in a comparable form."""
    indexes = (stream._inventory_orders, stream._buyer_orders)
    deadlines = stream._deadlines
    return (
        stream.snapshot(),  # documents, slots, dirty orders and buyers, counters
        [index._members for index in indexes],
        [(key, slot.payments, slot.waybills) for key, slot in stream._slots.items()],
        (list(deadlines._chunks), deadlines._tail, deadlines._head),
        (deadlines._late, deadlines._newest),
        list(stream._dirty),
        stream._dirty_since,
    )


@compiled
def test_compiled_intake_holds_many_links_as_python_does(references: References) -> None:
    """Past `_Index.LIST_MAX` links of one order (payments, waybills) or buyer (orders), the
    compiled intake holds them as Python does, a tuple then a set, and Python takes them away
    (cancels, a payment moved to another order) the same from either."""
    python = matcher.StreamMatcher(references, engine="reference", clock=lambda: 0.0)
    python._new_upserts = None
    fast = matcher.StreamMatcher(references, engine="reference", clock=lambda: 0.0)
    many = range(matcher._Index.LIST_MAX + 2)
    waybills = [waybill_msg("O1") for _ in many]
    for n, waybill in enumerate(waybills):
        waybill["logistics_no"] = f"L{n}"
    documents = [
        *(order_msg(f"O{n}") for n in many),  # one buyer's
        *(payment_msg("O1", tx=f"T{n}") for n in many),
        *waybills,
        *(payment_msg("O1", tx=f"T{n}", revision=1, op="cancel") for n in many[2:]),
        payment_msg("O2", tx="T1", revision=1),  # moved: O1 keeps one
    ]
    for message in documents:
        raw = msgspec.json.encode(message)
        assert fast.feed(raw, now=1.0) == python.feed(raw, now=1.0)
        assert _state(fast) == _state(python)
    slot = fast._slots[("EBP001", "O1")]
    assert type(slot.waybills) is set and slot.payments == ("PAY001", "T0")
    fast.flush(2.0)
    python.flush(2.0)
    assert fast.drain() == python.drain()


@compiled
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(stream_messages(), st.sampled_from([0.0, 1.0, 1.0, -5.0])), max_size=25))
def test_compiled_and_python_intake_keep_the_same_state(
    references: References, documents: list[tuple[dict[str, Any], float]]
) -> None:
    """A stream taken in with the compiled path (new upserts in one call) and in Python alone
    gives the same results, documents, indexes, slots, deadlines, dirty orders and counters,
    and the same verdicts when flushed."""
    python = matcher.StreamMatcher(references, engine="reference", clock=lambda: 0.0)
    python._new_upserts = None
    fast = matcher.StreamMatcher(references, engine="reference", clock=lambda: 0.0)
    now = 1000.0
    for message, step in documents:
        now += step  # the clock may go back: a slot's deadline then waits in the heap
        raw = msgspec.json.encode(message)
        assert fast.feed(raw, now=now) == python.feed(raw, now=now)
        assert _state(fast) == _state(python)
    fast.flush(now)
    python.flush(now)
    assert fast.drain() == python.drain()
    assert _state(fast) == _state(python)


@compiled
@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(BUYER_IDS), st.integers(0, 40)), max_size=45))
def test_compiled_and_python_intake_index_many_orders_of_a_buyer_the_same(
    references: References, orders: list[tuple[str, int]]
) -> None:
    """A buyer's orders are indexed alike by the compiled path and in Python: one, a tuple of
    up to `_Index.LIST_MAX` in the order they came, then a set."""
    python = matcher.StreamMatcher(references, engine="reference", clock=lambda: 0.0)
    python._new_upserts = None
    fast = matcher.StreamMatcher(references, engine="reference", clock=lambda: 0.0)
    for buyer, number in orders:
        raw = msgspec.json.encode(order_msg(f"O{number}", buyer=buyer))
        assert fast.feed(raw, now=1.0) == python.feed(raw, now=1.0)
    assert fast._buyer_orders._members == python._buyer_orders._members
    assert _state(fast) == _state(python)


def _copy(text: str) -> str:
    """A str equal to `text` but not the same object (nor interned, as keys' parts are)."""
    return "".join([text[:1], text[1:]])


@compiled
@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["same", "equal", "other"]), max_size=8))
def test_compiled_and_python_intake_find_a_listed_order_of_a_buyer_the_same(
    references: References, listed: list[str]
) -> None:
    """An order already in its buyer's orders (its key of the same interned parts, or
    of equal str objects) is not listed again by the compiled path, and one that differs only
    in a part is, as in Python."""
    raw = msgspec.json.encode(order_msg("O9"))
    scratch = matcher.StreamMatcher(references, engine="reference", clock=lambda: 0.0)
    scratch.feed(raw, now=1.0)
    (key,) = scratch._order_keys
    (buyer,) = scratch._buyer_orders._members
    members = {
        "same": key,
        "equal": (_copy(key[0]), _copy(key[1])),
        "other": (key[0], _copy(key[1] + "0")),
    }
    streams = []
    for fast in (True, False):
        stream = matcher.StreamMatcher(references, engine="reference", clock=lambda: 0.0)
        if not fast:
            stream._new_upserts = None
        for number in (1, 2):  # the buyer's orders: a tuple of them
            stream.feed(msgspec.json.encode(order_msg(f"O{number}")), now=1.0)
        orders = stream._buyer_orders._members
        orders[buyer] = (*orders[buyer], *(members[name] for name in listed))
        assert stream.feed(raw, now=1.0) == matcher.ACCEPTED
        streams.append(stream)
    assert streams[0]._buyer_orders._members == streams[1]._buyer_orders._members
    assert _state(streams[0]) == _state(streams[1])


def test_the_compiled_intake_takes_the_usual_documents(references: References) -> None:
    """Every document of a complete order set goes the compiled way when it is built."""
    stream = matcher.StreamMatcher(references, engine="reference", clock=lambda: 0.0)
    if stream._new_upserts is None:
        pytest.skip("the intake extension is not built")
    counted = stream._new_upserts = _Counted(stream._new_upserts)
    for message in [*complete_set("O1"), inventory_msg("O1")]:
        assert stream.feed(msgspec.json.encode(message), now=0.0) == matcher.ACCEPTED
    assert counted.taken == 4
    assert list(stream._dirty) == [("EBP001", "O1")]
    assert stream.counters.get("accepted") == 4


def test_python_keys_intern_the_company_code_only() -> None:
    """The Python intake interns a key's company code, which thousands of documents share, and
    not its document number, which is one document's (see `matcher._shared_key`)."""
    code, number = "".join(["E", "3101"]), "".join(["CB", "20991231", "000042"])
    key = matcher._shared_key((code, number))
    assert key == (code, number)
    assert is_interned(key[0])
    assert not is_interned(key[1])
