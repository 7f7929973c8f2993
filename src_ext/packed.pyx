# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Packed canonical rows -> Arrow tables, in C.

The streaming matcher keeps each document's canonical row(s) as MessagePack (matcher.py,
`_Packer`): an array of values, each nil, an integer or UTF-8 text; an order is the array
[row, [line, ...]]. A row leaves out the document's own key and what it links by (an order
its buyer's ID number, a payment or waybill its order's key, an inventory its waybill's): the
matcher holds those as the document's dict key and link, which come in beside the rows. Decoding
those into Python tuples made a Python object per value, which Arrow then converted back one
by one; here the values go straight from the bytes into Arrow buffers, held by a `Table` that
Arrow consumers read through the C stream interface (`__arrow_c_stream__`): the kernel takes
its columns from it with no pyarrow object between (wrapping and exporting them through
pyarrow cost more than the rest of a micro-batch), and pyarrow or Polars read it as well. An
order's dates are not held either: they are made here from its app time. `walk_place` makes the
value that places an order in its annual-limit walk from its app time, without decoding the
rest. matcher.py keeps the pure-Python path (msgspec, then `RowMaker.frame`) for when this is
not built; tests/stream/test_stream_compact_state.py checks that both give the table built
column by column.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memset, strlen

from arrow_access cimport ArrowArray, ArrowArrayStream, ArrowSchema
from china_dates cimport fixed_china_dates

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_New
from cpython.list cimport PyList_GET_ITEM
from cpython.object cimport PyObject
from cpython.unicode cimport PyUnicode_AsUTF8AndSize

import pyarrow as pa


cdef extern from "Python.h":
    object _PyLong_FromByteArray(const unsigned char* data, size_t n, int little, int signed)
    # On borrowed references (keys and links read in place, see `put_str`):
    bint tuple_exact "PyTuple_CheckExact"(PyObject* o)
    Py_ssize_t tuple_size "PyTuple_GET_SIZE"(PyObject* o)
    PyObject* tuple_item "PyTuple_GET_ITEM"(PyObject* o, Py_ssize_t i)
    bint is_str "PyUnicode_Check"(PyObject* o)
    bint is_compact_ascii "PyUnicode_IS_COMPACT_ASCII"(PyObject* o)
    void* str_data "PyUnicode_DATA"(PyObject* o)
    Py_ssize_t str_length "PyUnicode_GET_LENGTH"(PyObject* o)


cdef extern from "mc_bytes.h":
    void mc_copy(char* to, const void* source, int64_t n) noexcept nogil


cdef extern from *:
    """
    /* Reference counts shared by exported arrays: a consumer may release them on any thread. */
    static inline int64_t mc_refs_add(int64_t* refs, int64_t n) {
        return __atomic_add_fetch(refs, n, __ATOMIC_ACQ_REL);
    }
    /* `n` (1, 2, 4 or 8) bytes as an unsigned big-endian number: one load, not a loop. */
    static inline __attribute__((always_inline)) uint64_t mc_big_endian(
            const uint8_t* at, int n) {
        uint16_t two; uint32_t four; uint64_t eight;
        switch (n) {
            case 1: return at[0];
            case 2: memcpy(&two, at, 2); return __builtin_bswap16(two);
            case 4: memcpy(&four, at, 4); return __builtin_bswap32(four);
            default: memcpy(&eight, at, 8); return __builtin_bswap64(eight);
        }
    }
    /* The MessagePack uint or int (8 to 64 bits: `first` 0xCC to 0xD3) whose bytes start at
       `at` into `value`, an int sign-extended from its width; 0 when a uint is beyond int64. */
    static inline __attribute__((always_inline)) int mc_sized_integer(
            uint8_t first, const uint8_t* at, int64_t* value) {
        int size = 1 << (first & 3), shift = 64 - 8 * size;
        uint64_t bits = mc_big_endian(at, size);
        if (first <= 0xCF) {
            if (bits > (uint64_t)INT64_MAX) return 0;
            *value = (int64_t)bits;
        } else {
            *value = (int64_t)(bits << shift) >> shift;
        }
        return 1;
    }
    """
    int64_t mc_refs_add(int64_t* refs, int64_t n) noexcept nogil
    uint64_t mc_big_endian(const uint8_t* at, int n) noexcept nogil
    bint mc_sized_integer(uint8_t first, const uint8_t* at, int64_t* value) noexcept nogil


cdef int ENOMEM = 12  # the C stream interface's error codes are errno values
cdef int64_t live_tables = 0, live_schemas = 0  # allocations not freed yet (see `allocated`)


