"""`matchcore.match` and friends on the hand-made data set, from every kind of input."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import duckdb
import polars as pl
import pytest

import matchcore
import matchcore.normalise
from matchcore import InputError, MatchcoreError, MatchResult, RuleConfigError, SchemaError


def _verdicts(result: MatchResult) -> dict[str, str]:
    return dict(zip(result.verdicts["order_no"], result.verdicts["verdict"], strict=True))


def _reasons(result: MatchResult) -> dict[str, list[str]]:
    return dict(zip(result.verdicts["order_no"], result.verdicts["reasons"].to_list(), strict=True))


def _assert_known_outcome(result: MatchResult, dataset: SimpleNamespace) -> None:
    assert _verdicts(result) == dataset.expected_verdicts
    assert _reasons(result) == dataset.expected_reasons


def test_polars_frames(raw_tables: dict[str, pl.DataFrame], dataset: SimpleNamespace) -> None:
    result = matchcore.match(**raw_tables, engine="reference")
    _assert_known_outcome(result, dataset)
    assert result.engine == "reference"


def test_pyarrow_tables(raw_tables: dict[str, pl.DataFrame], dataset: SimpleNamespace) -> None:
    result = matchcore.match(
        **{name: frame.to_arrow() for name, frame in raw_tables.items()}, engine="reference"
    )
    _assert_known_outcome(result, dataset)


def test_duckdb_relations(raw_tables: dict[str, pl.DataFrame], dataset: SimpleNamespace) -> None:
    con = duckdb.connect()
    for name, frame in raw_tables.items():
        con.register(f"src_{name}", frame.to_arrow())
    relations = {name: con.sql(f"select * from src_{name}") for name in raw_tables}
    _assert_known_outcome(matchcore.match(**relations, engine="reference"), dataset)


def test_positional_sources_in_spec_order(
    raw_tables: dict[str, pl.DataFrame], dataset: SimpleNamespace
) -> None:
    t = raw_tables
    result = matchcore.match(
        t["orders"], t["order_items"], t["payments"], t["waybills"], t["products"],
        t["enterprises"], engine="reference",
    )  # fmt: skip
    _assert_known_outcome(result, dataset)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "ndjson"])
def test_file_paths(
    raw_tables: dict[str, pl.DataFrame], tmp_path: Path, fmt: str, dataset: SimpleNamespace
) -> None:
    directory = dataset.write_tables(raw_tables, tmp_path, fmt)
    paths = {name: directory / f"{name}.{fmt}" for name in raw_tables}
    _assert_known_outcome(matchcore.match(**paths, engine="reference"), dataset)


def test_match_directory_and_its_table_override(
    raw_tables: dict[str, pl.DataFrame],
    data_dir: Path,
    dataset: SimpleNamespace,
) -> None:
    _assert_known_outcome(matchcore.match_directory(data_dir, engine="reference"), dataset)
    paid_right = raw_tables["payments"].with_columns(amount_paid=pl.lit("120.01"))
    result = matchcore.match_directory(data_dir, payments=paid_right, engine="reference")
    assert _verdicts(result)["O2"] == "pass"


def test_outputs_orphans_rejects_ledger_and_money(
    raw_tables: dict[str, pl.DataFrame], dataset: SimpleNamespace
) -> None:
    result = matchcore.match(**raw_tables, engine="reference")
    assert result.orphans.height == 1
    assert result.orphans["document"].to_list() == ["payment"]
    assert result.rejects.height == 1
    assert result.rejects["table"].to_list() == ["payments"]
    assert result.verdicts["limit_value"].to_list() == [dataset.limit_value] * 4
    assert result.input_rows["payments"] == 5
    summary = result.summary_dict()
    assert summary["rejects"] == {"payments": 1}
    assert summary["rules"]["PAY_AMOUNT_MISMATCH"] == 1
    assert set(summary["timings"]) >= {"read", "normalise", "match", "render"}


def test_identity_masked_unless_asked(
    raw_tables: dict[str, pl.DataFrame], dataset: SimpleNamespace
) -> None:
    masked = matchcore.match(**raw_tables, engine="reference")
    clear = matchcore.match(**raw_tables, engine="reference", mask_identity=False)
    assert masked.ledger["buyer_id_number"].to_list() == ["*" * 14 + dataset.buyer_id[-4:]]
    assert clear.ledger["buyer_id_number"].to_list() == [dataset.buyer_id]


def test_rule_settings_object_and_toml_file(
    raw_tables: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    settings = matchcore.RuleSettings.from_overrides({"PAY_AMOUNT_MISMATCH": "off"})
    assert _verdicts(matchcore.match(**raw_tables, rules=settings))["O2"] == "pass"
    toml = tmp_path / "rules.toml"
    toml.write_text('[severity]\nARRIVAL_WINDOW_EXCEEDED = "reject"\n')
    assert _verdicts(matchcore.match(**raw_tables, rules=toml))["O3"] == "reject"


def test_bad_rules_file_is_a_rule_config_error(
    raw_tables: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    toml = tmp_path / "rules.toml"
    toml.write_text('[severity]\nNO_SUCH_RULE = "reject"\n')
    with pytest.raises(RuleConfigError, match="NO_SUCH_RULE"):
        matchcore.match(**raw_tables, rules=toml)


def test_missing_required_table_is_a_schema_error(raw_tables: dict[str, pl.DataFrame]) -> None:
    del raw_tables["waybills"]
    with pytest.raises(SchemaError, match="waybills"):
        matchcore.match(**raw_tables)


def test_missing_file_is_an_input_error(
    raw_tables: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    raw_tables["orders"] = tmp_path / "nowhere.csv"  # type: ignore[assignment]
    with pytest.raises(InputError, match="nowhere.csv"):
        matchcore.match(**raw_tables)


@pytest.fixture
def tables_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tables read in full (through `read_source`), in the order they were read."""
    read: list[str] = []
    real = matchcore.normalise.read_source

    def spy(source: object, table: str) -> object:
        read.append(table)
        return real(source, table)

    monkeypatch.setattr(matchcore.normalise, "read_source", spy)
    return read


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("enterprises.parquet", None, "input file {path} does not exist"),
        ("enterprises.parquet", b"PAR1 cut short", "{path}: cannot read as Parquet"),
        ("enterprises.csv", b"", "{path}: cannot read as CSV"),
        ("enterprises.ods", b"PK", "{path}: unknown file extension for table enterprises"),
    ],
)
def test_an_unreadable_later_file_fails_before_any_table_is_read(
    data_dir: Path,
    tmp_path: Path,
    tables_read: list[str],
    name: str,
    content: bytes | None,
    message: str,
) -> None:
    """enterprises comes after the document tables; its file is found bad before they are
    read and normalised (which can take minutes), with the message a full read gives."""
    bad = tmp_path / name
    if content is not None:
        bad.write_bytes(content)
    with pytest.raises(InputError, match=re.escape(message.format(path=bad))):
        matchcore.match_directory(data_dir, enterprises=bad)
    assert tables_read == []


