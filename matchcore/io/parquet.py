"""Parquet reader: a Parquet file -> raw Polars frame (types as stored)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ._common import RawSource, check_with, read_with

EXTENSIONS = ("parquet",)


def read_parquet(path: str | Path) -> RawSource:
    """Read a Parquet file as stored; InputError names the file when it cannot be read."""
    return read_with(lambda p: pl.read_parquet(p), path, "Parquet")


def check_parquet(path: str | Path) -> None:
    """Read only the schema (the footer): InputError names a file that is not Parquet."""
    check_with(pl.read_parquet_schema, path, "Parquet")
