"""One message at a time -> canonical rows, with the batch normaliser's exact semantics (SPEC §1).

The batch normaliser (`matchcore.normalise`) converts whole columns with Polars; its fixed
cost per call (tens of milliseconds) would dominate a streaming micro-batch of a few orders.
Streaming converts each document once, when it comes, and keeps the row. Every rule here
restates one in normalise.py (white space is Unicode White_Space, as in Polars, not Python's
`str.isspace`); `tests/stream/test_stream_canonical.py` checks the two agree on random values.

The functions below are plain Python. When the extension is built, `clean_text`, `id_number`,
`units`, `utc_micros` and `china_dates` and the rows of `RowMaker` come from its compiled twins
(src_ext/intake.pyx): C for the common forms of values, these functions for the rest;
`tests/stream/test_stream_intake.py` checks the twins agree.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from operator import attrgetter, itemgetter
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

from ..china_time import CYCLE_US, CYCLE_YEARS
from ..normalise import CUSTOMS_TIME, DECIMAL_TEXT, ISO_TIME, TIME_OFFSET
from ..schema import APP_YEAR, APP_YMD, CHINA_TZ, MONEY_SCALE, ROW, Column, Kind, Table

_intake: ModuleType | None
try:
    from .._native import intake as _intake
except ImportError:  # not built: the Python converters below do all the work
    _intake = None

#: Unicode White_Space: what Polars trims and what the Rust regex `\s` matches.
WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_WHITE_RUN = re.compile(f"[{WHITE_SPACE}]+")
#: Text the normaliser leaves as it is apart from trimming spaces (its `_NEEDS_CLEANING`).
_NEEDS_CLEANING = re.compile(f"[^\\x00-\\x7F\\u4E00-\\u9FFF]|[{WHITE_SPACE.replace(' ', '')}]|  ")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")

_INT64_MAX = 2**63 - 1
_SCALE_DIGITS = len(str(MONEY_SCALE)) - 1


def _python_regex(pattern: str) -> re.Pattern[str]:
    """A normaliser pattern for Python's `re` (named groups are spelled `(?P<name>`)."""
    return re.compile(pattern.replace("(?<", "(?P<"))


_DECIMAL_TEXT = _python_regex(DECIMAL_TEXT)
_ISO_TIME = _python_regex(ISO_TIME)
_CUSTOMS_TIME = _python_regex(CUSTOMS_TIME)
_OFFSET = _python_regex(TIME_OFFSET)
_CHINA = ZoneInfo(CHINA_TZ)
_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
#: Asia/Shanghai has kept UTC+8 without daylight saving since 1992: no zone lookup needed.
_FIXED_SINCE = datetime(1992, 1, 1)
_FIXED_OFFSET = timedelta(hours=8)
_FIXED_SINCE_US = (_FIXED_SINCE - _FIXED_OFFSET - _EPOCH) // _MICROSECOND
_FIXED_OFFSET_US = _FIXED_OFFSET // _MICROSECOND
#: Before 1901 the zone keeps local mean time, a constant offset: times near year 1 (and near
#: 9999, after 1992) are worked out in integers, where `datetime` would leave its range while
#: Polars, and so batch, does not.
_RULES_SINCE = datetime(1900, 1, 1)
_RULES_SINCE_US = (_RULES_SINCE - timedelta(days=1) - _EPOCH) // _MICROSECOND
_MEAN_TIME_US = (_RULES_SINCE.replace(tzinfo=_CHINA).utcoffset() or timedelta()) // _MICROSECOND
_CYCLE_START_US = (datetime(2000, 1, 1) - _EPOCH) // _MICROSECOND


class Invalid(Exception):
    """A value the batch normaliser would reject (its row goes to rejects)."""


def python_clean_text(value: str | None) -> str | None:
    """NFKC, trimmed, inner white space collapsed to one space; empty -> None (SPEC §1)."""
    if value is None:
        return None
    # Printable ASCII without double spaces is the common case, told in C without a regex.
    if (value.isascii() and value.isprintable() and "  " not in value) or (
        _NEEDS_CLEANING.search(value) is None
    ):
        return value.strip(" ") or None
    cleaned = _WHITE_RUN.sub(" ", unicodedata.normalize("NFKC", value).strip(WHITE_SPACE))
    return cleaned or None


