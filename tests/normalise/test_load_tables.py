"""load_tables: every table read and normalised, rejects stacked, input row counts."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis.vendor.pretty import pretty

from matchcore.engine.base import CanonicalTables
from matchcore.exceptions import SchemaError
from matchcore.normalise import load_tables
from matchcore.schema import REQUIRED_TABLES


def _required(make_raw) -> dict[str, pl.DataFrame]:
    return {name: make_raw(name) for name in REQUIRED_TABLES}


def test_frames_load_into_canonical_tables(make_raw) -> None:
    sources = _required(make_raw)
    sources["payments"] = make_raw("payments", {}, {"amount_paid": "x"})
    loaded = load_tables(sources)
    assert isinstance(loaded.tables, CanonicalTables)
    assert loaded.tables.inventories is None
    assert loaded.tables.orders["goods_value"].to_list() == [1_000_000]
    assert loaded.tables.payments.height == 1
    assert loaded.input_rows == {name: (2 if name == "payments" else 1) for name in REQUIRED_TABLES}
    assert loaded.rejects.select("table", "file", "row", "column").rows() == [
        ("payments", "<payments: polars DataFrame>", 2, "amount_paid")
    ]


def test_optional_tables_load_when_given(make_raw) -> None:
    sources = {**_required(make_raw), "hs_lists": make_raw("hs_lists"), "quota_ledger": None}
    loaded = load_tables(sources)
    assert loaded.tables.hs_lists is not None
    assert loaded.tables.quota_ledger is None


def test_missing_required_table(make_raw) -> None:
    sources = _required(make_raw)
    del sources["waybills"]
    with pytest.raises(SchemaError, match="waybills"):
        load_tables(sources)


def test_unknown_table(make_raw) -> None:
    with pytest.raises(SchemaError, match="unknown table 'refunds'"):
        load_tables({**_required(make_raw), "refunds": make_raw("orders")})


def test_a_directory_is_discovered(make_raw, tmp_path: Path) -> None:
    for name, frame in _required(make_raw).items():
        frame.write_csv(tmp_path / f"{name}.csv")
    loaded = load_tables(tmp_path)
    assert loaded.tables.enterprises["roles"].to_list() == [1]
    assert loaded.rejects.is_empty()


def test_canonical_tables_print_shapes_not_rows(make_raw) -> None:
    tables = load_tables(_required(make_raw)).tables
    buyer = tables.orders["buyer_id_number"][0]
    printed = repr(tables)
    assert printed.startswith("CanonicalTables(orders=<1 rows x ")
    assert "inventories=None" in printed
    assert buyer not in printed  # personal data is never printed
    assert pretty(tables) == printed  # as hypothesis reports drawn tables
