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
    bint bytes_exact "PyBytes_CheckExact"(PyObject* o) noexcept
    Py_ssize_t bytes_size "PyBytes_GET_SIZE"(PyObject* o) noexcept
    const char* bytes_data "PyBytes_AS_STRING"(PyObject* o) noexcept
    bint tuple_exact "PyTuple_CheckExact"(PyObject* o) noexcept
    Py_ssize_t tuple_size "PyTuple_GET_SIZE"(PyObject* o) noexcept
    PyObject* tuple_item "PyTuple_GET_ITEM"(PyObject* o, Py_ssize_t i) noexcept

cdef enum:
    HEAD_MAX = 9  # the longest head of a value: a float64 or an int64, a tag and 8 bytes
    FIELDS_MAX = 32  # fields of a Struct the writer packs itself (a Struct of more: msgspec)
    # The room made before a document, a slot or a Struct is written in one pass (one that
    # does not fit in the room left is written value by value, the buffer growing as needed).
    ENTRY_ROOM = 4096
    # The room a state's buffer starts with, and more for each document and order slot (the
    # benchmark's take some 150 and 320 bytes): each time the buffer grows, what it holds is
    # copied (the copies were an eighth of a snapshot's instructions); room never written is
    # never touched, and given back at the end.
    STATE_GUESS = 1 << 16
    DOC_GUESS = 256
    SLOT_GUESS = 512


@cython.final
cdef class Plan:
    """Where a msgspec Struct type holds its fields (`offsets`, in field order), and the
    names msgspec packs them by: how the writer packs one as msgspec does (a map of every
    field; `packs` False when msgspec would pack it otherwise: as an array, leaving out
    defaults, with a tag, or with more fields than the writer holds)."""

    cdef object kind
    cdef bytes names  # as msgspec packs them (each a MessagePack str), one after the other
    cdef Py_ssize_t count
    cdef Py_ssize_t offsets[FIELDS_MAX]
    cdef Py_ssize_t name_ends[FIELDS_MAX]  # where each name ends in `names`
    cdef bint packs

    def __cinit__(self, kind, encode, bint packed=True):
        cdef Py_ssize_t f
        config = kind.__struct_config__
        fields = kind.__struct_fields__
        self.kind, self.count = kind, len(fields)
        self.packs = packed and self.count <= FIELDS_MAX and not (
            config.array_like or config.omit_defaults or config.tag is not None
        )
        encoded_fields = kind.__struct_encode_fields__ if self.packs else ()  # else unused
        packed_names = [encode(name) for name in encoded_fields]
        self.names = b"".join(packed_names)
        for f in range(len(packed_names)):
            self.name_ends[f] = (self.name_ends[f - 1] if f else 0) + len(packed_names[f])
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

    cdef inline const unsigned char* end(self) noexcept:
        """Where the room made ends (the buffer's end)."""
        return <unsigned char*>PyBytes_AS_STRING(<object>self.buffer) + self.capacity

    cdef inline bint wrote(self, unsigned char* at) noexcept:
        """Whether a pass of the `put_` functions wrote (`at`: where it ended), keeping what it
        wrote; what a pass that failed wrote is written over."""
        if at == NULL:
            return False
        self.size = at - <unsigned char*>PyBytes_AS_STRING(<object>self.buffer)
        return True

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
        (anything else: `value`); in one pass (`put_struct`) when it can."""
        cdef Py_ssize_t f, start
        cdef unsigned char* at = self.room(ENTRY_ROOM)
        if self.wrote(put_struct(at, self.end(), plan, value)):
            return 0
        if not plan.packs or type(value) is not plan.kind or not all_set(value, plan):
            return self.value(value)
        self.head(put_map_head, plan.count)
        for f in range(plan.count):
            start = plan.name_ends[f - 1] if f else 0
            self.raw(PyBytes_AS_STRING(plan.names) + start, plan.name_ends[f] - start)
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
    (some 2,000 instructions an event); the snapshot writer's `struct`."""

    cdef Plan plan
    cdef Writer out

    def __cinit__(self, kind, encode, encode_into):
        self.plan, self.out = Plan(kind, encode), Writer(encode_into)

    def pack_into(self, value, bytearray out):
        """`value` packed into `out`, which then holds just it."""
        self.out.size = 0  # (the writer's bytes are kept from one value to the next)
        self.out.struct(self.plan, value)
        PyByteArray_Resize(out, self.out.size)
        memcpy(PyByteArray_AS_STRING(out), self.out.room(0) - self.out.size, self.out.size)


