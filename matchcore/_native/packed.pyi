"""Type stubs of the compiled packed-rows reader (src_ext/packed.pyx)."""

from collections.abc import Sequence

import pyarrow as pa

class TableLayout:
    schema: pa.Schema
    row_at: int
    types: list[pa.DataType]
    def __init__(
        self, schema: pa.Schema, row_at: int, packed_at: Sequence[int] | None = None
    ) -> None: ...

def table(packed: list[bytes], layout: TableLayout) -> pa.Table: ...
def order_tables(
    packed: list[bytes], orders: TableLayout, lines: TableLayout
) -> tuple[pa.Table, pa.Table]: ...
def walk_places(packed: list[bytes], time_at: int, year_at: int) -> list[tuple[int, int]]: ...
