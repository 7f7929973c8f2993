# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Streaming intake in C: message field values -> checks passed and canonical values; a
document -> the key, link and packed rows the stream matcher keeps; the usual message -> decoded
and checked, and taken into the matcher's state, each in one call; an input -> its log record.

Each fast path here handles the common form of a value (text without anything NFKC or white
space collapsing could change, plain decimal amounts, ISO 8601 and customs times) and hands
anything else to its pure-Python twin in matchcore/stream/canonical.py, messages.py, matcher.py
or state.py, which stays the reference: the values, and every message about a bad value, come
from it. tests/stream/test_stream_intake.py compares the two on generated values.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy
from china_dates cimport fixed_china_dates

import sys

import msgspec
import msgspec.structs

cdef object astuple = msgspec.structs.astuple

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
    long long PyLong_AsLongLongAndOverflow(object, int*) except? -1

cdef enum Kind:  # which fast path a `Converter` runs (`RowPlan` kinds too)
    K_TEXT, K_ID_NUMBER, K_AMOUNT, K_WHOLE, K_TIME, K_OTHER, K_CHINA_DATES, K_VALID_TIME, K_MONEY_TEXT

TEXT, ID_NUMBER, AMOUNT, WHOLE, TIME, OTHER = K_TEXT, K_ID_NUMBER, K_AMOUNT, K_WHOLE, K_TIME, K_OTHER
CHINA_DATES, VALID_TIME, MONEY_TEXT = K_CHINA_DATES, K_VALID_TIME, K_MONEY_TEXT

cdef object UNHANDLED = object()  # a fast path's "not the common form: ask the Python twin"

cdef enum:
    SECOND = 1_000_000  # microseconds
    DAY_SECONDS = 86_400
    CHINA_OFFSET = 8 * 3600  # seconds: Asia/Shanghai, fixed since 1992 (see canonical.py)
    MIN_YEAR = 1900  # times outside [MIN_YEAR, MAX_YEAR] are left to Python, which also
    MAX_YEAR = 9000  # knows the zone's rules before 1992 and the ends of the calendar
    MAX_SIGNIFICANT = 18  # digits: every 18-digit number fits in int64

cdef int64_t INT64_MAX = 9223372036854775807
cdef int64_t DAYS_1992 = 8035  # 1992-01-01 - 1970-01-01 in days


# --- text ------------------------------------------------------------------------------------

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
    cdef uint8_t* q
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
    q = <uint8_t*>PyUnicode_DATA(upper)
    for i in range(n):
        q[i] = p[i] - 0x20 if 0x61 <= p[i] <= 0x7A else p[i]
    return upper


# --- amounts ---------------------------------------------------------------------------------

cdef struct Decimal:
    int64_t whole_digits  # significant digits before the point (leading zeros not counted)
    int64_t places  # digits after the point, trailing zeros not counted
    int64_t number  # the significant digits as an integer (valid when they are <= 18)


cdef inline bint plain_decimal(object value, Decimal* out):
    """ASCII digits, optionally a point and more digits (at least one digit before it): the
    amount form nearly every sender uses, needing neither a regex nor trimming."""
    cdef Py_ssize_t i = 0, n, last = 0, start
    cdef const uint8_t* p
    cdef int64_t number = 0, significant = 0
    if not PyUnicode_CheckExact(value) or not PyUnicode_IS_ASCII(value):
        return False
    n = PyUnicode_GET_LENGTH(value)
    p = <const uint8_t*>PyUnicode_DATA(value)
    while i < n and 0x30 <= p[i] <= 0x39:
        if significant or p[i] != 0x30:
            significant += 1
            if significant <= MAX_SIGNIFICANT:
                number = number * 10 + (p[i] - 0x30)
        i += 1
    if i == 0:
        return False
    out.whole_digits = significant
    out.places = 0
    if i < n:
        if p[i] != 0x2E:
            return False
        i += 1
        start = i
        while i < n and 0x30 <= p[i] <= 0x39:
            if p[i] != 0x30:
                last = i - start + 1
            i += 1
        if i < n:
            return False
        out.places = last
        for i in range(start, start + last):
            if significant or p[i] != 0x30:
                significant += 1
                if significant <= MAX_SIGNIFICANT:
                    number = number * 10 + (p[i] - 0x30)
    out.number = number if significant <= MAX_SIGNIFICANT else -1
    return True