def _stripped(value: object) -> str | None:
    """Text with surrounding white space removed; None and empty text -> None."""
    if value is None:
        return None
    return str(value).strip(WHITE_SPACE) or None


def python_units(value: object) -> int | None:
    """Decimal text -> int ten-thousandths, exactly, as the normaliser does."""
    text = _stripped(value)
    if text is None:
        return None
    whole, _, fraction = text.partition(".")
    if not (text.isascii() and whole.isdigit() and (fraction.isdigit() or not fraction)):
        # Not the usual plain digits, which need no regex: a sign, a leading point, or bad text.
        if _DECIMAL_TEXT.fullmatch(text) is None:
            raise Invalid("not a decimal number")
        whole, _, fraction = text.lstrip("+-").partition(".")
    number = _ten_thousandths(whole, fraction.rstrip("0"))  # trailing zeros are not places
    if text.startswith("-") and number > 0:
        raise Invalid("negative amount")
    return number


def _ten_thousandths(whole: str, fraction: str) -> int:
    """ASCII digits before and after the point -> ten-thousandths, checked."""
    if len(fraction) > _SCALE_DIGITS:
        raise Invalid("more than 4 decimal places")
    number = int((whole + fraction) or "0") * 10 ** (_SCALE_DIGITS - len(fraction))
    if number > _INT64_MAX:
        raise Invalid("too large")
    return number


def python_whole_number(value: object) -> int | None:
    """An int64 (gnum)."""
    if value is None:
        return None
    if isinstance(value, int) and -_INT64_MAX - 1 <= value <= _INT64_MAX:
        return value
    raise Invalid("not a whole number in int64")


def _micros(naive: datetime) -> int:
    return (naive - _EPOCH) // _MICROSECOND


def _local_to_utc(naive: datetime) -> int:
    """Asia/Shanghai wall time -> UTC microseconds: the earlier instant when ambiguous, Invalid
    when skipped."""
    if naive >= _FIXED_SINCE:
        return _micros(naive) - _FIXED_OFFSET_US
    if naive < _RULES_SINCE:
        return _micros(naive) - _MEAN_TIME_US
    utc = naive.replace(tzinfo=_CHINA, fold=0).astimezone(UTC)
    if utc.astimezone(_CHINA).replace(tzinfo=None) != naive:  # skipped by daylight saving
        raise Invalid("time does not exist in Asia/Shanghai")
    return _micros(utc.replace(tzinfo=None))


def _wall_date(micros: int) -> tuple[int, int, int]:
    """(year, month, day) of a wall time given as microseconds, for any int64: moved by whole
    400-year cycles into the range of `datetime`, the year moved back after."""
    cycles = (micros - _CYCLE_START_US) // CYCLE_US
    day = _EPOCH + timedelta(microseconds=micros - cycles * CYCLE_US)
    return day.year + CYCLE_YEARS * cycles, day.month, day.day


def _offset_minutes(tz: str) -> int:
    if tz in ("Z", "z"):
        return 0
    match = _OFFSET.fullmatch(tz)
    assert match is not None  # the time pattern only admits offsets of this form
    minutes = int(match["hh"]) * 60 + int(match["mm"] or 0)
    return -minutes if match["sign"] == "-" else minutes


def python_utc_micros(value: object) -> int | None:
    """ISO 8601 (offset optional) or yyyyMMdd[HHmmss] -> microseconds since the epoch, UTC."""
    text = _stripped(value)
    if text is None:
        return None
    match = _ISO_TIME.fullmatch(text) or _CUSTOMS_TIME.fullmatch(text)
    if match is None:
        raise Invalid("not a valid time")
    parts = match.groupdict()
    try:
        naive = datetime(
            int(parts["y"]),
            int(parts["mo"]),
            int(parts["d"]),
            int(parts["h"] or 0),
            int(parts["mi"] or 0),
            int(parts["s"] or 0),
            int((parts.get("f") or "0").ljust(6, "0")[:6]),
        )
    except ValueError:
        raise Invalid("not a valid time") from None
    tz = parts.get("tz")
    if tz:
        return _micros(naive) - _offset_minutes(tz) * 60_000_000
    return _local_to_utc(naive)


