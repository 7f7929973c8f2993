"""PhaseTracker: timings per phase (repeats add up) and the optional display."""

from __future__ import annotations

import io
import time

from rich.console import Console

from matchcore.progress import PhaseTracker


def test_phases_are_timed_and_repeats_add_up() -> None:
    tracker = PhaseTracker()
    with tracker.phase("read"):
        time.sleep(0.01)
    with tracker.phase("match"):
        pass
    with tracker.phase("read"):
        time.sleep(0.01)
    assert list(tracker.timings) == ["read", "match"]
    assert tracker.timings["read"] >= 0.02


def test_a_failing_phase_is_still_timed() -> None:
    tracker = PhaseTracker()
    try:
        with tracker.phase("normalise"):
            raise ValueError("bad input")
    except ValueError:
        pass
    assert "normalise" in tracker.timings


def test_display_shows_each_phase_once() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False, width=80)
    with PhaseTracker(display=True, console=console) as tracker:
        for phase in ("read", "normalise", "read"):
            with tracker.phase(phase):
                pass
    text = buffer.getvalue()
    assert text.count("read") == 1
    assert "normalise" in text


def test_no_display_prints_nothing(capsys) -> None:  # type: ignore[no-untyped-def]
    with PhaseTracker() as tracker, tracker.phase("match"):
        pass
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
