"""Readers: any supported source -> a raw Polars frame plus a label for messages.

One module per format (`parquet`, `csv`, `ipc`, `ndjson`, `memory`); `read_source` picks the
reader from the file extension or the object type, `check_sources` only checks that sources
open. `matchcore.normalise` makes frames canonical.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from ..exceptions import InputError
from ..schema import TABLES
from . import csv, ipc, ndjson, parquet
from ._common import RawSource
from ._rejects import REJECTS_SCHEMA, empty_rejects
from .csv import check_csv, read_csv
from .discover import TABLE_EXTENSIONS, discover
from .ipc import check_ipc, read_ipc
from .memory import is_in_memory, read_memory
from .ndjson import check_ndjson, read_ndjson
from .parquet import check_parquet, read_parquet

#: What `read_source` accepts: a path, a RawSource, or an in-memory Arrow/Polars object.
Source: TypeAlias = str | os.PathLike[str] | RawSource | Any


@dataclass(frozen=True)
class _Format:
    """A file format: its extensions, its reader and its cheap check (see `check_source`)."""

    extensions: tuple[str, ...]
    read: Callable[[Path, str], RawSource]
    check: Callable[[Path], None]


_FORMATS = (
    _Format(parquet.EXTENSIONS, lambda path, table: read_parquet(path), check_parquet),
    _Format(csv.EXTENSIONS, lambda path, table: read_csv(path), check_csv),
    _Format(ipc.EXTENSIONS, lambda path, table: read_ipc(path), check_ipc),
    _Format(ndjson.EXTENSIONS, lambda path, table: read_ndjson(path, table=table), check_ndjson),
)


def _format_of(path: Path, table_name: str) -> _Format:
    """The format of a file by its extension; InputError when the extension is unknown."""
    ext = path.suffix[1:].lower()
    found = next((f for f in _FORMATS if ext in f.extensions), None)
    if found is None:
        known = ", ".join(f".{e}" for e in TABLE_EXTENSIONS)
        raise InputError(
            f"{path}: unknown file extension for table {table_name} (expected {known})"
        )
    return found


def _unreadable_type(source: object, table_name: str) -> InputError:
    return InputError(
        f"{table_name}: cannot read a source of type {type(source).__name__} "
        "(give a file path, a Polars or pyarrow table, or an Arrow C stream)"
    )


def read_source(source: Source, table_name: str) -> RawSource:
    """Read one source of table `table_name` as-is (no type conversion).

    Files are told by extension; in-memory objects are Polars frames, pyarrow tables, batches
    and readers, or anything with `__arrow_c_stream__`. Unreadable input raises InputError.
    """
    if isinstance(source, RawSource):
        return source
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        return _format_of(path, table_name).read(path, table_name)
    if is_in_memory(source):
        return read_memory(source, table_name)
    raise _unreadable_type(source, table_name)


def check_source(source: Source, table_name: str) -> None:
    """Raise the InputError `read_source` would for a source that cannot even be opened: a
    missing file, an unknown extension, no permission, a file whose schema or header does not
    read as its format, an object of an unknown type. Cheap: no file is read in full, and
    in-memory sources are not touched."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        _format_of(path, table_name).check(path)
    elif not isinstance(source, RawSource) and not is_in_memory(source):
        raise _unreadable_type(source, table_name)


def check_sources(sources: Mapping[str, Source]) -> None:
    """`check_source` on every given source, in table order (SPEC §2): run before reading any,
    so an unreadable later file is reported before the earlier tables take their time."""
    for name in TABLES:
        if sources.get(name) is not None:
            check_source(sources[name], name)


__all__ = [
    "REJECTS_SCHEMA",
    "RawSource",
    "Source",
    "TABLE_EXTENSIONS",
    "check_source",
    "check_sources",
    "discover",
    "empty_rejects",
    "read_csv",
    "read_ipc",
    "read_memory",
    "read_ndjson",
    "read_parquet",
    "read_source",
]
