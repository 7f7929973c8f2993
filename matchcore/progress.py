"""Phase timing and the optional progress display of a run (read, normalise, match, render, write).

`PhaseTracker` always measures; when asked to display, it shows a rich spinner per phase on
stderr, so stdout stays clean for `--json` and pipes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: The phases of a run, in the order they happen.
PHASES: tuple[str, ...] = ("read", "normalise", "match", "render", "write")


class PhaseTracker:
    """Measures wall-clock seconds per phase; optionally shows progress on stderr."""

    def __init__(self, *, display: bool = False, console: Any = None) -> None:
        self.timings: dict[str, float] = {}
        self._display = display
        self._console = console
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}  # phase -> display row, so a repeated phase reuses it

    def _ensure_display(self) -> Any:
        """Start the rich progress display on first use (rich is imported only when shown)."""
        if self._progress is None:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            console = self._console or Console(stderr=True)
            self._progress = Progress(
                SpinnerColumn(finished_text="[green]✓"),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            )
            self._progress.start()
        return self._progress

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block as phase `name` (times of a repeated phase add up)."""
        task = self._show_started(name) if self._display else None
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start
            if task is not None:
                self._progress.update(task, completed=1)

    def _show_started(self, name: str) -> Any:
        """The display row of phase `name`, added on first use and marked running again."""
        progress = self._ensure_display()
        if name not in self._tasks:
            self._tasks[name] = progress.add_task(name, total=1)
        else:
            progress.reset(self._tasks[name], total=1)
        return self._tasks[name]

    def close(self) -> None:
        """Stop the display, if one is shown (safe to call more than once)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> PhaseTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