cdef object fast_units(object value):
    """`units` of a plain decimal with at most 4 places that fits: exact ten-thousandths."""
    cdef Decimal d
    cdef int64_t scale = 1, place
    if not plain_decimal(value, &d) or d.places > 4 or d.number < 0:
        return UNHANDLED  # odd form, too many places, or possibly too large: Python decides
    for place in range(d.places, 4):
        scale *= 10
    if d.number > INT64_MAX // scale:
        return UNHANDLED  # too large: Python says so
    return d.number * scale


cdef int fast_money_text(object value):
    """1 when the amount text matches the message pattern `_MONEY_TEXT`, -1 when unsure."""
    cdef Decimal d
    if plain_decimal(value, &d) and d.whole_digits <= 14 and d.places <= 4:
        return 1
    return -1


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


cdef inline int digits(const uint8_t* p, Py_ssize_t n, Py_ssize_t at, int count):
    """The number written by `count` ASCII digits at `at`, or -1."""
    cdef int value = 0, i
    if at + count > n:
        return -1
    for i in range(count):
        if not 0x30 <= p[at + i] <= 0x39:
            return -1
        value = value * 10 + (p[at + i] - 0x30)
    return value


cdef inline bint leap(int year):
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


cdef inline int month_days(int year, int month):
    if month == 2:
        return 29 if leap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


cdef inline bint valid_fields(Time* t):
    """The ranges `datetime` accepts, and the years the fast paths handle."""
    return (
        MIN_YEAR <= t.year <= MAX_YEAR
        and 1 <= t.month <= 12
        and 1 <= t.day <= month_days(t.year, t.month)
        and t.hour <= 23
        and t.minute <= 59
        and t.second <= 59
    )


cdef bint parse_customs(const uint8_t* p, Py_ssize_t n, Time* t):
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


cdef bint parse_iso(const uint8_t* p, Py_ssize_t n, Time* t):
    """ISO 8601 as `ISO_TIME` reads it: date, optional [T ]HH:MM[:SS[.fraction]], optional
    space, optional Z or +-HH[[:]MM]. The whole text must be read and the fields valid."""
    cdef Py_ssize_t i = 10, start
    cdef int hh, mm, scale, sign
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


cdef bint parse_time(object value, Time* t):
    """A time in one of the common forms, ASCII, with nothing to trim."""
    cdef const uint8_t* p
    cdef Py_ssize_t n
    if not PyUnicode_CheckExact(value) or not PyUnicode_IS_ASCII(value):
        return False
    p = <const uint8_t*>PyUnicode_DATA(value)
    n = PyUnicode_GET_LENGTH(value)
    if n >= 10 and p[4] == 0x2D:
        return parse_iso(p, n, t)
    return parse_customs(p, n, t)


cdef inline int64_t days_from_civil(int64_t y, int64_t m, int64_t d):
    """Days since 1970-01-01 of a proleptic Gregorian date (years >= 1)."""
    y -= m <= 2
    cdef int64_t era = y // 400
    cdef int64_t yoe = y - era * 400
    cdef int64_t doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


cdef object fast_utc_micros(object value):
    """`utc_micros` of a common form: with an offset, or China wall time since 1992."""
    cdef Time t
    cdef int64_t days, seconds
    if not parse_time(value, &t):
        return UNHANDLED
    days = days_from_civil(t.year, t.month, t.day)
    seconds = days * DAY_SECONDS + t.hour * 3600 + t.minute * 60 + t.second
    if t.has_zone:
        seconds -= t.offset * 60
    elif days >= DAYS_1992:
        seconds -= CHINA_OFFSET
    else:
        return UNHANDLED  # before 1992 China kept daylight saving: zone rules needed
    return seconds * SECOND + t.micro


