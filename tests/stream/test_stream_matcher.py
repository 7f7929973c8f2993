"""StreamMatcher behaviour: completion, versions, revisions, cancels, deadlines, quota groups."""

from __future__ import annotations

import gc
import itertools
import re

import msgspec
import numpy as np
import pytest

from matchcore.engine.base import NULL_INT64
from matchcore.exceptions import RuleConfigError
from matchcore.rules import RuleSettings
from matchcore.stream import matcher as matcher_module
from matchcore.stream.matcher import MAX_BATCH_SIZE, _kernel_values
from matchcore.stream.state import DurableMatcher


def test_complete_order_is_matched_once_flushed(kit, make_matcher, clock):
    matcher = make_matcher()
    kit.feed_all(matcher, kit.complete_set("O1"))
    assert matcher.drain() == []  # nothing before the micro-batch is flushed
    clock.advance(0.01)
    assert matcher.tick()
    [event] = matcher.drain()
    assert (event.verdict, event.reasons, event.version) == ("pass", (), 1)
    assert event.verdict_id == "EBP001/O1/1"
    assert event.computed_tax == "10.01" and event.limit_value == "110.00"


def test_order_waits_for_every_document(kit, make_matcher, clock):
    matcher = make_matcher()
    kit.feed_all(matcher, [kit.order_msg("O1"), kit.payment_msg("O1")])
    matcher.flush()
    assert matcher.drain() == []
    assert matcher.stats()["pending"] == 1
    kit.feed_all(matcher, [kit.waybill_msg("O1")])
    matcher.flush()
    assert [e.verdict for e in matcher.drain()] == ["pass"]
    assert matcher.stats()["pending"] == 0


def test_batch_size_flushes_without_tick(kit, make_matcher):
    matcher = make_matcher(batch_size=2)
    kit.feed_all(matcher, kit.complete_set("O1"))
    assert matcher.drain() == []
    kit.feed_all(matcher, [kit.order_msg("O2")])  # the second waiting order fills the batch
    assert [e.order_no for e in matcher.drain()] == ["O1"]


@pytest.mark.parametrize("size", [0, -1, MAX_BATCH_SIZE + 1, 2**64, 1.5, True, "8", None])
def test_a_batch_size_that_is_no_whole_number_in_range_is_refused(make_matcher, size):
    with pytest.raises(RuleConfigError, match=f"batch size {re.escape(repr(size))}: expected"):
        make_matcher(batch_size=size)


def test_the_largest_batch_size_is_taken_by_every_offer(kit, make_matcher):
    """The compiled offer reads it as a C int: the largest works (and waits for a tick)."""
    processor = DurableMatcher(make_matcher(batch_size=MAX_BATCH_SIZE), None)
    processor.recover()
    for raw in [msgspec.json.encode(m) for m in kit.complete_set("O1")]:
        processor.offer(raw)
    processor.offer_many([msgspec.json.encode(m) for m in kit.complete_set("O2")])
    assert processor.matcher.drain() == [] and processor.matcher.stats()["accepted"] == 6


@pytest.mark.parametrize(
    ("interval", "bound", "due_after"),
    [(0.005, 0.02, 0.02), (0.005, 60.0, 60.0), (0.1, 0.02, 0.1)],
    ids=["bounded", "as-long-as-the-flush", "never-below-the-interval"],
)
def test_a_slow_flush_lengthens_the_next_wait_up_to_the_bound(
    kit, make_matcher, clock, monkeypatch, interval, bound, due_after
):
    ticks = itertools.count(0.0, 1.0)  # the flush's timer: each reading a second later
    monkeypatch.setattr(matcher_module.time, "perf_counter", lambda: next(ticks))
    matcher = make_matcher(batch_interval=interval, max_batch_interval=bound)
    kit.feed_all(matcher, kit.complete_set("O1"))
    matcher.flush()  # took a second or more by its timer
    kit.feed_all(matcher, [kit.order_msg("O2")])
    assert not matcher.flush_due(clock.now + min(0.5, due_after) - 0.001)
    assert matcher.flush_due(clock.now + due_after + 1e-6)


