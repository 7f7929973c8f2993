"""Engines: the reference engine (Polars) and the compiled kernel, behind one interface.

`get_engine` picks one by name; "auto" prefers the kernel when its compiled module imports.
Both engine modules are imported lazily so a missing build never breaks `import matchcore`.
"""

from __future__ import annotations

from typing import Literal

from ..exceptions import EngineError
from .base import CanonicalTables, Engine, EngineOutput

EngineName = Literal["auto", "kernel", "reference"]
ENGINE_NAMES: tuple[str, ...] = ("auto", "kernel", "reference")

BUILD_HINT = (
    "build it with `.venv/bin/python setup.py build_ext --inplace` (or `make build`), "
    "or choose engine='reference'"
)


def _load_kernel() -> Engine:
    """Instantiate the compiled kernel engine, or raise EngineError saying why it is missing."""
    try:
        from .kernel import KernelEngine
    except ImportError as exc:
        raise EngineError(f"the compiled kernel is not available ({exc}); {BUILD_HINT}") from None
    try:
        return KernelEngine()
    except ImportError as exc:  # the Python side imports, its compiled module does not
        raise EngineError(f"the compiled kernel is not available ({exc}); {BUILD_HINT}") from None


def _load_reference() -> Engine:
    """Instantiate the reference engine."""
    try:
        from .reference import ReferenceEngine
    except ImportError as exc:
        raise EngineError(f"the reference engine is not available ({exc})") from None
    return ReferenceEngine()


def kernel_available() -> bool:
    """True when the compiled kernel imports and can be used."""
    try:
        _load_kernel()
    except EngineError:
        return False
    return True


def get_engine(name: str = "auto") -> Engine:
    """The engine called `name`: "kernel", "reference", or "auto" (kernel if built, else reference).

    Raises EngineError for an unknown name, or for "kernel" when it was not built.
    """
    choice = name.strip().lower()
    if choice == "kernel":
        return _load_kernel()
    if choice == "reference":
        return _load_reference()
    if choice == "auto":
        try:
            return _load_kernel()
        except EngineError:
            return _load_reference()
    raise EngineError(f"unknown engine {name!r}; choose one of {', '.join(ENGINE_NAMES)}")


def engine_name(engine: Engine) -> str:
    """The name an engine reports ("kernel", "reference"), falling back to its class name."""
    return str(getattr(engine, "name", type(engine).__name__))


__all__ = [
    "ENGINE_NAMES",
    "CanonicalTables",
    "Engine",
    "EngineName",
    "EngineOutput",
    "engine_name",
    "get_engine",
    "kernel_available",
]
