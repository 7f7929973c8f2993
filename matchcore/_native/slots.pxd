# cython: language_level=3
"""The stream matcher's order slot as a C type (src_ext/slots.pyx), declared here, in the
package, so that src_ext/flush.pyx and src_ext/intake.pyx `cimport matchcore._native.slots`
and read and write its fields in C."""

cimport cython
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t


cdef extern from "Python.h":
    long long PyLong_AsLongLongAndOverflow(object value, int* overflow) except? -1
    object _PyLong_FromByteArray(const unsigned char* data, size_t size, int little, int signed)
    ctypedef struct PyLongObject
    int _PyLong_AsByteArray(
        PyLongObject* value, unsigned char* data, size_t size, int little, int signed
    )
    bint PyLong_Check(object value)
    void PyErr_Clear()


cdef enum:
    # `Slot.flags`: the two states of the order, and which of the int fields hold a value.
    EVALUATED = 1
    EXPIRED = 2
    SPENT_KNOWN = 4
    WALK_LIMIT_KNOWN = 8
    PLACE_KNOWN = 16
    # A place: `place_high` (signed) above the 64 bits of `place_low`, little-endian.
    PLACE_BYTES = 12


@cython.final
@cython.no_gc
cdef class Slot:
    # In this order: 128 bytes, no padding (no GC header; no vtable: no cdef methods).
    cdef public double first_seen
    cdef public int64_t version
    cdef int64_t spent  # `spent_after` when SPENT_KNOWN
    cdef int64_t limit  # `walk_limit` when WALK_LIMIT_KNOWN
    cdef uint64_t place_low  # `place` when PLACE_KNOWN (see PLACE_BYTES)
    cdef int32_t place_high
    cdef uint32_t flags
    cdef public object key
    cdef public object last
    cdef public object buyer
    # The order document's version (matcher.py `_SlotStruct`): its revision (None: no version),
    # link and packed rows (None: cancelled).
    cdef public object order_revision
    cdef public object order_link
    cdef public bytes order_rows
    cdef public object payments  # the links to the order (see `_SlotStruct.payments`)
    cdef public object waybills


cdef inline Slot new_slot(double first_seen, object key):
    """`Slot(first_seen, key)` without a call of `__init__` (tp_new sets the rest to 0/None)."""
    cdef Slot slot = Slot.__new__(Slot)
    slot.first_seen, slot.key = first_seen, key
    return slot


cdef inline void set_flag(Slot slot, uint32_t flag, bint on) noexcept:
    slot.flags = (slot.flags | flag) if on else (slot.flags & ~flag)


cdef inline object spent_after(Slot slot):
    """`slot.spent_after` (None: not known)."""
    return slot.spent if slot.flags & SPENT_KNOWN else None


cdef inline int set_spent_after(Slot slot, object value) except -1:
    """`slot.spent_after = value`."""
    set_flag(slot, SPENT_KNOWN, int64_of(value, &slot.spent))
    return 0


cdef inline int set_walk_limit(Slot slot, object value) except -1:
    """`slot.walk_limit = value`."""
    set_flag(slot, WALK_LIMIT_KNOWN, int64_of(value, &slot.limit))
    return 0


cdef inline bint int64_of(object value, int64_t* out) except -1:
    """True with `value` in `out` when it is an int within int64; False for None and an int
    past int64, which a slot keeps as unknown (see src_ext/slots.pyx)."""
    cdef int overflow
    if value is None:
        return False
    out[0] = PyLong_AsLongLongAndOverflow(value, &overflow)
    return overflow == 0


cdef inline bint set_place(Slot slot, object value) except -1:
    """`slot.place = value`: True when it is kept, False when not known (None, or an int past
    `PLACE_BYTES`)."""
    cdef unsigned char data[PLACE_BYTES]
    cdef int i
    cdef bint known = value is not None
    if known and not PyLong_Check(value):
        raise TypeError(f"a slot keeps an int or None, not {type(value).__name__}")
    if known and _PyLong_AsByteArray(<PyLongObject*>value, data, PLACE_BYTES, 1, 1) < 0:
        PyErr_Clear()  # (an OverflowError)
        known = False
    if known:
        slot.place_low, slot.place_high = 0, <int32_t>(<uint32_t>data[11] << 24)
        for i in range(8):
            slot.place_low |= <uint64_t>data[i] << (8 * i)
        for i in range(8, 11):
            slot.place_high |= <int32_t>data[i] << (8 * (i - 8))
    set_flag(slot, PLACE_KNOWN, known)
    return known


cdef inline void set_time_place(Slot slot, int32_t year, int64_t app_time) noexcept:
    """`slot.place = _walk_place(year, app_time)` (matcher.py) of an app time and its year, in
    C: no 96-bit int made and read back."""
    slot.place_high, slot.place_low = year, <uint64_t>app_time ^ (<uint64_t>1 << 63)
    slot.flags |= PLACE_KNOWN


cdef inline object place_of(Slot slot):
    """`slot.place` (None: not known)."""
    cdef unsigned char data[PLACE_BYTES]
    cdef int i
    if not slot.flags & PLACE_KNOWN:
        return None
    for i in range(8):
        data[i] = (slot.place_low >> (8 * i)) & 0xFF
    for i in range(8, PLACE_BYTES):
        data[i] = (<uint32_t>slot.place_high >> (8 * (i - 8))) & 0xFF
    return _PyLong_FromByteArray(data, PLACE_BYTES, 1, 1)


cdef class DeadlineQueue:
    # matcher.py `_DeadlineQueue`'s fields, as its subclass `_Deadlines` reads them
    cdef public double _window, _newest
    cdef public object _chunks, _untracked
    cdef public list _tail, _late
    cdef Py_ssize_t chunk  # `CHUNK` of the queue's type, read once
    cdef int push(self, object key, double first_seen) except -1
