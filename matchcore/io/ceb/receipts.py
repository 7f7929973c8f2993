"""`write_receipts`: one CEB312-style receipt (`OrderReturn`) per verdict of a match result.

The receipt carries the order's keys, a `returnStatus` for the verdict (see RETURN_STATUS),
`returnTime` (yyyyMMddHHmmssSSS, China time) and `returnInfo` listing the failed rule codes
with short texts. Receipts hold codes only, never identity data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from ...exceptions import InputError, MatchcoreError
from ...rules import Rule
from ...schema import CHINA_TZ
from .mapping import NAMESPACE
from .writer import element_expr, escaped_expr, guid_expr

RECEIPT_MESSAGE = "CEB312Message"
RECEIPT_DOCUMENT = "OrderReturn"

#: returnStatus per verdict. 2 = passed (accepted as declared), 120 = held for manual review,
#: 100 = rejected (returned to the declarant), 1 = incomplete (streaming: documents missing).
RETURN_STATUS: dict[str, str] = {"pass": "2", "review": "120", "reject": "100", "incomplete": "1"}

#: Short English texts of the rule codes for returnInfo (SPEC §3).
RULE_TEXTS: dict[Rule, str] = {
    Rule.ORDER_DUPLICATE: "order declared more than once",
    Rule.PAYMENT_MISSING: "no payment for the order",
    Rule.PAYMENT_DUPLICATE: "more than one payment for the order",
    Rule.WAYBILL_MISSING: "no waybill for the order",
    Rule.WAYBILL_DUPLICATE: "more than one waybill for the order",
    Rule.ITEMS_MISSING: "order has no item lines",
    Rule.PAY_AMOUNT_MISMATCH: "amount paid differs from the order's actual paid",
    Rule.PAYER_ID_MISMATCH: "payer ID number differs from the buyer's",
    Rule.PAYER_NAME_MISMATCH: "payer name differs from the buyer's",
    Rule.PAY_REFERENCE_MISMATCH: "payment company or transaction differs from the order's",
    Rule.CURRENCY_MISMATCH: "order and payment currencies differ",
    Rule.ORDER_TOTAL_MISMATCH: "goods + freight - discount + tax differs from actual paid",
    Rule.GOODS_VALUE_MISMATCH: "goods value differs from the sum of the lines",
    Rule.LINE_TOTAL_MISMATCH: "a line's qty x price differs from its total",
    Rule.CONSIGNEE_MISMATCH: "waybill consignee differs from the order's",
    Rule.CONSIGNEE_PHONE_MISMATCH: "waybill consignee phone differs from the order's",
    Rule.ARRIVAL_WINDOW_EXCEEDED: "order, payment and waybill too far apart in time",
    Rule.BUYER_ID_INVALID: "buyer resident ID number is not valid",
    Rule.SINGLE_LIMIT_EXCEEDED: "over the single-transaction limit",
    Rule.ANNUAL_LIMIT_EXCEEDED: "over the buyer's annual limit",
    Rule.ENTERPRISE_NOT_FILED: "an enterprise is not filed for its role",
    Rule.ENTERPRISE_INACTIVE: "an enterprise filing is not active",
    Rule.ENTERPRISE_DISHONEST: "an enterprise is rated dishonest",
    Rule.PRODUCT_NOT_FILED: "a product is not filed or not valid",
    Rule.PRODUCT_NOT_ON_POSITIVE_LIST: "a product is not on the positive list",
    Rule.PRODUCT_PROHIBITED: "a product is prohibited",
    Rule.TAX_MISMATCH: "tax withheld differs from the computed tax",
    Rule.INVENTORY_MISSING: "no inventory declaration for the order",
    Rule.INVENTORY_MISMATCH: "inventory declaration differs from the order or waybill",
}

_VERDICT_TEXT = {"pass": "passed", "review": "held for review", "reject": "rejected"}
_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def return_time_text(when: datetime | None = None) -> str:
    """A time as yyyyMMddHHmmssSSS in China time (now when None; naive means UTC)."""
    moment = when or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    stamp = pl.Series([moment]).dt.convert_time_zone(CHINA_TZ)
    return str(stamp.dt.strftime("%Y%m%d%H%M%S%3f").item())


def _return_info() -> pl.Expr:
    """'rejected: CODE text; CODE text' from the verdict and its reasons."""
    texts = {rule.name: f"{rule.name} {text}" for rule, text in RULE_TEXTS.items()}
    listed = (
        pl.col("reasons")
        .cast(pl.List(pl.String))
        .list.eval(pl.element().replace_strict(texts, default=pl.element()))
        .list.join("; ")
    )
    verdict = pl.col("verdict").replace_strict(_VERDICT_TEXT, default=pl.col("verdict"))
    with_reasons = pl.concat_str([verdict, pl.lit(": "), listed])
    return pl.when(listed.fill_null("") == "").then(verdict).otherwise(with_reasons)


def _ebc_codes(result: Any, verdicts: pl.DataFrame) -> pl.Series:
    """ebc_code per verdict row, from the canonical orders the result was computed on."""
    tables = getattr(result, "_tables", None)
    orders = getattr(tables, "orders", None)
    if isinstance(orders, pl.DataFrame) and orders.height == verdicts.height:
        return orders["ebc_code"].cast(pl.String)
    return pl.Series("ebc_code", [None] * verdicts.height, dtype=pl.String)


def _receipts(verdicts: pl.DataFrame, returned: str) -> pl.Expr:
    unknown = set(verdicts["verdict"].unique().drop_nulls().to_list()) - set(RETURN_STATUS)
    if unknown:
        raise MatchcoreError(f"verdicts: no receipt status for verdict {sorted(unknown)}")
    fields = [
        element_expr("guid", guid_expr("CEB312", pl.int_range(1, pl.len() + 1))),
        element_expr("ebpCode", escaped_expr(pl.col("ebp_code"))),
        element_expr("ebcCode", escaped_expr(pl.col("ebc_code"))),
        element_expr("orderNo", escaped_expr(pl.col("order_no"))),
        element_expr("returnStatus", pl.col("verdict").replace_strict(RETURN_STATUS)),
        pl.lit(f"<ceb:returnTime>{returned}</ceb:returnTime>"),
        element_expr("returnInfo", escaped_expr(_return_info())),
    ]
    opening, closing = f"<ceb:{RECEIPT_DOCUMENT}>", f"</ceb:{RECEIPT_DOCUMENT}>"
    return pl.concat_str([pl.lit(opening), *fields, pl.lit(closing)])


def write_receipts(
    result: Any,
    out_dir: str | Path,
    *,
    receipts_per_file: int = 1000,
    return_time: datetime | None = None,
) -> list[Path]:
    """Write a CEB312 receipt per verdict row of `result` (a MatchResult) into `out_dir`.

    Receipts are grouped `receipts_per_file` to a `CEB312_NNNNNN.xml` file, in verdict order.
    `return_time` (default now) is written as returnTime. Returns the files written.
    """
    if receipts_per_file < 1:
        raise InputError("receipts_per_file must be at least 1")
    verdicts: pl.DataFrame = result.verdicts
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create receipts directory {out} ({error.strerror})") from None
    frame = verdicts.select("ebp_code", "order_no", "verdict", "reasons").with_columns(
        _ebc_codes(result, verdicts).alias("ebc_code")
    )
    documents = frame.select(_receipts(frame, return_time_text(return_time)).alias("_xml"))
    files = (
        documents.with_row_index("_n")
        .group_by((pl.col("_n") // receipts_per_file).alias("_file"), maintain_order=True)
        .agg(pl.col("_xml").str.join(""))
    )
    written: list[Path] = []
    for number, body in zip(files["_file"], files["_xml"], strict=True):
        guid = f"00000312-FFFF-4000-8000-{number + 1:012d}"
        head = f'<ceb:{RECEIPT_MESSAGE} xmlns:ceb="{NAMESPACE}" guid="{guid}" version="1.0">'
        path = out / f"CEB312_{number + 1:06d}.xml"
        path.write_text(f"{_XML_DECLARATION}{head}{body}</ceb:{RECEIPT_MESSAGE}>\n", "utf-8")
        written.append(path)
    return written
