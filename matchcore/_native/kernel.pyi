"""Type stubs of the compiled kernel (src_ext/kernel.pyx)."""

from typing import Any

import numpy as np

COLUMNS: tuple[tuple[str, str], ...]
SEQUENTIAL: frozenset[tuple[str, str]]

class ArrowLayoutError(TypeError): ...

class ArrowColumn:
    format: str
    def __init__(self, source: Any = None, huge: bool = True) -> None: ...
    def __len__(self) -> int: ...
    @property
    def n_chunks(self) -> int: ...
    def to_pylist(self) -> list[Any]: ...

class PreparedReferences:
    builds: int
    def __init__(self) -> None: ...
    @property
    def built(self) -> bool: ...

def run(
    columns: list[ArrowColumn],
    sizes: dict[str, int],
    params: dict[str, Any],
    threads: int = 2,
    references: PreparedReferences | None = None,
) -> dict[str, Any]: ...
def import_table(
    source: Any, names: list[str], huge_names: frozenset[str] = ...
) -> dict[str, ArrowColumn]: ...
def hash_bytes_test(data: bytes, seed: int = 0) -> int: ...
def hash_table_test(
    build: ArrowColumn,
    probe: ArrowColumn,
    hash_mask: int = ...,
    part_bits: int = 0,
    threads: int = 1,
    copy_keys: bool = False,
    pipelined: bool = False,
) -> tuple[np.ndarray, np.ndarray]: ...
def key_hashes_test(first: ArrowColumn, second: ArrowColumn | None = None) -> np.ndarray: ...
