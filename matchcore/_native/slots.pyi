"""Type stubs of the compiled order slot (src_ext/slots.pyx)."""

from typing import Any

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
    ) -> None: ...
