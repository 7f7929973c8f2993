"""CSV reader: every column is read as text, so nothing is lost to type inference.

Normalisation converts the text to canonical types exactly (money from decimal text, etc.).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ._common import RawSource, check_with, read_with

EXTENSIONS = ("csv",)


def _read_text_columns(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False, raise_if_empty=True)


def _read_header(path: Path) -> pl.Schema:
    return pl.scan_csv(path, infer_schema=False, raise_if_empty=True).collect_schema()


def read_csv(path: str | Path) -> RawSource:
    """Read a UTF-8 CSV file with a header row, every column as String."""
    return read_with(_read_text_columns, path, "CSV")


def check_csv(path: str | Path) -> None:
    """Read only the header row: InputError names an empty or unreadable file."""
    check_with(_read_header, path, "CSV")
