"""Order-level rules of SPEC §3 as Polars expressions over the wide order frame (see links.py).

Each function returns a Boolean expression that is true when the rule fails; a check that needs
a missing or duplicated document is guarded by `has_payment()` / `has_waybill()` (SPEC §3.3),
so a skipped check is false, never null.
"""

from __future__ import annotations

import polars as pl

from ...rules import Parameters, Rule
from .links import INVENTORY, PAY, WAYBILL

#: GB 11643 weights of the first 17 digits of a resident ID number.
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARACTERS = "10X98765432"
DEFAULT_CURRENCY = "142"  # CNY, what a null currency means (SPEC §2)


def has_payment() -> pl.Expr:
    return pl.col("payment_count") == 1


def has_waybill() -> pl.Expr:
    return pl.col("waybill_count") == 1


def has_inventory() -> pl.Expr:
    return pl.col("inventory_row").is_not_null()


def differs(left: str, right: str) -> pl.Expr:
    """Normalised texts differ (null on one side only counts as different)."""
    return pl.col(left).ne_missing(pl.col(right))


def named_and_differs(order_column: str, document_column: str) -> pl.Expr:
    """The order names a value and the document's differs."""
    return pl.col(order_column).is_not_null() & differs(order_column, document_column)


def over_tolerance(difference: pl.Expr, tolerance: int) -> pl.Expr:
    return difference.abs() > tolerance


def order_duplicate() -> pl.Expr:
    return pl.col("order_copies") > 1


def payment_missing() -> pl.Expr:
    return pl.col("payment_count") == 0


def payment_duplicate() -> pl.Expr:
    return pl.col("payment_count") > 1


def waybill_missing() -> pl.Expr:
    return pl.col("waybill_count") == 0


def waybill_duplicate() -> pl.Expr:
    return pl.col("waybill_count") > 1


def items_missing() -> pl.Expr:
    return pl.col("item_count") == 0


def pay_amount_mismatch(p: Parameters) -> pl.Expr:
    gap = pl.col(PAY + "amount_paid") - pl.col("actual_paid")
    return has_payment() & over_tolerance(gap, p.amount_tolerance)


def payer_id_mismatch() -> pl.Expr:
    return has_payment() & differs(PAY + "payer_id_number", "buyer_id_number")


def payer_name_mismatch() -> pl.Expr:
    return has_payment() & differs(PAY + "payer_name", "buyer_name")


def pay_reference_mismatch() -> pl.Expr:
    return has_payment() & (
        named_and_differs("pay_code", PAY + "pay_code")
        | named_and_differs("pay_transaction_id", PAY + "pay_transaction_id")
    )


def currency_mismatch() -> pl.Expr:
    """Currencies differ, a null read as "142" (CNY) on either side."""
    order, paid = (pl.col(c).fill_null(DEFAULT_CURRENCY) for c in ("currency", PAY + "currency"))
    return has_payment() & (order != paid)


def order_total() -> pl.Expr:
    """goods_value + freight − discount + tax_total: what the buyer should have paid."""
    return pl.col("goods_value") + pl.col("freight") - pl.col("discount") + pl.col("tax_total")


def order_total_mismatch(p: Parameters) -> pl.Expr:
    return over_tolerance(order_total() - pl.col("actual_paid"), p.amount_tolerance)


def goods_value_mismatch(p: Parameters) -> pl.Expr:
    gap = pl.col("goods_value") - pl.col("items_total")
    return (pl.col("item_count") > 0) & over_tolerance(gap, p.amount_tolerance)


def consignee_mismatch() -> pl.Expr:
    return has_waybill() & differs(WAYBILL + "consignee", "consignee")


def phone_digits(column: str) -> pl.Expr:
    return pl.col(column).str.replace_all(r"[^0-9]", "")


def consignee_phone_mismatch() -> pl.Expr:
    both_present = (
        pl.col("consignee_telephone").is_not_null()
        & pl.col(WAYBILL + "consignee_telephone").is_not_null()
    )
    return (
        has_waybill()
        & both_present
        & (phone_digits("consignee_telephone") != phone_digits(WAYBILL + "consignee_telephone"))
    )


def time_span_us(*times: pl.Expr) -> pl.Expr:
    """max − min of UTC times in microseconds, as Int128: the span of two int64 times reaches
    2**64 − 1, which Int64 (and so Duration) would wrap around."""
    micros = [time.dt.cast_time_unit("us").to_physical().cast(pl.Int128) for time in times]
    return pl.max_horizontal(micros) - pl.min_horizontal(micros)


def arrival_gap_us() -> pl.Expr:
    """max − min of the order, payment and waybill times, in microseconds (Int128)."""
    return time_span_us(pl.col("app_time"), pl.col(PAY + "pay_time"), pl.col(WAYBILL + "app_time"))


def arrival_window_exceeded(p: Parameters) -> pl.Expr:
    return has_payment() & has_waybill() & (arrival_gap_us() > p.arrival_window_us)


