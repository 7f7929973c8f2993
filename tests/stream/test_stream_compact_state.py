"""Compact matcher state: packed documents and link indexes survive snapshots, restores and
snapshots of the first format (whole messages) exactly."""

from __future__ import annotations

import gc

import msgspec

from matchcore.stream import matcher as matcher_module
from matchcore.stream.messages import from_mapping


def _events(matcher):
    matcher.flush()
    return [(e.verdict_id, e.content()) for e in matcher.drain()]


def _mixed_state(kit, matcher):
    """Pending, evaluated, revised, cancelled and loosely linked documents, two buyers."""
    loose_waybill = {**kit.waybill_msg("O5"), "logistics_no": "L-LOOSE"}
    del loose_waybill["order_no"], loose_waybill["ebp_code"]  # linked through its inventory
    inventory = {**kit.inventory_msg("O5"), "logistics_no": "L-LOOSE"}
    kit.feed_all(
        matcher,
        kit.complete_set("O1")
        + kit.complete_set("O2")  # the same buyer as O1: evaluated together
        + [kit.order_msg("O3", buyer=kit.BUYER_IDS[1]), kit.payment_msg("O3")]  # pending
        + [kit.order_msg("O4"), kit.waybill_msg("O4")]
        + [kit.order_msg("O5"), kit.payment_msg("O5"), inventory, loose_waybill]
        + [kit.inventory_msg(n) for n in ("O1", "O2", "O3", "O4")],
    )
    matcher.flush()
    matcher.drain()  # delivered: not part of the state
    kit.feed_all(
        matcher,
        [
            kit.payment_msg("O1", amount="1", revision=1),  # a new verdict version
            kit.order_msg("O2", op="cancel", revision=1),  # a tombstone
        ],
    )


def test_restored_state_is_the_same_state(kit, make_matcher):
    matcher = make_matcher(inventory_rules=True)
    _mixed_state(kit, matcher)
    restored = make_matcher(inventory_rules=True)
    restored.restore(matcher.snapshot())
    assert restored.snapshot() == matcher.snapshot()
    assert restored.stats() == matcher.stats()
    later = [
        kit.waybill_msg("O3"),
        kit.payment_msg("O4"),
        kit.order_msg("O2", revision=2),  # back after its cancel
        kit.payment_msg("O5", amount="2", revision=1),
    ]
    for target in (matcher, restored):
        kit.feed_all(target, later)
    expected = _events(matcher)
    assert _events(restored) == expected
    assert {verdict_id for verdict_id, _ in expected} >= {"EBP001/O3/1", "EBP001/O4/1"}
    assert any(v.startswith("EBP001/O5/") for v, _ in expected)  # through the loose waybill


def test_pending_documents_are_held_packed(kit, make_matcher):
    matcher = make_matcher()
    kit.feed_all(matcher, [kit.order_msg("O1"), kit.payment_msg("O1")])
    for store in matcher._docs.values():
        for entry in store.values():
            assert isinstance(entry.rows, bytes)  # no decoded message is kept
    assert matcher._payments_of.members(("EBP001", "O1")) == (("PAY001", "T-O1"),)


def test_pending_state_is_not_walked_by_the_garbage_collector(kit, make_matcher):
    """A full collection must not visit every pending document and order: with millions of
    them it would stall the stream for seconds."""
    matcher = make_matcher()
    kit.feed_all(matcher, [kit.order_msg("O1"), kit.payment_msg("O1"), kit.order_msg("O2")])
    entries = [entry for store in matcher._docs.values() for entry in store.values()]
    assert len(entries) == 3
    assert not any(gc.is_tracked(entry) for entry in entries)
    assert matcher._slots and not any(gc.is_tracked(slot) for slot in matcher._slots.values())


def test_first_format_snapshot_is_upgraded(kit, make_matcher):
    current = make_matcher()
    documents = kit.complete_set("O1") + [
        kit.order_msg("O2"),
        kit.payment_msg("O2"),
    ]
    kit.feed_all(current, documents)
    current.flush()
    current.drain()
    state = msgspec.msgpack.decode(current.snapshot(), type=matcher_module._State)
    by_key = {
        (message.key(), matcher_module.message_type(message)): message
        for message in map(from_mapping, documents)
    }
    first_format = matcher_module._StateV1(
        docs={
            kind: [
                matcher_module._SavedDocV1(
                    d.k1, d.k2, d.revision, by_key[((d.k1, d.k2), kind)] if d.rows else None
                )
                for d in saved
            ]
            for kind, saved in state.docs.items()
        },
        slots=state.slots,
        dirty=state.dirty,
        dirty_buyers=state.dirty_buyers,
        dirty_since=state.dirty_since,
        counters=state.counters,
    )
    upgraded = make_matcher()
    upgraded.restore(msgspec.msgpack.encode(first_format))
    assert upgraded.snapshot() == current.snapshot()
    for target in (current, upgraded):
        kit.feed_all(target, [kit.waybill_msg("O2")])
    assert _events(upgraded) == _events(current) != []


def test_link_index_keeps_one_member_small_and_many_in_a_set():
    index = matcher_module._Index()
    index.add("buyer", ("E", "1"))
    index.add("buyer", ("E", "1"))
    assert index.members("buyer") == (("E", "1"),)
    index.add("buyer", ("E", "2"))
    assert index.members("buyer") == {("E", "1"), ("E", "2")}
    index.discard("buyer", ("E", "1"))
    index.discard("buyer", ("E", "9"))  # not linked: nothing happens
    assert list(index.members("buyer")) == [("E", "2")]
    index.discard("buyer", ("E", "2"))
    assert index.members("buyer") == ()