def test_newer_revision_emits_a_new_version(kit, make_matcher):
    matcher = make_matcher()
    kit.feed_all(matcher, kit.complete_set("O1"))
    matcher.flush()
    kit.feed_all(matcher, [kit.payment_msg("O1", amount="99", revision=2)])
    matcher.flush()
    [first, second] = matcher.drain()
    assert (first.version, first.verdict) == (1, "pass")
    assert (second.version, second.verdict_id) == (2, "EBP001/O1/2")
    assert second.verdict == "reject" and second.reasons == ("PAY_AMOUNT_MISMATCH",)


def test_redelivery_and_older_revision_change_nothing(kit, make_matcher):
    matcher = make_matcher()
    kit.feed_all(
        matcher, [kit.order_msg("O1"), kit.payment_msg("O1", revision=5), kit.waybill_msg("O1")]
    )
    matcher.flush()
    assert len(matcher.drain()) == 1
    results = kit.feed_all(
        matcher,
        [kit.payment_msg("O1", revision=5), kit.payment_msg("O1", amount="1", revision=4)],
    )
    matcher.flush()
    assert [r.status for r in results] == ["duplicate", "stale"]
    assert matcher.drain() == []
    stats = matcher.stats()
    assert (stats["duplicates"], stats["stale"], stats["accepted"]) == (1, 1, 3)


def test_cancel_of_the_order_emits_cancelled(kit, make_matcher):
    matcher = make_matcher()
    kit.feed_all(matcher, kit.complete_set("O1"))
    matcher.flush()
    kit.feed_all(
        matcher,
        [
            {
                "doc_type": "order",
                "op": "cancel",
                "revision": 1,
                "ebp_code": "EBP001",
                "order_no": "O1",
            }
        ],
    )
    matcher.flush()
    events = matcher.drain()
    assert [(e.version, e.verdict) for e in events] == [(1, "pass"), (2, "cancelled")]
    # An older upsert cannot bring the cancelled order back.
    assert kit.feed_all(matcher, [kit.order_msg("O1", revision=1)])[0].status == "duplicate"


def test_cancel_of_a_payment_reevaluates(kit, make_matcher):
    matcher = make_matcher()
    kit.feed_all(matcher, kit.complete_set("O1"))
    matcher.flush()
    cancel = {
        "doc_type": "payment",
        "op": "cancel",
        "revision": 1,
        "pay_code": "PAY001",
        "pay_transaction_id": "T-O1",
    }
    kit.feed_all(matcher, [cancel])
    matcher.flush()
    last = matcher.drain()[-1]
    assert last.version == 2 and last.verdict == "reject"
    assert last.reasons == ("PAYMENT_MISSING",)


def test_two_payments_fail_as_duplicate(kit, make_matcher):
    matcher = make_matcher()
    kit.feed_all(matcher, kit.complete_set("O1") + [kit.payment_msg("O1", tx="T-second")])
    matcher.flush()
    [event] = matcher.drain()
    assert "PAYMENT_DUPLICATE" in event.reasons and event.verdict == "reject"


def test_completion_window_gives_incomplete_when_idle(kit, make_matcher, clock):
    matcher = make_matcher(completion_window=3600)
    kit.feed_all(matcher, [kit.order_msg("O1"), kit.waybill_msg("O1")])
    matcher.flush()
    clock.advance(3599)
    matcher.tick()
    assert matcher.drain() == []
    clock.advance(2)
    assert matcher.tick()  # no input at all: the deadline alone triggers
    [event] = matcher.drain()
    assert (event.verdict, event.missing, event.version) == ("incomplete", ("payment",), 1)
    assert matcher.stats()["pending"] == 0


def test_late_document_after_incomplete_gives_a_verdict(kit, make_matcher, clock):
    matcher = make_matcher(completion_window=60)
    kit.feed_all(matcher, [kit.payment_msg("O1")])
    clock.advance(61)
    matcher.tick()
    [incomplete] = matcher.drain()
    assert incomplete.missing == ("order", "waybill")
    kit.feed_all(matcher, [kit.order_msg("O1"), kit.waybill_msg("O1")])
    matcher.flush()
    [late] = matcher.drain()
    assert (late.version, late.verdict) == (2, "pass")


