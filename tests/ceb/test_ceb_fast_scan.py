"""The compiled CEB scan against lxml: same documents, problems and guid, or it defers to lxml.

Messages are random trees of the XML features CEB messages use (prefixes, default namespace,
attributes, comments, processing instructions, CDATA, entities, character references, repeated
and empty elements, lists before heads, foreign namespaces, GBK), write_ceb output, and both
corrupted (truncated, bytes changed) so the scan must refuse what lxml rejects.
"""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matchcore.generate import generate
from matchcore.io.ceb import fast, write_ceb
from matchcore.io.ceb.documents import Document, MessageError, MessageInfo
from matchcore.io.ceb.mapping import DOCUMENTS, NAMESPACE, DocumentSpec
from matchcore.io.ceb.parser import head_elements, list_elements, parse_lxml, parse_message

pytestmark = pytest.mark.skipif(fast._SCANNER is None, reason="extensions not built")

SAMPLES = Path(__file__).resolve().parents[2] / "datasets" / "ceb_samples"


def _reference(data: bytes) -> tuple[object, MessageInfo]:
    info = MessageInfo()
    try:
        return parse_lxml(data, info), info
    except MessageError as error:
        return ("error", str(error), error.guid), info


def assert_same(data: bytes) -> bool:
    """Scan and lxml agree on `data` (True), or the scan deferred (False)."""
    info = MessageInfo()
    scanned = fast.scan_message(data, info)
    expected, expected_info = _reference(data)
    if scanned is None:
        return False
    assert scanned == expected
    assert (info.guid, info.spec) == (expected_info.guid, expected_info.spec)
    return True


# --------------------------------------------------------------------------- random messages

_TEXT = st.text(
    st.sampled_from(list("aZ09 -.&<>\"']\t\r\n") + ["中", "é", "\U0001f600", "\x85"]), max_size=12
)


@st.composite
def text_markup(draw: st.DrawFn, text: str) -> str:
    """`text` as element content, each character plain, as an entity, a reference or CDATA."""
    out: list[str] = []
    for char in text:
        way = draw(st.integers(0, 9))
        if char == "<" or (char == "&" and way < 7):
            out.append("&lt;" if char == "<" else "&amp;")
        elif way == 7:
            out.append(f"&#{ord(char)};")
        elif way == 8:
            out.append(f"&#x{ord(char):X};")
        elif way == 9 and char not in "]>":
            out.append(f"<![CDATA[{char}]]>")
        elif char == ">" and out and out[-1].endswith("]"):
            out.append("&gt;")  # ']]>' may not stand in content
        else:
            out.append({"&": "&amp;", '"': "&quot;", "'": "&apos;"}.get(char, char))
        if draw(st.integers(0, 15)) == 0:
            out.append(draw(st.sampled_from(["<!-- c -->", "<?pi x?>", "<![CDATA[]]>", "<x/>"])))
    return "".join(out)


_SPACE = st.sampled_from(["", "", "", " ", "\n  ", "\r\n", "\t", "<!-- note -->", "<?pi?>"])


@st.composite
def element(draw: st.DrawFn, name: str, prefix: str, content: str | None) -> str:
    """An element (self-closing when content is None), maybe with an attribute."""
    qname = f"{prefix}{name}"
    attribute = draw(st.sampled_from(["", "", ' a="1"', " b = 'x&amp;y'", ' ceb:c="2"']))
    if ":" in attribute and not prefix:
        attribute = ""  # ceb: is not always bound
    if content is None:
        return f"<{qname}{attribute}{draw(st.sampled_from(['', ' ']))}/>"
    return f"<{qname}{attribute}>{content}</{qname}{draw(st.sampled_from(['', ' ', chr(10)]))}>"


@st.composite
def values_element(draw: st.DrawFn, name: str, fields: tuple[str, ...], prefix: str) -> str:
    """A head or list: a random choice of wanted and unknown children, repeats, any order."""
    names = draw(st.lists(st.sampled_from([*fields, "extra", "Other"]), max_size=8))
    children: list[str] = []
    for child in names:
        kind = draw(st.integers(0, 6))
        if kind == 0:
            content: str | None = None
        elif kind == 1:
            content = ""
        else:
            content = draw(text_markup(draw(_TEXT)))
        children.append(draw(element(child, prefix, content)) + draw(_SPACE))
    return draw(element(name, prefix, "".join(children) or draw(st.sampled_from(["", " "]))))


