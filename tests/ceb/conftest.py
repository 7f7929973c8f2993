"""Fixtures for the CEB XML tests: the sample messages and builders of small messages.

Builders are handed out through the `ceb` fixture (tests import nothing from here).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "datasets" / "ceb_samples"
NAMESPACE = "http://www.chinaport.gov.cn/ceb"

ORDER_FIELDS: dict[str, str] = {
    "guid": "D0000000-0000-4000-8000-000000000001",
    "appType": "1",
    "appTime": "20250401100000",
    "appStatus": "2",
    "orderNo": "T0001",
    "ebpCode": "EBP001",
    "ebcCode": "EBC001",
    "goodsValue": "100.00",
    "freight": "10.00",
    "discount": "0",
    "taxTotal": "10.01",
    "acturalPaid": "120.01",
    "buyerName": "张三",
    "buyerIdType": "1",
    "buyerIdNumber": "110105199003071239",
    "consignee": "张三",
}
LINE_FIELDS: dict[str, str] = {
    "gnum": "1",
    "itemNo": "SKU1",
    "qty": "1",
    "price": "100.00",
    "totalPrice": "100.00",
}
PAYMENT_FIELDS: dict[str, str] = {
    "guid": "D0000000-0000-4000-8000-000000000002",
    "appType": "1",
    "appTime": "20250401100500",
    "appStatus": "2",
    "payCode": "PAY001",
    "payTransactionId": "TX0001",
    "orderNo": "T0001",
    "ebpCode": "EBP001",
    "payerIdNumber": "110105199003071239",
    "payerName": "张三",
    "amountPaid": "120.01",
    "payTime": "20250401100400",
}


def elements(fields: dict[str, str | None]) -> str:
    """`<ceb:name>value</ceb:name>` for every field whose value is not None."""
    return "".join(f"<ceb:{k}>{v}</ceb:{k}>" for k, v in fields.items() if v is not None)


def order_document(lines: int = 1, **changes: str | None) -> str:
    """One `Order` element: a head (ORDER_FIELDS with changes) and `lines` lines."""
    head = elements({**ORDER_FIELDS, **changes})
    body = "".join(
        f"<ceb:OrderList>{elements({**LINE_FIELDS, 'gnum': str(n)})}</ceb:OrderList>"
        for n in range(1, lines + 1)
    )
    return f"<ceb:Order><ceb:OrderHead>{head}</ceb:OrderHead>{body}</ceb:Order>"


def payment_document(**changes: str | None) -> str:
    """One `Payment` element (PAYMENT_FIELDS with changes)."""
    head = elements({**PAYMENT_FIELDS, **changes})
    return f"<ceb:Payment><ceb:PaymentHead>{head}</ceb:PaymentHead></ceb:Payment>"


def message(
    documents: str, root: str = "CEB311Message", guid: str = "MSG-1", namespace: str = NAMESPACE
) -> bytes:
    """A whole UTF-8 message around the given document elements."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<ceb:{root} xmlns:ceb="{namespace}" '
        f'guid="{guid}" version="1.0">{documents}'
        "<ceb:BaseTransfer><ceb:copCode>EBP001</ceb:copCode></ceb:BaseTransfer>"
        f"</ceb:{root}>"
    ).encode()


@pytest.fixture
def ceb() -> SimpleNamespace:
    """The message builders and their default field values."""
    return SimpleNamespace(
        message=message,
        order_document=order_document,
        payment_document=payment_document,
        elements=elements,
        ORDER_FIELDS=ORDER_FIELDS,
        LINE_FIELDS=LINE_FIELDS,
        PAYMENT_FIELDS=PAYMENT_FIELDS,
        NAMESPACE=NAMESPACE,
    )


@pytest.fixture
def samples() -> Path:
    return SAMPLES


@pytest.fixture
def write_message(tmp_path: Path) -> Callable[[str, bytes], Path]:
    """Write message bytes to a named file under a fresh directory; returns the file."""

    def write(name: str, data: bytes) -> Path:
        path = tmp_path / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    return write
