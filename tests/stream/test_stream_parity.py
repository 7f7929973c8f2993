"""Parity: for the final document set, streaming verdicts equal batch verdicts (SPEC §5).

Random documents (revisions, cancels, second payments, payments moving between orders,
buyers sharing an annual limit) are fed in random order with redeliveries and flushes at
random points; the last verdict of every order is compared with `matchcore.match` on the
documents that are current at the end.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as count_case
from hypothesis import strategies as st

from matchcore.rules import RuleSettings
from matchcore.stream.matcher import References, StreamMatcher

from .conftest import batch_verdicts, final_documents

# A low annual limit so two or three orders of one buyer already collide in the quota walk.
SETTINGS = RuleSettings.from_overrides(annual_limit="7000")
#: A missing payment only asks for review: an order waiting for its payment is not evaluated
#: by the stream, but in batch it counts in its buyer's annual walk (when nothing else rejects
#: it), so documents that come for it can change the verdicts of the buyer's other orders.
LENIENT = RuleSettings.from_overrides({"PAYMENT_MISSING": "review"}, annual_limit="7000")
BUYERS = ("11010519491231002X", "440524188001010014")
ORDERS = ("O1", "O2", "O3", "O4")


def _tax(goods: int) -> str:
    # 13 % VAT on goods + 10 freight, times the 0.7 discount, in whole fen for these values.
    return str((Decimal(goods + 10) * Decimal("0.091")).quantize(Decimal("0.01")))


def _rarely(draw: Any) -> bool:
    """True one time in eight: faults are rare so that clean orders meet in the quota walk."""
    return draw(st.integers(0, 7)) == 0


#: Order times about a new year in Asia/Shanghai (16:30 UTC+8 on the 31st is still 2024).
NEW_YEAR_TIMES = (
    "2024-12-31 16:30:00",
    "2024-12-31 23:30:00",
    "2024-12-31T16:30:00Z",  # 2025-01-01 00:30 in Shanghai
    "2025-01-01 09:00:00",
    "2025-01-01T01:00:00+08:00",
)


def _march_time(draw: Any) -> str:
    return f"2024-03-01 {draw(st.integers(10, 23))}:00:00"


@st.composite
def order_versions(
    draw: Any, order_no: str, kit: Any, app_time: Any = _march_time
) -> list[dict[str, Any]]:
    versions = []
    for revision in range(1, 3 if _rarely(draw) else 2):
        goods = draw(st.sampled_from((4000, 3000, 100)))
        message = kit.order_msg(
            order_no,
            buyer=BUYERS[1] if _rarely(draw) else BUYERS[0],
            goods=str(goods),
            tax="1.00" if _rarely(draw) else _tax(goods),
            app_time=app_time(draw),
            revision=revision,
        )
        versions.append(message)
    return versions


@st.composite
def scenario(
    draw: Any, kit: Any, orders: tuple[str, ...] = ORDERS, app_time: Any = _march_time
) -> tuple[list[dict[str, Any]], set[int]]:
    history: list[dict[str, Any]] = []
    for order_no in orders[: draw(st.integers(2, len(orders)))]:
        history += draw(order_versions(order_no, kit, app_time))
        if _rarely(draw):  # the whole order is withdrawn
            history.append(_cancel(history[-1]))
        for n in range(2 if _rarely(draw) else 0 if _rarely(draw) else 1):
            target = draw(st.sampled_from(orders)) if _rarely(draw) else order_no
            payment = kit.payment_msg(target, tx=f"T-{order_no}-{n}")
            history.append(dict(payment, revision=1))
            if _rarely(draw):  # a newer revision, possibly for another order
                history.append(dict(payment, revision=2, order_no=draw(st.sampled_from(orders))))
            if _rarely(draw):
                history.append(_cancel(history[-1]))
        if not _rarely(draw):
            consignee = "Han Meimei" if _rarely(draw) else "Li Lei"
            history.append(kit.waybill_msg(order_no, consignee=consignee, revision=1))
    # A payment pays what the newest version of the order it names asks for, by its buyer.
    orders = {
        m["order_no"]: m for m in history if m["doc_type"] == "order" and m.get("op") != "cancel"
    }
    for message in history:
        if message["doc_type"] == "payment" and message.get("op") != "cancel":
            order = orders.get(message["order_no"])
            if order is not None:
                message["amount_paid"] = order["actual_paid"]
                message["payer_id_number"] = order["buyer_id_number"]
    redelivered = draw(st.lists(st.sampled_from(history), max_size=4))
    feed = draw(st.permutations(history + redelivered))
    flushes = {i for i in range(len(feed)) if draw(st.integers(0, 3)) == 0}
    return feed, flushes


def _cancel(message: dict[str, Any]) -> dict[str, Any]:
    key_fields = {
        "order": ("ebp_code", "order_no"),
        "payment": ("pay_code", "pay_transaction_id"),
        "waybill": ("logistics_code", "logistics_no"),
    }[message["doc_type"]]
    cancel = {name: message[name] for name in key_fields}
    cancel.update(doc_type=message["doc_type"], op="cancel", revision=message["revision"] + 1)
    return cancel


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.parametrize("rules", [SETTINGS, LENIENT], ids=["default", "lenient"])
@given(data=st.data())
def test_streaming_final_verdicts_equal_batch(data, rules, kit, references, clock):
    feed, flushes = data.draw(scenario(kit))
    matcher = StreamMatcher(references, rules, engine="reference", clock=clock)
    events = []
    for position, message in enumerate(feed):
        if position in flushes:
            matcher.flush()
        matcher.feed(msgspec.json.encode(message))
    matcher.flush()
    events += matcher.drain()
    _check_against_batch(events, feed, kit, rules=rules)


def _check_against_batch(
    events: list[Any],
    feed: list[dict[str, Any]],
    kit: Any,
    ledger: pl.DataFrame | None = None,
    rules: RuleSettings = SETTINGS,
) -> None:
    """Versions count up; the last verdict of every order is the batch verdict."""
    last = {}
    for event in events:  # versions of one order count up from 1 without gaps
        assert event.version == last.get(event.order_no, (0, None))[0] + 1
        last[event.order_no] = (event.version, event)

    final = final_documents(feed)
    batch = batch_verdicts(final, kit, ledger, rules)
    linked_payments = {p["order_no"] for p in final["payment"]}
    linked_waybills = {w["order_no"] for w in final["waybill"]}
    for order in final["order"]:
        order_no = order["order_no"]
        complete = order_no in linked_payments and order_no in linked_waybills
        streamed = last.get(order_no, (0, None))[1]
        if complete:
            assert streamed is not None, f"complete order {order_no} got no verdict"
        if streamed is not None and streamed.verdict in ("pass", "review", "reject"):
            expected = batch[order_no]
            assert (streamed.verdict, streamed.reasons, streamed.reason_mask) == expected
            count_case(f"{streamed.verdict} {streamed.reasons}")
    for order_no, (_, event) in last.items():
        if order_no not in {o["order_no"] for o in final["order"]}:
            assert event.verdict in ("cancelled", "incomplete")


#: What the two buyers spent before the stream: the walks start part-way to the limit.
LEDGER = pl.DataFrame(
    {"buyer_id_number": list(BUYERS), "year": [2024, 2025], "used": ["2000", "3500.5"]}
)


@pytest.fixture(scope="module")
def ledger_references(kit: Any) -> References:
    return References.from_frames(
        kit.products_frame(),
        kit.enterprises_frame(),
        hs_lists=kit.hs_lists_frame(),
        quota_ledger=LEDGER,
    )


@pytest.mark.parametrize("engine", ["reference", "kernel"])
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_walks_resumed_part_way_give_the_events_of_whole_walks(
    data, engine, kit, ledger_references, clock
):
    """A completed order walks its buyer-year again only from its own place, starting from
    the spent the order before it left: every event is the one walking every order of the
    buyer again gives, and the final verdicts are the batch verdicts (many orders of two
    buyers about a new year, a quota ledger, revisions moving orders between walks)."""
    if engine == "kernel":
        pytest.importorskip("matchcore._native.kernel")
    orders = tuple(f"O{n}" for n in range(1, 9))
    feed, flushes = data.draw(
        scenario(kit, orders, lambda draw: draw(st.sampled_from(NEW_YEAR_TIMES)))
    )
    resumed = StreamMatcher(ledger_references, SETTINGS, engine=engine, clock=clock)
    whole = StreamMatcher(ledger_references, SETTINGS, engine=engine, clock=clock)
    whole._walks_resume = lambda: False  # every walk of the buyer, every time
    for position, message in enumerate(feed):
        for matcher in (resumed, whole):
            if position in flushes:
                matcher.flush()
            matcher.feed(msgspec.json.encode(message))
    events = {}
    for name, matcher in (("resumed", resumed), ("whole", whole)):
        matcher.flush()
        events[name] = matcher.drain()
    assert [(e.verdict_id, e.content()) for e in events["resumed"]] == [
        (e.verdict_id, e.content()) for e in events["whole"]
    ]
    evaluated = [m.stats().get("evaluated_orders", 0) for m in (resumed, whole)]
    assert evaluated[0] <= evaluated[1]
    _check_against_batch(events["resumed"], feed, kit, LEDGER)


def test_a_document_for_a_waiting_order_walks_its_buyer_again_when_missing_is_lenient(
    kit, references, clock
):
    """O1 waits for its payment, which only asks for review: once its waybill comes, batch
    counts it in the buyer's annual walk, so O2 (evaluated before, within the limit alone)
    exceeds the limit; the stream must emit O2's new verdict without O1 being complete."""
    o1 = kit.order_msg("O1", goods="4000", tax=_tax(4000), app_time="2024-03-01 10:00:00")
    o2 = kit.order_msg("O2", goods="4000", tax=_tax(4000), app_time="2024-03-01 11:00:00")
    paid = {"amount_paid": o2["actual_paid"], "payer_id_number": o2["buyer_id_number"]}
    first = [o1, o2, dict(kit.payment_msg("O2", tx="T2"), **paid), kit.waybill_msg("O2")]
    later = kit.waybill_msg("O1")
    matcher = StreamMatcher(references, LENIENT, engine="reference", clock=clock)
    for message in first:
        matcher.feed(msgspec.json.encode(message))
    matcher.flush()
    assert [(e.order_no, e.verdict) for e in matcher.drain()] == [("O2", "pass")]
    matcher.feed(msgspec.json.encode(later))
    matcher.flush()
    events = matcher.drain()
    assert [(e.order_no, e.verdict, e.reasons) for e in events] == [
        ("O2", "reject", ("ANNUAL_LIMIT_EXCEEDED",))
    ]
    final = final_documents([*first, later])
    assert batch_verdicts(final, kit, rules=LENIENT)["O2"][:2] == (
        "reject",
        ("ANNUAL_LIMIT_EXCEEDED",),
    )