cdef int64_t INT32_MIN = -2147483648
cdef int64_t INT32_MAX = 2147483647
cdef Py_ssize_t TEXT_GUESS = 16  # bytes a text value, to reserve (see `new_columns`)


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
    """The next `n` (1, 2, 4 or 8) bytes as an unsigned big-endian number."""
    cdef uint64_t value
    need(r, n)
    value = mc_big_endian(r.at, n)
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
    cdef int size
    if first <= 0x7F or first >= 0xE0:  # positive and negative fixint
        value[0] = <int64_t>(<signed char>first)
        return True
    if not 0xCC <= first <= 0xD3:
        return False
    size = 1 << (first & 3)  # uint and int 8, 16, 32, 64
    need(r, size)
    if not mc_sized_integer(first, r.at, value):
        beyond_int64()
    r.at += size
    return True


cdef int beyond_int64() except -1:
    """(Out of line: `integer` stays small enough for the compiler to inline it where a
    value is read, not call it a value.)"""
    raise ValueError("packed row: an integer beyond int64")


cdef inline Py_ssize_t value_size(uint8_t first, Reader* r) except -1:
    """The size of the value whose first byte is `first` (only the kinds canonical rows hold)
    less that byte and the length it reads: an integer's bytes are counted, not decoded."""
    cdef Py_ssize_t length
    if first <= 0x7F or first >= 0xE0 or first == 0xC0:  # fixint or nil: the byte alone
        return 0
    if 0xA0 <= first <= 0xBF:
        return first & 0x1F
    if 0xCC <= first <= 0xD3:  # uint and int 8, 16, 32, 64
        return 1 << (first & 3)
    length = text_length(first, r)
    if length < 0:
        raise ValueError("packed row: a value that is not nil, an integer or text")
    return length


cdef inline int skip(Reader* r) except -1:
    """Step over the value that starts here."""
    cdef Py_ssize_t length = value_size(next_byte(r), r)
    need(r, length)
    r.at += length
    return 0


# --- building Arrow columns ----------------------------------------------------------------------

cdef struct Buffer:  # grows as values are appended
    char* data
    Py_ssize_t size
    Py_ssize_t capacity


cdef int grow(Buffer* b, Py_ssize_t wanted) except -1:
    cdef Py_ssize_t capacity = max(wanted, 2 * b.capacity, 256)
    cdef char* grown = <char*>realloc(b.data, capacity)
    if grown == NULL:
        raise MemoryError()
    b.data, b.capacity = grown, capacity
    return 0


cdef inline int reserve(Buffer* b, Py_ssize_t more) except -1:
    if b.size + more > b.capacity:
        grow(b, b.size + more)
    return 0


cdef inline int append(Buffer* b, const void* data, Py_ssize_t size) except -1:
    if size == 0:
        return 0  # (an empty buffer has no memory to copy to)
    reserve(b, size)
    memcpy(b.data + b.size, data, size)
    b.size += size
    return 0


cdef int width_of(kind) except -1:
    """Bytes per value of a column of type `kind`: 0 for text, 4 or 8 for integers."""
    if pa.types.is_string(kind):
        return 0
    if not (pa.types.is_integer(kind) or pa.types.is_timestamp(kind)) or kind.bit_width not in (
            32, 64):
        raise ValueError(f"no packed column of type {kind}")
    return kind.bit_width // 8


cdef struct Builder:  # one Arrow column being built (see `Columns`)
    int width  # bytes per integer value (4 or 8); 0 for text
    Buffer values  # integers, or for text its int32 offsets
    Buffer text
    Buffer valid  # validity bits, kept from the first null on (see `mark`)
    Py_ssize_t length, nulls


cdef class Columns:
    """Arrow columns being built, each text (`string`) or integers of 4 or 8 bytes (int32,
    int64, timestamp), until `give` hands them to a Table. Plain C structs, not an object a
    column: a packed value goes into its column with no Python call (see `read_value`)."""

    cdef Builder* at
    cdef Py_ssize_t count
    cdef list types  # of each column, for messages

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self.at == NULL:
            return
        for i in range(self.count):
            free(self.at[i].values.data)
            free(self.at[i].text.data)
            free(self.at[i].valid.data)
        free(self.at)


cdef Columns new_columns(list widths, list types, Py_ssize_t rows=0):
    """Empty Columns of these widths (0: text) and types, room made for `rows` values each
    (and `TEXT_GUESS` bytes a text value: most keys and codes are shorter, and growing a
    buffer by steps from nothing cost more than filling it)."""
    cdef Columns made = Columns.__new__(Columns)
    cdef Py_ssize_t i, n = len(widths)
    cdef Builder* b
    made.at = <Builder*>calloc(max(n, 1), sizeof(Builder))
    if made.at == NULL:
        raise MemoryError()
    made.count, made.types = n, types
    for i in range(n):
        b = &made.at[i]
        b.width = widths[i]
        reserve(&b.values, (b.width or 4) * rows + 4)
        if b.width == 0:  # offsets start at 0
            reserve(&b.text, TEXT_GUESS * rows)
            (<int32_t*>b.values.data)[0] = 0
            b.values.size = 4
    return made


cdef inline int mark(Builder* b, bint is_valid) except -1:
    """Count value `b.length` in: while no value is null, nothing else to record."""
    if b.nulls or not is_valid:
        mark_bit(b, is_valid)
    b.length += 1
    return 0


