"""The compiled JSON intake (src_ext/intake.pyx: `DirectJson`) against the path it shortcuts.

`DirectJson` reads the usual JSON message (a new upsert) straight into what the matcher keeps;
anything else it leaves, having changed nothing. On random messages (fields in any order, any
JSON white space, CJK and other text, escapes, numbers and floats as amounts, nulls, missing
or blank required fields, unknown or repeated fields, bad JSON, cancels, repeated line
numbers, keys at and past their length bounds) a message it takes leaves the matcher in the
state decoding it and `StreamMatcher.take` do, and would not have been a dead letter. Field
names it compares in place with the order it last read takes what looking each name up takes.
"""

from __future__ import annotations

import copy
import gc
import json
from typing import Any

import msgspec
import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from matchcore.stream import matcher
from matchcore.stream.matcher import References
from matchcore.stream.messages import (
    BadMessage,
    Inventory,
    Order,
    Payment,
    Waybill,
    canonical_code,
)
from matchcore.stream.state import DurableMatcher

from .conftest import complete_set
from .test_stream_intake import (
    _BASE,
    _REPEATED_LINE,
    _state,
    is_interned,
    shared_as_kept,
    stream_messages,
)

pytestmark = pytest.mark.skipif(
    matcher._DIRECT_JSON is None, reason="the intake extension is not built"
)

#: Text of every kind the intake meets: plain (ASCII, CJK), what canonicalising changes
#: (ideographic and other spaces, full-width, accents, tabs, two spaces), what JSON escapes,
#: text past the 31 and 255 bytes of MessagePack's short forms, and invalid UTF-8.
_TEXTS = [
    "x", "Li Lei", "李雷", "\u4e00\u9fff", "\u4dff", "\ua000", "\u3000李", "Ａ１", "é", "a  b",
    "a\tb", " x ", "x\u0301", "\U0001f600", 'a"b', "a\\b", "a\nb", "\x7f", "\x01", "\ud800",
    "李" * 11, "李" * 86, "x" * 31, "x" * 32, "x" * 300, " 11010519491231002x ", "abc def",
]  # fmt: skip
_AMOUNTS = [
    "1", "1.5", "0.0001", "0.00001", "1.000000", "+1", "-0", " 1", "1e3", "99999999999999",
    "100000000000000", "", "   ", ".5", "1.", "596.3000", "0.1700", "00.0000", "1.2x00",
    "99999999999999.9999", "100000000000000.0000",
]  # fmt: skip
_NUMBERS = [0, 5, 127, 128, 65536, -1, 10**14 - 1, 10**14, 2**63, 0.5, 1e14, 12.3456]
_TIMES = [
    "2024-03-01 10:00:00", "2024-03-01T10:00:00+08:00", "2024-03-01T10:00:00Z", "20240301",
    "20240301100000", "2024-02-30 10:00:00", "1980-01-01 00:00:00", "2024-03-01T10:00+0800",
    "2024-03-01T10:00:00.123456+0800", "2024-03-01t10:00:00", " 2024-03-01 10:00:00",
    "2025-07-14T05:26:08+0800", "2025-07-14T05:26:08-08:00", "2024-02-30T10:00:00+0800",
    "2024-03-01T10:00:00+2400", "2024-03-01 10:00:00+0800", "2024-03-01T10:00:00+08:0x",
]  # fmt: skip
#: Each message type's key fields.
_KEY_NAMES = {
    "order": Order.KEY,
    "payment": Payment.KEY,
    "waybill": Waybill.KEY,
    "inventory": Inventory.KEY,
}
_KEYS = ["", "K", "K" * 256, "K" * 257, "李" * 256, "李" * 257, " ", " K ", "\u3000"]
_VALUES = st.one_of(
    st.sampled_from(_TEXTS),
    st.sampled_from(_AMOUNTS),
    st.sampled_from(_NUMBERS),
    st.sampled_from(_TIMES),
    st.sampled_from([None, True, False, [], {}, "upsert", "cancel", "delete"]),
    st.text(max_size=6),
)


