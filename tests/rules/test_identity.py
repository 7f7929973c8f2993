"""BUYER_ID_INVALID: GB 11643 check character and a real birth date not after the order."""

from __future__ import annotations

import pytest


def with_buyer(kit, number: str, **order):
    """A baseline case whose buyer (order, payment) has this ID number."""
    return kit.Case(
        orders=[kit.order(buyer_id_number=number, **order)],
        payments=[kit.payment(payer_id_number=number)],
    )


def test_valid_resident_id_passes(kit):
    assert kit.reasons(with_buyer(kit, "11010519491231002X").run()) == []


@pytest.mark.parametrize(
    "number",
    [
        "110105194912310021",  # check character should be X
        "11010519491231002",  # 17 characters
        "11010519491231002X1",  # 19 characters
        "11010519491231002Y",  # a letter other than X
        "1101051949123100AX",  # a letter among the digits
    ],
)
def test_malformed_resident_id_fails(kit, number):
    result = with_buyer(kit, number).run()
    assert kit.reasons(result) == ["BUYER_ID_INVALID"]


def test_invalid_id_exception_masks_the_number(kit):
    result = with_buyer(kit, "110105194912310021").run()
    row = kit.exception_rows(result, "BUYER_ID_INVALID")[0]
    assert (row["field"], row["expected"], row["actual"]) == (
        "buyer_id_number",
        "GB 11643 resident ID",
        "*" * 14 + "0021",
    )


@pytest.mark.parametrize(
    ("birth", "valid"),
    [
        ("20000229", True),  # leap year (divisible by 400)
        ("19000229", False),  # not a leap year (divisible by 100)
        ("19490230", False),
        ("19491301", False),
        ("19490100", False),
        ("19480229", True),
        ("20250301", True),  # born on the order's day
        ("20250302", False),  # born after the order
    ],
)
def test_birth_date_must_be_real_and_not_after_the_order(kit, birth, valid):
    number = kit.valid_resident_id("110105" + birth + "001")
    result = with_buyer(kit, number).run()
    assert kit.reasons(result) == ([] if valid else ["BUYER_ID_INVALID"])


def test_order_day_is_taken_in_china_time(kit):
    # 2025-03-01 00:30 in Shanghai is still 2025-02-28 in UTC
    number = kit.valid_resident_id("11010520250301001")
    case = with_buyer(kit, number, app_time=kit.at("2025-03-01 00:30:00"))
    case.payments[0]["pay_time"] = kit.at("2025-03-01 00:35:00")
    case.waybills[0]["app_time"] = kit.at("2025-03-01 01:00:00")
    assert kit.reasons(case.run()) == []


def test_other_id_types_are_not_checked(kit):
    result = with_buyer(kit, "E12345678", buyer_id_type="2").run()
    assert kit.reasons(result) == []
