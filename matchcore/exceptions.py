"""The error hierarchy: everything matchcore raises on purpose is a MatchcoreError.

Messages say what was wrong and where (table, column, file, row), never personal data.
"""

from __future__ import annotations


class MatchcoreError(Exception):
    """Base class of every error matchcore raises on purpose."""


class SchemaError(MatchcoreError):
    """A table is missing, or lacks a required column, or a column has an unusable type."""


class InputError(MatchcoreError):
    """An input cannot be read at all (missing file, unknown format, garbage bytes)."""


class RuleConfigError(MatchcoreError):
    """Rule settings are invalid (unknown rule code or key, bad severity or parameter), or a
    matcher's setting is (a stream's batch size)."""


class StateError(MatchcoreError):
    """Streaming state on disk is unusable (corrupt beyond the torn-tail repair, wrong version)."""


class StateLogError(StateError):
    """A write or fsync of the streaming state log failed: the log stopped for good (what
    reached the disk is unknown); a restart recovers from the state directory."""


class EngineError(MatchcoreError):
    """An engine is unavailable (for example the compiled kernel was not built)."""
