# cython: language_level=3
"""Read Arrow C-data columns in place: string, large_string, string_view, fixed-width values.

A `Col` is a list of chunks (an Arrow chunked array) with global row starts; getters take a
global row, find its chunk (directly when there is one, else through a block table) and honour
offsets and validity bitmaps.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcmp

cdef extern from "arrow_c_abi.h":  # every field: packed.pyx makes these, the kernel reads them
    struct ArrowSchema:
        const char* format
        const char* name
        const char* metadata
        int64_t flags
        int64_t n_children
        ArrowSchema** children
        ArrowSchema* dictionary
        void (*release)(ArrowSchema*) noexcept nogil
        void* private_data
    struct ArrowArray:
        int64_t length
        int64_t null_count
        int64_t offset
        int64_t n_buffers
        int64_t n_children
        const void** buffers
        ArrowArray** children
        ArrowArray* dictionary
        void (*release)(ArrowArray*) noexcept nogil
        void* private_data
    struct ArrowArrayStream:
        int (*get_schema)(ArrowArrayStream*, ArrowSchema*) noexcept nogil
        int (*get_next)(ArrowArrayStream*, ArrowArray*) noexcept nogil
        const char* (*get_last_error)(ArrowArrayStream*) noexcept nogil
        void (*release)(ArrowArrayStream*) noexcept nogil
        void* private_data
    void mc_release_schema(ArrowSchema* s) noexcept nogil
    void mc_release_array(ArrowArray* a) noexcept nogil
    void mc_release_stream(ArrowArrayStream* s) noexcept nogil
    int mc_stream_schema(ArrowArrayStream* s, ArrowSchema* out) noexcept nogil
    int mc_stream_next(ArrowArrayStream* s, ArrowArray* out) noexcept nogil

cdef extern from "mc_int128.h":
    void mc_prefetch "MC_PREFETCH"(const void* p) noexcept nogil

cdef extern from "mc_bytes.h":
    bint mc_bytes_eq(const char* a, const char* b, int64_t n) noexcept nogil


# Physical layouts the kernel reads (the logical type is the canonical schema's business).
cpdef enum Layout:
    LAYOUT_ABSENT = 0   # column not given: every value is null
    LAYOUT_UTF8 = 1     # "u": int32 offsets
    LAYOUT_LARGE_UTF8 = 2  # "U": int64 offsets
    LAYOUT_VIEW = 3     # "vu": 16-byte views, <= 12 bytes inline
    LAYOUT_I64 = 4      # "l", and timestamps "ts?:..."
    LAYOUT_I32 = 5      # "i"
    LAYOUT_U8 = 6       # "C"
    LAYOUT_F64 = 7      # "g"
    LAYOUT_NULL = 8     # "n": an all-null array

ctypedef struct Chunk:
    int64_t start       # global row of this chunk's first row
    int64_t length
    int64_t offset      # Arrow array offset (slices)
    const uint8_t* validity   # NULL when every value is valid
    const void* values  # offsets (utf8), views (string_view) or fixed-width values
    const char* data    # character data (utf8 / large_utf8)
    const char** buffers  # variadic data buffers (string_view)

ctypedef struct Col:
    int layout
    int64_t length
    int64_t nchunks
    Chunk* chunks
    # Several chunks: chunk_at[row >> block_bits] is the chunk of the block's first row. A block
    # is no longer than the shortest chunk, so it spans at most two chunks.
    const int32_t* chunk_at
    int block_bits
    # One chunk without nulls (a stream's micro-batch tables): col_str / col_i64 read these
    # straight, without the layout, chunk and validity tests; NULL otherwise.
    const int32_t* dense_offsets  # utf8: offsets (from the chunk's offset) into dense_data
    const char* dense_data
    const int64_t* dense_i64      # int64 values (from the chunk's offset)

ctypedef struct StrRef:
    const char* ptr
    int64_t len         # -1 for null


cdef inline const Chunk* chunk_of(const Col* c, int64_t* row) noexcept nogil:
    """The chunk holding global `row`; `row` becomes the position inside that chunk.

    Several chunks (pyarrow chunked arrays, which the engine passes as they are) cost a table
    lookup and one compare instead of a search; Polars columns arrive rechunked.
    """
    cdef int64_t k
    if c.nchunks == 1:
        return c.chunks
    k = c.chunk_at[row[0] >> c.block_bits]
    if k + 1 < c.nchunks and row[0] >= c.chunks[k + 1].start:
        k += 1
    row[0] -= c.chunks[k].start
    return c.chunks + k


cdef inline bint chunk_valid(const Chunk* ch, int64_t i) noexcept nogil:
    cdef int64_t j
    if ch.validity == NULL:
        return True
    j = i + ch.offset
    return (ch.validity[j >> 3] >> (j & 7)) & 1


cdef inline bint col_is_null(const Col* c, int64_t row) noexcept nogil:
    cdef const Chunk* ch
    if c.layout == LAYOUT_ABSENT or c.layout == LAYOUT_NULL:
        return True
    ch = chunk_of(c, &row)
    return not chunk_valid(ch, row)


cdef inline StrRef chunk_str(const Chunk* ch, int layout, int64_t i) noexcept nogil:
    cdef StrRef s
    cdef int64_t j = i + ch.offset
    cdef const int32_t* o32
    cdef const int64_t* o64
    cdef const uint8_t* view
    cdef int32_t n
    if not chunk_valid(ch, i):
        s.ptr = NULL
        s.len = -1
        return s
    if layout == LAYOUT_VIEW:
        view = (<const uint8_t*>ch.values) + 16 * j
        n = (<const int32_t*>view)[0]
        s.len = n
        if n <= 12:
            s.ptr = <const char*>(view + 4)
        else:
            s.ptr = ch.buffers[(<const int32_t*>view)[2]] + (<const int32_t*>view)[3]
    elif layout == LAYOUT_UTF8:
        o32 = <const int32_t*>ch.values
        s.ptr = ch.data + o32[j]
        s.len = o32[j + 1] - o32[j]
    elif layout == LAYOUT_LARGE_UTF8:
        o64 = <const int64_t*>ch.values
        s.ptr = ch.data + o64[j]
        s.len = o64[j + 1] - o64[j]
    else:
        s.ptr = NULL
        s.len = -1
    return s


cdef inline StrRef col_str(const Col* c, int64_t row) noexcept nogil:
    """The UTF-8 bytes of a string value; `len` is -1 when null or the column is absent."""
    cdef StrRef s
    cdef const Chunk* ch
    if c.dense_offsets != NULL:
        s.ptr = c.dense_data + c.dense_offsets[row]
        s.len = c.dense_offsets[row + 1] - c.dense_offsets[row]
        return s
    if c.layout == LAYOUT_ABSENT or c.layout == LAYOUT_NULL:
        s.ptr = NULL
        s.len = -1
        return s
    ch = chunk_of(c, &row)
    return chunk_str(ch, c.layout, row)


cdef inline void prefetch_str(const Col* c, int64_t row) noexcept nogil:
    """Ask for the cache line that holds a string's view or offsets (no-op when absent)."""
    cdef const Chunk* ch
    cdef int64_t j
    if c.layout < LAYOUT_UTF8 or c.layout > LAYOUT_VIEW or row < 0:
        return
    ch = chunk_of(c, &row)
    j = row + ch.offset
    if c.layout == LAYOUT_VIEW:
        mc_prefetch((<const uint8_t*>ch.values) + 16 * j)
    elif c.layout == LAYOUT_UTF8:
        mc_prefetch((<const int32_t*>ch.values) + j)
    else:
        mc_prefetch((<const int64_t*>ch.values) + j)


