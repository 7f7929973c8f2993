"""Amount rules: order total, goods value against the lines, line totals (exact, 128-bit)."""

from __future__ import annotations

from matchcore.rules import RuleSettings


def test_order_total_one_unit_off_fails(kit):
    # paid 120.0101 everywhere, but 100 + 10 - 0 + 10.01 = 120.01
    case = kit.Case(
        orders=[kit.order(actual_paid=kit.cny("120.0101"))],
        payments=[kit.payment(amount_paid=kit.cny("120.0101"))],
    )
    result = case.run()
    assert kit.reasons(result) == ["ORDER_TOTAL_MISMATCH"]
    row = kit.exception_rows(result, "ORDER_TOTAL_MISMATCH")[0]
    assert (row["field"], row["expected"], row["actual"]) == ("actual_paid", "120.01", "120.0101")


def test_order_total_counts_the_discount(kit):
    # 100 + 10 - 0.01 + 10.01 = 120.00 (the tax does not change: freight - discount shares it)
    case = kit.Case(
        orders=[kit.order(discount=kit.cny("0.01"), actual_paid=kit.cny("120.00"))],
        payments=[kit.payment(amount_paid=kit.cny("120.00"))],
    )
    result = case.run(kit.severities(TAX_MISMATCH="off"))
    assert kit.reasons(result) == []


def test_order_total_at_the_tolerance_passes(kit):
    case = kit.Case(
        orders=[kit.order(actual_paid=kit.cny("120.02"))],
        payments=[kit.payment(amount_paid=kit.cny("120.02"))],
    )
    assert kit.reasons(case.run(RuleSettings.from_overrides(amount_tolerance="0.01"))) == []
    assert kit.reasons(case.run(RuleSettings.from_overrides(amount_tolerance="0.0099"))) == [
        "ORDER_TOTAL_MISMATCH"
    ]


def test_goods_value_not_the_sum_of_the_lines_fails(kit):
    case = kit.Case(
        items=[kit.item(), kit.item(gnum=2, qty=10_000, price=1, total_price=1)],
    )
    result = case.run(kit.severities(TAX_MISMATCH="off"))
    assert kit.reasons(result) == ["GOODS_VALUE_MISMATCH"]
    row = kit.exception_rows(result, "GOODS_VALUE_MISMATCH")[0]
    assert (row["field"], row["expected"], row["actual"]) == ("goods_value", "100.0001", "100.00")


def test_goods_value_at_the_tolerance_passes(kit):
    case = kit.Case(items=[kit.item(), kit.item(gnum=2, qty=10_000, price=1, total_price=1)])
    settings = RuleSettings.from_overrides({"TAX_MISMATCH": "off"}, amount_tolerance="0.0001")
    assert kit.reasons(case.run(settings)) == []


def test_line_total_off_by_exactly_one_cent_passes(kit):
    case = kit.Case(items=[kit.item(total_price=kit.cny("100.01"))])
    assert "LINE_TOTAL_MISMATCH" not in kit.reasons(case.run())


def test_line_total_off_by_more_than_one_cent_fails_for_that_line(kit):
    case = kit.Case(items=[kit.item(total_price=kit.cny("100.0101"))])
    result = case.run()
    assert "LINE_TOTAL_MISMATCH" in kit.reasons(result)
    assert kit.exception_rows(result, "LINE_TOTAL_MISMATCH") == [
        {
            "order_no": "O1",
            "subject": "1",
            "field": "total_price",
            "expected": "100.00",
            "actual": "100.0101",
        }
    ]


def test_line_total_with_fractional_quantity_is_exact(kit):
    # 1.5 × 33.3333 = 49.99995 exactly; 49.9899 is 0.01005 away
    line = kit.item(qty=15_000, price=kit.cny("33.3333"), total_price=kit.cny("49.9899"))
    result = kit.Case(items=[line]).run()
    row = kit.exception_rows(result, "LINE_TOTAL_MISMATCH")[0]
    assert (row["expected"], row["actual"]) == ("49.99995", "49.9899")
    close = kit.item(qty=15_000, price=kit.cny("33.3333"), total_price=kit.cny("50.00"))
    assert "LINE_TOTAL_MISMATCH" not in kit.reasons(kit.Case(items=[close]).run())


def test_line_total_product_beyond_64_bits_is_exact(kit):
    # 1,000,000 units × 1,000,000.00 CNY: qty × price is 10^20 (units of 10^-8), over int64
    huge = {"qty": 10**6 * 10_000, "price": kit.cny("1000000")}
    equal = kit.Case(items=[kit.item(**huge, total_price=kit.cny("1000000000000"))])
    off = kit.Case(items=[kit.item(**huge, total_price=kit.cny("1000000000000.02"))])
    assert "LINE_TOTAL_MISMATCH" not in kit.reasons(equal.run())
    row = kit.exception_rows(off.run(), "LINE_TOTAL_MISMATCH")[0]
    assert (row["expected"], row["actual"]) == ("1000000000000.00", "1000000000000.02")