def id_check_character() -> pl.Expr:
    """The GB 11643 check character the first 17 digits call for (well-formed IDs only)."""
    first17 = pl.col("buyer_id_number").str.slice(0, 17).cast(pl.Int64, strict=False)
    digits = [first17 // 10 ** (16 - i) % 10 for i in range(17)]
    total = pl.sum_horizontal([d * w for d, w in zip(digits, ID_WEIGHTS, strict=True)])
    return (total % 11).replace_strict(
        list(range(11)), list(ID_CHECK_CHARACTERS), return_dtype=pl.String
    )


def is_leap(year: pl.Expr) -> pl.Expr:
    return ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)


def days_in_month(year: pl.Expr, month: pl.Expr) -> pl.Expr:
    thirty = month.is_in([4, 6, 9, 11])
    return (
        pl.when(month == 2)
        .then(pl.when(is_leap(year)).then(29).otherwise(28))
        .when(thirty)
        .then(30)
        .otherwise(31)
    )


def id_birth_date_valid() -> pl.Expr:
    """Positions 7-14 are a real date (years 0001-9999) not after the order's day."""
    ymd = pl.col("buyer_id_number").str.slice(6, 8).cast(pl.Int32, strict=False)
    year, month, day = ymd // 10_000, ymd // 100 % 100, ymd % 100
    real = (year >= 1) & month.is_between(1, 12) & (day >= 1) & (day <= days_in_month(year, month))
    return real & (ymd <= pl.col("_app_ymd"))


def buyer_id_invalid() -> pl.Expr:
    number = pl.col("buyer_id_number")
    well_formed = number.str.contains(r"^[0-9]{17}[0-9X]$").fill_null(False)
    valid = well_formed & (number.str.slice(17, 1) == id_check_character()) & id_birth_date_valid()
    return (pl.col("buyer_id_type") == "1") & ~valid.fill_null(False)


def limit_value() -> pl.Expr:
    """goods_value + freight − discount (SPEC §3, SINGLE_LIMIT_EXCEEDED)."""
    return pl.col("goods_value") + pl.col("freight") - pl.col("discount")


def single_limit_exceeded(p: Parameters) -> pl.Expr:
    return pl.col("limit_value") > p.single_limit


def tax_mismatch(p: Parameters) -> pl.Expr:
    gap = pl.col("tax_total") - pl.col("computed_tax")
    return pl.col("computed_tax").is_not_null() & over_tolerance(gap, p.tax_tolerance)


def inventory_missing() -> pl.Expr:
    return ~has_inventory()


def inventory_logistics_differs() -> pl.Expr:
    return differs(INVENTORY + "logistics_code", WAYBILL + "logistics_code") | differs(
        INVENTORY + "logistics_no", WAYBILL + "logistics_no"
    )


def inventory_mismatch() -> pl.Expr:
    return has_inventory() & (
        differs(INVENTORY + "ebc_code", "ebc_code")
        | differs(INVENTORY + "buyer_id_number", "buyer_id_number")
        | (has_waybill() & inventory_logistics_differs())
    )


def order_checks(p: Parameters, inventory_rules: bool) -> dict[Rule, pl.Expr]:
    """Failure expression of every rule decided on the wide order frame alone.

    The line, party and annual rules are decided elsewhere; TAX_MISMATCH needs `computed_tax`.
    """
    checks: dict[Rule, pl.Expr] = {
        Rule.ORDER_DUPLICATE: order_duplicate(),
        Rule.PAYMENT_MISSING: payment_missing(),
        Rule.PAYMENT_DUPLICATE: payment_duplicate(),
        Rule.WAYBILL_MISSING: waybill_missing(),
        Rule.WAYBILL_DUPLICATE: waybill_duplicate(),
        Rule.ITEMS_MISSING: items_missing(),
        Rule.PAY_AMOUNT_MISMATCH: pay_amount_mismatch(p),
        Rule.PAYER_ID_MISMATCH: payer_id_mismatch(),
        Rule.PAYER_NAME_MISMATCH: payer_name_mismatch(),
        Rule.PAY_REFERENCE_MISMATCH: pay_reference_mismatch(),
        Rule.CURRENCY_MISMATCH: currency_mismatch(),
        Rule.ORDER_TOTAL_MISMATCH: order_total_mismatch(p),
        Rule.GOODS_VALUE_MISMATCH: goods_value_mismatch(p),
        Rule.CONSIGNEE_MISMATCH: consignee_mismatch(),
        Rule.CONSIGNEE_PHONE_MISMATCH: consignee_phone_mismatch(),
        Rule.ARRIVAL_WINDOW_EXCEEDED: arrival_window_exceeded(p),
        Rule.BUYER_ID_INVALID: buyer_id_invalid(),
        Rule.SINGLE_LIMIT_EXCEEDED: single_limit_exceeded(p),
        Rule.TAX_MISMATCH: tax_mismatch(p),
    }
    if inventory_rules:
        checks[Rule.INVENTORY_MISSING] = inventory_missing()
        checks[Rule.INVENTORY_MISMATCH] = inventory_mismatch()
    return checks