def python_china_dates(micros: int) -> tuple[int, int]:
    """(year, YYYYMMDD) of a UTC instant in Asia/Shanghai: the order's `_app_year`, `_app_ymd`."""
    if micros >= _FIXED_SINCE_US:
        local = micros + _FIXED_OFFSET_US
    elif micros < _RULES_SINCE_US:
        local = micros + _MEAN_TIME_US
    else:
        instant = (_EPOCH + timedelta(microseconds=micros)).replace(tzinfo=UTC)
        local = _micros(instant.astimezone(_CHINA).replace(tzinfo=None))
    year, month, day = _wall_date(local)
    return year, year * 10_000 + month * 100 + day


def python_id_number(value: str | None) -> str | None:
    """An ID number as compared: canonical text with ASCII letters upper-cased."""
    text = python_clean_text(value)
    return text.translate(_ASCII_UPPER) if text is not None else None


def _text_kind(kind: Kind, column: Column) -> Callable[[object], Any]:
    if kind in (Kind.TEXT, Kind.CODE):
        return python_clean_text  # type: ignore[return-value]
    if kind is Kind.ID_NUMBER:
        return python_id_number  # type: ignore[return-value]

    def enum(value: object) -> str | None:
        text = python_clean_text(value)  # type: ignore[arg-type]
        if text is None:
            return None
        text = text.lower()
        if text not in column.values:
            raise Invalid(f"not one of {', '.join(column.values)}")
        return text

    return enum


def converter(column: Column) -> Callable[[object], Any]:
    """The per-value conversion of one document column (the kinds documents use), in Python."""
    kind = column.kind
    if kind in (Kind.TEXT, Kind.CODE, Kind.ID_NUMBER, Kind.ENUM):
        return _text_kind(kind, column)
    if kind in (Kind.MONEY, Kind.QTY):
        return python_units
    if kind is Kind.INT:
        return python_whole_number
    if kind is Kind.TIME:
        return python_utc_micros
    raise ValueError(f"documents have no {kind.value} columns")


_ARROW_TYPES: dict[Kind, pa.DataType] = {
    Kind.TEXT: pa.string(),
    Kind.CODE: pa.string(),
    Kind.ID_NUMBER: pa.string(),
    Kind.ENUM: pa.string(),
    Kind.MONEY: pa.int64(),
    Kind.QTY: pa.int64(),
    Kind.INT: pa.int64(),
    Kind.TIME: pa.timestamp("us", tz="UTC"),
}


def row_values(table: Table) -> list[str]:
    """The values of a row of every column of `table`: its columns in table order, then for
    orders the two dates derived from app_time (`_app_year`, `_app_ymd`)."""
    return [*table.column_names, *((APP_YEAR, APP_YMD) if table.name == "orders" else ())]


