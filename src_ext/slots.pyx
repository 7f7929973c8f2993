# cython: language_level=3
"""The stream matcher's order slot (matchcore/stream/matcher.py `_SlotStruct`, the reference, kept
when this is not built) as a C type: its numbers in C fields, not Python objects (a float of
24 bytes for `first_seen`, an int of 28-36 for each of `spent_after`, `walk_limit`, `place`).
And the queue of the slots' deadlines (`_DeadlineQueue`), which the compiled intake adds to in C.
Declared in matchcore/_native/slots.pxd; tests/stream/test_stream_slots.py compares the two."""

cimport cython
from libc.math cimport INFINITY
from matchcore._native.slots cimport (
    EVALUATED, EXPIRED, PLACE_KNOWN, SPENT_KNOWN, WALK_LIMIT_KNOWN, Slot, int64_of, place_of,
    set_flag, set_place, set_spent_after, set_walk_limit, spent_after,
)

from collections import deque
from heapq import heappush

#: The fields in `_SlotStruct`'s order (the arguments of `Slot`).
FIELDS = (
    "first_seen", "key", "version", "last", "evaluated", "expired", "buyer", "spent_after",
    "walk_limit", "place", "order_revision", "order_link", "order_rows", "payments", "waybills",
)


@cython.final
@cython.no_gc
cdef class Slot:
    """What the matcher remembers per order key between documents: the fields of `_SlotStruct`,
    read and written as its are, with None for an int not known.

    An int that does not fit its C field (past int64; a place past 96 bits) is kept as not
    known, None: safe, as None is what each of them is until it is known, and the matcher
    reads None as "work it out again": an unknown `spent_after` or `walk_limit` only makes
    the next walk of the order's buyer longer (from its year's first order, or through the
    engine: `_walked_again`, `_replayable`), an unknown `place` is read again from the order
    document (`_place`). The values the matcher keeps fit: spents and limits are the engine's
    int64 sums (anything past int64 is left unknown already), a place is a year above 64 bits.

    Not tracked by the garbage collector (like `_SlotStruct`, gc=False): what a slot refers to
    (its key, a tuple of texts; its last VerdictEvent, of texts and ints; its buyer, a text;
    its order document's revision, link and rows: an int, a text, bytes; its payments' and
    waybills' keys, tuples of texts in a tuple or set) never refers to a slot, so no
    reference cycle goes through one.
    """

    def __init__(
        self, double first_seen, key, int64_t version=0, last=None, evaluated=False,
        expired=False, buyer=None, spent_after=None, walk_limit=None, place=None,
        order_revision=None, order_link=None, bytes order_rows=None, payments=None, waybills=None,
    ):
        self.first_seen, self.key, self.version, self.last = first_seen, key, version, last
        self.buyer = buyer
        self.order_revision, self.order_link = order_revision, order_link
        self.order_rows, self.payments, self.waybills = order_rows, payments, waybills
        set_flag(self, EVALUATED, evaluated)
        set_flag(self, EXPIRED, expired)
        set_spent_after(self, spent_after)
        set_walk_limit(self, walk_limit)
        set_place(self, place)

    @property
    def evaluated(self):
        """Went through the engine at least once (and not cancelled since)."""
        return self.flags & EVALUATED != 0

    @evaluated.setter
    def evaluated(self, value):
        set_flag(self, EVALUATED, value)

    @property
    def expired(self):
        """The completion window passed while incomplete."""
        return self.flags & EXPIRED != 0

    @expired.setter
    def expired(self, value):
        set_flag(self, EXPIRED, value)

    @property
    def spent_after(self):
        """See `_SlotStruct.spent_after`."""
        return spent_after(self)

    @spent_after.setter
    def spent_after(self, value):
        set_spent_after(self, value)

    @property
    def walk_limit(self):
        """See `_SlotStruct.walk_limit`."""
        return self.limit if self.flags & WALK_LIMIT_KNOWN else None

    @walk_limit.setter
    def walk_limit(self, value):
        set_walk_limit(self, value)

    @property
    def place(self):
        """See `_SlotStruct.place`."""
        return place_of(self)

    @place.setter
    def place(self, value):
        set_place(self, value)

    def __eq__(self, other):
        """Equal to a slot with the same fields (as Structs compare)."""
        if type(other) is not Slot:
            return NotImplemented
        return values(self) == values(other)

    def __repr__(self):
        fields = ", ".join(f"{name}={value!r}" for name, value in zip(FIELDS, values(self)))
        return f"Slot({fields})"


cdef tuple values(Slot slot):
    """The slot's fields, in `FIELDS` order."""
    return tuple([getattr(slot, name) for name in FIELDS])


cdef class DeadlineQueue:
    """matcher.py `_DeadlineQueue` (the reference) in C, the base of `_Deadlines`: `push` is its
    `add` without a Python call, ~1,300 instructions a new order through the bound method."""

    def __init__(self, double window, untracked):
        self._window, self._newest = window, -INFINITY
        self._chunks, self._tail, self._late = deque(), [], []
        self._untracked = untracked
        self.chunk = self.CHUNK

    def add(self, key, double first_seen):
        """The slot of `key`, first seen at `first_seen`, is due a window later."""
        self.push(key, first_seen)

    cdef int push(self, object key, double first_seen) except -1:
        """`add`, for C callers."""
        if first_seen >= self._newest:
            self._tail.append(key)
            if len(self._tail) == self.chunk:
                self._chunks.append(self._untracked(tuple(self._tail)))
                self._tail = []
            self._newest = first_seen
        else:
            heappush(self._late, (first_seen + self._window, key))
        return 0
