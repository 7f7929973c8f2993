"""Parquet reader: a Parquet file -> raw Polars frame (types as stored)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ._common import RawSource, read_with

EXTENSIONS = ("parquet",)


def read_parquet(path: str | Path) -> RawSource:
    """Read a Parquet file as stored; InputError names the file when it cannot be read."""
    return read_with(lambda p: pl.read_parquet(p), path, "Parquet")
