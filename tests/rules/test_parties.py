"""Party rules: enterprise filed with the role, active and valid, not dishonest."""

from __future__ import annotations

from datetime import timedelta


def with_filings(kit, *changed, inventories=None, **case):
    """The baseline filings with some replaced (same code) or added."""
    codes = {row["code"] for row in changed}
    filings = [row for row in kit.filings() if row["code"] not in codes] + list(changed)
    return kit.Case(enterprises=filings, inventories=inventories, **case)


def party_rows(result, rule):
    """(subject, field, expected, actual) of one rule's exception rows, in output order."""
    rows = result.exceptions.filter(result.exceptions["rule"] == rule).to_dicts()
    return [(r["subject"], r["field"], r["expected"], r["actual"]) for r in rows]


def test_party_code_not_filed_fails(kit):
    case = kit.Case(enterprises=[r for r in kit.filings() if r["code"] != "EBC1"])
    result = case.run()
    assert kit.reasons(result) == ["ENTERPRISE_NOT_FILED"]
    assert party_rows(result, "ENTERPRISE_NOT_FILED") == [("EBC1", "ebc_code", "ebc", "not filed")]


def test_party_filed_without_its_role_fails_and_is_still_checked(kit):
    wrong_role = kit.enterprise("EBC1", "ebp", "pay", status="abnormal", credit_class="dishonest")
    result = with_filings(kit, wrong_role).run()
    assert kit.reasons(result) == [
        "ENTERPRISE_NOT_FILED",
        "ENTERPRISE_INACTIVE",
        "ENTERPRISE_DISHONEST",
    ]
    assert party_rows(result, "ENTERPRISE_NOT_FILED") == [("EBC1", "ebc_code", "ebc", "ebp,pay")]
    assert party_rows(result, "ENTERPRISE_INACTIVE") == [("EBC1", "status", "active", "abnormal")]
    assert party_rows(result, "ENTERPRISE_DISHONEST") == [
        ("EBC1", "credit_class", "advanced or general", "dishonest")
    ]


def test_one_filing_may_hold_several_roles(kit):
    case = with_filings(kit, kit.enterprise("EBP1", "ebp", "ebc"))
    case.orders[0]["ebc_code"] = "EBP1"
    case.products[0]["ebc_code"] = "EBP1"
    assert kit.reasons(case.run()) == []


def test_each_failing_party_gives_a_row_in_party_order(kit):
    case = kit.Case(enterprises=[kit.enterprise("EBC1", "ebc")], inventories=[kit.inventory()])
    result = case.run()
    assert kit.reasons(result) == ["ENTERPRISE_NOT_FILED"]
    assert [r[:2] for r in party_rows(result, "ENTERPRISE_NOT_FILED")] == [
        ("EBP1", "ebp_code"),
        ("PAY1", "pay_code"),
        ("LOG1", "logistics_code"),
        ("AGT1", "agent_code"),
    ]


def test_party_of_a_duplicated_payment_is_not_checked(kit):
    payments = [kit.payment(pay_code="PAYX"), kit.payment(pay_code="PAYX", pay_transaction_id="T2")]
    case = kit.Case(payments=payments, orders=[kit.order(pay_code=None)])
    assert kit.reasons(case.run()) == ["PAYMENT_DUPLICATE"]


def test_revoked_filing_is_inactive(kit):
    result = with_filings(kit, kit.enterprise("LOG1", "logistics", status="revoked")).run()
    assert party_rows(result, "ENTERPRISE_INACTIVE") == [("LOG1", "status", "active", "revoked")]


def test_validity_starting_at_the_order_time_passes(kit):
    start = kit.enterprise("PAY1", "pay", valid_from=kit.at("2025-03-01 10:00:00"))
    assert kit.reasons(with_filings(kit, start).run()) == []


def test_validity_starting_after_the_order_fails(kit):
    later = kit.at("2025-03-01 10:00:00") + timedelta(microseconds=1)
    result = with_filings(kit, kit.enterprise("PAY1", "pay", valid_from=later)).run()
    assert kit.reasons(result) == ["ENTERPRISE_INACTIVE"]
    assert party_rows(result, "ENTERPRISE_INACTIVE") == [
        ("PAY1", "valid_from", "2025-03-01 10:00:00.000001", "2025-03-01 10:00:00")
    ]


def test_validity_ending_at_the_order_time_fails(kit):
    end = kit.enterprise("EBP1", "ebp", valid_to=kit.at("2025-03-01 10:00:00"))
    result = with_filings(kit, end).run()
    assert party_rows(result, "ENTERPRISE_INACTIVE") == [
        ("EBP1", "valid_to", "2025-03-01 10:00:00", "2025-03-01 10:00:00")
    ]
    later = kit.enterprise("EBP1", "ebp", valid_to=kit.at("2025-03-01 10:00:01"))
    assert kit.reasons(with_filings(kit, later).run()) == []


def test_validity_at_the_ends_of_arrow_time_is_shown(kit):
    # The first and last microseconds Arrow holds, years beyond chrono's (and so Polars') reach.
    end = kit.enterprise("EBP1", "ebp", valid_to=-(2**63))
    start = kit.enterprise("PAY1", "pay", valid_from=2**63 - 1)
    result = with_filings(kit, end, start).run()
    assert party_rows(result, "ENTERPRISE_INACTIVE") == [
        ("EBP1", "valid_to", "-290308-12-22 04:04:48.224192", "2025-03-01 10:00:00"),
        ("PAY1", "valid_from", "+294247-01-10 12:00:54.775807", "2025-03-01 10:00:00"),
    ]
    shown = result.explain("O1").outcome("ENTERPRISE_INACTIVE").actual
    assert "pay PAY1: valid from +294247-01-10 12:00:54.775807" in shown


def test_dishonest_party_is_a_review(kit):
    result = with_filings(kit, kit.enterprise("EBP1", "ebp", credit_class="dishonest")).run()
    assert kit.reasons(result) == ["ENTERPRISE_DISHONEST"]
    assert result.verdicts["verdict"].to_list() == ["review"]


def test_agent_is_checked_only_with_inventories(kit):
    unfiled_agent = kit.inventory(agent_code="AGT9")
    result = kit.Case(inventories=[unfiled_agent]).run()
    assert party_rows(result, "ENTERPRISE_NOT_FILED") == [
        ("AGT9", "agent_code", "agent", "not filed")
    ]
    assert kit.reasons(kit.Case(enterprises=kit.filings()[:4]).run()) == []
