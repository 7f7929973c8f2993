# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Streaming intake in C: message field values -> checks passed and canonical values; a
document -> the key, link and packed rows the stream matcher keeps; the usual message -> decoded
and checked, and taken into the matcher's state, each in one call; the usual JSON message ->
what the matcher keeps, in one pass over its bytes (`DirectJson`); an input, or a flush's
verdicts, -> their log records.

Each fast path here handles the common form of a value (text without anything NFKC or white
space collapsing could change, plain decimal amounts, ISO 8601 and customs times) and hands
anything else to its pure-Python twin in matchcore/stream/canonical.py, messages.py, matcher.py
or state.py, which stays the reference: the values, and every message about a bad value, come
from it. tests/stream/test_stream_intake.py compares the two on generated values
(tests/stream/test_stream_direct.py the direct JSON path with decoding).
"""

cimport cython
from cpython.buffer cimport PyBuffer_FillInfo
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.object cimport Py_EQ, PyObject_RichCompareBool
from cpython.ref cimport Py_DECREF, Py_INCREF, PyObject
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE, PyTuple_New, PyTuple_SET_ITEM
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memchr, memcmp, memcpy, memmove, memset
from china_dates cimport (CHINA_OFFSET, DAY_SECONDS, DAYS_1992, SECOND, days_from_civil,
                         days_in_month, fixed_china_dates)
from counters cimport add_count
from matchcore._native.slots cimport DeadlineQueue, Slot, new_slot, set_time_place
from msgpack_out cimport (
    grow, put_array_head, put_big, put_bin_head, put_float, put_int, put_str_head,
)

import msgspec
import msgspec.structs

cdef object astuple = msgspec.structs.astuple

cdef extern from *:
    int __builtin_ctzll(unsigned long long) noexcept nogil

cdef extern from "mc_bytes.h":
    bint mc_bytes_eq(const char* a, const char* b, int64_t n) noexcept nogil
    void mc_copy(char* to, const void* source, int64_t n) noexcept nogil
    int64_t mc_plain_end(const uint8_t* p, int64_t i, int64_t n) noexcept nogil
    bint mc_four_digits(const uint8_t* p, uint32_t* value, int* zeros) noexcept nogil

cdef extern from "mc_dict.h":  # `dict.get`, `d[key] = value`, `key in d` by a known hash
    object mc_dict_get(dict d, object key, Py_hash_t hash)
    int mc_dict_set(dict d, object key, object value, Py_hash_t hash) except -1
    int mc_dict_contains(dict d, object key, Py_hash_t hash) except -1

cdef extern from "Python.h":
    enum:
        PyUnicode_1BYTE_KIND
        PyUnicode_2BYTE_KIND
    bint PyUnicode_CheckExact(object)
    bint PyLong_CheckExact(object)
    bint PyFloat_CheckExact(object)
    double PyFloat_AS_DOUBLE(object)
    bint PyBytes_CheckExact(object)
    bint PyUnicode_IS_ASCII(object)
    int PyUnicode_KIND(object)
    void* PyUnicode_DATA(object)
    Py_ssize_t PyUnicode_GET_LENGTH(object)
    Py_UCS4 PyUnicode_READ(int kind, void* data, Py_ssize_t index)
    bint Py_UNICODE_ISSPACE(Py_UCS4)
    object PyUnicode_Substring(object, Py_ssize_t, Py_ssize_t)
    object PyUnicode_New(Py_ssize_t, Py_UCS4)
    object PyUnicode_DecodeUTF8(const char*, Py_ssize_t, const char*)
    void PyUnicode_InternInPlace(PyObject**)
    bint PyUnicode_CHECK_INTERNED(object)
    void Py_XDECREF(PyObject*)
    long long PyLong_AsLongLongAndOverflow(object, int*) except? -1
    object PyLong_FromLongLong(long long)
    void PyObject_GC_UnTrack(void*)
    bint PyObject_IS_GC(object)
    bint PyObject_GC_IsTracked(object)

cdef enum Kind:  # which fast path a `Converter` runs (`RowPlan` kinds too)
    K_TEXT, K_ID_NUMBER, K_AMOUNT, K_WHOLE, K_TIME, K_OTHER, K_CHINA_DATES, K_VALID_TIME, K_MONEY_TEXT

TEXT, ID_NUMBER, AMOUNT, WHOLE, TIME, OTHER = K_TEXT, K_ID_NUMBER, K_AMOUNT, K_WHOLE, K_TIME, K_OTHER
CHINA_DATES, VALID_TIME, MONEY_TEXT = K_CHINA_DATES, K_VALID_TIME, K_MONEY_TEXT

cdef object UNHANDLED = object()  # a fast path's "not the common form: ask the Python twin"

cdef enum:  # the time constants are china_dates.pxd's
    MIN_YEAR = 1900  # times outside [MIN_YEAR, MAX_YEAR] are left to Python, which also
    MAX_YEAR = 9000  # knows the zone's rules before 1992 and the ends of the calendar
    MAX_SIGNIFICANT = 18  # digits: every 18-digit number fits in int64
    MAX_MONEY_DIGITS = 14  # before the point, in an amount the messages take (`_MONEY_TEXT`)

cdef int64_t INT64_MAX = 9223372036854775807
cdef int64_t TEN_POWERS[5]
TEN_POWERS[:] = [1, 10, 100, 1000, 10000]
cdef uint64_t FIFTHS[5]  # 5**-k modulo 2**64: times it divides a multiple of 5**k by 5**k
FIFTHS[:] = [pow(5**k, -1, 1 << 64) for k in range(5)]


# --- text ------------------------------------------------------------------------------------

cdef inline tuple text_pair(object a, object b):
    """The key or link `(a, b)` of two str, untracked by the cyclic garbage collector: it can
    be in no cycle, and a dict of the matcher's state stays untracked while every key put in
    it is (CPython tracks a dict again when a tracked key goes in), so a full collection does
    not visit every pending document (matcher.py `_untracked`)."""
    cdef tuple pair = (a, b)
    PyObject_GC_UnTrack(<void*>pair)
    return pair


cpdef untracked(items):
    """The tuple `items`, untracked by the cyclic garbage collector when nothing in it may be
    tracked, as a full collection would untrack it (matcher.py `_untracked`). A tuple in it
    that holds nothing tracked is untracked on the way."""
    if not may_be_tracked(items):
        PyObject_GC_UnTrack(<void*>items)
    return items


cdef bint may_be_tracked(object items) except -1:
    """Whether something in `items` may be tracked (CPython's `_PyObject_GC_MAY_BE_TRACKED`):
    an object of a collected type but a plain tuple, or a plain tuple that holds one. A plain
    tuple found holding none is untracked."""
    for item in items:
        if not PyObject_IS_GC(item):
            continue
        if type(item) is not tuple:
            return True
        if PyObject_GC_IsTracked(item):
            if may_be_tracked(item):
                return True
            PyObject_GC_UnTrack(<void*>item)
    return False


cdef inline bint is_plain(object text):
    """No character outside ASCII and U+4E00-U+9FFF, no white space but a space, no two spaces
    in a row (`_NEEDS_CLEANING` in normalise.py): NFKC and collapsing leave such text alone.
    Text of one-byte characters is plain only when ASCII; of four-byte ones never (it has a
    character above U+FFFF)."""
    cdef Py_ssize_t i, n = PyUnicode_GET_LENGTH(text)
    cdef int kind = PyUnicode_KIND(text)
    cdef const uint8_t* narrow
    cdef const uint16_t* wide
    cdef Py_UCS4 c, previous = 0
    if kind == PyUnicode_1BYTE_KIND:
        narrow = <const uint8_t*>PyUnicode_DATA(text)
        for i in range(n):
            c = narrow[i]
            if c >= 0x80 or 0x09 <= c <= 0x0D or (c == 0x20 and previous == 0x20):
                return False
            previous = c
        return True
    if kind == PyUnicode_2BYTE_KIND:
        wide = <const uint16_t*>PyUnicode_DATA(text)
        for i in range(n):
            c = wide[i]
            if c < 0x80:
                if 0x09 <= c <= 0x0D or (c == 0x20 and previous == 0x20):
                    return False
            elif c < 0x4E00 or c > 0x9FFF:
                return False
            previous = c
        return True
    return False


cdef inline object trimmed(object text):
    """Text without spaces at its ends; None when nothing is left."""
    cdef int kind = PyUnicode_KIND(text)
    cdef void* data = PyUnicode_DATA(text)
    cdef Py_ssize_t start = 0, end = PyUnicode_GET_LENGTH(text)
    while start < end and PyUnicode_READ(kind, data, start) == 0x20:
        start += 1
    while end > start and PyUnicode_READ(kind, data, end - 1) == 0x20:
        end -= 1
    if start == end:
        return None
    if start == 0 and end == PyUnicode_GET_LENGTH(text):
        return text
    return PyUnicode_Substring(text, start, end)


cdef object fast_text(object value):
    """`clean_text` of plain text: trimming spaces is all it does."""
    if not PyUnicode_CheckExact(value) or not is_plain(value):
        return UNHANDLED
    return trimmed(value)


cdef object fast_id_number(object value):
    """`id_number` of plain text: trimmed, ASCII letters upper-cased (ASCII text only)."""
    cdef object text = fast_text(value)
    cdef Py_ssize_t i, n
    cdef const uint8_t* p
    if text is UNHANDLED or text is None:
        return text
    if not PyUnicode_IS_ASCII(text):
        return UNHANDLED
    n = PyUnicode_GET_LENGTH(text)
    p = <const uint8_t*>PyUnicode_DATA(text)
    for i in range(n):
        if 0x61 <= p[i] <= 0x7A:
            break
    else:
        return text  # nothing to upper-case (the usual ID number)
    upper = PyUnicode_New(n, 127)
    copy_upper(<uint8_t*>PyUnicode_DATA(upper), p, n)
    return upper


cdef inline void copy_upper(uint8_t* q, const uint8_t* p, Py_ssize_t n) noexcept:
    """The `n` bytes at `p` to `q`, ASCII letters upper-cased (an ID number as compared)."""
    cdef Py_ssize_t i
    for i in range(n):
        q[i] = p[i] - 0x20 if 0x61 <= p[i] <= 0x7A else p[i]


# --- amounts ---------------------------------------------------------------------------------

cdef struct Decimal:
    int64_t whole_digits  # significant digits before the point (leading zeros not counted)
    int64_t places  # digits after the point, trailing zeros not counted
    int64_t number  # the significant digits as an integer (valid when they are <= 18)


cdef inline bint plain_decimal(object value, Decimal* out):
    """ASCII digits, optionally a point and more digits (at least one digit before it): the
    amount form nearly every sender uses, needing neither a regex nor trimming."""
    if not PyUnicode_CheckExact(value) or not PyUnicode_IS_ASCII(value):
        return False
    return decimal_of(<const uint8_t*>PyUnicode_DATA(value), PyUnicode_GET_LENGTH(value), out)


cdef inline bint decimal_of(const uint8_t* p, Py_ssize_t n, Decimal* out) noexcept:
    """`plain_decimal` of the `n` bytes at `p`."""
    cdef Py_ssize_t i = 0, last, start, zeros
    cdef uint64_t number = 0  # leading zeros add nothing; past 19 digits it wraps, unused
    cdef int64_t significant
    if four_places(p, n, out):
        return True  # the usual amount
    while i < n and p[i] == 0x30:
        i += 1
    zeros = i
    while i < n and <uint8_t>(p[i] - 0x30) < 10:
        number = number * 10 + (p[i] - 0x30)
        i += 1
    if i == 0:
        return False
    significant = i - zeros
    out.whole_digits = significant
    out.places = 0
    if i < n:
        if p[i] != 0x2E:
            return False
        i += 1
        start = i
        while i < n and <uint8_t>(p[i] - 0x30) < 10:
            i += 1
        if i < n:
            return False
        while i > start and p[i - 1] == 0x30:  # trailing zeros are no places
            i -= 1
        last = i - start
        out.places = last
        if significant == 0:  # the point's zeros are not significant either
            zeros = start
            while zeros < start + last and p[zeros] == 0x30:
                zeros += 1
            significant = start - zeros
        significant += last
        for i in range(start, start + last):
            number = number * 10 + (p[i] - 0x30)
    out.number = <int64_t>number if significant <= MAX_SIGNIFICANT else -1
    return True


cdef inline bint four_places(const uint8_t* p, Py_ssize_t n, Decimal* out) noexcept:
    """`decimal_of` of at most MAX_MONEY_DIGITS digits, a point and four digits (a sender's
    usual amount), or False having read another form."""
    cdef Py_ssize_t whole_size = n - 5, zeros = 0
    cdef uint64_t units
    cdef int places_zeros
    if not usual_units(p, n, &units, &places_zeros):
        return False
    while zeros < whole_size and p[zeros] == 0x30:
        zeros += 1
    out.whole_digits, out.places = whole_size - zeros, 4 - places_zeros
    # less the trailing zeros, an exact division by 10**k: 2**k shifted out, then times the
    # inverse of 5**k modulo 2**64 (at most 18 digits: no overflow)
    out.number = <int64_t>((units >> places_zeros) * FIFTHS[places_zeros])
    return True


cdef inline bint usual_units(
    const uint8_t* p, Py_ssize_t n, uint64_t* units, int* places_zeros
) noexcept:
    """Whether the `n` bytes at `p` are a sender's usual amount (`four_places`: 1 to
    MAX_MONEY_DIGITS digits, a point, four digits): then `units` is its ten-thousandths (what
    `units_of` gives; at most 18 digits, no overflow) and `places_zeros` the zeros ending it."""
    cdef Py_ssize_t i
    cdef uint64_t whole = 0
    cdef uint32_t fraction
    if not (6 <= n <= 5 + MAX_MONEY_DIGITS and p[n - 5] == 0x2E):
        return False
    for i in range(n - 5):
        if <uint8_t>(p[i] - 0x30) >= 10:
            return False
        whole = whole * 10 + (p[i] - 0x30)
    if not mc_four_digits(p + n - 4, &fraction, places_zeros):
        return False
    units[0] = whole * 10000 + fraction
    return True


cdef object fast_units(object value):
    """`units` of a plain decimal with at most 4 places that fits: exact ten-thousandths."""
    cdef Decimal d
    cdef int64_t units
    if not plain_decimal(value, &d) or not units_of(&d, &units):
        return UNHANDLED  # odd form, too many places, or possibly too large: Python decides
    return units


cdef inline bint units_of(Decimal* d, int64_t* out) noexcept:
    """A decimal's ten-thousandths, when it has at most 4 places and they fit."""
    cdef int64_t scale
    if d.places > 4 or d.number < 0:
        return False
    scale = TEN_POWERS[4 - d.places]
    if d.number > INT64_MAX // scale:
        return False
    out[0] = d.number * scale
    return True


