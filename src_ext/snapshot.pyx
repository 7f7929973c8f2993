# cython: language_level=3
"""The stream matcher's state as a snapshot in one compiled pass (matchcore/stream/matcher.py
`StreamMatcher.snapshot`): the MessagePack that msgspec writes for the `_State` of the state,
byte for byte, written straight from the matcher's dicts, with no `_SavedDoc` or `_SavedSlot`
made for each document and slot first (those, and msgspec walking them, were most of a
snapshot's time); and a verdict event as its log record holds it (`StructPacker`).
tests/stream/test_stream_snapshot_writer.py compares the two."""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from cpython.ref cimport Py_DECREF, Py_INCREF, Py_XDECREF, PyObject
from libc.string cimport memcpy

from matchcore._native.slots cimport EVALUATED, EXPIRED, Slot
from struct_fields cimport field_at, object_member
from msgpack_out cimport (
    put_array_head, put_bin_head, put_float, put_int, put_map_head, put_str_head,
)

cdef extern from "Python.h":
    bint PyLong_CheckExact(object value)
    bint PyFloat_CheckExact(object value)
    bint PyUnicode_CheckExact(object value)
    bint PyBytes_CheckExact(object value)
    bint PyTuple_CheckExact(object value)
    bint PyList_CheckExact(object value)
    bint PyDict_CheckExact(object value)
    long long PyLong_AsLongLongAndOverflow(object value, int* overflow) except? -1
    int _PyBytes_Resize(PyObject** data, Py_ssize_t size) except -1


cdef extern from "Python.h":
    # On borrowed references, with no Python call (see `put_plain`):
    bint str_exact "PyUnicode_CheckExact"(PyObject* o) noexcept
    bint str_ascii "PyUnicode_IS_COMPACT_ASCII"(PyObject* o) noexcept
    Py_ssize_t str_length "PyUnicode_GET_LENGTH"(PyObject* o) noexcept
    const void* str_data "PyUnicode_DATA"(PyObject* o) noexcept
    bint int_exact "PyLong_CheckExact"(PyObject* o) noexcept
    # (of an int: one past int64 sets `overflow`, no error)
    long long int_value "PyLong_AsLongLongAndOverflow"(PyObject* o, int* overflow) noexcept
    bint tuple_exact "PyTuple_CheckExact"(PyObject* o) noexcept
    Py_ssize_t tuple_size "PyTuple_GET_SIZE"(PyObject* o) noexcept
    PyObject* tuple_item "PyTuple_GET_ITEM"(PyObject* o, Py_ssize_t i) noexcept

cdef enum:
    HEAD_MAX = 9  # the longest head of a value: a float64 or an int64, a tag and 8 bytes
    FIELDS_MAX = 32  # fields of a Struct the writer packs itself (a Struct of more: msgspec)
    PACKED_MAX = 4096  # the packed size of a Struct `StructPacker` packs in one pass


@cython.final
cdef class Plan:
    """Where a msgspec Struct type holds its fields (`offsets`, in field order), and the
    names msgspec packs them by: how the writer packs one as msgspec does (a map of every
    field; `packs` False when msgspec would pack it otherwise: as an array, leaving out
    defaults, with a tag, or with more fields than the writer holds)."""

    cdef object kind
    cdef tuple names  # as msgspec packs them: each a MessagePack str
    cdef Py_ssize_t count
    cdef Py_ssize_t offsets[FIELDS_MAX]
    cdef bint packs

    def __cinit__(self, kind, encode, bint packed=True):
        cdef Py_ssize_t f
        config = kind.__struct_config__
        fields = kind.__struct_fields__
        self.kind, self.count = kind, len(fields)
        self.packs = packed and self.count <= FIELDS_MAX and not (
            config.array_like or config.omit_defaults or config.tag is not None
        )
        packed_names = kind.__struct_encode_fields__ if self.packs else ()  # else unused
        self.names = tuple(encode(name) for name in packed_names)
        for f in range(min(self.count, FIELDS_MAX)):
            self.offsets[f] = object_member(kind, fields[f]).offset


