# cython: language_level=3
"""Writing MessagePack in C, in the forms msgspec writes (its encoder is the reference: a log
record, a packed row or a snapshot written here is byte for byte what msgspec gives), and the
growable arrays the writers keep it in."""

from libc.stdint cimport uint64_t
from libc.stdlib cimport realloc
from libc.string cimport memcpy


cdef inline Py_ssize_t put_big(unsigned char* out, uint64_t value, int size) noexcept:
    """`value` as `size` bytes, big-endian (MessagePack's and the log header's order)."""
    cdef int i
    for i in range(size):
        out[i] = (value >> (8 * (size - 1 - i))) & 0xFF
    return size


cdef inline Py_ssize_t put_tagged(
    unsigned char* out, unsigned char tag, uint64_t value, int size
) noexcept:
    """A MessagePack tag and `value` as the `size` bytes after it."""
    out[0] = tag
    return 1 + put_big(out + 1, value, size)


cdef inline Py_ssize_t put_int(unsigned char* out, long long x) noexcept:
    """An integer as msgspec packs it: the smallest MessagePack form."""
    if x >= 0:
        if x < 128:
            out[0] = <unsigned char>x
            return 1
        if x < (1 << 8):
            return put_tagged(out, 0xCC, x, 1)
        if x < (1 << 16):
            return put_tagged(out, 0xCD, x, 2)
        if x < (1LL << 32):
            return put_tagged(out, 0xCE, x, 4)
        return put_tagged(out, 0xCF, x, 8)
    if x >= -32:
        out[0] = <unsigned char>(x & 0xFF)
        return 1
    if x >= -(1 << 7):
        return put_tagged(out, 0xD0, <uint64_t>x, 1)
    if x >= -(1 << 15):
        return put_tagged(out, 0xD1, <uint64_t>x, 2)
    if x >= -(1LL << 31):
        return put_tagged(out, 0xD2, <uint64_t>x, 4)
    return put_tagged(out, 0xD3, <uint64_t>x, 8)


cdef inline Py_ssize_t put_float(unsigned char* out, double value) noexcept:
    """A float as msgspec packs it: always a float64."""
    cdef uint64_t bits
    memcpy(&bits, &value, 8)
    return put_tagged(out, 0xCB, bits, 8)


cdef inline Py_ssize_t put_bin_head(unsigned char* out, Py_ssize_t size) noexcept:
    """The head of MessagePack binary data of `size` bytes (msgspec's form for bytes)."""
    if size < (1 << 8):
        return put_tagged(out, 0xC4, size, 1)
    if size < (1 << 16):
        return put_tagged(out, 0xC5, size, 2)
    return put_tagged(out, 0xC6, size, 4)


cdef inline Py_ssize_t put_head(
    unsigned char* out, Py_ssize_t count, unsigned char fixed, int fixed_max,
    unsigned char wide
) noexcept:
    """The head of a MessagePack str, array or map of `count` bytes or items: `fixed | count`
    below `fixed_max`, else `wide` (str 16, array 16, map 16) with 2 bytes, `wide + 1` with 4
    (a str of under 256 bytes has its own form: `put_str_head`)."""
    if count < fixed_max:
        out[0] = fixed | <unsigned char>count
        return 1
    if count < (1 << 16):
        return put_tagged(out, wide, count, 2)
    return put_tagged(out, wide + 1, count, 4)


cdef inline Py_ssize_t put_str_head(unsigned char* out, Py_ssize_t size) noexcept:
    """The head of a MessagePack str of `size` bytes of UTF-8."""
    if 32 <= size < (1 << 8):
        out[0] = 0xD9
        out[1] = <unsigned char>size
        return 2
    return put_head(out, size, 0xA0, 32, 0xDA)


cdef inline Py_ssize_t put_array_head(unsigned char* out, Py_ssize_t count) noexcept:
    return put_head(out, count, 0x90, 16, 0xDC)


cdef inline Py_ssize_t put_map_head(unsigned char* out, Py_ssize_t count) noexcept:
    return put_head(out, count, 0x80, 16, 0xDE)


cdef inline int grow(
    void** data, Py_ssize_t* capacity, Py_ssize_t count, size_t size, Py_ssize_t least
) except -1:
    """Room for `count` items of `size` bytes in the array at `data[0]` of `capacity[0]` items:
    it is reallocated to at least twice its capacity (and `least`) when too small."""
    cdef void* grown
    if count <= capacity[0]:
        return 0
    count = max(count, 2 * capacity[0], least)
    grown = realloc(data[0], count * size)
    if grown == NULL:
        raise MemoryError()
    data[0], capacity[0] = grown, count
    return 0