@st.composite
def messages(draw: Any) -> dict[str, Any]:
    """A message of any type, from a base or a stream document, with up to four changes."""
    if draw(st.booleans()):
        message = draw(st.sampled_from(_USUAL))
    else:
        message = draw(stream_messages())
    message = msgspec.json.decode(msgspec.json.encode(message))  # a copy
    for _ in range(draw(st.sampled_from([0, 0, 0, 0, 1, 1, 2, 4]))):
        holder = message
        lines = message.get("items")
        if isinstance(lines, list) and lines and draw(st.booleans()):
            holder = lines[draw(st.integers(0, len(lines) - 1))]
        change = draw(
            st.sampled_from(["value", "value", "drop", "key", "unknown", "lines", "lines"])
        )
        name = draw(st.sampled_from([*holder, "op", "revision"]))
        if change == "value":
            holder[name] = draw(_VALUES)
        elif change == "drop":
            holder.pop(name, None)
        elif change == "key":
            kind = message.get("doc_type")
            key_names = _KEY_NAMES.get(kind, ("order_no",)) if isinstance(kind, str) else ()
            key_names = ("gnum",) if holder is not message else key_names or ("order_no",)
            holder[draw(st.sampled_from(key_names))] = draw(st.sampled_from(_KEYS))
        elif change == "unknown":
            holder[draw(st.sampled_from(["extra", "doc_typ", "Doc_type"]))] = "x"
        elif isinstance(lines, list) and lines:  # a repeated line number, or one line more
            copy = dict(draw(st.sampled_from(lines)))
            if draw(st.booleans()):
                copy["item_no"] = draw(st.sampled_from(["SKU3", "SKU1"]))
            lines.insert(draw(st.integers(0, len(lines))), copy)
    return message


#: Documents the direct path takes as they are, and two it never takes (a waybill without an
#: order key, an inventory: see `test_the_usual_messages_are_taken`).
_USUAL = [*complete_set("O1"), *complete_set(" O2"), *_BASE.values()]
_SPACE = st.sampled_from(["", "", " ", "\n", "\t", "\r\n  "])


@st.composite
def json_text(draw: Any, value: Any, escapes: bool) -> str:
    """`value` as JSON: fields in any order (sometimes one twice), white space anywhere,
    strings sometimes with escapes for characters that need none (`escapes`)."""
    if isinstance(value, dict):
        names = draw(st.permutations(list(value)))
        fields = [(name, value[name]) for name in names]
        if fields and draw(st.integers(0, 29)) == 0:
            fields.append(draw(st.sampled_from(fields)))
        parts = [
            draw(_SPACE)
            + draw(json_text(name, escapes))
            + draw(_SPACE)
            + ":"
            + draw(_SPACE)
            + draw(json_text(item, escapes))
            + draw(_SPACE)
            for name, item in fields
        ]
        return "{" + ",".join(parts) + draw(_SPACE) + "}"
    if isinstance(value, list):
        items = [draw(_SPACE) + draw(json_text(item, escapes)) for item in value]
        return "[" + ",".join(items) + draw(_SPACE) + "]"
    if isinstance(value, str) and value and escapes and draw(st.integers(0, 9)) == 0:
        at = draw(st.integers(0, len(value) - 1))
        escaped = json.dumps(value[:at], ensure_ascii=False)[:-1]
        return f"{escaped}\\u{ord(value[at]):04x}{json.dumps(value[at + 1 :])[1:]}"
    return json.dumps(value, ensure_ascii=False)


@st.composite
def raw_messages(draw: Any) -> bytes:
    """A message as bytes: JSON as above (now and then torn, with something after it, or with
    white space JSON does not allow before it), or MessagePack."""
    message = draw(messages())
    if draw(st.integers(0, 9)) == 0:
        return msgspec.msgpack.encode(message)
    escapes = draw(st.integers(0, 4)) == 0
    text = draw(_SPACE) + draw(json_text(message, escapes)) + draw(_SPACE)
    raw = text.encode("utf-8", "surrogatepass")  # a lone surrogate: invalid UTF-8
    damage = draw(st.integers(0, 29))
    if damage == 0:
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif damage == 1:
        raw += draw(st.sampled_from([b"x", b",", b"}", b"\x00", b" {}"]))
    elif damage == 2:
        raw = b"\x0b" + raw
    return raw


def _matcher(references: References) -> matcher.StreamMatcher:
    stream = matcher.StreamMatcher(references, engine="reference", clock=lambda: 0.0)
    stream.auto_flush = False
    return stream


