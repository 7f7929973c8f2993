"""Report aggregations and result-directory loading, checked against the scenario's design."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from matchcore.exceptions import InputError
from matchcore.report import from_result, load_result_dir
from matchcore.report.aggregate import (
    amounts_by_rule,
    arrival_gaps,
    exception_sample,
    limit_usage,
    party_failure_rates,
    rules_ranked,
    verdict_breakdown,
)
from matchcore.report.source import ReportData
from matchcore.rules import Rule, RuleSettings

FAILED_ONCE = {
    "PAYMENT_MISSING", "PAY_AMOUNT_MISMATCH", "ENTERPRISE_NOT_FILED", "PRODUCT_NOT_FILED",
    "TAX_MISMATCH", "ANNUAL_LIMIT_EXCEEDED", "ARRIVAL_WINDOW_EXCEEDED",
}  # fmt: skip


def _counts(frame: pl.DataFrame, key: str, value: str) -> dict[str, int]:
    return dict(zip(frame[key].to_list(), frame[value].to_list(), strict=True))


def test_verdict_breakdown(scenario_result) -> None:  # noqa: ANN001
    frame = verdict_breakdown(from_result(scenario_result).verdicts)
    assert _counts(frame, "verdict", "orders") == {"pass": 1, "review": 1, "reject": 6}
    assert frame["verdict"].to_list() == ["pass", "review", "reject"]


def test_rules_ranked_lists_each_failed_rule_once(scenario_result) -> None:  # noqa: ANN001
    frame = rules_ranked(from_result(scenario_result).verdicts, RuleSettings())
    assert _counts(frame, "rule", "orders") == dict.fromkeys(FAILED_ONCE, 1)
    assert _counts(frame, "rule", "severity")["ARRIVAL_WINDOW_EXCEEDED"] == "review"


def test_amounts_at_stake_are_exact_sums() -> None:
    values = ["0.0001", "99999.9999", "12.3400"]
    masks = [Rule.TAX_MISMATCH.bit, Rule.TAX_MISMATCH.bit | Rule.PAYMENT_MISSING.bit, 0]
    verdicts = pl.DataFrame(
        {
            "verdict": ["reject", "reject", "pass"],
            "reason_mask": pl.Series(masks, dtype=pl.UInt64),
            "limit_value": pl.Series([Decimal(v) for v in values], dtype=pl.Decimal(18, 4)),
        }
    )
    data = ReportData(verdicts, pl.DataFrame(), pl.DataFrame(), pl.DataFrame(), pl.DataFrame())
    from matchcore.report.source import _prepare  # the money conversion the loaders apply

    frame = amounts_by_rule(_prepare(data.verdicts))
    assert _counts(frame, "rule", "at_stake") == {
        "TAX_MISMATCH": 1_000_000_000,  # 100000.0000 CNY exactly
        "PAYMENT_MISSING": 999_999_999,
    }
    assert _counts(frame, "rule", "orders") == {"TAX_MISMATCH": 2, "PAYMENT_MISSING": 1}


def test_limit_usage_bands_are_exact() -> None:
    used = ["0", "2599.9999", "2600", "25999.9999", "26000", "30000"]
    ledger = pl.DataFrame({"used": pl.Series([Decimal(u) for u in used], dtype=pl.Decimal(18, 4))})
    ledger = ledger.with_columns(pl.col("used").to_physical().cast(pl.Int64))
    frame = limit_usage(ledger, 26_000 * 10_000)
    counts = _counts(frame, "band", "buyers")
    assert counts["0-10%"] == 2
    assert counts["10-20%"] == 1
    assert counts["90-100%"] == 1
    assert counts["≥100%"] == 2
    assert sum(counts.values()) == 6


def test_party_failure_rates_use_canonical_tables(scenario_result) -> None:  # noqa: ANN001
    frame = party_failure_rates(from_result(scenario_result))
    rows = {(r["role"], r["code"]): (r["orders"], r["failed"]) for r in frame.iter_rows(named=True)}
    assert rows[("platform (ebp)", "EBP1")] == (8, 7)
    assert rows[("e-commerce enterprise (ebc)", "EBC1")] == (8, 7)
    assert rows[("payment company", "PAY1")] == (7, 6)  # ORD-NOPAY has no payment
    assert rows[("logistics company", "LOG1")] == (7, 6)
    assert rows[("logistics company", "LOGX")] == (1, 1)


def test_arrival_gaps_band_the_late_payment(scenario_result) -> None:  # noqa: ANN001
    frame = arrival_gaps(from_result(scenario_result))
    assert frame is not None
    counts = _counts(frame, "band", "orders")
    assert counts["1-6 h"] == 6  # waybill two hours after the order
    assert counts["24-48 h"] == 1  # ORD-LATE: payment 30 h after the order
    assert sum(counts.values()) == 7  # ORD-NOPAY has no payment


def test_exception_sample_is_bounded_spread_and_masked() -> None:
    rows = 100
    exceptions = pl.DataFrame(
        {
            "ebp_code": ["E"] * (rows + 3),
            "order_no": [f"O{i}" for i in range(rows + 3)],
            "rule": ["PAY_AMOUNT_MISMATCH"] * rows + ["PAYER_ID_MISMATCH"] * 3,
            "severity": ["reject"] * (rows + 3),
            "subject": [""] * (rows + 3),
            "field": ["amount_paid"] * rows + ["payer_id_number", "payer_name", "consignee"],
            "expected": ["1.00"] * rows + ["110101199001011234", "张三丰", "李四"],
            "actual": ["2.00"] * rows + ["11010119900101123X", "王五", "赵六"],
        }
    )
    sample = exception_sample(exceptions, 20)
    assert sample.height == 13  # 10 per rule at most: 10 + 3
    identity = sample.filter(pl.col("rule") == "PAYER_ID_MISMATCH")
    assert identity["expected"].to_list() == ["**************1234", "张**", "李*"]
    assert identity["actual"].to_list() == ["**************123X", "王*", "赵*"]
    assert set(sample.filter(pl.col("field") == "amount_paid")["actual"]) == {"2.00"}


def test_exception_sample_keeps_rule_descriptions() -> None:
    exceptions = pl.DataFrame(
        {
            "ebp_code": ["E"], "order_no": ["O1"], "rule": ["BUYER_ID_INVALID"],
            "severity": ["reject"], "subject": [""], "field": ["buyer_id_number"],
            "expected": ["GB 11643 resident ID"], "actual": ["110101199013011234"],
        }
    )  # fmt: skip
    row = exception_sample(exceptions, 10).row(0, named=True)
    assert (row["expected"], row["actual"]) == ("GB 11643 resident ID", "**************1234")


@pytest.mark.parametrize("fmt", ["parquet", "csv", "ndjson", "ipc"])
def test_result_dir_gives_the_same_aggregates(scenario_result, tmp_path: Path, fmt: str) -> None:  # noqa: ANN001
    scenario_result.write(tmp_path, fmt)
    loaded = load_result_dir(tmp_path)
    live = from_result(scenario_result)
    assert verdict_breakdown(loaded.verdicts).equals(verdict_breakdown(live.verdicts))
    assert amounts_by_rule(loaded.verdicts).equals(amounts_by_rule(live.verdicts))
    assert loaded.exceptions.height == 7
    assert loaded.summary["orders"] == 8
    # Without the canonical tables only platforms are known, and no arrival times.
    assert set(party_failure_rates(loaded)["role"]) == {"platform (ebp)"}
    assert arrival_gaps(loaded) is None


def test_result_dir_errors_name_the_place(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_result_dir(tmp_path / "absent")
    with pytest.raises(InputError, match="no verdicts table"):
        load_result_dir(tmp_path)
    (tmp_path / "verdicts.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match="verdicts.parquet"):
        load_result_dir(tmp_path)


def test_cli_report_writes_a_page(scenario_result_dir: Path, tmp_path: Path) -> None:
    from matchcore.cli import main

    out = tmp_path / "sub" / "report.html"
    assert main(["report", str(scenario_result_dir), "-o", str(out), "--title", "Run 7", "-q"]) == 0
    text = out.read_text(encoding="utf-8")
    assert "<title>Run 7</title>" in text
    assert 'id="mc-chart-specs"' in text and "vegaEmbed" in text
    assert "ORD-TAX" in text  # the exception rows are embedded


def test_cli_report_missing_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from matchcore.cli import main

    assert main(["report", str(tmp_path / "nope"), "-o", str(tmp_path / "r.html")]) == 2
    assert "result directory not found" in capsys.readouterr().err


def test_report_masks_identity_of_an_unmasked_result(tmp_path: Path) -> None:
    import matchcore.api
    from matchcore.generate import generate
    from matchcore.report import write_report

    data = generate(400, seed=5, anomaly_rate=0.5)
    result = matchcore.api.match(**data.tables, engine="reference", mask_identity=False)
    identity_rules = {"PAYER_ID_MISMATCH", "PAYER_NAME_MISMATCH", "CONSIGNEE_MISMATCH"}
    clear = result.exceptions.filter(pl.col("rule").is_in(identity_rules))
    assert clear.height > 0 and not clear["expected"].str.contains(r"\*").any()
    text = write_report(result, tmp_path / "r.html").read_text(encoding="utf-8")
    for value in clear["expected"].to_list() + clear["actual"].to_list():
        assert value not in text
    assert clear["order_no"][0] in text  # the rows are there, masked


def test_report_of_a_clean_run_says_nothing_failed(scenario_tables, tmp_path: Path) -> None:  # noqa: ANN001
    import matchcore.api
    from matchcore.report import write_report

    tables = dict(scenario_tables)
    tables["orders"] = tables["orders"].filter(pl.col("order_no") == "ORD-OK")
    result = matchcore.api.match(**tables, engine="reference")
    assert result.verdict_counts()["pass"] == 1
    text = write_report(result, tmp_path / "clean.html").read_text(encoding="utf-8")
    assert "No rule failed." in text
    assert "0 of 0 exception rows are listed" in text


def test_report_lists_far_times_as_exception_texts(far_result, tmp_path: Path) -> None:  # noqa: ANN001
    from matchcore.report import write_report

    text = write_report(far_result, tmp_path / "far.html").read_text(encoding="utf-8")
    # (expected, actual) of the sample rows: filings ending in and orders of year 10000 in
    # China, a filing starting in year 1 and an order before it.
    assert '"valid_to","+10000-01-01 07:59:59","+10000-01-01 15:00:00"' in text
    assert '"valid_from","0001-01-01 08:05:43","0000-12-31 23:05:43"' in text


def test_cli_report_reads_the_run_settings(scenario_result_dir: Path, tmp_path: Path) -> None:
    from matchcore.cli import main

    rules = tmp_path / "rules.toml"
    rules.write_text('[parameters]\nannual_limit = "30000"\n', encoding="utf-8")
    out = tmp_path / "report.html"
    assert main(["report", str(scenario_result_dir), "-o", str(out), "--rules", str(rules)]) == 0
    assert "annual limit 30000.00 CNY" in out.read_text(encoding="utf-8")
    rules.write_text("[parameters]\nbogus = 1\n", encoding="utf-8")
    assert main(["report", str(scenario_result_dir), "-o", str(out), "--rules", str(rules)]) == 2