def test_a_revision_that_moves_an_order_in_time_moves_it_in_its_buyers_walk(kit, references, clock):
    """O1 then O2 fill the buyer's annual limit, so O2 goes over it; a revision of O2 to an
    earlier time puts it first in the walk: O2 passes and O1 goes over."""
    o1 = kit.order_msg("O1", goods="4000", tax=_tax(4000), app_time="2024-03-01 10:00:00")
    o2 = kit.order_msg("O2", goods="4000", tax=_tax(4000), app_time="2024-03-01 11:00:00")
    documents = [o1, o2]
    for order in (o1, o2):
        paid = {"amount_paid": order["actual_paid"], "payer_id_number": order["buyer_id_number"]}
        documents += [dict(kit.payment_msg(order["order_no"]), **paid)]
        documents += [kit.waybill_msg(order["order_no"])]
    matcher = StreamMatcher(references, SETTINGS, engine="reference", clock=clock)
    kit.feed_all(matcher, documents)
    matcher.flush()
    assert [(e.order_no, e.verdict) for e in matcher.drain()] == [("O1", "pass"), ("O2", "reject")]
    earlier = dict(o2, revision=1, app_time="2024-03-01 09:00:00")
    kit.feed_all(matcher, [earlier])
    matcher.flush()
    assert sorted((e.order_no, e.verdict, e.reasons) for e in matcher.drain()) == [
        ("O1", "reject", ("ANNUAL_LIMIT_EXCEEDED",)),
        ("O2", "pass", ()),
    ]
    final = final_documents([*documents, earlier])
    assert {o: v[0] for o, v in batch_verdicts(final, kit, rules=SETTINGS).items()} == {
        "O1": "reject",
        "O2": "pass",
    }


def test_walks_resume_only_when_a_missing_document_takes_an_order_out_of_the_walk(references):
    """An order still missing a document is out of the annual walk only while the MISSING
    rules reject; otherwise it could count in the spent of the orders after it, unseen."""
    assert StreamMatcher(references, SETTINGS, engine="reference")._walks_resume()
    assert not StreamMatcher(references, LENIENT, engine="reference")._walks_resume()
    inventory_on = RuleSettings.from_overrides({"INVENTORY_MISSING": "warn"})
    matcher = StreamMatcher(references, inventory_on, inventory_rules=True, engine="reference")
    assert not matcher._walks_resume()
