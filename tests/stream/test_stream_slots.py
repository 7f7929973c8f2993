"""The compiled order slot (src_ext/slots.pyx `Slot`) against `_SlotStruct`, its reference, and
the compiled deadline queue (`DeadlineQueue`) against `_DeadlineQueue`.

Both slots take the same sets and give the same gets, but for an int past what a C field holds
(int64; 96 bits for a place), which the compiled slot keeps as not known: None. Both queues
queue the same keys the same way.
"""

from __future__ import annotations

import gc
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from matchcore.stream import matcher as matcher_module
from matchcore.stream.matcher import _SlotStruct
from matchcore.stream.messages import VerdictEvent

slots = pytest.importorskip("matchcore._native.slots")

FIELDS = _SlotStruct.__struct_fields__
#: The ints a compiled slot holds, by field: [least, end).
RANGES = {
    "spent_after": (-(2**63), 2**63),
    "walk_limit": (-(2**63), 2**63),
    "place": (-(2**95), 2**95),
}


def _ints(least: int, end: int) -> st.SearchStrategy[int | None]:
    """None, ints within [least, end), its edges and the ints just past them, and far past."""
    edges = [least, least + 1, end - 1, end, least - 1, 0, -1, 1 << 64, (1 << 64) - 1]
    return (
        st.none()
        | st.integers(least, end - 1)
        | st.sampled_from(edges)
        | st.integers(-(2**130), 2**130)
    )


_VALUES: dict[str, st.SearchStrategy[Any]] = {
    **{name: _ints(*bounds) for name, bounds in RANGES.items()},
    # a walk place as the matcher makes it: a year above the app time from 0 up
    "place": _ints(*RANGES["place"])
    | st.builds(
        lambda year, time: (year << 64) + time, st.integers(1, 9999), st.integers(0, 2**64 - 1)
    ),
    "first_seen": st.floats(allow_nan=False),
    "version": st.integers(0, 2**63 - 1),
    "evaluated": st.booleans(),
    "expired": st.booleans(),
    "buyer": st.none() | st.text(max_size=3),
    "last": st.none()
    | st.builds(
        VerdictEvent,
        st.text(max_size=3),
        st.just("E"),
        st.just("O"),
        st.integers(0, 9),
        st.just("pass"),
    ),
    "key": st.tuples(st.text(max_size=3), st.text(max_size=3)),
    # the order document's version: any revision (an object, not a C field), link and rows
    "order_revision": st.none() | st.integers(0, 9) | st.integers(-(2**130), 2**130),
    "order_link": st.none() | st.text(max_size=3),
    "order_rows": st.none() | st.binary(max_size=4),
}
_KEYS = st.tuples(st.text(max_size=2), st.text(max_size=2))
#: A slot's links as an `_Index` holds a key's members: none, one key, a tuple or set of keys.
_VALUES["payments"] = _VALUES["waybills"] = (
    st.none() | _KEYS | st.lists(_KEYS, min_size=2, max_size=3).map(tuple) | st.sets(_KEYS)
)
_SETS = st.lists(st.one_of([st.tuples(st.just(name), values) for name, values in _VALUES.items()]))


def _kept(name: str, value: Any) -> Any:
    """What a compiled slot gives back of `value` set as `name`."""
    bounds = RANGES.get(name)
    if bounds is not None and value is not None and not bounds[0] <= value < bounds[1]:
        return None  # not known
    return value


def _fields(slot: Any) -> tuple[Any, ...]:
    return tuple(getattr(slot, name) for name in FIELDS)


@given(
    first=st.tuples(*(_VALUES[name] for name in FIELDS)),
    sets=_SETS,
)
def test_compiled_slot_gets_what_the_reference_gets(
    first: tuple[Any, ...], sets: list[Any]
) -> None:
    """Made with the same fields and set the same way, the compiled slot gives what the
    reference gives (ints it cannot hold as None), after every set."""
    compiled, reference = slots.Slot(*first), _SlotStruct(*first)
    expected = {name: _kept(name, value) for name, value in zip(FIELDS, first, strict=True)}
    assert _fields(compiled) == tuple(expected.values())
    for name, value in sets:
        setattr(compiled, name, value)
        setattr(reference, name, value)
        expected[name] = _kept(name, value)
        assert _fields(compiled) == tuple(expected.values())
        assert _fields(reference) == tuple(
            getattr(reference, field) for field in FIELDS
        )  # (the reference keeps every value)
        assert type(compiled.evaluated) is bool and type(compiled.expired) is bool
    assert compiled == slots.Slot(*_fields(compiled))  # (equal when every field is)
    if sets:
        assert (compiled == slots.Slot(*first)) == (
            _fields(compiled) == _fields(slots.Slot(*first))
        )


def test_compiled_slot_is_made_by_keyword_and_refuses_other_types() -> None:
    key = ("E", "O")
    slot = slots.Slot(1.5, key, evaluated=True, buyer="B", place=(2025 << 64) + 7)
    assert _fields(slot) == _fields(
        _SlotStruct(1.5, key, evaluated=True, buyer="B", place=(2025 << 64) + 7)
    )
    for name in (*RANGES, "order_rows"):
        with pytest.raises(TypeError):
            setattr(slot, name, 1.5)


def test_compiled_slot_is_small_and_untracked() -> None:
    """128 bytes and not tracked by the garbage collector (see src_ext/slots.pyx), also when
    it keeps an order document and links."""
    slot = slots.Slot(0.0, ("E", "O"), last=VerdictEvent("", "E", "O", 1, "pass"))
    slot.order_revision, slot.order_link, slot.order_rows = 1, "B", b"rows"
    slot.payments, slot.waybills = ("P", "T"), {("W", "1"), ("W", "2")}
    assert not gc.is_tracked(slot)
    assert slot.__sizeof__() == 128


def test_the_matcher_keeps_compiled_slots_when_built() -> None:
    assert matcher_module._Slot is slots.Slot


def _queues(chunk: int) -> list[Any]:
    """A compiled deadline queue and its reference, of `chunk` keys a chunk, a window of 4."""

    class Compiled(slots.DeadlineQueue):
        CHUNK = chunk

    class Reference(matcher_module._DeadlineQueue):
        __slots__ = ()
        CHUNK = chunk

    return [queue(4.0, matcher_module._untracked) for queue in (Compiled, Reference)]


def _queued(queue: Any) -> tuple[Any, ...]:
    """All a deadline queue holds, and whether each chunk is tracked by the collector."""
    chunks = list(queue._chunks)
    return (chunks, queue._tail, queue._late, queue._newest, [gc.is_tracked(c) for c in chunks])


@given(
    st.sampled_from([1, 2, 3, 1024]),
    st.lists(st.sampled_from([0.0, 1.0, 1.0, 2.5, -3.0, 7.0, 1e300]) | st.integers(-2, 9)),
)
def test_compiled_deadline_queue_queues_what_the_reference_queues(
    chunk: int, times: list[float]
) -> None:
    """Keys added in time order (and equal times) go in chunks and the tail, one first seen
    before the newest queued in the heap of late ones, alike after every add."""
    compiled, reference = _queues(chunk)
    for number, time in enumerate(times):
        key = ("EBP", f"O{number}")
        compiled.add(key, time)
        reference.add(key, time)
        assert _queued(compiled) == _queued(reference)


def test_the_matcher_queues_deadlines_in_the_compiled_queue_when_built() -> None:
    assert issubclass(matcher_module._Deadlines, slots.DeadlineQueue)
