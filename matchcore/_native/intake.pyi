"""Type stubs of the compiled intake (src_ext/intake.pyx)."""

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .slots import DeadlineQueue

TEXT: int
ID_NUMBER: int
AMOUNT: int
WHOLE: int
TIME: int
OTHER: int
CHINA_DATES: int
VALID_TIME: int
MONEY_TEXT: int

class Converter:
    def __init__(self, kind: int, fallback: Callable[[Any], Any]) -> None: ...
    def __call__(self, value: Any) -> Any: ...

class RowPlan:
    def __init__(
        self,
        attributes: Sequence[str],
        kinds: Sequence[int],
        fallbacks: Sequence[Callable[[Any], Any]],
        required: Sequence[bool],
        defaults: Sequence[Any],
        dates_at: int,
        dates: Callable[[int], tuple[int, int]],
        python_row: Callable[..., tuple[Any, ...]],
        kept: Sequence[int],
    ) -> None: ...
    def row(self, source: object, given: tuple[Any, ...] = ()) -> tuple[Any, ...]: ...

class MessageCheck:
    def __init__(
        self,
        key: Sequence[int],
        required: Sequence[int],
        times: Sequence[int],
        amounts: Sequence[int],
        amount_names: Sequence[str],
        op: int,
        items: int,
        item: MessageCheck | None,
        text: Converter,
        valid_time: Converter,
        money_text: Converter,
    ) -> None: ...
    def accepts(self, message: object) -> bool: ...

LINK_BUYER: int
LINK_ORDER: int
LINK_WAYBILL: int

class DocumentIntake:
    kind: str
    def __init__(
        self,
        kind: str,
        key_names: tuple[str, str],
        link: int,
        link_names: Sequence[str],
        text: Converter,
        id_number: Converter,
        rows: RowPlan,
        lines: RowPlan | None,
        given: int,
        python_rows: Callable[[Any], Any],
        encode_into: Callable[[Any, bytearray], None],
    ) -> None: ...
    def key(self, message: object) -> tuple[str, str]: ...
    def keep(self, message: object) -> tuple[Any, bytes]: ...

class MessageDecoder:
    def __init__(
        self,
        json_decode: Callable[[bytes], Any],
        msgpack_decode: Callable[[bytes], Any],
        checks: dict[type, MessageCheck],
    ) -> None: ...
    def decode(self, raw: object) -> Any | None: ...

class NewUpserts:
    def __init__(
        self,
        routes: dict[type, tuple[DocumentIntake, dict[Any, Any] | None, Any, int]],
        slots: dict[Any, Any],
        order_keys: list[Any],
        deadlines: DeadlineQueue,
        entry: Callable[[int, Any, bytes], Any],
        accepted: Any,
    ) -> None: ...
    def apply(self, matcher: object, message: object, now: float) -> Any | None: ...

def crc32_of(data: bytes, crc: int = 0, *, fold: bool = True) -> int: ...

class LogBuffer:
    def __init__(self) -> None: ...
    def __len__(self) -> int: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...
    def extend(self, record: bytes) -> None: ...
    def input(
        self,
        kind: bytes,
        python_record: Callable[[bytes, float, int | None, bytes], bytes],
        now: float,
        position: int | None,
        raw: bytes,
    ) -> None: ...
    def clear(self) -> None: ...

def frame_all(
    tally: Tally,
    buffer: LogBuffer,
    kind: bytes,
    items: Iterable[Any],
    encode_into: Callable[[Any, bytearray], None],
    python_record: Callable[[bytes, bytes], bytes],
) -> None: ...

class Tally:
    records: int
    taken: int
    moved: bool
    position: Any
    def __init__(self) -> None: ...

class Offers:
    def __init__(
        self,
        decoder: MessageDecoder,
        decode: Callable[[bytes], Any],
        bad_message: type[Exception],
        encode: Callable[[Any], bytes],
        kind: bytes,
        python_record: Callable[[bytes, float, int | None, bytes], bytes],
        accepted: Any,
    ) -> None: ...
    def offer(
        self,
        tally: Tally,
        durable: object,
        matcher: object,
        queue: LogBuffer | None,
        raws: Sequence[Any],
        positions: Sequence[int | None] | None,
        now: float | None,
    ) -> None: ...
    def offer_one(
        self,
        tally: Tally,
        durable: object,
        matcher: object,
        queue: LogBuffer | None,
        raw: Any,
        position: int | None,
        now: float | None,
    ) -> Any: ...

FIELD_OTHER: int
FIELD_TEXT: int
FIELD_KEY: int
FIELD_AMOUNT: int
FIELD_INT: int
FIELD_OP: int
FIELD_ITEMS: int

class DirectPlan:
    def __init__(
        self,
        tag: str,
        cls: type,
        intake: DocumentIntake,
        check: MessageCheck,
        fields: Sequence[tuple[str, str, int, bool, int, int]],
        line_fields: Sequence[tuple[str, str, int, bool, int, int]] | None,
        encode: Callable[[Any], bytes],
        *,
        time_at: int = -1,
    ) -> None: ...

class DirectJson:
    taken: int
    def __init__(self, plans: Sequence[DirectPlan], tag_field: str) -> None: ...
    def take(self, upserts: NewUpserts, matcher: object, raw: object, now: float) -> Any | None: ...
    def read(self, upserts: NewUpserts, raw: bytes) -> bool: ...
    def store(self, upserts: NewUpserts, matcher: object, now: float) -> Any: ...