cdef int mark_bit(Builder* b, bint is_valid) except -1:
    """Set the validity bit of value `b.length`; at the first null, the bits of the values
    before it (valid) too."""
    cdef Py_ssize_t byte = b.length >> 3
    cdef uint8_t* bits
    if b.nulls == 0:
        reserve(&b.valid, byte + 1)
        memset(b.valid.data, 0xFF, byte)
        b.valid.data[byte] = (1 << (b.length & 7)) - 1
        b.valid.size = byte + 1
    elif byte == b.valid.size:
        reserve(&b.valid, 1)
        b.valid.data[byte] = 0
        b.valid.size += 1
    bits = <uint8_t*>b.valid.data
    if is_valid:
        bits[byte] |= 1 << (b.length & 7)
    else:
        b.nulls += 1
    return 0


cdef inline bint is_null(const Builder* b, Py_ssize_t row) noexcept:
    return b.nulls != 0 and not ((<const uint8_t*>b.valid.data)[row >> 3] >> (row & 7)) & 1


cdef inline int put_null(Builder* b) except -1:
    cdef int64_t zero = 0
    cdef int32_t offset = <int32_t>b.text.size
    if b.width == 0:
        append(&b.values, &offset, 4)
    else:
        append(&b.values, &zero, b.width)
    return mark(b, False)


cdef inline int put_text(Builder* b, const void* utf8, Py_ssize_t length) except -1:
    cdef Py_ssize_t end = b.text.size + length
    if end > INT32_MAX:
        raise ValueError("packed rows: more text than a string column holds")
    if length:
        reserve(&b.text, length)
        mc_copy(b.text.data + b.text.size, utf8, length)
        b.text.size = end
    reserve(&b.values, 4)
    (<int32_t*>(b.values.data + b.values.size))[0] = <int32_t>end
    b.values.size += 4
    return mark(b, True)


cdef inline bint put_number(Builder* b, int64_t number) except -1:
    """Append an integer (valid) to an integer column; False when it does not fit."""
    if b.width == 8:
        reserve(&b.values, 8)
        (<int64_t*>(b.values.data + b.values.size))[0] = number
        b.values.size += 8
    elif INT32_MIN <= number <= INT32_MAX:
        reserve(&b.values, 4)
        (<int32_t*>(b.values.data + b.values.size))[0] = <int32_t>number
        b.values.size += 4
    else:
        return False
    mark(b, True)
    return True


cdef int read_value(Reader* r, Columns columns, Py_ssize_t i) except -1:
    """Append the packed value that starts here to column `i`: the usual kinds (nil, fixstr,
    fixint) read here, the others by `text_length` and `integer`."""
    cdef Builder* b = &columns.at[i]
    cdef uint8_t first
    cdef int64_t number
    cdef Py_ssize_t length
    need(r, 1)
    first = r.at[0]
    r.at += 1
    if first == 0xC0:
        return put_null(b)
    if b.width == 0:
        if 0xA0 <= first <= 0xBF:
            length = first & 0x1F
        else:
            length = text_length(first, r)
            if length < 0:
                raise ValueError(f"packed row: text expected for a {columns.types[i]} column")
        need(r, length)
        put_text(b, r.at, length)
        r.at += length
        return 0
    if first <= 0x7F or first >= 0xE0:  # positive and negative fixint
        number = <signed char>first
    elif not integer(first, r, &number):
        raise ValueError(f"packed row: an integer expected for a {columns.types[i]} column")
    if not put_number(b, number):
        raise ValueError(f"packed row: {number} does not fit a {columns.types[i]} column")
    return 0


cdef int read_row(Reader* r, Columns columns) except -1:
    """Append one packed row (an array of values) to `columns`."""
    cdef Py_ssize_t i
    if array_length(r) != columns.count:
        raise ValueError("packed row: not as many values as the table has columns")
    for i in range(columns.count):
        read_value(r, columns, i)
    return 0


cdef int put_str(Columns columns, Py_ssize_t i, PyObject* value) except -1:
    """Append a key or link part (text; None: null) to text column `i`: the bytes of ASCII
    text read in place (the usual keys), others' through their cached UTF-8. (A borrowed
    reference: no reference counting a value.)"""
    cdef Builder* b = &columns.at[i]
    cdef Py_ssize_t length
    cdef const char* utf8
    if b.width != 0:
        raise ValueError(f"a key or link part is text, not a {columns.types[i]} value")
    if value == <PyObject*>None:
        return put_null(b)
    if not is_str(value):
        raise TypeError(f"a key or link part is text, not {type(<object>value).__name__}")
    if is_compact_ascii(value):
        utf8, length = <const char*>str_data(value), str_length(value)
    else:
        utf8 = PyUnicode_AsUTF8AndSize(<object>value, &length)
    return put_text(b, utf8, length)


