"""Type stubs of the compiled flush glue (src_ext/flush.pyx)."""

from collections.abc import Callable
from typing import Any

class Field:
    def __init__(self, kind: type | None, name: str) -> None: ...

class Walks:
    @property
    def groups(self) -> list[tuple[Any, Any]]: ...
    def __init__(
        self,
        buyers: list[Any],
        years: list[Any],
        times: list[Any],
        starts: dict[Any, int],
        ledger: dict[Any, int],
    ) -> None: ...

class FlushGlue:
    def __init__(
        self,
        docs: dict[str, dict[Any, Any]],
        slots: dict[Any, Any],
        buyer_members: dict[Any, Any],
        linked_type: Callable[..., Any],
        settle: Callable[[Any, bool], None],
        place_of: Callable[..., int],
        replay: Callable[..., Any],
        place_bits: int,
        verdicts: dict[int, tuple[str, list[str]]],
        verdict_of: Callable[[int], tuple[str, list[str]]],
        event: Callable[..., Any],
        replayed_event: Callable[[Any, int], Any],
        emitted: dict[str, str],
        fraction_text: Callable[[int, int], str],
        scale: int,
        *,
        int64_end: int,
        entry_type: type | None = None,
        place_args: tuple[Any, Any] = (None, None),
    ) -> None: ...
    def decide_all(
        self,
        keys: list[Any],
        linked: dict[Any, Any],
        changed: dict[str, list[Any]],
        waiting_count: bool,
        inventory_rules: bool,
    ) -> None: ...
    def linked(self, key: Any, inventory_rules: bool) -> Any: ...
    def linked_all(
        self, keys: list[Any], known: dict[Any, Any], inventory_rules: bool
    ) -> dict[Any, Any]: ...
    def gather(
        self, linked: dict[Any, Any]
    ) -> tuple[
        tuple[list[bytes], list[Any]],
        tuple[list[bytes], list[Any]],
        tuple[list[bytes], list[Any]],
        tuple[list[bytes], list[Any]],
    ]: ...
    def sorted_keys(self, keys: set[Any]) -> list[Any]: ...
    def ledger_columns(self, walks: Walks) -> tuple[list[str], list[int], list[int]]: ...
    def walks(
        self,
        keys: list[Any],
        buyers: list[Any],
        years: list[Any],
        times: list[Any],
        starts: dict[Any, int],
        ledger: dict[Any, int],
    ) -> Walks: ...
    def walk_years(self, buyer: str) -> dict[int, list[Any]]: ...
    def walked_again_all(
        self,
        changed: dict[str, list[Any]],
        walked_whole: set[str],
        starts: dict[Any, int],
        replays: list[Any],
        again: set[Any],
        inventory_rules: bool,
    ) -> None: ...
    def walked_again(
        self,
        buyer: str,
        changed: list[Any],
        starts: dict[Any, int],
        replays: list[Any],
        again: set[Any],
        inventory_rules: bool,
    ) -> None: ...
    def replay_all(
        self,
        replays: list[Any],
        replayed: dict[Any, int],
        whole: list[Any],
        limit: int,
        skip: int,
        annual: int,
        keep: int,
    ) -> int: ...
    def remember_walks(
        self,
        keys: list[Any],
        walks: Walks,
        spent_before: list[Any],
        masks: list[Any],
        values: list[Any],
        limit: int,
        skip: int,
    ) -> None: ...
    def emit_all(
        self,
        matcher: Any,
        keys: list[Any],
        linked: dict[Any, Any],
        evaluated: list[Any],
        events: list[Any],
        replayed: dict[Any, int],
        known: dict[Any, Any],
        direct: dict[Any, None],
        inventory_rules: bool,
    ) -> None: ...
    def events_of(
        self,
        keys: list[Any],
        masks: list[Any],
        payments: list[Any],
        waybills: list[Any],
        taxes: list[Any],
        limits: list[Any],
        pay_ids: list[Any],
        logistics_nos: list[Any],
    ) -> list[Any]: ...

def kernel_values(values: Any, null: int) -> list[Any]: ...
def verdict_id(key: Any, version: int) -> str: ...