def _kept(stream: matcher.StreamMatcher) -> tuple[Any, ...]:
    """The state, with every document as kept (revision, link, packed rows; an order's in its
    slot) and whether the texts of its key and link are interned where they repeat
    (`shared_as_kept`)."""
    docs = {kind: dict(store) for kind, store in stream._docs.items()}
    links = [(key, entry.link) for store in stream._docs.values() for key, entry in store.items()]
    links += [(key, stream._slots[key].order_link) for key in stream._order_keys]
    shared = all(shared_as_kept(key) and shared_as_kept(link) for key, link in links)
    return (_state(stream), docs, shared, dict(stream._slots), list(stream._order_keys))


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(stream_messages(), max_size=3),
    raw_messages(),
    st.sampled_from([1000.0, 1000.0, 1.5]),
)
@example([], json.dumps(_BASE["order"]).encode(), 1000.0)
@example([_BASE["payment"]], json.dumps(_BASE["payment"]).encode(), 1000.0)
@example([], json.dumps(_REPEATED_LINE).encode(), 1000.0)
@example([], json.dumps({**_BASE["order"], "order_no": "李" * 256}).encode(), 1000.0)
@example([], json.dumps({**_BASE["order"], "order_no": "李" * 257}).encode(), 1000.0)
def test_a_message_taken_directly_is_taken_as_decoded(
    references: References, earlier: list[dict[str, Any]], raw: bytes, now: float
) -> None:
    """After the same earlier documents, a message the direct path takes leaves the state the
    decoded path leaves (documents, keys, links, packed rows, indexes, slots, deadlines,
    counters, dirty orders), and was accepted there; one it leaves changes nothing."""
    _taken_as_decoded(references, earlier, raw, now)


def _taken_as_decoded(
    references: References, earlier: list[dict[str, Any]], raw: bytes, now: float
) -> bool:
    """`test_a_message_taken_directly_is_taken_as_decoded`'s check; whether it was taken."""
    direct, decoded = _matcher(references), _matcher(references)
    for message in earlier:
        for stream in (direct, decoded):
            stream.feed(msgspec.json.encode(message), now=999.0)
    before = _kept(direct)
    result = matcher._DIRECT_JSON.take(direct._new_upserts, direct, raw, now)
    if result is None:
        assert _kept(direct) == before
        return False
    assert result is matcher.ACCEPTED
    message = matcher.decode_bytes(raw)  # not a dead letter: it decodes, and is accepted
    assert decoded.take(message, now) == matcher.ACCEPTED
    _place_as(decoded, direct)
    assert _kept(direct) == _kept(decoded)
    assert _kept(direct)[2]  # keys and links interned
    return True


#: Where an amount is: (message type, line or None, field).
_AMOUNT_FIELDS = [
    ("payment", None, "amount_paid"),
    ("order", None, "goods_value"),
    ("order", None, "freight"),
    ("order", 0, "price"),
    ("order", 1, "qty"),
    ("waybill", None, "weight"),
]


@st.composite
def usual_amounts(draw: Any) -> str:
    """Amounts at and around a sender's usual form (digits, a point, four digits: read once
    by the compiled path): any number of whole digits and places, leading and trailing zeros,
    now and then a byte that is no digit."""
    digits = st.text("0123456789", max_size=16)
    whole = draw(st.one_of(digits, st.sampled_from(["", "0", "00", "9" * 14, "9" * 15])))
    places = draw(st.one_of(st.text("0123456789", min_size=3, max_size=5), st.just("0000")))
    amount = f"{whole}{draw(st.sampled_from(['.', '.', '.', ',', '']))}{places}"
    if amount and draw(st.integers(0, 5)) == 0:
        at = draw(st.integers(0, len(amount) - 1))
        amount = amount[:at] + draw(st.sampled_from(["/", ":", " ", "-", "x"])) + amount[at + 1 :]
    return amount


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_AMOUNT_FIELDS), usual_amounts())
@example(("payment", None, "amount_paid"), "99999999999999.9999")
@example(("payment", None, "amount_paid"), "100000000000000.0000")
@example(("order", 0, "price"), "00000000000000.0100")
def test_an_amount_in_the_usual_form_is_taken_as_decoded(
    references: References, where: tuple[str, int | None, str], amount: str
) -> None:
    """An amount the direct path reads in one go (the usual form) is checked and valued as
    the decoded path does it, at and past the bounds of that form."""
    kind, line, name = where
    message = copy.deepcopy(_BASE[kind])
    holder = message if line is None else message["items"][line]
    holder[name] = amount
    taken = _taken_as_decoded(references, [], json.dumps(message).encode(), 1000.0)
    event(f"taken: {taken}")