def test_an_unknown_source_type_fails_before_any_table_is_read(
    raw_tables: dict[str, pl.DataFrame], tables_read: list[str]
) -> None:
    with pytest.raises(InputError, match="quota_ledger: cannot read a source of type dict"):
        matchcore.match(**raw_tables, quota_ledger={"buyer_id_number": []})
    assert tables_read == []


def test_unknown_table_name_is_a_schema_error(raw_tables: dict[str, pl.DataFrame]) -> None:
    with pytest.raises(SchemaError, match="'refunds'"):
        matchcore.match_sources({**raw_tables, "refunds": raw_tables["orders"]})


def test_rules_of_the_wrong_type_are_refused(raw_tables: dict[str, pl.DataFrame]) -> None:
    with pytest.raises(MatchcoreError, match="rules must be"):
        matchcore.match(**raw_tables, rules={"PAY_AMOUNT_MISMATCH": "off"})  # type: ignore[arg-type]


def test_match_tables_on_canonical_tables(
    raw_tables: dict[str, pl.DataFrame], dataset: SimpleNamespace
) -> None:
    from matchcore.normalise import load_tables

    loaded = load_tables(raw_tables)
    result = matchcore.match_tables(loaded.tables, engine="reference")
    _assert_known_outcome(result, dataset)
    assert result.input_rows["payments"] == 4  # canonical rows: the reject is gone
    assert result._tables is loaded.tables
    assert result._raw is not None and result._raw.orders.height == 4


def test_progress_display_goes_to_stderr(
    raw_tables: dict[str, pl.DataFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    matchcore.match(**raw_tables, engine="reference", progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    for phase in ("read", "normalise", "match", "render"):
        assert phase in captured.err


def test_require_names_the_missing_feature() -> None:
    from matchcore.api import require

    assert require("matchcore.money", "format_money", "money") is not None
    with pytest.raises(MatchcoreError, match="teleporting is not available"):
        require("matchcore.teleport", "beam", "teleporting")


MONEY = {
    "orders": ["goods_value", "freight", "discount", "tax_total", "actual_paid"],
    "order_items": ["price", "total_price"],
}


def test_typed_arrow_columns(raw_tables: dict[str, pl.DataFrame], dataset: SimpleNamespace) -> None:
    typed = dict(raw_tables)
    for name, columns in MONEY.items():
        typed[name] = typed[name].with_columns(pl.col(columns).cast(pl.Decimal(18, 2)))
    typed["orders"] = typed["orders"].with_columns(
        pl.col("app_time").str.to_datetime().dt.replace_time_zone("Asia/Shanghai")
    )
    typed["order_items"] = typed["order_items"].with_columns(pl.col("gnum").cast(pl.Int32))
    result = matchcore.match(**{n: f.to_arrow() for n, f in typed.items()}, engine="reference")
    _assert_known_outcome(result, dataset)


ENGINES = ["reference", *(["kernel"] if matchcore.kernel_available() else [])]


@pytest.mark.parametrize("engine", ENGINES)
def test_every_available_engine_gives_the_known_outcome(
    raw_tables: dict[str, pl.DataFrame], dataset: SimpleNamespace, engine: str
) -> None:
    result = matchcore.match(**raw_tables, engine=engine)
    _assert_known_outcome(result, dataset)
    assert result.engine == engine
