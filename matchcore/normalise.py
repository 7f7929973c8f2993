"""Normalisation: a raw frame (any reader's output) -> a canonical table plus rejects (SPEC §1-2).

Every column is converted by whole-column Polars expressions: one expression gives the
canonical value, a list of (condition, message) checks says why a value is unusable. The pass
over all rows computes the values and one flag per row (any check failed); the messages are
worked out only for the flagged rows, which go to rejects once per problem. The rest form the
canonical table. Whole-column facts checked first let common data skip steps; for text they
come from a compiled byte scan (src_ext/text_scan.pyx) when it is built, else from Polars.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType

import numpy as np
import polars as pl
import pyarrow as pa

from .china_time import NEAR_FROM_US, NEAR_TO_US, china_time, china_wall_to_utc, exact_micros
from .engine.base import CanonicalTables
from .exceptions import SchemaError
from .io import RawSource, Source, check_sources, discover, read_source
from .io._rejects import REJECTS_SCHEMA, concat_rejects, empty_rejects
from .masking import mask_expr
from .progress import PhaseTracker
from .schema import (
    APP_YEAR,
    APP_YMD,
    CHINA_TZ,
    IDENTITY_COLUMNS,
    MONEY_SCALE,
    REQUIRED_TABLES,
    ROLE_BITS,
    ROW,
    TABLES,
    Column,
    Kind,
    Table,
)

_text_scan: ModuleType | None
try:
    from ._native import text_scan as _text_scan
except ImportError:  # not built: the Polars expressions tell the same, more slowly
    _text_scan = None

__all__ = [
    "REJECTS_SCHEMA",
    "LoadedTable",
    "LoadedTables",
    "iter_tables",
    "load_tables",
    "normalise_table",
    "order_dates",
]

#: Largest whole-CNY (or whole-unit) value whose ten-thousandths fit in int64.
_MAX_WHOLE = (2**63 - 1) // MONEY_SCALE
_SCALE_DIGITS = len(str(MONEY_SCALE)) - 1  # 4 decimal places

#: Text syntax of decimals, times and offsets (Rust regex); stream/canonical.py reads them too.
DECIMAL_TEXT = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)$"
_INTEGER_TEXT = r"^[+-]?[0-9]+(?:\.0*)?$"
#: Plain amounts that cannot overflow (at most 14 + 4 digits), or empty: Polars' decimal cast
#: is exact on these.
_PLAIN_DECIMAL_TEXT = r"^(?:[0-9]{1,14}(?:\.[0-9]{0,4})?)?$"
#: Scale factor to ten-thousandths by number of decimal places kept in the digits.
_PLACE_FACTORS = {places: 10 ** (_SCALE_DIGITS - places) for places in range(_SCALE_DIGITS + 1)}
_INT64_MAX = 2**63 - 1
_INT64_DIGITS = 18  # every 18-digit integer fits in int64
# ISO 8601 date or date-time ('T' or space), optional fraction and offset.
ISO_TIME = (
    r"^(?<y>[0-9]{4})-(?<mo>[0-9]{2})-(?<d>[0-9]{2})"
    r"(?:[T ](?<h>[0-9]{2}):(?<mi>[0-9]{2})(?::(?<s>[0-9]{2})(?:[.,](?<f>[0-9]{1,9}))?)?)?"
    r" ?(?<tz>[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?$"
)
# The customs form yyyyMMddHHmmss (and its date-only prefix yyyyMMdd).
CUSTOMS_TIME = (
    r"^(?<y>[0-9]{4})(?<mo>[0-9]{2})(?<d>[0-9]{2})(?:(?<h>[0-9]{2})(?<mi>[0-9]{2})(?<s>[0-9]{2}))?$"
)
#: Common plain time layouts: when every value of a column has one (or is empty), a single
#: strptime suffices.
_PLAIN_TIMES = {
    r"^(?:[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2})?$": "%Y-%m-%d %H:%M:%S",
    r"^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})?$": "%Y-%m-%dT%H:%M:%S",
    r"^(?:[0-9]{14})?$": "%Y%m%d%H%M%S",
}
#: Text that NFKC and white-space collapsing could change: anything beyond ASCII and CJK
#: unified ideographs (both NFKC-stable), white space other than a space, or two spaces.
_NEEDS_CLEANING = r"[^\x00-\x7F\x{4E00}-\x{9FFF}]|[^\S ]|  "
TIME_OFFSET = r"^(?<sign>[+-])(?<hh>[0-9]{2}):?(?<mm>[0-9]{2})?$"

_ASCII_UPPER = {chr(c): chr(c).upper() for c in range(ord("a"), ord("z") + 1)}
#: Bits of the compiled scan's per-row flags (`text_scan.row_flags`).
_NEEDS_CLEANING_BIT = 1  # the value matches `_NEEDS_CLEANING`
_EDGE_BIT = 2  # empty, or a space at either end
_LOWER_BIT = 4  # an ASCII lower-case letter (asked for ID numbers only)

_MISSING = "required value is missing"


class _UnsupportedType(Exception):
    """A raw column's dtype cannot be converted to its kind at all (becomes a SchemaError)."""


@dataclass(frozen=True)
class _Converted:
    """A column's canonical value and its checks: (condition, message), first true one wins."""

    value: pl.Expr
    checks: tuple[tuple[pl.Expr, str], ...] = ()

    @property
    def error(self) -> pl.Expr:
        """The message of the first failed check, else null (String)."""
        return _first_error(self.checks)

    @property
    def failed(self) -> pl.Expr:
        """Whether any check failed (Boolean, never null): cheaper than `error` on every row."""
        if not self.checks:
            return pl.lit(False)
        return pl.any_horizontal([condition for condition, _ in self.checks]).fill_null(False)


