"""`iter_messages`: one CEB message -> documents in the streaming message shape (SPEC §5).

Each document becomes a dict with `doc_type`, `op`, `revision` and the SPEC §2 column names
with string values (times as ISO text in China time, line `gnum` as int); an order carries its
lines as `items`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ...exceptions import InputError
from ...schema import TABLES, Kind
from .mapping import (
    APP_TIME_COLUMN,
    APP_TYPE_DELETE,
    COMMON_HEAD,
    DOCUMENTS,
    DocumentSpec,
    column_kind,
)
from .parser import Document, DocumentProblem, MessageError, MessageInfo, Values, parse_message
from .reader import iso_time


def integer_or_text(text: str | None) -> int | str | None:
    """An integer element (gnum) as int when it is one; otherwise left for the checks to reject."""
    if text is None:
        return None
    stripped = text.strip()
    digits = stripped[1:] if stripped[:1] in "+-" else stripped
    return int(stripped) if digits.isascii() and digits.isdigit() else text


def revision_of(app_time: str | None) -> int:
    """appTime yyyyMMddHHmmss as an integer (newer is larger); 0 when it is not a CEB time."""
    if app_time is None:
        return 0
    text = app_time.strip()
    if len(text) < 14 or not (text[:14].isascii() and text[:14].isdigit()):
        return 0
    return int(text[:14])


@dataclass(frozen=True)
class _Shape:
    """Precomputed column names and positions of one document type (see parser.Values)."""

    head_columns: tuple[str, ...]  # canonical columns of the mapped head elements, in order
    head_times: tuple[str, ...]
    list_columns: tuple[str, ...]
    list_integers: tuple[str, ...]
    with_app_time: bool


#: Positions of the common head elements in a head's Values (parser.head_elements).
_GUID, _APP_TYPE, _APP_TIME = (COMMON_HEAD.index(e) for e in ("guid", "appType", "appTime"))
_MAPPED = len(COMMON_HEAD)  # the mapped head elements follow the common ones


def _shape(spec: DocumentSpec) -> _Shape:
    def times(table: str | None, columns: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
        if table is None:
            return ()
        return tuple(c for _, c in columns if column_kind(table, c) is Kind.TIME)

    return _Shape(
        head_columns=tuple(c for _, c in spec.head_columns),
        head_times=times(spec.table, spec.head_columns),
        list_columns=tuple(c for _, c in spec.list_columns),
        list_integers=tuple(
            c for _, c in spec.list_columns if column_kind(spec.list_table or "", c) is Kind.INT
        ),
        with_app_time=APP_TIME_COLUMN in TABLES[spec.table].column_names,
    )


_SHAPES = {spec.doc_type: _shape(spec) for spec in DOCUMENTS}


def _item(inherited: list[tuple[str, Any]], line: Values, shape: _Shape) -> dict[str, Any]:
    item = dict(inherited)
    item.update(zip(shape.list_columns, line, strict=True))
    for column in shape.list_integers:
        item[column] = integer_or_text(item[column])
    return item


def _as_dict(document: Document) -> dict[str, Any]:
    spec = document.spec
    shape = _SHAPES[spec.doc_type]
    head = document.head
    app_type = (head[_APP_TYPE] or "").strip()
    app_time = head[_APP_TIME]
    shaped: dict[str, Any] = {
        "doc_type": spec.doc_type,
        "op": "cancel" if app_type == APP_TYPE_DELETE else "upsert",
        "revision": revision_of(app_time),
        "guid": head[_GUID],
    }
    shaped.update(zip(shape.head_columns, head[_MAPPED:], strict=True))
    for column in shape.head_times:
        shaped[column] = iso_time(shaped[column])
    if shape.with_app_time:
        shaped[APP_TIME_COLUMN] = iso_time(app_time)
    if spec.list_table is not None:
        inherited = [(line_col, shaped[head_col]) for head_col, line_col in spec.inherited]
        shaped["items"] = [_item(inherited, line, shape) for line in document.lines]
    return shaped


def iter_messages(data: bytes) -> Iterator[dict[str, Any]]:
    """The documents of one CEB message, in order, as streaming messages.

    `op` is "cancel" for appType 3 and "upsert" otherwise; `revision` is appTime as an integer.
    Values are not checked here (the streaming normaliser does that). A message that cannot be
    read as a whole (malformed XML, wrong namespace, a document without head) raises InputError
    before any document is yielded.
    """
    info = MessageInfo()
    documents: list[Document] = []
    try:
        for item in parse_message(bytes(data), info):
            if isinstance(item, DocumentProblem):
                raise InputError(
                    f"{item.spec.code} message {info.guid or '(no guid)'}, document "
                    f"#{item.index}: {item.text}"
                )
            documents.append(item)
    except MessageError as error:
        raise InputError(f"CEB message {error.guid or info.guid or '(no guid)'}: {error}") from None
    for document in documents:
        yield _as_dict(document)