cdef int fast_money_text(object value):
    """1 when the amount text matches the message pattern `_MONEY_TEXT`, -1 when unsure."""
    cdef Decimal d
    return money_text_of(&d) if plain_decimal(value, &d) else -1


cdef inline int money_text_of(Decimal* d) noexcept:
    """`fast_money_text` of a plain decimal."""
    return 1 if d.whole_digits <= MAX_MONEY_DIGITS and d.places <= 4 else -1


cdef object fast_whole(object value):
    """`whole_number` of an int that fits int64: itself."""
    cdef int overflow = 0
    if not PyLong_CheckExact(value):
        return UNHANDLED
    PyLong_AsLongLongAndOverflow(value, &overflow)
    return value if not overflow else UNHANDLED


# --- times -----------------------------------------------------------------------------------

cdef struct Time:
    int year, month, day, hour, minute, second, micro
    bint iso, has_time, has_seconds, has_zone, space_before_zone, zone_lower_z, zone_minutes
    int offset  # minutes east of UTC


cdef inline int digits(const uint8_t* p, Py_ssize_t n, Py_ssize_t at, int count) noexcept:
    """The number written by `count` ASCII digits at `at`, or -1."""
    cdef int value = 0, i
    if at + count > n:
        return -1
    for i in range(count):
        if not 0x30 <= p[at + i] <= 0x39:
            return -1
        value = value * 10 + (p[at + i] - 0x30)
    return value


cdef inline bint valid_fields(Time* t) noexcept:
    """The ranges `datetime` accepts, and the years the fast paths handle."""
    return (
        MIN_YEAR <= t.year <= MAX_YEAR
        and 1 <= t.month <= 12
        and 1 <= t.day <= days_in_month(t.year, t.month)
        and t.hour <= 23
        and t.minute <= 59
        and t.second <= 59
    )


cdef bint parse_customs(const uint8_t* p, Py_ssize_t n, Time* t) noexcept:
    """yyyyMMdd or yyyyMMddHHmmss (`CUSTOMS_TIME`)."""
    if n != 8 and n != 14:
        return False
    t.year, t.month, t.day = digits(p, n, 0, 4), digits(p, n, 4, 2), digits(p, n, 6, 2)
    t.hour = t.minute = t.second = t.micro = 0
    t.has_seconds = t.has_time = n == 14
    t.iso = t.has_zone = False
    if n == 14:
        t.hour, t.minute, t.second = digits(p, n, 8, 2), digits(p, n, 10, 2), digits(p, n, 12, 2)
    return min(t.year, t.month, t.day, t.hour, t.minute, t.second) >= 0 and valid_fields(t)


cdef bint parse_iso(const uint8_t* p, Py_ssize_t n, Time* t) noexcept:
    """ISO 8601 as `ISO_TIME` reads it: date, optional [T ]HH:MM[:SS[.fraction]], optional
    space, optional Z or +-HH[[:]MM]. The whole text must be read and the fields valid."""
    cdef Py_ssize_t i = 10, start
    cdef int hh, mm, scale, sign
    cdef int usual = usual_iso(p, n, t)
    if usual >= 0:
        return usual
    t.year, t.month, t.day = digits(p, n, 0, 4), digits(p, n, 5, 2), digits(p, n, 8, 2)
    if n < 10 or p[4] != 0x2D or p[7] != 0x2D or min(t.year, t.month, t.day) < 0:
        return False
    t.hour = t.minute = t.second = t.micro = t.offset = 0
    t.has_time = t.has_seconds = t.has_zone = t.space_before_zone = False
    t.zone_lower_z = t.zone_minutes = False
    t.iso = True
    if i + 1 < n and (p[i] == 0x54 or p[i] == 0x20) and 0x30 <= p[i + 1] <= 0x39:
        t.hour, t.minute = digits(p, n, i + 1, 2), digits(p, n, i + 4, 2)
        if min(t.hour, t.minute) < 0 or p[i + 3] != 0x3A:
            return False
        t.has_time = True
        i += 6
        if i < n and p[i] == 0x3A:
            t.second = digits(p, n, i + 1, 2)
            if t.second < 0:
                return False
            t.has_seconds = True
            i += 3
            if i < n and (p[i] == 0x2E or p[i] == 0x2C):
                i += 1
                start, scale = i, 100_000
                while i < n and 0x30 <= p[i] <= 0x39:
                    t.micro += (p[i] - 0x30) * scale
                    scale //= 10
                    i += 1
                if i == start or i - start > 9:
                    return False
    if i + 1 < n and p[i] == 0x20:  # a space before a zone (none at the end: trimmed text)
        t.space_before_zone = True
        i += 1
    if i < n:
        t.has_zone = True
        if p[i] == 0x5A or p[i] == 0x7A:  # Z, z
            t.zone_lower_z = p[i] == 0x7A
            i += 1
        elif p[i] == 0x2B or p[i] == 0x2D:  # +, -
            sign = -1 if p[i] == 0x2D else 1
            hh = digits(p, n, i + 1, 2)
            if hh < 0:
                return False
            i += 3
            mm = 0
            if i < n:  # minutes, after an optional colon
                i += p[i] == 0x3A
                mm = digits(p, n, i, 2)
                if mm < 0:
                    return False
                t.zone_minutes = True
                i += 2
            t.offset = sign * (hh * 60 + mm)
        else:
            return False
    return i == n and valid_fields(t)


cdef inline int usual_iso(const uint8_t* p, Py_ssize_t n, Time* t) noexcept:
    """`parse_iso` of the form senders mostly write, yyyy-MM-ddTHH:mm:ss+HHMM (+HH:MM, or -):
    1 or 0, or -1 for another form, which `parse_iso` reads then."""
    cdef uint32_t year
    cdef int zeros, hh, mm
    if not (n == 24 or (n == 25 and p[22] == 0x3A)):
        return -1
    if not (
        p[4] == 0x2D and p[7] == 0x2D and p[10] == 0x54 and p[13] == 0x3A and p[16] == 0x3A
        and (p[19] == 0x2B or p[19] == 0x2D) and mc_four_digits(p, &year, &zeros)
    ):
        return -1
    t.year, t.month, t.day = year, two_digits(p + 5), two_digits(p + 8)
    t.hour, t.minute, t.second = two_digits(p + 11), two_digits(p + 14), two_digits(p + 17)
    hh, mm = two_digits(p + 20), two_digits(p + n - 2)
    if min(t.month, t.day, t.hour, t.minute, t.second, hh, mm) < 0:
        return -1
    t.micro = 0
    t.offset = (hh * 60 + mm) * (-1 if p[19] == 0x2D else 1)
    t.iso = t.has_time = t.has_seconds = t.has_zone = t.zone_minutes = True
    t.space_before_zone = t.zone_lower_z = False
    return valid_fields(t)


cdef inline int two_digits(const uint8_t* p) noexcept:
    """The number two ASCII digits at `p` write, or -1."""
    cdef unsigned tens = p[0] - 0x30, ones = p[1] - 0x30
    return <int>(tens * 10 + ones) if tens < 10 and ones < 10 else -1


cdef bint parse_time(object value, Time* t):
    """A time in one of the common forms, ASCII, with nothing to trim."""
    if not PyUnicode_CheckExact(value) or not PyUnicode_IS_ASCII(value):
        return False
    return time_of(<const uint8_t*>PyUnicode_DATA(value), PyUnicode_GET_LENGTH(value), t)


cdef inline bint time_of(const uint8_t* p, Py_ssize_t n, Time* t) noexcept:
    """`parse_time` of the `n` ASCII bytes at `p`."""
    memset(t, 0, sizeof(Time))  # every field set: gcc cannot tell the parsers set those read
    if n >= 10 and p[4] == 0x2D:
        return parse_iso(p, n, t)
    return parse_customs(p, n, t)


cdef object fast_utc_micros(object value):
    """`utc_micros` of a common form: with an offset, or China wall time since 1992."""
    cdef Time t
    cdef int64_t micros
    if not parse_time(value, &t) or not utc_micros_of(&t, &micros):
        return UNHANDLED
    return micros


cdef inline bint utc_micros_of(Time* t, int64_t* out) noexcept:
    """`fast_utc_micros` of a parsed time."""
    cdef int64_t days, seconds
    days = days_from_civil(t.year, t.month, t.day)
    seconds = days * DAY_SECONDS + t.hour * 3600 + t.minute * 60 + t.second
    if t.has_zone:
        seconds -= t.offset * 60
    elif days >= DAYS_1992:
        seconds -= CHINA_OFFSET
    else:
        return False  # before 1992 China kept daylight saving: zone rules needed
    out[0] = seconds * SECOND + t.micro
    return True


cdef int fast_valid_time(object value):
    """1 when the message check (`_valid_time`) accepts the time, -1 when unsure: the customs
    layouts, and ISO dates or date-times with seconds and a zone as Z, +HH:MM or +HHMM, which
    `datetime.fromisoformat` reads."""
    cdef Time t
    if not parse_time(value, &t):
        return -1
    return valid_time_of(&t)


cdef inline int valid_time_of(Time* t) noexcept:
    """`fast_valid_time` of a parsed time."""
    if not t.iso or not (t.has_time or t.has_zone):
        return 1
    if not t.has_seconds or t.space_before_zone:
        return -1
    if t.has_zone and (
        t.zone_lower_z or (t.offset != 0 and not t.zone_minutes)
        or abs(t.offset) // 60 > 23 or abs(t.offset) % 60 > 59
    ):
        return -1
    return 1


cdef object fast_china_dates(object micros):
    """`china_dates` since 1992: (year, YYYYMMDD) of the instant 8 hours ahead."""
    cdef int overflow = 0
    cdef long long us
    cdef int64_t year, ymd
    if not PyLong_CheckExact(micros):
        return UNHANDLED
    us = PyLong_AsLongLongAndOverflow(micros, &overflow)
    if overflow or not fixed_china_dates(us, &year, &ymd):
        return UNHANDLED
    return (year, ymd)


# --- one value, one row, one message -----------------------------------------------------------

cdef inline object fast(int kind, object value):
    if kind == K_TEXT:
        return fast_text(value)
    if kind == K_ID_NUMBER:
        return fast_id_number(value)
    if kind == K_AMOUNT:
        return fast_units(value)
    if kind == K_WHOLE:
        return fast_whole(value)
    if kind == K_TIME:
        return fast_utc_micros(value)
    if kind == K_CHINA_DATES:
        return fast_china_dates(value)
    if kind == K_VALID_TIME:
        return True if fast_valid_time(value) == 1 else UNHANDLED
    if kind == K_MONEY_TEXT:
        return True if fast_money_text(value) == 1 else UNHANDLED
    return UNHANDLED


cdef class Converter:
    """One conversion (or check): the fast path of `kind`, else `fallback`, its Python twin."""

    cdef int kind
    cdef object fallback

    def __init__(self, int kind, fallback):
        self.kind = kind
        self.fallback = fallback

    cdef object convert(self, object value):
        result = fast(self.kind, value) if value is not None else UNHANDLED
        return result if result is not UNHANDLED else self.fallback(value)

    def __call__(self, value):
        return self.convert(value)


cdef class RowPlan:
    """The canonical rows of one table, as `RowMaker.python_row` makes them.

    Per column: the source attribute, a kind (TEXT, ID_NUMBER, AMOUNT, WHOLE, TIME or OTHER),
    the Python converter of the values the fast path leaves, whether it is required and its
    default; `dates_at` is the column of the time whose China dates end the row (-1: none),
    `dates` the Python `china_dates`. `kept` are the positions, in a row of every value
    (the columns, then the dates), of the values a row holds: every column from `start` on is
    converted and checked, only those are kept (the first `start` are not the source's: an
    order line's order key, never kept). A row with an invalid value, a missing required one
    or a missing attribute is left to `python_row`, which raises naming the field.
    """

    cdef tuple attributes, fallbacks, defaults
    cdef bytes kinds, required
    cdef readonly Py_ssize_t start
    cdef Py_ssize_t size, dates_at, width
    cdef Py_ssize_t* places  # per value of a row of every value: its place in the row, or -1
    cdef object dates, python_row

    def __init__(
        self, attributes, kinds, fallbacks, required, defaults, Py_ssize_t dates_at, dates,
        python_row, kept, Py_ssize_t start=0
    ):
        cdef Py_ssize_t i, values
        self.attributes, self.fallbacks = tuple(attributes), tuple(fallbacks)
        self.kinds, self.required = bytes(kinds), bytes(map(bool, required))
        self.defaults = tuple(defaults)
        self.size = len(self.kinds)
        self.dates_at, self.dates, self.python_row = dates_at, dates, python_row
        values = self.size + (2 if dates_at >= 0 else 0)
        free(self.places)
        self.places = <Py_ssize_t*>malloc(values * sizeof(Py_ssize_t))
        if self.places == NULL:
            raise MemoryError()
        for i in range(values):
            self.places[i] = -1
        for i, at in enumerate(kept):
            if not 0 <= at < values or self.places[at] >= 0:
                raise ValueError(f"value {at} cannot be kept in a row of {values} values")
            self.places[at] = i
        self.width = len(kept)
        if not 0 <= start <= self.size or 0 <= dates_at < start:
            raise ValueError(f"no row plan reads its columns from {start} on")
        for i in range(start):
            if self.places[i] >= 0:
                raise ValueError("a column not read from the source cannot be kept")
        self.start = start

    def __dealloc__(self):
        free(self.places)

    def row(self, source):
        """The canonical values of `source`'s attributes (those kept)."""
        values = self.convert(source)
        return values if values is not None else self.python_row(source)

    cdef tuple convert(self, object source):
        """The row, filled in place (no list to grow, then copy), or None to leave it to
        `python_row`."""
        cdef Py_ssize_t i
        cdef tuple row = PyTuple_New(self.width)
        cdef object raw, value, app_time = None
        cdef const unsigned char* kinds = self.kinds
        cdef const unsigned char* required = self.required
        for i in range(self.start, self.size):
            try:
                raw = getattr(source, <str>self.attributes[i])
            except AttributeError:
                return None
            if raw is None:
                value = None
            else:
                value = fast(kinds[i], raw)
                if value is UNHANDLED:
                    try:
                        value = self.fallbacks[i](raw)
                    except Exception:  # Invalid, or whatever else python_row then raises
                        return None
            if value is None:
                value = self.defaults[i]
                if value is None and required[i]:
                    return None
            if i == self.dates_at:
                app_time = value
            if self.places[i] >= 0:
                put(row, self.places[i], value)
        if self.dates_at >= 0:
            dates = fast_china_dates(app_time)
            if dates is UNHANDLED:
                try:
                    dates = self.dates(app_time)
                except Exception:
                    return None
            year, ymd = dates
            if self.places[self.size] >= 0:
                put(row, self.places[self.size], year)
            if self.places[self.size + 1] >= 0:
                put(row, self.places[self.size + 1], ymd)
        return row