cdef int fast_valid_time(object value):
    """1 when the message check (`_valid_time`) accepts the time, -1 when unsure: the customs
    layouts, and ISO dates or date-times with seconds and a zone as Z, +HH:MM or +HHMM, which
    `datetime.fromisoformat` reads."""
    cdef Time t
    if not parse_time(value, &t):
        return -1
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
    (the columns, then the dates), of the values a row holds: every column is converted and
    checked, only those are kept. A row with an invalid value, a missing required one or a
    missing attribute is left to `python_row`, which raises naming the field.
    """

    cdef tuple attributes, fallbacks, defaults
    cdef bytes kinds, required
    cdef Py_ssize_t size, dates_at, width
    cdef Py_ssize_t* places  # per value of a row of every value: its place in the row, or -1
    cdef object dates, python_row

    def __init__(
        self, attributes, kinds, fallbacks, required, defaults, Py_ssize_t dates_at, dates,
        python_row, kept
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

    def __dealloc__(self):
        free(self.places)

    def row(self, source, tuple given=()):
        """The canonical values of `source`'s attributes after the columns `given`."""
        values = self.convert(source, given)
        return values if values is not None else self.python_row(source, given)

    cdef tuple convert(self, object source, tuple given):
        """The row, filled in place (no list to grow, then copy), or None to leave it to
        `python_row`. `given` are the values of the first columns."""
        cdef Py_ssize_t i, start = len(given)
        cdef tuple row = PyTuple_New(self.width)
        cdef object raw, value, app_time = None
        cdef const unsigned char* kinds = self.kinds
        cdef const unsigned char* required = self.required
        for i in range(start):
            if i == self.dates_at:
                app_time = given[i]
            if self.places[i] >= 0:
                put(row, self.places[i], given[i])
        for i in range(start, self.size):
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

#: Interned text: one copy of a key part however many documents and indexes hold it.
cdef object shared = sys.intern


cdef class DocumentIntake:
    """What the stream matcher keeps of one kind of document, in C: its key, and its link with
    its canonical rows packed as MessagePack (`_DocumentIntake` in matchcore/stream/matcher.py
    is the reference, and what these are is told there).

    `key_names` are the key's attributes, `link` how it links (LINK_BUYER: by the canonical ID
    number of `link_names[0]`; LINK_ORDER: by the order key `link_names` give, ebp_code first;
    LINK_WAYBILL: by the waybill key they give). `rows` makes the document's row; for orders
    `lines` makes each line's row after the first `given` columns of the order's (a repeated
    line number keeps the first line). Rows the fast path leaves go to `python_rows` (which
    raises Invalid naming the field); `encode_into` packs into a reused buffer."""

    cdef readonly str kind
    cdef str key_a, key_b, link_a, link_b
    cdef int link
    cdef Converter text, id_number
    cdef RowPlan rows
    cdef RowPlan lines
    cdef Py_ssize_t given
    cdef object python_rows, encode_into
    cdef bytearray buffer

    def __init__(
        self, str kind, key_names, int link, link_names, Converter text, Converter id_number,
        RowPlan rows, RowPlan lines, Py_ssize_t given, python_rows, encode_into
    ):
        self.kind = kind
        self.key_a, self.key_b = key_names
        self.link = link
        self.link_a = link_names[0]
        self.link_b = link_names[1] if len(link_names) > 1 else None  # a buyer: one field
        self.text, self.id_number = text, id_number
        self.rows, self.lines, self.given = rows, lines, given
        self.python_rows, self.encode_into = python_rows, encode_into
        self.buffer = bytearray()

    def key(self, message):
        """The document's own key, canonical and interned."""
        return self.own_key(message)

    def keep(self, message):
        """(link, packed rows) of an upsert; Invalid when its values do not convert."""
        rows = self.convert(message)
        if rows is None:
            rows = self.python_rows(message)
        return self.linked(message), self.packed(rows)

    cdef tuple own_key(self, object message):
        return (self.code(getattr(message, self.key_a)), self.code(getattr(message, self.key_b)))

    cdef bytes packed(self, object rows):
        """`rows` as MessagePack, in bytes of exactly their size (see `_Packer`)."""
        self.encode_into(rows, self.buffer)
        return bytes(self.buffer)

    cdef object canonical(self, object value):
        """Canonical text (None for none: `clean_text` keeps null)."""
        return self.text.convert(value) if value is not None else None

    cdef object code(self, object value):
        """Canonical text, "" for none, interned."""
        text = self.canonical(value)
        return shared(text) if text is not None else ""

    cdef object linked(self, object message):
        """What the document links by (see the class)."""
        cdef object a = getattr(message, self.link_a)
        cdef object b = getattr(message, self.link_b) if self.link_b is not None else None
        if self.link == L_BUYER:
            buyer = self.id_number.convert(a) if a is not None else None
            return shared(buyer) if buyer is not None else None
        if self.link == L_WAYBILL:
            return (self.code(a), self.code(b))
        ebp, order_no = self.canonical(a), self.canonical(b)
        if ebp is None and order_no is None:
            return None  # a waybill without an order key: linked through inventories
        if ebp is None or order_no is None:
            return ("", "")  # half a key links to nothing
        return (shared(ebp), shared(order_no))

    cdef object convert(self, object message):
        """The rows in the fast path, None when it leaves them."""
        cdef tuple row = self.rows.convert(message, ())
        cdef tuple given, line
        cdef dict lines
        if row is None or self.lines is None:
            return row
        given, lines = row[:self.given], {}
        for item in message.items:
            line = self.lines.convert(item, given)
            if line is None:
                return None
            if line[self.given] not in lines:
                lines[line[self.given]] = line[self.given:]
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

