"""`read_ceb`: CEB311/411/511/621 messages -> raw SPEC §2 tables, rejects and notes.

Values stay the strings written in the XML (normalisation converts them), except times, which
become ISO text `YYYY-MM-DD HH:MM:SS` in China time. Bad content becomes rejects rows naming the
file, message guid and element. appType: once a document key has a modify (2) or delete (3),
its latest version by appTime wins and a delete drops it (see `resolve_versions`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ...exceptions import InputError
from ...schema import TABLES, Kind
from .._common import RawSource
from .._rejects import REJECTS_SCHEMA, concat_rejects, empty_rejects
from .mapping import (
    APP_TIME_COLUMN,
    APP_TYPE_DELETE,
    DOCUMENT_COLUMN,
    DOCUMENTS,
    FILE_COLUMN,
    INDEX_COLUMN,
    MESSAGE_COLUMN,
    TRACE_COLUMNS,
    DocumentSpec,
    column_kind,
    number_elements,
    required_elements,
    time_elements,
)
from .parser import (
    DocumentProblem,
    MessageError,
    MessageInfo,
    head_elements,
    list_elements,
    parse_message,
)
from .sources import CebSource, SideTable, iter_sources, locate

_SEQ = "_seq"  # global position of a document in input order
_LINE = "_line"  # 1-based position of a list element in its document
_FILE_ID = "_file_id"

_DECIMAL_PATTERN = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*$"
_INTEGER_PATTERN = r"^\s*[+-]?\d+\s*$"
_TIME_PATTERN = r"^\d{14}(\d{1,6})?$"


@dataclass
class CebData:
    """What `read_ceb` found: raw tables (SPEC §2 names, string values), rejects and notes.

    Document tables carry `_file`, `_message`, `_document` and `_index` so any row can be traced
    to its XML. `notes` counts files, messages (and `messages_rejected`), and per table
    `<table>.documents` read, `<table>.deleted` (keys removed by a delete) and
    `<table>.superseded` (older versions dropped).
    """

    tables: dict[str, pl.DataFrame]
    rejects: pl.DataFrame = field(default_factory=empty_rejects)
    notes: dict[str, int] = field(default_factory=dict)
    label: str = "<ceb>"

    def sources(self) -> dict[str, RawSource]:
        """One RawSource per table (CEB rejects attached), for `matchcore.api.match_sources`."""
        # Rejects of no table present (unknown message types) ride with the orders, so they
        # are counted and reported rather than lost.
        home = "orders" if "orders" in self.tables else next(iter(self.tables), None)
        table = pl.col("table")
        unplaced = table.is_null() | ~table.is_in(list(self.tables))
        out: dict[str, RawSource] = {}
        for name, frame in self.tables.items():
            mine = (table == name) | (unplaced & pl.lit(name == home))
            rejects = self.rejects.filter(mine.fill_null(False))
            out[name] = RawSource(frame=frame, label=f"{self.label} ({name})", rejects=rejects)
        return out


# --------------------------------------------------------------------------- collecting rows


def _head_names(spec: DocumentSpec) -> list[str]:
    return list(head_elements(spec))


def _list_names(spec: DocumentSpec) -> list[str]:
    return list(list_elements(spec))


class _Rows:
    """Rows of one document type, kept column-wise: Polars builds each table from lists once.

    Head values sit in one flat list (`width` per head, in `head_elements` order), line values
    likewise; `_columns` slices them into columns.
    """

    __slots__ = (
        "file_ids",
        "messages",
        "indexes",
        "seqs",
        "values",
        "line_seqs",
        "line_numbers",
        "line_values",
    )

    def __init__(self) -> None:
        self.file_ids: list[int] = []
        self.messages: list[str | None] = []
        self.indexes: list[int] = []
        self.seqs: list[int] = []
        self.values: list[str | None] = []
        self.line_seqs: list[int] = []
        self.line_numbers: list[int] = []
        self.line_values: list[str | None] = []

    def sizes(self) -> tuple[int, ...]:
        return tuple(len(getattr(self, name)) for name in self.__slots__)

    def truncate(self, sizes: tuple[int, ...]) -> None:
        """Drop what was added after `sizes` (a message that turned out unusable)."""
        for name, size in zip(self.__slots__, sizes, strict=True):
            del getattr(self, name)[size:]


def _columns(values: list[str | None], names: list[str]) -> dict[str, list[Any]]:
    width = len(names)
    return {name: values[i::width] for i, name in enumerate(names)}


class _Collector:
    """Rows of every document table and the problems met, gathered message by message."""

    def __init__(self) -> None:
        self.labels: list[str] = []
        self.rows: dict[str, _Rows] = {s.doc_type: _Rows() for s in DOCUMENTS}
        self.problems: list[tuple[object, ...]] = []
        self.notes: Counter[str] = Counter()
        self.seen_types: set[str] = set()  # message types met, even if rejected
        self._seq = 0

    def add_message(self, label: str, source: object, size: int | None) -> None:
        """Parse one message; its rows are kept only if the whole message is well formed."""
        file_id = len(self.labels)
        self.labels.append(label)
        info = MessageInfo()
        sizes = {doc_type: rows.sizes() for doc_type, rows in self.rows.items()}
        problems: list[tuple[object, ...]] = []
        seq = self._seq
        all_rows = self.rows
        try:
            for item in parse_message(source, info, size=size):  # type: ignore[arg-type]
                if isinstance(item, DocumentProblem):
                    problems.append(_structure_problem(item, label, info.guid))
                    continue
                seq += 1
                spec = item.spec
                rows = all_rows[spec.doc_type]
                rows.file_ids.append(file_id)
                rows.messages.append(info.guid)
                rows.indexes.append(item.index)
                rows.seqs.append(seq)
                rows.values += item.head
                lines = item.lines
                if lines and spec.list_table is not None:
                    count = len(lines)
                    rows.line_seqs += [seq] * count
                    rows.line_numbers += range(1, count + 1)
                    for line in lines:
                        rows.line_values += line
        except MessageError as error:
            for doc_type, rows in self.rows.items():
                rows.truncate(sizes[doc_type])
            self._note_type(info)
            self.notes["messages_rejected"] += 1
            self.problems.append(_message_problem(info, label, str(error)))
            return
        self._note_type(info)
        self._seq = seq
        self.notes["messages"] += 1
        self.problems.extend(problems)

    def _note_type(self, info: MessageInfo) -> None:
        if info.spec is not None:
            self.seen_types.add(info.spec.doc_type)


def _structure_problem(item: DocumentProblem, label: str, guid: str | None) -> tuple[object, ...]:
    where = f"{item.spec.code} message {guid or '(no guid)'}"
    if item.index:
        where += f", document #{item.index}"
    return (item.spec.table, label, item.index or None, item.element, None, f"{where}: {item.text}")


def _message_problem(info: MessageInfo, label: str, text: str) -> tuple[object, ...]:
    table = info.spec.table if info.spec is not None else None
    code = info.spec.code if info.spec is not None else "CEB"
    what = f"{code} message {info.guid}" if info.guid else f"{code} message"
    return (table, label, None, None, None, f"{what} rejected: {text}")


# --------------------------------------------------------------------------- checking rows


def _prefix(spec: DocumentSpec, element: str, line: bool) -> pl.Expr:
    """Text naming the message, document (and line) a problem is in."""
    parts: list[pl.Expr] = [
        pl.lit(f"{spec.code} message "),
        pl.col(MESSAGE_COLUMN).fill_null("(no guid)"),
        pl.lit(f", {spec.head} #"),
        pl.col(INDEX_COLUMN).cast(pl.String),
        pl.lit(" (document "),
        pl.col("guid").fill_null("without guid"),
        pl.lit(")"),
    ]
    if line:
        parts += [pl.lit(f", {spec.list_element} #"), pl.col(_LINE).cast(pl.String)]
    parts.append(pl.lit(f", element {element}: "))
    return pl.concat_str(parts)


def _is_blank(element: str) -> pl.Expr:
    return pl.col(element).is_null() | (pl.col(element).str.strip_chars() == "")


def _time_ok(element: str) -> pl.Expr:
    text = pl.col(element).str.strip_chars()
    parsed = text.str.slice(0, 14).str.to_datetime("%Y%m%d%H%M%S", strict=False)
    # Polars parses year 0000; the format (and the writer) holds years 1-9999.
    return text.str.contains(_TIME_PATTERN) & parsed.is_not_null() & (parsed.dt.year() > 0)


def _checks(spec: DocumentSpec, table: str, line: bool) -> list[tuple[str, pl.Expr, str, bool]]:
    """(element, failing condition, problem text, show value) for one head or list table."""
    columns = spec.list_columns if line else spec.head_columns
    times = () if line else time_elements(spec)
    needed = (() if line else ("appType",)) + times + required_elements(table, columns)
    checks = [
        (element, _is_blank(element), "required element is missing", False)
        for element in dict.fromkeys(needed)
    ]
    if not line:
        bad_type = ~pl.col("appType").str.strip_chars().is_in(["1", "2", "3"])
        checks.append(("appType", ~_is_blank("appType") & bad_type, "must be 1, 2 or 3", True))
    for element in times:
        bad_time = ~_is_blank(element) & ~_time_ok(element)
        checks.append((element, bad_time, "not a time yyyyMMddHHmmss", True))
    for element in number_elements(table, columns):
        kind = column_kind(table, dict(columns)[element])
        pattern = _INTEGER_PATTERN if kind is Kind.INT else _DECIMAL_PATTERN
        bad = ~_is_blank(element) & ~pl.col(element).str.contains(pattern)
        what = "an integer" if kind is Kind.INT else "a decimal number"
        checks.append((element, bad, f"not {what}", True))
    return checks


def _problems(frame: pl.DataFrame, spec: DocumentSpec, table: str, line: bool) -> pl.DataFrame:
    """Rejects rows (plus the failing document/line keys) for every failed check."""
    keys = [_SEQ, _LINE] if line else [_SEQ]
    checks = [check for check in _checks(spec, table, line) if check[0] in frame.columns]
    # One pass computes every condition; rejects are only built for checks that failed.
    flags = frame.select(
        [cond.fill_null(False).alias(str(i)) for i, (_, cond, _, _) in enumerate(checks)]
    )
    found: list[pl.DataFrame] = []
    for i, (element, _, text, show_value) in enumerate(checks):
        if not flags[str(i)].any():
            continue
        found.append(
            frame.filter(flags[str(i)]).select(
                *keys,
                pl.lit(table).alias("table"),
                pl.col(FILE_COLUMN).alias("file"),
                pl.col(INDEX_COLUMN).cast(pl.Int64).alias("row"),
                pl.lit(element).alias("column"),
                (pl.col(element) if show_value else pl.lit(None, pl.String)).alias("value"),
                pl.concat_str([_prefix(spec, element, line), pl.lit(text)]).alias("message"),
            )
        )
    if not found:
        return pl.DataFrame(schema={**{k: pl.Int64() for k in keys}, **REJECTS_SCHEMA})
    return pl.concat(found, how="vertical")


# --------------------------------------------------------------------------- versions (appType)


def _sortable_time() -> pl.Expr:
    """appTime as 20 digits, so text order is time order."""
    text = pl.col("appTime").str.strip_chars()
    return text.str.pad_end(20, "0")


def resolve_versions(frame: pl.DataFrame, key: tuple[str, ...]) -> tuple[pl.DataFrame, int, int]:
    """Apply appType per document key: the latest version wins once a key was modified.

    A key declared only as new (appType 1) keeps every copy: duplicate declarations are what
    the DUPLICATE rules report. A key with a modify (2) or delete (3) keeps only its latest
    version by appTime (ties: later in input order), and nothing when that version deletes.
    Returns the kept rows (input order), the keys deleted and the older versions dropped.
    """
    app_type = pl.col("appType").str.strip_chars()
    if frame.height == 0 or (frame["appType"].str.strip_chars() == "1").all():
        return frame, 0, 0  # only new documents: nothing replaces anything
    ordered = frame.with_columns(_sortable_time().alias("_when")).sort([*key, "_when", _SEQ])
    changed = (app_type != "1").any().over(key)
    latest = pl.int_range(pl.len()).over(key) == pl.len().over(key) - 1
    marked = ordered.with_columns(
        (~changed | (latest & (app_type != APP_TYPE_DELETE))).alias("_keep"),
        (latest & (app_type == APP_TYPE_DELETE)).alias("_deleted"),
    )
    deleted = int(marked["_deleted"].sum())
    superseded = marked.height - int(marked["_keep"].sum()) - deleted
    kept = marked.filter(pl.col("_keep")).sort(_SEQ).drop("_when", "_keep", "_deleted")
    return kept, deleted, superseded


# --------------------------------------------------------------------------- building tables


def iso_time_expr(element: str) -> pl.Expr:
    """yyyyMMddHHmmss[ffffff] -> `YYYY-MM-DD HH:MM:SS[.ffffff]` (China time, as written)."""
    text = pl.col(element).str.strip_chars()
    fraction = text.str.slice(14)
    whole = pl.concat_str(
        [
            text.str.slice(0, 4),
            pl.lit("-"),
            text.str.slice(4, 2),
            pl.lit("-"),
            text.str.slice(6, 2),
            pl.lit(" "),
            text.str.slice(8, 2),
            pl.lit(":"),
            text.str.slice(10, 2),
            pl.lit(":"),
            text.str.slice(12, 2),
        ]
    )
    with_fraction = pl.concat_str([whole, pl.lit("."), fraction.str.pad_end(6, "0")])
    return pl.when(fraction.str.len_chars() > 0).then(with_fraction).otherwise(whole)


def iso_time(text: str | None) -> str | None:
    """One value of `iso_time_expr`, for per-message callers (None when not a CEB time)."""
    if text is None:
        return None
    text = text.strip()
    if not (14 <= len(text) <= 20 and text.isascii() and text.isdigit()):
        return None
    whole = f"{text[:4]}-{text[4:6]}-{text[6:8]} {text[8:10]}:{text[10:12]}:{text[12:14]}"
    return f"{whole}.{text[14:].ljust(6, '0')}" if len(text) > 14 else whole


def _head_frame(rows: _Rows, spec: DocumentSpec, labels: pl.Series) -> pl.DataFrame:
    names = _head_names(spec)
    schema: dict[str, pl.DataType] = {
        _FILE_ID: pl.Int64(),
        MESSAGE_COLUMN: pl.String(),
        INDEX_COLUMN: pl.Int64(),
        _SEQ: pl.Int64(),
    }
    schema.update({name: pl.String() for name in names})
    data: dict[str, list[Any]] = {
        _FILE_ID: rows.file_ids,
        MESSAGE_COLUMN: rows.messages,
        INDEX_COLUMN: rows.indexes,
        _SEQ: rows.seqs,
        **_columns(rows.values, names),
    }
    frame = pl.DataFrame(data, schema=schema)
    return frame.with_columns(
        labels.gather(frame[_FILE_ID]).alias(FILE_COLUMN), pl.col("guid").alias(DOCUMENT_COLUMN)
    ).drop(_FILE_ID)


def _line_frame(rows: _Rows, spec: DocumentSpec, heads: pl.DataFrame) -> pl.DataFrame:
    names = _list_names(spec)
    schema: dict[str, pl.DataType] = {_SEQ: pl.Int64(), _LINE: pl.Int64()}
    schema.update({name: pl.String() for name in names})
    data: dict[str, list[Any]] = {
        _SEQ: rows.line_seqs,
        _LINE: rows.line_numbers,
        **_columns(rows.line_values, names),
    }
    frame = pl.DataFrame(data, schema=schema)
    inherited = [el for el, col in spec.head_columns if col in dict(spec.inherited)]
    context = heads.select(_SEQ, *TRACE_COLUMNS, "guid", *inherited)
    return frame.join(context, on=_SEQ, how="left", maintain_order="left")


def _canonical(frame: pl.DataFrame, spec: DocumentSpec, line: bool) -> pl.DataFrame:
    """Element columns renamed to canonical columns; times as ISO text; trace columns first."""
    table = spec.list_table if line else spec.table
    assert table is not None
    columns = spec.list_columns if line else spec.head_columns
    exprs: list[pl.Expr] = [pl.col(c) for c in TRACE_COLUMNS]
    if line:
        inherited = dict(spec.inherited)
        exprs += [
            pl.col(el).alias(inherited[col]) for el, col in spec.head_columns if col in inherited
        ]
    for element, column in columns:
        if column_kind(table, column) is Kind.TIME:
            exprs.append(iso_time_expr(element).alias(column))
        else:
            exprs.append(pl.col(element).alias(column))
    if not line and APP_TIME_COLUMN in TABLES[table].column_names:
        exprs.append(iso_time_expr("appTime").alias(APP_TIME_COLUMN))
    return frame.select(exprs)


def _document_tables(collector: _Collector) -> tuple[dict[str, pl.DataFrame], list[pl.DataFrame]]:
    labels = pl.Series(FILE_COLUMN, collector.labels, dtype=pl.String)
    tables: dict[str, pl.DataFrame] = {}
    rejects: list[pl.DataFrame] = []
    for spec in DOCUMENTS:
        rows = collector.rows[spec.doc_type]
        heads = _head_frame(rows, spec, labels)
        problems = _problems(heads, spec, spec.table, line=False)
        rejects.append(problems.drop(_SEQ))
        heads = heads.join(
            problems.select(_SEQ).unique(), on=_SEQ, how="anti", maintain_order="left"
        )
        heads, deleted, superseded = resolve_versions(heads, _key_elements(spec))
        collector.notes[f"{spec.table}.documents"] = heads.height + deleted + superseded
        collector.notes[f"{spec.table}.deleted"] = deleted
        collector.notes[f"{spec.table}.superseded"] = superseded
        if spec.list_table is not None:
            lines = _line_frame(rows, spec, heads)
            lines = lines.filter(pl.col(FILE_COLUMN).is_not_null())  # head rejected or replaced
            line_problems = _problems(lines, spec, spec.list_table, line=True)
            rejects.append(line_problems.drop(_SEQ, _LINE))
            lines = lines.join(
                line_problems.select(_SEQ, _LINE).unique(),
                on=[_SEQ, _LINE],
                how="anti",
                maintain_order="left",
            )
            tables[spec.list_table] = _canonical(lines, spec, line=True)
        # An optional table exists once its messages were given, so its rules run.
        if spec.doc_type in collector.seen_types or not TABLES[spec.table].optional:
            tables[spec.table] = _canonical(heads, spec, line=False)
    return tables, rejects


def _key_elements(spec: DocumentSpec) -> tuple[str, ...]:
    element_of = {col: el for el, col in spec.head_columns}
    return tuple(element_of[col] for col in TABLES[spec.table].key)


def _side_tables(sides: list[SideTable], tables: dict[str, pl.DataFrame]) -> None:
    """Add the Parquet tables stored beside the XML (orphan order lines are appended)."""
    for side in sides:
        frame = side.read()
        if side.table == "order_items" and "order_items" in tables:
            lines = tables["order_items"]
            tables["order_items"] = pl.concat([lines, frame], how="diagonal_relaxed")
        else:
            tables[side.table] = frame


def read_ceb(source: CebSource) -> CebData:
    """Read CEB messages from a file, a directory (recursive), a zip archive, or bytes.

    Bad content (malformed XML, wrong namespace, missing elements, bad numbers or times) goes
    to `rejects`, naming file, message guid and element; an unreadable path raises InputError.
    Parquet reference tables beside the XML (`products.parquet`, ...) are read too.
    """
    label, messages, sides = locate(source)
    collector = _Collector()
    for message, handle in iter_sources(messages):
        try:
            collector.add_message(message.label, handle, message.size)
        except OSError as error:
            raise InputError(f"{message.label}: cannot read ({error})") from None
    tables, rejects = _document_tables(collector)
    _side_tables(sides, tables)
    message_rejects = pl.DataFrame(collector.problems, schema=REJECTS_SCHEMA, orient="row")
    notes = {"files": len(collector.labels), **dict(collector.notes)}
    return CebData(
        tables=tables,
        rejects=concat_rejects([message_rejects, *rejects]),
        notes=notes,
        label=label,
    )


__all__ = ["CebData", "iso_time", "iso_time_expr", "read_ceb", "resolve_versions"]
