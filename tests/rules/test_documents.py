"""Document presence rules: duplicates, missing payment/waybill/lines, linking and orphans."""

from __future__ import annotations

import polars as pl


def test_baseline_order_passes_every_rule(kit):
    result = kit.Case().run()
    assert result.verdicts["verdict"].to_list() == ["pass"]
    assert kit.reasons(result) == []
    assert result.exceptions.height == 0
    assert result.orphans.height == 0


def test_duplicated_order_fails_on_every_copy_and_other_checks_still_run(kit):
    case = kit.Case(orders=[kit.order(), kit.order(actual_paid=kit.cny("120.02"))])
    result = case.run()
    assert kit.reasons(result, 0) == ["ORDER_DUPLICATE"]
    # the second copy is checked like any order: it was paid 120.01 but declares 120.02
    assert kit.reasons(result, 1) == [
        "ORDER_DUPLICATE",
        "PAY_AMOUNT_MISMATCH",
        "ORDER_TOTAL_MISMATCH",
    ]
    rows = kit.exception_rows(result, "ORDER_DUPLICATE")
    assert [(r["field"], r["expected"], r["actual"]) for r in rows] == [("order", "1", "2")] * 2


def test_missing_payment_fails_and_skips_payment_checks(kit):
    # a different currency would fail CURRENCY_MISMATCH if there were a payment to compare
    case = kit.Case(orders=[kit.order(currency="840")], payments=[])
    result = case.run()
    assert kit.reasons(result) == ["PAYMENT_MISSING"]
    assert kit.exception_rows(result, "PAYMENT_MISSING") == [
        {"order_no": "O1", "subject": "", "field": "payment", "expected": "1", "actual": "0"}
    ]
    assert result.verdicts["pay_transaction_id"].to_list() == [None]


def test_duplicated_payment_fails_and_checks_use_neither(kit):
    payments = [kit.payment(), kit.payment(pay_transaction_id="T2", amount_paid=kit.cny("1"))]
    result = kit.Case(payments=payments).run()
    assert kit.reasons(result) == ["PAYMENT_DUPLICATE"]
    assert kit.exception_rows(result, "PAYMENT_DUPLICATE")[0]["actual"] == "2"
    assert result.verdicts["pay_transaction_id"].to_list() == [None]


def test_missing_waybill_fails_and_skips_consignee_checks(kit):
    case = kit.Case(orders=[kit.order(consignee="李四")], waybills=[])
    result = case.run()
    assert kit.reasons(result) == ["WAYBILL_MISSING"]
    row = kit.exception_rows(result, "WAYBILL_MISSING")[0]
    assert (row["field"], row["expected"], row["actual"]) == ("waybill", "1", "0")


def test_duplicated_waybill_fails_and_checks_use_neither(kit):
    waybills = [kit.waybill(), kit.waybill(logistics_no="W2", consignee="李四")]
    result = kit.Case(waybills=waybills).run()
    assert kit.reasons(result) == ["WAYBILL_DUPLICATE"]
    assert kit.exception_rows(result, "WAYBILL_DUPLICATE")[0]["actual"] == "2"
    assert result.verdicts["logistics_no"].to_list() == [None]


def test_order_without_lines_fails_items_missing_and_skips_line_checks(kit):
    result = kit.Case(items=[]).run()
    assert kit.reasons(result) == ["ITEMS_MISSING"]
    row = kit.exception_rows(result, "ITEMS_MISSING")[0]
    assert (row["field"], row["expected"], row["actual"]) == ("order_items", ">=1", "0")
    assert result.verdicts["computed_tax"].to_list() == [None]


def test_waybill_without_order_key_links_through_its_inventory(kit):
    case = kit.Case(
        waybills=[kit.waybill(order_no=None, ebp_code=None)], inventories=[kit.inventory()]
    )
    result = case.run()
    assert kit.reasons(result) == []
    assert result.verdicts["logistics_no"].to_list() == ["W1"]
    assert result.orphans.height == 0


def test_waybill_without_order_key_is_an_orphan_without_inventories(kit):
    result = kit.Case(waybills=[kit.waybill(order_no=None, ebp_code=None)]).run()
    assert kit.reasons(result) == ["WAYBILL_MISSING"]
    assert result.orphans.select("document", "row", "doc_code", "doc_no").to_dicts() == [
        {"document": "waybill", "row": 1, "doc_code": "LOG1", "doc_no": "W1"}
    ]


def test_waybill_naming_an_unknown_order_does_not_fall_back_to_the_inventory(kit):
    case = kit.Case(waybills=[kit.waybill(order_no="O9")], inventories=[kit.inventory()])
    result = case.run()
    assert kit.reasons(result) == ["WAYBILL_MISSING"]
    assert result.orphans["document"].to_list() == ["waybill"]


def test_waybill_with_half_an_order_key_links_to_nothing(kit):
    case = kit.Case(waybills=[kit.waybill(order_no=None)], inventories=[kit.inventory()])
    result = case.run()
    assert kit.reasons(result) == ["WAYBILL_MISSING"]
    assert result.orphans["document"].to_list() == ["waybill"]


def test_documents_naming_no_order_are_orphans_with_their_source_rows(kit):
    case = kit.Case(
        payments=[kit.payment(), kit.payment(order_no="O8", pay_transaction_id="T8")],
        items=[kit.item(), kit.item(order_no="O9", gnum=3)],
        inventories=[kit.inventory(), kit.inventory(order_no="O7", logistics_no="W7")],
    )
    result = case.run()
    assert kit.reasons(result) == []
    assert result.orphans.to_dicts() == [
        {
            "document": "payment",
            "row": 2,
            "ebp_code": "EBP1",
            "order_no": "O8",
            "doc_code": "PAY1",
            "doc_no": "T8",
            "reason": "NO_ORDER",
        },
        {
            "document": "order_item",
            "row": 2,
            "ebp_code": "EBP1",
            "order_no": "O9",
            "doc_code": None,
            "doc_no": "3",
            "reason": "NO_ORDER",
        },
        {
            "document": "inventory",
            "row": 2,
            "ebp_code": "EBP1",
            "order_no": "O7",
            "doc_code": None,
            "doc_no": None,
            "reason": "NO_ORDER",
        },
    ]


def test_copies_of_a_duplicated_order_all_see_the_same_documents(kit):
    result = kit.Case(orders=[kit.order(), kit.order()]).run()
    assert result.verdicts["pay_transaction_id"].to_list() == ["T1", "T1"]
    assert result.verdicts["logistics_no"].to_list() == ["W1", "W1"]
    assert result.verdicts.filter(pl.col("verdict") == "reject").height == 2


def test_waybill_named_by_two_inventories_links_to_both_orders(kit):
    case = kit.complete_orders({"order_no": "O1"}, {"order_no": "O2"})
    case.waybills = [kit.waybill(order_no=None, ebp_code=None)]
    case.inventories = [kit.inventory(), kit.inventory(order_no="O2")]
    result = case.run()
    assert result.verdicts["logistics_no"].to_list() == ["W1", "W1"]
    assert result.orphans.height == 0
