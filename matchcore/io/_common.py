"""What every reader shares: the raw-source record and file checks that name the file.

A reader turns one source into a raw Polars frame (the source's own column names and types)
plus a label for messages; `matchcore.normalise` turns that into a canonical table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from polars.exceptions import PanicException

from ..exceptions import InputError
from ._rejects import empty_rejects

#: Longest part of a third-party error message repeated in ours.
_REASON_LIMIT = 200
#: Readers quote offending content in backticks or quotes; it may be personal data.
_QUOTED = re.compile(r"`[^`]*`?|'[^']*'|\"[^\"]*\"")


@dataclass(frozen=True)
class RawSource:
    """One source read as-is: the frame, a label for messages, and anything already rejected.

    `rows` holds the 1-based source row number of each frame row when that is not simply
    1..height (for example NDJSON lines after a bad line was dropped); None means 1..height.
    """

    frame: pl.DataFrame
    label: str
    rejects: pl.DataFrame = field(default_factory=empty_rejects)
    rows: pl.Series | None = None


def existing_file(path: str | Path) -> Path:
    """The path as a Path, or InputError when it is not a readable file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"input file {path} does not exist")
    if not path.is_file():
        raise InputError(f"input {path} is not a regular file")
    return path


def error_reason(error: BaseException) -> str:
    """The first line of a third-party error, with quoted content elided (it may be personal)."""
    text = str(error).strip()
    reason = _QUOTED.sub("…", text.splitlines()[0])[:_REASON_LIMIT] if text else ""
    return reason or type(error).__name__


@contextmanager
def reading(path: Path, what: str) -> Iterator[None]:
    """Turn any failure of a third-party reader into an InputError naming the file."""
    try:
        yield
    except InputError:
        raise
    except (Exception, PanicException) as error:  # readers raise many types (even panics)
        raise InputError(f"{path}: cannot read as {what}: {error_reason(error)}") from error


def read_with(reader: Callable[[Path], pl.DataFrame], path: str | Path, what: str) -> RawSource:
    """Run `reader` on an existing file, labelled with its path; failures become InputError."""
    checked = existing_file(path)
    with reading(checked, what):
        frame = reader(checked)
    return RawSource(frame=frame, label=str(checked))


def check_with(probe: Callable[[Path], object], path: str | Path, what: str) -> None:
    """Run a cheap `probe` (a schema or header read) on an existing file: the InputError of
    `read_with` for a file that cannot even be opened as `what`, without reading it all."""
    checked = existing_file(path)
    with reading(checked, what):
        probe(checked)


def open_and_close(path: Path) -> None:
    """The cheapest probe: the file can be opened for reading."""
    path.open("rb").close()