cdef class _Route:
    """Where `NewUpserts` keeps one message type: its intake, its documents, its link index."""

    cdef DocumentIntake intake
    cdef dict store, members
    cdef object index

    def __init__(self, DocumentIntake intake, dict store, index):
        self.intake, self.store, self.index = intake, store, index
        self.members = index._members


cdef class NewUpserts:
    """`StreamMatcher._apply` of the usual message in one call (matchcore/stream/matcher.py:
    `_apply`, `_relink`, `_touch` are the reference): an upsert of a document with no version
    kept yet, whose rows convert in the fast path, and that links by its own fields (a payment
    or waybill naming a whole order key). `apply` gives None for anything else, having changed
    nothing; the Python path then does it all.

    `routes` maps each message type to (its DocumentIntake, the matcher's documents of that
    kind, the link index the kind goes in); `slots` are the matcher's order slots, `deadline`
    its `_Deadlines.add`; `entry(revision, link, rows)` and `slot(first_seen, key)` make what
    the matcher keeps (a document holds its order's key as the tuple of the order's slot, its
    `key`, when there is one: `StreamMatcher._order_key`); `accepted` is what `apply` returns
    when it took the message. The matcher's dirty set and counters are read from it on every
    call (a flush or a restore replaces them).
    """

    cdef dict routes, slots
    cdef object deadline, entry, slot, accepted

    def __init__(self, routes, dict slots, deadline, entry, slot, accepted):
        self.routes = {cls: _Route(*route) for cls, route in routes.items()}
        self.slots, self.deadline = slots, deadline
        self.entry, self.slot, self.accepted = entry, slot, accepted

    def apply(self, matcher, message, now):
        """Take `message` arrived at `now` into `matcher`'s state, or None (see the class)."""
        return self.take(matcher, message, now)

    cdef object take(self, object matcher, object message, object now):
        """`apply`, for C callers."""
        cdef _Route route = self.routes.get(type(message))
        cdef DocumentIntake intake
        if route is None:
            return None
        intake = route.intake
        key = intake.own_key(message)
        if key in route.store or message.op == "cancel":
            return None
        rows = intake.convert(message)
        if rows is None:
            return None  # a value the fast path leaves: Python converts, or says why not
        link = intake.linked(message)
        if intake.link == L_ORDER:
            if link is None or link == ("", ""):
                return None  # linked through inventories, or to nothing
            slot = self.slots.get(link)
            if slot is not None:
                link = slot.key
            touched = link
        else:  # keyed by its order's key (an order, an inventory)
            slot = self.slots.get(key)
            if slot is not None:
                key = slot.key
            touched = key
        route.store[key] = self.entry(message.revision, link, intake.packed(rows))
        counters = matcher.counters._values
        counters["accepted"] = counters.get("accepted", 0) + 1
        if link is not None and route.members.setdefault(link, key) is not key:
            route.index.add(link, key)  # linked already: the index decides how to hold both
        self.touch(matcher, touched, slot is None, now)
        return self.accepted

    cdef touch(self, matcher, key, bint new, now):
        """The order `key` (`new`: without a slot yet) waits for a flush
        (`StreamMatcher._touch`)."""
        if new:
            self.slots[key] = self.slot(now, key)
            self.deadline(key, now)
        dirty = matcher._dirty
        if not dirty:
            matcher._dirty_since = now
        dirty[key] = None


# --- the log record of one input ---------------------------------------------------------------

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


