"""Counters of a streaming run and their one-line rendering (SPEC §5 observability).

Counts: accepted, duplicates, stale, dead_lettered, pending, emitted_<verdict>, flushes,
evaluated_orders (by the engine), replayed_orders (annual-limit walks replayed without it),
commits, snapshots, fsyncs. Plain ints, so they snapshot with the state. The ones before
flushes describe the state and are exact across a crash and restart; the others count work
done, which a restart changes (docs/internals.md, "Counters").
"""

from __future__ import annotations


class Counters:
    """Named monotonic counters."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        # A plain dict, not a `collections.Counter`: counting happens for every message, and
        # Python's fast paths for `values[name] += 1` are for exact dicts only.
        self._values: dict[str, int] = {}

    def add(self, name: str, amount: int = 1) -> None:
        """Increase counter `name` by `amount`."""
        try:
            self._values[name] += amount
        except KeyError:
            self._values[name] = amount

    def get(self, name: str) -> int:
        """The value of counter `name` (0 when never increased)."""
        return self._values.get(name, 0)

    def as_dict(self) -> dict[str, int]:
        """All counters, sorted by name."""
        return dict(sorted(self._values.items()))

    @classmethod
    def from_dict(cls, values: dict[str, int]) -> Counters:
        """Counters restored from `as_dict()` output."""
        counters = cls()
        counters._values.update(values)
        return counters


#: Counters shown first in the stats line, in this order.
HEADLINE = ("accepted", "duplicates", "stale", "dead_lettered", "pending")


def stats_line(values: dict[str, int], *, elapsed: float | None = None) -> str:
    """`accepted=.. duplicates=.. ... emitted_pass=..` (plus docs/s when `elapsed` is given)."""
    parts = [f"{name}={values.get(name, 0)}" for name in HEADLINE]
    parts += [f"{name}={value}" for name, value in values.items() if name not in HEADLINE]
    if elapsed:
        parts.append(f"docs_per_s={values.get('accepted', 0) / elapsed:.0f}")
    return "stream: " + " ".join(parts)
