# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Packed canonical rows -> Arrow columns, in C.

The streaming matcher keeps each document's canonical row(s) as MessagePack (matcher.py,
`_Packer`): an array of values, each nil, an integer or UTF-8 text; an order is the array
[row, [line, ...]]. Decoding those into Python tuples made a Python object per value, which
Arrow then converted back one by one; here the values go straight from the bytes into Arrow
buffers. `walk_places` reads the two values of an order that place it in its annual-limit walk
without decoding the rest. matcher.py keeps the pure-Python path (msgspec, then
`RowMaker.frame`) for when this is not built; tests/stream/test_stream_compact_state.py checks
that both give the table built column by column.
"""

from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, realloc
from libc.string cimport memcpy, memset
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE

import pyarrow as pa

cdef int64_t INT32_MIN = -2147483648
cdef int64_t INT32_MAX = 2147483647
cdef uint64_t INT64_MAX = 9223372036854775807


# --- reading MessagePack -----------------------------------------------------------------------

cdef struct Reader:
    const uint8_t* at
    const uint8_t* end


cdef inline Reader reader_of(bytes packed):
    cdef Reader r
    r.at = <const uint8_t*>PyBytes_AS_STRING(packed)
    r.end = r.at + PyBytes_GET_SIZE(packed)
    return r


cdef inline int need(Reader* r, Py_ssize_t n) except -1:
    if r.end - r.at < n:
        raise ValueError("packed row ends early")
    return 0


cdef inline uint64_t big_endian(Reader* r, int n) except? 0xFFFFFFFFFFFFFFFF:
    """The next `n` bytes as an unsigned big-endian number."""
    cdef uint64_t value = 0
    cdef int i
    need(r, n)
    for i in range(n):
        value = (value << 8) | r.at[i]
    r.at += n
    return value


cdef inline uint8_t next_byte(Reader* r) except? 0xFF:
    cdef uint8_t first
    need(r, 1)
    first = r.at[0]
    r.at += 1
    return first


cdef Py_ssize_t array_length(Reader* r) except -1:
    """The item count of the array that starts here."""
    cdef uint8_t first = next_byte(r)
    if 0x90 <= first <= 0x9F:
        return first & 0x0F
    if first == 0xDC:
        return <Py_ssize_t>big_endian(r, 2)
    if first == 0xDD:
        return <Py_ssize_t>big_endian(r, 4)
    raise ValueError("packed row: an array was expected")


cdef inline Py_ssize_t text_length(uint8_t first, Reader* r) except -2:
    """The byte length of the text whose first byte is `first`; -1 when it is not text."""
    if 0xA0 <= first <= 0xBF:
        return first & 0x1F
    if first == 0xD9:
        return <Py_ssize_t>big_endian(r, 1)
    if first == 0xDA:
        return <Py_ssize_t>big_endian(r, 2)
    if first == 0xDB:
        return <Py_ssize_t>big_endian(r, 4)
    return -1


cdef inline bint integer(uint8_t first, Reader* r, int64_t* value) except -1:
    """Read the integer whose first byte is `first` into `value`; False when it is not one."""
    cdef uint64_t unsigned
    if first <= 0x7F or first >= 0xE0:  # positive and negative fixint
        value[0] = <int64_t>(<signed char>first)
    elif 0xCC <= first <= 0xCF:  # uint 8, 16, 32, 64
        unsigned = big_endian(r, 1 << (first - 0xCC))
        if unsigned > INT64_MAX:
            raise ValueError("packed row: an integer beyond int64")
        value[0] = <int64_t>unsigned
    elif 0xD0 <= first <= 0xD3:  # int 8, 16, 32, 64: sign-extended from their width
        unsigned = big_endian(r, 1 << (first - 0xD0))
        if first == 0xD0:
            value[0] = <signed char>unsigned
        elif first == 0xD1:
            value[0] = <short>unsigned
        elif first == 0xD2:
            value[0] = <int>unsigned
        else:
            value[0] = <int64_t>unsigned
    else:
        return False
    return True


cdef int skip(Reader* r) except -1:
    """Step over the value that starts here (only the kinds canonical rows hold)."""
    cdef int64_t ignored
    cdef Py_ssize_t length
    cdef uint8_t first = next_byte(r)
    if first == 0xC0 or integer(first, r, &ignored):
        return 0
    length = text_length(first, r)
    if length < 0:
        raise ValueError("packed row: a value that is not nil, an integer or text")
    need(r, length)
    r.at += length
    return 0


# --- building Arrow columns ----------------------------------------------------------------------

cdef struct Buffer:  # grows as values are appended
    char* data
    Py_ssize_t size
    Py_ssize_t capacity


cdef int reserve(Buffer* b, Py_ssize_t more) except -1:
    cdef Py_ssize_t wanted = b.size + more, capacity
    cdef char* grown
    if wanted <= b.capacity:
        return 0
    capacity = max(wanted, 2 * b.capacity, 256)
    grown = <char*>realloc(b.data, capacity)
    if grown == NULL:
        raise MemoryError()
    b.data, b.capacity = grown, capacity
    return 0


cdef inline int append(Buffer* b, const void* data, Py_ssize_t size) except -1:
    if size == 0:
        return 0  # (an empty buffer has no memory to copy to)
    reserve(b, size)
    memcpy(b.data + b.size, data, size)
    b.size += size
    return 0


cdef inline object as_buffer(Buffer* b):
    return pa.py_buffer(PyBytes_FromStringAndSize(b.data, b.size))


cdef class Column:
    """One Arrow column being built: text (`string`) or integers of 4 or 8 bytes (int32,
    int64, timestamp), with a validity byte per value until `array()` packs them as bits."""

    cdef object type
    cdef int width  # bytes per integer value; 0 for text
    cdef Buffer values  # integers, or for text its int32 offsets
    cdef Buffer text
    cdef Buffer valid
    cdef Py_ssize_t length, nulls

    def __cinit__(self, type):
        cdef int zero = 0
        self.type = type
        self.width = 0 if pa.types.is_string(type) else type.bit_width // 8
        if self.width == 0:
            append(&self.values, &zero, 4)  # offsets start at 0
        elif self.width not in (4, 8):
            raise ValueError(f"no packed column of type {type}")

    def __dealloc__(self):
        free(self.values.data)
        free(self.text.data)
        free(self.valid.data)

    cdef int read(self, Reader* r) except -1:
        """Append the value that starts here."""
        cdef uint8_t first = next_byte(r)
        cdef uint8_t is_valid = first != 0xC0
        cdef int64_t number = 0
        cdef int small
        cdef Py_ssize_t length
        if self.width == 0:
            length = text_length(first, r) if is_valid else 0
            if length < 0:
                raise ValueError(f"packed row: text expected for a {self.type} column")
            need(r, length)
            if self.text.size + length > INT32_MAX:
                raise ValueError("packed rows: more text than a string column holds")
            append(&self.text, r.at, length)
            r.at += length
            small = <int>self.text.size
            append(&self.values, &small, 4)
        else:
            if is_valid and not integer(first, r, &number):
                raise ValueError(f"packed row: an integer expected for a {self.type} column")
            if self.width == 8:
                append(&self.values, &number, 8)
            elif INT32_MIN <= number <= INT32_MAX:
                small = <int>number
                append(&self.values, &small, 4)
            else:
                raise ValueError(f"packed row: {number} does not fit a {self.type} column")
        append(&self.valid, &is_valid, 1)
        self.nulls += not is_valid
        self.length += 1
        return 0

    cdef object validity(self):
        """The validity bitmap (bit i set: value i is not null), None when none is null."""
        cdef Py_ssize_t i
        cdef bytes bits
        cdef uint8_t* out
        if self.nulls == 0:
            return None
        bits = PyBytes_FromStringAndSize(NULL, (self.length + 7) // 8)
        out = <uint8_t*>PyBytes_AS_STRING(bits)
        memset(out, 0, PyBytes_GET_SIZE(bits))
        for i in range(self.length):
            if self.valid.data[i]:
                out[i >> 3] |= 1 << (i & 7)
        return pa.py_buffer(bits)

    cdef object array(self):
        buffers = [self.validity(), as_buffer(&self.values)]
        if self.width == 0:
            buffers.append(as_buffer(&self.text))
        return pa.Array.from_buffers(self.type, self.length, buffers, null_count=self.nulls)


cdef int read_row(Reader* r, list columns, Py_ssize_t first) except -1:
    """Append one packed row (an array of values) to `columns[first:]`."""
    cdef Py_ssize_t i, count = len(columns)
    if array_length(r) != count - first:
        raise ValueError("packed row: not as many values as the table has columns")
    for i in range(first, count):
        (<Column>columns[i]).read(r)
    return 0


def columns(list packed, list types):
    """Packed rows (each the MessagePack array of one canonical row) -> an Arrow array per
    column, of the `types` given."""
    cdef list built = [Column(kind) for kind in types]
    cdef Reader r
    for rows in packed:
        r = reader_of(rows)
        read_row(&r, built, 0)
    return [(<Column>column).array() for column in built]


def order_columns(list packed, list types, list line_types):
    """Packed orders ([row, [line, ...]], a line without the order key) -> (the orders' Arrow
    arrays, the lines' arrays). `line_types` are the line table's, whose first two columns,
    the order key, are the order row's first two values, repeated for each line."""
    cdef list orders = [Column(kind) for kind in types]
    cdef list lines = [Column(kind) for kind in line_types]
    cdef Reader r, key, line_key
    for rows in packed:
        r = reader_of(rows)
        if array_length(&r) != 2:
            raise ValueError("packed order: not a row and its lines")
        key = r
        array_length(&key)  # now at the row's first two values, the order key
        read_row(&r, orders, 0)
        for _ in range(array_length(&r)):
            line_key = key
            (<Column>lines[0]).read(&line_key)
            (<Column>lines[1]).read(&line_key)
            read_row(&r, lines, 2)
    return [(<Column>c).array() for c in orders], [(<Column>c).array() for c in lines]


def walk_places(list packed, Py_ssize_t time_at, Py_ssize_t year_at):
    """(app year, app time) of each packed order: the integers at `year_at` and `time_at`
    (time_at < year_at) of its row, read without decoding the rest."""
    cdef list places = []
    cdef Reader r
    cdef Py_ssize_t i
    cdef int64_t year, time
    for rows in packed:
        r = reader_of(rows)
        if array_length(&r) != 2 or array_length(&r) <= year_at:
            raise ValueError("packed order: not a row and its lines")
        for i in range(time_at):
            skip(&r)
        if not integer(next_byte(&r), &r, &time):
            raise ValueError("packed order: its app time is not an integer")
        for i in range(time_at + 1, year_at):
            skip(&r)
        if not integer(next_byte(&r), &r, &year):
            raise ValueError("packed order: its app year is not an integer")
        places.append((year, time))
    return places
