"""Product rules per line: filed, on the positive list, not prohibited."""

from __future__ import annotations

from datetime import timedelta

POSITIVE_MILK = {"hs_prefix": "0401", "list": "positive"}


def line_rows(result, rule):
    rows = result.exceptions.filter(result.exceptions["rule"] == rule).to_dicts()
    return [(r["subject"], r["field"], r["expected"], r["actual"]) for r in rows]


def test_line_of_an_unfiled_product_fails_and_skips_the_tax(kit):
    result = kit.Case(items=[kit.item(item_no="SKU9")]).run()
    assert kit.reasons(result) == ["PRODUCT_NOT_FILED"]
    assert line_rows(result, "PRODUCT_NOT_FILED") == [("1", "item_no", "filed", "not filed")]
    assert result.verdicts["computed_tax"].to_list() == [None]


def test_product_of_another_enterprise_is_not_filed_for_this_one(kit):
    result = kit.Case(products=[kit.product(ebc_code="EBC2")]).run()
    assert kit.reasons(result) == ["PRODUCT_NOT_FILED"]


def test_revoked_product_is_not_filed(kit):
    result = kit.Case(products=[kit.product(status="revoked")]).run()
    assert line_rows(result, "PRODUCT_NOT_FILED") == [("1", "status", "active", "revoked")]


def test_product_validity_bounds(kit):
    order_time = kit.at("2025-03-01 10:00:00")
    starts_now = kit.Case(products=[kit.product(valid_from=order_time)])
    assert kit.reasons(starts_now.run()) == []
    starts_later = kit.Case(products=[kit.product(valid_from=order_time + timedelta(seconds=1))])
    assert line_rows(starts_later.run(), "PRODUCT_NOT_FILED") == [
        ("1", "valid_from", "2025-03-01 10:00:01", "2025-03-01 10:00:00")
    ]
    ends_now = kit.Case(products=[kit.product(valid_to=order_time)])
    assert line_rows(ends_now.run(), "PRODUCT_NOT_FILED") == [
        ("1", "valid_to", "2025-03-01 10:00:00", "2025-03-01 10:00:00")
    ]


def test_one_row_per_failing_line_in_gnum_order(kit):
    items = [
        kit.item(gnum=3, item_no="SKU8", qty=10_000, price=1, total_price=1),
        kit.item(gnum=1, item_no="SKU9"),
    ]
    result = kit.Case(items=items).run(kit.severities(GOODS_VALUE_MISMATCH="off"))
    assert [r[0] for r in line_rows(result, "PRODUCT_NOT_FILED")] == ["1", "3"]


def test_positive_list_rule_is_off_without_hs_lists(kit):
    assert kit.reasons(kit.Case(products=[kit.product(hs_code="9999999999")]).run()) == []


def test_product_on_a_positive_prefix_passes(kit):
    assert kit.reasons(kit.Case(hs_lists=[POSITIVE_MILK]).run()) == []
    exact = {"hs_prefix": "0401100000", "list": "positive"}
    assert kit.reasons(kit.Case(hs_lists=[exact]).run()) == []


def test_product_on_no_positive_prefix_fails(kit):
    lists = [
        {"hs_prefix": "0402", "list": "positive"},
        {"hs_prefix": "04011", "list": "prohibited"},
    ]
    result = kit.Case(hs_lists=lists, products=[kit.product(hs_code="0401200000")]).run()
    assert kit.reasons(result) == ["PRODUCT_NOT_ON_POSITIVE_LIST"]
    assert line_rows(result, "PRODUCT_NOT_ON_POSITIVE_LIST") == [
        ("1", "hs_code", "positive", "0401200000")
    ]


def test_product_on_a_prohibited_prefix_fails(kit):
    lists = [POSITIVE_MILK, {"hs_prefix": "040110", "list": "prohibited"}]
    result = kit.Case(hs_lists=lists).run()
    assert kit.reasons(result) == ["PRODUCT_PROHIBITED"]
    assert line_rows(result, "PRODUCT_PROHIBITED") == [
        ("1", "hs_code", "not prohibited", "0401100000")
    ]


def test_unfiled_lines_are_not_checked_against_the_lists(kit):
    lists = [{"hs_prefix": "9301", "list": "prohibited"}]
    case = kit.Case(hs_lists=lists, products=[kit.product(hs_code="9301000000", status="revoked")])
    assert kit.reasons(case.run()) == ["PRODUCT_NOT_FILED"]
