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
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matchcore.engine.base import NULL_INT64
from matchcore.money import format_money, fraction_text
from matchcore.rules import SEVERITIES, Rule, RuleSettings
from matchcore.stream.matcher import (
    _ANNUAL_BIT,
    _INT64_END,
    _PLACE_BITS,
    _ROWS,
    References,
    StreamMatcher,
    _Batch,
    _Entry,
    _ledger_columns,
    _Linked,
    _listed_values,
    _Packer,
    _Slot,
    _SlotStruct,
    _walk_place,
    _walk_places,
)
from matchcore.stream.messages import VerdictEvent, verdict_id

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
    slots = matcher._slots
    placed = sorted(
        (_walk_place(*_walk_places([slots[key].order_rows])[0]), key)
        for key in matcher._buyer_orders.members(buyer)
        if slots[key].order_rows
    )
    years: dict[int, list[Any]] = {}
    for place, key in placed:
        years.setdefault(place >> _PLACE_BITS, []).append(key)
    return years


def _check_walks(matcher: StreamMatcher) -> None:
    """Every place a slot keeps is its order's, and the glue gives every buyer's walks as a
    fresh sort makes them."""
    for slot in matcher._slots.values():
        if slot.place is not None:
            assert slot.place == _walk_place(*_walk_places([slot.order_rows])[0])
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


