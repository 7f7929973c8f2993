"""matchcore: three-document matching for cross-border e-commerce customs clearance."""

from ._version import __version__
from .exceptions import (
    EngineError,
    InputError,
    MatchcoreError,
    RuleConfigError,
    SchemaError,
    StateError,
)
from .rules import Parameters, Rule, RuleSettings

__all__ = [
    "EngineError",
    "InputError",
    "MatchcoreError",
    "Parameters",
    "Rule",
    "RuleConfigError",
    "RuleSettings",
    "SchemaError",
    "StateError",
    "__version__",
]
