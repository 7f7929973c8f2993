"""Waybill rules: consignee, consignee phone, and the arrival window of the three documents."""

from __future__ import annotations

import pytest

from matchcore.report import from_result
from matchcore.report.aggregate import arrival_gaps
from matchcore.rules import RuleSettings

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def test_consignee_differs_fails_with_masked_names(kit):
    result = kit.Case(waybills=[kit.waybill(consignee="李四")]).run()
    assert kit.reasons(result) == ["CONSIGNEE_MISMATCH"]
    row = kit.exception_rows(result, "CONSIGNEE_MISMATCH")[0]
    assert (row["field"], row["expected"], row["actual"]) == ("consignee", "张*", "李*")


def test_phones_compare_by_their_digits(kit):
    # the order writes 138-0000-0001, the waybill (13800000001): same digits
    result = kit.Case(waybills=[kit.waybill(consignee_telephone="(13800000001)")]).run()
    assert kit.reasons(result) == []


def test_phone_differs_is_a_warning_that_keeps_the_pass_verdict(kit):
    result = kit.Case(waybills=[kit.waybill(consignee_telephone="13800000002")]).run()
    assert kit.reasons(result) == ["CONSIGNEE_PHONE_MISMATCH"]
    assert result.verdicts["verdict"].to_list() == ["pass"]
    row = result.exceptions.row(0, named=True)
    assert row["severity"] == "warn"
    assert (row["field"], row["expected"], row["actual"]) == (
        "consignee_telephone",
        "*********0001",
        "*******0002",
    )


def test_phone_absent_on_one_side_is_not_compared(kit):
    result = kit.Case(waybills=[kit.waybill(consignee_telephone=None)]).run()
    assert kit.reasons(result) == []


def test_arrival_gap_of_exactly_the_window_passes(kit):
    # order 2025-03-01 10:00, waybill 24 h later
    result = kit.Case(waybills=[kit.waybill(app_time=kit.at("2025-03-02 10:00:00"))]).run()
    assert kit.reasons(result) == []


def test_arrival_gap_one_microsecond_over_is_a_review(kit):
    late = kit.waybill(app_time=kit.at("2025-03-02 10:00:00.000001"))
    result = kit.Case(waybills=[late]).run()
    assert kit.reasons(result) == ["ARRIVAL_WINDOW_EXCEEDED"]
    assert result.verdicts["verdict"].to_list() == ["review"]
    row = kit.exception_rows(result, "ARRIVAL_WINDOW_EXCEEDED")[0]
    assert (row["field"], row["expected"], row["actual"]) == (
        "arrival_window",
        "86400",
        "86400.000001",
    )


def test_arrival_gap_spans_the_earliest_and_latest_of_the_three(kit):
    # payment a day before the order, waybill two hours after it: 26 h
    early = kit.payment(pay_time=kit.at("2025-02-28 10:00:00"))
    result = kit.Case(payments=[early]).run()
    row = kit.exception_rows(result, "ARRIVAL_WINDOW_EXCEEDED")[0]
    assert row["actual"] == "93600"


def test_arrival_window_parameter(kit):
    settings = RuleSettings.from_overrides(arrival_window="2h")
    assert kit.reasons(kit.Case().run(settings)) == []  # waybill exactly 2 h after the order
    one_second_late = kit.waybill(app_time=kit.at("2025-03-01 12:00:01"))
    assert kit.reasons(kit.Case(waybills=[one_second_late]).run(settings)) == [
        "ARRIVAL_WINDOW_EXCEEDED"
    ]


def test_arrival_window_needs_the_single_payment(kit):
    late = kit.waybill(app_time=kit.at("2025-03-05 10:00:00"))
    assert kit.reasons(kit.Case(waybills=[late], payments=[]).run()) == ["PAYMENT_MISSING"]


@pytest.mark.parametrize(
    ("pay_time", "waybill_time"), [(INT64_MAX, INT64_MIN), (INT64_MIN, INT64_MAX)]
)
def test_arrival_gap_between_the_ends_of_int64_is_exact(kit, pay_time, waybill_time):
    # 2**64 - 1 us apart, which int64 (and Duration) subtraction wrapped around to -1 us
    case = kit.Case(
        payments=[kit.payment(pay_time=pay_time)], waybills=[kit.waybill(app_time=waybill_time)]
    )
    result = case.run()
    assert kit.reasons(result) == ["ARRIVAL_WINDOW_EXCEEDED"]
    row = kit.exception_rows(result, "ARRIVAL_WINDOW_EXCEEDED")[0]
    assert (row["expected"], row["actual"]) == ("86400", "18446744073709.551615")
    # the HTML report puts the order in the last band of arrival gaps
    gaps = arrival_gaps(from_result(result))
    assert gaps is not None
    assert gaps["orders"].to_list() == [0] * (gaps.height - 1) + [1]
