"""In-memory sources: Polars frames, pyarrow tables/batches/readers, and any Arrow C stream.

Anything exposing `__arrow_c_stream__` (DuckDB relations, pandas via pyarrow, nanoarrow, ...)
is read through the Arrow PyCapsule interface without a detour through Python objects.
"""

from __future__ import annotations

from typing import Any, cast

import polars as pl
import pyarrow as pa
from polars.exceptions import PanicException

from ..exceptions import InputError
from ._common import RawSource, error_reason


def is_in_memory(source: object) -> bool:
    """Whether `source` is a frame-like object rather than a path."""
    return isinstance(
        source, pl.DataFrame | pl.LazyFrame | pa.Table | pa.RecordBatch | pa.RecordBatchReader
    ) or hasattr(source, "__arrow_c_stream__")


def _describe(source: object) -> str:
    kind = type(source)
    names = {
        pl.DataFrame: "polars DataFrame",
        pl.LazyFrame: "polars LazyFrame",
        pa.Table: "pyarrow Table",
        pa.RecordBatch: "pyarrow RecordBatch",
        pa.RecordBatchReader: "pyarrow RecordBatchReader",
    }
    for cls, name in names.items():
        if isinstance(source, cls):
            return name
    return f"{kind.__module__.split('.')[0]} {kind.__name__}"


def _to_polars(source: Any) -> pl.DataFrame:
    if isinstance(source, pl.DataFrame):
        return source
    if isinstance(source, pl.LazyFrame):
        return source.collect()
    if isinstance(source, pa.RecordBatchReader):
        return cast(pl.DataFrame, pl.from_arrow(source.read_all()))
    if isinstance(source, pa.Table | pa.RecordBatch):
        return cast(pl.DataFrame, pl.from_arrow(source))
    return cast(pl.DataFrame, pl.from_arrow(pa.RecordBatchReader.from_stream(source).read_all()))


def read_memory(source: object, table: str) -> RawSource:
    """Read an in-memory source; the label says what it was, e.g. "<orders: polars DataFrame>"."""
    label = f"<{table}: {_describe(source)}>"
    try:
        frame = _to_polars(source)
    except (Exception, PanicException) as error:  # a foreign producer may raise anything
        raise InputError(
            f"{label}: cannot read as an Arrow table: {error_reason(error)}"
        ) from error
    return RawSource(frame=frame, label=label)