cdef inline void put(tuple row, Py_ssize_t i, object value):
    """Set item `i` of a tuple being filled (which holds a reference of its own)."""
    Py_INCREF(value)
    PyTuple_SET_ITEM(row, i, value)


cdef inline bint missing(object value):
    """None, or text that is white space only (`str.strip` semantics, as the Python check)."""
    cdef Py_ssize_t i
    cdef int kind
    cdef void* data
    if value is None:
        return True
    if not PyUnicode_CheckExact(value):
        return False
    kind, data = PyUnicode_KIND(value), PyUnicode_DATA(value)
    for i in range(PyUnicode_GET_LENGTH(value)):
        if not Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i)):
            return False
    return True


cdef class MessageCheck:
    """The message checks of one message type, for messages that pass them all: amount text
    against `_MONEY_TEXT`, the key, and (upserts) required fields, times and amounts given as
    whole numbers (made text). `accepts` says False whenever it is not sure; the Python checks
    then decide and give the reason (so the order of the checks here does not matter).
    Positions index `msgspec.structs.astuple(message)`; `item` checks order lines."""

    cdef tuple key, required, times, amounts, amount_names
    cdef Py_ssize_t op, items
    cdef MessageCheck item
    cdef Converter text, valid_time, money_text

    def __init__(
        self, key, required, times, amounts, amount_names, Py_ssize_t op, Py_ssize_t items,
        MessageCheck item, Converter text, Converter valid_time, Converter money_text
    ):
        self.key, self.required, self.times = tuple(key), tuple(required), tuple(times)
        self.amounts, self.amount_names = tuple(amounts), tuple(amount_names)
        self.op, self.items, self.item = op, items, item
        self.text, self.valid_time, self.money_text = text, valid_time, money_text

    def accepts(self, message):
        """True when `message` passes every check (its whole-number amounts are then text)."""
        return self.check(message)

    cdef bint check(self, object message) except -1:
        """`accepts`, for C callers."""
        cdef tuple values = astuple(message)
        cdef Py_ssize_t at
        for at in self.key:
            if self.text.convert(values[at]) is None:
                return False
        upsert = self.op < 0 or values[self.op] != "cancel"
        if not self.passes(message, values, upsert):
            return False
        if self.items >= 0:
            for line in values[self.items]:
                if not self.item.passes(line, astuple(line), upsert):
                    return False
        return True

    cdef bint passes(self, object holder, tuple values, bint upsert) except -1:
        """Amount text; for an upsert also required fields, times, whole-number amounts."""
        cdef Py_ssize_t at, position
        for at in self.amounts:
            value = values[at]
            if PyUnicode_CheckExact(value) and fast_money_text(value) != 1:
                if not self.money_text.fallback(value):
                    return False
        if not upsert:
            return True  # a cancel keeps its amounts as sent
        for at in self.required:
            if missing(values[at]):
                return False
        for at in self.times:
            value = values[at]
            if value is not None and fast_valid_time(value) != 1:
                if not self.valid_time.fallback(value):
                    return False
        for position, at in enumerate(self.amounts):
            value = values[at]
            if value is not None and not PyUnicode_CheckExact(value):
                if not PyLong_CheckExact(value):
                    return False  # a float: the Python check rounds it
                setattr(holder, self.amount_names[position], str(value))
        return True


# --- one document as the stream matcher keeps it -----------------------------------------------

cdef enum LinkKind:  # what a document links by (see `_LINK` in matchcore/stream/matcher.py)
    L_BUYER, L_ORDER, L_WAYBILL

LINK_BUYER, LINK_ORDER, LINK_WAYBILL = L_BUYER, L_ORDER, L_WAYBILL



cdef class DocumentIntake:
    """What the stream matcher keeps of one kind of document, in C: its key, and its link with
    its canonical rows packed as MessagePack (`_DocumentIntake` in matchcore/stream/matcher.py
    is the reference, and what these are is told there).

    `key_names` are the key's attributes, `link` how it links (LINK_BUYER: by the canonical ID
    number of `link_names[0]`; LINK_ORDER: by the order key `link_names` give, ebp_code first;
    LINK_WAYBILL: by the waybill key they give). `rows` makes the document's row; for orders
    `lines` makes each line's row, which starts with its line number (a repeated one keeps the
    first line). Rows the fast path leaves go to `python_rows` (which raises Invalid naming
    the field); `encode_into` packs into a reused buffer."""

    cdef readonly str kind
    cdef str key_a, key_b, link_a, link_b
    cdef int link
    cdef Converter text, id_number
    cdef RowPlan rows
    cdef RowPlan lines
    cdef object python_rows, encode_into
    cdef bytearray buffer

    def __init__(
        self, str kind, key_names, int link, link_names, Converter text, Converter id_number,
        RowPlan rows, RowPlan lines, python_rows, encode_into
    ):
        self.kind = kind
        self.key_a, self.key_b = key_names
        self.link = link
        self.link_a = link_names[0]
        self.link_b = link_names[1] if len(link_names) > 1 else None  # a buyer: one field
        self.text, self.id_number = text, id_number
        self.rows, self.lines = rows, lines
        self.python_rows, self.encode_into = python_rows, encode_into
        self.buffer = bytearray()

    def key(self, message):
        """The document's own key, canonical (see matcher.py `_shared_key`)."""
        return self.own_key(message)

    def keep(self, message):
        """(link, packed rows) of an upsert; Invalid when its values do not convert."""
        rows = self.convert(message)
        if rows is None:
            rows = self.python_rows(message)
        return self.linked(message), self.packed(rows)

    cdef tuple own_key(self, object message):
        key_a, key_b = getattr(message, self.key_a), getattr(message, self.key_b)
        return text_pair(self.code(key_a), self.number(key_b))

    cdef bytes packed(self, object rows):
        """`rows` as MessagePack, in bytes of exactly their size (see `_Packer`)."""
        self.encode_into(rows, self.buffer)
        return bytes(self.buffer)

    cdef object canonical(self, object value):
        """Canonical text (None for none: `clean_text` keeps null)."""
        return self.text.convert(value) if value is not None else None

    cdef object code(self, object value):
        """Canonical text, "" for none, interned (a company code: it repeats)."""
        text = self.canonical(value)
        return interned(text) if text is not None else ""

    cdef object number(self, object value):
        """Canonical text, "" for none, not interned (a document's number:
        see matcher.py `_shared_key`)."""
        text = self.canonical(value)
        return text if text is not None else ""

    cdef object linked(self, object message):
        """What the document links by (see the class)."""
        cdef object a = getattr(message, self.link_a)
        cdef object b = getattr(message, self.link_b) if self.link_b is not None else None
        if self.link == L_BUYER:
            buyer = self.id_number.convert(a) if a is not None else None
            return interned(buyer) if buyer is not None else None
        if self.link == L_WAYBILL:
            return text_pair(self.code(a), self.number(b))
        ebp, order_no = self.canonical(a), self.canonical(b)
        if ebp is None and order_no is None:
            return None  # a waybill without an order key: linked through inventories
        if ebp is None or order_no is None:
            return ("", "")  # half a key links to nothing
        return text_pair(interned(ebp), order_no)

    cdef object convert(self, object message):
        """The rows in the fast path, None when it leaves them."""
        cdef tuple row = self.rows.convert(message)
        cdef tuple line
        cdef dict lines
        if row is None or self.lines is None:
            return row
        lines = {}
        for item in message.items:
            line = self.lines.convert(item)
            if line is None:
                return None
            if line[0] not in lines:
                lines[line[0]] = line
        return (row, list(lines.values()))


# --- the usual message, decoded and checked --------------------------------------------------

cdef object MsgspecError = msgspec.MsgspecError


cdef class MessageDecoder:
    """`decode_bytes` (matchcore/stream/matcher.py) of the usual message in one call: bytes
    whose first byte after ASCII white space opens a JSON object or a MessagePack map, that
    msgspec decodes and whose `MessageCheck` (of `checks`, per message type) accepts. `decode`
    gives None for anything else; the Python path then decides and gives the reason."""

    cdef object json_decode, msgpack_decode
    cdef dict checks

    def __init__(self, json_decode, msgpack_decode, dict checks):
        self.json_decode, self.msgpack_decode, self.checks = json_decode, msgpack_decode, checks

    def decode(self, raw):
        """The checked message in `raw`, or None (see the class)."""
        return self.checked(raw)

    cdef object checked(self, object raw):
        """`decode`, for C callers."""
        cdef const uint8_t* p
        cdef Py_ssize_t i = 0, n
        if not PyBytes_CheckExact(raw):
            return None
        p, n = <const uint8_t*>PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw)
        while i < n and (p[i] == 0x20 or 0x09 <= p[i] <= 0x0D):  # what `bytes.lstrip` strips
            i += 1
        if i == n:
            return None
        if p[i] == 0x7B:  # {
            decode = self.json_decode
        elif 0x80 <= p[i] <= 0x8F or p[i] == 0xDE or p[i] == 0xDF:  # a MessagePack map
            decode = self.msgpack_decode
        else:
            return None
        try:
            message = decode(raw)
        except MsgspecError:
            return None
        check = self.checks.get(type(message))
        if check is None or not (<MessageCheck>check).check(message):
            return None
        return message


# --- the usual message, kept by the stream matcher ----------------------------------------------

cdef enum LinksIn:  # where `NewUpserts` puts a document's link
    IN_INDEX, IN_PAYMENTS, IN_WAYBILLS


cdef class _Route:
    """Where `NewUpserts` keeps one message type: its intake, its documents (None: orders,
    whose document its slot keeps), where its links go (`links`: a link index, or the name of
    its order slot's field, "payments" or "waybills"), and the members a link holds in a tuple
    (`list_max`: `_Index.LIST_MAX`)."""

    cdef DocumentIntake intake
    cdef dict store, members
    cdef LinksIn links_in
    cdef Py_ssize_t list_max

    def __init__(self, DocumentIntake intake, dict store, links, Py_ssize_t list_max):
        self.intake, self.store, self.list_max = intake, store, list_max
        if isinstance(links, str):
            self.links_in = IN_PAYMENTS if links == "payments" else IN_WAYBILLS
        else:
            self.links_in, self.members = IN_INDEX, links._members


cdef class NewUpserts:
    """`StreamMatcher._apply` of the usual message in one call (matchcore/stream/matcher.py:
    `_apply`, `_relink`, `_touch` are the reference): an upsert of a document with no version
    kept yet, whose rows convert in the fast path, and that links by its own fields (a payment
    or waybill naming a whole order key). `apply` gives None for anything else, having changed
    nothing; the Python path then does it all.

    `routes` maps each message type to (its DocumentIntake, the matcher's documents of that
    kind, None for orders, where its links go, `_Index.LIST_MAX`: see `_Route`); `slots` are
    the matcher's order slots (src_ext/slots.pyx; a document holds its order's key as the tuple
    of the order's slot, its `key`, when there is one: `StreamMatcher._order_key`), which keep
    the order documents and the links of payments and waybills, `order_keys` the orders with
    a document in the order their first came (`_keep_order`), `deadlines` its `_Deadlines`
    (added to in C: src_ext/slots.pyx `DeadlineQueue`); `entry(revision, link, rows)` makes
    what the matcher keeps of another document; `accepted` is what `apply` returns
    when it took the message. The matcher's dirty set and counters' dict are read from it on
    every Python call (a flush or a restore replaces them); C callers hand them in (`Offers`
    reads them again only after what may replace them). `keep` counts nothing: its callers
    count what it took (`count_accepted`; `Offers` once for many).
    """

    cdef dict routes, slots
    cdef list order_keys
    cdef DeadlineQueue deadlines
    cdef object entry, accepted

    def __init__(
        self, routes, dict slots, list order_keys, DeadlineQueue deadlines, entry, accepted
    ):
        self.routes = {cls: _Route(*route) for cls, route in routes.items()}
        self.slots, self.order_keys, self.deadlines = slots, order_keys, deadlines
        self.entry, self.accepted = entry, accepted

    def apply(self, matcher, message, now):
        """Take `message` arrived at `now` into `matcher`'s state, or None (see the class)."""
        return self.take(matcher, message, now, matcher._dirty, matcher.counters._values)

    cdef object take(self, object matcher, object message, object now, dict dirty, dict counts):
        """`apply`, for C callers (`dirty`, `counts`: the matcher's dirty set and counters'
        dict)."""
        cdef _Route route = self.routes.get(type(message))
        cdef DocumentIntake intake
        if route is None:
            return None
        intake = route.intake
        key = intake.own_key(message)
        cdef Py_hash_t key_hash = hash(key)
        if self.kept(route, key, key_hash) or message.op == "cancel":
            return None
        rows = intake.convert(message)
        if rows is None:
            return None  # a value the fast path leaves: Python converts, or says why not
        link = intake.linked(message)
        if not keepable(intake, link):
            return None
        self.keep(
            matcher, route, key, key_hash, message.revision, link, -1, intake.packed(rows), now,
            dirty,
        )
        count_accepted(counts, 1)
        return self.accepted

    cdef bint kept(self, _Route route, object key, Py_hash_t key_hash) except -1:
        """Whether a version of the document `key` (of hash `key_hash`) is kept (an order's
        by its slot)."""
        cdef Slot slot
        if route.store is not None:
            return mc_dict_contains(route.store, key, key_hash)
        slot = mc_dict_get(self.slots, key, key_hash)
        return slot is not None and slot.order_revision is not None

    cdef Slot keep(
        self, object matcher, _Route route, tuple key, Py_hash_t key_hash, object revision,
        object link, Py_hash_t link_hash, bytes packed, object now, dict dirty
    ):
        """Store a new document's version, index its link and touch its order, giving the
        order's slot: what `take` and `DirectJson` have found keepable (`keepable`, its key,
        of hash `key_hash`, not `kept`; `link_hash`: its link's, -1 when not known). The
        order's key tuple is its slot's, whichever document came first (one tuple per order).
        `dirty`: as `take`'s. Not counted (see the class)."""
        cdef bint by_link = route.intake.link == L_ORDER  # a payment or waybill: by its order
        touched = link if by_link else key  # else keyed by its order's key (order, inventory)
        # the order key's hash, once for its slot, dirty mark and (order, inventory) document
        cdef Py_hash_t touched_hash = key_hash
        if by_link:
            touched_hash = link_hash if link_hash != -1 else hash(touched)
        cdef Slot slot = mc_dict_get(self.slots, touched, touched_hash)
        if slot is None:  # (made first: it holds the links of payments and waybills)
            slot = self.made_slot(touched, touched_hash, now)
        else:
            touched = slot.key
            if by_link:
                link = touched
            else:
                key = touched
        if route.store is None:  # an order: its document in its slot (`_keep_order`)
            if slot.order_revision is None:
                self.order_keys.append(touched)
            slot.order_revision, slot.order_link, slot.order_rows = revision, link, packed
        else:
            mc_dict_set(route.store, key, self.entry(revision, link, packed), key_hash)
        if route.links_in == IN_PAYMENTS:
            slot.payments = with_member(slot.payments, key, route.list_max)
        elif route.links_in == IN_WAYBILLS:
            slot.waybills = with_member(slot.waybills, key, route.list_max)
        elif link is not None:
            add_member(route, link, key)
        if not dirty:  # the order waits for a flush (`StreamMatcher._touch`)
            matcher._dirty_since = now
        mc_dict_set(dirty, touched, None, touched_hash)
        return slot

    cdef Slot made_slot(self, object key, Py_hash_t key_hash, object now):
        """The slot of the order `key` (of hash `key_hash`), made at `now`, its deadline
        queued (`StreamMatcher._slot`)."""
        cdef double first_seen = now
        cdef Slot slot = new_slot(first_seen, key)
        mc_dict_set(self.slots, key, slot, key_hash)
        self.deadlines.push(key, first_seen)
        return slot


