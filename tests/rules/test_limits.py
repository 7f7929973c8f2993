"""SINGLE_LIMIT_EXCEEDED and the §3.1 annual walk with its ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from matchcore.engine.reference.limits import annual_walk
from matchcore.rules import RuleSettings


def limits(annual: str, **severity: str) -> RuleSettings:
    return RuleSettings.from_overrides(severity, annual_limit=annual)


def three_orders(kit, **first):
    """O1 10:00, O2 11:00, O3 12:00 on 2025-03-01, same buyer, 110.00 each."""
    return kit.complete_orders(
        {"order_no": "O1", "app_time": kit.at("2025-03-01 10:00:00"), **first},
        {"order_no": "O2", "app_time": kit.at("2025-03-01 11:00:00")},
        {"order_no": "O3", "app_time": kit.at("2025-03-01 12:00:00")},
    )


def verdict_reasons(result) -> dict[str, list[str]]:
    return dict(zip(result.verdicts["order_no"], result.verdicts["reasons"].to_list(), strict=True))


def used(result) -> list[tuple[int, Decimal]]:
    """(year, used) rows of the updated ledger (of the one buyer these cases have)."""
    return [(year, amount) for _, year, amount in result.ledger.rows()]


def test_limit_value_exactly_at_the_single_limit_passes(kit):
    # goods 100 + freight 10 - discount 0 = 110.00
    assert kit.reasons(kit.Case().run(RuleSettings.from_overrides(single_limit="110"))) == []


def test_limit_value_one_unit_over_the_single_limit_fails(kit):
    result = kit.Case().run(RuleSettings.from_overrides(single_limit="109.9999"))
    assert kit.reasons(result) == ["SINGLE_LIMIT_EXCEEDED"]
    row = kit.exception_rows(result, "SINGLE_LIMIT_EXCEEDED")[0]
    assert (row["field"], row["expected"], row["actual"]) == ("limit_value", "109.9999", "110.00")
    assert result.verdicts["limit_value"].to_list() == [Decimal("110")]


def test_annual_walk_follows_app_time_not_row_order(kit):
    case = kit.complete_orders(
        {"order_no": "O3", "app_time": kit.at("2025-03-01 12:00:00")},
        {"order_no": "O1", "app_time": kit.at("2025-03-01 10:00:00")},
        {"order_no": "O2", "app_time": kit.at("2025-03-01 11:00:00")},
    )
    result = case.run(limits("220"))
    assert verdict_reasons(result) == {"O3": ["ANNUAL_LIMIT_EXCEEDED"], "O1": [], "O2": []}
    row = kit.exception_rows(result, "ANNUAL_LIMIT_EXCEEDED")[0]
    assert (row["field"], row["expected"], row["actual"]) == ("annual_limit", "220.00", "330.00")
    assert used(result) == [(2025, Decimal("220"))]


def test_annual_ties_on_time_go_by_platform_then_order_number(kit):
    same = kit.at("2025-03-01 10:00:00")
    case = kit.complete_orders(
        {"order_no": "B", "ebp_code": "EBP1", "app_time": same},
        {"order_no": "A", "ebp_code": "EBP2", "app_time": same},
        {"order_no": "A", "ebp_code": "EBP1", "app_time": same},
    )
    case.enterprises.append(kit.enterprise("EBP2", "ebp"))
    result = case.run(limits("220"))
    assert [list(r) for r in result.verdicts["reasons"]] == [[], ["ANNUAL_LIMIT_EXCEEDED"], []]


def test_annual_walk_starts_from_the_ledger(kit):
    ledger = [{"buyer_id_number": kit.BUYER_ID, "year": 2025, "used": kit.cny("25890")}]
    result = kit.Case(quota_ledger=ledger).run()
    assert kit.reasons(result) == []  # 25890 + 110 = 26000, exactly the limit
    assert used(result) == [(2025, Decimal("26000"))]


def test_annual_walk_one_unit_over_the_limit_fails_and_adds_nothing(kit):
    ledger = [{"buyer_id_number": kit.BUYER_ID, "year": 2025, "used": kit.cny("25890.0001")}]
    result = kit.Case(quota_ledger=ledger).run()
    assert kit.reasons(result) == ["ANNUAL_LIMIT_EXCEEDED"]
    row = kit.exception_rows(result, "ANNUAL_LIMIT_EXCEEDED")[0]
    assert (row["expected"], row["actual"]) == ("26000.00", "26000.0001")
    assert used(result) == [(2025, Decimal("25890.0001"))]


def test_ledger_keeps_other_buyers_and_years(kit):
    ledger = [
        {"buyer_id_number": kit.BUYER_ID, "year": 2024, "used": kit.cny("26000")},
        {"buyer_id_number": "A", "year": 2025, "used": kit.cny("1.5")},
    ]
    result = kit.Case(quota_ledger=ledger).run(mask_identity=False)
    assert kit.reasons(result) == []  # 2024 is full, the 2025 order is not affected
    assert result.ledger.rows() == [
        (kit.BUYER_ID, 2024, Decimal("26000")),
        (kit.BUYER_ID, 2025, Decimal("110")),
        ("A", 2025, Decimal("1.5")),  # sorted by buyer: digits before letters
    ]


def test_ledger_buyers_are_masked_by_default(kit):
    result = kit.Case().run()
    assert result.ledger["buyer_id_number"].to_list() == ["*" * 14 + "002X"]


def test_order_failing_another_reject_rule_is_skipped(kit):
    case = three_orders(kit, actual_paid=kit.cny("120.02"))  # O1 fails two reject rules
    result = case.run(limits("220"))
    assert verdict_reasons(result) == {
        "O1": ["PAY_AMOUNT_MISMATCH", "ORDER_TOTAL_MISMATCH"],
        "O2": [],
        "O3": [],
    }
    assert used(result) == [(2025, Decimal("220"))]
    assert result._raw.orders["annual_spent"].to_list() == [None, 0, 1_100_000]


def test_reject_rules_listed_after_the_annual_rule_also_skip(kit):
    case = three_orders(kit, tax_total=kit.cny("20"), actual_paid=kit.cny("130"))
    case.payments[0]["amount_paid"] = kit.cny("130")
    result = case.run(limits("220"))
    assert verdict_reasons(result)["O1"] == ["TAX_MISMATCH"]
    assert verdict_reasons(result)["O3"] == []


def test_orders_failing_only_review_rules_still_count(kit):
    case = three_orders(kit)
    case.waybills[0]["app_time"] = kit.at("2025-03-03 10:00:00")  # O1 arrives late
    result = case.run(limits("220"))
    assert verdict_reasons(result) == {
        "O1": ["ARRIVAL_WINDOW_EXCEEDED"],
        "O2": [],
        "O3": ["ANNUAL_LIMIT_EXCEEDED"],
    }


def test_a_rule_set_off_does_not_skip_the_order(kit):
    case = three_orders(kit, actual_paid=kit.cny("120.02"))
    result = case.run(limits("220", PAY_AMOUNT_MISMATCH="off", ORDER_TOTAL_MISMATCH="off"))
    assert verdict_reasons(result)["O3"] == ["ANNUAL_LIMIT_EXCEEDED"]


def test_annual_rule_off_is_not_reported_but_over_limit_orders_still_add_nothing(kit):
    result = three_orders(kit).run(limits("220", ANNUAL_LIMIT_EXCEEDED="off"))
    assert verdict_reasons(result) == {"O1": [], "O2": [], "O3": []}
    assert used(result) == [(2025, Decimal("220"))]


def test_annual_rule_as_review_walks_the_same(kit):
    result = three_orders(kit).run(limits("220", ANNUAL_LIMIT_EXCEEDED="review"))
    assert result.verdicts["verdict"].to_list() == ["pass", "pass", "review"]
    assert used(result) == [(2025, Decimal("220"))]


def test_a_smaller_order_after_a_refused_one_still_fits(kit):
    case = three_orders(kit)
    case.orders[1].update(goods_value=kit.cny("200"), actual_paid=kit.cny("220.01"))
    case.payments[1]["amount_paid"] = kit.cny("220.01")
    case.items[1].update(price=kit.cny("100"), total_price=kit.cny("200"))
    # O2's lines changed, so does its tax: keep the tax check out of this walk
    result = case.run(limits("220", TAX_MISMATCH="off"))
    assert verdict_reasons(result) == {"O1": [], "O2": ["ANNUAL_LIMIT_EXCEEDED"], "O3": []}
    assert used(result) == [(2025, Decimal("220"))]


def test_years_are_walked_separately(kit):
    case = kit.complete_orders(
        {"order_no": "O1", "app_time": kit.at("2024-12-31 23:30:00")},
        {"order_no": "O2", "app_time": kit.at("2025-01-01 00:30:00")},
    )
    result = case.run(limits("110"))
    assert verdict_reasons(result) == {"O1": [], "O2": []}
    assert used(result) == [(2024, Decimal("110")), (2025, Decimal("110"))]


def test_walk_is_per_buyer(kit):
    other = kit.valid_resident_id("11010519800101001")
    case = three_orders(kit)
    case.orders[2]["buyer_id_number"] = other
    case.payments[2]["payer_id_number"] = other
    result = case.run(limits("220"))
    assert verdict_reasons(result)["O3"] == []
    assert result.ledger.filter(pl.col("year") == 2025).height == 2


def plain_walk(orders: list[dict], start: dict, limit: int) -> tuple[dict, dict]:
    """SPEC §3.1 written as the obvious loop: (order_row -> (spent before, fails)), ledger."""
    spent = dict(start)
    outcome = {}
    walk_order = sorted(
        (o for o in orders if not o["skipped"]),
        key=lambda o: (o["app_time"], o["ebp_code"], o["order_no"], o["order_row"]),
    )
    for o in walk_order:
        key = (o["buyer_id_number"], o["_app_year"])
        before = spent.get(key, 0)
        fails = before + o["limit_value"] > limit
        outcome[o["order_row"]] = (before, fails)
        spent[key] = before if fails else before + o["limit_value"]
    for o in orders:
        spent.setdefault((o["buyer_id_number"], o["_app_year"]), 0)
    return outcome, spent


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["A", "B"]),  # buyer
            st.sampled_from([2024, 2025]),  # year
            st.integers(0, 3),  # app_time (coarse, to make ties)
            st.sampled_from(["E1", "E2"]),  # ebp_code
            st.sampled_from(["O1", "O2"]),  # order_no
            st.integers(-20, 120),  # limit_value
            st.booleans(),  # skipped
        ),
        max_size=25,
    ),
    st.dictionaries(
        st.tuples(st.sampled_from(["A", "C"]), st.sampled_from([2024, 2025])),
        st.integers(0, 150),
        max_size=3,
    ),
)
def test_annual_walk_equals_the_plain_loop(rows, start):
    base = datetime(2025, 1, 1, tzinfo=UTC)
    orders = [
        {
            "order_row": i,
            "buyer_id_number": b,
            "_app_year": y,
            "app_time": base + timedelta(hours=t),
            "ebp_code": e,
            "order_no": n,
            "limit_value": v,
            "skipped": s,
        }
        for i, (b, y, t, e, n, v, s) in enumerate(rows)
    ]
    frame = pl.DataFrame(
        orders,
        schema={
            "order_row": pl.Int64,
            "buyer_id_number": pl.String,
            "_app_year": pl.Int32,
            "app_time": pl.Datetime("us", "UTC"),
            "ebp_code": pl.String,
            "order_no": pl.String,
            "limit_value": pl.Int64,
            "skipped": pl.Boolean,
        },
    )
    ledger = pl.DataFrame(
        [{"buyer_id_number": b, "year": y, "used": u} for (b, y), u in start.items()],
        schema={"buyer_id_number": pl.String, "year": pl.Int64, "used": pl.Int64},
    )
    walked, updated = annual_walk(frame, ledger, 100)
    outcome, spent = plain_walk(orders, start, 100)
    got = {r: (s, f) for r, s, f in walked.rows()}
    assert got == outcome
    assert {(b, y): u for b, y, u in updated.rows()} == spent
    assert updated.select("buyer_id_number", "year").rows() == sorted(spent)
