"""The compiled scan of CEB messages (src_ext/ceb_scan.pyx): lxml's results, without lxml.

`scan_message` returns None whenever the scan does not fully understand a message (another
encoding, a DOCTYPE, anything not well formed, a root that is not a CEB message), and the
caller then parses it with lxml; so faults are always worded by lxml.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from .documents import (
    MessageInfo,
    Parsed,
    empty_check,
    foreign_document,
    head_elements,
    list_elements,
    split_parts,
)
from .mapping import BY_MESSAGE, DOCUMENTS

try:
    from ..._native.ceb_scan import Scanner, Shape
except ImportError:  # extensions not built: lxml reads everything
    _SCANNER = None
else:
    _SCANNER = Scanner(
        [
            Shape(
                spec.message,
                spec.document,
                spec.head,
                spec.list_element or "",
                head_elements(spec),
                list_elements(spec),
            )
            for spec in DOCUMENTS
        ]
    )

_BOM = b"\xef\xbb\xbf"
_S = rb"[ \t\r\n]"
#: An XML declaration as libxml2 reads it without remark: version 1.0, UTF-8 or no encoding.
_DECLARATION = re.compile(
    rb"<\?xml" + _S + rb"+version" + _S + rb"*=" + _S + rb"*(['\"])1\.0\1"
    rb"(?:" + _S + rb"+encoding" + _S + rb"*=" + _S + rb"*(['\"])(?i:utf-?8)\2)?"
    rb"(?:" + _S + rb"+standalone" + _S + rb"*=" + _S + rb"*(['\"])(?:yes|no)\3)?" + _S + rb"*\?>"
)


def _content_start(data: bytes) -> int | None:
    """Where the content after a BOM and XML declaration starts; None when lxml must read it."""
    start = len(_BOM) if data.startswith(_BOM) else 0
    if not data.startswith(b"<?xml", start) or data[start + 5 : start + 6] not in b" \t\r\n":
        return start  # no declaration (a PI named xml... is the scan's to judge)
    match = _DECLARATION.match(data, start)
    return match.end() if match is not None else None


def scan_message(data: bytes, info: MessageInfo) -> list[Parsed] | None:
    """The documents of one whole message read by the compiled scan, or None (use lxml)."""
    if _SCANNER is None:
        return None
    start = _content_start(data)
    if start is None:
        return None
    scanned = _SCANNER.scan(data, start)
    if scanned is None:
        return None
    message, guid, children = scanned
    spec = BY_MESSAGE[message]
    info.guid, info.spec = guid, spec
    found: list[Parsed] = []
    for is_document, content in children:
        if is_document:
            found += split_parts(content, spec, len(found) + 1)
        else:
            found.append(foreign_document(spec, len(found) + 1, content))
    return found + empty_check(spec, len(found))


@contextmanager
def lxml_only() -> Iterator[None]:
    """Within the block every message is parsed by lxml (to measure or compare the two)."""
    global _SCANNER
    saved, _SCANNER = _SCANNER, None
    try:
        yield
    finally:
        _SCANNER = saved