cdef inline int count_accepted(dict counts, Py_ssize_t taken) except -1:
    """`counters.add("accepted", taken)` on the counters' dict `counts` (`add_count`),
    nothing for none."""
    if taken:
        add_count(counts, "accepted", taken)
    return 0


cdef inline int add_member(_Route route, object link, tuple key) except -1:
    """`_Index.add(link, key)` on the index's members `route.members`."""
    found = route.members.setdefault(link, key)  # one lookup for the usual new link
    if found is not key:
        members = with_member(found, key, route.list_max)
        if members is not found:
            route.members[link] = members
    return 0


cdef object with_member(object found, tuple key, Py_ssize_t list_max):
    """matcher.py `_with_member(found, key)`: what holds the members `found` holds (None:
    none) and `key`, in a tuple while they are at most `list_max` (a buyer's orders while
    they are few), else in a set."""
    if found is None:
        return key
    if type(found) is tuple:
        if type((<tuple>found)[0]) is not tuple:  # a single member, held as it is
            return found if found == key else untracked((found, key))
        if has_member(<tuple>found, key):
            return found
        if len(<tuple>found) < list_max:
            return untracked(<tuple>found + (key,))
        members = set(<tuple>found)
    else:
        members = <set?>found
    members.add(key)
    return members


cdef inline bint has_member(tuple members, tuple key) except -1:
    """`key in members`, a pair (the usual member) compared part by part with `same_text`:
    a tuple comparison compares the text of two order numbers (~130 instructions a member,
    where a buyer has up to `_Index.LIST_MAX`)."""
    for member in members:
        if member is key:
            return True
        if type(member) is tuple and PyTuple_GET_SIZE(member) == PyTuple_GET_SIZE(key) == 2:
            if same_text(<object>PyTuple_GET_ITEM(member, 0), <object>PyTuple_GET_ITEM(key, 0)):
                if same_text(
                    <object>PyTuple_GET_ITEM(member, 1), <object>PyTuple_GET_ITEM(key, 1)
                ):
                    return True
        elif member == key:
            return True
    return False


cdef inline bint same_text(object a, object b) except -1:
    """`a == b`, at once for two interned str (a key's company codes are: `interned`), which
    are equal only when they are the same object."""
    if a is b:
        return True
    if (
        PyUnicode_CheckExact(a) and PyUnicode_CheckExact(b)
        and PyUnicode_CHECK_INTERNED(a) and PyUnicode_CHECK_INTERNED(b)
    ):
        return False
    return PyObject_RichCompareBool(a, b, Py_EQ)


cdef inline bint keepable(DocumentIntake intake, object link):
    """Whether `NewUpserts` keeps a document with this link: a payment or waybill only when it
    names a whole order key (else it links through inventories, or to nothing)."""
    return intake.link != L_ORDER or not (link is None or no_key(link))


cdef inline bint no_key(object link) noexcept:
    """Whether an order link (`DocumentIntake.linked`: a pair of str) is ("", ""), without
    comparing tuples."""
    return (
        PyTuple_GET_SIZE(link) == 2
        and PyUnicode_GET_LENGTH(<object>PyTuple_GET_ITEM(link, 0)) == 0
        and PyUnicode_GET_LENGTH(<object>PyTuple_GET_ITEM(link, 1)) == 0
    )


# --- log records: of one input, of a flush's verdicts ----------------------------------------------

#: CRC-32 (zlib's: reflected polynomial 0xEDB88320) of each byte value, and in table k of the
#: byte followed by k zero bytes: eight bytes a step (slicing by 8). The log record's checksum
#: without two calls into Python's zlib and a bytes object for the record's head (its record
#: took a quarter fewer instructions, measured with callgrind).
cdef uint32_t CRC_TABLES[8][256]


cdef void make_crc_tables():
    cdef uint32_t c
    cdef int n, k
    for n in range(256):
        c = n
        for k in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        CRC_TABLES[0][n] = c
    for n in range(256):
        c = CRC_TABLES[0][n]
        for k in range(1, 8):
            c = CRC_TABLES[0][c & 0xFF] ^ (c >> 8)
            CRC_TABLES[k][n] = c


make_crc_tables()


cdef inline uint32_t little(const unsigned char* p):
    """Four bytes as a little-endian number (one load on the usual machine)."""
    return p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16) | (<uint32_t>p[3] << 24)


cdef extern from "mc_crc32.h":
    int mc_crc32_fast_available() nogil
    uint32_t mc_crc32_fold(uint32_t state, const unsigned char* p, size_t n) nogil


cdef bint CRC_FAST = mc_crc32_fast_available()


cdef uint32_t crc32(uint32_t crc, const unsigned char* p, Py_ssize_t n):
    """`zlib.crc32(bytes, crc)` of the `n` bytes at `p`."""
    cdef uint32_t c = ~crc
    cdef Py_ssize_t folded
    if CRC_FAST and n >= 64:  # carry-less multiplication, 16 bytes at a time
        folded = n & ~(<Py_ssize_t>15)
        c = mc_crc32_fold(c, p, folded)
        p += folded
        n -= folded
    return ~crc32_tables(c, p, n)


cdef uint32_t crc32_tables(uint32_t c, const unsigned char* p, Py_ssize_t n):
    """The CRC state `c` (not inverted) after the `n` bytes at `p`, by table lookups: eight
    bytes at a time, then one. All of a CPU without PCLMULQDQ's CRC, the tail of the others'."""
    cdef uint32_t one, two
    while n >= 8:
        one = little(p) ^ c
        two = little(p + 4)
        c = (
            CRC_TABLES[7][one & 0xFF] ^ CRC_TABLES[6][(one >> 8) & 0xFF]
            ^ CRC_TABLES[5][(one >> 16) & 0xFF] ^ CRC_TABLES[4][one >> 24]
            ^ CRC_TABLES[3][two & 0xFF] ^ CRC_TABLES[2][(two >> 8) & 0xFF]
            ^ CRC_TABLES[1][(two >> 16) & 0xFF] ^ CRC_TABLES[0][two >> 24]
        )
        p += 8
        n -= 8
    while n > 0:
        c = CRC_TABLES[0][(c ^ p[0]) & 0xFF] ^ (c >> 8)
        p += 1
        n -= 1
    return c


