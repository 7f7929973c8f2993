"""The public entry points: load -> normalise -> engine -> render -> `MatchResult`.

`match` takes one source per table (file paths or in-memory Arrow producers: Polars, pyarrow,
DuckDB, ...), `match_directory` finds the standard file names in a folder, and `match_tables`
runs on canonical tables that a caller (streaming, tests) already has.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

from .engine import Engine, EngineName, engine_name, get_engine
from .engine.base import CanonicalTables
from .exceptions import MatchcoreError, SchemaError
from .progress import PhaseTracker
from .result import MatchResult
from .rules import RuleSettings
from .schema import REQUIRED_TABLES, TABLES

#: A table source: a file path, or an in-memory table (Polars, pyarrow, DuckDB relation, any
#: object with `__arrow_c_stream__`); `matchcore.io.read_source` decides what it can read.
TableSource = Any
RulesArg = RuleSettings | str | Path | None
ProgressArg = bool | PhaseTracker


def require(module: str, name: str, feature: str) -> Any:
    """`module.name`, imported on use; MatchcoreError naming `feature` when it is not there."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise MatchcoreError(f"{feature} is not available in this build ({exc})") from None


def resolve_settings(rules: RulesArg) -> RuleSettings:
    """Rule settings from a RuleSettings, a TOML file path, or None (SPEC defaults)."""
    if rules is None:
        return RuleSettings()
    if isinstance(rules, RuleSettings):
        return rules
    if isinstance(rules, str | Path):
        return RuleSettings.from_toml(rules)
    raise MatchcoreError(
        f"rules must be RuleSettings, a TOML file path or None, not {type(rules).__name__}"
    )


def check_sources(sources: Mapping[str, object]) -> None:
    """Raise SchemaError for an unknown table name or a missing required table."""
    unknown = sorted(set(sources) - set(TABLES))
    if unknown:
        raise SchemaError(
            f"unknown table {', '.join(map(repr, unknown))}; tables are {', '.join(TABLES)}"
        )
    missing = [name for name in REQUIRED_TABLES if sources.get(name) is None]
    if missing:
        raise SchemaError(f"missing required table {', '.join(map(repr, missing))}")


@contextmanager
def _tracking(progress: ProgressArg) -> Iterator[PhaseTracker]:
    """The caller's tracker as is, or a new one (closed afterwards) that displays if asked."""
    if isinstance(progress, PhaseTracker):
        yield progress
        return
    with PhaseTracker(display=bool(progress)) as tracker:
        yield tracker


def _resolve_engine(engine: EngineName | str | Engine) -> Engine:
    return get_engine(engine) if isinstance(engine, str) else engine


def match(
    orders: TableSource = None,
    order_items: TableSource = None,
    payments: TableSource = None,
    waybills: TableSource = None,
    products: TableSource = None,
    enterprises: TableSource = None,
    *,
    hs_lists: TableSource = None,
    inventories: TableSource = None,
    quota_ledger: TableSource = None,
    rules: RulesArg = None,
    engine: EngineName | str = "auto",
    mask_identity: bool = True,
    progress: ProgressArg = False,
) -> MatchResult:
    """Match orders, payments and waybills against each other and the filings (SPEC §3).

    Each table is a file path (Parquet, CSV, Arrow IPC, NDJSON) or an in-memory table (Polars,
    pyarrow, DuckDB relation, anything with the Arrow PyCapsule interface). `rules` is a
    RuleSettings or a TOML file; `engine` is "auto" (kernel when built), "kernel" or
    "reference"; `progress` shows phases on stderr (or is a PhaseTracker to report into).
    """
    sources = {
        "orders": orders,
        "order_items": order_items,
        "payments": payments,
        "waybills": waybills,
        "products": products,
        "enterprises": enterprises,
        "hs_lists": hs_lists,
        "inventories": inventories,
        "quota_ledger": quota_ledger,
    }
    return match_sources(
        {name: src for name, src in sources.items() if src is not None},
        rules=rules,
        engine=engine,
        mask_identity=mask_identity,
        progress=progress,
    )


def match_sources(
    sources: Mapping[str, TableSource],
    *,
    rules: RulesArg = None,
    engine: EngineName | str = "auto",
    mask_identity: bool = True,
    progress: ProgressArg = False,
) -> MatchResult:
    """`match` with the sources in a mapping of table name -> source (what the CLI builds)."""
    check_sources(sources)
    settings = resolve_settings(rules)
    chosen = _resolve_engine(engine)  # fail before reading when the engine is unavailable
    with _tracking(progress) as tracker:
        loaded = _load_tables(sources, tracker)
        return match_tables(
            loaded.tables,
            settings,
            engine=chosen,
            mask_identity=mask_identity,
            progress=tracker,
            rejects=loaded.rejects,
            input_rows=loaded.input_rows,
        )


def match_directory(directory: str | Path, **options: Any) -> MatchResult:
    """`match` on the standard file names found in `directory` (see `matchcore.io.discover`).

    Keyword options are those of `match` (rules, engine, mask_identity, progress); a table
    given as a keyword overrides the file found for it.
    """
    discover = require("matchcore.io", "discover", "reading a data directory")
    table_overrides = {name: options.pop(name) for name in list(options) if name in TABLES}
    given = {name: src for name, src in table_overrides.items() if src is not None}
    found: dict[str, Any] = dict(discover(Path(directory), supplied=given))
    found.update(given)
    return match_sources(found, **options)


def match_tables(
    tables: CanonicalTables,
    settings: RuleSettings | None = None,
    *,
    engine: EngineName | str | Engine = "auto",
    mask_identity: bool = True,
    progress: ProgressArg = False,
    rejects: pl.DataFrame | None = None,
    input_rows: Mapping[str, int] | None = None,
) -> MatchResult:
    """Run an engine and the renderer on canonical tables (already normalised).

    `rejects` and `input_rows` describe the loading that produced the tables, when there was
    one; without `input_rows` the canonical row counts are reported.
    """
    settings = settings if settings is not None else RuleSettings()
    chosen = _resolve_engine(engine)
    render = require("matchcore.render", "render", "the result renderer")
    with _tracking(progress) as tracker:
        with tracker.phase("match"):
            raw = chosen.run(tables, settings)
        with tracker.phase("render"):
            rendered = render(tables, raw, settings, mask_identity=mask_identity)
        timings = dict(tracker.timings)
    return MatchResult(
        verdicts=rendered.verdicts,
        exceptions=rendered.exceptions,
        orphans=rendered.orphans,
        ledger=rendered.ledger,
        rejects=rejects,
        engine=engine_name(chosen),
        input_rows=input_rows if input_rows is not None else canonical_row_counts(tables),
        timings=timings,
        settings=settings,
        tables=tables,
        raw=raw,
    )


def canonical_row_counts(tables: CanonicalTables) -> dict[str, int]:
    """Rows per canonical table that is present, in SPEC §2 order."""
    counts: dict[str, int] = {}
    for name in TABLES:
        frame = getattr(tables, name, None)
        if frame is not None:
            counts[name] = frame.height
    return counts


def _load_tables(sources: Mapping[str, Any], tracker: PhaseTracker) -> Any:
    """Read each source as-is (phase "read") and make it canonical (phase "normalise")."""
    load_tables = require("matchcore.normalise", "load_tables", "input normalisation")
    return load_tables(sources, progress=tracker)
