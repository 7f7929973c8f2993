"""Fixtures for the report and explain tests: a small hand-made data set with one order per
failure kind, its match result, and the written result directory."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def resident_id(serial: int, birth: str = "19900101") -> str:
    """A valid GB 11643 resident ID (check character computed from the spec's formula)."""
    body = f"110101{birth}{serial:03d}"
    total = sum(int(ch) * w for ch, w in zip(body, WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


BUYER_1 = resident_id(101)
BUYER_2 = resident_id(202)
T0 = dt.datetime(2025, 3, 1, 10, 0, 0)

# order_no -> changes from the good order; each order fails one kind of check.
SCENARIOS: dict[str, dict[str, object]] = {
    "ORD-OK": {},
    "ORD-NOPAY": {"no_payment": True},
    "ORD-AMOUNT": {"amount_paid": "100.00"},
    "ORD-PARTY": {"logistics_code": "LOGX"},
    "ORD-PRODUCT": {"item_no": "SKU-UNFILED"},
    "ORD-TAX": {"tax_total": "5.00", "actual_paid": "105.00", "amount_paid": "105.00"},
    "ORD-ANNUAL": {"buyer": BUYER_2},
    "ORD-LATE": {"pay_delay_h": 30},
}


def _tables() -> dict[str, pl.DataFrame]:
    orders, items, payments, waybills = [], [], [], []
    for i, (order_no, change) in enumerate(SCENARIOS.items()):
        buyer = change.get("buyer", BUYER_1)
        app_time = T0 + dt.timedelta(hours=i)
        actual_paid = change.get("actual_paid", "109.10")
        orders.append(
            {
                "order_no": order_no, "ebp_code": "EBP1", "ebc_code": "EBC1",
                "goods_value": "100.00", "freight": "0", "discount": "0",
                "tax_total": change.get("tax_total", "9.10"), "actual_paid": actual_paid,
                "buyer_id_number": buyer, "buyer_name": "张三", "buyer_telephone": "13800001111",
                "pay_code": "PAY1", "pay_transaction_id": f"TX-{order_no}",
                "consignee": "张三", "consignee_telephone": "13800001111",
                "consignee_address": "北京市东城区1号", "app_time": app_time,
            }
        )  # fmt: skip
        items.append(
            {
                "order_no": order_no, "ebp_code": "EBP1", "gnum": 1,
                "item_no": change.get("item_no", "SKU-1"), "item_name": "面霜", "qty": "1",
                "price": "100.00", "total_price": "100.00",
            }
        )  # fmt: skip
        if not change.get("no_payment"):
            payments.append(
                {
                    "pay_code": "PAY1", "pay_transaction_id": f"TX-{order_no}",
                    "order_no": order_no, "ebp_code": "EBP1", "payer_id_number": buyer,
                    "payer_name": "张三", "amount_paid": change.get("amount_paid", actual_paid),
                    "pay_time": app_time
                    + dt.timedelta(hours=int(change.get("pay_delay_h", 0)), minutes=5),
                }
            )  # fmt: skip
        waybills.append(
            {
                "logistics_code": change.get("logistics_code", "LOG1"),
                "logistics_no": f"WB-{order_no}", "order_no": order_no, "ebp_code": "EBP1",
                "consignee": "张三", "consignee_telephone": "138-0000-1111",
                "app_time": app_time + dt.timedelta(hours=2),
            }
        )  # fmt: skip
    products = pl.DataFrame(
        {
            "ebc_code": ["EBC1"], "item_no": ["SKU-1"], "hs_code": ["3304990099"],
            "name": ["面霜"], "vat_rate": [0.13], "consumption_tax_rate": [0.0],
            "status": ["active"],
        }
    )  # fmt: skip
    enterprises = pl.DataFrame(
        {
            "code": ["EBP1", "EBC1", "PAY1", "LOG1"],
            "name": ["平台", "电商", "支付", "物流"],
            "roles": ["ebp", "ebc", "pay", "logistics"],
            "credit_class": ["general"] * 4,
            "status": ["active"] * 4,
        }
    )
    ledger = pl.DataFrame({"buyer_id_number": [BUYER_2], "year": [2025], "used": ["25950.00"]})
    return {
        "orders": pl.DataFrame(orders),
        "order_items": pl.DataFrame(items),
        "payments": pl.DataFrame(payments),
        "waybills": pl.DataFrame(waybills),
        "products": products,
        "enterprises": enterprises,
        "quota_ledger": ledger,
    }


#: Times at the far ends of the calendar (SPEC sets no range), as (order, payment, waybill)
#: times: ORD-OK's are in year 10000 in UTC and in China, past Python's `datetime`; ORD-AMOUNT's
#: China date is before year 1.
FAR_TIMES: dict[str, tuple[str, str, str]] = {
    "ORD-OK": ("9999-12-31T23:00:00-08:00", "9999-12-31T23:05:00-08:00",
               "9999-12-31T23:59:00-08:00"),
    "ORD-AMOUNT": ("0001-01-01T00:00:00+09:00",) * 3,
}  # fmt: skip
#: Filings valid from year 1 (PAY1) or to year 10000 in China (EBP1, the product): ORD-AMOUNT
#: comes before PAY1's start and ORD-OK after the others' end, so both fail on them.
FAR_VALID_FROM = "0001-01-01T00:00:00Z"
FAR_VALID_TO = "9999-12-31T23:59:59Z"


def _far_tables() -> dict[str, pl.DataFrame]:
    """The scenario tables with the FAR_ times (times as text, as in a CSV file)."""
    tables = _tables()
    documents = (("orders", "app_time"), ("payments", "pay_time"), ("waybills", "app_time"))
    for i, (name, column) in enumerate(documents):
        far = {order_no: times[i] for order_no, times in FAR_TIMES.items()}
        given = pl.col(column).dt.strftime("%Y-%m-%d %H:%M:%S")  # naive: Asia/Shanghai
        chosen = pl.col("order_no").replace_strict(far, default=given, return_dtype=pl.String)
        tables[name] = tables[name].with_columns(chosen.alias(column))
    tables["products"] = tables["products"].with_columns(valid_to=pl.lit(FAR_VALID_TO))
    code = pl.col("code")
    tables["enterprises"] = tables["enterprises"].with_columns(
        pl.when(code == "PAY1").then(pl.lit(FAR_VALID_FROM)).alias("valid_from"),
        pl.when(code == "EBP1").then(pl.lit(FAR_VALID_TO)).alias("valid_to"),
    )
    return tables


@pytest.fixture(scope="session")
def scenario_buyer() -> str:
    """The resident ID of the buyer of every scenario order but ORD-ANNUAL."""
    return BUYER_1


@pytest.fixture(scope="session")
def scenario_tables() -> dict[str, pl.DataFrame]:
    """Raw input tables of the scenario data set."""
    return _tables()


@pytest.fixture(scope="session")
def scenario_result(scenario_tables: dict[str, pl.DataFrame]):  # noqa: ANN201
    """The MatchResult of the scenario data set (reference engine)."""
    import matchcore.api

    return matchcore.api.match(**scenario_tables, engine="reference")


@pytest.fixture(scope="session")
def scenario_result_dir(scenario_result, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: ANN001
    """The scenario result written as parquet."""
    out = tmp_path_factory.mktemp("result")
    scenario_result.write(out, "parquet")
    return out


@pytest.fixture(scope="session")
def far_tables() -> dict[str, pl.DataFrame]:
    """Raw input tables of the scenario data set with times at the far ends of the calendar."""
    return _far_tables()


@pytest.fixture(scope="session")
def far_result(far_tables: dict[str, pl.DataFrame]):  # noqa: ANN201
    """The MatchResult of `far_tables` (reference engine)."""
    import matchcore.api

    return matchcore.api.match(**far_tables, engine="reference")


@pytest.fixture(scope="session")
def generated_result():  # noqa: ANN201
    """The MatchResult of a small generated data set with many anomalies of every kind."""
    import matchcore.api
    from matchcore.generate import generate

    data = generate(2000, seed=3, anomaly_rate=0.3)
    return matchcore.api.match(**data.tables, engine="reference")