class RowMaker:
    """Canonical rows of one table: a tuple per document, or Invalid.

    Every column is converted and checked, as batch converts it; the table keeps the values of
    the `kept` columns only (None: every column), in table order, then the order's dates when
    kept (`kept_names`); a table made of rows gets the others as nulls. A row holds those but
    the `apart` ones (`held_names`): its holder keeps their values anyway (a document's own
    key, what it links by) and gives them back to `frame`; and with `derive_dates` but the
    order's dates, which `frame` derives from app_time (`china_dates`: exact, and cheap beside
    a row's memory). The first `given` columns are not the source's (an order line's order
    key is its order's): neither read nor checked, and kept apart.
    """

    def __init__(
        self,
        table: Table,
        fields: dict[str, str] | None = None,
        kept: Collection[str] | None = None,
        apart: Collection[str] = (),
        given: int = 0,
        derive_dates: bool = False,
    ) -> None:
        self.table = table
        fields = fields or {}
        #: (message attribute, conversion, required, default) per canonical column.
        self._plan = [
            (fields.get(c.name, c.name), converter(c), c.required, c.default) for c in table.columns
        ]
        self.given = given
        #: The plan of the source's columns, and their attributes read at once.
        self._read_plan = self._plan[given:]
        assert len(self._read_plan) > 1  # attrgetter of one name gives the value, not a tuple
        self._read = attrgetter(*(step[0] for step in self._read_plan))
        self.dates = table.name == "orders"
        self._app_time = table.column_names.index("app_time") if self.dates else -1
        self._types = [_ARROW_TYPES[c.kind] for c in table.columns]
        self._names = [*table.column_names, ROW]
        self._structs: dict[tuple[str, ...], pa.StructType] = {}  # see `frame`
        if self.dates:
            self._types += [pa.int32(), pa.int64()]
            self._names += [APP_YEAR, APP_YMD]
        count = len(table.columns)
        #: The canonical table's schema (`schema`; made once: naming the columns per call costs
        #: more).
        self._schema = pa.schema(
            zip(self._names, [*self._types[:count], pa.int64(), *self._types[count:]], strict=True)
        )
        values = self._values = row_values(table)
        #: Where a row's values are in a row of every column (their order: table order).
        self._kept = [at for at, name in enumerate(values) if kept is None or name in kept]
        #: The kept values `frame` derives, not held in a row: the order's dates (the last two).
        dates_kept = self.dates and values.index(APP_YEAR) in self._kept
        self.derived = 2 if derive_dates and dates_kept else 0
        if self.derived:
            assert self._kept[-2:] == [len(table.columns), len(table.columns) + 1]
            assert self._app_time in self._kept  # what they derive from
        #: The kept columns a row leaves out, in table order.
        self.apart = [values[at] for at in self._kept if values[at] in apart]
        assert len(self.apart) == len(apart) and set(values[:given]) <= set(apart)
        #: Where a row's values are in a row of every column: those kept but the ones apart and
        #: the derived ones.
        self._held = [
            at for at in self._kept[: len(self._kept) - self.derived] if values[at] not in apart
        ]
        #: A row of every column -> the row held (None: the same row; itemgetter gives a tuple
        #: of two or more).
        assert len(self._held) > 1
        self._narrow = itemgetter(*self._held) if len(self._held) < len(values) else None
        #: The compiled `python_row` (see src_ext/intake.pyx), None when the extension is not
        #: built; `row(source)` is the one or the other.
        self.plan: Any = self._compiled_plan() if _intake is not None else None
        self.row: Callable[[object], tuple[Any, ...]] = (
            self.plan.row if self.plan is not None else self.python_row
        )

    def python_row(self, source: object) -> tuple[Any, ...]:
        """The canonical values of `source`'s attributes (those held); Invalid when the batch
        would reject any of them. `row` gives the same, compiled."""
        plan = self._read_plan
        try:
            found = self._read(source)
        except AttributeError:  # a source without some attributes: those are null
            found = tuple(getattr(source, step[0], None) for step in plan)
        values: list[Any] = [None] * self.given  # not the source's, and not held
        for (attribute, convert, required, default), raw in zip(plan, found, strict=True):
            try:
                value = convert(raw) if raw is not None else None  # every conversion keeps null
            except Invalid as exc:
                raise Invalid(f"field {attribute}: {exc}") from None
            if value is None:
                if default is not None:
                    value = default
                elif required:
                    raise Invalid(f"field {attribute}: required value is missing")
            values.append(value)
        if self.dates and not self.derived:
            values.extend(python_china_dates(values[self._app_time]))
        return self._narrow(values) if self._narrow is not None else tuple(values)

    def _compiled_plan(self) -> Any:
        """`python_row` compiled (see src_ext/intake.pyx), which leaves invalid rows to it."""
        assert _intake is not None
        return _intake.RowPlan(
            [step[0] for step in self._plan],
            [_COMPILED_KINDS.get(c.kind, _intake.OTHER) for c in self.table.columns],
            [step[1] for step in self._plan],
            [step[2] for step in self._plan],
            [step[3] for step in self._plan],
            self._app_time if not self.derived else -1,  # -1: no dates to make
            python_china_dates,
            self.python_row,
            self._held,
            self.given,
        )

    @property
    def types(self) -> list[pa.DataType]:
        """The Arrow type of each kept value (see `kept_names`)."""
        return [self._types[at] for at in self._kept]  # a new list: `frame` reads its own

    @property
    def kept_names(self) -> list[str]:
        """The columns whose values the table keeps, in table order (see `row_values`: the
        derived dates last): those apart and those a row holds (`held_names`)."""
        return [self._values[at] for at in self._kept]

    @property
    def held_names(self) -> list[str]:
        """The columns whose values a row holds, in its order (`kept_names` less those apart
        and the derived dates)."""
        return [self._values[at] for at in self._held]

    @property
    def schema(self) -> pa.Schema:
        """The canonical table's Arrow schema: the columns, `_row` (at `row_at`), the dates."""
        return self._schema

    @property
    def row_at(self) -> int:
        """The position of `_row` in `schema`: after the table's columns."""
        return len(self.table.columns)

    @property
    def kept_fields(self) -> list[int]:
        """The position in `schema` of each value of a row (`held_names`); the others but
        `_row`, those apart and the derived dates are null."""
        return [at if at < self.row_at else at + 1 for at in self._held]

    def frame(
        self, rows: Sequence[tuple[Any, ...]], columns: Mapping[str, Sequence[Any]] | None = None
    ) -> pa.Table:
        """Rows -> the canonical table (with `_row` 1..n) as Arrow, the columns and types
        `normalise_table` gives (null where not kept), in one Arrow conversion for all values
        (each `pa.array` call has a fixed cost that dominates a micro-batch of a few rows).
        `columns` holds the values of some kept columns by name (those apart, which a document's
        holder keeps); `rows` are tuples of the other kept values (less the `derived` dates)."""
        given = columns or {}
        end = len(self._kept) - self.derived
        names = tuple(given)
        struct = self._structs.get(names)
        if struct is None:
            fields = zip(self.kept_names[:end], self.types[:end], strict=True)
            struct = self._structs[names] = pa.struct([f for f in fields if f[0] not in given])
        values = self._values
        rest = iter(pa.RecordBatch.from_struct_array(pa.array(rows, struct)).columns)
        kept = {
            at: pa.array(given[values[at]], self._types[at]) if values[at] in given else next(rest)
            for at in self._kept[:end]
        }
        if self.derived:
            times = kept[self._app_time].cast(pa.int64())
            dates = [china_dates(t) if t is not None else (None, None) for t in times.to_pylist()]
            for part, at in enumerate(self._kept[end:]):
                kept[at] = pa.array([date[part] for date in dates], self._types[at])
        return self.from_columns(
            [
                kept[at] if at in kept else pa.nulls(len(rows), kind)
                for at, kind in enumerate(self._types)
            ]
        )

    def from_columns(self, columns: Sequence[pa.Array]) -> pa.Table:
        """The values of every column (then the order's dates) as Arrow arrays -> the canonical
        table (with `_row` 1..n after the table's columns), as `frame` gives it."""
        numbers = pa.array(np.arange(1, len(columns[0]) + 1, dtype=np.int64))
        count = self.row_at
        return pa.Table.from_arrays(
            [*columns[:count], numbers, *columns[count:]], schema=self._schema
        )