def crc32_of(bytes data, uint32_t crc=0, *, bint fold=True):
    """`zlib.crc32(data, crc)`, as log records get it (a snapshot too). `fold=False` takes the
    table path alone, as a CPU without PCLMULQDQ does (for tests on one that has it)."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
    if fold:
        return crc32(crc, p, PyBytes_GET_SIZE(data))
    return ~crc32_tables(~crc, p, PyBytes_GET_SIZE(data))


cdef enum:
    PREFIX_MAX = 32  # kind, array head, float64, int64, bin32 head: 1 + 1 + 9 + 9 + 5 bytes
    HEADER_SIZE = 8  # body length, CRC32 of the body


cdef enum:
    KEPT_MAX = 4 << 20  # a `LogBuffer` bigger than this is freed at `clear` (after a burst)


cdef class LogBuffer:
    """The log records waiting for the next commit (`StateLog`'s queue), framed one after
    another in one buffer that grows and is kept from commit to commit: a record is written in
    place, without a bytes object of its own and the join of a list of them at the commit.
    Read as bytes through the buffer protocol (`file.write(buffer)`); `extend`, `clear` and
    `len` as a bytearray's (the queue without the extension)."""

    cdef unsigned char* data
    cdef Py_ssize_t size, capacity, exports
    cdef bytearray scratch  # where `frame_all` packs each item

    def __cinit__(self):
        self.scratch = bytearray()

    def __dealloc__(self):
        free(self.data)

    def __len__(self):
        return self.size

    def __getbuffer__(self, Py_buffer* view, int flags):
        PyBuffer_FillInfo(view, self, self.data, self.size, 1, flags)
        self.exports += 1

    def __releasebuffer__(self, Py_buffer* view):
        self.exports -= 1

    def extend(self, bytes record):
        """Queue `record` (one framed in Python) as it is."""
        cdef Py_ssize_t size = PyBytes_GET_SIZE(record)
        memcpy(self.reserve(size), PyBytes_AS_STRING(record), size)
        self.size += size

    def input(self, bytes kind, python_record, now, position, raw):
        """Queue the record of one input (`put_input`)."""
        put_input(self, kind, python_record, now, position, raw)

    def clear(self):
        """Empty it (after a commit wrote it): the memory is kept for the next records."""
        if self.exports:
            raise BufferError("the log buffer is being read")
        self.size = 0
        if self.capacity > KEPT_MAX:
            free(self.data)
            self.data, self.capacity = NULL, 0
        if self.scratch.__alloc__() > KEPT_MAX:
            self.scratch = bytearray()

    cdef unsigned char* reserve(self, Py_ssize_t extra) except NULL:
        """Where `extra` more bytes go: the end, with room for them."""
        if self.size + extra > self.capacity or self.data == NULL:  # (NULL: the error value)
            if self.exports:  # moving the memory would pull it from under a reader
                raise BufferError("the log buffer is being read")
            grow(<void**>&self.data, &self.capacity, max(self.size + extra, 1), 1, 4096)
        return self.data + self.size

    cdef int put(
        self, const unsigned char* head, Py_ssize_t n, const unsigned char* payload,
        Py_ssize_t size
    ) except -1:
        """The framed record of body `head` (its `n` bytes) then `payload` (`size`): length,
        CRC32 of the body, the body (`encode_record` in matchcore/stream/state.py). The body
        must be under 4 GiB."""
        cdef Py_ssize_t length = n + size
        cdef unsigned char* out = self.reserve(HEADER_SIZE + length)
        memcpy(out + HEADER_SIZE, head, n)
        memcpy(out + HEADER_SIZE + n, payload, size)
        put_big(out, length, 4)
        # the body's CRC in one pass once it is in place: the head is then folded with the
        # payload (16 bytes a step) instead of taking a table-driven pass of its own
        put_big(out + 4, crc32(0, out + HEADER_SIZE, length), 4)
        self.size += HEADER_SIZE + length
        return 0


cdef inline bint int64_or_none(object position, long long* out) except -1:
    """Whether `position` is None or an int64 (`out`: it)."""
    cdef int overflow = 0
    if position is None:
        return True
    if not PyLong_CheckExact(position):
        return False
    out[0] = PyLong_AsLongLongAndOverflow(position, &overflow)
    return not overflow


cdef int put_input(
    LogBuffer buffer, bytes kind, object python_record, object now, object position, object raw
) except -1:
    """Queue the framed log record of one input: `python_record(kind, now, position, raw)`
    (length, CRC32, kind, then [now, position, raw] packed by msgspec), written in place with
    the CRC of `raw` read where it lands. Anything but a float `now`, an int64 or None
    `position` and bytes `raw` (or a record over 4 GiB) is left to `python_record`."""
    cdef unsigned char prefix[PREFIX_MAX]
    cdef Py_ssize_t n = 0, size
    cdef long long number = 0
    if not (
        PyFloat_CheckExact(now) and PyBytes_CheckExact(raw) and len(kind) == 1
        and int64_or_none(position, &number)
        and PyBytes_GET_SIZE(raw) < (1LL << 32) - PREFIX_MAX
    ):
        buffer.extend(python_record(kind, now, position, raw))
        return 0
    size = PyBytes_GET_SIZE(raw)
    prefix[0] = (<unsigned char*>PyBytes_AS_STRING(kind))[0]
    prefix[1] = 0x93  # an array of three
    n = 2 + put_float(prefix + 2, PyFloat_AS_DOUBLE(now))
    if position is None:
        prefix[n] = 0xC0
        n += 1
    else:
        n += put_int(prefix + n, number)
    n += put_bin_head(prefix + n, size)
    return buffer.put(prefix, n, <const unsigned char*>PyBytes_AS_STRING(raw), size)


def frame_all(Tally tally, LogBuffer buffer, bytes kind, items, encode_into, python_record):
    """Queue the log records of `items` in `buffer`, each `python_record(kind, payload)` of
    the item packed by `encode_into(item, bytearray)` (msgspec's; `encode_record` in
    matchcore/stream/state.py: `StateLog.append_all`), framed in C and counted in
    `tally.records`; a record of 4 GiB or more is left to `python_record`. Each item is packed
    into the buffer's `scratch`, whose memory is kept: no bytes object and no growing of one
    per item."""
    cdef const unsigned char* head = <const unsigned char*>PyBytes_AS_STRING(kind)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(kind), size
    cdef bytearray scratch = buffer.scratch
    for item in items:
        encode_into(item, scratch)
        size = PyByteArray_GET_SIZE(scratch)
        if n + size >= (1LL << 32):
            buffer.extend(python_record(kind, bytes(scratch)))
        else:
            buffer.put(head, n, <const unsigned char*>PyByteArray_AS_STRING(scratch), size)
        tally.records += 1


# --- the usual JSON message, straight to what NewUpserts keeps -----------------------------------

cdef enum FieldKind:  # what msgspec takes for a message field (`direct_fields` in messages.py)
    F_OTHER, F_TEXT, F_KEY, F_AMOUNT, F_INT, F_OP, F_ITEMS  # F_TEXT-F_AMOUNT: `takes_text`

FIELD_OTHER, FIELD_TEXT, FIELD_KEY, FIELD_AMOUNT = F_OTHER, F_TEXT, F_KEY, F_AMOUNT
FIELD_INT, FIELD_OP, FIELD_ITEMS = F_INT, F_OP, F_ITEMS

cdef enum JsonType:  # the values `DirectJson` reads
    J_NULL, J_TEXT, J_INT, J_ITEMS

cdef enum ValueType:  # a converted value, before it is packed
    V_NONE, V_INT, V_TEXT, V_UPPER, V_DEFAULT

cdef enum:
    MAX_FIELDS = 64  # of an object (more: left to msgspec)
    MAX_VALUES = 64  # of a row of every value
    NO_FIELD = -1  # `Span.field`: a name its table does not know (or no table read it)
    TAG_FIELD = -2  # `Span.field`: the tag field (`DirectJson.tag_field`)


cdef struct Span:  # one field of a JSON object: its name and value, as bytes of the input
    const uint8_t* name
    Py_ssize_t name_size
    Py_ssize_t field  # the field of the table it was read with (`DirectJson.read_field_name`)
    int type  # JsonType
    const uint8_t* p  # text: its bytes (between the quotes, no escapes)
    Py_ssize_t size
    Py_ssize_t chars  # text: its characters
    bint ascii  # text: ASCII only
    bint spaced  # text: it has a space (else `trim` and `all_spaces` need not look)
    int64_t number  # an integer; J_ITEMS: the first item's index; P_UNITS: ten-thousandths
    Py_ssize_t digits  # an integer's digits; for J_ITEMS the number of items
    int parsed  # text: what `FieldTable.match` read of it for its checks (Parsed): `value_of`
    Decimal decimal  # P_DECIMAL: the amount
    int64_t micros  # P_MICROS: the time, UTC


cdef enum Parsed:  # a text's value `FieldTable.match` has read already (see `Span`)
    P_NONE, P_DECIMAL, P_MICROS, P_TIME  # P_TIME: a time, but not one `utc_micros_of` gives
    P_UNITS  # the usual amount (`usual_units`): its check passed, its value read


cdef enum TextChecks:  # what `takes_text` looks at in a field's text, decided once per table
    TC_NONE  # nothing: text (F_TEXT or F_AMOUNT) that no check reads
    TC_GIVEN  # only that it is not spaces only (`given`, but no key's length, time or amount)
    TC_ALL  # each check in turn


cdef struct Rule:  # what one field name of a message type means (see `FieldTable`)
    int kind  # FieldKind
    Py_ssize_t column  # its value in the RowPlan's row of every value (-1: none)
    Py_ssize_t value_at  # `column` when the plan converts it (from its `start` on), else -1
    int value_kind  # the plan's kind of that value (`value_of`)
    bint needed  # msgspec requires it
    bint key, required, time, amount  # what `MessageCheck` checks of it
    bint given  # required or a key: text of spaces only is refused
    bint must  # needed, required or a key: a message without it is not taken
    int text_checks  # what `takes_text` looks at (TextChecks)
    const uint8_t* name  # its JSON name (the bytes of `FieldTable.names`)
    Py_ssize_t name_size
    bint plain_name  # printable ASCII but quote and backslash: compared in place (`name_at`)
    int64_t least, most  # F_KEY: characters; F_AMOUNT: whole numbers [least, most); F_INT: default


cdef struct Value:  # one value of a row, converted
    int type  # ValueType
    int64_t number
    const uint8_t* p
    Py_ssize_t size


cdef enum:
    TEXT_CACHE_BITS = 12  # `DirectJson`'s cache of key and link texts: 4096 entries
    CACHED_SIZE = 47  # bytes of the longest text it holds (codes and numbers are shorter)


cdef struct CachedText:  # one entry of that cache: the bytes read and the str made
    PyObject* text  # a reference held (NULL: empty): while held, no other str takes its place
    uint8_t size
    bint upper
    uint8_t bytes[CACHED_SIZE]
    PyObject* pair  # the pair made last ending with `text` (a reference held; NULL: none)
    Py_hash_t pair_hash  # its hash


cdef inline Py_ssize_t text_slot(const uint8_t* p, Py_ssize_t size, bint upper) noexcept:
    """The cache entry of these bytes: a multiplicative hash of them eight at a time."""
    cdef uint64_t h = <uint64_t>size * 2 + upper, word
    cdef Py_ssize_t i = 0
    while i + 8 <= size:
        memcpy(&word, p + i, 8)
        h = (h ^ word) * 0x9E3779B97F4A7C15ULL
        i += 8
    word = 0
    memcpy(&word, p + i, size - i)
    h = (h ^ word) * 0x9E3779B97F4A7C15ULL
    return <Py_ssize_t>((h ^ (h >> 29)) * 0xBF58476D1CE4E5B9ULL >> (64 - TEXT_CACHE_BITS))


cdef inline Py_ssize_t json_space(const uint8_t* p, Py_ssize_t i, Py_ssize_t n) noexcept:
    """The index after JSON white space from `i` (at most `n`)."""
    # one test for the usual next byte, which is no white space (all is at most 0x20; p[n]
    # is a NUL: the input is a bytes object)
    if p[i] > 0x20:
        return i
    while i < n and p[i] <= 0x20 and (
        p[i] == 0x20 or p[i] == 0x0A or p[i] == 0x0D or p[i] == 0x09
    ):
        i += 1
    return i


cdef inline bint cjk_lead(uint8_t c) noexcept:
    """Whether `c` may begin a character of U+4E00-U+9FFF (E4-E9; see `read_text`)."""
    return 0xE4 <= c <= 0xE9


# `read_text` runs to the closing quote without checking the end: the bytes of a bytes object
# are followed by a NUL (CPython keeps one after every bytes object's data), which is no plain
# byte and ends it.

cdef Py_ssize_t read_name(const uint8_t* p, Py_ssize_t i, Py_ssize_t n, Span* span) noexcept:
    """A field name at `i` (its quote): the index after it, or -1. Its bytes are not looked at
    (memchr finds its end): a name is only ever compared with known names (`FieldTable.find`,
    the tag field), all plain ASCII, so any other (with an escape, say) leaves the message to
    msgspec all the same."""
    cdef const uint8_t* end = <const uint8_t*>memchr(p + i + 1, 0x22, n - i - 1)
    if end == NULL:
        return -1
    span.name, span.name_size = p + i + 1, end - (p + i + 1)
    return end - p + 1


cdef inline bint name_at(
    const uint8_t* p, Py_ssize_t i, Py_ssize_t n, const uint8_t* name, Py_ssize_t size
) noexcept:
    """Whether the string at `i` (its quote) is `name`, a plain name (`plain_name`): then its
    bytes are the name's and the next its closing quote."""
    return (
        i + size + 1 < n and p[i + size + 1] == 0x22
        and mc_bytes_eq(<const char*>name, <const char*>p + i + 1, size)
    )


cdef bint plain_name(bytes name):
    """Whether `name` is printable ASCII without a quote or backslash: JSON writes it as it
    is, so `name_at` compares it in place."""
    return all(0x20 <= c < 0x7F and c != 0x22 and c != 0x5C for c in name)


cdef Py_ssize_t read_text(const uint8_t* p, Py_ssize_t i, Py_ssize_t n, Span* span) noexcept:
    """A string at `i` (its quote) without escapes whose text `is_plain` accepts, read as UTF-8
    (plain text is ASCII and U+4E00-U+9FFF: E4 B8-BF xx to E9 BF BF, which is valid UTF-8):
    the index after it, or -1 for any other. Printable ASCII but quote and backslash runs to
    the next other byte (`mc_plain_end`); a space (not two) and CJK are read there; control
    characters (not JSON), backslash (an escape) and any other byte are left to msgspec and
    the Python path."""
    cdef Py_ssize_t start = i + 1, wide = 0  # wide: CJK characters, three bytes each
    cdef uint8_t c
    cdef bint spaced = False
    i = start
    while True:
        i = mc_plain_end(p, i, n)
        c = p[i]
        if c == 0x22:
            break
        if c == 0x20:
            if p[i + 1] == 0x20:
                return -1  # two spaces
            i += 1
            spaced = True
        elif cjk_lead(c):
            while True:  # CJK comes in runs (names, addresses): read to the run's end
                if (
                    (c == 0xE4 and p[i + 1] < 0xB8)
                    or (p[i + 1] & 0xC0) != 0x80 or (p[i + 2] & 0xC0) != 0x80
                ):
                    return -1
                i += 3
                wide += 1
                c = p[i]
                if not cjk_lead(c):
                    break
        else:
            return -1
    span.type, span.p, span.size = J_TEXT, p + start, i - start
    span.chars, span.ascii, span.spaced = i - start - 2 * wide, wide == 0, spaced
    span.parsed = P_NONE
    return i + 1


cdef Py_ssize_t read_int(const uint8_t* p, Py_ssize_t i, Py_ssize_t n, Span* span) noexcept:
    """A JSON integer of at most 18 digits at `i` (no fraction or exponent, not -0): the index
    after it, or -1."""
    cdef bint negative = p[i] == 0x2D
    cdef Py_ssize_t start
    cdef int64_t number = 0
    i += negative
    start = i
    while i < n and 0x30 <= p[i] <= 0x39:
        number = number * 10 + (p[i] - 0x30) if i - start < MAX_SIGNIFICANT else number
        i += 1
    if i == start or i - start > MAX_SIGNIFICANT or (p[start] == 0x30 and i - start > 1):
        return -1
    if i < n and (p[i] == 0x2E or p[i] == 0x45 or p[i] == 0x65):  # . E e
        return -1
    if negative and number == 0:
        return -1
    span.type, span.number, span.digits = J_INT, -number if negative else number, i - start
    return i


cdef inline bint all_spaces(Span* span) noexcept:
    """Text that is spaces only (plain text has no other white space)."""
    cdef Py_ssize_t i
    if not span.spaced:
        return span.size == 0
    for i in range(span.size):
        if span.p[i] != 0x20:
            return False
    return True


cdef inline void trim(Span* span, const uint8_t** p, Py_ssize_t* size) noexcept:
    """The text of `span` without spaces at its ends (`trimmed`)."""
    cdef Py_ssize_t start = 0, end = span.size
    if not span.spaced:
        p[0], size[0] = span.p, span.size
        return
    while start < end and span.p[start] == 0x20:
        start += 1
    while end > start and span.p[end - 1] == 0x20:
        end -= 1
    p[0], size[0] = span.p + start, end - start


cdef inline bint takes(Rule* rule, Span* span) noexcept:
    """Whether msgspec and `MessageCheck` take this value of the field as it is (see
    `FieldTable.match`). What is read for a check is kept in `span` for `value_of`, which
    would read it again."""
    if span.type == J_TEXT:  # the usual value
        return takes_text(rule, span)
    if span.type == J_NULL:
        return (rule.kind == F_TEXT or rule.kind == F_AMOUNT) and not rule.given
    if span.type == J_ITEMS:
        return rule.kind == F_ITEMS
    if rule.kind == F_AMOUNT:  # J_INT
        return rule.least <= span.number < rule.most  # else msgspec refuses it
    return rule.kind == F_INT


cdef inline bint takes_text(Rule* rule, Span* span) noexcept:
    """`takes` of text."""
    cdef Time t
    cdef int zeros
    if rule.text_checks == TC_NONE:  # most fields: decided once, not test by test
        return True
    if rule.text_checks == TC_GIVEN:  # most others
        return not all_spaces(span)
    if not F_TEXT <= rule.kind <= F_AMOUNT:  # a cancel (or no op) is the Python path's
        return rule.kind == F_OP and span.size == 6 and memcmp(span.p, b"upsert", 6) == 0
    if rule.kind == F_KEY and not rule.least <= span.chars <= rule.most:
        return False  # msgspec refuses it
    if rule.given and all_spaces(span):
        return False  # missing, or no key once canonical
    if rule.time:
        if not (span.ascii and time_of(span.p, span.size, &t) and valid_time_of(&t) == 1):
            return False
        span.parsed = P_MICROS if utc_micros_of(&t, &span.micros) else P_TIME
    if rule.amount:
        # the usual amount passes `money_text_of` and is its value: read once, not three times
        if usual_units(span.p, span.size, <uint64_t*>&span.number, &zeros):
            span.parsed = P_UNITS
            return True
        if not decimal_of(span.p, span.size, &span.decimal) or money_text_of(&span.decimal) != 1:
            return False
        span.parsed = P_DECIMAL
    return True


@cython.final  # its methods called directly, not through a table
cdef class FieldTable:
    """The fields of one message type (or of order lines) for `DirectJson`: JSON name -> `Rule`,
    from `direct_fields` (messages.py), the type's `MessageCheck` and the `RowPlan` of its rows.
    `columns[i]` is the field of the row's value i (-1: none). `order[s]` is the field (or
    TAG_FIELD) named s-th in the last object read with it (`DirectJson.read_field_name`;
    NO_FIELD: none expected)."""

    cdef tuple names
    cdef Py_ssize_t count, op, revision, items, musts  # musts: rules with `must`
    cdef Rule* rules
    cdef RowPlan plan
    cdef bint complete  # every column the plan converts has a field (else none is taken)
    # columns as bits (MAX_VALUES: they fit): those converted (from the plan's `start` on),
    # those with a default, those required without one
    cdef uint64_t converted, defaulted, needed
    cdef Py_ssize_t columns[MAX_VALUES]
    cdef Py_ssize_t order[MAX_FIELDS]

    def __init__(self, fields, MessageCheck check, RowPlan plan):
        cdef Py_ssize_t f
        cdef Rule* rule
        self.names = tuple(name.encode() for name, *_ in fields)
        self.count = len(fields)
        if self.count > MAX_FIELDS or plan.size + 2 > MAX_VALUES:
            raise ValueError("too many fields for the compiled JSON intake")
        free(self.rules)
        self.rules = <Rule*>malloc(max(self.count, 1) * sizeof(Rule))
        if self.rules == NULL:
            raise MemoryError()
        self.plan = plan
        self.op = self.revision = self.items = -1
        self.musts = 0
        for f in range(MAX_VALUES):
            self.columns[f] = -1
        for f in range(MAX_FIELDS):
            self.order[f] = NO_FIELD
        for f, (_, attribute, kind, needed, least, most) in enumerate(fields):
            rule = &self.rules[f]
            rule.name = <const uint8_t*>PyBytes_AS_STRING(self.names[f])
            rule.name_size = PyBytes_GET_SIZE(self.names[f])
            rule.plain_name = plain_name(self.names[f])
            rule.kind, rule.needed, rule.least, rule.most = kind, needed, least, most
            rule.column = -1
            rule.key, rule.required = f in check.key, f in check.required
            rule.time, rule.amount = f in check.times, f in check.amounts
            rule.given = rule.required or rule.key
            if kind == F_OP and f == check.op:
                self.op = f
            elif kind == F_ITEMS and f == check.items:
                self.items = f
            elif kind == F_INT and attribute == "revision":
                self.revision = f
            elif attribute in plan.attributes:
                rule.column = plan.attributes.index(attribute)
                self.columns[rule.column] = f
            else:
                rule.kind, rule.needed = F_OTHER, True  # unknown to the fast path: never taken
            rule.must = rule.needed or rule.required or rule.key
            rule.value_at = rule.column if rule.column >= plan.start else -1
            rule.value_kind = plan.kinds[rule.column] if rule.value_at >= 0 else K_OTHER
            rule.text_checks = TC_ALL
            if F_TEXT <= rule.kind <= F_AMOUNT and rule.kind != F_KEY:
                if not (rule.time or rule.amount):
                    rule.text_checks = TC_GIVEN if rule.given else TC_NONE
            self.musts += rule.must
        self.complete = all(self.columns[f] >= 0 for f in range(plan.start, plan.size))
        self.converted = self.defaulted = self.needed = 0
        for f in range(plan.start, plan.size):
            self.converted |= 1ULL << f
            if plan.defaults[f] is not None:
                self.defaulted |= 1ULL << f
            elif plan.required[f]:
                self.needed |= 1ULL << f

    def __dealloc__(self):
        free(self.rules)

    cdef inline Py_ssize_t find(
        self, const uint8_t* name, Py_ssize_t size, Py_ssize_t hint
    ) noexcept:
        """The field called `name` (-1: none), looked for from `hint` on: senders mostly
        write fields in the same order."""
        cdef Py_ssize_t k, f
        f = hint if hint < self.count else 0
        for k in range(self.count):
            if self.rules[f].name_size == size and mc_bytes_eq(
                <const char*>self.rules[f].name, <const char*>name, size
            ):
                return f
            f = f + 1 if f + 1 < self.count else 0
        return -1

    cdef bint match(
        self, Span* spans, Py_ssize_t count, Py_ssize_t* found, Value* values, bint named
    ) except -1:
        """`found[f]`: the span of field f (-1: absent), and `values` the row's values from the
        plan's `start` on (`RowPlan.convert` in the fast path), each converted as its field is
        taken. False for an unknown or repeated field, a missing field msgspec requires, a
        value msgspec or `MessageCheck` would not take as it is (see `DirectJson`), or a row
        the fast path leaves. The tag's span is passed over. `named`: the spans were read with
        this table, their `field` says which they are; else they are named first (`name`)."""
        cdef Py_ssize_t f, s, column, musts = 0
        cdef uint64_t given = 0  # the columns given a value
        cdef Rule* rule
        if not named:
            self.name(spans, count)
        if not self.complete:
            return False  # a column no field gives: `RowPlan` leaves it
        for f in range(self.count):
            found[f] = -1
        for s in range(count):
            f = spans[s].field
            if f < 0:
                if f == TAG_FIELD:
                    continue
                return False
            rule = &self.rules[f]
            if found[f] >= 0 or not takes(rule, &spans[s]):
                return False
            found[f] = s
            column = rule.value_at
            if column >= 0 and spans[s].type != J_NULL:
                if not value_of(rule, &spans[s], &values[column]):
                    return False
                given |= (<uint64_t>(values[column].type != V_NONE)) << column
            musts += rule.must
        # none missing of those that must be given
        return musts == self.musts and self.finish(values, given)

    cdef void name(self, Span* spans, Py_ssize_t count) noexcept:
        """Which field of this table each span (read with another) is, its `field`: each
        looked for from the one after the last found, and their order remembered (`order`)."""
        cdef Py_ssize_t s, f, hint = 0
        for s in range(count):
            f = spans[s].field
            if f != TAG_FIELD:
                f = spans[s].field = self.find(spans[s].name, spans[s].name_size, hint)
                if f >= 0:
                    hint = f + 1
            self.remember(s, f)

    cdef inline void remember(self, Py_ssize_t at, Py_ssize_t f) noexcept:
        """Field `f` was named at place `at` (see `order`): one compared in place next."""
        self.order[at] = f if f < 0 or self.rules[f].plain_name else NO_FIELD

    cdef inline bint finish(self, Value* values, uint64_t given) noexcept:
        """The row's values no field gave (the `given` columns did: the others take their
        default, or none), and its China dates; False when a required one is missing."""
        cdef RowPlan plan = self.plan
        cdef uint64_t missing = self.converted & ~given
        cdef Py_ssize_t i
        cdef Value* value
        cdef int64_t year, ymd
        if missing & self.needed:
            return False
        while missing:  # mostly none or one: not every column looked at again
            i = __builtin_ctzll(missing)
            values[i].type = V_DEFAULT if (self.defaulted >> i) & 1 else V_NONE
            missing &= missing - 1
        if plan.dates_at >= 0:
            value = &values[plan.dates_at]
            if value.type != V_INT or not fixed_china_dates(value.number, &year, &ymd):
                return False
            values[plan.size].type, values[plan.size].number = V_INT, year
            values[plan.size + 1].type, values[plan.size + 1].number = V_INT, ymd
        return True


cdef inline bint value_of(Rule* rule, Span* span, Value* value) noexcept:
    """The value of the rule's column (`RowPlan.convert`'s fast path) from a span that is not
    null, or False."""
    cdef int kind = rule.value_kind
    cdef Decimal d
    cdef Time t
    if span.type == J_INT:
        if kind == K_WHOLE:
            value.type, value.number = V_INT, span.number
        elif kind == K_AMOUNT and rule.kind == F_AMOUNT:
            # `MessageCheck` made it text, str(number), which `fast_units` reads
            d.whole_digits, d.places, d.number = span.digits, 0, span.number
            if not units_of(&d, &value.number):
                return False
            value.type = V_INT
        else:
            return False
    elif kind == K_TEXT or kind == K_ID_NUMBER:
        trim(span, &value.p, &value.size)
        if not value.size:
            value.type = V_NONE  # spaces only: none
        elif kind == K_ID_NUMBER and not span.ascii:
            return False
        else:
            value.type = V_TEXT if kind == K_TEXT else V_UPPER
    elif kind == K_AMOUNT:
        if span.parsed == P_UNITS:
            value.type, value.number = V_INT, span.number
            return True
        if span.parsed == P_DECIMAL:
            d = span.decimal
        elif not decimal_of(span.p, span.size, &d):
            return False
        if not units_of(&d, &value.number):
            return False
        value.type = V_INT
    elif kind == K_TIME:
        if span.parsed == P_MICROS:
            value.number = span.micros
        elif span.parsed == P_TIME:
            return False  # `utc_micros_of` said no
        elif not (span.ascii and time_of(span.p, span.size, &t)):
            return False
        elif not utc_micros_of(&t, &value.number):
            return False
        value.type = V_INT
    else:
        return False  # OTHER: Python's to convert
    return True


cdef class DirectPlan:
    """How `DirectJson` reads and keeps one message type: its tag, its `FieldTable` (and its
    lines'), its `DocumentIntake` (key, link, row plans) and its rows' defaults packed;
    `time_at`, an order's: where its row packs the app time its walk place is made of."""

    cdef bytes tag
    cdef object cls
    cdef DocumentIntake intake
    cdef FieldTable fields, lines
    cdef Py_ssize_t key_a, key_b, link_a, link_b
    cdef tuple defaults, line_defaults
    cdef Py_ssize_t row_room, line_room  # see `packed_room`
    cdef Py_ssize_t row_kept[MAX_VALUES]  # a row's packed place -> its value (`kept_values`)
    cdef Py_ssize_t line_kept[MAX_VALUES]  # a line's, likewise
    cdef Py_ssize_t time_at  # (-1: not an order)

    def __init__(self, str tag, cls, DocumentIntake intake, MessageCheck check, fields,
                 line_fields, encode, *, Py_ssize_t time_at=-1):
        self.tag, self.cls, self.intake = tag.encode(), cls, intake
        self.fields = FieldTable(fields, check, intake.rows)
        self.lines = None
        if intake.lines is not None:
            self.lines = FieldTable(line_fields, check.item, intake.lines)
        names = [name for _, name, *_ in fields]
        self.key_a, self.key_b = names.index(intake.key_a), names.index(intake.key_b)
        self.link_a = names.index(intake.link_a)
        self.link_b = names.index(intake.link_b) if intake.link_b is not None else -1
        self.defaults = packed_defaults(intake.rows, encode)
        self.line_defaults = packed_defaults(intake.lines, encode) if intake.lines else ()
        self.row_room = packed_room(intake.rows, self.defaults)
        self.line_room = packed_room(intake.lines, self.line_defaults) if intake.lines else 0
        kept_values(intake.rows, self.row_kept)
        if intake.lines is not None:
            kept_values(intake.lines, self.line_kept)
        if not -1 <= time_at < intake.rows.width:
            raise ValueError(f"a row of {intake.rows.width} values has no value {time_at}")
        self.time_at = time_at


cdef inline bint app_year_of(Value* value, int64_t* time, int64_t* year) noexcept:
    """An order's app time (`value`) in `time` and its China year in `year`, when the value is
    one `fixed_china_dates` takes (else the flush reads them: src_ext/flush.pyx `place`)."""
    cdef int64_t ymd
    time[0] = value.number
    return value.type == V_INT and fixed_china_dates(value.number, year, &ymd)


cdef void kept_values(RowPlan plan, Py_ssize_t* kept) noexcept:
    """Which value of a row of every value each place of the packed row holds."""
    cdef Py_ssize_t at
    for at in range(plan.size + (2 if plan.dates_at >= 0 else 0)):
        if plan.places[at] >= 0:  # (-1: a value the row does not keep)
            kept[plan.places[at]] = at


cdef Py_ssize_t packed_room(RowPlan plan, tuple defaults):
    """The most bytes a packed row takes but the bytes of its texts: its head, each value's
    (an int's nine bytes, a text's head's five), every default packed."""
    return 5 + 9 * plan.width + sum(len(value) for value in defaults if value is not None)


cdef tuple packed_defaults(RowPlan plan, encode):
    """Each column's default packed (None: none)."""
    return tuple(encode(value) if value is not None else None for value in plan.defaults)


@cython.final
cdef class DirectJson:
    """`MessageDecoder.checked` then `NewUpserts.take` of the usual JSON message in one pass over
    its bytes, without a message, a str per field or a row tuple (matchcore/stream/messages.py
    and matcher.py, and those two, are the reference).

    A strict subset: one JSON object of fields named without escapes, each once and known to
    its message type (`tag_field`, read wherever it is), holding null, integers of at most 18
    digits (no fraction or exponent), strings without escapes whose text is plain (`is_plain`),
    and for an order's `items` an array of such flat objects; an upsert (`op` absent or
    "upsert") whose checks pass, whose values convert in the fast paths, whose key is not in
    the store yet and that `keepable` keeps. `prepare` says False for anything else, having
    changed nothing; else `keep` stores what it made with the matcher's `NewUpserts.keep`.
    Only key and link parts become str objects (interned as `DocumentIntake` interns them; the
    latest of them kept by their bytes, `text_of`, with the latest pair of each, `pair_of`).
    A sender keeps one order of fields: each name is first compared in place with the one read
    at its place in the last message that began as this one (`guessed`, `read_field_name`),
    and looked for only when it differs.
    """

    cdef tuple plans
    cdef bytes tag_field
    cdef DirectPlan guess  # the plan whose table reads the message (`guessed`; None: none)
    cdef Py_ssize_t tag_at  # the tag's span (-1: none yet)
    cdef Span spans[MAX_FIELDS]
    cdef Span* items  # the fields of every item, one item after another
    cdef Py_ssize_t* item_starts  # item k's fields: items[item_starts[k]:item_starts[k + 1]]
    cdef Py_ssize_t items_capacity, starts_capacity
    cdef bint has_items
    cdef unsigned char* out  # the packed rows being written
    cdef Py_ssize_t out_size, out_capacity
    cdef Py_ssize_t* firsts  # where each kept line's first value is packed: start, end
    cdef Py_ssize_t firsts_capacity
    cdef public Py_ssize_t taken  # messages kept (tests see that the path is used)
    cdef CachedText* texts  # the key and link texts made lately (see `text_of`)
    cdef Py_ssize_t message_size  # of the message read (`put_row`)
    cdef _Route route  # what `prepare` made, for `keep`
    cdef tuple key
    cdef Py_hash_t key_hash, link_hash  # (-1: not known)
    cdef object revision, link
    cdef bytes packed
    cdef bint timed  # an order: its app time and year (see `keep`)
    cdef int64_t app_time, app_year

    def __init__(self, plans, str tag_field):
        self.plans, self.tag_field = tuple(plans), tag_field.encode()
        for plan in self.plans:
            if not isinstance(plan, DirectPlan):
                raise TypeError("DirectJson takes DirectPlans")
            if self.tag_field in (<DirectPlan>plan).fields.names:
                raise ValueError("a message field named as the tag field")
        if not plain_name(self.tag_field):
            raise ValueError("a tag field named with a quote, backslash or control character")

    def __dealloc__(self):
        cdef Py_ssize_t e
        free(self.items)
        free(self.item_starts)
        free(self.out)
        free(self.firsts)
        if self.texts != NULL:
            for e in range(1 << TEXT_CACHE_BITS):
                Py_XDECREF(self.texts[e].text)
                Py_XDECREF(self.texts[e].pair)
            free(self.texts)

    def take(self, NewUpserts upserts, matcher, raw, now):
        """`prepare` then `keep` (for tests): what `keep` gives, or None having changed
        nothing."""
        if not self.prepare(upserts, raw):
            return None
        return self.store(upserts, matcher, now)

    def read(self, NewUpserts upserts, bytes raw):
        """`prepare` for the one-message intakes (`feed`, `DurableMatcher.offer`): True when
        `raw` is the usual new upsert, which `store` then takes."""
        return self.prepare(upserts, raw)

    def store(self, NewUpserts upserts, matcher, now):
        """`keep` what `read` read, arrived at `now`, and count it."""
        result = self.keep(upserts, matcher, now, matcher._dirty)
        count_accepted(matcher.counters._values, 1)
        return result

    cdef object keep(self, NewUpserts upserts, object matcher, object now, dict dirty):
        """Store what `prepare` made, arrived at `now` (`dirty`: as `NewUpserts.take`'s), not
        counted (`NewUpserts.keep`)."""
        route, key, revision, link, packed = (
            self.route, self.key, self.revision, self.link, self.packed
        )
        self.route = self.key = self.revision = self.link = self.packed = None
        self.taken += 1
        cdef Slot slot = upserts.keep(
            matcher, route, key, self.key_hash, revision, link, self.link_hash, packed, now, dirty
        )
        if self.timed:
            # The order's walk place, from the values its row was packed from: not read back
            # out of the packed row at the flush (src_ext/flush.pyx `place`, ~670
            # instructions).
            set_time_place(slot, <int32_t>self.app_year, self.app_time)
        return upserts.accepted

    cdef bint prepare(self, NewUpserts upserts, object raw) except -1:
        """Read `raw`; True when it is the usual new upsert (see the class)."""
        cdef Py_ssize_t count, items = 0
        cdef Py_ssize_t found[MAX_FIELDS]
        cdef Value values[MAX_VALUES]
        cdef DirectPlan plan = None
        cdef FieldTable fields
        cdef Span* tag = NULL
        cdef _Route route
        if not PyBytes_CheckExact(raw):
            return False
        self.message_size = PyBytes_GET_SIZE(raw)
        count = self.read_object(<const uint8_t*>PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw))
        if count < 0 or self.tag_at < 0:
            return False
        tag = &self.spans[self.tag_at]
        if tag.type != J_TEXT:
            return False  # msgspec says why
        for candidate in self.plans:
            if same_bytes((<DirectPlan>candidate).tag, tag.p, tag.size):
                plan = <DirectPlan>candidate
                break
        if plan is None:
            return False
        route = upserts.routes.get(plan.cls)
        if route is None or route.intake is not plan.intake:
            return False
        fields = plan.fields
        if not fields.match(self.spans, count, found, values, plan is self.guess):
            return False
        key = self.pair_of(  # its hash for `keep` too
            &self.spans[found[plan.key_a]], &self.spans[found[plan.key_b]], &self.key_hash
        )
        if upserts.kept(route, key, self.key_hash):
            return False  # a new version of a kept document: the Python path
        link = self.link_of(plan, found)
        if link is UNHANDLED or not keepable(plan.intake, link):
            return False
        self.out_size = 0
        if plan.lines is not None:
            self.put_head(2)  # (row, lines)
        self.put_row(plan.intake.rows, plan.row_kept, values, plan.defaults, plan.row_room)
        self.timed = plan.time_at >= 0 and app_year_of(
            &values[plan.row_kept[plan.time_at]], &self.app_time, &self.app_year
        )
        if plan.lines is not None:
            if fields.items >= 0 and found[fields.items] >= 0:
                items = self.spans[found[fields.items]].digits
            if not self.put_lines(plan, items):
                return False
        if fields.revision >= 0 and found[fields.revision] >= 0:
            self.revision = self.spans[found[fields.revision]].number
        else:
            self.revision = fields.rules[fields.revision].least if fields.revision >= 0 else 0
        self.route, self.key, self.link = route, key, link
        self.packed = PyBytes_FromStringAndSize(<char*>self.out, self.out_size)
        return True

    # --- reading -------------------------------------------------------------------------------

    cdef Py_ssize_t read_object(self, const uint8_t* p, Py_ssize_t n) except -2:
        """The fields of the JSON object that is all of `p` (but white space) into `spans`:
        their number, or -1. They are read with the table of the `guessed` plan."""
        cdef Py_ssize_t count = 0, i = json_space(p, 0, n)
        self.has_items = False
        self.tag_at = -1
        if i >= n or p[i] != 0x7B:  # {
            return -1
        self.guess = self.guessed(p, json_space(p, i + 1, n), n)
        i = self.read_fields(
            p, i, n, self.spans, &count, self.guess.fields if self.guess is not None else None,
            True,
        )
        if i < 0 or json_space(p, i, n) != n:
            return -1
        return count

    cdef DirectPlan guessed(self, const uint8_t* p, Py_ssize_t i, Py_ssize_t n):
        """The plan whose last message began with the name at `i`: mostly the message's (its
        tag, mostly last, says); None when none did."""
        cdef FieldTable fields
        cdef Py_ssize_t f
        for plan in self.plans:
            fields = (<DirectPlan>plan).fields
            f = fields.order[0]
            if f >= 0 and name_at(p, i, n, fields.rules[f].name, fields.rules[f].name_size):
                return <DirectPlan>plan
        return None

    cdef inline Py_ssize_t read_field_name(
        self, const uint8_t* p, Py_ssize_t i, Py_ssize_t n, Span* span, FieldTable table,
        Py_ssize_t at, bint top
    ) noexcept:
        """`read_name`, and which field of `table` the name is (`span.field`; TAG_FIELD: the
        tag of the `top` object; NO_FIELD: unknown, or no table): first compared in place
        with the name `table` read at place `at` last (senders keep one order), else looked
        for, and remembered for the next object."""
        cdef Py_ssize_t f = table.order[at] if table is not None else NO_FIELD
        if f >= 0 and name_at(p, i, n, table.rules[f].name, table.rules[f].name_size):
            span.name, span.name_size, span.field = p + i + 1, table.rules[f].name_size, f
            return i + span.name_size + 2
        if f == TAG_FIELD and name_at(
            p, i, n, <const uint8_t*>PyBytes_AS_STRING(self.tag_field),
            PyBytes_GET_SIZE(self.tag_field),
        ):
            span.name, span.name_size = p + i + 1, PyBytes_GET_SIZE(self.tag_field)
            span.field = f
            return i + span.name_size + 2
        i = read_name(p, i, n, span)
        if i < 0:
            return -1
        if top and same_bytes(self.tag_field, span.name, span.name_size):
            f = TAG_FIELD
        elif table is not None:
            f = table.find(span.name, span.name_size, at)
        else:
            f = NO_FIELD
        span.field = f
        if table is not None:
            table.remember(at, f)
        return i

    cdef Py_ssize_t read_fields(
        self, const uint8_t* p, Py_ssize_t i, Py_ssize_t n, Span* spans, Py_ssize_t* count,
        FieldTable table, bint top
    ) except -2:
        """The fields of the object at `i` (its brace), named with `table` (`read_field_name`):
        their number in `count`, the index after it, or -1. Only the `top` object may hold an
        array (of objects, see `read_items`) and the tag (once)."""
        # An index is at most `n`, where the input's NUL is: no byte of JSON's syntax, it
        # ends the input without a test of the index.
        cdef Span* span
        cdef uint8_t c
        cdef Py_ssize_t k = 0
        count[0] = 0
        i = json_space(p, i + 1, n)
        if p[i] == 0x7D:  # }
            return i + 1
        while True:
            # senders mostly write no white space: a name's quote and the colon after it are
            # looked for before it is
            if p[i] != 0x22:
                i = json_space(p, i, n)
                if p[i] != 0x22:
                    return -1
            if k == MAX_FIELDS:
                return -1
            span = &spans[k]
            i = self.read_field_name(p, i, n, span, table, k, top)
            if i < 0:
                return -1
            if span.field == TAG_FIELD:
                if self.tag_at >= 0:
                    return -1  # twice: msgspec says why
                self.tag_at = k
            if p[i] != 0x3A:  # :
                i = json_space(p, i, n)
                if p[i] != 0x3A:
                    return -1
            i = json_space(p, i + 1, n)
            c = p[i]
            if c == 0x22:
                i = read_text(p, i, n, span)
            elif c == 0x2D or 0x30 <= c <= 0x39:
                i = read_int(p, i, n, span)
            elif c == 0x6E and i + 4 <= n and memcmp(p + i, b"null", 4) == 0:
                span.type = J_NULL
                i += 4
            elif c == 0x5B and top:  # [
                i = self.read_items(p, i, n, span)
            else:
                return -1  # true, false, a float, an object: msgspec's
            if i < 0:
                return -1
            k += 1
            i = json_space(p, i, n)
            if p[i] == 0x2C:  # ,
                i += 1
            elif p[i] == 0x7D:
                count[0] = k
                return i + 1
            else:
                return -1

    cdef Py_ssize_t read_items(
        self, const uint8_t* p, Py_ssize_t i, Py_ssize_t n, Span* span
    ) except -2:
        """An array of flat objects at `i` (its bracket) into `items`: the index after it, or
        -1 (also for a second array)."""
        cdef Py_ssize_t count = 0, total = 0, k = 0
        cdef FieldTable lines = self.guess.lines if self.guess is not None else None
        if self.has_items:
            return -1
        self.has_items = True
        self.reserve_starts(1)
        self.item_starts[0] = 0
        i = json_space(p, i + 1, n)
        if i < n and p[i] == 0x5D:  # ]
            i += 1
        else:
            while True:
                if i >= n or p[i] != 0x7B:
                    return -1
                self.reserve_items(total + MAX_FIELDS)  # read in place: an item has at most that
                i = self.read_fields(p, i, n, self.items + total, &count, lines, False)
                if i < 0:
                    return -1
                total += count
                k += 1
                self.reserve_starts(k + 1)
                self.item_starts[k] = total
                i = json_space(p, i, n)
                if i >= n:
                    return -1
                if p[i] == 0x2C:
                    i = json_space(p, i + 1, n)
                elif p[i] == 0x5D:
                    i += 1
                    break
                else:
                    return -1
        span.type, span.digits = J_ITEMS, k
        return i

    # --- what is kept --------------------------------------------------------------------------

    cdef object text_of(self, Span* span, bint upper, bint intern, CachedText** held=NULL):
        """Canonical text of plain text (`fast_text`, or `fast_id_number` of ASCII text when
        `upper`), interned when `intern` (see matcher.py `_shared_key`); the caller has made sure
        something is left once trimmed. `held`: the cache entry now holding it (NULL: none)."""
        cdef const uint8_t* p
        cdef Py_ssize_t size
        cdef CachedText* entry = NULL
        trim(span, &p, &size)
        if held != NULL:
            held[0] = NULL
        # Codes repeat, and an order number comes back in its payment and waybill: a text
        # made lately is looked up by its bytes, not decoded, hashed (and interned) again.
        if size <= CACHED_SIZE:
            if self.texts == NULL:
                self.texts = <CachedText*>calloc(1 << TEXT_CACHE_BITS, sizeof(CachedText))
                if self.texts == NULL:
                    raise MemoryError()
            entry = &self.texts[text_slot(p, size, upper)]
            if (
                entry.text != NULL and entry.size == size and entry.upper == upper
                and mc_bytes_eq(<const char*>entry.bytes, <const char*>p, size)
            ):
                if intern and not PyUnicode_CHECK_INTERNED(<object>entry.text):
                    text = interned(<object>entry.text)
                    Py_INCREF(text)
                    Py_XDECREF(entry.text)
                    entry.text = <PyObject*>text
                if held != NULL:
                    held[0] = entry
                return <object>entry.text
        if upper:
            text = PyUnicode_New(size, 127)
            copy_upper(<uint8_t*>PyUnicode_DATA(text), p, size)
        elif span.ascii and size > 1:  # made as decoding makes it (but one character: shared)
            text = PyUnicode_New(size, 127)
            mc_copy(<char*>PyUnicode_DATA(text), p, size)
        else:
            text = PyUnicode_DecodeUTF8(<const char*>p, size, NULL)
        if intern:
            text = interned(text)
        if entry != NULL:
            Py_XDECREF(entry.text)
            Py_XDECREF(entry.pair)  # a pair of the text it held
            Py_INCREF(text)
            entry.text, entry.size, entry.upper, entry.pair = <PyObject*>text, size, upper, NULL
            mc_copy(<char*>entry.bytes, p, size)
            if held != NULL:
                held[0] = entry
        return text

    cdef tuple pair_of(self, Span* a, Span* b, Py_hash_t* pair_hash):
        """`text_pair` of the texts of `a` (interned) and `b` (`text_of`), and its hash in
        `pair_hash`. An order's key comes back as its payment's and waybill's link: the pair
        made last of the same two texts (kept with `b`'s) is given again, hashed once, and the
        matcher's dicts holding it as a key find it as it is, without comparing texts."""
        cdef CachedText* entry = NULL
        first = self.text_of(a, False, True)
        second = self.text_of(b, False, False, &entry)
        if (
            entry != NULL and entry.pair != NULL
            and PyTuple_GET_ITEM(<object>entry.pair, 0) == <PyObject*>first
            and PyTuple_GET_ITEM(<object>entry.pair, 1) == <PyObject*>second
        ):
            pair_hash[0] = entry.pair_hash
            return <tuple>entry.pair
        pair = text_pair(first, second)
        pair_hash[0] = hash(pair)
        if entry != NULL:
            Py_INCREF(pair)
            Py_XDECREF(entry.pair)
            entry.pair, entry.pair_hash = <PyObject*>pair, pair_hash[0]
        return pair

    cdef inline Span* given_text(self, Py_ssize_t* found, Py_ssize_t f):
        """The text of field `f` when it has some once trimmed, else NULL."""
        if f < 0 or found[f] < 0:
            return NULL
        if self.spans[found[f]].type != J_TEXT or all_spaces(&self.spans[found[f]]):
            return NULL
        return &self.spans[found[f]]

    cdef object link_of(self, DirectPlan plan, Py_ssize_t* found):
        """`DocumentIntake.linked`; UNHANDLED where that takes a Python path. A pair of two
        texts comes with its hash in `link_hash` (else -1: not known)."""
        cdef Span* a = self.given_text(found, plan.link_a)
        cdef Span* b = self.given_text(found, plan.link_b)
        self.link_hash = -1
        if plan.intake.link == L_BUYER:
            if a == NULL:
                return None
            return self.text_of(a, True, True) if a.ascii else UNHANDLED
        if a != NULL and b != NULL:
            return self.pair_of(a, b, &self.link_hash)
        if plan.intake.link == L_WAYBILL:
            return text_pair(
                self.text_of(a, False, True) if a != NULL else "",
                self.text_of(b, False, False) if b != NULL else "",
            )
        if a == NULL and b == NULL:
            return None
        return ("", "")

    # --- packing -------------------------------------------------------------------------------

    cdef int reserve(self, Py_ssize_t extra) except -1:
        """Room for `extra` more bytes in `out`."""
        return grow(<void**>&self.out, &self.out_capacity, self.out_size + extra, 1, 1024)

    cdef int reserve_items(self, Py_ssize_t count) except -1:
        return grow(<void**>&self.items, &self.items_capacity, count, sizeof(Span), 64)

    cdef int reserve_starts(self, Py_ssize_t count) except -1:
        return grow(
            <void**>&self.item_starts, &self.starts_capacity, count, sizeof(Py_ssize_t), 16
        )

    cdef int reserve_firsts(self, Py_ssize_t count) except -1:
        """Room for `count` (start, end) pairs in `firsts`."""
        return grow(
            <void**>&self.firsts, &self.firsts_capacity, count, 2 * sizeof(Py_ssize_t), 16
        )

    cdef int put_head(self, Py_ssize_t count) except -1:
        """The head of an array of `count` values (as msgspec packs a tuple or list)."""
        self.reserve(5)
        self.out_size += put_array_head(self.out + self.out_size, count)
        return 0

    cdef inline void put_text(self, const uint8_t* p, Py_ssize_t size, bint upper) noexcept:
        """UTF-8 text as msgspec packs a str (ASCII letters upper-cased when `upper`), in the
        room `put_row` made."""
        cdef unsigned char* q = self.out + self.out_size
        q += put_str_head(q, size)
        if upper:
            copy_upper(q, p, size)
        else:
            mc_copy(<char*>q, p, size)
        self.out_size = (q - self.out) + size

    cdef inline void put_value(self, Value* value, tuple defaults, Py_ssize_t at) noexcept:
        """One value of a row, in the room `put_row` made."""
        cdef bytes packed
        if value.type == V_NONE:
            self.out[self.out_size] = 0xC0
            self.out_size += 1
        elif value.type == V_INT:
            self.out_size += put_int(self.out + self.out_size, value.number)
        elif value.type == V_DEFAULT:
            packed = <bytes>defaults[at]
            mc_copy(
                <char*>self.out + self.out_size, PyBytes_AS_STRING(packed),
                PyBytes_GET_SIZE(packed),
            )
            self.out_size += PyBytes_GET_SIZE(packed)
        else:
            self.put_text(value.p, value.size, value.type == V_UPPER)

    cdef Py_ssize_t put_row(
        self, RowPlan plan, const Py_ssize_t* kept, Value* values, tuple defaults,
        Py_ssize_t room,
    ) except -1:
        """The row's kept values (`kept`: see `kept_values`), packed as msgspec packs the
        tuple (`RowPlan.convert`, then `DocumentIntake.packed`): where its first value ends.
        `room`: what it takes at most but its texts (`packed_room`)."""
        cdef Py_ssize_t place, first_end = self.out_size
        # its texts are bytes of the message, apart: room for all of it, not a check a value
        self.reserve(room + self.message_size)
        self.out_size += put_array_head(self.out + self.out_size, plan.width)
        for place in range(plan.width):
            self.put_value(&values[kept[place]], defaults, kept[place])
            if place == 0:
                first_end = self.out_size
        return first_end

    cdef bint put_lines(self, DirectPlan plan, Py_ssize_t count) except -1:
        """The order's `count` lines packed after its row, a repeated first value (gnum)
        keeping the first line: `DocumentIntake.convert`. False when a line is not in the fast
        path."""
        cdef RowPlan lines = plan.intake.lines
        cdef Py_ssize_t found[MAX_FIELDS]
        cdef Value values[MAX_VALUES]
        cdef Py_ssize_t head = self.out_size, body, k, j, start, end, first, kept = 0
        cdef bint repeated
        self.reserve(5)
        self.out_size += 5  # room for the array's head, known once the lines are
        body = self.out_size
        for k in range(count):
            start, end = self.item_starts[k], self.item_starts[k + 1]
            if not plan.lines.match(
                self.items + start, end - start, found, values, plan is self.guess
            ):
                return False
            start = self.out_size
            first = start + (1 if lines.width < 16 else 3)  # after its head
            end = self.put_row(
                lines, plan.line_kept, values, plan.line_defaults, plan.line_room
            )
            repeated = False
            for j in range(kept):
                if (
                    self.firsts[2 * j + 1] - self.firsts[2 * j] == end - first
                    and memcmp(self.out + self.firsts[2 * j], self.out + first, end - first) == 0
                ):
                    repeated = True  # same packed value, same value (ints and text only)
                    break
            if repeated:
                self.out_size = start
            else:
                self.reserve_firsts(kept + 1)
                self.firsts[2 * kept], self.firsts[2 * kept + 1] = first, end
                kept += 1
        end = self.out_size
        self.out_size = head
        self.put_head(kept)
        memmove(self.out + self.out_size, self.out + body, end - body)
        self.out_size += end - body
        return True


