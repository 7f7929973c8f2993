"""Shared generated data sets for the generator tests (built once per session)."""

from __future__ import annotations

import pytest

from matchcore.generate import GeneratedData, generate


@pytest.fixture(scope="session")
def data_20k() -> GeneratedData:
    """20 000 orders at the default anomaly rate."""
    return generate(20_000, seed=11)


@pytest.fixture(scope="session")
def data_small() -> GeneratedData:
    """A small data set for format and schema checks."""
    return generate(600, seed=5, anomaly_rate=0.3)