cdef inline int put_part(Columns columns, Py_ssize_t i, PyObject* whole,
                         Py_ssize_t part) except -1:
    """Append item `part` of a key or link (a tuple: read in place) to text column `i`."""
    if tuple_exact(whole) and part < tuple_size(whole):
        return put_str(columns, i, tuple_item(whole, part))
    value = (<object>whole)[part]
    return put_str(columns, i, <PyObject*>value)


cdef int put_integer(Columns columns, Py_ssize_t i, object value) except -1:
    """Append a Python integer (None: null) to integer column `i`."""
    if value is None:
        return put_null(&columns.at[i])
    return put_int(columns, i, value)


cdef int put_int(Columns columns, Py_ssize_t i, int64_t number) except -1:
    if columns.at[i].width == 0 or not put_number(&columns.at[i], number):
        raise ValueError(f"{number} does not fit a {columns.types[i]} column")
    return 0


cdef int give(Columns columns, Py_ssize_t at, Table table, Py_ssize_t i) except -1:
    """Hand column `at`'s values over to field `i` of `table` (which owns them from now on)."""
    cdef Builder* b = &columns.at[at]
    cdef Shared* shared = table.shared
    cdef Field* field = &shared.fields[i]
    cdef void* validity = NULL
    cdef void* values
    cdef void* text = NULL
    if b.length != shared.length:
        raise ValueError("packed rows: not as many values in every column")
    if b.nulls:
        reserve(&b.valid, 1)
        b.valid.data[b.valid.size] = 0  # a spare byte, as the calloc'd bitmap had
        validity = taken(&b.valid)
    values = taken(&b.values)
    own(shared, validity)
    own(shared, values)
    if b.width == 0:
        text = taken(&b.text)
        own(shared, text)
    if values == NULL or (b.width == 0 and text == NULL):
        raise MemoryError()
    field.null_count = b.nulls
    field.n_buffers = 3 if b.width == 0 else 2
    field.buffers[0], field.buffers[1], field.buffers[2] = validity, values, text
    return 0


cdef void* taken(Buffer* b) noexcept:
    """The buffer's memory, now the caller's (at least one byte: Arrow wants no null data
    pointer); NULL when out of memory."""
    cdef void* data = b.data
    if data == NULL:
        data = malloc(1)
    b.data, b.size, b.capacity = NULL, 0, 0
    return data


# --- tables handed to Arrow consumers (the C stream interface, PyCapsules) ----------------------
#
# A built table's buffers are shared by every array exported from it, and by the Table: each
# holds a reference, and whoever lets go last frees them. So the kernel can move a column out
# of a batch (and pyarrow keep it) while the table stays readable, with no copy.


cdef struct Field:  # one column's Arrow buffers, as an exported array gives them
    int64_t null_count
    int64_t n_buffers
    const void* buffers[3]  # validity (NULL: no nulls), values or offsets, text


cdef struct Shared:  # a table's buffers; allocated with its fields and `owned` after it
    int64_t refs
    int64_t length
    int64_t n_fields
    Field* fields
    void** owned  # every buffer of the fields, malloc'd: 3 per field and one more at most
    int64_t n_owned
    void* zeros  # (owned) the buffers of every field null in every row (see `Table.nulls`)
    const void* no_validity[1]  # the buffers of an exported record batch (a struct array)


cdef inline void own(Shared* shared, void* data) noexcept:
    if data != NULL:
        shared.owned[shared.n_owned] = data
        shared.n_owned += 1


cdef void unref(Shared* shared) noexcept nogil:
    cdef int64_t i
    if mc_refs_add(&shared.refs, -1) == 0:
        for i in range(shared.n_owned):
            free(shared.owned[i])
        free(shared)
        mc_refs_add(&live_tables, -1)


cdef void release_field(ArrowArray* array) noexcept nogil:
    unref(<Shared*>array.private_data)
    array.release = NULL


cdef void release_batch(ArrowArray* array) noexcept nogil:
    """Release the children not moved out (a moved one's release is NULL here), then the
    batch's own memory."""
    cdef int64_t i
    for i in range(array.n_children):
        if array.children[i].release != NULL:
            array.children[i].release(array.children[i])
    free(array.children)  # with the children's structs (see `export_batch`)
    unref(<Shared*>array.private_data)
    array.release = NULL


cdef int export_batch(Shared* shared, ArrowArray* out) noexcept nogil:
    """The table as an Arrow C record batch (a struct array) in `out`; 0, or ENOMEM. A child's
    buffer list is the table's (it lives as long as the buffers): no memory of its own, so it
    can be moved out and released alone."""
    cdef int64_t i, n = shared.n_fields
    cdef ArrowArray** children = <ArrowArray**>malloc(
        max(n, 1) * (sizeof(ArrowArray*) + sizeof(ArrowArray)))
    cdef ArrowArray* child
    if children == NULL:
        return ENOMEM
    for i in range(n):
        child = (<ArrowArray*>(children + n)) + i
        children[i] = child
        memset(child, 0, sizeof(ArrowArray))
        child.length = shared.length
        child.null_count = shared.fields[i].null_count
        child.n_buffers = shared.fields[i].n_buffers
        child.buffers = shared.fields[i].buffers
        child.release = release_field
        child.private_data = shared
    memset(out, 0, sizeof(ArrowArray))
    out.length = shared.length
    out.n_buffers = 1
    out.buffers = shared.no_validity
    out.n_children = n
    out.children = children
    out.release = release_batch
    out.private_data = shared
    mc_refs_add(&shared.refs, n + 1)
    return 0


