"""NDJSON reader (.ndjson, .jsonl): one JSON object per line.

A line that is not a JSON object goes to rejects with its line number and the other lines go on.
Canonical scalar columns are read as text, so JSON numbers keep their exact decimal digits.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import msgspec
import polars as pl

from ..exceptions import InputError
from ..schema import TABLES, Kind
from ._common import RawSource, check_with, existing_file, open_and_close, reading
from ._rejects import REJECTS_SCHEMA

EXTENSIONS = ("ndjson", "jsonl")

#: A line holding only white space (Polars skips those, so row numbers must skip them too).
_BLANK_LINE = re.compile(rb"(?:^|\n)[ \t\r]*(?:\n|$)")


def _is_blank(line: bytes) -> bool:
    return not line.strip()


def _text_schema(data: bytes, text_columns: frozenset[str]) -> dict[str, pl.DataType]:
    """The inferred schema with every canonical scalar column forced to String."""
    inferred = pl.scan_ndjson(io.BytesIO(data), infer_schema_length=None).collect_schema()
    return {
        name: pl.String() if name in text_columns else dtype for name, dtype in inferred.items()
    }


def _read_lines(data: bytes, text_columns: frozenset[str]) -> pl.DataFrame:
    if not data.strip():
        return pl.DataFrame()
    return pl.read_ndjson(data, schema=_text_schema(data, text_columns))


def _line_numbers(keep: list[bool]) -> pl.Series:
    """1-based line numbers of the kept lines."""
    return pl.Series("row", [i + 1 for i, k in enumerate(keep) if k], dtype=pl.Int64)


def _bad_line_message(line: bytes) -> str | None:
    """Why a non-blank line is not a JSON object, or None when it is one."""
    try:
        value = msgspec.json.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        return f"line is not valid JSON: {error}"
    if not isinstance(value, dict):
        return "line is not a JSON object"
    return None


def _split_bad_lines(data: bytes, table: str, label: str) -> tuple[bytes, list[bool], pl.DataFrame]:
    """Separate lines that are not JSON objects (checked one by one; only on the error path)."""
    lines = data.split(b"\n")
    keep, bad_rows, messages = [], [], []
    for number, line in enumerate(lines, start=1):
        message = None if _is_blank(line) else _bad_line_message(line)
        keep.append(message is None and not _is_blank(line))
        if message is not None:
            bad_rows.append(number)
            messages.append(message)
    good = b"\n".join(line for line, k in zip(lines, keep, strict=True) if k)
    rejects = pl.DataFrame(
        {
            "table": [table] * len(bad_rows),
            "file": [label] * len(bad_rows),
            "row": bad_rows,
            "column": [None] * len(bad_rows),
            "value": [None] * len(bad_rows),
            "message": messages,
        },
        schema=REJECTS_SCHEMA,
    )
    return good, keep, rejects


def _canonical_text_columns(table: str | None) -> frozenset[str]:
    if table is None or table not in TABLES:
        return frozenset()
    return frozenset(c.name for c in TABLES[table].columns if c.kind is not Kind.ROLES)


def read_ndjson(path: str | Path, *, table: str | None = None) -> RawSource:
    """Read an NDJSON file; lines that are not JSON objects become rejects of `table`."""
    checked = existing_file(path)
    label = str(checked)
    text_columns = _canonical_text_columns(table)
    with reading(checked, "NDJSON"):
        data = checked.read_bytes()
    try:
        with reading(checked, "NDJSON"):
            frame = _read_lines(data, text_columns)
        rows = None
        if _BLANK_LINE.search(data.rstrip(b"\r\n")):
            rows = _line_numbers([not _is_blank(line) for line in data.split(b"\n")])
        return RawSource(frame=frame, label=label, rows=rows)
    except InputError:
        good, keep, rejects = _split_bad_lines(data, table or "", label)
        if rejects.is_empty() or not any(keep):
            raise
    with reading(checked, "NDJSON"):
        frame = _read_lines(good, text_columns)
    return RawSource(frame=frame, label=label, rejects=rejects, rows=_line_numbers(keep))


def check_ndjson(path: str | Path) -> None:
    """Open the file only: a bad line is a reject, so only reading it all tells more."""
    check_with(open_and_close, path, "NDJSON")
