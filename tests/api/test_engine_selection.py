"""Engine selection: names, "auto" falling back to the reference engine, and the build hint."""

from __future__ import annotations

import sys

import polars as pl
import pytest

import matchcore
from matchcore import EngineError
from matchcore.engine import get_engine, kernel_available


@pytest.fixture
def kernel_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `matchcore.engine.kernel` unimportable, as on a checkout that was never built."""
    monkeypatch.setitem(sys.modules, "matchcore.engine.kernel", None)


def test_reference_by_name() -> None:
    assert get_engine("reference").name == "reference"


def test_auto_falls_back_to_reference_without_the_kernel(kernel_missing: None) -> None:
    assert not kernel_available()
    assert get_engine("auto").name == "reference"


def test_kernel_without_a_build_says_how_to_build(kernel_missing: None) -> None:
    with pytest.raises(EngineError, match="build_ext --inplace"):
        get_engine("kernel")


def test_auto_picks_the_kernel_exactly_when_it_is_available() -> None:
    expected = "kernel" if kernel_available() else "reference"
    assert get_engine("auto").name == expected


def test_unknown_engine_name() -> None:
    with pytest.raises(EngineError, match="unknown engine 'fast'"):
        get_engine("fast")


def test_the_summary_names_the_engine_auto_chose(raw_tables: dict[str, pl.DataFrame]) -> None:
    result = matchcore.match(**raw_tables)
    assert result.summary_dict()["engine"] == get_engine("auto").name
    forced = matchcore.match(**raw_tables, engine="reference")
    assert forced.summary.filter(section="engine")["key"].to_list() == ["reference"]