cdef struct SchemaBlock:  # heads the one allocation of a copied schema tree (`copy_schema`)
    int64_t refs  # its nodes not released yet


cdef inline size_t aligned(size_t size) noexcept nogil:
    return (size + 7) & ~(<size_t>7)


cdef size_t metadata_size(const char* metadata) noexcept nogil:
    """Bytes of Arrow C schema metadata (an int32 count of pairs, each two int32-sized
    strings)."""
    cdef int32_t pairs, size, i
    cdef const char* at = metadata
    if metadata == NULL:
        return 0
    memcpy(&pairs, at, 4)
    at += 4
    for i in range(2 * pairs):
        memcpy(&size, at, 4)
        at += 4 + size
    return at - metadata


cdef size_t node_size(const ArrowSchema* schema) noexcept nogil:
    """Bytes of one node's part of a copy: its children's pointers and structs, its strings."""
    return aligned(
        schema.n_children * (sizeof(ArrowSchema*) + sizeof(ArrowSchema))
        + strlen(schema.format) + 1
        + (strlen(schema.name) + 1 if schema.name != NULL else 0)
        + metadata_size(schema.metadata))


cdef int64_t tree_nodes(const ArrowSchema* schema, size_t* size) noexcept nogil:
    """The nodes of `schema` (itself and its children's), their copies' bytes added to `size`;
    -1 for a dictionary (no table here has one)."""
    cdef int64_t i, nodes = 1, more
    if schema.dictionary != NULL:
        return -1
    size[0] += node_size(schema)
    for i in range(schema.n_children):
        more = tree_nodes(schema.children[i], size)
        if more < 0:
            return -1
        nodes += more
    return nodes


cdef char* fill_node(const ArrowSchema* source, ArrowSchema* out, char* at,
                     SchemaBlock* block) noexcept nogil:
    """Copy `source` into `out`, its children and strings from `at` on; where the next node's
    copy goes."""
    cdef int64_t i
    cdef size_t size
    cdef char* end = at + node_size(source)
    out.flags, out.n_children, out.dictionary = source.flags, source.n_children, NULL
    out.children = NULL
    if source.n_children:
        out.children = <ArrowSchema**>at
        at += source.n_children * sizeof(ArrowSchema*)
        for i in range(source.n_children):
            out.children[i] = <ArrowSchema*>at
            at += sizeof(ArrowSchema)
    size = strlen(source.format) + 1
    memcpy(at, source.format, size)
    out.format, at = at, at + size
    out.name = NULL
    if source.name != NULL:
        size = strlen(source.name) + 1
        memcpy(at, source.name, size)
        out.name, at = at, at + size
    size = metadata_size(source.metadata)
    out.metadata = NULL
    if size:
        memcpy(at, source.metadata, size)
        out.metadata = at
    out.release, out.private_data = release_schema_node, block
    for i in range(source.n_children):
        end = fill_node(source.children[i], out.children[i], end, block)
    return end


cdef int copy_schema(const ArrowSchema* source, ArrowSchema* out) noexcept nogil:
    """A deep copy of `source` in `out`, in one allocation shared by its nodes (each may be
    moved out and released alone); 0, or an errno."""
    cdef size_t size = sizeof(SchemaBlock)
    cdef int64_t nodes = tree_nodes(source, &size)
    cdef SchemaBlock* block
    if nodes < 0:
        return 22  # EINVAL
    block = <SchemaBlock*>malloc(size)
    if block == NULL:
        return ENOMEM
    block.refs = nodes
    fill_node(source, out, <char*>(block + 1), block)
    mc_refs_add(&live_schemas, 1)
    return 0


cdef void release_schema_node(ArrowSchema* schema) noexcept nogil:
    cdef int64_t i
    cdef SchemaBlock* block = <SchemaBlock*>schema.private_data
    for i in range(schema.n_children):
        if schema.children[i].release != NULL:
            schema.children[i].release(schema.children[i])
    schema.release = NULL
    if mc_refs_add(&block.refs, -1) == 0:
        free(block)
        mc_refs_add(&live_schemas, -1)


cdef struct SharedSchema:  # a TableSchema's C schema, shared with the streams made from it
    int64_t refs
    ArrowSchema schema


cdef void unref_schema(SharedSchema* shared) noexcept nogil:
    if mc_refs_add(&shared.refs, -1) == 0:
        if shared.schema.release != NULL:
            shared.schema.release(&shared.schema)
        free(shared)


cdef struct StreamState:  # an exported stream's: one batch, then the end
    Shared* shared
    SharedSchema* schema
    bint done


