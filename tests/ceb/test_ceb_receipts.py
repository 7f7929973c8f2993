"""write_receipts: one CEB312 OrderReturn per verdict, grouped into files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest
from lxml import etree

from matchcore.exceptions import MatchcoreError
from matchcore.io.ceb import write_receipts

NS = {"ceb": "http://www.chinaport.gov.cn/ceb"}
WHEN = datetime(2025, 5, 1, 4, 30, 15, 250_000, tzinfo=UTC)


def _result(verdicts: list[tuple[str, str, str, list[str]]], ebc: list[str] | None = None):  # type: ignore[no-untyped-def]
    frame = pl.DataFrame(
        verdicts,
        schema={
            "ebp_code": pl.String,
            "order_no": pl.String,
            "verdict": pl.String,
            "reasons": pl.List(pl.String),
        },
        orient="row",
    )
    tables = None
    if ebc is not None:
        tables = SimpleNamespace(orders=pl.DataFrame({"ebc_code": ebc}))
    return SimpleNamespace(verdicts=frame, _tables=tables)


def _returns(paths: list[Path]) -> list[dict[str, str | None]]:
    found = []
    for path in paths:
        root = etree.parse(str(path)).getroot()
        assert root.tag == "{http://www.chinaport.gov.cn/ceb}CEB312Message"
        for item in root.findall("ceb:OrderReturn", NS):
            found.append({etree.QName(child).localname: child.text for child in item})
    return found


def test_receipt_content_per_verdict(tmp_path: Path) -> None:
    result = _result(
        [
            ("EBP1", "O1", "pass", []),
            ("EBP1", "O2", "reject", ["PAYMENT_MISSING", "TAX_MISMATCH"]),
            ("EBP2", "O<3>", "review", ["ARRIVAL_WINDOW_EXCEEDED"]),
        ],
        ebc=["EBC1", "EBC2", "EBC3"],
    )
    paths = write_receipts(result, tmp_path, return_time=WHEN)
    assert [p.name for p in paths] == ["CEB312_000001.xml"]
    receipts = _returns(paths)
    assert [(r["ebpCode"], r["ebcCode"], r["orderNo"], r["returnStatus"]) for r in receipts] == [
        ("EBP1", "EBC1", "O1", "2"),
        ("EBP1", "EBC2", "O2", "100"),
        ("EBP2", "EBC3", "O<3>", "120"),
    ]
    assert {r["returnTime"] for r in receipts} == {"20250501123015250"}  # China time, ms
    assert receipts[0]["returnInfo"] == "passed"
    assert receipts[1]["returnInfo"] == (
        "rejected: PAYMENT_MISSING no payment for the order; "
        "TAX_MISMATCH tax withheld differs from the computed tax"
    )
    assert receipts[2]["returnInfo"].startswith("held for review: ARRIVAL_WINDOW_EXCEEDED ")
    assert len({r["guid"] for r in receipts}) == 3
    assert all(len(r["guid"] or "") == 36 for r in receipts)


def test_receipts_are_grouped_into_files(tmp_path: Path) -> None:
    rows = [("EBP1", f"O{n}", "pass", []) for n in range(5)]
    paths = write_receipts(_result(rows), tmp_path, receipts_per_file=2, return_time=WHEN)
    assert [p.name for p in paths] == [
        "CEB312_000001.xml",
        "CEB312_000002.xml",
        "CEB312_000003.xml",
    ]
    receipts = _returns(paths)
    assert [r["orderNo"] for r in receipts] == [f"O{n}" for n in range(5)]
    assert all("ebcCode" not in r for r in receipts)  # not known without the orders


def test_unknown_verdict_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MatchcoreError, match="maybe"):
        write_receipts(_result([("E", "O", "maybe", [])]), tmp_path)