def test_inventory_rules_wait_for_the_inventory(kit, make_matcher, clock):
    matcher = make_matcher(inventory_rules=True, completion_window=10)
    kit.feed_all(matcher, kit.complete_set("O1"))
    matcher.flush()
    assert matcher.drain() == []
    clock.advance(11)
    matcher.tick()
    [event] = matcher.drain()
    assert event.missing == ("inventory",)


def test_quota_peer_gets_a_new_version_when_an_earlier_order_arrives(kit, make_matcher):
    # Annual limit 150 CNY: of two 110 CNY orders only the earlier one (by app_time) fits.
    settings = RuleSettings.from_overrides(annual_limit="150")
    matcher = make_matcher(settings=settings)
    kit.feed_all(matcher, kit.complete_set("LATE", app_time="2024-03-02 10:00:00"))
    matcher.flush()
    [late_v1] = matcher.drain()
    assert late_v1.verdict == "pass"
    kit.feed_all(matcher, kit.complete_set("EARLY", app_time="2024-03-01 09:00:00"))
    matcher.flush()
    events = {e.order_no: e for e in matcher.drain()}
    assert events["EARLY"].verdict == "pass"
    assert events["LATE"].version == 2
    assert events["LATE"].reasons == ("ANNUAL_LIMIT_EXCEEDED",)


def test_other_buyers_are_not_reemitted(kit, make_matcher):
    matcher = make_matcher()
    kit.feed_all(matcher, kit.complete_set("A", buyer=kit.BUYER_IDS[0]))
    matcher.flush()
    matcher.drain()
    kit.feed_all(matcher, kit.complete_set("B", buyer=kit.BUYER_IDS[1]))
    matcher.flush()
    assert [e.order_no for e in matcher.drain()] == ["B"]


def test_snapshot_restore_keeps_versions_and_documents(kit, make_matcher):
    matcher = make_matcher()
    kit.feed_all(matcher, kit.complete_set("O1") + [kit.order_msg("O2")])
    matcher.flush()
    matcher.drain()
    restored = make_matcher()
    restored.restore(matcher.snapshot())
    assert restored.stats() == matcher.stats()
    kit.feed_all(
        restored,
        [
            kit.payment_msg("O2"),
            kit.waybill_msg("O2"),
            kit.payment_msg("O1", amount="1", revision=1),
        ],
    )
    restored.flush()
    events = {e.order_no: e for e in restored.drain()}
    assert events["O1"].verdict_id == "EBP001/O1/2"
    assert events["O2"].verdict_id == "EBP001/O2/1" and events["O2"].verdict == "pass"


def test_orders_leave_nothing_for_the_cyclic_collector(kit, make_matcher, clock):
    """What the matcher keeps per order (its last verdict too) is nothing the cyclic garbage
    collector tracks: a full collection would walk it for every order ever seen (a list per
    event's reasons and missing once made every full collection walk two objects per order)."""
    matcher = make_matcher(completion_window=60)

    def tracked_after(orders: range) -> int:
        for n in orders:
            kit.feed_all(matcher, kit.complete_set(f"O{n}")[: 3 if n % 2 else 2])
        matcher.flush()
        clock.advance(61)
        matcher.tick()  # the orders without a waybill get incomplete
        events = matcher.drain()
        assert {e.verdict for e in events} == {"pass", "incomplete"}
        del events
        gc.collect()
        return len(gc.get_objects())

    before = tracked_after(range(20))
    assert tracked_after(range(20, 420)) - before < 100  # 400 more orders


