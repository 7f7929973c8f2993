"""Hand-checked orders through the kernel: a clean order passes with the tax worked out by hand,
and single defects set exactly their rule's bit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from matchcore.engine.kernel import KernelEngine
from matchcore.rules import Rule, RuleSettings

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CLEAN_ID = "11010519491231002X"  # GB 11643 check character X for these 17 digits


def clean_rows() -> dict[str, list[dict]]:
    """One order that passes every rule: 100 CNY goods at 13 % VAT, tax 0.7 x 13 = 9.10 CNY."""
    order = {
        "order_no": "A1",
        "ebp_code": "EBP",
        "ebc_code": "EBC",
        "goods_value": 1_000_000,
        "freight": 0,
        "discount": 0,
        "tax_total": 91_000,
        "actual_paid": 1_091_000,
        "currency": "142",
        "buyer_id_type": "1",
        "buyer_id_number": CLEAN_ID,
        "buyer_name": "张三",
        "consignee": "张三",
        "consignee_telephone": "138-0000-1111",
        "app_time": T0,
    }
    return {
        "orders": [order],
        "payments": [
            {
                "pay_code": "PAY",
                "pay_transaction_id": "T1",
                "order_no": "A1",
                "ebp_code": "EBP",
                "payer_id_number": CLEAN_ID,
                "payer_name": "张三",
                "amount_paid": 1_091_000,
                "currency": "142",
                "pay_time": T0,
            }
        ],
        "waybills": [
            {
                "logistics_code": "LOG",
                "logistics_no": "W1",
                "order_no": "A1",
                "ebp_code": "EBP",
                "consignee": "张三",
                "consignee_telephone": "13800001111",
                "app_time": T0,
            }
        ],
        "order_items": [
            {
                "order_no": "A1",
                "ebp_code": "EBP",
                "gnum": 1,
                "item_no": "SKU1",
                "qty": 10_000,
                "price": 1_000_000,
                "total_price": 1_000_000,
            }
        ],
        "products": [
            {
                "ebc_code": "EBC",
                "item_no": "SKU1",
                "hs_code": "3304990099",
                "vat_rate": 0.13,
                "consumption_tax_rate": 0.0,
                "status": "active",
            }
        ],
        "enterprises": [
            {"code": code, "roles": roles, "credit_class": "general", "status": "active"}
            for code, roles in (("EBP", 1), ("EBC", 2), ("PAY", 4), ("LOG", 8))
        ],
    }


def run(make_tables, rows):
    return KernelEngine().run(make_tables(**rows), RuleSettings())


def test_clean_order_passes_with_hand_computed_tax(make_tables):
    out = run(make_tables, clean_rows()).orders.row(0, named=True)
    assert out["reason_mask"] == 0
    assert out["computed_tax"] == 91_000
    assert out["limit_value"] == 1_000_000
    assert out["items_total"] == 1_000_000
    assert (out["payment_row"], out["waybill_row"], out["inventory_row"]) == (0, 0, None)
    assert out["annual_spent"] == 0


@pytest.mark.parametrize(
    ("table", "column", "value", "rule"),
    [
        ("orders", "buyer_id_type", "2", None),  # a passport: no resident-ID check
        ("orders", "buyer_id_number", "110105194912310021", Rule.BUYER_ID_INVALID),
        ("payments", "payer_id_number", "110105194912310021", Rule.PAYER_ID_MISMATCH),
        ("payments", "payer_name", "李四", Rule.PAYER_NAME_MISMATCH),
        ("payments", "amount_paid", 1_091_001, Rule.PAY_AMOUNT_MISMATCH),
        ("payments", "currency", "502", Rule.CURRENCY_MISMATCH),
        ("waybills", "consignee", "李四", Rule.CONSIGNEE_MISMATCH),
        ("waybills", "consignee_telephone", "139 0000 1111", Rule.CONSIGNEE_PHONE_MISMATCH),
        ("orders", "tax_total", 92_001, None),  # also breaks the order total
        ("order_items", "total_price", 1_000_101, None),
    ],
)
def test_one_defect_sets_its_bit(make_tables, table, column, value, rule):
    rows = clean_rows()
    rows[table][0][column] = value
    if column == "buyer_id_number":
        rows["payments"][0]["payer_id_number"] = value
    mask = run(make_tables, rows).orders["reason_mask"][0]
    if column == "buyer_id_type":
        assert mask == 0
    elif rule is not None:
        assert mask == rule.bit
    elif column == "tax_total":
        assert mask == Rule.TAX_MISMATCH.bit | Rule.ORDER_TOTAL_MISMATCH.bit
    else:  # 1 x 100 CNY vs 100.0101 CNY: line total off by more than 0.01, goods value too;
        # the tax (9.100919 -> 9.10 CNY) still matches
        assert mask == Rule.LINE_TOTAL_MISMATCH.bit | Rule.GOODS_VALUE_MISMATCH.bit


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
DAY_US = 86_400_000_000  # the default arrival window


@pytest.mark.parametrize(
    ("order", "pay", "waybill", "exceeded"),
    [
        (T0, INT64_MAX, INT64_MIN, True),  # 2**64 - 1 us apart: wrapped in int64, that was -1
        (T0, INT64_MIN, INT64_MAX, True),
        (INT64_MAX - DAY_US, INT64_MAX, INT64_MAX, False),  # exactly the window, at the end
        (INT64_MAX - DAY_US - 1, INT64_MAX, INT64_MAX, True),
    ],
)
def test_arrival_window_at_the_ends_of_int64(make_tables, order, pay, waybill, exceeded):
    rows = clean_rows()
    rows["orders"][0]["app_time"] = order
    rows["payments"][0]["pay_time"] = pay
    rows["waybills"][0]["app_time"] = waybill
    mask = run(make_tables, rows).orders["reason_mask"][0]
    assert mask == (Rule.ARRIVAL_WINDOW_EXCEEDED.bit if exceeded else 0)


def test_line_total_tolerance_is_one_cent_exactly(make_tables):
    rows = clean_rows()
    rows["order_items"][0]["total_price"] = 1_000_100  # 0.01 CNY off: within tolerance
    rows["orders"][0]["goods_value"] = 1_000_100
    rows["orders"][0]["actual_paid"] = 1_091_100
    rows["payments"][0]["amount_paid"] = 1_091_100
    assert run(make_tables, rows).orders["reason_mask"][0] == 0


def test_duplicated_payment_skips_payment_checks(make_tables):
    rows = clean_rows()
    second = dict(rows["payments"][0], pay_transaction_id="T2", payer_name="李四")
    rows["payments"].append(second)
    out = run(make_tables, rows).orders.row(0, named=True)
    assert out["reason_mask"] == Rule.PAYMENT_DUPLICATE.bit
    assert out["payment_row"] is None
    assert out["payment_count"] == 2


def test_party_without_role_gives_a_subject_row(make_tables):
    rows = clean_rows()
    rows["enterprises"][3]["roles"] = 4  # the logistics company filed only as a payer
    result = run(make_tables, rows)
    assert result.orders["reason_mask"][0] == Rule.ENTERPRISE_NOT_FILED.bit
    assert result.subjects.rows() == [(0, Rule.ENTERPRISE_NOT_FILED.value, 3, None, 1)]


def test_annual_limit_walks_in_time_order(make_tables):
    rows = clean_rows()
    later = dict(rows["orders"][0], order_no="A0", app_time=T0.replace(hour=13))
    rows["orders"].insert(0, later)  # first in the table, second in time
    for table, extra in (
        ("payments", {"pay_transaction_id": "T0"}),
        ("waybills", {"logistics_no": "W0"}),
        ("order_items", {}),
    ):
        rows[table].append(dict(rows[table][0], order_no="A0", **extra))
    rows["quota_ledger"] = [{"buyer_id_number": CLEAN_ID, "year": 2025, "used": 259_000_000}]
    settings = RuleSettings.from_overrides({"ORDER_TOTAL_MISMATCH": "off"})
    tables = make_tables(**rows)
    out = KernelEngine().run(tables, settings)
    # The earlier order A1 is walked first: 25900 + 100 = 26000 fits; A0 then exceeds.
    annual = out.orders["reason_mask"].to_list()
    assert annual[1] & Rule.ANNUAL_LIMIT_EXCEEDED.bit == 0
    assert annual[0] & Rule.ANNUAL_LIMIT_EXCEEDED.bit
    assert out.ledger.rows() == [(CLEAN_ID, 2025, 260_000_000)]