def _place_as(decoded: matcher.StreamMatcher, direct: matcher.StreamMatcher) -> None:
    """The direct path gives a new order's slot its walk place; the decoded one leaves it to
    the flush (`_place`): the places `direct` knows, read by the Python reference."""
    for key, slot in direct._slots.items():
        if slot.place is not None and decoded._slots[key].place is None:
            rows = decoded._slots[key].order_rows
            decoded._slots[key].place = matcher._walk_place(*matcher._walk_places([rows])[0])


def test_the_usual_messages_are_taken(references: References) -> None:
    """A base document, in any field order, is taken directly exactly when the compiled
    intake takes it decoded (a waybill without an order key links through inventories), but
    an inventory: its trade mode, an enumeration, is always Python's to check. The path cannot
    fall back always."""
    taken = 0
    for message in [*_BASE.values(), *complete_set("O9")]:
        raw = json.dumps(dict(reversed(list(message.items())))).encode()
        stream, decoded = _matcher(references), _matcher(references)
        expected = decoded._new_upserts.apply(decoded, matcher.decode_bytes(raw), 0.0)
        if message["doc_type"] == "inventory":
            assert expected is not None
            expected = None
        result = matcher._DIRECT_JSON.take(stream._new_upserts, stream, raw, 0.0)
        assert result == expected, raw
        taken += result is not None
    assert taken == 5


def test_texts_made_again_are_interned_where_they_repeat(references: References) -> None:
    """Key and link texts `DirectJson` made before (it keeps the latest, by their bytes) are
    the objects `sys.intern` gives where they repeat (a company code, a buyer's ID number),
    also once every matcher holding them is gone; an order number is not interned. The same
    bytes upper-cased (a buyer's ID number) or not (an order number) are two texts."""
    order = {**_BASE["order"], "order_no": "11010519491231002x", "ebp_code": "E直接"}
    order["buyer_id_number"] = order["order_no"]
    raw = json.dumps(order, ensure_ascii=False).encode()
    for _ in range(3):
        stream = _matcher(references)
        assert matcher._DIRECT_JSON.take(stream._new_upserts, stream, raw, 0.0) is not None
        [key] = stream._order_keys
        link = stream._slots[key].order_link
        assert key == ("E直接", "11010519491231002x")
        assert link == "11010519491231002X"
        assert shared_as_kept(key) and shared_as_kept(link)
        assert not is_interned(key[1])  # one per order: not worth a place in the table
        del stream, key, link
        gc.collect()


def test_a_pair_made_lately_is_given_again_only_for_the_same_two_texts(
    references: References,
) -> None:
    """A key or link pair `DirectJson` made lately of the same two texts is given again (an
    order's key as its payment's link, hashed once), but the same order number of another
    platform, or another number of the same platform, makes a pair of its own: the state is
    the decoded path's, every link the one its payment names."""
    direct, decoded = _matcher(references), _matcher(references)
    sent = [
        {**_BASE["order"], "order_no": "PAIR1", "ebp_code": "E1"},
        {**_BASE["payment"], "order_no": "PAIR1", "ebp_code": "E2", "pay_transaction_id": "T1"},
        {**_BASE["payment"], "order_no": "PAIR1", "ebp_code": "E1", "pay_transaction_id": "T2"},
        {**_BASE["payment"], "order_no": "PAIR2", "ebp_code": "E1", "pay_transaction_id": "T3"},
        {**_BASE["payment"], "order_no": "PAIR1", "ebp_code": "E2", "pay_transaction_id": "T4"},
    ]
    for message in sent:
        raw = json.dumps(message).encode()
        assert matcher._DIRECT_JSON.take(direct._new_upserts, direct, raw, 0.0) is not None
        assert decoded.take(matcher.decode_bytes(raw), 0.0) == matcher.ACCEPTED
    _place_as(decoded, direct)
    assert _kept(direct) == _kept(decoded)
    links = {key[1]: entry.link for key, entry in direct._docs["payment"].items()}
    assert links == {
        "T1": ("E2", "PAIR1"), "T2": ("E1", "PAIR1"), "T3": ("E1", "PAIR2"), "T4": ("E2", "PAIR1")
    }  # fmt: skip
    [order_key] = direct._order_keys
    assert links["T2"] is order_key and links["T4"] is links["T1"]