@dataclass(frozen=True)
class _Profile:
    """Whole-column facts, checked once, that let common data skip costly steps."""

    plain_text: bool = False  # NFKC and collapsing white space would change nothing
    trimmed: bool = False  # no value is empty or has a space at either end
    no_lower: bool = False  # no value has an ASCII lower-case letter (told for ID numbers)
    plain_decimal: bool = False  # every amount is plain text that Polars parses exactly
    time_format: str | None = None  # a strptime format that every value of the column has
    #: The compiled scan's flags per row (UInt8, bits `_NEEDS_CLEANING_BIT`...), when some
    #: row of a text column needs work: only the flagged rows go through the cleaning steps.
    row_flags: pl.Series | None = field(default=None, compare=False)


@dataclass
class _Stager:
    """Materialises intermediate results as hidden columns, one layer per step.

    An expression used twice would be evaluated twice (and nested reuse multiplies that);
    staging computes each step once, and steps of different columns run side by side.
    """

    layers: list[list[pl.Expr]]
    prefix: str
    profile: _Profile = _Profile()
    depth: int = 0

    def __call__(self, expr: pl.Expr) -> pl.Expr:
        name = f"\x00{self.prefix}:{self.depth}"
        if len(self.layers) <= self.depth:
            self.layers.append([])
        self.layers[self.depth].append(expr.alias(name))
        self.depth += 1
        return pl.col(name)


def _first_error(checks: Sequence[tuple[pl.Expr, str]]) -> pl.Expr:
    """The message of the first condition that holds (a null condition does not), else null."""
    error = pl.lit(None, dtype=pl.String)
    for condition, message in reversed(checks):
        error = pl.when(condition).then(pl.lit(message)).otherwise(error)
    return error


def _null_if_empty(text: pl.Expr) -> pl.Expr:
    return pl.when(text.str.len_bytes() == 0).then(None).otherwise(text)


def _is_textual(dtype: object) -> bool:
    return isinstance(dtype, pl.String | pl.Categorical | pl.Enum | pl.Null)


# --- text kinds -------------------------------------------------------------------------------


def _clean_text(text: pl.Expr, put: _Stager, *, upper: bool) -> pl.Expr:
    """NFKC, trim Unicode white space, collapse inner runs to one space, empty -> null; with
    `upper`, ASCII letters in upper case (ID numbers).

    With the compiled scan's row flags only the flagged rows are cleaned (the rest are
    canonical as they are); without them, on plain text (see `_NEEDS_CLEANING`) that is just
    trimming spaces, and in a column with some other text, only those rows go through NFKC
    and the regex: the others are null there, which the string kernels skip.
    """
    profile = put.profile
    if profile.row_flags is not None:
        return put(_clean_flagged_rows(text, pl.col(_row_flags_name(put.prefix)), upper=upper))
    if not (profile.plain_text and profile.trimmed):  # else already canonical: no copy
        needs = None if profile.plain_text else put(text.str.contains(_NEEDS_CLEANING))
        text = put(_cleaned(text, needs, put))
    if upper and not (profile.no_lower and profile.plain_text):  # NFKC can make lower case
        text = _ascii_upper(text)
    return text


def _cleaned(text: pl.Expr, needs: pl.Expr | None, put: _Stager | None = None) -> pl.Expr:
    """Rows where `needs` (None: no row): NFKC, Unicode trim, inner white space collapsed; the
    others: spaces trimmed. Then empty -> null. `put` stages the step read twice (without it,
    that step is computed twice)."""
    merged = text.str.strip_chars(" ")
    if needs is not None:
        rough = pl.when(needs).then(text)  # null elsewhere, which the string kernels skip
        full = rough.str.normalize("NFKC").str.strip_chars().str.replace_all(r"\s+", " ")
        merged = pl.when(needs).then(full).otherwise(merged)
    return _null_if_empty(put(merged) if put is not None else merged)


def _ascii_upper(text: pl.Expr) -> pl.Expr:
    return text.str.replace_many(_ASCII_UPPER)  # ASCII letters only, unlike to_uppercase


def _clean_flagged_rows(text: pl.Expr, flags: pl.Expr, *, upper: bool) -> pl.Expr:
    """`_clean_text` where the per-row flags (`_Profile.row_flags`) say a row needs work.

    The flagged rows (a few in most data) are picked out, cleaned and put back: string
    kernels cost time even on the null rows of a mostly null column, so they see only these.
    An unflagged value is plain, trimmed, not empty and (with `upper`) has no lower case.
    """
    flagged = flags != 0
    picked = text.filter(flagged)
    needs = (flags.filter(flagged) & _NEEDS_CLEANING_BIT) != 0
    cleaned = _cleaned(picked, needs)
    if upper:
        cleaned = _ascii_upper(cleaned)
    # Each row takes its value from `text` followed by `cleaned`: the k-th flagged row (k from
    # 1) the k-th cleaned value, at height + k - 1; the others their own. One gather costs
    # less than a when/then/otherwise over two String columns.
    own = pl.int_range(pl.len(), dtype=pl.UInt32)
    at = pl.when(flagged).then(pl.len() + flagged.cum_sum() - 1).otherwise(own)
    return text.append(cleaned).gather(at)


def _row_flags_name(column: str) -> str:
    """The hidden raw column holding `_Profile.row_flags` of `column`."""
    return f"\x00{column}:row flags"