@cython.final
cdef class Writer:
    """A MessagePack document being written: the values of the state in msgspec's forms, and
    anything else packed by msgspec itself (`encode_into`, into a scratch array) and copied:
    what msgspec writes for a value does not depend on where the value is."""

    cdef PyObject* buffer  # a bytes object of `capacity` bytes, the first `size` written
    cdef Py_ssize_t size, capacity
    cdef object encode_into
    cdef bytearray scratch

    def __cinit__(self, encode_into):
        self.encode_into = encode_into
        self.scratch = bytearray()

    def __dealloc__(self):
        Py_XDECREF(self.buffer)

    cdef inline unsigned char* room(self, Py_ssize_t extra) except NULL:
        """Where `extra` more bytes go (the bytes object grows in place where it can: a big
        one is remapped, not copied)."""
        cdef Py_ssize_t needed = self.size + extra
        if needed > self.capacity:
            needed = max(needed, 2 * self.capacity, 1 << 16)
            if self.buffer == NULL:
                fresh = PyBytes_FromStringAndSize(NULL, needed)
                Py_INCREF(fresh)  # the writer's own reference (`fresh`'s goes at return)
                self.buffer = <PyObject*>fresh
            else:
                _PyBytes_Resize(&self.buffer, needed)
            self.capacity = needed
        return <unsigned char*>PyBytes_AS_STRING(<object>self.buffer) + self.size

    cdef inline int head(self, Py_ssize_t (*put)(unsigned char*, Py_ssize_t) noexcept,
                         Py_ssize_t count) except -1:
        self.size += put(self.room(HEAD_MAX), count)
        return 0

    cdef int raw(self, const void* data, Py_ssize_t size) except -1:
        memcpy(self.room(size), data, size)
        self.size += size
        return 0

    cdef int text(self, object value) except -1:
        """A str (exactly: its subclasses go to msgspec)."""
        cdef Py_ssize_t size
        cdef const char* utf8 = PyUnicode_AsUTF8AndSize(value, &size)
        self.head(put_str_head, size)
        return self.raw(utf8, size)

    cdef bint whole(self, object value) except -1:
        """An int within int64 (False, having written nothing, for one past it)."""
        cdef int overflow = 0
        cdef long long number = PyLong_AsLongLongAndOverflow(value, &overflow)
        if overflow:
            return False
        self.size += put_int(self.room(HEAD_MAX), number)
        return True

    cdef int real(self, double value) except -1:
        """A float (msgspec's form: always a float64)."""
        self.size += put_float(self.room(HEAD_MAX), value)
        return 0

    cdef int value(self, object value) except -1:
        """Any value, as msgspec packs it."""
        if value is None:
            self.room(1)[0] = 0xC0
            self.size += 1
        elif value is True or value is False:
            self.room(1)[0] = 0xC3 if value is True else 0xC2
            self.size += 1
        elif PyUnicode_CheckExact(value):
            self.text(value)
        elif PyLong_CheckExact(value) and self.whole(value):
            pass
        elif PyBytes_CheckExact(value):
            self.size += put_bin_head(self.room(HEAD_MAX), PyBytes_GET_SIZE(value))
            self.raw(PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value))
        elif PyFloat_CheckExact(value):
            self.real(PyFloat_AS_DOUBLE(value))
        elif PyTuple_CheckExact(value) or PyList_CheckExact(value):
            self.head(put_array_head, len(value))
            for item in value:
                self.value(item)
        elif PyDict_CheckExact(value):
            self.head(put_map_head, len(<dict>value))
            for key, item in (<dict>value).items():
                self.value(key)
                self.value(item)
        else:  # a Struct (a verdict event), an int past int64, a subclass: msgspec's own
            self.encode_into(value, self.scratch)
            self.raw(PyByteArray_AS_STRING(self.scratch), PyByteArray_GET_SIZE(self.scratch))
        return 0

    cdef int struct(self, Plan plan, object value) except -1:
        """A Struct of `plan`'s type, as msgspec packs it: a map of its fields by name
        (anything else: `value`)."""
        cdef Py_ssize_t f
        if not plan.packs or type(value) is not plan.kind or not all_set(value, plan):
            return self.value(value)
        self.head(put_map_head, plan.count)
        for f in range(plan.count):
            name = plan.names[f]
            self.raw(PyBytes_AS_STRING(name), PyBytes_GET_SIZE(name))
            self.value(<object>field_at(value, plan.offsets[f]))
        return 0

    cdef bytes done(self):
        """What was written, as bytes of exactly its size (the writer's own, handed over)."""
        if self.buffer == NULL:
            return b""
        _PyBytes_Resize(&self.buffer, self.size)
        result = <object>self.buffer
        Py_DECREF(result)  # the writer's reference, now `result`'s
        self.buffer = NULL
        return result


