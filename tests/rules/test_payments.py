"""Payment rules: amount, payer identity and name, payment references, currency."""

from __future__ import annotations

from matchcore.rules import RuleSettings


def test_amount_paid_one_unit_off_fails_with_default_zero_tolerance(kit):
    result = kit.Case(payments=[kit.payment(amount_paid=kit.cny("120.0101"))]).run()
    assert kit.reasons(result) == ["PAY_AMOUNT_MISMATCH"]
    assert kit.exception_rows(result, "PAY_AMOUNT_MISMATCH") == [
        {
            "order_no": "O1",
            "subject": "",
            "field": "amount_paid",
            "expected": "120.01",
            "actual": "120.0101",
        }
    ]


def test_amount_paid_exactly_at_the_tolerance_passes_and_one_unit_over_fails(kit):
    at_limit = kit.Case(payments=[kit.payment(amount_paid=kit.cny("120.02"))])
    over = kit.Case(payments=[kit.payment(amount_paid=kit.cny("120.0201"))])
    tolerant = RuleSettings.from_overrides(amount_tolerance="0.01")
    assert kit.reasons(at_limit.run(tolerant)) == []
    assert kit.reasons(over.run(tolerant)) == ["PAY_AMOUNT_MISMATCH"]


def test_payer_id_differs_fails_with_masked_values(kit):
    other = kit.valid_resident_id("11010519800101001")
    result = kit.Case(payments=[kit.payment(payer_id_number=other)]).run()
    assert kit.reasons(result) == ["PAYER_ID_MISMATCH"]
    row = kit.exception_rows(result, "PAYER_ID_MISMATCH")[0]
    assert row["field"] == "payer_id_number"
    assert row["expected"] == "*" * 14 + "002X"
    assert row["actual"] == "*" * 14 + other[-4:]


def test_payer_id_in_clear_when_masking_is_off(kit):
    other = kit.valid_resident_id("11010519800101001")
    result = kit.Case(payments=[kit.payment(payer_id_number=other)]).run(mask_identity=False)
    row = kit.exception_rows(result, "PAYER_ID_MISMATCH")[0]
    assert (row["expected"], row["actual"]) == (kit.BUYER_ID, other)


def test_payer_name_differs_fails_with_masked_names(kit):
    result = kit.Case(payments=[kit.payment(payer_name="李四")]).run()
    assert kit.reasons(result) == ["PAYER_NAME_MISMATCH"]
    row = kit.exception_rows(result, "PAYER_NAME_MISMATCH")[0]
    assert (row["field"], row["expected"], row["actual"]) == ("payer_name", "张*", "李*")


def test_order_naming_another_pay_code_fails_on_pay_code(kit):
    result = kit.Case(orders=[kit.order(pay_code="PAY2")]).run()
    assert kit.reasons(result) == ["PAY_REFERENCE_MISMATCH"]
    row = kit.exception_rows(result, "PAY_REFERENCE_MISMATCH")[0]
    assert (row["field"], row["expected"], row["actual"]) == ("pay_code", "PAY2", "PAY1")


def test_order_naming_another_transaction_fails_on_transaction_id(kit):
    result = kit.Case(orders=[kit.order(pay_code=None, pay_transaction_id="T9")]).run()
    assert kit.reasons(result) == ["PAY_REFERENCE_MISMATCH"]
    row = kit.exception_rows(result, "PAY_REFERENCE_MISMATCH")[0]
    assert (row["field"], row["expected"], row["actual"]) == ("pay_transaction_id", "T9", "T1")


def test_order_naming_no_payment_reference_passes(kit):
    result = kit.Case(orders=[kit.order(pay_code=None, pay_transaction_id=None)]).run()
    assert kit.reasons(result) == []


def test_currency_differs_fails(kit):
    result = kit.Case(payments=[kit.payment(currency="840")]).run()
    assert kit.reasons(result) == ["CURRENCY_MISMATCH"]
    row = kit.exception_rows(result, "CURRENCY_MISMATCH")[0]
    assert (row["field"], row["expected"], row["actual"]) == ("currency", "142", "840")


def test_null_currency_reads_as_cny(kit):
    unnamed = kit.Case(orders=[kit.order(currency=None)], payments=[kit.payment(currency=None)])
    assert kit.reasons(unnamed.run()) == []
    dollars = kit.Case(orders=[kit.order(currency=None)], payments=[kit.payment(currency="840")])
    row = kit.exception_rows(dollars.run(), "CURRENCY_MISMATCH")[0]
    assert (row["expected"], row["actual"]) == ("142", "840")
