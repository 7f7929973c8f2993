"""Finding the standard files of a data directory: `<table>.<ext>` for every canonical table."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from ..exceptions import InputError, SchemaError
from ..schema import TABLES
from . import csv, ipc, ndjson, parquet

#: Extensions recognised for table files, in the order they are reported.
TABLE_EXTENSIONS: tuple[str, ...] = (
    parquet.EXTENSIONS + csv.EXTENSIONS + ipc.EXTENSIONS + ndjson.EXTENSIONS
)


def _candidates(directory: Path, table: str) -> list[Path]:
    return [
        directory / f"{table}.{ext}"
        for ext in TABLE_EXTENSIONS
        if (directory / f"{table}.{ext}").is_file()
    ]


def discover(directory: str | Path, *, supplied: Collection[str] = ()) -> dict[str, Path]:
    """Map each table with a file in `directory` to that file.

    A missing required table is a SchemaError unless it is `supplied` from elsewhere (a
    per-table option); two files for one table is an InputError.
    """
    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"data directory {root} does not exist or is not a directory")
    found: dict[str, Path] = {}
    for name, table in TABLES.items():
        files = _candidates(root, name)
        if len(files) > 1:
            listed = ", ".join(f.name for f in files)
            raise InputError(f"{root}: table {name} has more than one file ({listed})")
        if files:
            found[name] = files[0]
        elif not table.optional and name not in supplied:
            exts = "|".join(TABLE_EXTENSIONS)
            raise SchemaError(
                f"{root}: required table {name} is missing (expected {name}.{{{exts}}})"
            )
    return found