def _text_source(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A raw column as String for the text kinds (integers are accepted as their digits)."""
    if _is_textual(dtype) or dtype.is_integer():
        return expr.cast(pl.String)
    raise _UnsupportedType


def _convert_text(expr: pl.Expr, dtype: pl.DataType, column: Column, put: _Stager) -> _Converted:
    upper = column.kind is Kind.ID_NUMBER
    text = _clean_text(_text_source(expr, dtype), put, upper=upper)
    checks: list[tuple[pl.Expr, str]] = []
    if column.kind is Kind.ENUM:
        text = put(text.str.to_lowercase())
        checks.append((~text.is_in(column.values), f"not one of {', '.join(column.values)}"))
    elif column.kind is Kind.DIGITS:
        low, high = column.digits or (1, 64)
        length = f"{low}" if low == high else f"{low} to {high}"
        pattern = f"^[0-9]{{{low},{high}}}$"
        checks.append((~text.str.contains(pattern), f"not {length} ASCII digits"))
    return _Converted(text, tuple(checks))


def _convert_roles(expr: pl.Expr, dtype: pl.DataType, column: Column, put: _Stager) -> _Converted:
    """A list of roles, or a comma-separated string of them -> UInt8 bit set of ROLE_BITS."""
    if isinstance(dtype, pl.List) and _is_textual(dtype.inner):
        items = expr.list.eval(pl.element().cast(pl.String))
    elif _is_textual(dtype):
        items = expr.cast(pl.String).str.split(",")
    else:
        raise _UnsupportedType
    cleaned = pl.element().str.normalize("NFKC").str.strip_chars().str.to_lowercase()
    present = pl.element().filter(pl.element().str.len_bytes() > 0)
    items = put(items.list.eval(cleaned).list.eval(present))
    unknown = items.list.eval(~pl.element().is_in(list(ROLE_BITS))).list.any()
    bits = items.list.eval(
        pl.element().replace_strict(ROLE_BITS, default=0, return_dtype=pl.UInt8)
    ).list.unique()
    value = pl.when(items.list.len() > 0).then(bits.list.sum().cast(pl.UInt8))
    allowed = ", ".join(ROLE_BITS)
    return _Converted(value, ((unknown, f"unknown role (allowed: {allowed})"),))


# --- numbers ----------------------------------------------------------------------------------

_OVERFLOW = "too large (overflows int64 ten-thousandths)"


def _stripped(expr: pl.Expr, put: _Stager) -> pl.Expr:
    """Text with surrounding white space removed; empty -> null."""
    return put(_null_if_empty(put(expr.cast(pl.String).str.strip_chars())))


def _units_from_text(text: pl.Expr, put: _Stager) -> _Converted:
    """Decimal text -> int64 ten-thousandths, exactly: the digits are joined, never via float."""
    well_formed = put(text.str.contains(DECIMAL_TEXT))
    body = text.str.strip_chars_start("+-")  # a well-formed value has at most one sign
    has_point = body.str.contains(".", literal=True)
    # Trailing zeros of the fraction are not significant ("1.23450" has 4 places).
    body = put(pl.when(has_point).then(body.str.strip_chars_end("0")).otherwise(body))
    places = put((body.str.len_bytes() - body.str.find(".", literal=True) - 1).fill_null(0))
    digits = body.str.replace(".", "", literal=True).str.strip_chars_start("0")
    number = put(digits.replace("", "0").cast(pl.Int64, strict=False))  # value × 10^places
    factor = put(places.replace_strict(_PLACE_FACTORS, default=None, return_dtype=pl.Int64))
    overflow = number.is_null() | (number > pl.lit(_INT64_MAX) // factor)
    units = put(number * factor)
    checks = [
        (text.is_not_null() & ~well_formed, "not a decimal number"),
        (places > _SCALE_DIGITS, f"more than {_SCALE_DIGITS} decimal places"),
        (text.is_not_null() & overflow, _OVERFLOW),
        (text.str.starts_with("-") & (units > 0), "negative amount"),
    ]
    return _Converted(units, tuple(checks))


def _units_from_integers(expr: pl.Expr, put: _Stager) -> _Converted:
    """Integers are whole units (CNY): scaled by 10 000 after a range check."""
    whole = put(expr.cast(pl.Int64, strict=False))
    overflow = expr.is_not_null() & (whole.is_null() | (whole.abs() > _MAX_WHOLE))
    checks = [(overflow, _OVERFLOW), (whole < 0, "negative amount")]
    return _Converted(whole * MONEY_SCALE, tuple(checks))


def _units_from_floats(expr: pl.Expr, put: _Stager) -> _Converted:
    """Floats: x * 10 000 in float64 (one IEEE rounding), then to the nearest integer, ties to even.

    The tie is judged on the float product, not on the decimal text the float came from:
    0.00125 -> 12.5 -> 12 units, but 0.00015 -> 1.4999999999999998 -> 1 unit. NaN and
    infinities are rejected, as are products outside int64.
    """
    scaled = put((expr.cast(pl.Float64) * MONEY_SCALE).round(0, mode="half_to_even"))
    checks = [
        (~expr.is_finite(), "not a finite number"),
        (expr < 0, "negative amount"),
        (scaled.abs() >= 2.0**63, _OVERFLOW),
    ]
    return _Converted(scaled.cast(pl.Int64, strict=False), tuple(checks))


def _units_from_decimals(expr: pl.Expr, dtype: pl.Decimal, put: _Stager) -> _Converted:
    """Decimals up to 4 places scale exactly by integer arithmetic; finer ones go via text."""
    scale = dtype.scale or 0
    if scale > _SCALE_DIGITS:
        return _units_from_text(put(expr.cast(pl.String)), put)
    stored = expr.to_physical()  # the value × 10^scale, as an integer
    factor = _PLACE_FACTORS[scale]
    if dtype.precision is not None and dtype.precision + _SCALE_DIGITS - scale <= _INT64_DIGITS:
        units = put(stored.cast(pl.Int64) * factor)  # every value's units fit in int64
    else:
        # Range-checked before scaling: decimal arithmetic past 38 digits raises, not nulls.
        fits = stored.abs() <= _INT64_MAX // factor
        units = put(pl.when(fits).then(stored.cast(pl.Int64, strict=False) * factor))
    checks = [(expr.is_not_null() & units.is_null(), _OVERFLOW), (units < 0, "negative amount")]
    return _Converted(units, tuple(checks))


def _convert_units(expr: pl.Expr, dtype: pl.DataType, column: Column, put: _Stager) -> _Converted:
    """money / qty -> Int64 ten-thousandths (SPEC §1)."""
    if _is_textual(dtype) and put.profile.plain_decimal:
        plain = pl.Decimal(18, _SCALE_DIGITS)
        return _units_from_decimals(expr.cast(plain, strict=False), plain, put)
    if _is_textual(dtype):
        return _units_from_text(_stripped(expr, put), put)
    if isinstance(dtype, pl.Decimal):
        return _units_from_decimals(expr, dtype, put)
    if dtype.is_integer():
        return _units_from_integers(expr, put)
    if dtype.is_float():
        return _units_from_floats(expr, put)
    raise _UnsupportedType


def _convert_int(expr: pl.Expr, dtype: pl.DataType, column: Column, put: _Stager) -> _Converted:
    """Whole numbers (gnum, year): integers, integral decimals or floats, or integer text."""
    if dtype.is_integer():
        value = put(expr.cast(pl.Int64, strict=False))
        return _Converted(value, ((expr.is_not_null() & value.is_null(), "too large"),))
    if dtype.is_float():
        integral = put(expr.is_finite() & (expr == expr.floor()) & (expr.abs() < 2.0**63))
        return _Converted(
            pl.when(integral).then(expr.cast(pl.Int64, strict=False)),
            ((~integral, "not a whole number"),),
        )
    if not (_is_textual(dtype) or isinstance(dtype, pl.Decimal)):
        raise _UnsupportedType
    text = _stripped(expr, put)
    value = put(text.str.replace(r"\.0*$", "").cast(pl.Int64, strict=False))
    checks = [
        (~text.str.contains(_INTEGER_TEXT), "not a whole number"),
        (value.is_null() & text.is_not_null(), "too large"),
    ]
    return _Converted(value, tuple(checks))


def _convert_rate(expr: pl.Expr, dtype: pl.DataType, column: Column, put: _Stager) -> _Converted:
    """Rates -> Float64 fractions; decimal text or numbers; not negative, finite."""
    if _is_textual(dtype):
        text = _stripped(expr, put)
        value = put(text.cast(pl.Float64, strict=False))
        syntax = [(~text.str.contains(DECIMAL_TEXT), "not a decimal number")]
    elif dtype.is_numeric():
        value, syntax = put(expr.cast(pl.Float64)), []
    else:
        raise _UnsupportedType
    checks = [*syntax, (~value.is_finite(), "not a finite number"), (value < 0, "negative rate")]
    return _Converted(value, tuple(checks))


# --- times ------------------------------------------------------------------------------------


def _local_to_utc(naive: pl.Expr) -> pl.Expr:
    """Naive times are Asia/Shanghai (SPEC §1); times skipped by a clock change become null.
    For text, whose years (0000-9999) chrono holds; `_convert_timestamps` takes any time."""
    local = naive.dt.replace_time_zone(CHINA_TZ, ambiguous="earliest", non_existent="null")
    return local.dt.convert_time_zone("UTC")


def _offset_minutes(tz: pl.Expr, put: _Stager) -> pl.Expr:
    """'+08:00', '+0800', '+08', '-05:30' or 'Z' -> signed minutes east of UTC."""
    parts = put(tz.str.extract_groups(TIME_OFFSET))
    hours = parts.struct.field("hh").cast(pl.Int64)
    minutes = hours * 60 + parts.struct.field("mm").fill_null("0").cast(pl.Int64)
    signed = pl.when(parts.struct.field("sign") == "-").then(-minutes).otherwise(minutes)
    return signed.fill_null(0)  # "Z"


def _time_from_text(text: pl.Expr, put: _Stager) -> pl.Expr:
    """ISO 8601 (with or without offset) or yyyyMMddHHmmss -> UTC; null when not a valid time."""
    iso = put(text.str.extract_groups(ISO_TIME))
    customs = put(text.str.extract_groups(CUSTOMS_TIME))

    def part(name: str, default: str | None = None) -> pl.Expr:
        field = pl.coalesce(iso.struct.field(name), customs.struct.field(name))
        return field.fill_null(default) if default is not None else field

    pieces = [part("y"), "-", part("mo"), "-", part("d"), " "]
    pieces += [part("h", "00"), ":", part("mi", "00"), ":", part("s", "00")]
    stamp = pl.concat_str([pl.lit(p) if isinstance(p, str) else p for p in pieces])
    # Fractions finer than a microsecond are truncated.
    micros = iso.struct.field("f").str.pad_end(6, "0").str.slice(0, 6).cast(pl.Int64).fill_null(0)
    parsed = stamp.str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us", strict=False)
    naive = put(parsed + pl.duration(microseconds=micros))
    tz = put(iso.struct.field("tz"))
    with_offset = naive.dt.replace_time_zone("UTC") - pl.duration(minutes=_offset_minutes(tz, put))
    return put(pl.when(tz.is_not_null()).then(with_offset).otherwise(_local_to_utc(naive)))


_OUT_OF_RANGE = "time out of range (int64 microseconds since 1970, UTC)"


def _fits_int64(wide: pl.Expr) -> pl.Expr:
    return wide.is_between(-_INT64_MAX - 1, _INT64_MAX)


def _convert_timestamps(expr: pl.Expr, dtype: pl.Date | pl.Datetime, put: _Stager) -> _Converted:
    """Dates and Datetimes -> Datetime(us, UTC), exactly for every value: zoned ones as they
    are, naive ones and dates as Asia/Shanghai wall times, far ones too (see china_time.py).
    Times beyond int64 microseconds in UTC (from ms, dates, or a wall time near the start of
    int64) are out of range."""
    micros = put(exact_micros(expr, dtype))
    in_range = put(_fits_int64(micros))
    if isinstance(dtype, pl.Date) or dtype.time_zone is None:
        micros = put(china_wall_to_utc(pl.when(in_range).then(micros).cast(pl.Int64)))
        in_range = in_range & _fits_int64(micros).fill_null(True)  # null: skipped by a clock change
    value = put(pl.when(in_range).then(micros).cast(pl.Int64).cast(pl.Datetime("us", "UTC")))
    checks = [
        (~in_range, _OUT_OF_RANGE),
        (expr.is_not_null() & value.is_null(), "time does not exist in Asia/Shanghai"),
    ]
    return _Converted(value, tuple(checks))


def _convert_time(expr: pl.Expr, dtype: pl.DataType, column: Column, put: _Stager) -> _Converted:
    """Times -> Datetime(us, UTC): zoned timestamps convert, naive ones and dates are Shanghai."""
    if isinstance(dtype, pl.Datetime | pl.Date):
        return _convert_timestamps(expr, dtype, put)
    if _is_textual(dtype):
        text = _stripped(expr, put)
        time_format = put.profile.time_format
        if time_format is None:
            value = _time_from_text(text, put)
        else:
            parsed = text.str.to_datetime(time_format, time_unit="us", strict=False, cache=False)
            value = put(_local_to_utc(parsed))
        message = "not a valid time (ISO 8601 or yyyyMMddHHmmss)"
        return _Converted(value, ((text.is_not_null() & value.is_null(), message),))
    raise _UnsupportedType


_CONVERTERS = {
    Kind.TEXT: _convert_text,
    Kind.CODE: _convert_text,
    Kind.ID_NUMBER: _convert_text,
    Kind.ENUM: _convert_text,
    Kind.DIGITS: _convert_text,
    Kind.MONEY: _convert_units,
    Kind.QTY: _convert_units,
    Kind.INT: _convert_int,
    Kind.RATE: _convert_rate,
    Kind.TIME: _convert_time,
    Kind.ROLES: _convert_roles,
}


# --- one table --------------------------------------------------------------------------------


#: The per-row flag of the conversion pass: some check of some column failed.
_BAD = "\x00bad"


def _with_default(value: pl.Expr, column: Column) -> pl.Expr:
    """Nulls take the column's default (discount 0, currency "142", ...) when it has one."""
    if column.default is None:
        return value
    return value.fill_null(pl.lit(column.default).cast(column.dtype))


def _convert_column(
    raw: pl.DataFrame,
    column: Column,
    table: Table,
    label: str,
    layers: list[list[pl.Expr]],
    profile: _Profile,
) -> _Converted:
    """The canonical value and checks of one column, nulls for an absent optional column.

    Intermediate steps are appended to `layers` (evaluated before value and checks).
    """
    if column.name not in raw.columns:
        return _Converted(_with_default(pl.lit(None, dtype=column.dtype), column))
    dtype = raw.schema[column.name]
    put = _Stager(layers, column.name, profile)
    try:
        converted = _CONVERTERS[column.kind](pl.col(column.name), dtype, column, put)
    except _UnsupportedType:
        raise SchemaError(
            f"{table.name}: column '{column.name}' has type {dtype}, which cannot be read as "
            f"{column.kind.value} (file {label})"
        ) from None
    value = put(_with_default(converted.value, column).cast(column.dtype))
    missing = ((value.is_null(), _MISSING),) if column.required else ()
    return _Converted(value, converted.checks + missing)


#: Kinds converted by `_convert_text`: their profile is `_text_facts`.
_TEXT_KINDS = frozenset(kind for kind, convert in _CONVERTERS.items() if convert is _convert_text)


def _text_facts(values: pl.Expr, kind: Kind) -> dict[str, pl.Expr]:
    """`plain_text` and `trimmed` of a String column, and `no_lower` for ID numbers (see
    `_Profile`)."""
    edges = (values.str.len_bytes() == 0) | values.str.starts_with(" ") | values.str.ends_with(" ")
    facts = {"plain_text": ~values.str.contains(_NEEDS_CLEANING).any(), "trimmed": ~edges.any()}
    if kind is Kind.ID_NUMBER:
        facts["no_lower"] = ~values.str.contains("[a-z]").any()
    return facts


def _scanned_text_profile(scan: ModuleType, kind: Kind, values: pl.Series) -> _Profile:
    """`_text_facts` by the compiled byte scan (no regex per value), and the row flags when
    some row needs work (a second pass, in the same scan's terms; the only one for ID
    numbers, whose rows are all asked about lower case)."""
    # Chunk by chunk, read in place (`to_arrow` of a whole chunked column copies it first).
    chunks = [c.to_arrow(compat_level=pl.CompatLevel.newest()) for c in values.get_chunks()]
    arrow = pa.chunked_array(chunks, type=pa.string_view())
    upper = kind is Kind.ID_NUMBER
    if not upper and scan.text_facts(arrow) == (True, True):  # the common answer, in one pass
        return _Profile(plain_text=True, trimmed=True)
    flags = np.frombuffer(scan.row_flags(arrow, upper), dtype=np.uint8)
    seen = int(np.bitwise_or.reduce(flags)) if len(flags) else 0
    profile = _Profile(
        plain_text=not seen & _NEEDS_CLEANING_BIT,
        trimmed=not seen & _EDGE_BIT,
        no_lower=upper and not seen & _LOWER_BIT,
    )
    return replace(profile, row_flags=pl.Series(values.name, flags)) if seen else profile


def _scan_columns(raw: pl.DataFrame, table: Table, scan: ModuleType) -> dict[str, _Profile]:
    """`_scanned_text_profile` of the String columns of text kinds; the scan releases the GIL:
    side by side."""
    columns = [
        column
        for column in table.columns
        if column.kind in _TEXT_KINDS and isinstance(raw.schema.get(column.name), pl.String)
    ]
    with ThreadPoolExecutor() as pool:
        found = pool.map(lambda c: _scanned_text_profile(scan, c.kind, raw[c.name]), columns)
        return {column.name: profile for column, profile in zip(columns, found, strict=True)}


def _profile_facts(name: str, kind: Kind) -> dict[str, pl.Expr]:
    """Boolean whole-column facts worth knowing for a String column of this kind."""
    values = pl.col(name)
    if kind in _TEXT_KINDS:
        return _text_facts(values, kind)
    if kind is Kind.TIME:
        return {
            time_format: (values.is_null() | values.str.contains(pattern)).all()
            for pattern, time_format in _PLAIN_TIMES.items()
        }
    if kind in (Kind.MONEY, Kind.QTY):
        return {
            "plain_decimal": (values.is_null() | values.str.contains(_PLAIN_DECIMAL_TEXT)).all()
        }
    return {}


def _profiles(raw: pl.DataFrame, table: Table) -> dict[str, _Profile]:
    """Facts about every present column: text by the compiled scan when it is built, the rest
    in one parallel pass of Polars expressions over the raw frame."""
    scan = _text_scan
    scanned = _scan_columns(raw, table, scan) if scan is not None else {}
    facts: dict[str, dict[str, pl.Expr]] = {}
    for column in table.columns:
        dtype = raw.schema.get(column.name)
        if isinstance(dtype, pl.String) and column.name not in scanned:
            facts[column.name] = _profile_facts(column.name, column.kind)
    exprs = [e.alias(f"{name}\x00{fact}") for name, fs in facts.items() for fact, e in fs.items()]
    found = raw.select(exprs).row(0, named=True) if exprs else {}
    profiles: dict[str, _Profile] = dict(scanned)
    for column in table.columns:
        if column.name in profiles:
            continue
        dtype = raw.schema.get(column.name)
        holds = {fact for fact in facts.get(column.name, {}) if found[f"{column.name}\x00{fact}"]}
        integers = dtype is not None and dtype.is_integer()  # their digits are canonical text
        time_format = next((f for f in _PLAIN_TIMES.values() if f in holds), None)
        profiles[column.name] = _Profile(
            plain_text="plain_text" in holds or integers,
            trimmed="trimmed" in holds or integers,
            no_lower="no_lower" in holds or integers,
            plain_decimal="plain_decimal" in holds,
            time_format=time_format,
        )
    return profiles


def _check_columns(raw: pl.DataFrame, table: Table, label: str) -> None:
    """Every required column must be present (SPEC §2); extra columns are ignored."""
    for name in table.required_columns:
        if name not in raw.columns:
            raise SchemaError(f"{table.name}: required column '{name}' is missing (file {label})")


def _raw_text(raw: pl.DataFrame, column: str) -> pl.Expr:
    """The raw value as text for the rejects table; identity columns masked."""
    dtype = raw.schema[column]
    expr = pl.col(column)
    if isinstance(dtype, pl.List):
        text = expr.list.eval(pl.element().cast(pl.String)).list.join(",")
    elif isinstance(dtype, pl.Date | pl.Datetime):
        text = _timestamp_text(expr, dtype)
    else:
        text = expr.cast(pl.String)
    return mask_expr(text, column) if column in IDENTITY_COLUMNS else text


def _timestamp_text(expr: pl.Expr, dtype: pl.Date | pl.Datetime) -> pl.Expr:
    """A Date or Datetime as Polars writes it; outside years 1000-2999 as its number: chrono,
    which writes them, panics on far ones (and those are the ones out of range)."""
    unit = "days" if isinstance(dtype, pl.Date) else dtype.time_unit
    near = exact_micros(expr, dtype).is_between(NEAR_FROM_US, NEAR_TO_US - 1)
    number = expr.to_physical().cast(pl.String) + f" {unit} since 1970-01-01"
    return pl.when(near).then(expr).cast(pl.String).fill_null(number)  # far: null before cast


def _conversion_rejects(
    bad_raw: pl.DataFrame, bad_rows: pl.Series, plan: _Plan, table: Table, label: str
) -> pl.DataFrame:
    """One rejects row per failed (row, column) of the flagged rows, in row then column order.

    The messages are evaluated on the flagged rows only: every step is row by row, and the
    whole-column facts behind `plan` hold for any subset of the rows.
    """
    present = [c.name for c in table.columns if c.name in bad_raw.columns]
    errors = (
        plan.staged(bad_raw)
        .select([plan.columns[name].error.alias(name) for name in present])
        .collect()
    )
    values = bad_raw.select([_raw_text(bad_raw, name) for name in present])
    parts = []
    for position, column in enumerate(table.columns):
        if column.name not in present or errors[column.name].null_count() == bad_raw.height:
            continue
        part = pl.DataFrame(
            {
                "row": bad_rows,
                "message": errors[column.name],
                "_position": position,
                "value": values[column.name],
            }
        )
        parts.append(
            part.filter(pl.col("message").is_not_null()).with_columns(column=pl.lit(column.name))
        )
    if not parts:
        return empty_rejects()
    stacked = pl.concat(parts).sort(["row", "_position"])
    return stacked.select(
        table=pl.lit(table.name),
        file=pl.lit(label),
        row="row",
        column="column",
        value="value",
        message="message",
    )


def _key_text(table: Table) -> pl.Expr:
    """The key values joined by '|', identity values masked."""
    parts = [
        mask_expr(pl.col(name).cast(pl.String), name)
        if table.column(name).identity
        else pl.col(name).cast(pl.String)
        for name in table.key
    ]
    return pl.concat_str(parts, separator="|")


def _drop_duplicate_keys(
    frame: pl.DataFrame, table: Table, label: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """First row per key is kept; later copies become rejects naming the kept row."""
    if not table.unique or frame.is_empty():
        return frame, empty_rejects()
    keys = list(table.key)
    # Distinct hashes prove distinct keys, for a third of the cost of finding the first copies.
    if frame.select(keys).hash_rows().n_unique() == frame.height:
        return frame, empty_rejects()
    first = frame.select(pl.struct(keys).is_first_distinct()).to_series()
    if first.all():
        return frame, empty_rejects()
    kept = frame.filter(first).select(*keys, pl.col(ROW).alias("\x00kept"))
    copies = frame.filter(~first).join(kept, on=keys, how="left", maintain_order="left")
    key_list = ", ".join(keys)
    rejects = copies.select(
        table=pl.lit(table.name),
        file=pl.lit(label),
        row=pl.col(ROW),
        column=pl.lit(",".join(keys)),
        value=_key_text(table),
        message=pl.format(
            "duplicate key ({}); the copy at row {} is kept", pl.lit(key_list), pl.col("\x00kept")
        ),
    )
    return frame.filter(first), rejects


def order_dates(app_time: pl.Expr) -> list[pl.Expr]:
    """`_app_year` (Int32) and `_app_ymd` (Int64) of app_time in Asia/Shanghai (engines read
    these, not zones), for every int64 time: years reach ±294,000, so YYYYMMDD needs Int64."""
    china = china_time(app_time)
    year = china.year
    month_day = china.local.dt.month().cast(pl.Int64) * 100 + china.local.dt.day().cast(pl.Int64)
    return [year.cast(pl.Int32).alias(APP_YEAR), (year * 10_000 + month_day).alias(APP_YMD)]


def _as_table(table: Table | str) -> Table:
    if isinstance(table, Table):
        return table
    if table not in TABLES:
        raise SchemaError(f"unknown table '{table}' (tables: {', '.join(TABLES)})")
    return TABLES[table]


def _textual_categoricals(raw: pl.DataFrame) -> pl.DataFrame:
    """Dictionary-encoded text (Categorical/Enum) is read as plain String."""
    casts = [
        pl.col(name).cast(pl.String)
        for name, dtype in raw.schema.items()
        if isinstance(dtype, pl.Categorical | pl.Enum)
    ]
    return raw.with_columns(casts) if casts else raw


@dataclass(frozen=True)
class _Plan:
    """How a raw frame converts: staged intermediate steps, then each column's value and checks.

    Built from the raw frame's types and whole-column facts; every step is row by row, so the
    plan also applies to any subset of the rows.
    """

    layers: list[list[pl.Expr]]
    columns: dict[str, _Converted]

    def staged(self, raw: pl.DataFrame) -> pl.LazyFrame:
        """`raw` with the intermediate steps as hidden columns."""
        staged = raw.lazy()
        for layer in self.layers:
            staged = staged.with_columns(layer)
        return staged


def _plan(raw: pl.DataFrame, spec: Table, label: str) -> tuple[pl.DataFrame, _Plan]:
    """The plan, and `raw` with the hidden columns it reads (rows that need cleaning)."""
    layers: list[list[pl.Expr]] = []
    profiles = _profiles(raw, spec)
    columns = {
        c.name: _convert_column(raw, c, spec, label, layers, profiles[c.name]) for c in spec.columns
    }
    flags = [
        profile.row_flags.alias(_row_flags_name(name))
        for name, profile in profiles.items()
        if profile.row_flags is not None
    ]
    return (raw.with_columns(flags) if flags else raw), _Plan(layers, columns)


def _row_numbers(raw: pl.DataFrame, rows: pl.Series | None, label: str) -> pl.Expr:
    """The 1-based source row of each raw row: `rows` when given, else 1..height."""
    if rows is None:
        return pl.int_range(1, pl.len() + 1, dtype=pl.Int64)
    if len(rows) != raw.height:
        raise ValueError(f"{label}: {len(rows)} row numbers given for {raw.height} rows")
    return pl.lit(rows.cast(pl.Int64))


def _convert_frame(raw: pl.DataFrame, spec: Table, plan: _Plan, rows: pl.Expr) -> pl.DataFrame:
    """Every canonical column, `_row`, the order dates and the flag `_BAD`, in one pass."""
    derived = order_dates(plan.columns["app_time"].value) if spec.name == "orders" else []
    failed = [c.failed for c in plan.columns.values() if c.checks]
    return (
        plan.staged(raw)
        .select(
            rows.alias(ROW),
            *[c.value.alias(name) for name, c in plan.columns.items()],
            *derived,
            pl.any_horizontal(failed).alias(_BAD) if failed else pl.lit(False).alias(_BAD),
        )
        .collect()
    )


def normalise_table(
    raw: pl.DataFrame | RawSource,
    table: Table | str,
    label: str | None = None,
    *,
    rows: pl.Series | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Convert one raw frame to its canonical table (SPEC §1-2) and the rows it rejects.

    `label` names the source in messages (default: the RawSource's label, or "<table>");
    `rows` gives the 1-based source row number of each raw row (default 1..height). Returns
    (canonical frame with `_row`, rejects frame of `REJECTS_SCHEMA`). A missing required column
    or an unconvertible column type raises SchemaError.
    """
    spec = _as_table(table)
    reader_rejects = empty_rejects()
    if isinstance(raw, RawSource):
        label = label or raw.label
        rows = raw.rows if rows is None else rows
        reader_rejects = raw.rejects
        raw = raw.frame
    label = label or f"<{spec.name}>"
    _check_columns(raw, spec, label)
    raw = _textual_categoricals(raw)
    raw, plan = _plan(raw, spec, label)
    converted = _convert_frame(raw, spec, plan, _row_numbers(raw, rows, label))
    bad = converted[_BAD]
    has_bad = bool(bad.any())
    conversion_rejects = (
        _conversion_rejects(raw.filter(bad), converted[ROW].filter(bad), plan, spec, label)
        if has_bad
        else empty_rejects()
    )
    derived = [APP_YEAR, APP_YMD] if spec.name == "orders" else []
    canonical = converted[[*spec.column_names, ROW, *derived]]  # picks columns, no copy
    if has_bad:
        canonical = canonical.filter(~bad)
    # One chunk per column: engines and render pick rows by position, which is several times
    # slower across chunks (one per Parquet row group and more); the copy is a cheap pass, and
    # the duplicate-key check reads the keys faster from one chunk.
    canonical, duplicate_rejects = _drop_duplicate_keys(canonical.rechunk(), spec, label)
    rejects = concat_rejects([reader_rejects, conversion_rejects, duplicate_rejects])
    return canonical, rejects


# --- all tables -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedTables:
    """Every given table normalised, all rejects, and the row count read from each source."""

    tables: CanonicalTables
    rejects: pl.DataFrame
    input_rows: dict[str, int]


def _table_sources(sources: Mapping[str, Source] | str | os.PathLike[str]) -> dict[str, Source]:
    """The given (non-None) sources by table name, checked against the schema's tables."""
    if isinstance(sources, str | os.PathLike):
        return dict(discover(Path(sources)))
    given = {name: source for name, source in sources.items() if source is not None}
    for name in given:
        if name not in TABLES:
            raise SchemaError(f"unknown table '{name}' (tables: {', '.join(TABLES)})")
    for name in REQUIRED_TABLES:
        if name not in given:
            raise SchemaError(f"required table {name} is missing")
    return given


@dataclass(frozen=True)
class LoadedTable:
    """One table normalised: its canonical frame, its rejects, and the rows read from it."""

    name: str
    frame: pl.DataFrame
    rejects: pl.DataFrame
    input_rows: int


def iter_tables(
    sources: Mapping[str, Source] | str | os.PathLike[str],
    *,
    progress: PhaseTracker | None = None,
) -> Iterator[LoadedTable]:
    """Read and normalise the given tables one at a time, in table order (see `load_tables`).

    Only one raw table is in memory at a time, and nothing here keeps a table once it is
    handed over: a caller that writes each and lets it go holds one table in all. Every source
    is checked to open before the first is read. Timed as the phases "read" and "normalise"
    of `progress`.
    """
    given = _table_sources(sources)
    tracker = progress or PhaseTracker()
    with tracker.phase("read"):
        check_sources(given)
    for name in TABLES:
        if name in given:
            yield _load_one(name, given[name], tracker)


def _load_one(name: str, source: Source, tracker: PhaseTracker) -> LoadedTable:
    with tracker.phase("read"):
        raw = read_source(source, name)
    with tracker.phase("normalise"):
        frame, rejects = normalise_table(raw, TABLES[name])
    return LoadedTable(name, frame, rejects, raw.frame.height + raw.rejects.height)


def load_tables(
    sources: Mapping[str, Source] | str | os.PathLike[str],
    *,
    progress: PhaseTracker | None = None,
) -> LoadedTables:
    """Read and normalise every table: a mapping of table name -> source, or a data directory.

    Required tables must be present (SchemaError names the missing one); optional ones may be
    left out. Rejects of all tables are stacked in table order (SPEC §2). Tables are read and
    normalised one at a time, timed as the phases "read" and "normalise" of `progress`.
    """
    loaded = list(iter_tables(sources, progress=progress))
    frames = {table.name: table.frame for table in loaded}
    rejects = [table.rejects for table in loaded]
    input_rows = {table.name: table.input_rows for table in loaded}
    return LoadedTables(
        tables=CanonicalTables(**frames),
        rejects=concat_rejects(rejects),
        input_rows=input_rows,
    )
