"""Annual-limit walks replayed without the engine (SPEC §3.1, §5).

When an order of a buyer changes, the buyer's later orders of that year, whose documents did
not change, are walked again in Python from what their last evaluation left (reason mask and
limit value): only their ANNUAL_LIMIT_EXCEEDED bit can change. The engine evaluates only the
changed orders (the `evaluated_orders` counter says how many went through it); every final
verdict must still be the batch verdict on the final documents.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import polars as pl
import pytest

from matchcore.rules import Rule, RuleSettings
from matchcore.stream.matcher import References, StreamMatcher, engine_evaluator

from .conftest import batch_verdicts, final_documents

LIMIT_7000 = RuleSettings.from_overrides(annual_limit="7000")
ENGINES = ["reference", pytest.param("kernel", id="kernel")]


def _engine(name: str) -> str:
    if name == "kernel":
        pytest.importorskip("matchcore._native.kernel")
    return name


def _tax(goods: int) -> str:
    # 13 % VAT on goods + 10 freight, times the 0.7 discount, in whole fen for these values.
    return str((Decimal(goods + 10) * Decimal("0.091")).quantize(Decimal("0.01")))


def _order_set(kit: Any, order_no: str, goods: int, hour: int, *, tax: str | None = None) -> list:
    """Order (at `hour`:00 on 2024-03-01), payment paying it and waybill of one order."""
    order = kit.order_msg(
        order_no,
        goods=str(goods),
        tax=_tax(goods) if tax is None else tax,
        app_time=f"2024-03-01 {hour:02d}:00:00",
    )
    paid = {"amount_paid": order["actual_paid"], "payer_id_number": order["buyer_id_number"]}
    return [order, dict(kit.payment_msg(order_no), **paid), kit.waybill_msg(order_no)]


class _Run:
    """A matcher fed in steps; remembers every document and counts engine evaluations."""

    def __init__(self, references: References, settings: RuleSettings, engine: str, clock: Any):
        self.matcher = StreamMatcher(references, settings, engine=_engine(engine), clock=clock)
        self.documents: list[dict[str, Any]] = []
        self.last: dict[str, Any] = {}

    def step(self, messages: list[dict[str, Any]]) -> tuple[dict[str, tuple], int]:
        """Feed and flush: (order_no -> (verdict, reasons) of the new events, evaluations)."""
        before = self.matcher.stats().get("evaluated_orders", 0)
        for message in messages:
            self.matcher.feed(msgspec.json.encode(message))
        self.documents += messages
        self.matcher.flush()
        events = self.matcher.drain()
        for event in events:
            previous = self.last.get(event.order_no)
            assert event.version == (previous.version if previous else 0) + 1
            self.last[event.order_no] = event
        evaluated = self.matcher.stats().get("evaluated_orders", 0) - before
        return {e.order_no: (e.verdict, e.reasons) for e in events}, evaluated

    def check_batch(self, kit: Any, ledger: pl.DataFrame | None = None) -> None:
        """The last verdict of every live order is the batch verdict on the final documents."""
        batch = batch_verdicts(final_documents(self.documents), kit, ledger, self.matcher.settings)
        live = {order_no for order_no, _ in batch.items()}
        for order_no, event in self.last.items():
            if order_no in live:
                assert (event.verdict, event.reasons, event.reason_mask) == batch[order_no]
            else:
                assert event.verdict == "cancelled"
        assert live <= set(self.last)


ANNUAL = ("ANNUAL_LIMIT_EXCEEDED",)


@pytest.mark.parametrize("engine", ENGINES)
def test_an_order_early_in_the_year_pushes_a_later_one_over_the_limit_by_replay(
    engine, kit, references, clock
):
    """O2 and O3 pass (3010 + 3010 of 7000); O1, earlier, completes: the engine evaluates O1
    alone, and O3, replayed, goes over the limit (O2 stays within it, no new event)."""
    run = _Run(references, LIMIT_7000, engine, clock)
    assert run.step(_order_set(kit, "O2", 3000, 11) + _order_set(kit, "O3", 3000, 12)) == (
        {"O2": ("pass", ()), "O3": ("pass", ())},
        2,
    )
    events, evaluated = run.step(_order_set(kit, "O1", 3000, 10))
    assert events == {"O1": ("pass", ()), "O3": ("reject", ANNUAL)}
    assert evaluated == 1
    assert run.matcher.stats()["replayed_orders"] == 2
    run.check_batch(kit)
    # O4, later still and small, fits below the limit after O3 (which added nothing).
    events, evaluated = run.step(_order_set(kit, "O4", 900, 13))
    assert (events, evaluated) == ({"O4": ("pass", ())}, 1)
    run.check_batch(kit)


@pytest.mark.parametrize("engine", ENGINES)
def test_cancelling_an_early_order_brings_a_later_one_back_under_the_limit(
    engine, kit, references, clock
):
    """O1, O2, O3 (3010 each): O3 is over the limit; O1 cancelled, the buyer's walk is
    replayed without it, without the engine, and O3 passes."""
    run = _Run(references, LIMIT_7000, engine, clock)
    documents = [*_order_set(kit, "O1", 3000, 10), *_order_set(kit, "O2", 3000, 11)]
    documents += _order_set(kit, "O3", 3000, 12)
    events, _ = run.step(documents)
    assert events["O3"] == ("reject", ANNUAL)
    cancel = {
        "doc_type": "order",
        "op": "cancel",
        "revision": 1,
        "ebp_code": kit.EBP,
        "order_no": "O1",
    }
    events, evaluated = run.step([cancel])
    assert events == {"O1": ("cancelled", ()), "O3": ("pass", ())}
    assert evaluated == 0
    run.check_batch(kit)
    # A revision of O2 that doubles it pushes O3 over again: the engine evaluates O2 only.
    bigger = dict(_order_set(kit, "O2", 4000, 11)[0], revision=1)
    paid = {"amount_paid": bigger["actual_paid"], "payer_id_number": bigger["buyer_id_number"]}
    payment = dict(kit.payment_msg("O2"), revision=1, **paid)
    events, evaluated = run.step([bigger, payment])
    assert events == {"O2": ("pass", ()), "O3": ("reject", ANNUAL)}
    assert evaluated == 1
    run.check_batch(kit)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_revised_app_time_moves_the_order_in_its_walk(engine, kit, references, clock):
    """O3 (3010, the last of three) is over the limit; revised to come first, it passes and
    O2, now last, goes over: the walk reads the revised order's new place, not the one it
    had when the walk was last planned."""
    run = _Run(references, LIMIT_7000, engine, clock)
    documents = [*_order_set(kit, "O1", 3000, 10), *_order_set(kit, "O2", 3000, 11)]
    events, _ = run.step(documents + _order_set(kit, "O3", 3000, 12))
    assert events["O3"] == ("reject", ANNUAL)
    run.step(_order_set(kit, "O4", 1, 13))  # a walk planned with the places of O1-O3
    earlier = dict(_order_set(kit, "O3", 3000, 9)[0], revision=1)
    events, _ = run.step([earlier])
    assert events == {"O2": ("reject", ANNUAL), "O3": ("pass", ())}
    run.check_batch(kit)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_later_order_failing_another_reject_rule_stays_out_of_the_replayed_walk(
    engine, kit, references, clock
):
    """O3 fails TAX_MISMATCH: out of the walk, it neither fails the limit nor adds to the
    spent, so O4 (3010 + 3010 + 910 = 6930) still passes once O1 comes, whereas counting O3
    (110) would put it over."""
    run = _Run(references, LIMIT_7000, engine, clock)
    documents = [*_order_set(kit, "O2", 3000, 11), *_order_set(kit, "O3", 100, 12, tax="1.00")]
    documents += _order_set(kit, "O4", 900, 13)
    events, _ = run.step(documents)
    assert events["O3"] == ("reject", ("TAX_MISMATCH",))
    events, evaluated = run.step(_order_set(kit, "O1", 3000, 10))
    assert (events, evaluated) == ({"O1": ("pass", ())}, 1)
    assert run.last["O3"].reasons == ("TAX_MISMATCH",) and run.last["O4"].verdict == "pass"
    run.check_batch(kit)
    # One more early order: O2 goes over (3010 * 3 > 7000) and adds nothing, so O4 still fits.
    events, evaluated = run.step(_order_set(kit, "O0", 3000, 9))
    assert (events, evaluated) == ({"O0": ("pass", ()), "O2": ("reject", ANNUAL)}, 1)
    assert run.last["O3"].reasons == ("TAX_MISMATCH",) and run.last["O4"].verdict == "pass"
    run.check_batch(kit)


@pytest.mark.parametrize("engine", ENGINES)
def test_replayed_walks_start_from_the_ledger_and_allow_exactly_the_limit(engine, kit, clock):
    """The buyer used 1000 before the stream: 1000 + 3010 + 1980 + 1010 (O1, earlier) is
    exactly 7000, which is within the limit; O0, earlier still and 11 more, puts O3 over."""
    ledger = pl.DataFrame({"buyer_id_number": [kit.BUYER_IDS[0]], "year": [2024], "used": ["1000"]})
    references = References.from_frames(
        kit.products_frame(),
        kit.enterprises_frame(),
        hs_lists=kit.hs_lists_frame(),
        quota_ledger=ledger,
    )
    run = _Run(references, LIMIT_7000, engine, clock)
    events, _ = run.step(_order_set(kit, "O2", 3000, 11) + _order_set(kit, "O3", 1970, 12))
    assert events == {"O2": ("pass", ()), "O3": ("pass", ())}
    events, evaluated = run.step(_order_set(kit, "O1", 1000, 10))
    assert (events, evaluated) == ({"O1": ("pass", ())}, 1)  # O3 ends exactly at 7000
    run.check_batch(kit, ledger)
    events, evaluated = run.step(_order_set(kit, "O0", 1, 9))
    assert (events, evaluated) == ({"O0": ("pass", ()), "O3": ("reject", ANNUAL)}, 1)
    run.check_batch(kit, ledger)
    # Cancelling O0 (a whole walk, replayed from the ledger) gives O3 its pass back.
    cancel = {"doc_type": "order", "op": "cancel", "revision": 1, "ebp_code": kit.EBP}
    events, evaluated = run.step([dict(cancel, order_no="O0")])
    assert (events, evaluated) == ({"O0": ("cancelled", ()), "O3": ("pass", ())}, 0)
    run.check_batch(kit, ledger)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("severity", ["review", "off"])
def test_a_replayed_walk_keeps_the_annual_rules_severity(engine, severity, kit, references, clock):
    """At review the order over the limit asks for review; off, it passes without the bit. In
    both it adds nothing, so O4 (910) fits after it."""
    rules = RuleSettings.from_overrides({"ANNUAL_LIMIT_EXCEEDED": severity}, annual_limit="7000")
    run = _Run(references, rules, engine, clock)
    documents = [*_order_set(kit, "O2", 3000, 11), *_order_set(kit, "O3", 3000, 12)]
    documents += _order_set(kit, "O4", 900, 13)
    run.step(documents)
    events, evaluated = run.step(_order_set(kit, "O1", 3000, 10))
    expected = {"O1": ("pass", ())}
    if severity == "review":
        expected["O3"] = ("review", ANNUAL)
    assert (events, evaluated) == (expected, 1)
    assert run.last["O4"].verdict == "pass"
    assert run.last["O3"].reason_mask == (
        0 if severity == "off" else Rule.ANNUAL_LIMIT_EXCEEDED.bit
    )
    run.check_batch(kit)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_change_between_unchanged_orders_walks_from_what_the_replay_left(
    engine, kit, references, clock
):
    """Two orders change in one flush with an unchanged one between them (the engine walks
    from the first to the last changed one) and one after them (replayed)."""
    run = _Run(references, LIMIT_7000, engine, clock)
    first = [*_order_set(kit, "O2", 2000, 11), *_order_set(kit, "O4", 2000, 13)]
    run.step(first + _order_set(kit, "O5", 2000, 14))
    events, evaluated = run.step(_order_set(kit, "O1", 1000, 10) + _order_set(kit, "O3", 100, 12))
    # 1010, 2010, 110, 2010 = 5140; O5 would make 7150.
    assert events == {"O1": ("pass", ()), "O3": ("pass", ()), "O5": ("reject", ANNUAL)}
    assert evaluated == 3  # O1, O2, O3: O4 and O5 replayed
    run.check_batch(kit)


def test_after_a_restore_the_first_walk_is_the_engines(kit, references, clock):
    """Nothing of the last evaluations is in a snapshot: after a restore a change walks the
    year through the engine (and fills what later replays need)."""
    run = _Run(references, LIMIT_7000, "reference", clock)
    run.step(_order_set(kit, "O2", 3000, 11) + _order_set(kit, "O3", 3000, 12))
    snapshot = run.matcher.snapshot()
    run.matcher.restore(snapshot)
    assert run.matcher.snapshot() == snapshot
    events, evaluated = run.step(_order_set(kit, "O1", 3000, 10))
    assert (events, evaluated) == ({"O1": ("pass", ()), "O3": ("reject", ANNUAL)}, 3)
    events, evaluated = run.step(_order_set(kit, "O0", 1, 9))
    assert (events, evaluated) == ({"O0": ("pass", ())}, 1)
    run.check_batch(kit)


def test_reevaluating_walks_through_the_engine(kit, references, clock):
    run = _Run(references, LIMIT_7000, "reference", clock)
    run.step(_order_set(kit, "O1", 3000, 10) + _order_set(kit, "O2", 3000, 11))
    before = run.matcher.stats()["evaluated_orders"]
    run.matcher.reevaluate()
    assert run.matcher.stats()["evaluated_orders"] == before + 2


def test_a_walk_the_engine_does_not_agree_with_is_walked_whole_by_the_engine(
    kit, references, clock
):
    """When the spent the engine's walk left after the changed order is not known (here the
    engine reports a spent that disagrees with the matcher's), the orders after it are not
    replayed: their year goes through the engine again, from the quota ledger."""
    engine = engine_evaluator("reference")
    tampered = [False]

    def evaluate(tables: Any, settings: RuleSettings) -> Any:
        results = engine(tables, settings)
        if tampered[0]:
            results["annual_spent"] = [
                None if spent is None else spent + 1 for spent in results["annual_spent"]
            ]
        return results

    run = _Run(references, LIMIT_7000, "reference", clock)
    run.matcher = StreamMatcher(references, LIMIT_7000, evaluator=evaluate, clock=clock)
    run.step(_order_set(kit, "O2", 3000, 11) + _order_set(kit, "O3", 3000, 12))
    tampered[0] = True
    events, evaluated = run.step(_order_set(kit, "O1", 3000, 10))
    assert (events, evaluated) == ({"O1": ("pass", ()), "O3": ("reject", ANNUAL)}, 1 + 3)
    run.check_batch(kit)
    tampered[0] = False
    events, evaluated = run.step(_order_set(kit, "O0", 1, 9))
    assert (events, evaluated) == ({"O0": ("pass", ())}, 1)
    run.check_batch(kit)
