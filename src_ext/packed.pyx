# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Packed canonical rows -> Arrow columns, in C.

The streaming matcher keeps each document's canonical row(s) as MessagePack (matcher.py,
`_Packer`): an array of values, each nil, an integer or UTF-8 text; an order is the array
[row, [line, ...]]. A row leaves out the document's own key and what it links by (an order
its buyer's ID number, a payment or waybill its order's key, an inventory its waybill's): the
matcher holds those as the document's dict key and link, which come in beside the rows. Decoding
those into Python tuples made a Python object per value, which Arrow then converted back one
by one; here the values go straight from the bytes into Arrow buffers, and a table's buffers
to pyarrow in one call (the C data interface: an array per column has a fixed cost that
dominates a micro-batch of a few rows). An order's dates are not held either: they are made
here from its app time. `walk_place` makes the value that places an order in its annual-limit
walk from its app time, without decoding the rest. matcher.py keeps the
pure-Python path (msgspec, then `RowMaker.frame`) for when this is not built;
tests/stream/test_stream_compact_state.py checks that both give the table built column by
column.
"""

from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memset

from arrow_access cimport ArrowArray
from china_dates cimport fixed_china_dates

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_AsUTF8AndSize

import pyarrow as pa


cdef extern from "Python.h":
    object _PyLong_FromByteArray(const unsigned char* data, size_t n, int little, int signed)


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


cdef class Column:
    """One Arrow column being built: text (`string`) or integers of 4 or 8 bytes (int32,
    int64, timestamp), with a validity byte per value until `export` packs them as bits."""

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

    cdef int append_text(self, str value) except -1:
        """Append a key or link part (text; None: null)."""
        cdef Py_ssize_t length
        cdef const char* utf8
        cdef int offset
        cdef uint8_t is_valid = 1
        if self.width != 0:
            raise ValueError(f"a key or link part is text, not a {self.type} value")
        if value is None:
            return self.append_nulls(1)
        utf8 = PyUnicode_AsUTF8AndSize(value, &length)
        if self.text.size + length > INT32_MAX:
            raise ValueError("packed rows: more text than a string column holds")
        append(&self.text, utf8, length)
        offset = <int>self.text.size
        append(&self.values, &offset, 4)
        append(&self.valid, &is_valid, 1)
        self.length += 1
        return 0

    cdef int append_integer(self, object value) except -1:
        """Append a Python integer (None: null) to an integer column."""
        cdef int64_t number = value if value is not None else 0
        cdef uint8_t is_valid = value is not None
        cdef int small
        if self.width == 8:
            append(&self.values, &number, 8)
        elif self.width == 4 and INT32_MIN <= number <= INT32_MAX:
            small = <int>number
            append(&self.values, &small, 4)
        else:
            raise ValueError(f"{number} does not fit a {self.type} column")
        append(&self.valid, &is_valid, 1)
        self.nulls += not is_valid
        self.length += 1
        return 0

    cdef object integer_at(self, Py_ssize_t i):
        """Value `i` of an int64 column (None: null)."""
        if self.width != 8:
            raise ValueError(f"not an int64 column: {self.type}")
        if not self.valid.data[i]:
            return None
        return (<int64_t*>self.values.data)[i]

    cdef int append_nulls(self, Py_ssize_t count) except -1:
        """Append `count` nulls (a column the packed rows do not hold)."""
        cdef Py_ssize_t size = 4 if self.width == 0 else self.width
        cdef int offset = <int>self.text.size
        cdef Py_ssize_t i
        if count == 0:
            return 0
        reserve(&self.values, count * size)
        if self.width == 0:
            for i in range(count):
                append(&self.values, &offset, 4)
        else:
            memset(self.values.data + self.values.size, 0, count * size)
            self.values.size += count * size
        reserve(&self.valid, count)
        memset(self.valid.data + self.valid.size, 0, count)
        self.valid.size += count
        self.nulls += count
        self.length += count
        return 0

    cdef int export(self, ArrowArray* out) except -1:
        """Hand the values over as an Arrow C array (`out`, which owns them from now on)."""
        cdef const void** buffers = <const void**>calloc(3, sizeof(void*))
        if buffers == NULL:
            raise MemoryError()
        exported_array(out, self.length, self.nulls, 3 if self.width == 0 else 2, buffers)
        buffers[0] = self.validity_bits()
        buffers[1] = taken(&self.values)
        if self.width == 0:
            buffers[2] = taken(&self.text)
        if buffers[1] == NULL or (self.width == 0 and buffers[2] == NULL) or (
                self.nulls and buffers[0] == NULL):
            release_exported_array(out)
            raise MemoryError()
        return 0

    cdef void* validity_bits(self) noexcept:
        """The validity bitmap (bit i set: value i is not null), malloc'd; NULL when no value is
        null (or out of memory)."""
        cdef Py_ssize_t i
        cdef uint8_t* out
        if self.nulls == 0:
            return NULL
        out = <uint8_t*>calloc((self.length + 7) // 8 + 1, 1)
        if out != NULL:
            for i in range(self.length):
                if self.valid.data[i]:
                    out[i >> 3] |= 1 << (i & 7)
        return out


cdef int read_row(Reader* r, list columns, Py_ssize_t first) except -1:
    """Append one packed row (an array of values) to `columns[first:]`."""
    cdef Py_ssize_t i, count = len(columns)
    if array_length(r) != count - first:
        raise ValueError("packed row: not as many values as the table has columns")
    for i in range(first, count):
        (<Column>columns[i]).read(r)
    return 0


# --- handing built columns to Arrow in one call (the C data interface) --------------------------


cdef void* taken(Buffer* b) noexcept:
    """The buffer's memory, now the caller's (at least one byte: Arrow wants no null data
    pointer); NULL when out of memory."""
    cdef void* data = b.data
    if data == NULL:
        data = malloc(1)
    b.data, b.size, b.capacity = NULL, 0, 0
    return data


cdef void exported_array(ArrowArray* out, int64_t length, int64_t nulls, int64_t n_buffers,
                         const void** buffers) noexcept:
    memset(out, 0, sizeof(ArrowArray))
    out.length = length
    out.null_count = nulls
    out.n_buffers = n_buffers
    out.buffers = buffers
    out.release = release_exported_array


cdef void release_exported_array(ArrowArray* array) noexcept nogil:
    """Free an array made here: its children, its buffers (every one malloc'd here)."""
    cdef int64_t i
    for i in range(array.n_children):
        if array.children[i].release != NULL:
            array.children[i].release(array.children[i])
        free(array.children[i])
    free(array.children)
    if array.buffers != NULL:
        for i in range(array.n_buffers):
            free(<void*>array.buffers[i])
    free(array.buffers)
    array.release = NULL


cdef int export_row_numbers(ArrowArray* out, int64_t count) except -1:
    """1..count as an Arrow C int64 array."""
    cdef int64_t i
    cdef int64_t* numbers = <int64_t*>malloc(max(count, 1) * sizeof(int64_t))
    cdef const void** buffers = <const void**>calloc(2, sizeof(void*))
    if numbers == NULL or buffers == NULL:
        free(numbers)
        free(buffers)
        raise MemoryError()
    for i in range(count):
        numbers[i] = i + 1
    buffers[1] = numbers
    exported_array(out, count, 0, 2, buffers)
    return 0


cdef enum:  # what fills a field of a table, besides a packed value (see `TableLayout`)
    ROW_NUMBERS = -1
    NULLS = -2
    KEY_PART = -3  # KEY_PART - i: part i of each row's key (two at most)
    LINK_PART = -5  # LINK_PART - i: part i of each row's link (two at most)
    DATE_PART = -7  # DATE_PART - i: item i of `dates` of each row's time


cdef class TableLayout:
    """A canonical table as `table` makes it: its Arrow schema, the position of its `_row`
    column (numbering the rows from 1, made here), the positions of the fields the packed
    rows hold, in their order (`packed_at`; None: every other field), of the fields each
    part of a row's key fills (`key_at`, in key order: text), of those each part of its link
    fills (`link_at`, text: a link of one part is the value, of two a tuple; None fills
    nulls), and of those each item of `dates(time)` fills (`dates_at`: integers), `time` the
    packed value at `time_value` (an int64, the order's app time; null: null dates; `china`:
    `dates` is `china_dates`, made in C where it can); the rest are null."""

    cdef readonly object schema
    cdef readonly Py_ssize_t row_at
    cdef readonly list types  # of the packed values
    cdef readonly Py_ssize_t key_parts, link_parts
    cdef list sources  # per field: a packed value, ROW_NUMBERS, NULLS, a key, link or date part
    cdef object dates
    cdef Py_ssize_t time_value
    cdef tuple date_types
    cdef bint fixed  # `dates` are China's (year, YYYYMMDD): made in C where it can

    def __init__(
        self, schema, Py_ssize_t row_at, packed_at=None, key_at=(), link_at=(), dates_at=(),
        Py_ssize_t time_value=-1, dates=None, bint china=False
    ):
        if len(key_at) > 2 or len(link_at) > 2 or len(dates_at) > 2:
            raise ValueError("two key parts, two link parts and two dates at most")
        if packed_at is None:
            packed_at = [
                i for i in range(len(schema))
                if i != row_at and i not in (*key_at, *link_at, *dates_at)
            ]
        self.schema = schema
        self.row_at = row_at
        self.types = [schema.field(i).type for i in packed_at]
        if not self.types:
            raise ValueError("a packed table holds at least one value a row")
        self.sources = [NULLS] * len(schema)
        for value, i in enumerate(packed_at):
            self.fill(i, value, "a packed value")
        for part, i in enumerate(key_at):
            self.fill(i, KEY_PART - part, "a key part")
        for part, i in enumerate(link_at):
            self.fill(i, LINK_PART - part, "a link part")
        self.key_parts, self.link_parts = len(key_at), len(link_at)
        if dates_at and not (0 <= time_value < len(self.types) and dates is not None):
            raise ValueError("dates need the packed value of their time and `dates`")
        for part, i in enumerate(dates_at):
            self.fill(i, DATE_PART - part, "a date")
        self.date_types = tuple(schema.field(i).type for i in dates_at)
        self.dates, self.time_value = dates, time_value
        self.fixed = china and len(dates_at) == 2
        self.sources[row_at] = ROW_NUMBERS

    cdef int fill(self, Py_ssize_t i, Py_ssize_t source, str what) except -1:
        """Field `i` holds `source` (`what` it is, for the error)."""
        if not 0 <= i < len(self.schema) or i == self.row_at or self.sources[i] != NULLS:
            raise ValueError(f"field {i} cannot hold {what}")
        if KEY_PART >= source > DATE_PART and not pa.types.is_string(self.schema.field(i).type):
            raise ValueError(f"field {i} cannot hold {what}: it is not text")
        self.sources[i] = source
        return 0

    cdef object table(self, list built, list keys, list links):
        """The columns built (a Column per packed value), the rows' `keys` (tuples) and
        `links` (None when the layout has no such part) as a pyarrow Table of one batch, their
        memory handed over, not copied: one import of a C struct array with the schema already
        known (an Arrow array per column costs more than the rest of a micro-batch)."""
        cdef ArrowArray batch
        cdef Py_ssize_t i, source, count = len(self.schema)
        cdef Column nulls, parts
        cdef list dated = self.dated(built)
        cdef Py_ssize_t rows = (<Column>built[0]).length
        if self.key_parts and (keys is None or len(keys) != rows):
            raise ValueError("packed rows: not a key per row")
        if self.link_parts and (links is None or len(links) != rows):
            raise ValueError("packed rows: not a link per row")
        exported_array(&batch, rows, 0, 1, <const void**>calloc(1, sizeof(void*)))
        try:
            batch.children = <ArrowArray**>calloc(count, sizeof(ArrowArray*))
            if batch.buffers == NULL or batch.children == NULL:
                raise MemoryError()
            for i in range(count):
                batch.children[i] = <ArrowArray*>calloc(1, sizeof(ArrowArray))
                if batch.children[i] == NULL:
                    raise MemoryError()
                batch.n_children += 1
                source = self.sources[i]
                if source == ROW_NUMBERS:
                    export_row_numbers(batch.children[i], batch.length)
                elif source == NULLS:
                    nulls = Column(self.schema.field(i).type)
                    nulls.append_nulls(batch.length)
                    nulls.export(batch.children[i])
                elif source <= DATE_PART:
                    (<Column>dated[DATE_PART - source]).export(batch.children[i])
                elif source <= KEY_PART:
                    parts = Column(self.schema.field(i).type)
                    if source <= LINK_PART:
                        for link in links:
                            parts.append_text(link_part(link, LINK_PART - source, self.link_parts))
                    else:
                        for key in keys:
                            parts.append_text(key[KEY_PART - source])
                    parts.export(batch.children[i])
                else:
                    (<Column>built[source]).export(batch.children[i])
            imported = pa.RecordBatch._import_from_c(<size_t>&batch, self.schema)
        finally:
            if batch.release != NULL:  # not moved to Arrow
                batch.release(&batch)
        return pa.Table.from_batches([imported])


    cdef list dated(self, list built):
        """A Column per item of `dates` of each row's time (none when the layout has none):
        the usual times' in C (`fixed_china_dates`, when `dates` are those two), the others'
        from `dates`."""
        cdef list columns = [Column(kind) for kind in self.date_types]
        cdef Column times
        cdef Py_ssize_t row, part
        cdef int64_t year, ymd
        if not columns:
            return columns
        times = built[self.time_value]
        for row in range(times.length):
            time = times.integer_at(row)
            if time is None:
                values = (None,) * len(columns)
            elif self.fixed and fixed_china_dates(time, &year, &ymd):
                values = (year, ymd)
            else:
                values = self.dates(time)
            for part in range(len(columns)):
                (<Column>columns[part]).append_integer(values[part])
        return columns


def table(list packed, TableLayout layout, list keys=None, list links=None):
    """Packed rows (each the MessagePack array of one canonical row), their keys and links ->
    the table `layout` describes, its `_row` column numbering the rows from 1."""
    return layout.table(rows_built(packed, layout.types), keys, links)


def order_tables(list packed, list keys, list links, TableLayout orders, TableLayout lines):
    """Packed orders ([row, [line, ...]], a line without the order key), their keys and links
    -> (the orders table, the lines table), made as `table` makes them: a line's order key is
    its order's."""
    heads, items, line_keys = order_built(packed, keys, orders.types, lines.types)
    return orders.table(heads, keys, links), lines.table(items, line_keys, None)


cdef inline object link_part(link, Py_ssize_t part, Py_ssize_t parts):
    """Part `part` of a link of `parts` parts: of one, the link (text); of two, its item."""
    if link is None or parts == 1:
        return link
    return link[part]


cdef list rows_built(list packed, list types):
    """Packed rows -> a Column per value, of the `types` given."""
    cdef list built = [Column(kind) for kind in types]
    cdef Reader r
    for rows in packed:
        r = reader_of(rows)
        read_row(&r, built, 0)
    return built


cdef tuple order_built(list packed, list keys, list types, list line_types):
    """Packed orders ([row, [line, ...]], a line without the order key) -> (the orders'
    Columns, the lines' Columns, each line's order key, from `keys`)."""
    cdef list orders = [Column(kind) for kind in types]
    cdef list lines = [Column(kind) for kind in line_types]
    cdef list line_keys = []
    cdef Reader r
    cdef Py_ssize_t at
    if len(keys) != len(packed):
        raise ValueError("packed orders: not a key per order")
    for at in range(len(packed)):
        r = reader_of(packed[at])
        if array_length(&r) != 2:
            raise ValueError("packed order: not a row and its lines")
        read_row(&r, orders, 0)
        key = keys[at]
        for _ in range(array_length(&r)):
            read_row(&r, lines, 0)
            line_keys.append(key)
    return orders, lines, line_keys


def walk_place(bytes rows, Py_ssize_t time_at, dates):
    """matcher.py `_place_of`: the packed order's app year (`dates(app time)[0]`, `dates` being
    `china_dates`) above its app time (the integer at `time_at` of its row) from 0 up, in 64
    bits; for the usual times made in C, from 16 bytes."""
    cdef int64_t time, year
    cdef uint64_t low, high
    cdef unsigned char place[16]  # little-endian
    cdef int i
    if not app_time_of(rows, time_at, &time, &year):
        return (dates(time)[0] << 64) + time + (1 << 63)
    low = <uint64_t>time ^ (<uint64_t>1 << 63)  # time + 2**63, from 0 up
    high = <uint64_t>year  # (a year of `fixed_china_dates`: after 1991)
    for i in range(8):
        place[i], place[8 + i] = (low >> (8 * i)) & 0xFF, (high >> (8 * i)) & 0xFF
    return _PyLong_FromByteArray(place, 16, 1, 0)


cdef bint app_time_of(bytes rows, Py_ssize_t time_at, int64_t* time, int64_t* year) except -1:
    """The packed order's app time (its integer at `time_at`) into `time`, and its year into
    `year` when `fixed_china_dates` makes it (True), else False."""
    cdef Reader r = reader_of(rows)
    cdef Py_ssize_t i
    cdef int64_t ymd
    if array_length(&r) != 2 or array_length(&r) <= time_at:
        raise ValueError("packed order: not a row and its lines")
    for i in range(time_at):
        skip(&r)
    if not integer(next_byte(&r), &r, time):
        raise ValueError("packed order: its app time is not an integer")
    return fixed_china_dates(time[0], year, &ymd)
