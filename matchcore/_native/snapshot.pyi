"""Type stubs of the compiled snapshot writer (src_ext/snapshot.pyx)."""

from collections.abc import Callable
from typing import Any

def encode_state(
    names: tuple[str, ...],
    docs: dict[str, dict[Any, Any]],
    slots: dict[Any, Any],
    rest: dict[str, Any],
    encode: Callable[[Any], bytes],
    encode_into: Callable[[Any, bytearray], None],
    entry_type: type,
    event_type: type,
) -> bytes | None: ...

class StructPacker:
    """msgspec's `encode_into` of Structs of one type (a verdict event's log record)."""

    def __init__(
        self,
        kind: type,
        encode: Callable[[Any], bytes],
        encode_into: Callable[[Any, bytearray], None],
    ) -> None: ...
    def pack_into(self, value: Any, out: bytearray) -> None: ...