@cython.final
cdef class StructPacker:
    """msgspec's `encode_into(value, out)` of Structs of one type (the verdict events of the
    log's records): the same bytes, without msgspec's walk of the type's fields for each
    (some 2,000 instructions an event). A Struct of None, ASCII text, ints within int64 and
    tuples of ASCII text (a verdict event's values) is packed in one pass over its fields
    (see `put_plain`); any other as the snapshot writer packs it."""

    cdef Plan plan
    cdef Writer out
    cdef bytes names  # the packed names of the fields, one after the other
    cdef Py_ssize_t name_ends[FIELDS_MAX]
    cdef unsigned char packed[PACKED_MAX]

    def __cinit__(self, kind, encode, encode_into):
        cdef Py_ssize_t f
        self.plan, self.out = Plan(kind, encode), Writer(encode_into)
        self.names = b"".join(self.plan.names)
        for f in range(len(self.plan.names)):
            self.name_ends[f] = (self.name_ends[f - 1] if f else 0) + len(self.plan.names[f])

    def pack_into(self, value, bytearray out):
        """`value` packed into `out`, which then holds just it."""
        cdef Plan plan = self.plan
        cdef Py_ssize_t f, size, start = 0
        cdef unsigned char* at = self.packed
        cdef const unsigned char* end = self.packed + PACKED_MAX
        cdef const unsigned char* names = <const unsigned char*>PyBytes_AS_STRING(self.names)
        if plan.packs and type(value) is plan.kind:
            at += put_map_head(at, plan.count)
            for f in range(plan.count):
                if end - at < self.name_ends[f] - start:
                    break
                memcpy(at, names + start, self.name_ends[f] - start)
                at += self.name_ends[f] - start
                start = self.name_ends[f]
                size = put_plain(at, end, field_at(value, plan.offsets[f]))
                if size < 0:
                    break
                at += size
            else:
                PyByteArray_Resize(out, at - self.packed)
                memcpy(PyByteArray_AS_STRING(out), self.packed, at - self.packed)
                return
        self.out.size = 0  # (the writer's bytes are kept from one value to the next)
        self.out.struct(plan, value)
        PyByteArray_Resize(out, self.out.size)
        memcpy(PyByteArray_AS_STRING(out), self.out.room(0) - self.out.size, self.out.size)


cdef Py_ssize_t put_plain(
    unsigned char* out, const unsigned char* end, PyObject* value
) noexcept:
    """`value` packed at `out`, as msgspec packs it, when it is None, an ASCII str, an int
    within int64 or a tuple of ASCII strs and fits before `end`: its size (else -1, as for
    a field not set)."""
    cdef Py_ssize_t at, size, item_size
    cdef int overflow = 0
    cdef long long number
    if value == NULL or end - out < HEAD_MAX:
        return -1
    if value == <PyObject*>None:
        out[0] = 0xC0
        return 1
    if str_exact(value):
        return put_ascii(out, end, value)
    if int_exact(value):
        number = int_value(value, &overflow)
        return -1 if overflow else put_int(out, number)
    if not tuple_exact(value):
        return -1
    size = put_array_head(out, tuple_size(value))
    for at in range(tuple_size(value)):
        if not str_exact(tuple_item(value, at)):
            return -1
        item_size = put_ascii(out + size, end, tuple_item(value, at))
        if item_size < 0:
            return -1
        size += item_size
    return size


