"""Type stubs of the compiled order slot and deadline queue (src_ext/slots.pyx)."""

from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar

FIELDS: tuple[str, ...]

class Slot:
    """`matchcore.stream.matcher._SlotStruct` in C fields (None: an int not known)."""

    first_seen: float
    key: tuple[str, str]
    version: int
    last: Any
    evaluated: bool
    expired: bool
    buyer: str | None
    spent_after: int | None
    walk_limit: int | None
    place: int | None
    order_revision: int | None
    order_link: str | None
    order_rows: bytes | None
    payments: Any
    waybills: Any
    def __init__(
        self,
        first_seen: float,
        key: tuple[str, str],
        version: int = 0,
        last: Any = None,
        evaluated: bool = False,
        expired: bool = False,
        buyer: str | None = None,
        spent_after: int | None = None,
        walk_limit: int | None = None,
        place: int | None = None,
        order_revision: int | None = None,
        order_link: str | None = None,
        order_rows: bytes | None = None,
        payments: Any = None,
        waybills: Any = None,
    ) -> None: ...

class DeadlineQueue:
    """`matchcore.stream.matcher._DeadlineQueue` in C (the base of `_Deadlines`)."""

    CHUNK: ClassVar[int]
    _window: float
    _newest: float
    _chunks: deque[tuple[Any, ...]]
    _untracked: Callable[[Any], Any]
    _tail: list[Any]
    _late: list[tuple[float, Any]]
    def __init__(self, window: float, untracked: Callable[[Any], Any]) -> None: ...
    def add(self, key: Any, first_seen: float) -> None: ...