cdef inline object interned(object text):
    """`sys.intern(text)` without a call through Python (what it runs): interned text is one
    copy of a code however many documents and indexes hold it."""
    cdef PyObject* held = <PyObject*>text
    Py_INCREF(text)  # `held`'s own reference, which interning may swap for the kept copy's
    PyUnicode_InternInPlace(&held)
    result = <object>held
    Py_DECREF(result)
    return result


cdef inline bint same_bytes(bytes known, const uint8_t* p, Py_ssize_t size) noexcept:
    """Whether `known` is the `size` bytes at `p` (field names and tags: short, compared
    without a libc call)."""
    return PyBytes_GET_SIZE(known) == size and mc_bytes_eq(
        PyBytes_AS_STRING(known), <const char*>p, size
    )


# --- many messages offered in one call -----------------------------------------------------------


cdef inline bint small_int(object value, long long* out) except -1:
    """Whether `value` is an int within 2**62 of zero (`out`: it): sums of two such do not
    overflow."""
    cdef int overflow = 0
    if not PyLong_CheckExact(value):
        return False
    out[0] = PyLong_AsLongLongAndOverflow(value, &overflow)
    return not overflow and -(1LL << 62) < out[0] < (1LL << 62)


@cython.freelist(4)  # one a call: offered one message a call, a new one each message
cdef class Tally:
    """What one `Offers` call did that its caller (`DurableMatcher.offer_many`, `offer`)
    books once, not per message: log records queued, messages logged and taken (`taken`
    counts them for the snapshot interval, as `offer` does), and the newest input position
    seen (`moved`: one was). Kept up to date message by message, so it is right when a
    message raises. `frame_all` counts its records in one too."""

    cdef public Py_ssize_t records, taken
    cdef public bint moved
    cdef public object position
    cdef Py_ssize_t uncounted  # taken by the direct path, not in the matcher's counters yet

    def __init__(self):
        self.records = self.taken = 0
        self.moved = False
        self.position = None