#: App times about now (China's dates of them made in C) and far ones (made by `china_dates`).
_APP_TIMES = st.integers(1_500_000_000, 1_900_000_000).map(lambda at: at * 10**6) | st.integers(
    -(2**63), 2**63 - 1
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(times=st.lists(_APP_TIMES, min_size=1, max_size=6))
def test_the_glue_places_orders_as_their_rows_say(
    times: list[int], ledger_references: References
) -> None:
    """The places the glue reads from packed orders (in C for the usual app times, through
    `packed.walk_place` for the others) are `_walk_place` of their `_walk_places`."""
    matcher = StreamMatcher(ledger_references, SETTINGS, engine="kernel")
    glue = matcher._glue
    assert glue is not None
    pack = _Packer()
    held = _ROWS["orders"].held_names
    for number, time in enumerate(times):
        key = ("E", f"O{number}")
        head = tuple(time if name == "app_time" else None for name in held)
        matcher._slots[key] = _Slot(0.0, key, buyer="B")
        matcher._keep_order(matcher._slots[key], _Entry(1, "B", pack((head, []))))
        matcher._buyer_orders.add("B", key)
    assert glue.walk_years("B") == _fresh_walks(matcher, "B")
    for slot in matcher._slots.values():
        assert slot.place == _walk_place(*_walk_places([slot.order_rows])[0])


#: A walked order made up for the walk steps below: (order_no, year, app time, what its slot
#: remembers: evaluated, spent after, walk limit, last reason mask (None: no last event)).
_order = st.tuples(
    st.integers(0, 60).map(lambda n: f"O{n}"),
    st.sampled_from([2023, 2024, 2025]),
    st.integers(-2, 2),  # few times: places tie, and the keys decide
    st.sampled_from([True, True, True, False]),
    # (some just below the limit, 70_000_000: a small walk limit reaches it exactly)
    st.one_of(
        st.integers(69_998_000, 70_000_000),
        st.integers(69_999_990, 70_000_000),
        st.just(70_000_000),
        st.none(),
    ),
    # (mostly known; a few past int64 when summed)
    st.integers(0, 999).map(lambda n: None if n >= 960 else 2**63 - 1 if n >= 940 else n),
    st.sampled_from([0, 0, _ANNUAL_BIT, _ANNUAL_BIT, 1, _ANNUAL_BIT | 1, 1 << 21, None]),
)
_orders = st.lists(_order, max_size=8, unique_by=lambda order: order[0]) | st.lists(
    _order, min_size=33, max_size=45, unique_by=lambda order: order[0]
)  # (more than the glue's insertion sort takes)


def _made_up_walks(matcher: StreamMatcher, orders: list[Any], data: Any) -> list[Any]:
    """Put `orders` (see `_orders`) in the matcher's state as one buyer's; some without a place
    and an order document (out of the walk), some waiting ones with some of their documents
    (complete ones are not replayable). Returns the changed keys: some of the orders (some as
    equal copies of their keys, not the tuple the index holds) and one not walked."""
    keys = []
    for order_no, year, app_time, evaluated, spent, limit, mask in orders:
        key = ("E", order_no)
        slot = matcher._slots[key] = _Slot(0.0, key, evaluated=evaluated, buyer="B")
        if data.draw(st.integers(0, 9)):
            slot.place = _walk_place(year, app_time)
        if not evaluated and data.draw(st.booleans()):
            _some_documents(matcher, key, data)
        slot.spent_after, slot.walk_limit = spent, limit
        if mask is not None:
            slot.last = VerdictEvent("", *key, 1, "pass", reason_mask=mask)
        matcher._buyer_orders.add("B", key)
        keys.append(key)
    changed = data.draw(st.lists(st.sampled_from(keys), unique=True) if keys else st.just([]))
    return [(key[0], key[1]) if data.draw(st.booleans()) else key for key in changed]


def _some_documents(matcher: StreamMatcher, key: Any, data: Any) -> None:
    """Give a waiting order some of its documents: a live order document (with rows that do
    not convert: out of walks unless its place is known), payments, waybills, an inventory
    (whose waybill is not live)."""
    order_no = key[1]
    slot = matcher._slots[key]
    if data.draw(st.integers(0, 3)):
        slot.order_rows = b""
    if data.draw(st.integers(0, 3)):
        slot.payments = ("P", order_no)  # (a single link is held as it is)
    if data.draw(st.integers(0, 3)):
        slot.waybills = ("W", order_no)
    if data.draw(st.booleans()):
        matcher._docs["inventory"][key] = _Entry(1, ("W", "gone"), b"")


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(orders=_orders, data=st.data())
def test_compiled_walk_steps_are_the_python_ones(
    orders: list[Any], data: Any, ledger_references: References
) -> None:
    """The glue's `walked_again` and `replay_all` do what `_walked_again` and `_replay_all` do
    on made-up walks: places that tie, several years, more orders than its insertion sort
    takes, changed keys that are copies, unknown spents and limits, sums past int64, waiting
    orders that may be complete or not (with inventory rules or not)."""
    matcher = StreamMatcher(ledger_references, SETTINGS, engine="kernel")
    matcher.inventory_rules = data.draw(st.booleans())
    glue = matcher._glue
    assert glue is not None
    changed = _made_up_walks(matcher, orders, data)
    if data.draw(st.booleans()):
        changed.append(("E", "not walked"))
    fields = _SlotStruct.__struct_fields__  # (the compiled slot's too)
    remembered = {
        key: tuple(getattr(slot, name) for name in fields) for key, slot in matcher._slots.items()
    }
    outcomes = []
    for steps in (glue, None):
        matcher._glue = steps
        for key, fields in remembered.items():  # each side from the same state
            matcher._slots[key] = _Slot(*fields)
        starts: dict[Any, int] = {}
        replays: list[Any] = []
        again = set(changed)  # (as `_flush` has them: in `linked`)
        if steps is None:
            matcher._walked_again("B", changed, starts, replays, again)
        else:
            steps.walked_again("B", changed, starts, replays, again, matcher.inventory_rules)
        replayed: dict[Any, int] = {}
        whole: list[Any] = []
        if steps is None:
            done = matcher._replay_all(replays, replayed, whole)
        else:
            limit = matcher.settings.parameters.annual_limit
            done = steps.replay_all(
                replays, replayed, whole, limit, *matcher._walk_masks, ~_ANNUAL_BIT
            )
        spents = {key: slot.spent_after for key, slot in matcher._slots.items()}
        outcomes.append((again, starts, [tuple(replay) for replay in replays], done, replayed))
        outcomes[-1] += (whole, spents)
    assert outcomes[0] == outcomes[1]


#: Order keys: mostly tuples of texts of a byte a character (the glue sorts those in C), some
#: with wider characters or of another length (sorted by Python).
_texts = st.text(st.sampled_from("ab0\x00\x7f\x80\xe9\xff"), max_size=4)
#: Long texts of a few characters: keys that share their first bytes (the glue compares those
#: first, as integers), with 0 bytes within them and past them.
_long_texts = st.text(st.sampled_from("a0\x00\xff"), min_size=6, max_size=26)
_keys = st.sets(
    st.tuples(_texts, _texts)
    | st.tuples(_long_texts, _long_texts)
    | st.tuples(st.just("4403W3DRQ4"), _long_texts)
    | st.tuples(st.just("E"), _texts)
    | st.tuples(st.just("E"), st.text(st.sampled_from("a\u0100\U0001f600"), max_size=2))
    | st.lists(_texts, max_size=3).map(tuple),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(keys=_keys)
def test_compiled_key_order_is_pythons(keys: set[Any]) -> None:
    """The glue sorts a flush's keys as `sorted` does: bytes past 127, prefixes, empty texts,
    long texts that share their first bytes, texts of wider characters, tuples of other
    lengths."""
    assert _bare_glue().sorted_keys(keys) == sorted(keys)


#: Keys the glue sorts in C (one-byte texts without a 0 byte in their first bytes), many
#: sharing those first bytes.
_byte_texts = st.text(st.sampled_from("a0\x7f\xff"), max_size=26)
_byte_keys = st.sets(
    st.tuples(_byte_texts, _byte_texts)
    | st.tuples(st.sampled_from(["4403W3DRQ4", "4403W3DRQ", "3101962QCG"]), _byte_texts)
    | st.lists(_byte_texts, max_size=3).map(tuple),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(keys=_byte_keys)
def test_keys_sorted_in_c_sort_as_pythons(keys: set[Any]) -> None:
    """Keys told apart by their first bytes, or only past them, sort as `sorted` sorts them."""
    assert _bare_glue().sorted_keys(keys) == sorted(keys)


def _bare_glue(scale: int = 10_000) -> Any:
    """A glue on empty state, for its steps that read none (`scale`: the money scale)."""
    return flush.FlushGlue(
        {"order": {}, "payment": {}, "waybill": {}, "inventory": {}},
        *({}, {}),
        *(None, None, None, None),
        64,
        {0: ("pass", [])},
        None,
        lambda *fields: fields,
        None,
        {},
        fraction_text,
        scale,
        int64_end=_INT64_END,
    )


@settings(max_examples=300, deadline=None)
@given(
    units=st.integers(-(2**63), 2**63 - 1) | st.integers(-30_000, 30_000),
    scale=st.sampled_from([10_000, 10_000, 1, 10, 100, 10**18, 7, 250]),
)
def test_money_is_formatted_as_format_money_formats_it(units: int, scale: int) -> None:
    """The glue's money text is `format_money`'s, on every int64 (signs, fractions, extremes),
    at the usual scale and others (of a power of ten, whose decimals the glue writes, or
    not)."""
    glue = _bare_glue(scale)
    ((*_, tax, limit),) = glue.events_of([("E", "O")], [0], [None], [None], [units], [None], [], [])
    assert (tax, limit) == (format_money(units, scale), None)


#: A row of a made-up engine run: (order_no, app time, the spent before it (None: out of the
#: walk), its limit value, its reason mask); its walk is drawn apart (see `_engine_rows`).
_row = st.tuples(
    st.integers(0, 80).map(lambda n: f"O{n}"),
    st.integers(-2, 2),  # few times: places tie, and the keys decide
    st.sampled_from([None, 0, 100, 150, 69_999_950, 70_000_000]),  # (the limit: 70_000_000)
    st.sampled_from([None, 0, 50, 100, 2**63 - 1]),  # (a few past int64 when summed)
    st.sampled_from([0, 0, _ANNUAL_BIT, 1]),
)
_groups = [("B1", 2024), ("B1", 2025), ("B2", 2024)]


@st.composite
def _engine_rows(draw: Any) -> list[tuple[Any, ...]]:
    """Rows of an engine run over a few walks (buyer-years): a few rows, or one walk longer
    than the glue's insertion sort takes among others."""
    many = draw(st.booleans())
    rows = draw(
        st.lists(
            _row,
            min_size=40 if many else 0,
            max_size=50 if many else 10,
            unique_by=lambda row: row[0],
        )
    )
    walks = st.sampled_from(_groups[:1] * 12 + _groups[1:]) if many else st.sampled_from(_groups)
    return [(*draw(walks), *row) for row in rows]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=_engine_rows(), data=st.data())
def test_compiled_remember_walks_is_the_python_one(
    rows: list[tuple[Any, ...]], data: Any, ledger_references: References
) -> None:
    """The glue's `walks` and `remember_walks` leave in each slot what `_remember_walks` does
    with the Python walks: rows of several walks in row order, places that tie, a walk longer
    than the insertion sort takes, walks starting from `starts`, the ledger or 0, unknown
    spents, sums past int64. Its `ledger_columns` of the walks are `_ledger_columns`'."""
    matcher = StreamMatcher(ledger_references, SETTINGS, engine="kernel")
    glue = matcher._glue
    assert glue is not None
    keys = [("E", order_no) for _, _, order_no, *_ in rows]
    buyers, years, times = ([row[at] for row in rows] for at in (0, 1, 3))
    results = {
        name: [row[at] for row in rows]
        for name, at in (("annual_spent", 4), ("limit_value", 5), ("reason_mask", 6))
    }
    spents = st.sampled_from([0, 50, 100, 69_999_950])
    starts = data.draw(st.dictionaries(st.sampled_from(_groups), spents))
    matcher._ledger = data.draw(st.dictionaries(st.sampled_from(_groups), spents))
    remembered = []
    for steps in (glue, None):
        matcher._glue = steps
        for key in keys:
            matcher._slots[key] = _Slot(0.0, key)
        if steps is None:
            walks = [
                ((buyer, year), (_walk_place(year, time), key))
                for key, buyer, year, time in zip(keys, buyers, years, times, strict=True)
            ]
        else:
            walks = steps.walks(keys, buyers, years, times, starts, matcher._ledger)
        matcher._remember_walks(_Batch(None, keys, [], [], walks), results, starts)
        slots = matcher._slots
        remembered.append({key: (slots[key].spent_after, slots[key].walk_limit) for key in keys})
        if steps is None:
            remembered.append(_ledger_columns(walks, starts, matcher._ledger))
        else:
            remembered.append(steps.ledger_columns(walks))
    assert remembered[:2] == remembered[2:]
    with pytest.raises(TypeError):  # a null year or time, as `_walk_place` takes them
        glue.walks([("E", "O")], ["B1"], [2024], [None], {}, {})


class _Colliding(str):
    """A buyer text whose hash is every other's: its walks are told apart by equality."""

    def __hash__(self) -> int:
        return 1


#: Buyers and years of made-up walks: equal ones that are other objects, hashes that collide.
_walk_buyers = ["B1", "".join(("B", "1")), "B2", _Colliding("C1"), _Colliding("C2"), None]
_walk_years = [2024, int("2024"), 2025, True, 1]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_compiled_walks_group_rows_as_a_dict_does(data: Any, ledger_references: References) -> None:
    """The glue's `walks` groups the rows by buyer-year as a dict of (buyer, year) tuples
    does (the first row's objects kept), each walk starting from its spent in `starts`,
    else in the ledger, else 0: seen in its `ledger_columns`, and in what `remember_walks`
    leaves in the slots of rows out of their walks (the spent they start from)."""
    matcher = StreamMatcher(ledger_references, SETTINGS, engine="kernel")
    glue = matcher._glue
    assert glue is not None
    pairs = data.draw(
        st.lists(st.tuples(st.sampled_from(_walk_buyers), st.sampled_from(_walk_years)))
    )
    groups = list(dict.fromkeys(pairs))
    spents = st.integers(0, 3)
    starts = data.draw(st.dictionaries(st.sampled_from(groups), spents) if groups else st.just({}))
    ledger = data.draw(st.dictionaries(st.sampled_from(groups), spents) if groups else st.just({}))
    keys = [("E", f"O{row}") for row in range(len(pairs))]
    buyers, years = [buyer for buyer, _ in pairs], [year for _, year in pairs]
    walks = glue.walks(keys, buyers, years, [0] * len(pairs), starts, ledger)
    assert walks.groups == groups
    assert [tuple(map(id, walk)) for walk in walks.groups] == [tuple(map(id, g)) for g in groups]
    start = {group: starts[group] if group in starts else ledger.get(group, 0) for group in groups}
    assert glue.ledger_columns(walks) == _ledger_columns(
        [(group, None) for group in pairs], starts, ledger
    )
    for key in keys:
        matcher._slots[key] = _Slot(0.0, key)
    nothing = [None] * len(pairs)
    glue.remember_walks(keys, walks, nothing, [0] * len(pairs), nothing, 100, 0)
    assert [matcher._slots[key].spent_after for key in keys] == [start[pair] for pair in pairs]


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_compiled_gather_holds_what_python_holds(data: Any, ledger_references: References) -> None:
    """The glue's `gather` holds each document once, in the order `_gathered` does: payments
    and waybills naming their order (their links equal keys, or the very tuples), waybills
    naming none that several orders hold (through inventories), documents without rows."""
    matcher = StreamMatcher(ledger_references, SETTINGS, engine="kernel")
    glue = matcher._glue
    assert glue is not None
    orders = [("E", f"O{n}") for n in range(data.draw(st.integers(1, 6)))]
    rows = st.sampled_from([b"\x91\x01", b"\x91\x02", b""])

    def entry(link: Any) -> _Entry:
        if link is not None and data.draw(st.booleans()):
            link = (link[0], link[1])  # an equal key, not the same tuple
        return _Entry(1, link, data.draw(rows))

    def documents(kind: str, prefix: str, loose: bool) -> dict[Any, list[Any]]:
        """Documents of `kind`, each naming a drawn order (or none when `loose`): by order."""
        named: dict[Any, list[Any]] = {None: []}
        for n in range(data.draw(st.integers(0, 8))):
            order = data.draw(st.sampled_from([*orders, None] if loose else orders))
            key = (prefix, f"{prefix}{n}")
            matcher._docs[kind][key] = entry(order)
            named.setdefault(order, []).append(key)
        return named

    paid = documents("payment", "P", loose=False)
    carried = documents("waybill", "L", loose=True)
    linked = {}
    for key in data.draw(st.permutations(orders)):
        loose = (
            data.draw(st.lists(st.sampled_from(carried[None]), unique=True))
            if carried[None]
            else []
        )
        order = _Slot(0.0, key, order_revision=1, order_link="B1", order_rows=data.draw(rows))
        linked[key] = _Linked(
            order if data.draw(st.booleans()) else None,  # (its slot: a live order's)
            sorted(paid.get(key, [])),
            [*sorted(carried.get(key, [])), *loose],
            entry(("L", "L0")) if data.draw(st.booleans()) else None,
        )
    assert glue.gather(linked) == matcher._gathered(linked)


#: Kernel output columns: int64 ones with the null marker, reason masks (uint64, never
#: null), and others the kernel does not make (listed as NumPy lists them).
_columns = st.one_of(
    st.lists(st.integers(-(2**63), 2**63 - 1) | st.just(NULL_INT64)).map(
        lambda values: np.array(values, dtype=np.int64)
    ),
    st.lists(st.integers(0, 2**64 - 1)).map(lambda values: np.array(values, dtype=np.uint64)),
    st.lists(st.integers(-(2**31), 2**31 - 1)).map(lambda values: np.array(values, np.int32)),
    st.lists(st.floats(allow_nan=False)).map(lambda values: np.array(values, np.float64)),
)


@settings(max_examples=300, deadline=None)
@given(values=_columns, step=st.sampled_from([1, 2, -1]))
def test_compiled_kernel_values_are_the_python_ones(values: Any, step: int) -> None:
    """The glue lists a kernel column as `_listed_values` does: the null marker of int64 ones
    as None, the whole uint64 range, other types, strided views."""
    values = values[::step]
    assert flush.kernel_values(values, NULL_INT64) == _listed_values(values)


@settings(max_examples=200, deadline=None)
@given(
    severity=st.dictionaries(
        st.sampled_from([rule.name for rule in Rule]), st.sampled_from(SEVERITIES)
    ),
    masks=st.lists(st.integers(0, 2 ** len(Rule) - 1), min_size=1, max_size=8),
)
def test_verdicts_of_masks_are_the_settings_ones(
    severity: dict[str, Any], masks: list[int], ledger_references: References
) -> None:
    """A matcher's verdict and reason codes of a reason mask (from its settings' masks,
    worked out once, see `_verdict_of`) are `RuleSettings.verdict_of` and `reasons_of`
    (tests/rules/test_verdicts.py checks those against the severities), under any severities."""
    rules = RuleSettings.from_overrides(severity)
    matcher = StreamMatcher(ledger_references, rules)
    for mask in masks:
        expected = (rules.verdict_of(mask), tuple(rules.reasons_of(mask)))
        assert matcher._verdict_of(mask) == expected


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from([0, 0, 0, 1 << 70, 3, 3000, 3000]),  # masks, of one int or equal
            st.none() | st.integers(-3, 3),  # payment rows, some past the list or from its end
            st.none() | st.integers(-3, 3),
            st.none() | st.integers(-(2**63), 2**63 - 1),
            st.none() | st.integers(-30_000, 30_000),
        ),
        max_size=40,
    )
)
def test_compiled_events_of_is_the_python_one(
    rows: list[tuple[Any, ...]], ledger_references: References, clock: Any
) -> None:
    """The glue's events of an engine run are `_events_of`'s: reason masks the same as the
    last row's or only equal to it, and row indexes into the payments and waybills from the
    list's end (as Python reads them) or past it (the same IndexError)."""
    fast, python = _pair(ledger_references, SETTINGS, clock)
    keys = [("E", f"O{n}") for n in range(len(rows))]
    # (masks made anew: equal, but not one int object, where past the small ints)
    columns = [[int(f"{row[0]}") for row in rows]]
    columns += [[row[at] for row in rows] for at in range(1, 5)]
    pay_ids, logistics_nos = ["P0", "P1", "P2"], ["W0", "W1", "W2"]
    results = dict(zip(("reason_mask", "payment_row", "waybill_row", "computed_tax",
                        "limit_value"), columns, strict=True))  # fmt: skip
    batch = _Batch(None, keys, pay_ids, logistics_nos, [])  # type: ignore[arg-type]
    assert fast._glue is not None
    try:
        expected = python._events_of(batch, results)
    except IndexError:
        with pytest.raises(IndexError):
            fast._glue.events_of(keys, *columns, pay_ids, logistics_nos)
        return
    assert fast._glue.events_of(keys, *columns, pay_ids, logistics_nos) == expected


