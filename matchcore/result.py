"""`MatchResult`: the outputs of one run (SPEC §4) with its summary, Arrow export and writers.

Public tables are Polars frames whose money columns are Decimal(18, 4) CNY, so they compare and
write exactly. The canonical inputs, the raw engine output and the settings stay on the result
(`_tables`, `_raw`, `_settings`) for explain and report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from .engine.base import CanonicalTables, EngineOutput
from .exceptions import MatchcoreError
from .io import empty_rejects
from .money import to_decimal_series
from .rules import Rule, RuleSettings

#: Output tables in the order they are written and listed.
OUTPUT_TABLES: tuple[str, ...] = ("verdicts", "exceptions", "orphans", "ledger", "rejects")
#: Money columns of the output tables (int64 ten-thousandths inside, Decimal(18, 4) outside).
MONEY_OUTPUT_COLUMNS: frozenset[str] = frozenset({"computed_tax", "limit_value", "used"})
#: Formats `MatchResult.write` understands, with their file name extensions.
WRITE_FORMATS: dict[str, str] = {
    "parquet": "parquet",
    "csv": "csv",
    "ndjson": "ndjson",
    "ipc": "arrow",
}
#: Parquet outputs are zstd level 1: files as small as the default level, written faster.
PARQUET_ZSTD_LEVEL = 1
#: Verdicts a batch run gives, in severity order.
VERDICTS: tuple[str, ...] = ("pass", "review", "reject")

#: Schema of `MatchResult.summary`: counts in `value`, timings (seconds) in `seconds`.
SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "section": pl.String(),
    "key": pl.String(),
    "value": pl.Int64(),
    "seconds": pl.Float64(),
}


def money_as_decimal(frame: pl.DataFrame) -> pl.DataFrame:
    """Integer money columns (ten-thousandths) of an output table -> exact Decimal(18, 4)."""
    integer_money = [
        name
        for name, dtype in frame.schema.items()
        if name in MONEY_OUTPUT_COLUMNS and dtype.is_integer()
    ]
    if not integer_money:
        return frame
    return frame.with_columns([to_decimal_series(frame[name]) for name in integer_money])


def lists_joined(frame: pl.DataFrame) -> pl.DataFrame:
    """List columns joined with "," (CSV cannot hold lists)."""
    lists = [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.List)]
    if not lists:
        return frame
    return frame.with_columns(
        [pl.col(name).cast(pl.List(pl.String)).list.join(",") for name in lists]
    )


def _count_map(frame: pl.DataFrame, column: str) -> dict[str, int]:
    """Row counts per value of `column` (nulls counted under "")."""
    if frame.height == 0 or column not in frame.columns:
        return {}
    counts = frame.group_by(column).len().sort(column, nulls_last=True)
    return {
        ("" if key is None else str(key)): int(n)
        for key, n in zip(counts[column].to_list(), counts["len"].to_list(), strict=True)
    }


def _rule_counts(verdicts: pl.DataFrame, rules: list[Rule]) -> dict[str, int]:
    """Orders failing each rule, read from the `reason_mask` bits (vectorised, one pass)."""
    if not rules:
        return {}
    if "reason_mask" not in verdicts.columns or verdicts.height == 0:
        return {rule.name: 0 for rule in rules}
    mask = pl.col("reason_mask").cast(pl.UInt64)
    row = verdicts.select(
        [((mask & pl.lit(rule.bit, dtype=pl.UInt64)) != 0).sum().alias(rule.name) for rule in rules]
    ).row(0)
    return {rule.name: int(n) for rule, n in zip(rules, row, strict=True)}


class MatchResult:
    """The outputs of one matching run.

    Attributes:
        verdicts: one row per order row: verdict, reasons, reason_mask, tax, limit value.
        exceptions: one row per failed (order, rule, subject), identity values masked by default.
        orphans: payments, waybills, order lines and inventories that link to no order.
        ledger: the updated quota ledger (buyer, year, used).
        rejects: input rows that could not be read, with file, row, column and message.
        engine: name of the engine that ran ("kernel" or "reference").
        input_rows: rows read per input table.
        timings: seconds per phase (read, normalise, match, render, write).
    """

    def __init__(
        self,
        *,
        verdicts: pl.DataFrame,
        exceptions: pl.DataFrame,
        orphans: pl.DataFrame,
        ledger: pl.DataFrame,
        rejects: pl.DataFrame | None = None,
        engine: str,
        input_rows: Mapping[str, int] | None = None,
        timings: Mapping[str, float] | None = None,
        settings: RuleSettings | None = None,
        tables: CanonicalTables | None = None,
        raw: EngineOutput | None = None,
    ) -> None:
        self.verdicts = money_as_decimal(verdicts)
        self.exceptions = money_as_decimal(exceptions)
        self.orphans = money_as_decimal(orphans)
        self.ledger = money_as_decimal(ledger)
        self.rejects = rejects if rejects is not None else empty_rejects()
        self.engine = engine
        self.input_rows: dict[str, int] = dict(input_rows or {})
        self.timings: dict[str, float] = dict(timings or {})
        self._settings = settings if settings is not None else RuleSettings()
        self._tables = tables
        self._raw = raw

    # -- summary ---------------------------------------------------------------------------

    def verdict_counts(self) -> dict[str, int]:
        """Orders per verdict; every batch verdict is present, zero when none."""
        counts = {verdict: 0 for verdict in VERDICTS}
        counts.update(_count_map(self.verdicts, "verdict"))
        return counts

    def rule_counts(self) -> dict[str, int]:
        """Orders failing each rule that is not `off`, in catalogue order."""
        enabled = [rule for rule in Rule if self._settings.enabled(rule)]
        return _rule_counts(self.verdicts, enabled)

    @property
    def summary(self) -> pl.DataFrame:
        """Counts and timings as rows of (`section`, `key`, `value`, `seconds`).

        Sections: engine, verdict, rule, input_rows, rejects, orphans, exceptions (counts in
        `value`) and timing (seconds per phase in `seconds`).
        """
        counts: list[tuple[str, Mapping[str, int]]] = [
            ("engine", {self.engine: 1}),
            ("verdict", self.verdict_counts()),
            ("rule", self.rule_counts()),
            ("input_rows", self.input_rows),
            ("rejects", _count_map(self.rejects, "table")),
            ("orphans", _count_map(self.orphans, "document")),
            ("exceptions", {"rows": self.exceptions.height}),
        ]
        rows: list[tuple[str, str, int | None, float | None]] = [
            (section, key, int(value), None)
            for section, values in counts
            for key, value in values.items()
        ]
        rows += [("timing", phase, None, float(sec)) for phase, sec in self.timings.items()]
        return pl.DataFrame(rows, schema=SUMMARY_SCHEMA, orient="row")

    def orders_per_second(self) -> float | None:
        """Orders per second over all timed phases (None when nothing was timed)."""
        elapsed = sum(self.timings.values())
        return self.verdicts.height / elapsed if elapsed > 0 else None

    def summary_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-able values (what `--json` prints and `summary.json` holds)."""
        sections: dict[str, dict[str, Any]] = {}
        for section, key, value, seconds in self.summary.iter_rows():
            sections.setdefault(section, {})[key] = seconds if section == "timing" else value
        return {
            "engine": self.engine,
            "orders": self.verdicts.height,
            "verdicts": sections.get("verdict", {}),
            "rules": sections.get("rule", {}),
            "input_rows": sections.get("input_rows", {}),
            "rejects": sections.get("rejects", {}),
            "orphans": sections.get("orphans", {}),
            "exceptions": self.exceptions.height,
            "timings": sections.get("timing", {}),
            "orders_per_second": self.orders_per_second(),
        }

    # -- export ----------------------------------------------------------------------------

    def tables(self) -> dict[str, pl.DataFrame]:
        """The output tables by name (verdicts, exceptions, orphans, ledger, rejects)."""
        return {name: getattr(self, name) for name in OUTPUT_TABLES}

    def to_arrow(self) -> dict[str, pa.Table]:
        """The output tables and the summary as pyarrow Tables (money as decimal128(18, 4))."""
        arrow = {name: frame.to_arrow() for name, frame in self.tables().items()}
        arrow["summary"] = self.summary.to_arrow()
        return arrow

    def write(self, directory: str | Path, format: str = "parquet") -> dict[str, Path]:
        """Write every output table to `directory` as `<table>.<ext>`, plus `summary.json`.

        Formats: parquet (zstd level 1) and ipc keep money as decimal128(18, 4); csv joins list
        columns with ","; ndjson writes money as decimal strings. Returns the written paths by
        table.
        """
        fmt = str(format).strip().lower()
        if fmt not in WRITE_FORMATS:
            raise MatchcoreError(
                f"unknown output format {format!r}; choose one of {', '.join(WRITE_FORMATS)}"
            )
        start = time.perf_counter()
        out = Path(directory)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MatchcoreError(
                f"{out}: cannot create output directory ({exc.strerror})"
            ) from None
        written: dict[str, Path] = {}
        for name, frame in self.tables().items():
            path = out / f"{name}.{WRITE_FORMATS[fmt]}"
            _write_frame(frame, path, fmt)
            written[name] = path
        self.timings["write"] = self.timings.get("write", 0.0) + time.perf_counter() - start
        summary_path = out / "summary.json"
        _write_text(summary_path, json.dumps(self.summary_dict(), indent=2, ensure_ascii=False))
        written["summary"] = summary_path
        return written

    def explain(self, order_no: str, ebp_code: str | None = None, *, mask: bool = True) -> Any:
        """Why an order got its verdict: its documents, filings and every rule's outcome.

        See `matchcore.explain.explain`; identity values are masked unless `mask=False`.
        """
        from .api import require  # imported here: api imports this module

        explain = require("matchcore.explain", "explain", "explain")
        return explain(self, order_no, ebp_code=ebp_code, mask=mask)

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.verdict_counts().items())
        return (
            f"MatchResult(engine={self.engine!r}, orders={self.verdicts.height}, {counts}, "
            f"exceptions={self.exceptions.height}, orphans={self.orphans.height}, "
            f"rejects={self.rejects.height})"
        )


def _write_frame(frame: pl.DataFrame, path: Path, fmt: str) -> None:
    """Write one table in `fmt`; OS errors become MatchcoreError naming the file."""
    try:
        if fmt == "parquet":
            frame.write_parquet(path, compression="zstd", compression_level=PARQUET_ZSTD_LEVEL)
        elif fmt == "ipc":
            frame.write_ipc(path)
        elif fmt == "csv":
            lists_joined(frame).write_csv(path)
        else:
            frame.write_ndjson(path)
    except OSError as exc:
        raise MatchcoreError(f"{path}: cannot write ({exc.strerror or exc})") from None


def _write_text(path: Path, text: str) -> None:
    try:
        path.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise MatchcoreError(f"{path}: cannot write ({exc.strerror})") from None
