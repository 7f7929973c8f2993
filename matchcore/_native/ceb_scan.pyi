"""Type stubs of the compiled CEB scan (src_ext/ceb_scan.pyx)."""

from collections.abc import Iterable
from typing import Any

class Shape:
    message: bytes
    document: bytes
    head: bytes
    line: bytes
    head_fields: tuple[bytes, ...]
    line_fields: tuple[bytes, ...]
    def __init__(
        self,
        message: str,
        document: str,
        head: str,
        line: str,
        head_fields: tuple[str, ...],
        line_fields: tuple[str, ...],
    ) -> None: ...

class Scanner:
    def __init__(self, shapes: Iterable[Shape]) -> None: ...
    def scan(
        self, data: bytes, start: int
    ) -> tuple[str, str | None, list[tuple[bool, Any]]] | None: ...
