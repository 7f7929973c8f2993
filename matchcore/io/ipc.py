"""Arrow IPC reader: the file format and the stream format (.arrow, .ipc, .feather).

The format is told by the file's magic bytes, not its extension, so either works under any name.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa

from ._common import RawSource, check_with, read_with

EXTENSIONS = ("arrow", "ipc", "feather")

#: The Arrow IPC file format starts with these bytes; anything else is tried as a stream.
_FILE_MAGIC = b"ARROW1"


def _is_file_format(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(_FILE_MAGIC)) == _FILE_MAGIC


def _read_ipc_any(path: Path) -> pl.DataFrame:
    if _is_file_format(path):
        return pl.read_ipc(path)
    return pl.read_ipc_stream(path)


def _read_schema(path: Path) -> object:
    if _is_file_format(path):
        return pl.read_ipc_schema(path)
    with pa.OSFile(str(path)) as handle:  # Polars reads a stream's schema only with its data
        return pa.ipc.open_stream(handle).schema


def read_ipc(path: str | Path) -> RawSource:
    """Read an Arrow IPC file or stream as stored; InputError names the file on failure."""
    return read_with(_read_ipc_any, path, "Arrow IPC")


def check_ipc(path: str | Path) -> None:
    """Read only the schema: InputError names a file that is not Arrow IPC."""
    check_with(_read_schema, path, "Arrow IPC")