# The `put_` functions write a value, or the values of an entry, in one pass at `at`, when
# `put_plain` packs each and they fit before `end`, and say where they end; else NULL (a
# NULL `at`, a pass that failed before, gives NULL) and the writer writes it value by value.

cdef unsigned char* put_plain(
    unsigned char* at, const unsigned char* end, PyObject* value
) noexcept:
    """`value` when it is None, an ASCII str, an int within int64, bytes or a tuple of ASCII
    strs (NULL: a field not set)."""
    cdef Py_ssize_t i
    cdef int overflow = 0
    cdef long long number
    if at == NULL or value == NULL or end - at < HEAD_MAX:
        return NULL
    if str_exact(value):
        return put_ascii(at, end, value)
    if int_exact(value):
        number = int_value(value, &overflow)
        return NULL if overflow else at + put_int(at, number)
    if value == <PyObject*>None:
        at[0] = 0xC0
        return at + 1
    if bytes_exact(value):
        if end - at < HEAD_MAX + bytes_size(value):
            return NULL
        at += put_bin_head(at, bytes_size(value))
        memcpy(at, bytes_data(value), bytes_size(value))
        return at + bytes_size(value)
    if not tuple_exact(value):
        return NULL
    at += put_array_head(at, tuple_size(value))
    for i in range(tuple_size(value)):
        if not str_exact(tuple_item(value, i)):
            return NULL
        at = put_ascii(at, end, tuple_item(value, i))
    return at


cdef inline unsigned char* put_ascii(
    unsigned char* at, const unsigned char* end, PyObject* text
) noexcept:
    """A str when it is ASCII (its characters are its UTF-8)."""
    if at == NULL or not str_ascii(text) or end - at < HEAD_MAX + str_length(text):
        return NULL
    at += put_str_head(at, str_length(text))
    memcpy(at, str_data(text), str_length(text))
    return at + str_length(text)


cdef unsigned char* put_struct(
    unsigned char* at, const unsigned char* end, Plan plan, object value
) noexcept:
    """A Struct of `plan`'s type as a map of its fields by name; anything else: `put_plain`."""
    if at == NULL or not plan.packs or type(value) is not plan.kind:
        return put_plain(at, end, <PyObject*>value)
    if end - at < HEAD_MAX:
        return NULL
    return put_fields(at + put_map_head(at, plan.count), end, plan, value, True)


cdef unsigned char* put_fields(
    unsigned char* at, const unsigned char* end, Plan plan, object value, bint named
) noexcept:
    """The fields of `value` (of `plan`'s type), one after the other, each after its name
    when `named`."""
    cdef Py_ssize_t f, start = 0
    cdef const char* names = PyBytes_AS_STRING(plan.names)
    for f in range(plan.count):
        if named:
            if at == NULL or end - at < plan.name_ends[f] - start:
                return NULL
            memcpy(at, names + start, plan.name_ends[f] - start)
            at += plan.name_ends[f] - start
            start = plan.name_ends[f]
        at = put_plain(at, end, field_at(value, plan.offsets[f]))
    return at


cdef inline unsigned char* put_key(
    unsigned char* at, const unsigned char* end, object key
) noexcept:
    """A key's two parts (of a document or an order: the first two values of its entry)."""
    if at == NULL or not tuple_exact(<PyObject*>key) or tuple_size(<PyObject*>key) != 2:
        return NULL
    at = put_plain(at, end, tuple_item(<PyObject*>key, 0))
    return put_plain(at, end, tuple_item(<PyObject*>key, 1))


cdef unsigned char* put_doc(
    unsigned char* at, const unsigned char* end, object key, object entry, Plan entries
) noexcept:
    """A `_SavedDoc`: the document `entry` (of `entries`' type) at `key`."""
    if type(entry) is not entries.kind:
        return NULL
    at = put_key(at + put_array_head(at, 2 + entries.count), end, key)
    return put_fields(at, end, entries, entry, False)


cdef unsigned char* put_order(
    unsigned char* at, const unsigned char* end, object key, Slot slot
) noexcept:
    """A `_SavedDoc`: the order document the order slot `slot` at `key` keeps."""
    at = put_key(at + put_array_head(at, 5), end, key)
    at = put_plain(at, end, <PyObject*>slot.order_revision)
    at = put_plain(at, end, <PyObject*>slot.order_link)
    return put_plain(at, end, <PyObject*>slot.order_rows)


