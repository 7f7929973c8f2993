"""A small hand-made data set whose verdicts are known, in every input form the API accepts.

Orders: O1 passes every rule; O2 is paid the wrong amount (PAY_AMOUNT_MISMATCH, reject); O3's
waybill comes three days late (ARRIVAL_WINDOW_EXCEEDED, review); O4 has no payment
(PAYMENT_MISSING, reject). One payment names no order (an orphan) and one payment row has an
unreadable amount (a reject). Money is given as decimal text, as in a CSV file.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest

EBP, EBC, PAY, LOG = "EBP001", "EBC001", "PAY001", "LOG001"
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def resident_id(first17: str) -> str:
    """A resident ID number with its GB 11643 check character."""
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


BUYER_ID = resident_id("11010519800101001")
BUYER_NAME = "张三"

#: Verdicts and failed rules the data set is built to give.
EXPECTED_VERDICTS = {"O1": "pass", "O2": "reject", "O3": "review", "O4": "reject"}
EXPECTED_REASONS = {
    "O1": [],
    "O2": ["PAY_AMOUNT_MISMATCH"],
    "O3": ["ARRIVAL_WINDOW_EXCEEDED"],
    "O4": ["PAYMENT_MISSING"],
}
#: goods_value + freight - discount of every order (all orders are alike): 110.00 CNY.
LIMIT_VALUE = Decimal("110.00")


def _orders() -> pl.DataFrame:
    numbers = list(EXPECTED_VERDICTS)
    n = len(numbers)
    return pl.DataFrame(
        {
            "order_no": numbers,
            "ebp_code": [EBP] * n,
            "ebc_code": [EBC] * n,
            "goods_value": ["100.00"] * n,
            "freight": ["10.00"] * n,
            "discount": ["0"] * n,
            # 0.7 x 13 % VAT on (100 + 10): 10.01
            "tax_total": ["10.01"] * n,
            "actual_paid": ["120.01"] * n,
            "buyer_id_number": [BUYER_ID] * n,
            "buyer_name": [BUYER_NAME] * n,
            "buyer_telephone": ["13800138000"] * n,
            "pay_code": [PAY] * n,
            "pay_transaction_id": [f"T{no}" for no in numbers],
            "consignee": [BUYER_NAME] * n,
            "consignee_telephone": ["13800138000"] * n,
            "app_time": ["2026-03-01 10:00:00"] * n,
        }
    )


def _order_items() -> pl.DataFrame:
    numbers = list(EXPECTED_VERDICTS)
    n = len(numbers)
    return pl.DataFrame(
        {
            "order_no": numbers,
            "ebp_code": [EBP] * n,
            "gnum": ["1"] * n,
            "item_no": ["SKU1"] * n,
            "qty": ["1"] * n,
            "price": ["100.00"] * n,
            "total_price": ["100.00"] * n,
        }
    )


def _payments() -> pl.DataFrame:
    # O4 has none; O9 names no order; the last row's amount cannot be read.
    rows = [
        ("O1", "TO1", "120.01"),
        ("O2", "TO2", "119.00"),
        ("O3", "TO3", "120.01"),
        ("O9", "TO9", "120.01"),
        ("O1", "TX1", "not money"),
    ]
    return pl.DataFrame(
        {
            "pay_code": [PAY] * len(rows),
            "pay_transaction_id": [r[1] for r in rows],
            "order_no": [r[0] for r in rows],
            "ebp_code": [EBP] * len(rows),
            "payer_id_number": [BUYER_ID] * len(rows),
            "payer_name": [BUYER_NAME] * len(rows),
            "amount_paid": [r[2] for r in rows],
            "pay_time": ["2026-03-01 10:05:00"] * len(rows),
        }
    )


def _waybills() -> pl.DataFrame:
    numbers = list(EXPECTED_VERDICTS)
    times = {"O3": "2026-03-04 10:00:00"}
    return pl.DataFrame(
        {
            "logistics_code": [LOG] * len(numbers),
            "logistics_no": [f"W{no}" for no in numbers],
            "order_no": numbers,
            "ebp_code": [EBP] * len(numbers),
            "consignee": [BUYER_NAME] * len(numbers),
            "consignee_telephone": ["13800138000"] * len(numbers),
            "app_time": [times.get(no, "2026-03-01 12:00:00") for no in numbers],
        }
    )


def _products() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ebc_code": [EBC],
            "item_no": ["SKU1"],
            "hs_code": ["3304990000"],
            "vat_rate": ["0.13"],
            "consumption_tax_rate": ["0"],
            "status": ["active"],
        }
    )


def _enterprises() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "code": [EBP, EBC, PAY, LOG],
            "roles": ["ebp", "ebc", "pay", "logistics"],
            "credit_class": ["general"] * 4,
            "status": ["active"] * 4,
        }
    )


def build_tables() -> dict[str, pl.DataFrame]:
    """The data set as raw Polars frames (all text), keyed by table name."""
    return {
        "orders": _orders(),
        "order_items": _order_items(),
        "payments": _payments(),
        "waybills": _waybills(),
        "products": _products(),
        "enterprises": _enterprises(),
    }


def write_tables(tables: dict[str, pl.DataFrame], directory: Path, fmt: str = "csv") -> Path:
    """Write the tables as `<table>.<fmt>` files (the standard names) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        path = directory / f"{name}.{fmt}"
        {"csv": frame.write_csv, "parquet": frame.write_parquet, "ndjson": frame.write_ndjson}[fmt](
            path
        )
    return directory


@pytest.fixture
def raw_tables() -> dict[str, pl.DataFrame]:
    return build_tables()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return write_tables(build_tables(), tmp_path / "data")


#: What tests need to know about the data set (the fixture `dataset` hands it out).
DATASET = SimpleNamespace(
    buyer_id=BUYER_ID,
    expected_verdicts=EXPECTED_VERDICTS,
    expected_reasons=EXPECTED_REASONS,
    limit_value=LIMIT_VALUE,
    build_tables=build_tables,
    write_tables=write_tables,
)


@pytest.fixture
def dataset() -> SimpleNamespace:
    return DATASET
