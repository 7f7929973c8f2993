"""Parsing one CEB message into documents: head values and list values keyed by element tag.

Small messages are read by the compiled scan (`fast`) when it understands them, otherwise parsed
whole by lxml; large ones with lxml `iterparse` and element clearing, so memory stays bounded by
one document. Faults of the whole message raise `MessageError`; faults of one document are
yielded as `DocumentProblem` so the caller reports them and goes on.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Iterator
from operator import attrgetter, itemgetter
from typing import IO, Any

from lxml import etree

from . import fast
from .documents import (
    Document,
    DocumentProblem,
    MessageError,
    MessageInfo,
    Parsed,
    Part,
    Values,
    empty_check,
    foreign_document,
    head_elements,
    list_elements,
    split_parts,
)
from .mapping import BY_MESSAGE, DOCUMENTS, NAMESPACE, NS, DocumentSpec

#: Messages up to this size are parsed in one call (measured faster than iterparse).
WHOLE_PARSE_LIMIT = 32 * 1024 * 1024

Getter = Callable[[Any], Values]  # texts of a head's children (None appended) -> its Values


def _parser() -> etree.XMLParser:
    # No entity resolution or network access: messages come from outside.
    return etree.XMLParser(
        collect_ids=False, resolve_entities=False, remove_comments=True, no_network=True
    )


_TAG_TEXT = attrgetter("tag", "text")


#: Distinct child layouts remembered per element kind (more are read, just not remembered).
_LAYOUT_CACHE_LIMIT = 4096


class _Extractor:
    """Texts of chosen child elements of a head or list, by a remembered child layout.

    Messages repeat few layouts (the sequence of child tags), so the positions of the wanted
    elements are worked out once per layout. Per child only its tag and text are read, in one
    C-level pass (map + attrgetter, zip, itemgetter) that drops each element proxy at once:
    no per-child Python code and no dict per head.
    """

    __slots__ = ("_absent", "_layouts", "_tags")

    def __init__(self, elements: tuple[str, ...]) -> None:
        self._tags = tuple(NS + element for element in elements)
        self._absent: Values = (None,) * len(elements)
        self._layouts: dict[tuple[object, ...], Getter] = {}

    def _getter(self, layout: tuple[object, ...]) -> Getter:
        last = {tag: position for position, tag in enumerate(layout)}  # last one wins
        # An absent element reads the None appended after the texts.
        positions = [last.get(tag, len(layout)) for tag in self._tags]
        if len(positions) >= 2:
            return itemgetter(*positions)  # type: ignore[return-value]
        return lambda texts: tuple(texts[i] for i in positions)

    def _remember(self, cache: dict[Any, Getter], key: object, getter: Getter) -> Getter:
        if len(cache) < _LAYOUT_CACHE_LIMIT:
            cache[key] = getter
        return getter

    def __call__(self, element: etree._Element) -> Values:
        if not self._tags:
            return ()  # lists no table keeps (InventoryList)
        transposed = tuple(zip(*map(_TAG_TEXT, element), strict=True))
        if not transposed:
            return self._absent  # no children
        layout, texts = transposed
        getter = self._layouts.get(layout)
        if getter is None:
            getter = self._remember(self._layouts, layout, self._getter(layout))
        return getter(texts + (None,))


_HEAD_VALUES = {spec.doc_type: _Extractor(head_elements(spec)) for spec in DOCUMENTS}
_LIST_VALUES = {spec.doc_type: _Extractor(list_elements(spec)) for spec in DOCUMENTS}


def check_root(root: etree._Element, info: MessageInfo) -> DocumentSpec:
    """The document type a message root announces; MessageError when it is not CEB."""
    info.guid = root.get("guid")
    qname = etree.QName(root)
    if qname.namespace != NAMESPACE:
        found = qname.namespace or "no namespace"
        raise MessageError(
            f"root element {qname.localname} is in {found}, not {NAMESPACE}", info.guid
        )
    spec = BY_MESSAGE.get(qname.localname)
    if spec is None:
        raise MessageError(f"root element {qname.localname} is not a CEB message matchcore reads")
    info.spec = spec
    return spec


def split_document(element: etree._Element, spec: DocumentSpec, first_index: int) -> list[Parsed]:
    """The documents inside one document element: each head starts one, lists follow it."""
    head_tag = NS + spec.head
    list_tag = NS + spec.list_element if spec.list_element is not None else None
    head_values, list_values = _HEAD_VALUES[spec.doc_type], _LIST_VALUES[spec.doc_type]
    parts: list[Part] = []
    for part in element:
        tag = part.tag
        if tag == head_tag:
            parts.append((True, head_values(part)))
        elif tag == list_tag:
            parts.append((False, list_values(part)))
    return split_parts(parts, spec, first_index)


def root_child(element: etree._Element, spec: DocumentSpec, index: int) -> list[Parsed]:
    """The documents of one child of the message root (none for BaseTransfer, signatures)."""
    if element.tag == NS + spec.document:
        return split_document(element, spec, index)
    if not isinstance(element.tag, str):
        return []  # processing instructions
    qname = etree.QName(element)
    if qname.localname == spec.document:
        return [foreign_document(spec, index, qname.namespace)]
    return []


def _syntax_text(error: etree.XMLSyntaxError) -> str:
    # libxml2 quotes undecodable bytes; they may be personal data, so they are left out.
    return "malformed XML: " + re.sub(r"\s*Bytes:( 0x[0-9A-Fa-f]{2})+", "", str(error))


def _documents_of(root: etree._Element, info: MessageInfo) -> list[Parsed]:
    spec = check_root(root, info)
    found: list[Parsed] = []
    for element in root:
        found += root_child(element, spec, len(found) + 1)
    return found + empty_check(spec, len(found))


_ROOT_TAG = re.compile(rb"<(?:[\w.-]+:)?(CEB\d{3}Message)\b([^>]*)>")
_GUID_ATTRIBUTE = re.compile(rb"""\sguid\s*=\s*["']([^"'<>]{1,64})["']""")


def sniff_root(data: bytes, info: MessageInfo) -> None:
    """Message type and guid read from the raw start tag, to name a message that is malformed."""
    match = _ROOT_TAG.search(data[:4096])
    if match is None:
        return
    info.spec = BY_MESSAGE.get(match.group(1).decode("ascii"))
    guid = _GUID_ATTRIBUTE.search(match.group(2))
    if guid is not None:
        info.guid = guid.group(1).decode("ascii", errors="replace")


def _parse_whole(data: bytes, info: MessageInfo) -> list[Parsed]:
    found = fast.scan_message(data, info)
    if found is not None:
        return found
    return parse_lxml(data, info)


def parse_lxml(data: bytes, info: MessageInfo) -> list[Parsed]:
    """One whole message parsed by lxml: the reference the compiled scan must agree with."""
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as error:
        sniff_root(data, info)
        raise MessageError(_syntax_text(error), info.guid) from None
    return _documents_of(root, info)


def _parse_streaming(stream: IO[bytes], info: MessageInfo) -> Iterator[Parsed]:
    context = etree.iterparse(
        stream, events=("start", "end"), remove_comments=True, resolve_entities=False
    )
    depth = 0
    spec: DocumentSpec | None = None
    index = 1
    try:
        for event, element in context:
            if event == "start":
                depth += 1
                if depth == 1:
                    spec = check_root(element, info)
                continue
            depth -= 1
            if depth != 1:
                continue
            if spec is not None:
                for item in root_child(element, spec, index):
                    index += 1
                    yield item
            # Drop what was read so far: memory stays at one document.
            element.clear()
            parent = element.getparent()
            while parent is not None and element.getprevious() is not None:
                del parent[0]
    except etree.XMLSyntaxError as error:
        raise MessageError(_syntax_text(error), info.guid) from None
    if spec is not None:
        yield from empty_check(spec, index - 1)


def parse_message(
    source: bytes | IO[bytes], info: MessageInfo, *, size: int | None = None
) -> Iterable[Parsed]:
    """The documents (and unreadable documents) of one message, in order.

    `source` is the message bytes or a binary file; `size` (bytes, when known) picks whole
    parsing (a list, MessageError raised here) or streaming (an iterator that may raise
    MessageError after some documents were yielded).
    """
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        if len(data) > WHOLE_PARSE_LIMIT:
            return _parse_streaming(io.BytesIO(data), info)
        return _parse_whole(data, info)
    if size is not None and size <= WHOLE_PARSE_LIMIT:
        return _parse_whole(source.read(), info)
    return _parse_streaming(source, info)


__all__ = [
    "Document",
    "DocumentProblem",
    "MessageError",
    "MessageInfo",
    "Parsed",
    "Values",
    "head_elements",
    "list_elements",
    "parse_lxml",
    "parse_message",
]