cdef int stream_schema(ArrowArrayStream* stream, ArrowSchema* out) noexcept nogil:
    return copy_schema(&(<StreamState*>stream.private_data).schema.schema, out)


cdef int stream_next(ArrowArrayStream* stream, ArrowArray* out) noexcept nogil:
    cdef StreamState* state = <StreamState*>stream.private_data
    if state.done:
        memset(out, 0, sizeof(ArrowArray))  # released: the end of the stream
        return 0
    if export_batch(state.shared, out) != 0:
        return ENOMEM
    state.done = True
    return 0


cdef const char* stream_error(ArrowArrayStream* stream) noexcept nogil:
    return NULL


cdef void release_stream(ArrowArrayStream* stream) noexcept nogil:
    cdef StreamState* state = <StreamState*>stream.private_data
    unref_schema(state.schema)
    unref(state.shared)
    free(state)
    stream.release = NULL


cdef void free_stream_capsule(object capsule) noexcept:
    """A stream capsule's destructor: releases the stream unless its consumer did."""
    cdef ArrowArrayStream* stream = <ArrowArrayStream*>PyCapsule_GetPointer(
        capsule, "arrow_array_stream")
    if stream.release != NULL:
        stream.release(stream)
    free(stream)


cdef class TableSchema:
    """A pyarrow schema as the tables built here export it: its C copy (made once), the
    bytes per value of each field (0: text)."""

    cdef readonly object schema
    cdef readonly list types
    cdef readonly list widths
    cdef dict positions  # of each field, by name (a pyarrow lookup costs more)
    cdef SharedSchema* exported  # (a stream holds it too: not copied a stream)

    def __cinit__(self, schema):
        self.schema = schema
        self.types = list(schema.types)
        self.widths = [width_of(kind) for kind in self.types]
        self.positions = {name: i for i, name in enumerate(schema.names)}
        capsule = schema.__arrow_c_schema__()
        self.exported = <SharedSchema*>calloc(1, sizeof(SharedSchema))
        if self.exported == NULL:
            raise MemoryError()
        self.exported.refs = 1
        if copy_schema(<ArrowSchema*>PyCapsule_GetPointer(capsule, "arrow_schema"),
                       &self.exported.schema) != 0:
            raise MemoryError()

    def __dealloc__(self):
        if self.exported != NULL:
            unref_schema(self.exported)


cdef class Table:
    """A table built here (see `table`, `order_tables`, `from_columns`): one record batch that
    Arrow consumers read through `__arrow_c_stream__` (the kernel, `pa.table(table)`,
    `pl.DataFrame(table)`), each export sharing its buffers, not copying them."""

    cdef Shared* shared
    cdef readonly TableSchema shape

    def __init__(self):
        raise TypeError("tables are made by table(), order_tables() and from_columns()")

    def __dealloc__(self):
        if self.shared != NULL:
            unref(self.shared)

    @property
    def schema(self):
        return self.shape.schema

    cdef Shared* made(self) except NULL:
        """The table's buffers (a Table from `Table.__new__` alone has none)."""
        if self.shared == NULL:
            raise ValueError(
                "this Table was not made by table(), order_tables() or from_columns()")
        return self.shared

    @property
    def num_rows(self):
        return self.made().length

    @property
    def column_names(self):
        return self.shape.schema.names

    def __len__(self):
        return self.made().length

    def __arrow_c_stream__(self, requested_schema=None):
        """An Arrow C stream of the table's one record batch, as a PyCapsule (the schema
        requested is not heeded: the table has its own)."""
        cdef ArrowArrayStream* stream
        cdef StreamState* state
        self.made()
        stream = <ArrowArrayStream*>calloc(1, sizeof(ArrowArrayStream))
        state = <StreamState*>calloc(1, sizeof(StreamState))
        if stream == NULL or state == NULL:
            free(stream)
            free(state)
            raise MemoryError()
        state.shared, state.schema = self.shared, self.shape.exported
        mc_refs_add(&self.shared.refs, 1)
        mc_refs_add(&state.schema.refs, 1)
        stream.get_schema = stream_schema
        stream.get_next = stream_next
        stream.get_last_error = stream_error
        stream.release = release_stream
        stream.private_data = state
        return PyCapsule_New(stream, "arrow_array_stream", free_stream_capsule)

    def integers(self, str name):
        """The values of an integer (or timestamp: its int64) column as Python integers, None
        where null: what the matcher reads back of a micro-batch, with no Arrow objects."""
        cdef Py_ssize_t i, row
        cdef int width
        cdef Field* field
        cdef const uint8_t* validity
        cdef list values
        self.made()
        i = self.shape.positions[name]
        width = self.shape.widths[i]
        if width == 0:
            raise ValueError(f"column {name} does not hold integers")
        field = &self.shared.fields[i]
        validity = <const uint8_t*>field.buffers[0]
        values = [None] * self.shared.length
        for row in range(self.shared.length):
            if validity != NULL and not (validity[row >> 3] >> (row & 7)) & 1:
                continue
            if width == 8:
                values[row] = (<const int64_t*>field.buffers[1])[row]
            else:
                values[row] = (<const int32_t*>field.buffers[1])[row]
        return values

    cdef int row_numbers(self, Py_ssize_t i) except -1:
        """Field `i` numbers the rows from 1."""
        cdef int64_t row, rows = self.shared.length
        cdef int64_t* numbers = <int64_t*>malloc(max(rows, 1) * sizeof(int64_t))
        own(self.shared, numbers)
        if numbers == NULL:
            raise MemoryError()
        for row in range(rows):
            numbers[row] = row + 1
        self.set_field(i, 0, 2, numbers)
        return 0

    cdef int nulls(self, Py_ssize_t i) except -1:
        """Field `i` is null in every row: its buffers all one zeroed block (zero validity bits,
        values and offsets), the same for every such field of the table."""
        cdef int64_t rows = self.shared.length
        cdef void* zeros = self.shared.zeros
        if zeros == NULL:
            zeros = calloc(max(8 * rows, 4 * rows + 4), 1)
            own(self.shared, zeros)
            if zeros == NULL:
                raise MemoryError()
            self.shared.zeros = zeros
        self.set_field(i, rows, 3 if self.shape.widths[i] == 0 else 2, zeros)
        self.shared.fields[i].buffers[0] = zeros
        self.shared.fields[i].buffers[2] = zeros
        return 0

    cdef void set_field(self, Py_ssize_t i, int64_t nulls, int64_t n_buffers,
                        void* values) noexcept:
        cdef Field* field = &self.shared.fields[i]
        field.null_count, field.n_buffers = nulls, n_buffers
        field.buffers[0], field.buffers[1], field.buffers[2] = NULL, values, NULL


