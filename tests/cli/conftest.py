"""CLI fixtures: the hand-made data set of tests/api written as a standard data directory."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest


def _api_dataset_module() -> ModuleType:
    """tests/api/conftest.py under its own module name (one builder for both test areas)."""
    path = Path(__file__).resolve().parents[1] / "api" / "conftest.py"
    spec = importlib.util.spec_from_file_location("matchcore_tests_api_dataset", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DATASET = _api_dataset_module().DATASET


@pytest.fixture
def expected_verdicts() -> dict[str, str]:
    return dict(DATASET.expected_verdicts)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return DATASET.write_tables(DATASET.build_tables(), tmp_path / "data")