#: The pure-Python converters above, or their compiled twins when the extension is built (which
#: use the Python ones for any value not in a common form).
clean_text: Callable[[str | None], str | None] = python_clean_text
id_number: Callable[[str | None], str | None] = python_id_number
units: Callable[[object], int | None] = python_units
utc_micros: Callable[[object], int | None] = python_utc_micros
china_dates: Callable[[int], tuple[int, int]] = python_china_dates
#: Canonical kind -> the compiled fast path of its values (ENUM values always take Python's).
_COMPILED_KINDS: dict[Kind, int] = {}
if _intake is not None:
    clean_text = _intake.Converter(_intake.TEXT, python_clean_text)
    id_number = _intake.Converter(_intake.ID_NUMBER, python_id_number)
    units = _intake.Converter(_intake.AMOUNT, python_units)
    utc_micros = _intake.Converter(_intake.TIME, python_utc_micros)
    china_dates = _intake.Converter(_intake.CHINA_DATES, python_china_dates)
    _COMPILED_KINDS = {
        Kind.TEXT: _intake.TEXT,
        Kind.CODE: _intake.TEXT,
        Kind.ID_NUMBER: _intake.ID_NUMBER,
        Kind.MONEY: _intake.AMOUNT,
        Kind.QTY: _intake.AMOUNT,
        Kind.INT: _intake.WHOLE,
        Kind.TIME: _intake.TIME,
    }