cdef Table new_table(TableSchema shape, int64_t rows):
    """An empty Table of `shape` and `rows` rows, its fields to fill."""
    cdef Table made = Table.__new__(Table)
    cdef int64_t n = len(shape.widths)
    cdef Shared* shared = <Shared*>calloc(
        1, sizeof(Shared) + n * sizeof(Field) + (3 * n + 1) * sizeof(void*))
    if shared == NULL:
        raise MemoryError()
    shared.refs, shared.length, shared.n_fields = 1, rows, n
    mc_refs_add(&live_tables, 1)
    shared.fields = <Field*>(shared + 1)
    shared.owned = <void**>(shared.fields + n)
    made.shared, made.shape = shared, shape
    return made


def allocated():
    """(tables' buffer sets, schema copies) allocated here and not freed yet: for tests that
    every export is released once."""
    return mc_refs_add(&live_tables, 0), mc_refs_add(&live_schemas, 0)


def from_columns(TableSchema shape, list columns):
    """Python values, a list per field of `shape` (text or integers; None: null) -> a Table:
    for the few rows the matcher makes itself (a micro-batch's quota ledger)."""
    cdef Py_ssize_t i
    cdef Columns built
    if len(columns) != len(shape.widths):
        raise ValueError("not a list of values per field")
    made = new_table(shape, len(columns[0]) if columns else 0)
    built = new_columns(shape.widths, shape.types)
    for i in range(len(columns)):
        for value in columns[i]:
            if built.at[i].width == 0:
                put_str(built, i, <PyObject*>value)
            else:
                put_integer(built, i, value)
        give(built, i, made, i)
    return made


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

    cdef readonly TableSchema shape
    cdef readonly Py_ssize_t row_at
    cdef readonly list types  # of the packed values
    cdef list widths  # of the packed values
    cdef readonly Py_ssize_t key_parts, link_parts
    cdef list sources  # per field: a packed value, ROW_NUMBERS, NULLS, a key, link or date part
    cdef list apart_types  # of the key parts', then the link parts' fields
    cdef object dates
    cdef Py_ssize_t time_value
    cdef list date_fields
    cdef list date_widths, date_types
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
        self.shape = TableSchema(schema)
        self.row_at = row_at
        self.types = [schema.field(i).type for i in packed_at]
        self.widths = [self.shape.widths[i] for i in packed_at]
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
        self.apart_types = [schema.field(i).type for i in (*key_at, *link_at)]
        if dates_at and not (
                0 <= time_value < len(self.types) and dates is not None
                and self.widths[time_value] == 8):
            raise ValueError("dates need the packed int64 value of their time and `dates`")
        for part, i in enumerate(dates_at):
            self.fill(i, DATE_PART - part, "a date")
        self.date_fields = list(dates_at)
        self.date_widths = [self.shape.widths[i] for i in dates_at]
        self.date_types = [self.shape.types[i] for i in dates_at]
        self.dates, self.time_value = dates, time_value
        self.fixed = china and len(dates_at) == 2
        self.sources[row_at] = ROW_NUMBERS

    @property
    def schema(self):
        """The table's Arrow schema."""
        return self.shape.schema

    cdef int fill(self, Py_ssize_t i, Py_ssize_t source, str what) except -1:
        """Field `i` holds `source` (`what` it is, for the error)."""
        if not 0 <= i < len(self.schema) or i == self.row_at or self.sources[i] != NULLS:
            raise ValueError(f"field {i} cannot hold {what}")
        if KEY_PART >= source > DATE_PART and self.shape.widths[i] != 0:
            raise ValueError(f"field {i} cannot hold {what}: it is not text")
        self.sources[i] = source
        return 0

    cdef Columns built(self, Py_ssize_t rows=0):
        """Empty Columns for the packed values, room made for `rows` rows."""
        return new_columns(self.widths, self.types, rows)

    cdef Table table(self, Columns built, list keys, list links):
        """The columns built (one per packed value), the rows' `keys` (tuples) and `links`
        (None when the layout has no such part) as a Table, their memory handed over, not
        copied."""
        cdef Py_ssize_t i, source
        cdef Py_ssize_t rows = built.at[0].length
        if self.key_parts and (keys is None or len(keys) != rows):
            raise ValueError("packed rows: not a key per row")
        if self.link_parts and (links is None or len(links) != rows):
            raise ValueError("packed rows: not a link per row")
        cdef Columns dated = self.dated(built)
        cdef Columns apart = self.apart(keys, links, rows)
        made = new_table(self.shape, rows)
        for i in range(len(self.sources)):
            source = self.sources[i]
            if source == ROW_NUMBERS:
                made.row_numbers(i)
            elif source == NULLS:
                made.nulls(i)
            elif source <= DATE_PART:
                give(dated, DATE_PART - source, made, i)
            elif source <= LINK_PART:
                give(apart, self.key_parts + LINK_PART - source, made, i)
            elif source <= KEY_PART:
                give(apart, KEY_PART - source, made, i)
            else:
                give(built, source, made, i)
        return made

    cdef Columns apart(self, list keys, list links, Py_ssize_t rows):
        """A text column per part of the rows' keys, then per part of their links (`rows`
        of each: checked by `table`)."""
        cdef Columns parts = new_columns([0] * len(self.apart_types), self.apart_types, rows)
        cdef Py_ssize_t row, part, at
        cdef PyObject* link
        for row in range(rows if self.key_parts else 0):
            for part in range(self.key_parts):
                put_part(parts, part, PyList_GET_ITEM(keys, row), part)
        for row in range(rows if self.link_parts else 0):
            link = PyList_GET_ITEM(links, row)
            for part in range(self.link_parts):
                at = self.key_parts + part
                if link == <PyObject*>None or self.link_parts == 1:
                    put_str(parts, at, link)  # a link of one part is the value; None: nulls
                else:
                    put_part(parts, at, link, part)
        return parts

    cdef Columns dated(self, Columns built):
        """A column per item of `dates` of each row's time (none when the layout has none):
        the usual times' in C (`fixed_china_dates`, when `dates` are those two), the others'
        from `dates`."""
        cdef Columns columns = new_columns(self.date_widths, self.date_types)
        cdef Builder* times
        cdef Py_ssize_t row, part
        cdef int64_t time, year, ymd
        if not self.date_fields:
            return columns
        times = &built.at[self.time_value]
        for row in range(times.length):
            if is_null(times, row):
                for part in range(columns.count):
                    put_null(&columns.at[part])
                continue
            time = (<int64_t*>times.values.data)[row]
            if self.fixed and fixed_china_dates(time, &year, &ymd):
                put_int(columns, 0, year)
                put_int(columns, 1, ymd)
                continue
            values = self.dates(time)
            for part in range(columns.count):
                put_integer(columns, part, values[part])
        return columns


