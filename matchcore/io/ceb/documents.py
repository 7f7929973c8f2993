"""What parsing one CEB message yields, whichever parser read it (lxml or the compiled scan).

A message holds document elements; each head starts one `Document` and the lists after it are
its lines. `split_parts`, `foreign_document` and `empty_check` turn those parts into documents
and problems, so both parsers report the same faults in the same words.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .mapping import COMMON_HEAD, DocumentSpec

#: Texts of one head or list element, in the order of `head_elements` / `list_elements`
#: (None where the element is absent or empty; the last one wins when an element repeats).
Values = tuple[str | None, ...]


def head_elements(spec: DocumentSpec) -> tuple[str, ...]:
    """The head elements read, in the order of a head's `Values`: common ones, then mapped."""
    return (*COMMON_HEAD, *(element for element, _ in spec.head_columns))


def list_elements(spec: DocumentSpec) -> tuple[str, ...]:
    """The list elements read, in the order of a list's `Values`."""
    return tuple(element for element, _ in spec.list_columns)


@dataclass(slots=True)  # not frozen: a frozen __init__ costs measurably per document
class Document:
    """One document: a head with its lists, and where it sits in its message."""

    spec: DocumentSpec
    index: int  # 1-based position of the head in the message
    head: Values  # in the order of head_elements(spec)
    lines: list[Values]  # each in the order of list_elements(spec)


@dataclass(frozen=True, slots=True)
class DocumentProblem:
    """A document that cannot be read (for example lists without a head)."""

    spec: DocumentSpec
    index: int
    element: str
    text: str


class MessageError(Exception):
    """The whole message is unusable: malformed XML, wrong namespace or unknown root."""

    def __init__(self, text: str, guid: str | None = None) -> None:
        super().__init__(text)
        self.guid = guid


@dataclass
class MessageInfo:
    """What is known of the message being parsed (filled in while parsing)."""

    guid: str | None = None
    spec: DocumentSpec | None = None


Parsed = Document | DocumentProblem
#: A head (True) or list (False) of a document element, with its values, in document order.
Part = tuple[bool, Values]


def split_parts(parts: Iterable[Part], spec: DocumentSpec, first_index: int) -> list[Parsed]:
    """The documents inside one document element: each head starts one, lists follow it."""
    found: list[Parsed] = []
    current: Document | None = None
    for is_head, values in parts:
        if is_head:
            current = Document(spec, first_index + len(found), values, [])
            found.append(current)
        elif current is None:
            problem = f"{spec.list_element} before any {spec.head}"
            index = first_index + len(found)
            found.append(DocumentProblem(spec, index, spec.list_element or spec.head, problem))
        else:
            current.lines.append(values)
    if not found:
        problem = f"{spec.document} has no {spec.head}"
        found.append(DocumentProblem(spec, first_index, spec.head, problem))
    return found


def foreign_document(spec: DocumentSpec, index: int, namespace: str | None) -> DocumentProblem:
    """A document element in another namespace than CEB's."""
    where = namespace or "no namespace"
    return DocumentProblem(spec, index, spec.document, f"{spec.document} is in {where}")


def empty_check(spec: DocumentSpec, count: int) -> list[Parsed]:
    """A problem when a message holds no document at all (nothing would say it was read)."""
    if count:
        return []
    return [DocumentProblem(spec, 0, spec.document, f"message holds no {spec.document}")]