cdef inline Py_ssize_t put_ascii(
    unsigned char* out, const unsigned char* end, PyObject* text
) noexcept:
    """A str packed at `out` when it is ASCII (its characters are its UTF-8) and fits before
    `end`: its size (else -1)."""
    if not str_ascii(text):
        return -1
    cdef Py_ssize_t length = str_length(text)
    if end - out < HEAD_MAX + length:
        return -1
    cdef Py_ssize_t size = put_str_head(out, length)
    memcpy(out + size, str_data(text), length)
    return size + length


cdef inline bint all_set(object value, Plan plan) noexcept:
    """Whether every field of `value` (of `plan`'s type) is set (else msgspec says why not)."""
    cdef Py_ssize_t f
    for f in range(plan.count):
        if field_at(value, plan.offsets[f]) == NULL:
            return False
    return True


def encode_state(tuple names, dict docs, dict slots, dict rest, encode, encode_into,
                 entry_type, event_type):
    """`msgspec.msgpack.encode(_State(...))` of the state: `names` are `_State`'s fields in
    order (docs, slots, then those of `rest`, which holds them by name), `docs` the
    matcher's documents by kind (each an `entry_type`, `_Entry`: a `_SavedDoc` of it is its
    key's two parts, revision, link and rows), `slots` its order slots (compiled ones: a
    `_SavedSlot` is its key's two parts, first_seen, version, last (an `event_type` or None),
    evaluated, expired and buyer), `rest` as `_State` holds them; `encode` and `encode_into`
    are msgspec's, for names and for values of other types. None when a slot is not a
    compiled one (the caller packs it)."""
    if len(names) != 2 + len(rest):
        raise ValueError("a state's fields are its documents, its slots and the rest")
    for held in slots.values():
        if type(held) is not Slot:
            return None  # found before anything is written
    cdef Writer out = Writer(encode_into)
    cdef Slot slot
    cdef unsigned char* flags
    cdef Plan entries = Plan(entry_type, encode, False), events = Plan(event_type, encode)
    cdef Py_ssize_t revision = entries.offsets[0], link = entries.offsets[1]
    cdef Py_ssize_t rows = entries.offsets[2]
    if entry_type.__struct_fields__ != ("revision", "link", "rows"):
        raise ValueError(f"{entry_type.__name__} is not a document entry")
    out.head(put_map_head, len(names))
    out.text(names[0])
    out.head(put_map_head, len(docs))
    for kind, store in docs.items():
        out.value(kind)
        out.head(put_array_head, len(<dict>store))
        for key, entry in (<dict>store).items():
            out.head(put_array_head, 5)
            out.value((<tuple?>key)[0])
            out.value((<tuple?>key)[1])
            if type(entry) is entry_type and all_set(entry, entries):
                out.value(<object>field_at(entry, revision))
                out.value(<object>field_at(entry, link))
                out.value(<object>field_at(entry, rows))
            else:
                out.value(entry.revision)
                out.value(entry.link)
                out.value(entry.rows)
    out.text(names[1])
    out.head(put_array_head, len(slots))
    for key, held in slots.items():
        slot = <Slot>held
        out.head(put_array_head, 8)
        out.value((<tuple?>key)[0])
        out.value((<tuple?>key)[1])
        out.real(slot.first_seen)
        out.size += put_int(out.room(HEAD_MAX), slot.version)
        out.struct(events, slot.last)
        flags = out.room(2)
        flags[0] = 0xC3 if slot.flags & EVALUATED else 0xC2
        flags[1] = 0xC3 if slot.flags & EXPIRED else 0xC2
        out.size += 2
        out.value(slot.buyer)
    for name in names[2:]:
        out.text(name)
        out.value(rest[name])
    return out.done()
