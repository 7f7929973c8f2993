"""The compiled snapshot writer (src_ext/snapshot.pyx) writes exactly the bytes msgspec writes
for the matcher's `_State`: on random streams, and for every form of value a state can hold."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matchcore.stream import matcher
from matchcore.stream.matcher import StreamMatcher
from matchcore.stream.messages import VerdictEvent

from .test_stream_parity import SETTINGS, scenario

pytestmark = pytest.mark.skipif(matcher._snapshot is None, reason="extension not built")


def _packed_by_msgspec(stream: StreamMatcher) -> bytes:
    return msgspec.msgpack.encode(stream._saved())


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_snapshots_are_msgspecs_bytes_on_random_streams(data, kit, references, clock):
    """Documents of every kind, revisions, cancels, redeliveries, flushes, verdicts and orders
    that expire: the snapshot after each step is the one msgspec packs."""
    feed, flushes = data.draw(scenario(kit))
    stream = StreamMatcher(
        references, SETTINGS, engine="reference", clock=clock, completion_window=30.0
    )
    stream.auto_flush = False
    for position, message in enumerate(feed):
        if position in flushes:
            clock.advance(data.draw(st.sampled_from((0.5, 40.0))))  # some orders expire
            stream.tick()
            stream.flush()
        stream.feed(msgspec.json.encode(message))
        assert stream.snapshot() == _packed_by_msgspec(stream)
    stream.flush()
    assert stream.snapshot() == _packed_by_msgspec(stream)
    restored = StreamMatcher(references, SETTINGS, engine="reference", clock=clock)
    restored.restore(stream.snapshot())
    assert restored.snapshot() == stream.snapshot()


#: Values at each edge of the forms MessagePack has (msgspec writes the smallest that fits).
EDGE_INTS = [
    0, 1, 127, 128, 255, 256, 65_535, 65_536, 2**32 - 1, 2**32, 2**63 - 1, 2**64 - 1,
    -1, -32, -33, -128, -129, -32_768, -32_769, -(2**31), -(2**31) - 1, -(2**63),
]  # fmt: skip
EDGE_SIZES = [0, 1, 15, 16, 31, 32, 255, 256, 65_535, 65_536]


def _event(number: int) -> VerdictEvent:
    return VerdictEvent(f"E/{number}/1", "E", str(number), 1, "pass", ("R1",), 2, ())


values = st.recursive(
    st.none()
    | st.booleans()
    | st.sampled_from(EDGE_INTS)
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(EDGE_SIZES).map(lambda size: "字" * size)
    | st.sampled_from(EDGE_SIZES).map(lambda size: b"x" * size)
    | st.binary(max_size=40)
    | st.integers(0, 9).map(_event),
    lambda inner: (
        st.lists(inner, max_size=18)
        | st.lists(inner, max_size=18).map(tuple)
        | st.dictionaries(st.text(max_size=5), inner, max_size=18)
    ),
    max_leaves=40,
)


def _encoded(
    docs: dict[str, Any], slots: dict[Any, Any], rest: dict[str, Any], orders: Any = ()
) -> Any:
    """`encode_state` of these docs (but orders), slots, the keys of the `orders` whose slots
    keep an order document, and of the other fields of `_State` in `rest`."""
    return matcher._snapshot.encode_state(  # type: ignore[union-attr]
        matcher._State.__struct_fields__,
        docs,
        list(orders),
        slots,
        rest,
        msgspec.msgpack.encode,
        matcher._ENCODE_INTO,
        matcher._Entry,
        VerdictEvent,
    )


@settings(max_examples=400, deadline=None)
@given(
    revision=values,
    link=values,
    rows=values,
    rest=st.fixed_dictionaries(
        {
            "dirty": values,
            "dirty_buyers": values,
            "dirty_since": values,
            "counters": values,
            "columns": values,
        }
    ),
    version=st.integers(-(2**63), 2**63 - 1),
    first_seen=st.floats(allow_nan=False),
    flags=st.tuples(st.booleans(), st.booleans()),
    buyer=st.none() | st.text(max_size=40),
    last=st.integers(0, 9).map(_event) | values,
    count=st.sampled_from([0, 1, 15, 16, 17]),
    entry=st.sampled_from([matcher._Entry, SimpleNamespace]),
)
def test_every_form_of_value_is_msgspecs(
    revision, link, rows, rest, version, first_seen, flags, buyer, last, count, entry
):
    """Ints, texts, bytes, arrays and maps at the edges of their forms, floats, None, bools and
    Structs (a verdict event packed by the writer, others by msgspec), nested, wherever a
    state holds a value (an order's rows: bytes or None, as its slot keeps them); documents of
    another type than `_Entry` read by their attributes."""
    key = ("E", "N1")
    order_rows = rows if rows is None or type(rows) is bytes else None
    fields = (first_seen, version, last, *flags, buyer)
    slots = {key: matcher._Slot(fields[0], key, *fields[1:])}
    orders = [(f"E{n}", f"N{n}") for n in range(count)]
    for order in orders:
        slots[order] = matcher._Slot(
            fields[0], order, *fields[1:], order_revision=revision, order_link=link
        )
        slots[order].order_rows = order_rows
    docs = {"payment": {key: entry(revision=revision, link=link, rows=rows)}}
    expected = matcher._State(
        docs={
            "order": [matcher._SavedDoc(*k, revision, link, order_rows) for k in orders],
            "payment": [matcher._SavedDoc(*key, revision, link, rows)],
        },
        slots=[matcher._SavedSlot(*k, *fields) for k in slots],
        **rest,
    )
    assert _encoded(docs, slots, rest, orders) == msgspec.msgpack.encode(expected)


def test_an_int_past_what_msgspec_packs_raises_as_msgspec_does():
    rest = dict.fromkeys(("dirty", "dirty_buyers", "dirty_since", "counters", "columns"))
    key = ("E", "N")
    with pytest.raises(OverflowError):
        msgspec.msgpack.encode(2**64)
    with pytest.raises(OverflowError):
        _encoded({"payment": {key: matcher._Entry(2**64)}}, {}, rest)
    with pytest.raises(OverflowError):
        _encoded({}, {key: matcher._Slot(0.0, key, order_revision=2**64)}, rest, [key])


@pytest.mark.parametrize("short", [(), ("E",)])
def test_a_key_that_is_not_a_pair_raises(short):
    """A document's or slot's key of fewer than two parts raises, not read past its end
    (`_saved()`, the Python path, raises too: an IndexError)."""
    rest = dict.fromkeys(("dirty", "dirty_buyers", "dirty_since", "counters", "columns"))
    slot = matcher._Slot(0.0, ("E", "N"), 1, None, False, False, None)
    ordered = matcher._Slot(0.0, ("E", "N"), order_revision=1)
    for docs, slots, orders in (
        ({"payment": {short: matcher._Entry(1)}}, {}, []),
        ({}, {short: ordered}, [short]),
        ({}, {short: slot}, []),
    ):
        with pytest.raises(ValueError, match="to unpack"):
            _encoded(docs, slots, rest, orders)


def test_a_slot_of_another_type_is_left_to_msgspec(kit, make_matcher):
    """A state holding an order slot that is not the compiled one (a test's `_SlotStruct`) is
    packed by msgspec: the writer says None and `snapshot` packs `_saved()`."""
    stream = make_matcher()
    for message in kit.complete_set("O1"):
        stream.feed(msgspec.json.encode(message))
    stream.flush()
    key = next(iter(stream._slots))
    compiled = stream._slots[key]
    stream._slots[key] = matcher._SlotStruct(
        compiled.first_seen,
        key,
        compiled.version,
        compiled.last,
        compiled.evaluated,
        order_revision=compiled.order_revision,
        order_link=compiled.order_link,
        order_rows=compiled.order_rows,
    )
    rest = dict.fromkeys(("dirty", "dirty_buyers", "dirty_since", "counters", "columns"))
    assert _encoded(stream._docs, stream._slots, rest, stream._order_keys) is None
    assert stream.snapshot() == _packed_by_msgspec(stream)


_texts = (
    st.text(max_size=40)
    | st.text(st.characters(max_codepoint=127), max_size=40)
    | st.sampled_from(EDGE_SIZES + [4_000, 5_000]).map(lambda size: "x" * size)
)


@settings(max_examples=400, deadline=None)
@given(
    texts=st.tuples(_texts, _texts, _texts, _texts),
    version=st.sampled_from(EDGE_INTS) | st.integers(-(2**63), 2**64 - 1) | st.just(True),
    reasons=st.lists(_texts, max_size=17).map(tuple) | st.just((1, 2)),
    money=st.tuples(st.none() | _texts, st.none() | _texts),
    ids=st.tuples(st.none() | _texts, st.none() | _texts),
    value=st.sampled_from([None, 0, 1.5, "x"]),
)
def test_verdict_records_are_packed_as_msgspec_packs_them(
    texts, version, reasons, money, ids, value
):
    """`StructPacker` (a verdict record's bytes) is msgspec's `encode_into`: ASCII and other
    text at the edges of their forms, past what one pass packs, ints at theirs, reasons that
    are not text; and any other value (left to msgspec)."""
    from matchcore.stream import state

    event = VerdictEvent(
        texts[0], texts[1], texts[2], version, texts[3], reasons, version, reasons, *ids, *money
    )
    out = bytearray(b"left over")
    packer = matcher._snapshot.StructPacker(  # type: ignore[union-attr]
        VerdictEvent, msgspec.msgpack.encode, matcher._ENCODE_INTO
    )
    for packed in (event, value):
        packer.pack_into(packed, out)
        assert out == msgspec.msgpack.encode(packed)
    assert state._pack_event_into.__self__ is not None  # the log packs by the compiled one


#: Values the writer packs in one pass (as it finds them: else value by value, as `values`).
_plain = (
    st.none()
    | _texts
    | st.sampled_from(EDGE_INTS)
    | st.binary(max_size=40)
    | st.sampled_from(EDGE_SIZES).map(lambda size: b"x" * size)
    | st.lists(_texts, max_size=17).map(tuple)
)
_events = (
    st.lists(_plain, min_size=12, max_size=12) | st.lists(_plain | values, min_size=12, max_size=12)
).map(lambda fields: VerdictEvent(*fields))
_keys = st.tuples(_texts, _texts)
#: Rows large enough that some documents meet the end of the writer's buffer.
_rows = _plain | st.integers(0, 70_000).map(bytes)
#: An order's rows as its slot keeps them (bytes, None after a cancel).
_order_rows = st.none() | st.binary(max_size=40) | st.integers(0, 70_000).map(bytes)


@settings(max_examples=300, deadline=None)
@given(
    documents=st.lists(st.tuples(_keys, _plain | values, _plain | values, _rows), max_size=12),
    orders=st.lists(st.tuples(_keys, _plain | values, _plain | values, _order_rows), max_size=12),
    slots=st.lists(
        st.tuples(
            _keys,
            st.floats(allow_nan=False),
            st.integers(-(2**63), 2**63 - 1),
            st.none() | _events,
            st.booleans(),
            st.booleans(),
            _plain | values,
        ),
        max_size=6,
    ),
)
def test_documents_and_slots_in_one_pass_or_value_by_value_are_msgspecs(documents, orders, slots):
    """Documents, order documents in their slots and order slots whose keys and values the
    writer packs in one pass, and ones it does not (text that is not ASCII, ints past int64,
    other types), some at the end of its buffer (written over, value by value): msgspec's
    bytes; and each slot's last event packed by `StructPacker` (the same code) is msgspec's
    too."""
    rest = dict.fromkeys(("dirty", "dirty_buyers", "dirty_since", "counters", "columns"))
    store = {key: matcher._Entry(revision, link, rows) for key, revision, link, rows in documents}
    held = {slot[0]: slot for slot in slots}
    compiled = {key: matcher._Slot(seen, key, *fields) for key, seen, *fields in held.values()}
    ordered: dict[Any, None] = {}  # (as the matcher keeps their keys: each once, the first)
    for key, revision, link, rows in orders:
        slot = compiled.setdefault(key, matcher._Slot(0.0, key))
        slot.order_revision, slot.order_link, slot.order_rows = revision, link, rows
        ordered[key] = None
    expected = matcher._State(
        docs={
            "order": [
                matcher._SavedDoc(*k, s.order_revision, s.order_link, s.order_rows)
                for k, s in ((k, compiled[k]) for k in ordered)
            ],
            "payment": [
                matcher._SavedDoc(*k, e.revision, e.link, e.rows) for k, e in store.items()
            ],
        },
        slots=[
            matcher._SavedSlot(*k, s.first_seen, s.version, s.last, s.evaluated, s.expired, s.buyer)
            for k, s in compiled.items()
        ],
        **rest,
    )
    encoded = _encoded({"payment": store}, compiled, rest, ordered)
    assert encoded == msgspec.msgpack.encode(expected)
    packer = matcher._snapshot.StructPacker(  # type: ignore[union-attr]
        VerdictEvent, msgspec.msgpack.encode, matcher._ENCODE_INTO
    )
    out = bytearray()
    for _, _, _, last, *_ in slots:
        packer.pack_into(last, out)
        assert out == msgspec.msgpack.encode(last)
