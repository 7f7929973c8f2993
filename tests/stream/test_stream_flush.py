"""The compiled flush glue (src_ext/flush.pyx) against the matcher's own Python steps.

Two matchers take the same generated streams (orders of two buyers about a new year, revisions
moving orders between walks, cancels, redeliveries, payments naming other orders, a quota
ledger, deadlines passing, a restore part way): one flushes through the compiled glue, one with
the pure-Python reference alone. Every flush gives the same events, and leaves the same state,
down to what the walks remember.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matchcore.money import format_money, fraction_text
from matchcore.stream.matcher import (
    _PLACE_BITS,
    References,
    StreamMatcher,
    _walk_place,
    _walk_places,
)

from . import test_stream_parity as parity
from .test_stream_parity import LENIENT, NEW_YEAR_TIMES, SETTINGS, scenario

flush = pytest.importorskip("matchcore._native.flush")
ledger_references = parity.ledger_references  # the references with a quota ledger


def _state(matcher: StreamMatcher) -> tuple[Any, ...]:
    """What a flush leaves: the snapshot (documents, slots, dirty sets, counters) and what
    each slot remembers of its walk (not in snapshots)."""
    walks = {
        key: (slot.spent_after, slot.walk_limit, slot.place, slot.buyer)
        for key, slot in matcher._slots.items()
    }
    return matcher.snapshot(), walks


def _pair(references: References, rules: Any, clock: Any) -> tuple[StreamMatcher, StreamMatcher]:
    """A matcher flushing through the compiled glue, and one on the Python steps alone."""
    matchers = tuple(
        StreamMatcher(references, rules, engine="kernel", clock=clock, completion_window=3.0)
        for _ in range(2)
    )
    assert matchers[0]._glue is not None
    matchers[1]._glue = None
    return matchers  # type: ignore[return-value]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.parametrize("rules", [SETTINGS, LENIENT], ids=["default", "lenient"])
@given(data=st.data())
def test_compiled_and_python_flushes_give_the_same_events_and_state(
    data: Any, rules: Any, kit: Any, ledger_references: References, clock: Any
) -> None:
    pytest.importorskip("matchcore._native.kernel")
    orders = tuple(f"O{n}" for n in range(1, 7))
    feed, flushes = data.draw(
        scenario(kit, orders, lambda draw: draw(st.sampled_from(NEW_YEAR_TIMES)))
    )
    restore_at = data.draw(st.integers(0, len(feed)))
    fast, python = _pair(ledger_references, rules, clock)
    for position, message in enumerate(feed):
        if position == restore_at:  # the glue works on the restored state
            for matcher in (fast, python):
                matcher.restore(matcher.snapshot())
            python._glue = None
        if position in flushes:
            clock.advance(data.draw(st.sampled_from([0.0, 1.0, 4.0])))  # deadlines pass
            for matcher in (fast, python):
                matcher.flush()
            assert fast.drain() == python.drain()
            assert _state(fast) == _state(python)
        raw = msgspec.json.encode(message)
        assert fast.feed(raw) == python.feed(raw)
    for matcher in (fast, python):
        matcher.flush()
    assert fast.drain() == python.drain()
    assert _state(fast) == _state(python)


def _fresh_walks(matcher: StreamMatcher, buyer: str) -> dict[int, list[Any]]:
    """The buyer's walks made afresh from its orders' documents (`_walk_years` without the
    places the slots keep)."""
    orders = matcher._docs["order"]
    placed = sorted(
        (_walk_place(*_walk_places([orders[key].rows])[0]), key)
        for key in matcher._buyer_orders.members(buyer)
        if orders[key].rows
    )
    years: dict[int, list[Any]] = {}
    for place, key in placed:
        years.setdefault(place >> _PLACE_BITS, []).append(key)
    return years


def _check_walks(matcher: StreamMatcher) -> None:
    """Every place a slot keeps is its order's, and the glue gives every buyer's walks as a
    fresh sort makes them."""
    orders = matcher._docs["order"]
    for key, slot in matcher._slots.items():
        if slot.place is not None:
            assert slot.place == _walk_place(*_walk_places([orders[key].rows])[0])
    assert matcher._glue is not None
    for buyer in matcher._buyer_orders._members:
        assert matcher._glue.walk_years(buyer) == _fresh_walks(matcher, buyer)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_the_places_slots_keep_are_their_orders(
    data: Any, kit: Any, ledger_references: References, clock: Any
) -> None:
    """Places kept in slots (and so the glue's walks) follow new orders, revisions moving
    orders in time or between buyers, cancels, flushes and restores."""
    pytest.importorskip("matchcore._native.kernel")
    orders = tuple(f"O{n}" for n in range(1, 7))
    feed, flushes = data.draw(
        scenario(kit, orders, lambda draw: draw(st.sampled_from(NEW_YEAR_TIMES)))
    )
    matcher, _ = _pair(ledger_references, SETTINGS, clock)
    for position, message in enumerate(feed):
        if data.draw(st.integers(0, 9)) == 0:
            matcher.restore(matcher.snapshot())
        if position in flushes:
            matcher.flush()
        if data.draw(st.booleans()):
            _check_walks(matcher)
        matcher.feed(msgspec.json.encode(message))
    _check_walks(matcher)
    matcher.flush()
    _check_walks(matcher)


@settings(max_examples=300, deadline=None)
@given(st.integers(-(2**63), 2**63 - 1) | st.integers(-30_000, 30_000))
def test_money_is_formatted_as_format_money_formats_it(units: int) -> None:
    """The glue's money text is `format_money`'s, on every int64 (signs, fractions, extremes)."""
    glue = flush.FlushGlue(
        {"order": {}, "payment": {}, "waybill": {}, "inventory": {}},
        *({}, {}, {}, {}),
        *(None, None, None, None, None),
        64,
        {0: ("pass", [])},
        None,
        lambda *fields: fields,
        None,
        {},
        fraction_text,
        10_000,
    )
    ((*_, tax, limit),) = glue.events_of(
        [("E", "O")], [0], [None], [None], [units], [None], [], []
    ).values()
    assert (tax, limit) == (format_money(units), None)
