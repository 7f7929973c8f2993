"""What a report is built from: the tables of a `MatchResult`, or of a directory it wrote.

Both sources become one `ReportData`, with money as exact int64 ten-thousandths and the
rule mask as UInt64, so the aggregations never care where the numbers came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ..engine.base import CanonicalTables, EngineOutput
from ..exceptions import InputError
from ..money import POLARS_MONEY
from ..rules import Rule, RuleSettings

#: Output tables a result directory may hold, and the extensions `MatchResult.write` uses.
RESULT_TABLES: tuple[str, ...] = ("verdicts", "exceptions", "orphans", "ledger", "rejects")
RESULT_EXTENSIONS: tuple[str, ...] = ("parquet", "arrow", "ipc", "csv", "ndjson", "jsonl")
#: Money columns of the output tables (Decimal(18, 4), or decimal text in csv/ndjson).
MONEY_COLUMNS: tuple[str, ...] = ("computed_tax", "limit_value", "used")


@dataclass
class ReportData:
    """The tables a report reads; money columns are Int64 ten-thousandths.

    `tables` and `raw` are present only when the report is made from a live `MatchResult`;
    they give the parties behind each order and the arrival times.
    """

    verdicts: pl.DataFrame
    exceptions: pl.DataFrame
    orphans: pl.DataFrame
    ledger: pl.DataFrame
    rejects: pl.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    settings: RuleSettings = field(default_factory=RuleSettings)
    tables: CanonicalTables | None = None
    raw: EngineOutput | None = None
    source: str = ""


def money_units_expr(column: str) -> pl.Expr:
    """A money column (Decimal, decimal text or integer units) -> exact Int64 ten-thousandths."""
    return pl.col(column).cast(POLARS_MONEY).to_physical().cast(pl.Int64).alias(column)


def mask_from_reasons(reasons: pl.Expr) -> pl.Expr:
    """`reasons` (list of rule codes) -> the SPEC §4 reason_mask, for results that lack it."""
    bits = [pl.when(reasons.list.contains(rule.name)).then(rule.bit).otherwise(0) for rule in Rule]
    return pl.sum_horizontal(bits).cast(pl.UInt64)


def _prepare(frame: pl.DataFrame) -> pl.DataFrame:
    """Money columns to Int64 units, reason_mask to UInt64 (derived from reasons if absent)."""
    money = [money_units_expr(c) for c in MONEY_COLUMNS if c in frame.columns]
    if money:
        frame = frame.with_columns(money)
    if "reason_mask" in frame.columns:
        return frame.with_columns(pl.col("reason_mask").cast(pl.UInt64))
    if "reasons" in frame.columns:
        reasons = pl.col("reasons")
        if frame.schema["reasons"] == pl.String:
            reasons = reasons.fill_null("").str.split(",")
        return frame.with_columns(mask_from_reasons(reasons).alias("reason_mask"))
    return frame


def from_result(result: Any) -> ReportData:
    """ReportData from a `MatchResult` (its tables, summary, settings and canonical inputs)."""
    summary_dict = getattr(result, "summary_dict", None)
    return ReportData(
        verdicts=_prepare(result.verdicts),
        exceptions=result.exceptions,
        orphans=result.orphans,
        ledger=_prepare(result.ledger),
        rejects=result.rejects,
        summary=summary_dict() if callable(summary_dict) else {},
        settings=getattr(result, "_settings", None) or RuleSettings(),
        tables=getattr(result, "_tables", None),
        raw=getattr(result, "_raw", None),
        source="in-memory result",
    )


def _find_table(directory: Path, name: str) -> Path | None:
    for ext in RESULT_EXTENSIONS:
        path = directory / f"{name}.{ext}"
        if path.is_file():
            return path
    return None


def _read_table(path: Path) -> pl.DataFrame:
    """Read one output table; every failure becomes an InputError naming the file."""
    ext = path.suffix.lstrip(".")
    try:
        if ext in ("ndjson", "jsonl") and path.stat().st_size == 0:
            return pl.DataFrame()  # a table without rows is an empty file in NDJSON
        if ext == "parquet":
            return pl.read_parquet(path)
        if ext in ("arrow", "ipc"):
            return pl.read_ipc(path)
        if ext == "csv":
            # All text: money stays exact decimal text until it is cast to Decimal.
            return pl.read_csv(path, infer_schema=False)
        return pl.read_ndjson(path, infer_schema_length=None)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"{path}: cannot read result table ({type(exc).__name__})") from None


def _read_summary(directory: Path) -> dict[str, Any]:
    path = directory / "summary.json"
    if not path.is_file():
        return {}
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read summary ({exc})") from None
    return loaded if isinstance(loaded, dict) else {}


def load_result_dir(directory: str | Path) -> ReportData:
    """ReportData from a directory written by `MatchResult.write` (parquet, ipc, csv or ndjson).

    `verdicts` is required; the other tables are empty when absent. Raises InputError.
    """
    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"{root}: result directory not found")
    frames: dict[str, pl.DataFrame] = {}
    for name in RESULT_TABLES:
        path = _find_table(root, name)
        if path is None:
            if name == "verdicts":
                raise InputError(
                    f"{root}: no verdicts table (verdicts.parquet, .arrow, .csv or .ndjson)"
                )
            frames[name] = pl.DataFrame()
            continue
        frames[name] = _read_table(path)
    verdicts = frames["verdicts"]
    for column in ("verdict", "ebp_code"):
        if column not in verdicts.columns:
            raise InputError(f"{root}: verdicts table has no column {column!r}")
    if "reason_mask" not in verdicts.columns and "reasons" not in verdicts.columns:
        raise InputError(f"{root}: verdicts table has neither 'reason_mask' nor 'reasons'")
    return ReportData(
        verdicts=_prepare(verdicts),
        exceptions=frames["exceptions"],
        orphans=frames["orphans"],
        ledger=_prepare(frames["ledger"]),
        rejects=frames["rejects"],
        summary=_read_summary(root),
        source=str(root),
    )