cdef unsigned char* put_slot(
    unsigned char* at, const unsigned char* end, object key, Slot slot, Plan events
) noexcept:
    """A `_SavedSlot`: the order slot `slot` at `key`, its last event of `events`' type."""
    at = put_key(at + put_array_head(at, 8), end, key)
    if at == NULL or end - at < 2 * HEAD_MAX:
        return NULL
    at += put_float(at, slot.first_seen)
    at += put_int(at, slot.version)
    at = put_struct(at, end, events, slot.last)
    if at == NULL or end - at < 2:
        return NULL
    at[0] = 0xC3 if slot.flags & EVALUATED else 0xC2
    at[1] = 0xC3 if slot.flags & EXPIRED else 0xC2
    return put_plain(at + 2, end, <PyObject*>slot.buyer)


cdef int key_parts(Writer out, object key) except -1:
    """A key's two parts, value by value (a tuple of another length raises: unchecked
    indexing would read past its end)."""
    first, second = <tuple?>key
    out.value(first)
    out.value(second)
    return 0


cdef inline bint all_set(object value, Plan plan) noexcept:
    """Whether every field of `value` (of `plan`'s type) is set (else msgspec says why not)."""
    cdef Py_ssize_t f
    for f in range(plan.count):
        if field_at(value, plan.offsets[f]) == NULL:
            return False
    return True


def encode_state(tuple names, dict docs, list order_keys, dict slots, dict rest, encode,
                 encode_into, entry_type, event_type):
    """`msgspec.msgpack.encode(_State(...))` of the state: `names` are `_State`'s fields in
    order (docs, slots, then those of `rest`, which holds them by name), `docs` the
    matcher's documents by kind but orders (each an `entry_type`, `_Entry`: a `_SavedDoc` of
    it is its key's two parts, revision, link and rows), `order_keys` the keys of the orders
    whose slots keep an order document, in their order (the first kind, "order": a
    `_SavedDoc` of the slot's `order_revision`, `order_link`, `order_rows`), `slots` its
    order slots (compiled ones: a `_SavedSlot` is its key's two parts, first_seen, version,
    last (an `event_type` or None), evaluated, expired and buyer), `rest` as `_State` holds
    them; `encode` and `encode_into` are msgspec's, for names and for values of other types.
    None when a slot is not a compiled one (the caller packs it)."""
    if len(names) != 2 + len(rest):
        raise ValueError("a state's fields are its documents, its slots and the rest")
    for held in slots.values():
        if type(held) is not Slot:
            return None  # found before anything is written
    cdef Writer out = Writer(encode_into)
    cdef Slot slot
    cdef unsigned char* at
    cdef unsigned char* flags
    cdef Plan entries = Plan(entry_type, encode, False), events = Plan(event_type, encode)
    cdef Py_ssize_t revision = entries.offsets[0], link = entries.offsets[1]
    cdef Py_ssize_t rows = entries.offsets[2]
    if entry_type.__struct_fields__ != ("revision", "link", "rows"):
        raise ValueError(f"{entry_type.__name__} is not a document entry")
    documents = len(order_keys) + sum([len(<dict>store) for store in docs.values()])
    out.room(STATE_GUESS + DOC_GUESS * documents + SLOT_GUESS * len(slots))
    out.head(put_map_head, len(names))
    out.text(names[0])
    out.head(put_map_head, 1 + len(docs))
    out.text("order")
    out.head(put_array_head, len(order_keys))
    for key in order_keys:
        slot = <Slot>slots[key]
        at = out.room(ENTRY_ROOM)
        if out.wrote(put_order(at, out.end(), key, slot)):
            continue  # else value by value:
        out.head(put_array_head, 5)
        key_parts(out, key)
        out.value(slot.order_revision)
        out.value(slot.order_link)
        out.value(slot.order_rows)
    for kind, store in docs.items():
        out.value(kind)
        out.head(put_array_head, len(<dict>store))
        for key, entry in (<dict>store).items():
            at = out.room(ENTRY_ROOM)
            if out.wrote(put_doc(at, out.end(), key, entry, entries)):
                continue  # else value by value:
            out.head(put_array_head, 5)
            key_parts(out, key)
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
        at = out.room(ENTRY_ROOM)
        if out.wrote(put_slot(at, out.end(), key, slot, events)):
            continue  # else value by value:
        out.head(put_array_head, 8)
        key_parts(out, key)
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
