"""`explain`: one order of each failure kind, the outcome of every rule and the values shown."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from matchcore.cli import main
from matchcore.exceptions import InputError
from matchcore.explain import Explanation, explain

OFF_WITHOUT_TABLES = {"PRODUCT_NOT_ON_POSITIVE_LIST", "INVENTORY_MISSING", "INVENTORY_MISMATCH"}


def _outcomes(ex: Explanation) -> dict[str, str]:
    return {r.rule: r.outcome for r in ex.rules}


def _failed(ex: Explanation) -> set[str]:
    return {rule for rule, outcome in _outcomes(ex).items() if outcome == "fail"}


def test_good_order_passes_every_rule_that_runs(scenario_result) -> None:  # noqa: ANN001
    ex = explain(scenario_result, "ORD-OK")
    assert ex.verdict == "pass" and ex.reasons == []
    outcomes = _outcomes(ex)
    assert {r for r, o in outcomes.items() if o == "off"} == OFF_WITHOUT_TABLES
    assert {r for r, o in outcomes.items() if o not in ("pass", "off")} == set()
    tax = ex.outcome("TAX_MISMATCH")
    assert (tax.expected, tax.actual) == ("9.10 ± 0.10", "9.10")


def test_missing_payment_skips_the_payment_checks(scenario_result) -> None:  # noqa: ANN001
    ex = explain(scenario_result, "ORD-NOPAY")
    assert _failed(ex) == {"PAYMENT_MISSING"}
    assert ex.outcome("PAYMENT_MISSING").actual == "0"
    outcomes = _outcomes(ex)
    for rule in ("PAY_AMOUNT_MISMATCH", "PAYER_ID_MISMATCH", "PAYER_NAME_MISMATCH",
                 "PAY_REFERENCE_MISMATCH", "CURRENCY_MISMATCH", "ARRIVAL_WINDOW_EXCEEDED",
                 "ANNUAL_LIMIT_EXCEEDED"):  # fmt: skip
        assert outcomes[rule] == "skipped", rule
    assert ex.payments == []


def test_amount_mismatch_shows_both_amounts(scenario_result) -> None:  # noqa: ANN001
    ex = explain(scenario_result, "ORD-AMOUNT")
    assert ex.verdict == "reject" and _failed(ex) == {"PAY_AMOUNT_MISMATCH"}
    outcome = ex.outcome("PAY_AMOUNT_MISMATCH")
    assert (outcome.field, outcome.expected, outcome.actual) == ("amount_paid", "109.10", "100.00")
    assert [(e["expected"], e["actual"]) for e in outcome.exceptions] == [("109.10", "100.00")]


def test_party_not_filed_names_the_party(scenario_result) -> None:  # noqa: ANN001
    ex = explain(scenario_result, "ORD-PARTY")
    assert _failed(ex) == {"ENTERPRISE_NOT_FILED"}
    outcome = ex.outcome("ENTERPRISE_NOT_FILED")
    assert "logistics LOGX: not filed" in outcome.actual
    assert "ebp EBP1: filed as ebp" in outcome.actual
    assert [e["subject"] for e in outcome.exceptions] == ["LOGX"]
    parties = {(e["party"], e["code"]) for e in ex.enterprises}
    assert parties == {("ebp", "EBP1"), ("ebc", "EBC1"), ("pay", "PAY1"), ("logistics", "LOGX")}


def test_product_not_filed_skips_the_tax(scenario_result) -> None:  # noqa: ANN001
    ex = explain(scenario_result, "ORD-PRODUCT")
    assert _failed(ex) == {"PRODUCT_NOT_FILED"}
    assert ex.outcome("PRODUCT_NOT_FILED").actual == "1 SKU-UNFILED: not filed"
    assert ex.outcome("TAX_MISMATCH").outcome == "skipped"
    assert ex.products == []


def test_tax_mismatch_shows_the_computed_tax(scenario_result) -> None:  # noqa: ANN001
    ex = explain(scenario_result, "ORD-TAX")
    assert _failed(ex) == {"TAX_MISMATCH"}
    outcome = ex.outcome("TAX_MISMATCH")
    assert (outcome.expected, outcome.actual) == ("9.10 ± 0.10", "5.00")
    assert ex.outcome("ORDER_TOTAL_MISMATCH").outcome == "pass"


def test_annual_limit_shows_the_running_total(scenario_result) -> None:  # noqa: ANN001
    ex = explain(scenario_result, "ORD-ANNUAL")
    assert _failed(ex) == {"ANNUAL_LIMIT_EXCEEDED"}
    outcome = ex.outcome("ANNUAL_LIMIT_EXCEEDED")
    assert (outcome.expected, outcome.actual) == ("≤ 26000.00", "26050.00")
    assert outcome.note == "spent before 25950.00 + limit_value 100.00"


def test_late_payment_is_reviewed(scenario_result) -> None:  # noqa: ANN001
    ex = explain(scenario_result, "ORD-LATE", ebp_code="EBP1")
    assert ex.verdict == "review" and _failed(ex) == {"ARRIVAL_WINDOW_EXCEEDED"}
    outcome = ex.outcome("ARRIVAL_WINDOW_EXCEEDED")
    assert outcome.expected == "≤ 86400 s"
    assert outcome.actual.startswith("108300 s")  # 30 h 5 min


def test_identity_values_masked_unless_asked(scenario_result, scenario_buyer: str) -> None:  # noqa: ANN001
    masked = json.dumps(explain(scenario_result, "ORD-OK").to_dict(), ensure_ascii=False)
    assert scenario_buyer not in masked and "张三" not in masked and "13800001111" not in masked
    assert "*" * 14 + scenario_buyer[-4:] in masked
    clear = explain(scenario_result, "ORD-OK", mask=False)
    assert clear.order["buyer_id_number"] == scenario_buyer
    assert clear.outcome("PAYER_NAME_MISMATCH").expected == "张三"


def test_unknown_order_is_an_input_error(scenario_result) -> None:  # noqa: ANN001
    with pytest.raises(InputError, match="no order 'NOPE'"):
        explain(scenario_result, "NOPE")
    with pytest.raises(InputError, match="on platform 'EBP9'"):
        explain(scenario_result, "ORD-OK", ebp_code="EBP9")


def test_result_method_delegates(scenario_result) -> None:  # noqa: ANN001
    assert scenario_result.explain("ORD-TAX").outcome("TAX_MISMATCH").outcome == "fail"


@pytest.fixture(scope="module")
def data_dir(scenario_tables: dict[str, pl.DataFrame], tmp_path_factory) -> Path:  # noqa: ANN001
    root = tmp_path_factory.mktemp("data")
    for name, frame in scenario_tables.items():
        frame.write_parquet(root / f"{name}.parquet")
    return root


def test_cli_explain_json(
    data_dir: Path, scenario_buyer: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["explain", "ORD-TAX", "--data", str(data_dir), "--engine", "reference", "--json"])
    assert code == 0
    shown = json.loads(capsys.readouterr().out)
    outcomes = {r["rule"]: r["outcome"] for r in shown["rules"]}
    assert outcomes["TAX_MISMATCH"] == "fail"
    assert shown["verdict"] == "reject"
    assert scenario_buyer not in json.dumps(shown)


def test_cli_explain_tables(
    data_dir: Path, scenario_buyer: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["explain", "ORD-PARTY", "--data", str(data_dir), "--engine", "reference"])
    out = capsys.readouterr().out
    assert code == 0
    assert "ENTERPRISE_NOT_FILED" in out and "LOGX" in out and "Documents" in out
    assert scenario_buyer not in out


def test_cli_explain_unknown_order(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["explain", "NOPE", "--data", str(data_dir), "--engine", "reference"])
    assert code == 2
    assert "no order 'NOPE'" in capsys.readouterr().err


def test_explain_agrees_with_the_verdict_for_every_failing_rule(generated_result) -> None:  # noqa: ANN001
    from matchcore.rules import Rule

    verdicts = generated_result.verdicts
    explained = 0
    for rule in Rule:
        hit = verdicts.filter(pl.col("reasons").list.contains(rule.name)).head(1)
        if hit.height == 0:
            continue
        row = hit.row(0, named=True)
        ex = explain(generated_result, row["order_no"], ebp_code=row["ebp_code"])
        assert _failed(ex) == set(row["reasons"]), rule.name
        outcome = ex.outcome(rule)
        assert outcome.exceptions, rule.name  # the exception rows behind the failure
        assert outcome.field, rule.name
        explained += 1
    assert explained >= 25  # the generated set injects anomalies of (nearly) every kind


# Times at the far ends of the calendar (tests/report/conftest.py, FAR_TIMES): shown as every
# output shows them (`render.time_text`), never through Python's `datetime` (years 1-9999).


def test_explain_shows_times_past_year_9999(far_result) -> None:  # noqa: ANN001
    ex = explain(far_result, "ORD-OK")
    assert ex.order["app_time"] == "+10000-01-01 15:00:00"  # 9999-12-31T23:00:00-08:00
    assert ex.payments[0]["pay_time"] == "+10000-01-01 15:05:00"
    assert ex.waybills[0]["app_time"] == "+10000-01-01 15:59:00"
    assert ex.products[0]["valid_to"] == "+10000-01-01 07:59:59"  # 9999-12-31T23:59:59Z
    assert ex.outcome("ARRIVAL_WINDOW_EXCEEDED").actual == "3540 s (1.0 h)"
    product = ex.outcome("PRODUCT_NOT_FILED")
    assert product.actual == "1 SKU-1: valid to +10000-01-01 07:59:59"
    assert [(e["expected"], e["actual"]) for e in product.exceptions] == [
        ("+10000-01-01 07:59:59", "+10000-01-01 15:00:00")
    ]
    assert "ebp EBP1: valid to +10000-01-01 07:59:59" in ex.outcome("ENTERPRISE_INACTIVE").actual


def test_explain_shows_china_dates_before_year_1(far_result) -> None:  # noqa: ANN001
    ex = explain(far_result, "ORD-AMOUNT")
    # 0001-01-01T00:00:00+09:00; before 1901 Asia/Shanghai is local mean time, UTC+08:05:43.
    assert ex.order["app_time"] == "0000-12-31 23:05:43"
    inactive = ex.outcome("ENTERPRISE_INACTIVE")
    assert "pay PAY1: valid from 0001-01-01 08:05:43" in inactive.actual
    assert [(e["expected"], e["actual"]) for e in inactive.exceptions] == [
        ("0001-01-01 08:05:43", "0000-12-31 23:05:43")
    ]


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "tables"])
def test_cli_explain_far_times(
    far_tables: dict[str, pl.DataFrame],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    as_json: bool,
) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # rich tables wide enough to keep a time on one line
    for name, frame in far_tables.items():
        frame.write_parquet(tmp_path / f"{name}.parquet")
    args = ["explain", "ORD-OK", "--data", str(tmp_path), "--engine", "reference"]
    code = main(args + (["--json"] if as_json else []))
    out = capsys.readouterr().out
    assert code == 0
    if as_json:
        assert json.loads(out)["order"]["app_time"] == "+10000-01-01 15:00:00"
    else:
        assert "+10000-01-01 15:00:00" in out
