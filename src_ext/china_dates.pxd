# cython: language_level=3, cdivision=True
"""Calendar arithmetic in C, one copy for every module: the proleptic Gregorian month lengths
and day numbers (the kernel's ID number check, the stream's time parsing), and an instant's
dates in Asia/Shanghai where the zone is a fixed UTC+8: what matchcore/stream/canonical.py
`china_dates` gives (an order's `_app_year`, `_app_ymd`) for the usual times, shared by
src_ext/intake.pyx (its compiled `china_dates`) and src_ext/packed.pyx (an order's dates made
from its packed app time when a micro-batch's tables are built)."""

from libc.stdint cimport int64_t

cdef enum:
    SECOND = 1_000_000  # microseconds
    DAY_SECONDS = 86_400
    CHINA_OFFSET = 8 * 3600  # seconds: Asia/Shanghai, fixed since 1992 (see canonical.py)
    DAYS_1992 = 8035  # 1992-01-01 - 1970-01-01 in days
    DAYS_MAX = 2557 * 1000  # well inside year 9000


cdef inline int days_in_month(int64_t year, int64_t month) noexcept nogil:
    if month == 2:
        return 29 if (year % 4 == 0 and year % 100 != 0) or year % 400 == 0 else 28
    if month == 4 or month == 6 or month == 9 or month == 11:
        return 30
    return 31


cdef inline int64_t days_from_civil(int64_t y, int64_t m, int64_t d) noexcept nogil:
    """Days since 1970-01-01 of a proleptic Gregorian date (years >= 1)."""
    y -= m <= 2
    cdef int64_t era = y // 400
    cdef int64_t yoe = y - era * 400
    cdef int64_t doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


cdef inline bint fixed_china_dates(int64_t us, int64_t* year, int64_t* ymd) noexcept nogil:
    """(year, YYYYMMDD) of the UTC instant `us` (microseconds) 8 hours ahead, into `year` and
    `ymd`; False, with nothing set, before 1992 or past `DAYS_MAX` (Python's to do)."""
    cdef int64_t z, era, doe, yoe, doy, mp, y, m, d
    if us < 0:
        return False
    z = (us // SECOND + CHINA_OFFSET) // DAY_SECONDS
    if z < DAYS_1992 or z > DAYS_MAX:
        return False
    # Civil date of a day number (proleptic Gregorian, days since 1970-01-01): all positive.
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    y = yoe + era * 400 + (m <= 2)
    year[0] = y
    ymd[0] = y * 10_000 + m * 100 + d
    return True