cdef uint32_t crc32(uint32_t crc, const unsigned char* p, Py_ssize_t n):
    """`zlib.crc32(bytes, crc)` of the `n` bytes at `p`."""
    cdef uint32_t c = ~crc
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
    return ~c


def crc32_of(bytes data, uint32_t crc=0):
    """`zlib.crc32(data, crc)` as the log record gets it (for tests)."""
    return crc32(crc, <const unsigned char*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))


cdef enum:
    PREFIX_MAX = 32  # kind, array head, float64, int64, bin32 head: 1 + 1 + 9 + 9 + 5 bytes
    HEADER_SIZE = 8  # body length, CRC32 of the body


cdef inline Py_ssize_t put_big(unsigned char* out, uint64_t value, int size):
    """`value` as `size` bytes, big-endian (MessagePack's and the log header's order)."""
    cdef int i
    for i in range(size):
        out[i] = (value >> (8 * (size - 1 - i))) & 0xFF
    return size


cdef inline Py_ssize_t put_int(unsigned char* out, long long x):
    """An integer as msgspec packs it: the smallest MessagePack form."""
    if x >= 0:
        if x < 128:
            out[0] = <unsigned char>x
            return 1
        if x < (1 << 8):
            out[0] = 0xCC
            return 1 + put_big(out + 1, x, 1)
        if x < (1 << 16):
            out[0] = 0xCD
            return 1 + put_big(out + 1, x, 2)
        if x < (1LL << 32):
            out[0] = 0xCE
            return 1 + put_big(out + 1, x, 4)
        out[0] = 0xCF
        return 1 + put_big(out + 1, x, 8)
    if x >= -32:
        out[0] = <unsigned char>(x & 0xFF)
        return 1
    if x >= -(1 << 7):
        out[0] = 0xD0
        return 1 + put_big(out + 1, <uint64_t>x, 1)
    if x >= -(1 << 15):
        out[0] = 0xD1
        return 1 + put_big(out + 1, <uint64_t>x, 2)
    if x >= -(1LL << 31):
        out[0] = 0xD2
        return 1 + put_big(out + 1, <uint64_t>x, 4)
    out[0] = 0xD3
    return 1 + put_big(out + 1, <uint64_t>x, 8)


cdef inline Py_ssize_t put_bin_head(unsigned char* out, Py_ssize_t size):
    """The head of MessagePack binary data of `size` bytes (msgspec's form for bytes)."""
    if size < (1 << 8):
        out[0] = 0xC4
        return 1 + put_big(out + 1, size, 1)
    if size < (1 << 16):
        out[0] = 0xC5
        return 1 + put_big(out + 1, size, 2)
    out[0] = 0xC6
    return 1 + put_big(out + 1, size, 4)


def input_record(bytes kind, object python_record, object now, object position, object raw):
    """`record_of` (below), for Python callers."""
    return record_of(kind, python_record, now, position, raw)


cdef object record_of(bytes kind, object python_record, object now, object position, object raw):
    """The framed log record of one input: `python_record(kind, now, position, raw)` (length,
    CRC32, kind, then [now, position, raw] packed by msgspec), made in one allocation with
    the CRC of `raw` read where it is. Anything but a float `now`, an int64 or None
    `position` and bytes `raw` (or a record over 4 GiB) is left to `python_record`."""
    cdef unsigned char prefix[PREFIX_MAX]
    cdef Py_ssize_t n = 0, size, length
    cdef int overflow = 0
    cdef long long number = 0
    cdef double value
    cdef uint64_t bits
    cdef uint32_t checksum
    cdef unsigned char* out
    if not (PyFloat_CheckExact(now) and PyBytes_CheckExact(raw) and len(kind) == 1):
        return python_record(kind, now, position, raw)
    if position is not None:
        if not PyLong_CheckExact(position):
            return python_record(kind, now, position, raw)
        number = PyLong_AsLongLongAndOverflow(position, &overflow)
        if overflow:
            return python_record(kind, now, position, raw)
    size = PyBytes_GET_SIZE(raw)
    if size >= (1LL << 32) - PREFIX_MAX:
        return python_record(kind, now, position, raw)
    prefix[0] = (<unsigned char*>PyBytes_AS_STRING(kind))[0]
    prefix[1] = 0x93  # an array of three
    prefix[2] = 0xCB  # float64
    value = PyFloat_AS_DOUBLE(now)
    memcpy(&bits, &value, 8)
    n = 3 + put_big(prefix + 3, bits, 8)
    if position is None:
        prefix[n] = 0xC0
        n += 1
    else:
        n += put_int(prefix + n, number)
    n += put_bin_head(prefix + n, size)
    length = n + size  # the body: kind and payload
    checksum = crc32(crc32(0, prefix, n), <const unsigned char*>PyBytes_AS_STRING(raw), size)
    record = PyBytes_FromStringAndSize(NULL, HEADER_SIZE + length)
    out = <unsigned char*>PyBytes_AS_STRING(record)
    put_big(out, length, 4)
    put_big(out + 4, checksum, 4)
    memcpy(out + HEADER_SIZE, prefix, n)
    memcpy(out + HEADER_SIZE + n, PyBytes_AS_STRING(raw), size)
    return record


