"""matchcore: three-document matching for cross-border e-commerce customs clearance."""

from ._version import __version__
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
    "__version__",
    "get_engine",
    "kernel_available",
    "match",
    "match_directory",
    "match_sources",
    "match_tables",
]