@cython.freelist(4)  # (as `Tally`)
cdef class _Pass:
    """What one `Offers` call reads of the matcher once, not per message (`Offers.started`):
    its intakes and flush settings, and its dirty set and counters' dict, read again only
    after a call that may replace them (a flush, a callback: `stale`; not `clock`, `encode`
    or `decode`), and whether its events were looked at since a call that may make some
    (`unseen`): read per message, these attributes cost ~1K instructions a message."""

    cdef Tally tally
    cdef object durable, matcher, upserts
    cdef LogBuffer queue
    cdef NewUpserts compiled  # `upserts` when compiled (called in C)
    cdef DirectJson json  # the matcher's `_direct_json` when it and `compiled` are built
    cdef bint auto_flush, stale, unseen
    cdef Py_ssize_t batch_size
    cdef dict dirty, counts


cdef class Offers:
    """`DurableMatcher.offer` of each of many messages in turn, in one loop, or of one
    (matchcore/stream/state.py: `offer` and `reject`, and `StreamMatcher.take` in
    matcher.py, are the reference; `offer_many` and `offer` call this and book the `Tally`).

    Per message: the usual JSON message read straight into the matcher's state (the matcher's
    `_direct_json`, with its compiled `NewUpserts`; None: off), else the checked message
    (`decoder`, else `decode`, the Python path, which raises
    `bad_message` for a dead letter: `durable.reject` then logs it), its `INPUT` record
    queued in `queue` (None: no log kept), taken into the matcher (its compiled `NewUpserts`,
    else `_apply`: `StreamMatcher.take`), a flush when the dirty set reaches the batch size (`auto_flush` and
    `batch_size` are read once a call: nothing changes them while messages are offered), a
    value batch would reject handed to `durable.on_dead_letter`, and the verdicts of a flush
    collected (`durable._collect`). A message that is not bytes is packed by `encode` first.

    What the direct path takes is counted in the matcher's counters at once, before any call
    that may read them (all but `clock`, `encode` and indexing `raws` and `positions`, which
    do not) and when the call ends: counted one by one, ~400 instructions a message.
    """

    cdef MessageDecoder decoder
    cdef object decode, bad_message, encode, python_record, accepted
    cdef bytes kind

    def __init__(
        self, MessageDecoder decoder, decode, bad_message, encode, bytes kind, python_record,
        accepted
    ):
        self.decoder, self.decode, self.bad_message = decoder, decode, bad_message
        self.encode, self.kind, self.python_record = encode, kind, python_record
        self.accepted = accepted

    def offer(self, Tally tally, durable, matcher, LogBuffer queue, raws, positions, now):
        """Offer every message of `raws` (with the position of the same index in `positions`,
        or None for all when it is None) arrived at `now` (None: `matcher.clock()` each)."""
        cdef _Pass run = self.started(
            tally, durable, matcher, queue, matcher._new_upserts, matcher._direct_json,
            matcher.auto_flush, matcher.batch_size
        )
        try:
            self.offer_each(run, raws, positions, now)
        finally:  # also when a message raised
            self.count_taken(run)

    def offer_one(
        self, Tally tally, durable, matcher, LogBuffer queue, raw, position, now, upserts,
        direct, bint auto_flush, Py_ssize_t batch_size, dict dirty, dict counts
    ):
        """`offer` of one message, `raw` at `position`, arrived at `now` (None:
        `matcher.clock()`): its FeedResult. What `started` takes and the matcher's dirty set
        and counters' dict are read by the caller (`DurableMatcher.offer`): in Python, whose
        attribute reads are specialised, ~900 instructions a message less than here."""
        cdef _Pass run = self.started(
            tally, durable, matcher, queue, upserts, direct, auto_flush, batch_size
        )
        run.dirty, run.counts, run.stale = dirty, counts, False
        try:
            return self.offer_message(
                run, raw, position, matcher.clock() if now is None else now
            )
        finally:
            self.count_taken(run)

    cdef _Pass started(
        self, Tally tally, durable, matcher, LogBuffer queue, upserts, direct,
        bint auto_flush, Py_ssize_t batch_size
    ):
        """What a call reads of `matcher` once (see `_Pass`): `upserts`, its `_new_upserts`
        (compiled, None, or a stand-in of tests), `direct`, its `_direct_json` (None: every
        message decoded first, tests' switch), and its `auto_flush` and `batch_size`."""
        cdef _Pass run = _Pass.__new__(_Pass)
        run.tally, run.durable, run.matcher, run.queue = tally, durable, matcher, queue
        run.upserts = upserts
        run.compiled = upserts if isinstance(upserts, NewUpserts) else None
        run.json = direct if run.compiled is not None and isinstance(direct, DirectJson) else None
        run.auto_flush, run.batch_size = auto_flush, batch_size
        run.stale = run.unseen = True
        return run

    cdef inline int count_taken(self, _Pass run) except -1:
        """Count what the direct path took in the matcher's counters (`run.counts`: the
        matcher's while any is uncounted, since they are counted before any call that may
        replace them)."""
        count_accepted(run.counts, run.tally.uncounted)
        run.tally.uncounted = 0
        return 0

    cdef int offer_each(self, _Pass run, raws, positions, now) except -1:
        """`offer`, but for the count of what the direct path took last (`Tally.uncounted`),
        which `offer` counts at the end."""
        cdef Py_ssize_t at, count = len(raws)
        cdef long long first = 0, step = 0, last = 0
        clock = run.matcher.clock
        if positions is not None and len(positions) != count:
            raise ValueError(f"{count} messages but {len(positions)} positions")
        # A range of positions (what the CLI and the harness hand over) made in C: indexing it
        # computes with Python ints, a few hundred instructions a message.
        cdef bint ranged = (
            type(positions) is range and count > 0 and small_int(positions.start, &first)
            and small_int(positions.step, &step) and small_int(positions[count - 1], &last)
        )
        for at in range(count):
            raw = raws[at]
            if ranged:
                position = PyLong_FromLongLong(first + at * step)
            else:
                position = positions[at] if positions is not None else None
            self.offer_message(run, raw, position, clock() if now is None else now)
        return 0

    cdef object offer_message(self, _Pass run, raw, position, arrival):
        """Offer `raw` at `position`, arrived at `arrival`: its FeedResult. What the direct
        path takes is left uncounted in `run.tally` (see `count_taken`)."""
        cdef Tally tally = run.tally
        cdef bint in_python
        matcher = run.matcher
        if run.stale:
            run.dirty, run.counts, run.stale = matcher._dirty, matcher.counters._values, False
        if not isinstance(raw, bytes):
            raw = self.encode(raw)
        direct_upsert = run.json is not None and run.json.prepare(run.compiled, raw)
        if not direct_upsert:
            self.count_taken(run)  # what follows may read the counters
            message = self.decoder.checked(raw)
            if message is None:
                try:
                    message = self.decode(raw)
                except self.bad_message as exc:
                    run.stale = run.unseen = True  # (it calls back)
                    result = run.durable.reject(exc.reason, position, raw)
                    self.moved(tally, position)
                    return result
        if run.queue is not None:
            put_input(run.queue, self.kind, self.python_record, arrival, position, raw)
        tally.records += 1
        if direct_upsert:  # the usual new upsert, read straight into the state
            result = run.json.keep(run.compiled, matcher, arrival, run.dirty)
            tally.uncounted += 1
        elif run.compiled is not None:
            result = run.compiled.take(matcher, message, arrival, run.dirty, run.counts)
        elif run.upserts is not None:
            result = run.upserts.apply(matcher, message, arrival)
        else:
            result = None
        in_python = run.compiled is None or result is None
        if result is None:
            result = matcher._apply(message, arrival)
        if in_python:  # the Python path (or a stand-in of tests): read again, to be safe
            run.dirty, run.counts, run.unseen = matcher._dirty, matcher.counters._values, True
        if run.auto_flush and len(run.dirty) >= run.batch_size:
            self.count_taken(run)
            matcher.flush(arrival)
            run.stale = run.unseen = True
        if result is not self.accepted and result.status == "dead":  # (not direct)
            run.durable.on_dead_letter(result.reason or "", position, raw)
            run.stale = run.unseen = True
        self.moved(tally, position)
        tally.taken += 1
        if run.unseen:
            run.unseen = False
            if matcher._events:  # the feed flushed
                self.count_taken(run)
                run.durable._collect()
        return result

    cdef inline void moved(self, Tally tally, object position):
        """The input moved on to `position` (None: it has none)."""
        if position is not None:
            tally.position = position
            tally.moved = True