@st.composite
def document(draw: st.DrawFn, spec: DocumentSpec, prefix: str) -> str:
    parts: list[str] = []
    for kind in draw(st.lists(st.sampled_from(["head", "head", "list", "other"]), max_size=4)):
        if kind == "head":
            parts.append(draw(values_element(spec.head, head_elements(spec), prefix)))
        elif kind == "list" and spec.list_element is not None:
            parts.append(draw(values_element(spec.list_element, list_elements(spec), prefix)))
        else:
            parts.append(draw(element("Note", prefix, "n")))
        parts.append(draw(_SPACE))
    return draw(element(spec.document, prefix, "".join(parts)))


@st.composite
def message(draw: st.DrawFn) -> bytes:
    spec = draw(st.sampled_from(DOCUMENTS))
    style = draw(st.sampled_from(["ceb", "x", "default"]))
    prefix = "" if style == "default" else f"{style}:"
    declare = f'xmlns="{NAMESPACE}"' if style == "default" else f'xmlns:{style}="{NAMESPACE}"'
    children: list[str] = []
    for kind in draw(st.lists(st.sampled_from(["doc", "doc", "foreign", "other"]), max_size=3)):
        if kind == "doc":
            children.append(draw(document(spec, prefix)))
        elif kind == "foreign":
            children.append(f'<{spec.document} xmlns="urn:other"/>')
        else:
            children.append(draw(element("BaseTransfer", prefix, "<y>1</y>")))
        children.append(draw(_SPACE))
    guid = draw(st.sampled_from(["", ' guid="G-1"', " guid='a&amp;b\tc'", ' guid="&#x41;"']))
    root = f"{prefix}{spec.message}"
    body = f"<{root} {declare}{guid}>{draw(_SPACE)}{''.join(children)}</{root}>"
    head = draw(
        st.sampled_from(
            [
                "",
                '<?xml version="1.0" encoding="UTF-8"?>\n',
                "<?xml version='1.0' encoding='utf8' standalone='yes'?>",
                '<?xml version="1.0" encoding="GBK"?>\n',
                "<!-- before -->\n",
                "\ufeff",
            ]
        )
    )
    text = head + body + draw(st.sampled_from(["", "\n", "<!-- after -->", "<?end?>\n"]))
    return text.encode("gbk", errors="replace") if "GBK" in head else text.encode()


