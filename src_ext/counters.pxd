# cython: language_level=3
"""The stream's counters added to in C, one copy for every module: matchcore/stream/stats.py
`Counters.add` on the counters' dict (src_ext/intake.pyx: messages accepted; src_ext/flush.pyx:
verdicts emitted)."""


cdef inline int add_count(dict counts, object name, Py_ssize_t amount) except -1:
    """`Counters.add(name, amount)` on the counters' dict `counts` (its `get` called in C)."""
    counts[name] = counts.get(name, 0) + amount
    return 0
