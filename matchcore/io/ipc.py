"""Arrow IPC reader: the file format and the stream format (.arrow, .ipc, .feather).

The format is told by the file's magic bytes, not its extension, so either works under any name.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ._common import RawSource, read_with

EXTENSIONS = ("arrow", "ipc", "feather")

#: The Arrow IPC file format starts with these bytes; anything else is tried as a stream.
_FILE_MAGIC = b"ARROW1"


def _read_ipc_any(path: Path) -> pl.DataFrame:
    with path.open("rb") as handle:
        magic = handle.read(len(_FILE_MAGIC))
    if magic == _FILE_MAGIC:
        return pl.read_ipc(path)
    return pl.read_ipc_stream(path)


def read_ipc(path: str | Path) -> RawSource:
    """Read an Arrow IPC file or stream as stored; InputError names the file on failure."""
    return read_with(_read_ipc_any, path, "Arrow IPC")