@settings(max_examples=300, deadline=None)
@given(
    key=st.tuples(st.text(max_size=12), st.text(max_size=24))
    | st.tuples(st.text("E0/", max_size=12), st.text("O9", max_size=24))
    | st.lists(st.text("ab", max_size=3), max_size=3).map(tuple),
    version=st.integers(0, 2**63 - 1) | st.integers(0, 12),
)
def test_compiled_verdict_ids_are_messages_ones(key: tuple[Any, ...], version: int) -> None:
    """The glue's verdict ids are `verdict_id`'s: ASCII texts joined in C, others (and keys
    of another length, which Python reads as far as it needs) by an f-string."""
    try:
        expected = verdict_id(key, version)
    except IndexError:
        with pytest.raises(IndexError):
            flush.verdict_id(key, version)
        return
    assert flush.verdict_id(key, version) == expected


def test_compiled_emit_all_counts_as_python_does(
    kit: Any, ledger_references: References, clock: Any
) -> None:
    """The glue tallies a call's events by verdict and adds them to the counters at its end:
    the counters `_emit_all` leaves, in the order it adds them, also with more verdicts than
    the glue tallies at once, equal texts that are not one object and unchanged events; the
    engine's events read along the keys, some orders without one (invalid), their keys equal
    copies or not; events of orders not in the keys refused."""
    fast, python = _pair(ledger_references, SETTINGS, clock)
    keys = [("E", f"O{n}") for n in range(24)]
    for key in keys:
        raw = msgspec.json.encode(kit.order_msg(key[1]))
        assert fast.feed(raw) == python.feed(raw)
    keys = sorted(fast._slots)
    for round_ in range(2):  # the second time, some events are the last ones again
        emitted = {}
        for matcher in (fast, python):
            linked = {key: python._linked(key) for key in keys}
            verdicts = [f"verdict{n % 11}" for n in range(len(keys))]  # (each made anew)
            events = {
                key: VerdictEvent("", *key, 0, verdict if round_ or n % 3 else "pass")
                for n, (key, verdict) in enumerate(zip(keys, verdicts, strict=True))
            }
            direct = dict.fromkeys(keys[::5])
            evaluated = [key for n, key in enumerate(keys) if n % 7 != 3 - round_]
            found = [events[key] for key in evaluated]
            if round_:
                evaluated = [(key[0], key[1]) for key in evaluated]
            emitting = (keys, linked, evaluated, found, {}, linked, direct)
            if matcher is fast:
                assert matcher._glue is not None
                matcher._glue.emit_all(matcher, *emitting, False)
                with pytest.raises(ValueError):
                    matcher._glue.emit_all(matcher, [], *emitting[1:], False)
            else:
                matcher._emit_all(*emitting)
                with pytest.raises(ValueError):
                    matcher._emit_all([], *emitting[1:])
            emitted[matcher is fast] = matcher.drain()
        assert emitted[True] == emitted[False]
        assert list(fast.counters._values.items()) == list(python.counters._values.items())
        assert _state(fast) == _state(python)