def test_a_name_with_an_escape_is_left_to_msgspec(references: References) -> None:
    """Field names are read to their closing quote and only compared with the known names:
    one written with an escape (even of a known name, or of a quote) is msgspec's to read."""
    raw = json.dumps(_BASE["payment"]).encode()
    for name, written in ((b'"order_no"', rb'"order\u005fno"'), (b'"pay_code"', rb'"x\"y"')):
        stream = _matcher(references)
        escaped = raw.replace(name, written, 1)
        assert escaped != raw
        assert matcher._DIRECT_JSON.take(stream._new_upserts, stream, escaped, 0.0) is None
        assert not stream._docs["payment"]
    assert matcher._DIRECT_JSON.take(stream._new_upserts, stream, raw, 0.0) is not None


@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")])
def test_text_is_read_to_the_end_of_the_input(
    references: References, separators: tuple[str, str]
) -> None:
    """Text is read a block of bytes at a time, the last block the one that ends with the
    input: a text field written last, in every length about a block's, ending in what ends a
    run of plain bytes or in nothing, is taken exactly when it is plain and written without
    escapes, as decoding takes it (messages compact, and with white space)."""
    base = {name: value for name, value in _BASE["payment"].items() if name != "payer_name"}
    for length in range(1, 40):
        for text in (
            "x" * length, "李" * length, ("ab " * length)[:length], "x" * length + "\x7f",
            "x" * length + "é", "x" * length + "\u3000", "x" * length + "\\", "x" * length + '"',
            "x" * length + "\x01", "李" * length + "x", "x" * length + "李",
        ):  # fmt: skip
            message = {**base, "payer_name": text}
            raw = json.dumps(message, ensure_ascii=False, separators=separators).encode()
            direct, decoded = _matcher(references), _matcher(references)
            result = matcher._DIRECT_JSON.take(direct._new_upserts, direct, raw, 1000.0)
            escaped = "\\" in text or '"' in text  # (JSON escapes them)
            assert (result is not None) == (_plain(message) and not escaped), raw
            if result is not None:
                assert decoded.take(matcher.decode_bytes(raw), 1000.0) == matcher.ACCEPTED
                assert _kept(direct) == _kept(decoded)


def _plain(value: Any) -> bool:
    """Text the direct path reads (`is_plain`), in a message and its lines."""
    if isinstance(value, dict):
        return all(map(_plain, value.values()))
    if isinstance(value, list):
        return all(map(_plain, value))
    if not isinstance(value, str):
        return True
    return "  " not in value and all(
        0x20 <= ord(c) < 0x80 or 0x4E00 <= ord(c) <= 0x9FFF for c in value
    )


def test_offer_many_takes_the_generated_messages_directly(references: References) -> None:
    """On the benchmark's messages, `offer_many` and `offer` take every first upsert of plain
    text the direct way, and end as `offer` one by one decoding each does."""
    from benchmarks.bench_stream import make_documents, references_of

    raws, _, data = make_documents(300, seed=3)
    generated = references_of(data)
    expected = 0
    seen: set[tuple[str, bytes]] = set()
    for raw in raws:
        message = json.loads(raw)
        fresh = _fresh(message, seen)
        expected += fresh and message.get("op", "upsert") == "upsert" and _plain(message)
    outcomes = []
    for many, direct in ((True, True), (False, True), (False, False)):
        stream = matcher.StreamMatcher(generated, engine="reference", clock=lambda: 0.0)
        if not direct:
            stream._direct_json = None
        processor = DurableMatcher(stream, None, deliver=lambda events: None)
        processor.recover()
        taken = matcher._DIRECT_JSON.taken
        if many:
            processor.offer_many(raws, range(1, len(raws) + 1), now=1.0)
        else:
            for position, raw in enumerate(raws, start=1):
                processor.offer(raw, position, now=1.0)
        taken = matcher._DIRECT_JSON.taken - taken
        assert taken == (expected if direct else 0)
        stream.flush(2.0)
        outcomes.append((_kept(stream), stream.drain()))
    assert expected > 0.98 * len(raws)
    assert outcomes[0] == outcomes[1] == outcomes[2]