# --- many messages offered in one call -----------------------------------------------------------


cdef class Tally:
    """What one `Offers.offer` call did that its caller (`DurableMatcher.offer_many`) books
    once, not per message: log records queued, messages logged and taken (`taken` counts them
    for the snapshot interval, as `offer` does), and the newest input position seen (`moved`:
    one was). Kept up to date message by message, so it is right when a message raises."""

    cdef public Py_ssize_t records, taken
    cdef public bint moved
    cdef public object position

    def __init__(self):
        self.records = self.taken = 0
        self.moved = False
        self.position = None


cdef class Offers:
    """`DurableMatcher.offer` of each of many messages in turn, in one loop
    (matchcore/stream/state.py: `offer` and `reject`, and `StreamMatcher.take` in
    matcher.py, are the reference; `offer_many` calls this and books the `Tally`).

    Per message: the checked message (`decoder`, else `decode`, the Python path, which raises
    `bad_message` for a dead letter: `durable.reject` then logs it), its `INPUT` record
    queued in `queue` (None: no log kept), taken into the matcher (its compiled `NewUpserts`,
    else `_apply`: `StreamMatcher.take`), a flush when the dirty set reaches the batch size (`auto_flush` and
    `batch_size` are read once a call: nothing changes them while messages are offered), a
    value batch would reject handed to `durable.on_dead_letter`, and the verdicts of a flush
    collected (`durable._collect`). A message that is not bytes is packed by `encode` first.
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

    def offer(self, Tally tally, durable, matcher, list queue, raws, positions, now):
        """Offer every message of `raws` (with the position of the same index in `positions`,
        or None for all when it is None) arrived at `now` (None: `matcher.clock()` each)."""
        cdef Py_ssize_t at, count = len(raws)
        upserts = matcher._new_upserts  # compiled (called in C), None, or a stand-in of tests
        cdef NewUpserts compiled = upserts if isinstance(upserts, NewUpserts) else None
        cdef bint auto_flush = matcher.auto_flush
        cdef Py_ssize_t batch_size = matcher.batch_size
        clock = matcher.clock
        if positions is not None and len(positions) != count:
            raise ValueError(f"{count} messages but {len(positions)} positions")
        for at in range(count):
            raw = raws[at]
            position = positions[at] if positions is not None else None
            arrival = clock() if now is None else now
            if not isinstance(raw, bytes):
                raw = self.encode(raw)
            message = self.decoder.checked(raw)
            if message is None:
                try:
                    message = self.decode(raw)
                except self.bad_message as exc:
                    durable.reject(exc.reason, position, raw)
                    self.moved(tally, position)
                    continue
            if queue is not None:
                queue.append(record_of(self.kind, self.python_record, arrival, position, raw))
            tally.records += 1
            if compiled is not None:
                result = compiled.take(matcher, message, arrival)
            else:
                result = upserts.apply(matcher, message, arrival) if upserts is not None else None
            if result is None:
                result = matcher._apply(message, arrival)
            if auto_flush and len(matcher._dirty) >= batch_size:
                matcher.flush(arrival)
            if result is not self.accepted and result.status == "dead":
                durable.on_dead_letter(result.reason or "", position, raw)
            self.moved(tally, position)
            tally.taken += 1
            if matcher._events:  # the feed flushed
                durable._collect()

    cdef inline void moved(self, Tally tally, object position):
        """The input moved on to `position` (None: it has none)."""
        if position is not None:
            tally.position = position
            tally.moved = True
