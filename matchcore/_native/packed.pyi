"""Type stubs of the compiled packed-rows reader (src_ext/packed.pyx)."""

from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

class TableLayout:
    schema: pa.Schema
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

def table(
    packed: list[bytes],
    layout: TableLayout,
    keys: list[tuple[str, ...]] | None = None,
    links: list[Any] | None = None,
) -> pa.Table: ...
def order_tables(
    packed: list[bytes],
    keys: list[tuple[str, str]],
    links: list[Any],
    orders: TableLayout,
    lines: TableLayout,
) -> tuple[pa.Table, pa.Table]: ...
def walk_place(rows: bytes, time_at: int, dates: Callable[[int], tuple[int, ...]]) -> int: ...
