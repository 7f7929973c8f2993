"""Readers: any supported source -> a raw Polars frame plus a label for messages.

One module per format (`parquet`, `csv`, `ipc`, `ndjson`, `memory`); `read_source` picks the
reader from the file extension or the object type. `matchcore.normalise` makes frames canonical.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias

from ..exceptions import InputError
from . import csv, ipc, ndjson, parquet
from ._common import RawSource
from ._rejects import REJECTS_SCHEMA, empty_rejects
from .csv import read_csv
from .discover import TABLE_EXTENSIONS, discover
from .ipc import read_ipc
from .memory import is_in_memory, read_memory
from .ndjson import read_ndjson
from .parquet import read_parquet

#: What `read_source` accepts: a path, a RawSource, or an in-memory Arrow/Polars object.
Source: TypeAlias = str | os.PathLike[str] | RawSource | Any


def _reader_for(ext: str) -> Callable[[Path, str], RawSource] | None:
    """The reader of a file extension (lower case, no dot), or None when unknown."""
    readers: list[tuple[tuple[str, ...], Callable[[Path, str], RawSource]]] = [
        (parquet.EXTENSIONS, lambda path, table: read_parquet(path)),
        (csv.EXTENSIONS, lambda path, table: read_csv(path)),
        (ipc.EXTENSIONS, lambda path, table: read_ipc(path)),
        (ndjson.EXTENSIONS, lambda path, table: read_ndjson(path, table=table)),
    ]
    return next((reader for exts, reader in readers if ext in exts), None)


def _read_file(path: Path, table_name: str) -> RawSource:
    ext = path.suffix[1:].lower()
    reader = _reader_for(ext)
    if reader is None:
        known = ", ".join(f".{e}" for e in TABLE_EXTENSIONS)
        raise InputError(
            f"{path}: unknown file extension for table {table_name} (expected {known})"
        )
    return reader(path, table_name)


def read_source(source: Source, table_name: str) -> RawSource:
    """Read one source of table `table_name` as-is (no type conversion).

    Files are told by extension; in-memory objects are Polars frames, pyarrow tables, batches
    and readers, or anything with `__arrow_c_stream__`. Unreadable input raises InputError.
    """
    if isinstance(source, RawSource):
        return source
    if isinstance(source, str | os.PathLike):
        return _read_file(Path(source), table_name)
    if is_in_memory(source):
        return read_memory(source, table_name)
    raise InputError(
        f"{table_name}: cannot read a source of type {type(source).__name__} "
        "(give a file path, a Polars or pyarrow table, or an Arrow C stream)"
    )


__all__ = [
    "REJECTS_SCHEMA",
    "RawSource",
    "Source",
    "TABLE_EXTENSIONS",
    "discover",
    "empty_rejects",
    "read_csv",
    "read_ipc",
    "read_memory",
    "read_ndjson",
    "read_parquet",
    "read_source",
]
