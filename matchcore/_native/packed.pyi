"""Type stubs of the compiled packed-rows reader (src_ext/packed.pyx)."""

from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

class TableSchema:
    schema: pa.Schema
    types: list[pa.DataType]
    widths: list[int]
    def __init__(self, schema: pa.Schema) -> None: ...

class Table:
    """One record batch that Arrow consumers read through `__arrow_c_stream__`."""

    shape: TableSchema
    @property
    def schema(self) -> pa.Schema: ...
    @property
    def num_rows(self) -> int: ...
    @property
    def column_names(self) -> list[str]: ...
    def __len__(self) -> int: ...
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...
    def integers(self, name: str) -> list[int | None]: ...

class TableLayout:
    schema: pa.Schema
    shape: TableSchema
    row_at: int
    types: list[pa.DataType]
    key_parts: int
    link_parts: int
    def __init__(
        self,
        schema: pa.Schema,
        row_at: int,
        packed_at: Sequence[int] | None = None,
        key_at: Sequence[int] = (),
        link_at: Sequence[int] = (),
        dates_at: Sequence[int] = (),
        time_value: int = -1,
        dates: Callable[[int], tuple[int, ...]] | None = None,
        china: bool = False,
    ) -> None: ...

def allocated() -> tuple[int, int]: ...
def from_columns(shape: TableSchema, columns: list[list[Any]]) -> Table: ...
def table(
    packed: list[bytes],
    layout: TableLayout,
    keys: list[tuple[str, ...]] | None = None,
    links: list[Any] | None = None,
) -> Table: ...
def order_tables(
    packed: list[bytes],
    keys: list[tuple[str, str]],
    links: list[Any],
    orders: TableLayout,
    lines: TableLayout,
) -> tuple[Table, Table]: ...
def walk_place(rows: bytes, time_at: int, dates: Callable[[int], tuple[int, ...]]) -> int: ...
