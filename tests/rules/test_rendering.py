"""Rendering of the outputs: verdict precedence, severities, reason order and mask, exception
order and masking, money as exact decimals."""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from matchcore.rules import Rule


def test_verdict_takes_the_worst_failed_severity(kit):
    late = kit.waybill(app_time=kit.at("2025-03-03 10:00:00"), consignee_telephone="1")
    review = kit.Case(waybills=[late]).run()
    assert review.verdicts["verdict"].to_list() == ["review"]
    reject = kit.Case(waybills=[late], payments=[kit.payment(currency="840")]).run()
    assert reject.verdicts["verdict"].to_list() == ["reject"]


def test_severity_overrides_change_the_verdict_and_the_exception_row(kit):
    case = kit.Case(payments=[kit.payment(currency="840")])
    result = case.run(kit.severities(CURRENCY_MISMATCH="review"))
    assert result.verdicts["verdict"].to_list() == ["review"]
    assert result.exceptions["severity"].to_list() == ["review"]
    warned = case.run(kit.severities(CURRENCY_MISMATCH="warn"))
    assert warned.verdicts["verdict"].to_list() == ["pass"]


def test_rule_set_off_is_not_reported(kit):
    case = kit.Case(payments=[kit.payment(currency="840")])
    result = case.run(kit.severities(CURRENCY_MISMATCH="off"))
    assert kit.reasons(result) == []
    assert result.verdicts["reason_mask"].to_list() == [0]
    assert result.exceptions.height == 0


def test_reasons_follow_rule_order_and_the_mask_has_their_bits(kit):
    case = kit.Case(payments=[kit.payment(currency="840", payer_name="李四")])
    result = case.run()
    assert kit.reasons(result) == ["PAYER_NAME_MISMATCH", "CURRENCY_MISMATCH"]
    assert result.verdicts["reason_mask"].to_list() == [(1 << 8) | (1 << 10)]
    assert result.verdicts["reason_mask"].dtype == pl.UInt64
    assert Rule.PAYER_NAME_MISMATCH.value == 8 and Rule.CURRENCY_MISMATCH.value == 10


def test_exceptions_are_sorted_by_order_row_rule_and_subject(kit):
    case = kit.complete_orders({"order_no": "O2"}, {"order_no": "O1"})
    case.payments[0]["currency"] = "840"
    case.payments[1]["payer_name"] = "李四"
    case.items[0]["item_no"] = "SKU9"
    case.enterprises = [r for r in kit.filings() if r["code"] not in ("EBC1", "PAY1")]
    result = case.run()
    assert result.exceptions.select("order_no", "rule", "subject").rows() == [
        ("O2", "CURRENCY_MISMATCH", ""),
        ("O2", "ENTERPRISE_NOT_FILED", "EBC1"),
        ("O2", "ENTERPRISE_NOT_FILED", "PAY1"),
        ("O2", "PRODUCT_NOT_FILED", "1"),
        ("O1", "PAYER_NAME_MISMATCH", ""),
        ("O1", "ENTERPRISE_NOT_FILED", "EBC1"),
        ("O1", "ENTERPRISE_NOT_FILED", "PAY1"),
    ]


def test_identity_values_in_clear_when_masking_is_off(kit):
    case = kit.Case(
        payments=[kit.payment(payer_name="李四")],
        waybills=[kit.waybill(consignee="王五", consignee_telephone="13900000000")],
    )
    clear = case.run(mask_identity=False).exceptions.select("expected", "actual").rows()
    assert clear == [("张三", "李四"), ("张三", "王五"), ("138-0000-0001", "13900000000")]
    masked = case.run().exceptions.select("expected", "actual").rows()
    assert masked == [("张*", "李*"), ("张*", "王*"), ("*********0001", "*******0000")]


def test_money_columns_are_exact_decimals(kit):
    verdicts = kit.Case().run().verdicts
    assert verdicts.schema["computed_tax"] == pl.Decimal(18, 4)
    assert verdicts.select("limit_value", "computed_tax").row(0) == (
        Decimal("110.0000"),
        Decimal("10.0100"),
    )


def test_verdict_columns(kit):
    verdicts = kit.Case().run().verdicts
    assert verdicts.columns == [
        "ebp_code",
        "order_no",
        "verdict",
        "reasons",
        "reason_mask",
        "pay_transaction_id",
        "logistics_no",
        "computed_tax",
        "limit_value",
    ]
    assert verdicts.select("ebp_code", "order_no", "pay_transaction_id", "logistics_no").row(0) == (
        "EBP1",
        "O1",
        "T1",
        "W1",
    )


def test_time_text_is_seamless_where_far_times_are_moved():
    # Times before year 1000 and from year 3000 are moved by 400-year cycles before Polars
    # formats them; around both edges the text must equal Python's own Asia/Shanghai time.
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from matchcore.china_time import NEAR_FROM_US, NEAR_TO_US
    from matchcore.render import time_value_text

    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for edge in (NEAR_FROM_US, NEAR_TO_US):
        for us in (edge - 86_400_000_001, edge - 1, edge, edge + 1, edge + 3_600_000_000):
            local = (epoch + timedelta(microseconds=us)).astimezone(ZoneInfo("Asia/Shanghai"))
            fraction = f".{local.microsecond:06d}" if local.microsecond else ""
            shown = f"{local.year:04d}-{local:%m-%d %H:%M:%S}{fraction}"  # %Y is not padded
            assert time_value_text(us) == shown, us
