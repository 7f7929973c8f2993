"""matchcore: three-document matching for cross-border e-commerce customs clearance."""

import os

# Polars' allocator (jemalloc) hands freed pages back to the system after 0.5-1 s, so each
# step of a run faults fresh pages in again: at 1M orders a third of the read and normalise
# CPU time was system time. Keeping them 10 s (jemalloc's own default) lets later steps reuse
# them. Read when Polars loads, so set before any import of it; the caller's setting wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:10000,muzzy_decay_ms:10000")

from ._version import __version__  # noqa: E402 (after the allocator setting)
from .api import match, match_directory, match_sources, match_tables
from .engine import get_engine, kernel_available
from .engine.base import CanonicalTables
from .exceptions import (
    EngineError,
    InputError,
    MatchcoreError,
    RuleConfigError,
    SchemaError,
    StateError,
    StateLogError,
)
from .result import MatchResult
from .rules import Parameters, Rule, RuleSettings

__all__ = [
    "CanonicalTables",
    "EngineError",
    "InputError",
    "MatchResult",
    "MatchcoreError",
    "Parameters",
    "Rule",
    "RuleConfigError",
    "RuleSettings",
    "SchemaError",
    "StateError",
    "StateLogError",
    "__version__",
    "get_engine",
    "kernel_available",
    "match",
    "match_directory",
    "match_sources",
    "match_tables",
]