cdef inline bint str_eq(StrRef a, StrRef b) noexcept nogil:
    """Byte equality of two non-null strings."""
    return a.len == b.len and mc_bytes_eq(a.ptr, b.ptr, a.len)


cdef inline bint str_eq_nullsafe(StrRef a, StrRef b) noexcept nogil:
    """Equality where null equals only null."""
    if a.len < 0 or b.len < 0:
        return a.len == b.len
    return str_eq(a, b)


cdef inline int str_cmp(StrRef a, StrRef b) noexcept nogil:
    """Byte order (UTF-8 code point order); null sorts first."""
    cdef int64_t n
    cdef int r
    if a.len < 0 or b.len < 0:
        return (a.len >= 0) - (b.len >= 0)
    n = a.len if a.len < b.len else b.len
    r = memcmp(a.ptr, b.ptr, <size_t>n) if n > 0 else 0
    if r != 0:
        return r
    return (a.len > b.len) - (a.len < b.len)


cdef inline int64_t col_i64(const Col* c, int64_t row, int64_t if_null) noexcept nogil:
    """An integer value widened to int64 (int64, int32, uint8, timestamps); `if_null` if null."""
    cdef const Chunk* ch
    cdef int64_t j
    if c.dense_i64 != NULL:
        return c.dense_i64[row]
    if c.layout == LAYOUT_ABSENT or c.layout == LAYOUT_NULL:
        return if_null
    ch = chunk_of(c, &row)
    if not chunk_valid(ch, row):
        return if_null
    j = row + ch.offset
    if c.layout == LAYOUT_I64:
        return (<const int64_t*>ch.values)[j]
    if c.layout == LAYOUT_I32:
        return (<const int32_t*>ch.values)[j]
    if c.layout == LAYOUT_U8:
        return (<const uint8_t*>ch.values)[j]
    return if_null


cdef inline double col_f64(const Col* c, int64_t row, double if_null) noexcept nogil:
    cdef const Chunk* ch
    cdef int64_t j
    if c.layout != LAYOUT_F64:
        return if_null
    ch = chunk_of(c, &row)
    if not chunk_valid(ch, row):
        return if_null
    j = row + ch.offset
    return (<const double*>ch.values)[j]


cdef inline void prefetch_value(const Col* c, int64_t row) noexcept nogil:
    """Ask for the cache line of a fixed-width value (no-op for strings or absent columns)."""
    cdef const Chunk* ch
    if c.layout < LAYOUT_I64 or c.layout > LAYOUT_F64 or row < 0:
        return
    ch = chunk_of(c, &row)
    if c.layout == LAYOUT_I32:
        mc_prefetch((<const int32_t*>ch.values) + row + ch.offset)
    elif c.layout == LAYOUT_U8:
        mc_prefetch((<const uint8_t*>ch.values) + row + ch.offset)
    else:
        mc_prefetch((<const int64_t*>ch.values) + row + ch.offset)


cdef inline void prefetch_str_data(const Col* c, int64_t row) noexcept nogil:
    """Ask for the bytes of a string stored out of line (call once its view is cached)."""
    cdef StrRef s
    if c.layout < LAYOUT_UTF8 or c.layout > LAYOUT_VIEW or row < 0:
        return
    s = col_str(c, row)
    if s.len > 12 or (s.len > 0 and c.layout != LAYOUT_VIEW):
        mc_prefetch(s.ptr)
