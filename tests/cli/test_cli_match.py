"""The command line through `main([...])`: help, version, `match` outputs and exit codes."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

import matchcore.api
import matchcore.io.ceb
import matchcore.normalise
from matchcore import __version__
from matchcore.cli import COMMANDS, main

PRESENT_COMMANDS = [c for c in COMMANDS if importlib.util.find_spec(f"matchcore.cli.{c}")]


def _match(data_dir: Path, *extra: str) -> list[str]:
    return ["match", "--data", str(data_dir), "--engine", "reference", *extra]


def _one_line_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith("matchcore: error: ")
    return lines[0]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"matchcore {__version__}"


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert {"match", "generate"} <= set(PRESENT_COMMANDS)
    for command in PRESENT_COMMANDS:
        assert command in out


@pytest.mark.parametrize("command", PRESENT_COMMANDS)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    assert f"usage: matchcore {command}" in capsys.readouterr().out


def test_no_command_or_an_unknown_one_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_json_summary_is_all_of_stdout(
    data_dir: Path, expected_verdicts: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_match(data_dir, "--json")) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["engine"] == "reference"
    assert summary["orders"] == len(expected_verdicts)
    assert summary["verdicts"] == dict(Counter(expected_verdicts.values()))
    assert summary["rules"]["PAYMENT_MISSING"] == 1
    assert summary["rejects"] == {"payments": 1}


def test_writes_outputs_in_the_chosen_format(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "result"
    assert main(_match(data_dir, "--out", str(out), "--format", "csv", "--quiet")) == 0
    names = {p.name for p in out.iterdir()}
    expected = {f"{t}.csv" for t in ("verdicts", "exceptions", "orphans", "ledger", "rejects")}
    assert names == expected | {"summary.json"}
    verdicts = pl.read_csv(out / "verdicts.csv", infer_schema=False)
    assert verdicts.filter(order_no="O2")["reasons"].to_list() == ["PAY_AMOUNT_MISMATCH"]


def test_no_mask_writes_identity_values_in_clear(data_dir: Path, tmp_path: Path) -> None:
    masked, clear = tmp_path / "masked", tmp_path / "clear"
    assert main(_match(data_dir, "--out", str(masked), "--quiet")) == 0
    assert main(_match(data_dir, "--out", str(clear), "--quiet", "--no-mask")) == 0
    masked_id = pl.read_parquet(masked / "ledger.parquet")["buyer_id_number"][0]
    clear_id = pl.read_parquet(clear / "ledger.parquet")["buyer_id_number"][0]
    assert masked_id.startswith("*" * 14)
    assert clear_id[-4:] == masked_id[-4:] and "*" not in clear_id


def test_summary_table_and_quiet(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_match(data_dir)) == 0
    out = capsys.readouterr().out
    assert "PAY_AMOUNT_MISMATCH" in out and "orders/s" in out
    assert main(_match(data_dir, "--quiet")) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(("level", "code"), [("reject", 3), ("review", 3)])
def test_fail_on_reached_exits_3(data_dir: Path, level: str, code: int) -> None:
    assert main(_match(data_dir, "--quiet", "--fail-on", level)) == code


def test_fail_on_not_reached_exits_0(data_dir: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        "[severity]\n"
        'PAY_AMOUNT_MISMATCH = "warn"\n'
        'PAYMENT_MISSING = "warn"\n'
        'ARRIVAL_WINDOW_EXCEEDED = "review"\n'
    )
    args = _match(data_dir, "--quiet", "--rules", str(rules))
    assert main([*args, "--fail-on", "reject"]) == 0
    assert main([*args, "--fail-on", "review"]) == 3


def test_missing_input_file_is_exit_2_with_one_line(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no_such_orders.csv"
    assert main(_match(data_dir, "--orders", str(missing))) == 2
    assert "no_such_orders.csv" in _one_line_error(capsys.readouterr().err)


def test_missing_tables_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["match", "--orders", str(tmp_path / "o.csv")]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "order_items" in line and "--payments" in line


def test_bad_rules_file_is_exit_2(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[severity]\nPAY_AMOUNT_MISMATCH = "sometimes"\n')
    assert main(_match(data_dir, "--rules", str(rules))) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "rules.toml" in line and "sometimes" in line


def test_unbuilt_kernel_is_exit_2_with_the_build_hint(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matchcore.engine.kernel", None)
    args = ["match", "--data", str(data_dir), "--engine", "kernel"]
    assert main(args) == 2
    assert "build_ext" in _one_line_error(capsys.readouterr().err)


def _explode(*args: object, **kwargs: object) -> None:
    raise RuntimeError("boom")


def test_internal_error_is_exit_1_with_a_hint(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(matchcore.api, "match_sources", _explode)
    assert main(_match(data_dir)) == 1
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: boom" in err
    assert "--debug" in err and "Traceback" not in err
    assert main([*_match(data_dir), "--debug"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_report_option_writes_html(data_dir: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    assert main(_match(data_dir, "--quiet", "--report", str(report))) == 0
    assert "<html" in report.read_text(encoding="utf-8").lower()


def test_a_command_without_a_module_is_not_listed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import matchcore.cli as cli

    monkeypatch.setattr(cli, "COMMANDS", (*cli.COMMANDS, "teleport"))
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "teleport" not in out and "match" in out
    assert main(["teleport"]) == 2


def test_a_missing_optional_feature_is_exit_2(
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "matchcore.report", None)
    assert main(_match(data_dir, "--report", str(tmp_path / "r.html"))) == 2
    assert "--report) is not available" in _one_line_error(capsys.readouterr().err)


def _never_read(*args: object, **kwargs: object) -> None:
    raise AssertionError("an input was read before every table file was checked")


def test_an_unreadable_table_file_fails_before_any_input_is_read(
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--data and --ceb are read in full only once every file opens (a later table's file
    can be found bad at once instead of after minutes of reading the earlier ones)."""
    monkeypatch.setattr(matchcore.io.ceb, "read_ceb", _never_read)
    monkeypatch.setattr(matchcore.normalise, "read_source", _never_read)
    bad = tmp_path / "enterprises.parquet"
    bad.write_bytes(b"PAR1 cut short")
    for inputs in (["--data", str(data_dir)], ["--ceb", str(tmp_path)]):
        assert main(["match", *inputs, "--enterprises", str(bad), "--quiet"]) == 2
        line = _one_line_error(capsys.readouterr().err)
        assert f"{bad}: cannot read as Parquet" in line