def _fresh(message: dict[str, Any], seen: set[tuple[str, bytes]]) -> bool:
    """Whether the message is the first of its document (keyed by its type's key fields)."""
    parts = [canonical_code(message.get(name)) for name in _KEY_NAMES[message["doc_type"]]]
    key = (message["doc_type"], json.dumps(parts).encode())
    if key in seen:
        return False
    seen.add(key)
    return True


def test_a_bad_message_is_left_to_the_decoder(references: References) -> None:
    """What the direct path leaves is decided (and explained) by the decoder."""
    stream = _matcher(references)
    for raw in (b'{"doc_type": "payment"}', b"{}", b"[]", b"", b'{"doc_type": "x"}'):
        assert matcher._DIRECT_JSON.take(stream._new_upserts, stream, raw, 0.0) is None
        with pytest.raises(BadMessage):
            matcher.decode_bytes(raw)


def _direct_json() -> Any:
    """A `DirectJson` of its own: no field order remembered yet."""
    return type(matcher._DIRECT_JSON)(matcher._direct_plans(), "doc_type")


def _like(name: str, how: str) -> str:
    """A name like `name` (a prefix, one byte more or different, another case) or the tag."""
    if how == "prefix":
        return name[:-1]
    if how == "longer":
        return name + "_"
    if how == "changed":
        return name[:-1] + ("x" if name[-1] != "x" else "y")
    if how == "upper":
        return name.upper()
    return "doc_type"


@st.composite
def written(draw: Any, value: dict[str, Any], orders: list[list[str]], changes: list[str]) -> str:
    """`value` as compact JSON, its fields in the usual order, another, or one of `orders`
    (those written before: the last two alternate), now and then a name repeated, unknown or
    like another (said in `changes`); its lines written likewise."""
    names = list(value)
    how = draw(st.sampled_from(["usual", "usual", "reversed", "shuffled", "earlier", "earlier"]))
    if how == "reversed":
        names.reverse()
    elif how == "shuffled":
        names = draw(st.permutations(names))
    elif how == "earlier":
        known = [order for order in orders[-2:] if sorted(order) == sorted(names)]
        names = draw(st.sampled_from(known)) if known else names
    orders.append(names)
    pairs = [(name, value[name]) for name in names]
    change = draw(st.sampled_from(["none"] * 6 + ["repeat", "unknown", "like"]))
    changes.append(change)
    if change == "repeat":
        pairs.insert(draw(st.integers(0, len(pairs))), draw(st.sampled_from(pairs)))
    elif change == "unknown":
        pairs.insert(draw(st.integers(0, len(pairs))), ("extra", "x"))
    elif change == "like":
        at = draw(st.integers(0, len(pairs) - 1))
        how = draw(st.sampled_from(["prefix", "longer", "changed", "upper", "tag"]))
        pairs[at] = (_like(pairs[at][0], how), pairs[at][1])
    parts = []
    for name, item in pairs:
        if isinstance(item, list):
            text = "[" + ",".join(draw(written(line, orders, changes)) for line in item) + "]"
        else:
            text = json.dumps(item, ensure_ascii=False)
        parts.append(json.dumps(name) + ":" + text)
    return "{" + ",".join(parts) + "}"


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_names_compared_with_the_remembered_order_are_read_as_looked_for(
    references: References, data: Any
) -> None:
    """`DirectJson` compares each name with the one read at its place in the last message
    that began as this one does (and in the last line): over messages in a few field orders
    (the usual one, others, two alternating), with names repeated, unknown, or like the
    expected one, it takes what a `DirectJson` remembering nothing (which looks each name
    for) takes, leaving the same state, the one decoding leaves; and a message without such
    names exactly when the compiled intake takes it decoded (see
    `test_the_usual_messages_are_taken`)."""
    remembering = _direct_json()
    orders: list[list[str]] = []
    for _ in range(data.draw(st.integers(1, 8))):
        message = msgspec.json.decode(msgspec.json.encode(data.draw(st.sampled_from(_USUAL))))
        changes: list[str] = []
        raw = data.draw(written(message, orders, changes)).encode()
        direct, looked_for, decoded = (_matcher(references) for _ in range(3))
        result = remembering.take(direct._new_upserts, direct, raw, 1000.0)
        expected = _direct_json().take(looked_for._new_upserts, looked_for, raw, 1000.0)
        assert result == expected, raw
        assert _kept(direct) == _kept(looked_for)
        event("taken" if result is not None else "left")
        if set(changes) == {"none"}:
            usual = decoded._new_upserts.apply(decoded, matcher.decode_bytes(raw), 1000.0)
            assert result == (None if message["doc_type"] == "inventory" else usual), raw
        elif result is not None:
            assert decoded.take(matcher.decode_bytes(raw), 1000.0) == matcher.ACCEPTED
        if result is not None:
            _place_as(decoded, direct)
            assert _kept(direct) == _kept(decoded)


