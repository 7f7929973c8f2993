# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Text facts of an Arrow string_view array for the normaliser, read in place.

The normaliser asks of each text column whether any value needs NFKC or white-space work
(`_NEEDS_CLEANING` in matchcore/normalise.py) and whether any is empty or has a space at an
end, and of a column where some do, which rows (and, for ID numbers, which have an ASCII
lower-case letter): only those rows go through the cleaning steps. As Polars expressions that
is a regex call per value (~75 ns each at 1M rows, most of it call overhead); here it is a
branch-free loop over the bytes. The Polars expressions stay the reference:
tests/normalise/test_text_scan.py compares the two on generated text.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uintptr_t
from libc.stdlib cimport free, malloc

cdef enum:
    INLINE_MAX = 12  # string_view: values up to 12 bytes live in the view itself


cdef inline uint8_t breaks_plain(uint8_t prev, uint8_t b) noexcept nogil:
    """1 when byte `b` after byte `prev` shows text that cleaning could change, else 0.

    Arrow text is valid UTF-8, so bytes tell characters apart: U+4E00-U+9FFF are the 3-byte
    sequences E4 B8-BF xx and E5-E9 xx xx; any other lead byte (C2-DF, E0-E3, EA-EF, F0-F4)
    starts a character outside ASCII and that range, and continuation bytes (80-BF) are never
    a space. Tab, LF, VT, FF and CR are the ASCII white space other than a space (Unicode
    White_Space); the rest of it lies outside both ranges."""
    return (
        (<uint8_t>(b - 0x09) < 5)
        | ((b >= 0xC0) & ((b < 0xE4) | (b > 0xE9)))
        | ((prev == 0xE4) & (b < 0xB8))
        | ((prev == 0x20) & (b == 0x20))
    )


cdef inline bint needs_cleaning(const uint8_t* p, int64_t n) noexcept nogil:
    """True when the UTF-8 text has a character outside ASCII and U+4E00-U+9FFF, ASCII white
    space other than a space, or two spaces in a row (`_NEEDS_CLEANING`).

    Branch-free over the bytes (so the compiler can vectorise it): text mixes ASCII and CJK
    too finely for branches to predict well."""
    cdef uint8_t found
    cdef int64_t i
    if n == 0:
        return False
    found = breaks_plain(0, p[0])
    for i in range(1, n):
        found |= breaks_plain(p[i - 1], p[i])
    return found != 0


cdef inline bint has_edge(const uint8_t* p, int64_t n) noexcept nogil:
    """Empty, or a space at either end."""
    return n == 0 or p[0] == 0x20 or p[n - 1] == 0x20


cdef inline bint has_ascii_lower(const uint8_t* p, int64_t n) noexcept nogil:
    """True when the text has a byte a-z (never part of a multi-byte UTF-8 character)."""
    cdef uint8_t found = 0
    cdef int64_t i
    for i in range(n):
        found |= <uint8_t>(p[i] - 0x61) < 26
    return found != 0


cdef enum:
    # Bits of `row_flags`.
    NEEDS_CLEANING = 1
    HAS_EDGE = 2
    HAS_LOWER = 4


cdef class Chunk:
    """One string_view array in place: its validity, views and data buffers (kept alive)."""

    cdef object array  # holds the buffers the pointers below point into
    cdef const uint8_t* validity  # NULL when every value is valid
    cdef const uint8_t* views
    cdef const uint8_t** data
    cdef int64_t offset, length

    def __cinit__(self, array):
        if str(array.type) != "string_view":
            raise TypeError(f"the text scan reads string_view arrays, not {array.type}")
        buffers = array.buffers()
        self.data = <const uint8_t**>malloc(max(len(buffers) - 2, 1) * sizeof(uint8_t*))
        if self.data == NULL:
            raise MemoryError
        for i in range(2, len(buffers)):
            self.data[i - 2] = address(buffers[i])
        self.array = array
        self.validity, self.views = address(buffers[0]), address(buffers[1])
        self.offset, self.length = array.offset, len(array)

    def __dealloc__(self):
        free(self.data)

    cdef inline const uint8_t* value(self, int64_t row, int32_t* n) noexcept nogil:
        """The bytes of the value at `row` (their count in `n`), or NULL for a null."""
        cdef int64_t bit = self.offset + row
        cdef const uint8_t* view
        if self.validity != NULL and not (self.validity[bit >> 3] >> (bit & 7)) & 1:
            return NULL
        view = self.views + 16 * bit
        n[0] = (<const int32_t*>view)[0]
        if n[0] <= INLINE_MAX:
            return view + 4
        return self.data[(<const int32_t*>view)[2]] + (<const int32_t*>view)[3]

    cdef void facts(self, bint* plain, bint* trimmed) noexcept nogil:
        """Clear `plain` / `trimmed` on the first non-null value that breaks them."""
        cdef int64_t row
        cdef int32_t n
        cdef const uint8_t* text
        for row in range(self.length):
            text = self.value(row, &n)
            if text == NULL:
                continue
            if plain[0] and needs_cleaning(text, n):
                plain[0] = False
            if trimmed[0] and has_edge(text, n):
                trimmed[0] = False
            if not plain[0] and not trimmed[0]:
                return

    cdef void flag_rows(self, uint8_t* out, bint lower) noexcept nogil:
        """out[row] = the `row_flags` bits of the value at `row` (0 for a null)."""
        cdef int64_t row
        cdef int32_t n
        cdef const uint8_t* text
        for row in range(self.length):
            text = self.value(row, &n)
            if text == NULL:
                out[row] = 0
                continue
            out[row] = (
                NEEDS_CLEANING * needs_cleaning(text, n)
                | HAS_EDGE * has_edge(text, n)
                | HAS_LOWER * (lower and has_ascii_lower(text, n))
            )


cdef const uint8_t* address(buffer):
    if buffer is None:
        return NULL
    return <const uint8_t*><uintptr_t>buffer.address


def _chunks(chunks):
    return [Chunk(array) for array in getattr(chunks, "chunks", [chunks])]


def text_facts(chunks):
    """(plain, trimmed) of pyarrow string_view arrays (an Array or the chunks of one column).

    plain: no non-null value needs cleaning (see `needs_cleaning`); trimmed: no non-null value
    is empty or has a space at either end.
    """
    cdef bint plain = True, trimmed = True
    cdef Chunk chunk
    for chunk in _chunks(chunks):
        with nogil:
            chunk.facts(&plain, &trimmed)
        if not plain and not trimmed:
            break
    return bool(plain), bool(trimmed)


def row_flags(chunks, bint lower=False):
    """One byte per row of pyarrow string_view arrays, the sum of: 1 when the value needs
    cleaning (see `needs_cleaning`), 2 when it is empty or has a space at either end, 4 when
    `lower` is asked and it has an ASCII lower-case letter. Nulls are 0."""
    cdef Chunk chunk
    cdef int64_t start = 0
    cdef list parts = _chunks(chunks)
    flags = bytearray(sum((<Chunk>part).length for part in parts))
    cdef uint8_t[::1] out = flags
    for chunk in parts:
        if chunk.length:
            with nogil:
                chunk.flag_rows(&out[start], lower)
            start += chunk.length
    return flags