@st.composite
def corrupted(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` truncated, or with bytes inserted, removed or replaced."""
    at = draw(st.integers(0, len(data)))
    how = draw(st.integers(0, 3))
    if how == 0:
        return data[:at]
    if how == 1:
        return data[:at] + data[at + draw(st.integers(1, 4)) :]
    junk = draw(
        st.sampled_from(
            [
                b"<",
                b">",
                b"&",
                b"/",
                b"]]>",
                b"--",
                b"\x00",
                b"\xff",
                b"\xed\xa0\x80",
                b"&#0;",
                b"&nbsp;",
                b"<!DOCTYPE x>",
                b'"',
                b"'",
                b"=",
                b":",
                b"xmlns:q='urn:q'",
                b"?>",
            ]
        )
    )
    end = at if how == 2 else at + 1
    return data[:at] + junk + data[end:]


@cache
def _written() -> tuple[bytes, ...]:
    """write_ceb output of a small generated data set, a few documents per message."""
    with tempfile.TemporaryDirectory() as tmp:
        write_ceb(generate(12, seed=5).tables, tmp, documents_per_message=3)
        return tuple(path.read_bytes() for path in sorted(Path(tmp).rglob("*.xml")))


_SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(message())
def test_random_messages_agree(data: bytes) -> None:
    assert_same(data)


@_SETTINGS
@given(st.data())
def test_corrupted_messages_agree(draw: st.DataObject) -> None:
    data = draw.draw(st.one_of(message(), st.sampled_from(_written())))
    assert_same(draw.draw(corrupted(data)))


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_written_messages_are_scanned(draw: st.DataObject) -> None:
    """write_ceb output (the common case) is read by the scan itself, not deferred."""
    assert assert_same(draw.draw(st.sampled_from(_written())))


# --------------------------------------------------------------------------- chosen cases

_ROOT = f'<c:CEB311Message xmlns:c="{NAMESPACE}" guid="M1">'


def _order(head: str) -> bytes:
    """A CEB311 message of one order whose head holds `head`."""
    return f"{_ROOT}<c:Order><c:OrderHead>{head}</c:OrderHead></c:Order></c:CEB311Message>".encode()


@pytest.mark.parametrize(
    ("head", "order_no"),
    [
        ("<c:orderNo>A<!-- c -->B</c:orderNo>", "AB"),  # comments removed, texts joined
        ("<c:orderNo><![CDATA[]]></c:orderNo>", ""),  # an empty CDATA is text, not None
        ("<c:orderNo></c:orderNo>", None),
        ("<c:orderNo>A</c:orderNo><c:orderNo/>", None),  # the last one wins
        ("<c:orderNo>A<?p?>B</c:orderNo>", "A"),  # text stops at a processing instruction
        ("<c:orderNo>A<c:x>C</c:x>B</c:orderNo>", "A"),  # ... and at a child element
        ("<c:orderNo>&#x41;&lt;\r\n&#13;</c:orderNo>", "A<\n\r"),
        ('<orderNo xmlns="urn:x">A</orderNo>', None),  # other namespace: not the element
    ],
)
def test_chosen_texts(head: str, order_no: str | None) -> None:
    data = _order(head)
    assert assert_same(data)
    (found,) = fast.scan_message(data, MessageInfo()) or []
    assert isinstance(found, Document)
    assert found.head[head_elements(found.spec).index("orderNo")] == order_no


@pytest.mark.parametrize(
    "data",
    [
        _order("<c:orderNo>A</c:orderNo>").replace(b"</c:Order>", b"</c:order>"),
        _order("<c:orderNo>&nbsp;</c:orderNo>"),
        _order("<c:orderNo>]]></c:orderNo>"),
        _order("<c:orderNo>A</c:orderNo>")[:-5],
        b"<!DOCTYPE c:CEB311Message>" + _order(""),
        _order("").replace(b'guid="M1"', b'guid="M1" guid="M2"'),
        _order("<q:orderNo>A</q:orderNo>"),  # unbound prefix
        b'<?xml version="1.0" encoding="GBK"?>' + _order("<c:orderNo>A</c:orderNo>"),
        _order("").replace(b"c:CEB311Message", b"c:CEB999Message"),
        # Namespace names that are not URIs to libxml2: a ':' in the first segment that does
        # not end a scheme.
        _order('<c:orderNo xmlns:x=":other">A</c:orderNo>'),
        _order('<c:orderNo xmlns:x="1a:other">A</c:orderNo>'),
        _order('<c:orderNo xmlns:x="a_b:other">A</c:orderNo>'),
        b'\xef\xbb\xbf<ceb:CEB411Message xmlns:ceb="http://www.chinaport.gov.cn/ceb" guid="G-1">'
        b'<?pi?><Payment xmlns=":other"/></ceb:CEB411Message>',  # found by the corruption test
    ],
)
def test_scan_defers_to_lxml(data: bytes) -> None:
    """What the scan does not read is left to lxml, whose result parse_message returns."""
    assert fast.scan_message(data, MessageInfo()) is None
    expected, _ = _reference(data)
    try:
        got: object = list(parse_message(data, MessageInfo()))
    except MessageError as error:
        got = ("error", str(error), error.guid)
    assert got == expected


def test_samples_agree() -> None:
    accepted = [assert_same(path.read_bytes()) for path in sorted(SAMPLES.glob("*.xml"))]
    assert sum(accepted) == len(accepted) - 1  # all but the GBK sample are scanned
