# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""One-pass extractor of CEB message values from UTF-8 bytes (see matchcore/io/ceb/fast.py).

It reads the XML that well-formed CEB messages use (comments, processing instructions, CDATA,
namespace prefixes, attributes, the predefined entities and character references) and takes
the texts the lxml path would take. Anything else, or anything not well formed, makes `scan`
return None: the caller then parses the message with lxml, the reference, so error texts stay
lxml's. When in doubt this module refuses; it never accepts what lxml would reject.
"""

from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdlib cimport free, malloc
from libc.string cimport memchr, memcmp

cdef enum:
    MAX_DEPTH = 128  # libxml2 refuses more than 256 levels
    MAX_BINDINGS = 256
    MAX_ATTRIBUTES = 32
    MAX_NAME = 1000  # libxml2 refuses names over 50,000 bytes
    MAX_RUN = 5000000  # libxml2 refuses text nodes over 10,000,000 bytes

cdef enum Role:
    ROOT, DOCUMENT, HEAD, LINE, FIELD, OTHER

cdef bytes CEB = b"http://www.chinaport.gov.cn/ceb"
cdef bytes XML_NS = b"http://www.w3.org/XML/1998/namespace"
cdef bytes XMLNS_NS = b"http://www.w3.org/2000/xmlns/"


cdef class Shape:
    """Element names of one document type and the wanted children of its head and list."""

    cdef readonly bytes message, document, head, line
    cdef readonly tuple head_fields, line_fields

    def __init__(self, str message, str document, str head, str line,
                 tuple head_fields, tuple line_fields):
        self.message = message.encode()
        self.document = document.encode()
        self.head = head.encode()
        self.line = line.encode()  # b"" when the document has no list element
        self.head_fields = tuple(name.encode() for name in head_fields)
        self.line_fields = tuple(name.encode() for name in line_fields)


# --------------------------------------------------------------------------- byte helpers


cdef inline bint is_space(unsigned char c) noexcept nogil:
    return c == 0x20 or c == 0x09 or c == 0x0A or c == 0x0D


cdef inline bint is_name_start(unsigned char c) noexcept nogil:
    # ASCII names only; other names make the scan refuse.
    return (c >= 97 and c <= 122) or (c >= 65 and c <= 90) or c == 95


cdef inline bint is_name_char(unsigned char c) noexcept nogil:
    return is_name_start(c) or (c >= 48 and c <= 57) or c == 45 or c == 46


cdef inline bint is_uri_char(unsigned char c) noexcept nogil:
    # A safe subset of URI characters, so libxml2's URI check passes on every accepted one.
    return is_name_char(c) or c == 58 or c == 47


cdef inline bint is_scheme(const unsigned char* p, Py_ssize_t i, Py_ssize_t end) noexcept nogil:
    """1 for an RFC 3986 scheme: a letter, then letters, digits, '+', '-' or '.'."""
    if i >= end or not ((p[i] >= 97 and p[i] <= 122) or (p[i] >= 65 and p[i] <= 90)):
        return 0
    i += 1
    while i < end:
        if not ((p[i] >= 97 and p[i] <= 122) or (p[i] >= 65 and p[i] <= 90) or
                (p[i] >= 48 and p[i] <= 57) or p[i] == 43 or p[i] == 45 or p[i] == 46):
            return 0
        i += 1
    return 1


cdef inline bint is_uri(const unsigned char* p, Py_ssize_t i, Py_ssize_t end) noexcept nogil:
    """1 for a namespace name of safe characters with at most one '#' (xmldsig's has one).

    A ':' in the first segment must end a scheme: libxml2 rejects ":x" or "a_b:x" as URIs.
    """
    cdef Py_ssize_t start = i
    cdef bint fragment = 0, first_segment = 1
    while i < end:
        if p[i] == 35 and not fragment:
            fragment, first_segment = 1, 0
        elif not is_uri_char(p[i]):
            return 0
        elif p[i] == 47:
            first_segment = 0
        elif p[i] == 58 and first_segment:
            if not is_scheme(p, start, i):
                return 0
            first_segment = 0
        i += 1
    return 1


cdef inline bint same(const unsigned char* p, Py_ssize_t start, Py_ssize_t size,
                      bytes name) noexcept:
    return size == len(name) and memcmp(p + start, <const char*>name, size) == 0


cdef bint valid_chars(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    """1 when the bytes are UTF-8 of XML 1.0 characters only (the encoding check of libxml2)."""
    cdef Py_ssize_t i = 0
    cdef unsigned char c, c1
    while i < n:
        c = p[i]
        if c >= 0x20 and c < 0x80:
            i += 1
        elif c < 0x20:
            if c != 0x09 and c != 0x0A and c != 0x0D:
                return 0
            i += 1
        elif c >= 0xC2 and c <= 0xDF:
            if i + 1 >= n or (p[i + 1] & 0xC0) != 0x80:
                return 0
            i += 2
        elif c >= 0xE0 and c <= 0xEF:
            if i + 2 >= n or (p[i + 1] & 0xC0) != 0x80 or (p[i + 2] & 0xC0) != 0x80:
                return 0
            c1 = p[i + 1]
            if (c == 0xE0 and c1 < 0xA0) or (c == 0xED and c1 >= 0xA0):
                return 0  # overlong or surrogate
            if c == 0xEF and c1 == 0xBF and p[i + 2] >= 0xBE:
                return 0  # U+FFFE, U+FFFF
            i += 3
        elif c >= 0xF0 and c <= 0xF4:
            if (i + 3 >= n or (p[i + 1] & 0xC0) != 0x80 or (p[i + 2] & 0xC0) != 0x80
                    or (p[i + 3] & 0xC0) != 0x80):
                return 0
            c1 = p[i + 1]
            if (c == 0xF0 and c1 < 0x90) or (c == 0xF4 and c1 >= 0x90):
                return 0
            i += 4
        else:
            return 0
    return 1


cdef inline Py_ssize_t put_utf8(unsigned char* out, unsigned int cp) noexcept nogil:
    if cp < 0x80:
        out[0] = cp
        return 1
    if cp < 0x800:
        out[0] = 0xC0 | (cp >> 6)
        out[1] = 0x80 | (cp & 0x3F)
        return 2
    if cp < 0x10000:
        out[0] = 0xE0 | (cp >> 12)
        out[1] = 0x80 | ((cp >> 6) & 0x3F)
        out[2] = 0x80 | (cp & 0x3F)
        return 3
    out[0] = 0xF0 | (cp >> 18)
    out[1] = 0x80 | ((cp >> 12) & 0x3F)
    out[2] = 0x80 | ((cp >> 6) & 0x3F)
    out[3] = 0x80 | (cp & 0x3F)
    return 4


cdef inline bint is_xml_char(unsigned int cp) noexcept nogil:
    return (cp == 0x09 or cp == 0x0A or cp == 0x0D or (0x20 <= cp <= 0xD7FF)
            or (0xE000 <= cp <= 0xFFFD) or (0x10000 <= cp <= 0x10FFFF))


cdef Py_ssize_t reference(const unsigned char* p, Py_ssize_t i, Py_ssize_t end,
                          unsigned int* cp) noexcept nogil:
    """The index after the entity or character reference at p[i] == '&', or -1."""
    cdef Py_ssize_t j = i + 1
    cdef unsigned int value = 0
    cdef int digits = 0
    cdef unsigned char c
    if j < end and p[j] == 35:  # '#'
        j += 1
        if j < end and p[j] == 120:  # 'x'
            j += 1
            while j < end and digits <= 8:
                c = p[j]
                if 48 <= c <= 57:
                    value = value * 16 + (c - 48)
                elif 97 <= c <= 102:
                    value = value * 16 + (c - 87)
                elif 65 <= c <= 70:
                    value = value * 16 + (c - 55)
                else:
                    break
                digits += 1
                j += 1
        else:
            while j < end and digits <= 8 and 48 <= p[j] <= 57:
                value = value * 10 + (p[j] - 48)
                digits += 1
                j += 1
        if digits == 0 or digits > 8 or j >= end or p[j] != 59 or not is_xml_char(value):
            return -1
        cp[0] = value
        return j + 1
    while j < end and j - i <= 5 and p[j] != 59:
        j += 1
    if j >= end or p[j] != 59:
        return -1
    if j - i == 3 and p[i + 1] == 108 and p[i + 2] == 116:
        cp[0] = 60  # &lt;
    elif j - i == 3 and p[i + 1] == 103 and p[i + 2] == 116:
        cp[0] = 62  # &gt;
    elif j - i == 4 and memcmp(p + i + 1, b"amp", 3) == 0:
        cp[0] = 38
    elif j - i == 5 and memcmp(p + i + 1, b"quot", 4) == 0:
        cp[0] = 34
    elif j - i == 5 and memcmp(p + i + 1, b"apos", 4) == 0:
        cp[0] = 39
    else:
        return -1  # undefined entity (no DTD is read)
    return j + 1


cdef Py_ssize_t decode(const unsigned char* p, Py_ssize_t i, Py_ssize_t end,
                       unsigned char* out, bint attribute) noexcept nogil:
    """XML text p[i:end] decoded into out (line ends normalised, references replaced), its
    length; -1 when it is not well formed. Attribute values also map whitespace to spaces."""
    cdef Py_ssize_t k = 0
    cdef unsigned int cp
    cdef unsigned char c
    while i < end:
        c = p[i]
        if c == 38:  # '&'
            i = reference(p, i, end, &cp)
            if i < 0:
                return -1
            k += put_utf8(out + k, cp)
            continue
        if c == 13:  # CR and CR LF become LF
            if i + 1 < end and p[i + 1] == 10:
                i += 1
            c = 10
        elif c == 62 and not attribute and i >= 2 and p[i - 1] == 93 and p[i - 2] == 93:
            return -1  # ']]>' in content
        elif c == 60:
            return -1  # '<' in an attribute value
        if attribute and (c == 9 or c == 10):
            c = 32
        out[k] = c
        k += 1
        i += 1
    return k


cdef inline Py_ssize_t find(const unsigned char* p, Py_ssize_t i, Py_ssize_t end,
                            const char* what, Py_ssize_t size) noexcept nogil:
    """Index of the first `what` at or after i, or -1."""
    cdef const unsigned char* hit
    while i + size <= end:
        hit = <const unsigned char*>memchr(p + i, what[0], end - i - size + 1)
        if hit == NULL:
            return -1
        i = hit - p
        if memcmp(p + i, what, size) == 0:
            return i
        i += 1
    return -1


cdef inline Py_ssize_t qname(const unsigned char* p, Py_ssize_t i, Py_ssize_t end,
                             Py_ssize_t* colon) noexcept nogil:
    """The index after an ASCII QName at p[i] (colon: its index, or -1), or -1."""
    cdef Py_ssize_t start = i
    colon[0] = -1
    if i >= end or not is_name_start(p[i]):
        return -1
    i += 1
    while i < end:
        if is_name_char(p[i]):
            i += 1
        elif p[i] == 58 and colon[0] < 0 and i + 1 < end and is_name_start(p[i + 1]):
            colon[0] = i
            i += 1
        else:
            break
    if i - start > MAX_NAME or (i < end and p[i] == 58):
        return -1
    return i


cdef inline Py_ssize_t skip_space(const unsigned char* p, Py_ssize_t i,
                                  Py_ssize_t end) noexcept nogil:
    while i < end and is_space(p[i]):
        i += 1
    return i


cdef inline bint end_container(Role role, list parts, list values):
    """The end of a head or line element makes it one part; True at the end of the root."""
    if role == HEAD:
        parts.append((True, tuple(values)))
    elif role == LINE:
        parts.append((False, tuple(values)))
    return role == ROOT


cdef inline int field_slot(const unsigned char* p, Py_ssize_t start, Py_ssize_t size,
                           tuple fields) noexcept:
    cdef int slot
    for slot in range(len(fields)):
        if same(p, start, size, <bytes>fields[slot]):
            return slot
    return -1


cdef inline Py_ssize_t decode_cdata(const unsigned char* p, Py_ssize_t i, Py_ssize_t end,
                                    unsigned char* out) noexcept nogil:
    """CDATA content copied with line ends normalised; its length."""
    cdef Py_ssize_t k = 0
    while i < end:
        if p[i] == 13:
            if i + 1 < end and p[i + 1] == 10:
                i += 1
            out[k] = 10
        else:
            out[k] = p[i]
        k += 1
        i += 1
    return k


cdef inline int lookup(const unsigned char* p, Py_ssize_t start, Py_ssize_t size,
                       Py_ssize_t* prefix_start, Py_ssize_t* prefix_size,
                       int bindings) noexcept nogil:
    """The innermost binding of a prefix (size 0: the default namespace), or -1."""
    cdef int b
    for b in range(bindings - 1, -1, -1):
        if prefix_size[b] == size and memcmp(p + prefix_start[b], p + start, size) == 0:
            return b
    return -1


# --------------------------------------------------------------------------- the scan


cdef class Scanner:
    """Scans messages of the document types given as `Shape`s."""

    cdef dict shapes  # message element (bytes) -> Shape

    def __init__(self, shapes):
        self.shapes = {shape.message: shape for shape in shapes}

    def scan(self, bytes data, Py_ssize_t start):
        """(message element, guid attribute, children) of the message in `data` (UTF-8, its
        content from `start`), or None when lxml must read it.

        children: per root child, (True, [(is_head, values), ...]) for a CEB document element,
        (False, namespace or None) for a document element in another namespace.
        """
        cdef const unsigned char* p = data
        cdef Py_ssize_t n = len(data)
        cdef unsigned char* scratch
        if not valid_chars(p, n):
            return None
        scratch = <unsigned char*>malloc(n + 16)
        if scratch == NULL:
            raise MemoryError()
        try:
            return self._scan(p, start, n, scratch)
        finally:
            free(scratch)

    cdef object _scan(self, const unsigned char* p, Py_ssize_t i, Py_ssize_t n,
                      unsigned char* scratch):
        # Open elements: name span, role, field slot, namespace bindings to drop at the end.
        cdef Py_ssize_t name_start[MAX_DEPTH]
        cdef Py_ssize_t name_size[MAX_DEPTH]
        cdef Role roles[MAX_DEPTH]
        cdef int binding_mark[MAX_DEPTH]
        # Namespace bindings in scope: prefix and URI spans (prefix size 0: default).
        cdef Py_ssize_t prefix_start[MAX_BINDINGS]
        cdef Py_ssize_t prefix_size[MAX_BINDINGS]
        cdef Py_ssize_t uri_start[MAX_BINDINGS]
        cdef Py_ssize_t uri_size[MAX_BINDINGS]
        cdef Py_ssize_t attr_start[MAX_ATTRIBUTES]
        cdef Py_ssize_t attr_size[MAX_ATTRIBUTES]
        cdef Py_ssize_t attr_colon[MAX_ATTRIBUTES]
        cdef int bindings = 0, depth = 0, attributes, a, b, slot = -1
        cdef Py_ssize_t j, k, colon, qs, ql, ls, ll, vs, ve, ps, pl, us, ul, last_tag = i
        cdef Py_ssize_t guid_start = -1, guid_end = -1, captured = 0
        cdef bint root_done = 0, closed, capturing = 0, has_text = 0, ceb
        cdef unsigned char c, quote
        cdef Role role, parent
        cdef Shape shape = None
        cdef str message = None
        cdef object guid = None
        cdef list children = [], parts = None, values = None
        cdef tuple fields = None

        while i < n:
            if i - last_tag > MAX_RUN:
                return None
            c = p[i]
            if c != 60:  # text up to the next '<'
                j = find(p, i, n, b"<", 1)
                if j < 0:
                    if depth:
                        return None  # truncated
                    j = n
                if depth == 0:
                    while i < j:
                        if not is_space(p[i]):
                            return None
                        i += 1
                    continue
                if capturing:
                    k = decode(p, i, j, scratch + captured, 0)
                    if k < 0:
                        return None
                    captured += k
                    has_text = 1
                elif (memchr(p + i, 38, j - i) != NULL or memchr(p + i, 62, j - i) != NULL):
                    if decode(p, i, j, scratch + captured, 0) < 0:
                        return None  # checked only
                i = j
                continue
            if i + 1 >= n:
                return None
            c = p[i + 1]
            if c == 33:  # '<!'
                if n - i >= 4 and memcmp(p + i, b"<!--", 4) == 0:
                    j = find(p, i + 4, n, b"--", 2)
                    if j < 0 or j + 2 >= n or p[j + 2] != 62:
                        return None  # unterminated, or '--' inside
                    i = j + 3
                elif depth > 0 and n - i >= 9 and memcmp(p + i, b"<![CDATA[", 9) == 0:
                    j = find(p, i + 9, n, b"]]>", 3)
                    if j < 0:
                        return None
                    if capturing:
                        captured += decode_cdata(p, i + 9, j, scratch + captured)
                        has_text = 1
                    i = j + 3
                else:
                    return None  # DOCTYPE and other declarations
                continue
            if c == 63:  # '<?' processing instruction
                j = qname(p, i + 2, n, &colon)
                if j < 0 or colon >= 0:
                    return None
                if j - i - 2 == 3 and (p[i + 2] | 32) == 120 and (p[i + 3] | 32) == 109 \
                        and (p[i + 4] | 32) == 108:
                    return None  # 'xml' (a declaration out of place)
                if j + 1 < n and p[j] == 63 and p[j + 1] == 62:
                    i = j + 2
                else:
                    if j >= n or not is_space(p[j]):
                        return None
                    k = find(p, j, n, b"?>", 2)
                    if k < 0:
                        return None
                    i = k + 2
                capturing = 0  # a field's text ends at a processing instruction
                last_tag = i
                continue
            if c == 47:  # '</' end tag
                if depth == 0:
                    return None
                qs = i + 2
                j = qname(p, qs, n, &colon)
                if j < 0 or j - qs != name_size[depth - 1] or \
                        memcmp(p + qs, p + name_start[depth - 1], j - qs) != 0:
                    return None
                j = skip_space(p, j, n)
                if j >= n or p[j] != 62:
                    return None
                i = j + 1
                last_tag = i
                depth -= 1
                role = roles[depth]
                bindings = binding_mark[depth]
                if role == FIELD:
                    values[slot] = (
                        PyUnicode_DecodeUTF8(<char*>scratch, captured, NULL) if has_text else None
                    )
                    capturing = 0
                    captured = 0
                else:
                    root_done = root_done or end_container(role, parts, values)
                continue
            # start tag
            if depth >= MAX_DEPTH or root_done:
                return None
            qs = i + 1
            i = qname(p, qs, n, &colon)
            if i < 0:
                return None
            ql = i - qs
            ps, pl = qs, (colon - qs if colon >= 0 else 0)
            binding_mark[depth] = bindings
            attributes = 0
            closed = 0
            while True:
                j = skip_space(p, i, n)
                if j >= n:
                    return None
                if p[j] == 62:
                    i = j + 1
                    break
                if p[j] == 47:
                    if j + 1 >= n or p[j + 1] != 62:
                        return None
                    i = j + 2
                    closed = 1
                    break
                if j == i or attributes >= MAX_ATTRIBUTES:
                    return None  # attributes must be separated by whitespace
                i = j
                k = qname(p, i, n, &colon)
                if k < 0:
                    return None
                attr_start[attributes], attr_size[attributes] = i, k - i
                attr_colon[attributes] = colon
                for a in range(attributes):
                    if attr_size[a] == k - i and memcmp(p + attr_start[a], p + i, k - i) == 0:
                        return None  # repeated attribute
                attributes += 1
                j = skip_space(p, k, n)
                if j >= n or p[j] != 61:
                    return None
                j = skip_space(p, j + 1, n)
                if j >= n or (p[j] != 34 and p[j] != 39):
                    return None
                quote = p[j]
                vs = j + 1
                ve = find(p, vs, n, <const char*>&quote, 1)
                if ve < 0 or ve - vs > MAX_RUN or decode(p, vs, ve, scratch + captured, 1) < 0:
                    return None
                if same(p, i, k - i, b"xmlns") or (colon == i + 5 and
                                                   memcmp(p + i, b"xmlns", 5) == 0):
                    if bindings >= MAX_BINDINGS:
                        return None
                    if not is_uri(p, vs, ve):
                        return None
                    if same(p, vs, ve - vs, XML_NS) or same(p, vs, ve - vs, XMLNS_NS):
                        return None
                    if colon >= 0:
                        prefix_start[bindings] = colon + 1
                        prefix_size[bindings] = attr_size[attributes - 1] - 6
                        if ve == vs or same(p, colon + 1, prefix_size[bindings], b"xml") or \
                                same(p, colon + 1, prefix_size[bindings], b"xmlns"):
                            return None
                    else:
                        prefix_start[bindings], prefix_size[bindings] = i, 0
                    uri_start[bindings], uri_size[bindings] = vs, ve - vs
                    bindings += 1
                    attr_colon[attributes - 1] = -2  # a declaration, not an attribute to lxml
                elif depth == 0 and same(p, i, k - i, b"guid"):
                    guid_start, guid_end = vs, ve
                i = ve + 1
            # Every prefix must be bound; two prefixed attributes must differ in local name
            # (their prefixes could name one namespace).
            for a in range(attributes):
                colon = attr_colon[a]
                if colon < 0:
                    continue  # no prefix, or a namespace declaration
                if not same(p, attr_start[a], colon - attr_start[a], b"xml") and \
                        lookup(p, attr_start[a], colon - attr_start[a], prefix_start,
                               prefix_size, bindings) < 0:
                    return None
                for b in range(a):
                    if attr_colon[b] >= 0 and attr_size[a] - (colon - attr_start[a]) == \
                            attr_size[b] - (attr_colon[b] - attr_start[b]) and \
                            memcmp(p + colon, p + attr_colon[b],
                                   attr_size[a] - (colon - attr_start[a])) == 0:
                        return None
            b = lookup(p, ps, pl, prefix_start, prefix_size, bindings)
            if b < 0 and pl:
                return None  # unbound prefix (or xml:, left to lxml)
            us, ul = -1, 0
            if b >= 0:
                us, ul = uri_start[b], uri_size[b]
            ceb = us >= 0 and same(p, us, ul, CEB)
            ls = qs + pl + (1 if pl else 0)  # local name
            ll = ql - (ls - qs)
            name_start[depth], name_size[depth] = qs, ql
            parent = roles[depth - 1] if depth > 0 else OTHER
            if depth == 0:
                if not ceb:
                    return None  # not a CEB root: lxml names the fault
                shape = self.shapes.get(p[ls:ls + ll])
                if shape is None:
                    return None
                message = p[ls:ls + ll].decode("ascii")
                if guid_start >= 0:
                    k = decode(p, guid_start, guid_end, scratch, 1)
                    guid = PyUnicode_DecodeUTF8(<char*>scratch, k, NULL)
                role = ROOT
            elif parent == ROOT and same(p, ls, ll, shape.document):
                if ceb:
                    role = DOCUMENT
                    parts = []
                    children.append((True, parts))
                else:
                    role = OTHER
                    children.append((False, p[us:us + ul].decode("ascii") if us >= 0 and ul
                                     else None))
            elif parent == DOCUMENT and ceb and same(p, ls, ll, shape.head):
                role = HEAD
                fields = shape.head_fields
                values = [None] * len(fields)
            elif parent == DOCUMENT and ceb and same(p, ls, ll, shape.line):
                role = LINE
                fields = shape.line_fields
                values = [None] * len(fields)
            elif (parent == HEAD or parent == LINE) and ceb and \
                    field_slot(p, ls, ll, fields) >= 0:
                role = FIELD
                slot = field_slot(p, ls, ll, fields)
                capturing, has_text, captured = 1, 0, 0
            else:
                role = OTHER
                capturing = 0  # a field's text ends at its first child element
            roles[depth] = role
            depth += 1
            last_tag = i
            if closed:  # <x/>: ends at once
                depth -= 1
                bindings = binding_mark[depth]
                if role == FIELD:
                    values[slot] = None
                    capturing = 0
                else:
                    root_done = root_done or end_container(role, parts, values)
        if depth or not root_done or i - last_tag > MAX_RUN:
            return None
        return message, guid, children

