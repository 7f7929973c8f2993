"""`write_ceb`: raw SPEC §2 tables -> CEB XML directories that `read_ceb` reads back.

Documents are built as strings with Polars expressions, one template per element, so large
tables write quickly. Tables CEB has no message for are written beside the XML as Parquet.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import polars as pl

from ...china_time import FOUR_DIGIT_FROM_US, FOUR_DIGIT_TO_US, china_wall_to_utc, exact_micros
from ...exceptions import InputError, SchemaError
from ...schema import CHINA_TZ, TABLES, Kind
from .mapping import (
    APP_TIME_COLUMN,
    DOCUMENTS,
    NAMESPACE,
    ORDER,
    ORPHAN_LINES_FILE,
    REFERENCE_TABLES,
    DocumentSpec,
)

_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
#: Characters XML 1.0 cannot hold at all; they are dropped.
_FORBIDDEN = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x{FFFE}\x{FFFF}]"
#: The column a message's BaseTransfer names as its sender, per document type.
_SENDER = {
    "order": "ebp_code",
    "payment": "pay_code",
    "waybill": "logistics_code",
    "inventory": "agent_code",
}
_FRAGMENT = "_xml"
#: The column written as appTime when it is not app_time (payments carry only pay_time).
_APP_TIME_SOURCE = {"payment": "pay_time"}


def escaped_expr(text: pl.Expr) -> pl.Expr:
    """Text made safe as XML element content (a lone CR is kept as a character reference)."""
    return (
        text.str.replace_all(_FORBIDDEN, "")
        .str.replace_all("&", "&amp;", literal=True)
        .str.replace_all("<", "&lt;", literal=True)
        .str.replace_all(">", "&gt;", literal=True)
        .str.replace_all("\r", "&#13;", literal=True)
    )


def ceb_time_expr(column: str, dtype: pl.DataType) -> pl.Expr:
    """A time column as yyyyMMddHHmmss in China time (six more digits when sub-second).

    Text times must be parsed and every time checked first (`_checked_times`).
    """
    value = pl.col(column)
    if isinstance(dtype, pl.Date):
        return value.dt.strftime("%Y%m%d000000")
    if not isinstance(dtype, pl.Datetime):
        raise SchemaError(f"column {column}: cannot write {dtype} as a CEB time")
    if dtype.time_zone is not None:
        value = value.dt.convert_time_zone(CHINA_TZ)
    whole = value.dt.strftime("%Y%m%d%H%M%S")
    precise = value.dt.strftime("%Y%m%d%H%M%S%6f")
    return pl.when(value.dt.microsecond() == 0).then(whole).otherwise(precise)


def _four_digit_year(column: str, dtype: pl.Date | pl.Datetime) -> pl.Expr:
    """Whether each time falls in years 1-9999 in China time, the years yyyy holds (compared as
    exact microseconds: strftime writes "+10000" past 9999 and panics near year 262,000)."""
    low, high = pl.lit(FOUR_DIGIT_FROM_US), pl.lit(FOUR_DIGIT_TO_US)  # China wall times
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        low, high = china_wall_to_utc(low), china_wall_to_utc(high)
    return exact_micros(pl.col(column), dtype).is_between(low, high, closed="left")


def _checked_times(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """`frame` with its text times parsed; InputError naming the first row (1-based) and column
    whose time a CEB time cannot hold."""
    times = [c.name for c in TABLES[table].columns if c.kind is Kind.TIME]
    for column in (name for name in times if name in frame.columns):
        if isinstance(frame.schema[column], pl.String):
            frame = frame.with_columns(_parsed_times(frame.get_column(column), table))
        dtype = frame.schema[column]
        if not isinstance(dtype, pl.Date | pl.Datetime):
            continue  # ceb_time_expr names the type
        outside = frame.select((~_four_digit_year(column, dtype)).arg_true().first()).item()
        if outside is not None:
            raise InputError(
                f"table {table}, row {outside + 1}, column {column}: a CEB time "
                "(yyyyMMddHHmmss, China time) holds years 1-9999 only"
            )
    return frame


def _parsed_times(text: pl.Series, table: str) -> pl.Series:
    """A text time column parsed; InputError naming the first row whose text is not a time
    (blank text is no time, its element is left out)."""
    given = text.str.strip_chars().replace("", None)
    try:  # as a Series: only eagerly does Polars infer a zone from offsets in the text
        parsed = given.str.to_datetime(strict=False)
    except pl.exceptions.ComputeError:  # no format fits the first values
        parsed = pl.Series(text.name, [None] * len(text), pl.Datetime("us"))
    unread = (parsed.is_null() & given.is_not_null()).arg_true()
    if len(unread):
        raise InputError(
            f"table {table}, row {unread[0] + 1}, column {text.name}: not a time "
            "(give times as ISO 8601 text, e.g. 2025-01-31T10:00:00+08:00, or as Datetime)"
        )
    return parsed


def _text_expr(column: str, dtype: pl.DataType, is_time: bool) -> pl.Expr:
    """A column as the text of its element (None stays None)."""
    if is_time:
        return ceb_time_expr(column, dtype)
    value = pl.col(column)
    if dtype.is_float():
        # Floats are rounded to the 4 places money keeps (SPEC §1), then written shortest.
        return value.round(4).cast(pl.String)
    if isinstance(dtype, pl.String):
        return escaped_expr(value)
    return escaped_expr(value.cast(pl.String))


def element_expr(name: str, text: pl.Expr) -> pl.Expr:
    return pl.concat_str([pl.lit(f"<ceb:{name}>"), text, pl.lit(f"</ceb:{name}>")]).fill_null("")


def _elements(
    frame: pl.DataFrame, table: str, columns: tuple[tuple[str, str], ...]
) -> list[pl.Expr]:
    """Element strings for every mapped column the frame has, in CEB order."""
    schema = TABLES[table]
    out: list[pl.Expr] = []
    for element, column in columns:
        if column not in frame.columns:
            continue
        is_time = column in schema.column_names and schema.column(column).kind.value == "time"
        out.append(element_expr(element, _text_expr(column, frame.schema[column], is_time)))
    return out


def guid_expr(code: str, number: pl.Expr, segment: str = "0000") -> pl.Expr:
    """A 36-character guid from the message code, a segment and a running number."""
    prefix = f"{code[3:]:0>8}-{segment}-4000-8000-"
    return pl.concat_str([pl.lit(prefix), number.cast(pl.String).str.pad_start(12, "0")])


def _common_head(frame: pl.DataFrame, spec: DocumentSpec) -> list[pl.Expr]:
    """guid, appType 1 (new), appTime and appStatus 2 (declared)."""
    time_column = _APP_TIME_SOURCE.get(spec.doc_type, APP_TIME_COLUMN)
    exprs = [
        element_expr("guid", guid_expr(spec.code, pl.int_range(1, pl.len() + 1))),
        pl.lit("<ceb:appType>1</ceb:appType>"),
    ]
    if time_column in frame.columns:
        exprs.append(element_expr("appTime", ceb_time_expr(time_column, frame.schema[time_column])))
    exprs.append(pl.lit("<ceb:appStatus>2</ceb:appStatus>"))
    return exprs


def _head_documents(frame: pl.DataFrame, spec: DocumentSpec) -> pl.Expr:
    head = pl.concat_str(
        [*_common_head(frame, spec), *_elements(frame, spec.table, spec.head_columns)]
    )
    return pl.concat_str([pl.lit(f"<ceb:{spec.head}>"), head, pl.lit(f"</ceb:{spec.head}>")])


def _order_lines(orders: pl.DataFrame, items: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """OrderList fragments per order key, and the lines whose order is absent."""
    key = list(TABLES["orders"].key)
    if not set(key) <= set(items.columns):
        missing = sorted(set(key) - set(items.columns))
        raise SchemaError(f"table order_items: missing column {', '.join(missing)}")
    element = ORDER.list_element
    line = pl.concat_str(
        [
            pl.lit(f"<ceb:{element}>"),
            *_elements(items, "order_items", ORDER.list_columns),
            pl.lit(f"</ceb:{element}>"),
        ]
    )
    known = orders.select(key).unique()
    orphans = items.join(known, on=key, how="anti", nulls_equal=False, maintain_order="left")
    fragments = (
        items.join(known, on=key, how="semi", maintain_order="left")
        .select(*key, line.alias(_FRAGMENT))
        .group_by(key, maintain_order=True)
        .agg(pl.col(_FRAGMENT).str.join(""))
    )
    return fragments, orphans


def _documents(
    tables: Mapping[str, pl.DataFrame], spec: DocumentSpec, fragments: pl.DataFrame | None
) -> pl.DataFrame:
    """One row per document: its XML and the sender code of its message.

    `fragments` are the OrderList elements per order key (orders only).
    """
    frame = tables[spec.table]
    sender = _SENDER[spec.doc_type]
    sender_text = pl.col(sender) if sender in frame.columns else pl.lit(None)
    head = frame.select(
        _head_documents(frame, spec).alias("_head"),
        sender_text.cast(pl.String).alias("_sender"),
        *[pl.col(c) for c in TABLES["orders"].key if spec is ORDER],
    )
    lines = pl.lit("")
    if spec is ORDER and fragments is not None:
        key = list(TABLES["orders"].key)
        # Lines go under the first copy of a duplicated order only, as in the tables.
        first = pl.struct(key).is_first_distinct()
        head = head.with_columns(first.alias("_first")).join(
            fragments, on=key, how="left", maintain_order="left"
        )
        lines = pl.when(pl.col("_first")).then(pl.col(_FRAGMENT)).otherwise(None).fill_null("")
    opening, closing = pl.lit(f"<ceb:{spec.document}>"), pl.lit(f"</ceb:{spec.document}>")
    document = pl.concat_str([opening, pl.col("_head"), lines, closing])
    return head.select(document.alias(_FRAGMENT), pl.col("_sender"))


def _messages(documents: pl.DataFrame, spec: DocumentSpec, per_message: int) -> pl.DataFrame:
    """Documents grouped into whole messages (text per file)."""
    grouped = (
        documents.with_row_index("_n")
        .group_by((pl.col("_n") // per_message).alias("_message"), maintain_order=True)
        .agg(pl.col(_FRAGMENT).str.join(""), pl.col("_sender").drop_nulls().first())
    )
    transfer = pl.concat_str(
        [
            pl.lit("<ceb:BaseTransfer>"),
            element_expr("copCode", escaped_expr(pl.col("_sender"))),
            pl.lit("<ceb:dxpMode>DXP</ceb:dxpMode><ceb:dxpId>DXPMATCHCORE0001</ceb:dxpId>"),
            pl.lit("</ceb:BaseTransfer>"),
        ]
    )
    guid = guid_expr(spec.code, pl.col("_message") + 1, segment="FFFF")
    text = pl.concat_str(
        [
            pl.lit(f'{_XML_DECLARATION}<ceb:{spec.message} xmlns:ceb="{NAMESPACE}" guid="'),
            guid,
            pl.lit('" version="1.0">'),
            pl.col(_FRAGMENT),
            transfer,
            pl.lit(f"</ceb:{spec.message}>\n"),
        ]
    )
    return grouped.select(pl.col("_message"), text.alias(_FRAGMENT))


def _write_messages(messages: pl.DataFrame, folder: Path, spec: DocumentSpec) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    for number, text in zip(messages["_message"], messages[_FRAGMENT], strict=True):
        (folder / f"{spec.code}_{number + 1:06d}.xml").write_text(text, encoding="utf-8")
    return messages.height


def _given_tables(tables: Mapping[str, pl.DataFrame | None]) -> dict[str, pl.DataFrame]:
    """The tables that were given (None means absent); anything but a Polars frame is an error."""
    given: dict[str, pl.DataFrame] = {}
    for name, frame in tables.items():
        if frame is None:
            continue
        if not isinstance(frame, pl.DataFrame):
            raise SchemaError(
                f"table {name}: write_ceb needs a Polars DataFrame, not {type(frame).__name__}"
            )
        given[name] = frame
    return given


def write_ceb(
    tables: Mapping[str, pl.DataFrame | None],
    out_dir: str | Path,
    *,
    documents_per_message: int = 100,
) -> dict[str, int]:
    """Write raw tables as CEB messages under `out_dir`; returns files written per folder.

    orders (+ order_items), payments, waybills and inventories go to `orders/`, `payments/`,
    `waybills/`, `inventories/` as CEB311/411/511/621 messages of `documents_per_message`
    documents; products, enterprises, hs_lists and quota_ledger to `<table>.parquet`, and order
    lines without an order (CEB cannot carry them) to `orphan_order_items.parquet`.
    """
    if documents_per_message < 1:
        raise InputError("documents_per_message must be at least 1")
    tables = _given_tables(tables)
    for spec in DOCUMENTS:  # every document table checked before anything is written
        if spec.table in tables:
            tables[spec.table] = _checked_times(tables[spec.table], spec.table)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create output directory {out} ({error.strerror})") from None
    written: dict[str, int] = {}
    fragments = None
    if "orders" in tables and "order_items" in tables:
        fragments, orphans = _order_lines(tables["orders"], tables["order_items"])
        if orphans.height:
            orphans.write_parquet(out / ORPHAN_LINES_FILE)
            written[ORPHAN_LINES_FILE] = 1
    for spec in DOCUMENTS:
        if spec.table not in tables:
            continue
        documents = _documents(tables, spec, fragments)
        messages = _messages(documents, spec, documents_per_message)
        written[spec.folder] = _write_messages(messages, out / spec.folder, spec)
    for name in REFERENCE_TABLES:
        if name in tables and tables[name] is not None:
            tables[name].write_parquet(out / f"{name}.parquet")
            written[f"{name}.parquet"] = 1
    return written
