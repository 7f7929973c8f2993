"""MatchResult on hand-built outputs: summary, Arrow export, and write/read back in every format."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from matchcore import MatchcoreError, MatchResult, Rule, RuleSettings

MASK_PAY_AMOUNT = 1 << Rule.PAY_AMOUNT_MISMATCH.value
MASK_WINDOW = 1 << Rule.ARRIVAL_WINDOW_EXCEEDED.value
MASK_DUP = 1 << Rule.ORDER_DUPLICATE.value


def _result(settings: RuleSettings | None = None) -> MatchResult:
    verdicts = pl.DataFrame(
        {
            "ebp_code": ["E", "E", "E", "E"],
            "order_no": ["A", "B", "C", "C"],
            "verdict": ["pass", "reject", "review", "reject"],
            "reasons": [
                [],
                ["PAY_AMOUNT_MISMATCH"],
                ["ARRIVAL_WINDOW_EXCEEDED"],
                ["ORDER_DUPLICATE", "PAY_AMOUNT_MISMATCH"],
            ],
            "reason_mask": pl.Series(
                [0, MASK_PAY_AMOUNT, MASK_WINDOW, MASK_DUP | MASK_PAY_AMOUNT], dtype=pl.UInt64
            ),
            "computed_tax": pl.Series([100_100, None, 1, 99_999_999_999_999], dtype=pl.Int64),
            "limit_value": pl.Series([1_100_000, 5, 0, 123_456_789], dtype=pl.Int64),
        }
    )
    exceptions = pl.DataFrame(
        {
            "order_no": ["B", "C"],
            "rule": ["PAY_AMOUNT_MISMATCH", "ARRIVAL_WINDOW_EXCEEDED"],
            "expected": ["120.01", "24h"],
            "actual": ["119.00", "72h"],
        }
    )
    orphans = pl.DataFrame({"document": ["payment", "payment", "waybill"], "key": ["1", "2", "3"]})
    ledger = pl.DataFrame({"buyer_id_number": ["X"], "year": [2026], "used": [1_234_567]})
    rejects = pl.DataFrame(
        {
            "table": ["payments", "payments", "orders"],
            "file": ["p.csv", "p.csv", "o.csv"],
            "row": [3, 4, 9],
            "column": ["amount_paid", "amount_paid", "freight"],
            "value": ["x", "y", "-1"],
            "message": ["not an amount", "not an amount", "negative amount"],
        }
    )
    return MatchResult(
        verdicts=verdicts,
        exceptions=exceptions,
        orphans=orphans,
        ledger=ledger,
        rejects=rejects,
        engine="reference",
        input_rows={"orders": 4, "payments": 6},
        timings={"read": 0.5, "match": 1.5},
        settings=settings,
    )


def _section(result: MatchResult, section: str) -> dict[str, object]:
    rows = result.summary.filter(pl.col("section") == section)
    column = "seconds" if section == "timing" else "value"
    return dict(zip(rows["key"].to_list(), rows[column].to_list(), strict=True))


def test_summary_counts_verdicts_rules_inputs_rejects_orphans_and_timings() -> None:
    result = _result()
    assert result.summary.schema == {
        "section": pl.String,
        "key": pl.String,
        "value": pl.Int64,
        "seconds": pl.Float64,
    }
    assert _section(result, "verdict") == {"pass": 1, "review": 1, "reject": 2}
    rules = _section(result, "rule")
    assert rules["PAY_AMOUNT_MISMATCH"] == 2
    assert rules["ORDER_DUPLICATE"] == 1
    assert rules["ARRIVAL_WINDOW_EXCEEDED"] == 1
    assert rules["TAX_MISMATCH"] == 0
    assert _section(result, "input_rows") == {"orders": 4, "payments": 6}
    assert _section(result, "rejects") == {"orders": 1, "payments": 2}
    assert _section(result, "orphans") == {"payment": 2, "waybill": 1}
    assert _section(result, "engine") == {"reference": 1}
    assert _section(result, "timing") == {"read": 0.5, "match": 1.5}


def test_rules_set_off_are_not_counted() -> None:
    settings = RuleSettings.from_overrides({"TAX_MISMATCH": "off"})
    assert "TAX_MISMATCH" not in _section(_result(settings), "rule")


def test_summary_dict_is_json_and_agrees_with_the_tables() -> None:
    data = json.loads(json.dumps(_result().summary_dict()))
    assert data["engine"] == "reference"
    assert data["orders"] == 4
    assert data["verdicts"] == {"pass": 1, "review": 1, "reject": 2}
    assert data["rules"]["PAY_AMOUNT_MISMATCH"] == 2
    assert data["exceptions"] == 2
    assert data["orders_per_second"] == pytest.approx(4 / 2.0)


def test_money_is_exact_decimal_in_memory_and_in_arrow() -> None:
    result = _result()
    assert result.verdicts["limit_value"].to_list()[0] == Decimal("110.0000")
    arrow = result.to_arrow()
    assert set(arrow) == {"verdicts", "exceptions", "orphans", "ledger", "rejects", "summary"}
    assert arrow["verdicts"].schema.field("computed_tax").type == pa.decimal128(18, 4)
    assert arrow["ledger"].column("used").to_pylist() == [Decimal("123.4567")]


def _read_back(path: Path, fmt: str) -> pl.DataFrame:
    if fmt == "parquet":
        return pl.read_parquet(path)
    if fmt == "ipc":
        return pl.read_ipc(path)
    if fmt == "csv":
        return pl.read_csv(path, infer_schema=False)
    return pl.read_ndjson(path, schema_overrides={"computed_tax": pl.String})


@pytest.mark.parametrize("fmt", ["parquet", "ipc", "csv", "ndjson"])
def test_write_reads_back_money_exactly(tmp_path: Path, fmt: str) -> None:
    written = _result().write(tmp_path / "out", format=fmt)
    assert set(written) == {"verdicts", "exceptions", "orphans", "ledger", "rejects", "summary"}
    back = _read_back(written["verdicts"], fmt)
    taxes = back["computed_tax"]
    if taxes.dtype == pl.String:
        taxes = taxes.cast(pl.Decimal(18, 4))
    assert taxes.to_list() == [
        Decimal("10.01"),
        None,
        Decimal("0.0001"),
        Decimal("9999999999.9999"),
    ]
    assert json.loads(written["summary"].read_text())["verdicts"]["reject"] == 2


@pytest.mark.parametrize("fmt", ["parquet", "ipc"])
def test_binary_formats_store_money_as_decimal128(tmp_path: Path, fmt: str) -> None:
    written = _result().write(tmp_path, format=fmt)
    assert _read_back(written["ledger"], fmt)["used"].dtype == pl.Decimal(18, 4)


def test_csv_joins_list_columns_with_commas(tmp_path: Path) -> None:
    written = _result().write(tmp_path, format="csv")
    reasons = pl.read_csv(written["verdicts"], infer_schema=False)["reasons"].to_list()
    assert reasons[3] == "ORDER_DUPLICATE,PAY_AMOUNT_MISMATCH"
    assert reasons[1] == "PAY_AMOUNT_MISMATCH"


def test_write_records_its_time_in_the_summary(tmp_path: Path) -> None:
    result = _result()
    result.write(tmp_path)
    assert "write" in _section(result, "timing")


def test_unknown_format_is_a_matchcore_error(tmp_path: Path) -> None:
    with pytest.raises(MatchcoreError, match="unknown output format 'xlsx'"):
        _result().write(tmp_path, format="xlsx")


def test_output_directory_that_is_a_file_is_a_matchcore_error(tmp_path: Path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("")
    with pytest.raises(MatchcoreError, match="taken"):
        _result().write(blocker)