def test_the_usual_order_is_read_in_place(references: References) -> None:
    """A message in the order of the last of its type is taken, read in place; one whose
    first name is another type's first, and one with a name one byte longer than the
    expected one, are not misread."""
    direct = _direct_json()
    order, payment, _ = complete_set("O7")
    stream = _matcher(references)
    for raw in (json.dumps(order).encode(), json.dumps(payment).encode()):
        assert direct.take(stream._new_upserts, stream, raw, 0.0) is not None
    (key,) = stream._order_keys  # its walk place made as it came
    rows = stream._slots[key].order_rows
    assert stream._slots[key].place == matcher._walk_place(*matcher._walk_places([rows])[0])
    mixed = {"order_no": payment["order_no"], **payment}  # begins as an order does
    again = _matcher(references)
    assert direct.take(again._new_upserts, again, json.dumps(mixed).encode(), 0.0) is not None
    longer = json.dumps(payment).replace('"pay_code"', '"pay_code_"', 1).encode()
    assert direct.take(again._new_upserts, again, longer, 0.0) is None


def _rows_requiring(monkeypatch: pytest.MonkeyPatch, name: str, required: bool) -> None:
    """Payments' rows made to require the column of field `name`, or not (their intake too)."""
    maker = copy.copy(matcher._ROWS["payments"])
    maker._plan = [
        (column, convert, required if column == name else was, default)
        for column, convert, was, default in maker._plan
    ]
    maker._read_plan = maker._plan[maker.given :]
    maker.plan = maker._compiled_plan()
    monkeypatch.setitem(matcher._ROWS, "payments", maker)
    monkeypatch.setitem(matcher._INTAKES, Payment, matcher._compiled_intake("payment", Payment))


def _payments_taken(references: References, message: dict[str, Any], expected: bool) -> None:
    """`message` is taken directly (as decoded) exactly when `expected`, in its fields' usual
    order and reversed."""
    for fields in (message, dict(reversed(message.items()))):
        direct, decoded = _matcher(references), _matcher(references)
        raw = json.dumps(fields).encode()
        result = _direct_json().take(direct._new_upserts, direct, raw, 1000.0)
        if not expected:
            assert result is None
            assert not direct._docs["payment"]
        else:
            assert result is matcher.ACCEPTED
            assert decoded.take(matcher.decode_bytes(raw), 1000.0) == matcher.ACCEPTED
            assert _kept(direct) == _kept(decoded)


@pytest.mark.parametrize("payer_id_type", ["absent", None, "", "   ", "1"])
def test_a_row_without_a_value_it_requires_is_left(
    references: References, monkeypatch: pytest.MonkeyPatch, payer_id_type: Any
) -> None:
    """A column the rows require that the message's checks do not (made so here: a payer's
    ID type) is left to the Python path when the message leaves it out, gives null or only
    spaces (`RowPlan.convert` leaves such a row); given, the message is taken as decoded."""
    _rows_requiring(monkeypatch, "payer_id_type", True)
    message = {name: value for name, value in _BASE["payment"].items() if name != "payer_id_type"}
    if payer_id_type != "absent":
        message["payer_id_type"] = payer_id_type
    _payments_taken(references, message, payer_id_type == "1")


@pytest.mark.parametrize("payer_name", ["", " ", "Li"])
def test_a_required_field_of_spaces_is_left_when_its_row_would_take_it(
    references: References, monkeypatch: pytest.MonkeyPatch, payer_name: str
) -> None:
    """A field the message's checks require (a payer's name) given as spaces only is left to
    the Python path, which refuses it, also where its column is not required in the rows
    (made so here), which would take it as none."""
    _rows_requiring(monkeypatch, "payer_name", False)
    _payments_taken(references, {**_BASE["payment"], "payer_name": payer_name}, payer_name == "Li")
