"""The rejects table: input rows that could not be read (SPEC §4), one row per problem.

Readers and normalisation both add to it, so its schema is declared once, here.
"""

from __future__ import annotations

import polars as pl

#: Schema of every rejects frame: table, source label, 1-based data row, column, raw value, message.
REJECTS_SCHEMA: dict[str, pl.DataType] = {
    "table": pl.String(),
    "file": pl.String(),
    "row": pl.Int64(),
    "column": pl.String(),
    "value": pl.String(),
    "message": pl.String(),
}


def empty_rejects() -> pl.DataFrame:
    """A rejects frame with no rows."""
    return pl.DataFrame(schema=REJECTS_SCHEMA)


def concat_rejects(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Stack rejects frames (in the given order), coercing each to `REJECTS_SCHEMA`."""
    frames = [f.select([pl.col(c).cast(t) for c, t in REJECTS_SCHEMA.items()]) for f in frames]
    frames = [f for f in frames if f.height]
    return pl.concat(frames, how="vertical") if frames else empty_rejects()