def table(list packed, TableLayout layout, list keys=None, list links=None):
    """Packed rows (each the MessagePack array of one canonical row), their keys and links ->
    the table `layout` describes, its `_row` column numbering the rows from 1."""
    cdef Columns built = layout.built(len(packed))
    cdef Reader r
    for rows in packed:
        r = reader_of(rows)
        read_row(&r, built)
    return layout.table(built, keys, links)


def order_tables(list packed, list keys, list links, TableLayout orders, TableLayout lines):
    """Packed orders ([row, [line, ...]], a line without the order key), their keys and links
    -> (the orders table, the lines table), made as `table` makes them: a line's order key is
    its order's."""
    cdef Columns heads = orders.built(len(packed))
    cdef Columns items = lines.built(len(packed))
    cdef list line_keys = []
    cdef Reader r
    cdef Py_ssize_t at, count
    if len(keys) != len(packed):
        raise ValueError("packed orders: not a key per order")
    for at in range(len(packed)):
        r = reader_of(packed[at])
        if array_length(&r) != 2:
            raise ValueError("packed order: not a row and its lines")
        read_row(&r, heads)
        key = keys[at]
        for _ in range(array_length(&r)):
            read_row(&r, items)
            line_keys.append(key)
    return orders.table(heads, keys, links), lines.table(items, line_keys, None)


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
