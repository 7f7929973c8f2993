"""Where CEB messages come from: a file, a directory tree, a zip archive, or bytes.

Each message is handed out as (label, opener, size) so the reader opens one at a time and a
large directory never sits in memory. Reference tables stored beside the XML are found here too.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO

import polars as pl

from ...exceptions import InputError
from .mapping import ORPHAN_LINES_FILE, REFERENCE_TABLES

#: Name of the pseudo-table holding order lines kept beside the XML (see mapping).
ORPHAN_LINES_TABLE = "order_items"

CebSource = str | Path | bytes | bytearray | memoryview


@dataclass(frozen=True)
class MessageSource:
    """One message to parse: a label for rejects, how to open it, and its size when known."""

    label: str
    open: Callable[[], IO[bytes]]
    size: int | None


@dataclass(frozen=True)
class SideTable:
    """A Parquet table stored beside the messages (reference tables, orphan order lines)."""

    table: str
    label: str
    read: Callable[[], pl.DataFrame]


def _side_name(name: str) -> str | None:
    """The table a side file holds, from its base name, or None when it is not one."""
    if name == ORPHAN_LINES_FILE:
        return ORPHAN_LINES_TABLE
    stem, _, ext = name.rpartition(".")
    return stem if ext.lower() == "parquet" and stem in REFERENCE_TABLES else None


def _is_zip(data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04"


def _zip_members(
    archive: zipfile.ZipFile, label: str
) -> tuple[list[MessageSource], list[SideTable]]:
    messages: list[MessageSource] = []
    sides: list[SideTable] = []
    for member in sorted(archive.infolist(), key=lambda m: m.filename):
        if member.is_dir():
            continue
        name = member.filename.rsplit("/", 1)[-1]
        member_label = f"{label}!{member.filename}"
        side = _side_name(name) if "/" not in member.filename else None
        if side is not None:
            sides.append(
                SideTable(side, member_label, _zip_reader(archive, member.filename, member_label))
            )
        elif name.lower().endswith(".xml"):
            opener = partial(archive.open, member.filename)
            messages.append(MessageSource(member_label, opener, member.file_size))
    return messages, sides


def _zip_reader(archive: zipfile.ZipFile, member: str, label: str) -> Callable[[], pl.DataFrame]:
    def read() -> pl.DataFrame:
        return read_side_parquet(io.BytesIO(archive.read(member)), label)

    return read


def read_side_parquet(source: str | Path | IO[bytes], label: str) -> pl.DataFrame:
    """Read a Parquet side table; InputError names it when it cannot be read."""
    try:
        return pl.read_parquet(source)
    except Exception as error:  # polars raises several types for bad bytes
        raise InputError(f"{label}: cannot read as Parquet: {error}") from error


def _open_zip(path: Path | None, data: bytes | None, label: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data) if data is not None else path)  # type: ignore[arg-type]
    except (zipfile.BadZipFile, OSError) as error:
        raise InputError(f"{label}: cannot read as a zip archive ({error})") from None


def _directory(root: Path) -> tuple[list[MessageSource], list[SideTable]]:
    messages: list[MessageSource] = []
    sides: list[SideTable] = []
    for path in sorted(root.rglob("*"), key=lambda p: str(p.relative_to(root))):
        if not path.is_file():
            continue
        side = _side_name(path.name) if path.parent == root else None
        if side is not None:
            sides.append(SideTable(side, str(path), partial(read_side_parquet, path, str(path))))
        elif path.suffix.lower() == ".xml":
            messages.append(_file_message(path))
        elif path.suffix.lower() == ".zip":
            zipped, _ = _zip_members(_open_zip(path, None, str(path)), str(path))
            messages.extend(zipped)
    return messages, sides


def _file_message(path: Path) -> MessageSource:
    return MessageSource(str(path), partial(_open_file, path), path.stat().st_size)


def _open_file(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as error:
        raise InputError(f"{path}: cannot open ({error.strerror})") from None


def locate(source: CebSource) -> tuple[str, list[MessageSource], list[SideTable]]:
    """The label, messages and side tables of a source; InputError when it cannot be read."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        if _is_zip(data):
            messages, sides = _zip_members(_open_zip(None, data, "<bytes>"), "<bytes>")
            return "<bytes>", messages, sides
        return "<bytes>", [MessageSource("<bytes>", lambda: io.BytesIO(data), len(data))], []
    if not isinstance(source, str | Path):
        raise InputError(f"CEB input must be a path or bytes, not {type(source).__name__}")
    path = Path(source)
    if path.is_dir():
        messages, sides = _directory(path)
        return str(path), messages, sides
    if not path.is_file():
        raise InputError(f"CEB input {path} does not exist or is not a file or directory")
    with _open_file(path) as handle:
        magic = handle.read(4)
    if _is_zip(magic):
        messages, sides = _zip_members(_open_zip(path, None, str(path)), str(path))
        return str(path), messages, sides
    return str(path), [_file_message(path)], []


def iter_sources(messages: list[MessageSource]) -> Iterator[tuple[MessageSource, IO[bytes]]]:
    """Open each message in turn and close it after the caller is done with it."""
    for message in messages:
        with message.open() as handle:
            yield message, handle