@pytest.mark.skipif(matcher_module._intake is None, reason="the extension is not built")
def test_the_state_stays_out_of_the_collectors_sight(kit, make_matcher, monkeypatch):
    """The dicts of documents, slots and links, the list of orders and the deadline queue's
    chunks stay untracked
    by the cyclic garbage collector as orders come (their keys are untracked tuples, their
    values of types it does not collect), so a full collection does not visit every pending
    order: once it did, 150 ms at 100,000 orders."""
    monkeypatch.setattr(matcher_module._Deadlines, "CHUNK", 16)
    matcher = make_matcher()
    gc.collect()
    for n in range(60):
        documents = kit.complete_set(f"O{n}", buyer=kit.resident_id(n // 4))
        if n % 5 == 0:  # two payments: a tuple of members in the order's slot
            documents.append(kit.payment_msg(f"O{n}", tx=f"T{n}-2"))
        kit.feed_all(matcher, documents[:2] if n % 3 == 0 else documents)
    matcher.flush()
    indexes = (matcher._inventory_orders, matcher._buyer_orders)
    state = [
        matcher._slots,
        matcher._order_keys,
        *matcher._docs.values(),
        *(i._members for i in indexes),
    ]
    assert len(matcher._deadlines._chunks) > 1
    assert [gc.is_tracked(held) for held in state + list(matcher._deadlines._chunks)] == [False] * (
        len(state) + len(matcher._deadlines._chunks)
    )
    links = [slot.payments for slot in matcher._slots.values() if slot.payments is not None]
    assert max(len(matcher_module._members(held)) for held in links) == 2
    assert not any(gc.is_tracked(held) for held in links)  # (held by untracked slots)


def test_a_cancelled_order_does_not_time_out(kit, make_matcher, clock):
    matcher = make_matcher(completion_window=60)
    kit.feed_all(matcher, kit.complete_set("O1"))
    matcher.flush()
    cancel = {
        "doc_type": "order",
        "op": "cancel",
        "revision": 1,
        "ebp_code": "EBP001",
        "order_no": "O1",
    }
    kit.feed_all(matcher, [cancel])
    clock.advance(120)
    matcher.tick()
    assert [e.verdict for e in matcher.drain()] == ["pass", "cancelled"]


def test_reference_rows_the_normaliser_refuses_are_kept_as_rejects(kit):
    from matchcore.stream.matcher import References

    products = kit.products_frame()
    products = products.with_columns(status=products["status"].scatter(0, "archived"))
    references = References.from_frames(products, kit.enterprises_frame())
    assert references.products.height == 2
    assert references.rejects is not None and references.rejects.height == 1


def test_inventory_completes_the_set_and_links_a_waybill_without_order_key(kit, make_matcher):
    matcher = make_matcher(inventory_rules=True)
    loose = kit.waybill_msg("O2")
    del loose["order_no"], loose["ebp_code"]  # linked through the inventory's logistics_no
    kit.feed_all(matcher, kit.complete_set("O1") + [kit.inventory_msg("O1")])
    kit.feed_all(matcher, [kit.order_msg("O2"), kit.payment_msg("O2"), loose])
    matcher.flush()
    assert [e.order_no for e in matcher.drain()] == ["O1"]  # O2 waits for its inventory
    kit.feed_all(matcher, [kit.inventory_msg("O2")])
    matcher.flush()
    [event] = matcher.drain()
    assert (event.order_no, event.verdict, event.logistics_no) == ("O2", "pass", "L-O2")


def test_value_batch_would_reject_is_dead_lettered_naming_the_field(kit, make_matcher):
    matcher = make_matcher()
    skipped_hour = kit.order_msg("O1", app_time="1988-04-17 02:30:00")  # DST gap in Shanghai
    bad_line = kit.order_msg("O2")
    bad_line["items"][0]["gnum"] = 2**63  # outside int64
    results = [matcher.feed(msgspec.json.encode(m)) for m in (skipped_hour, bad_line)]
    assert [r.status for r in results] == ["dead", "dead"]
    assert results[0].reason == "order: field app_time: time does not exist in Asia/Shanghai"
    assert results[1].reason.startswith("order: items[0]: field gnum")
    assert matcher.stats()["dead_lettered"] == 2 and matcher.stats()["pending"] == 0


def test_kernel_values_turn_the_null_marker_of_int64_columns_into_none():
    values = np.array([3, NULL_INT64, -1, NULL_INT64], dtype=np.int64)
    assert _kernel_values(values) == [3, None, -1, None]
    masks = np.array([0, 2**63, 5], dtype=np.uint64)  # reason masks: never null
    assert _kernel_values(masks) == [0, 2**63, 5]
    assert _kernel_values(np.array([], dtype=np.int64)) == []
