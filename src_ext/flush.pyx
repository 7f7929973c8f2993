# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The stream matcher's per-order flush glue in C: deciding the touched orders, looking up
their documents, sorting their keys, planning a buyer's annual-limit walks and a micro-batch's
quota ledger, listing the engine's results, remembering its walks and making the verdict events
of a micro-batch, each in one call instead of a dozen Python calls an order.

matchcore/stream/matcher.py keeps the pure-Python path, the reference, for when this is not
built (`StreamMatcher._decide_all`, `_linked`, `_walk_years`, `_walked_again`, `_replay_all`,
`_remember_walks`, `_events_of`, `_ledger_columns`, `_listed_values`, `sorted`);
tests/stream/test_stream_flush.py runs both side by side on generated streams.
"""

cimport cython
from cpython.buffer cimport PyBUF_RECORDS_RO, PyBuffer_Release, PyObject_GetBuffer
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.long cimport PyLong_FromLongLong, PyLong_FromUnsignedLongLong
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport (
    Py_EQ, Py_LT, PyObject, PyObject_RichCompareBool, PyTypeObject, Py_TYPE,
)
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.tuple cimport PyTuple_SET_ITEM
from libc.stdint cimport INT64_MAX, int32_t, int64_t, uint64_t
from libc.string cimport memchr, memcmp, memcpy, memset
from counters cimport add_count
from matchcore._native.packed cimport app_time_of
from matchcore._native.slots cimport (
    EVALUATED, EXPIRED, PLACE_KNOWN, SPENT_KNOWN, WALK_LIMIT_KNOWN, Slot, set_place,
    set_spent_after, set_time_place, set_walk_limit, spent_after,
)
from struct_fields cimport READONLY, PyMemberDef, field_at, object_member



cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object text, Py_ssize_t* size) except NULL
    long long PyLong_AsLongLongAndOverflow(object value, int* overflow) except? -1
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 most)
    void* PyUnicode_DATA(object text)
    bint PyUnicode_IS_ASCII(object text)
    bint PyType_IS_GC(PyTypeObject* kind)
    bint PyType_HasFeature(PyTypeObject* kind, unsigned long feature)
    object PyType_GenericAlloc(PyTypeObject* kind, Py_ssize_t items)
    enum: Py_TPFLAGS_TUPLE_SUBCLASS


cdef extern from "Python.h":
    # On borrowed references, with no Python call (see `key_order`):
    bint tuple_exact "PyTuple_CheckExact"(PyObject* o) noexcept nogil
    Py_ssize_t tuple_size "PyTuple_GET_SIZE"(PyObject* o) noexcept nogil
    PyObject* tuple_item "PyTuple_GET_ITEM"(PyObject* o, Py_ssize_t i) noexcept nogil
    bint str_exact "PyUnicode_CheckExact"(PyObject* o) noexcept nogil
    bint str_ready "PyUnicode_IS_READY"(PyObject* o) noexcept nogil
    int str_kind "PyUnicode_KIND"(PyObject* o) noexcept nogil
    const void* str_data "PyUnicode_DATA"(PyObject* o) noexcept nogil
    Py_ssize_t str_length "PyUnicode_GET_LENGTH"(PyObject* o) noexcept nogil
    enum: PyUnicode_1BYTE_KIND


cdef extern from "mc_dict.h":  # `dict.get`, `d[key] = value`, `key in d` by a known hash
    object mc_dict_get(dict d, object key, Py_hash_t hash)
    object mc_dict_get_or(dict d, object key, Py_hash_t hash, object otherwise)
    int mc_dict_set(dict d, object key, object value, Py_hash_t hash) except -1
    int mc_dict_contains(dict d, object key, Py_hash_t hash) except -1


cdef extern from *:
    """
    /* Whether a type's objects are allocated as PyType_GenericAlloc allocates them. */
    #define mc_generic_alloc(kind) ((kind)->tp_alloc == PyType_GenericAlloc)
    """
    bint mc_generic_alloc(PyTypeObject* kind) noexcept
    bint add_overflows "__builtin_add_overflow"(int64_t a, int64_t b, int64_t* sum) noexcept
    uint64_t bswap64 "__builtin_bswap64"(uint64_t word) noexcept nogil


cdef enum:
    # Where a money text's point goes in `FlushGlue.money`'s buffer (a sign and 20 digits fit
    # before it), and the most decimals after it (an int64 scale has 18 at most).
    POINT = 24
    MAX_DECIMALS = 20
    # A walk of up to this many orders is sorted in C by insertion (see `sorted_walk`); up to
    # this many changed orders are found in a walk by scanning, not through a set.
    INSERTION_MAX = 32
    CHANGED_SCAN_MAX = 8
    # The verdicts an `Emitted` tallies before it adds them to their counters.
    TALLIED_MAX = 8
    # The words of a key's first bytes in a `SortedKey`, and the runs `merge_sort` sorts by
    # insertion.
    PREFIX_WORDS = 3
    SORTED_RUN = 8
    # A verdict event's fields (`EVENT_FIELDS`).
    EVENT_FIELD_COUNT = 12


ctypedef struct Emitted:
    # The events `FlushGlue.emit_all` emitted, by verdict (each held, and told apart by
    # identity: the verdicts are the few texts `verdict_of` gives), in order of each's first.
    PyObject* verdicts[TALLIED_MAX]
    Py_ssize_t counts[TALLIED_MAX]
    Py_ssize_t size


ctypedef struct WalkEntry:
    # A walk in `Walks.number_rows`' table: the hash of its buyer-year, its number + 1 (0: the
    # entry is free).
    Py_hash_t pair_hash
    Py_ssize_t number


ctypedef struct SortedKey:
    # A `byte_texts` key and its first bytes (see `key_prefix`) as integers, compared before
    # the key: most keys are told apart by them, each compare a few instructions, where
    # comparing the texts (`key_order`) costs some 80.
    uint64_t prefix[PREFIX_WORDS]
    PyObject* key


ctypedef struct Place:
    # An order's walk place as its slot keeps it (see matchcore/_native/slots.pxd): the year
    # above 64 bits of app time, compared as the pair.
    int32_t high
    uint64_t low


@cython.final
cdef class Field:
    """One field of a msgspec Struct type, read and written in place (see
    src_ext/struct_fields.pxd). Objects of another type, and writes to a type the garbage
    collector tracks (whose Structs track their containers on writes), go through getattr and
    setattr."""

    cdef PyTypeObject* kind
    cdef object kind_ref  # keeps `kind` alive
    cdef str name
    cdef Py_ssize_t offset
    cdef bint writable

    def __init__(self, kind, str name):
        cdef PyMemberDef* member
        self.name = name
        if kind is None:  # not known: every access is generic
            return
        if not isinstance(kind, type):
            raise TypeError(f"{kind!r} is not a type")
        member = object_member(kind, name)
        self.kind, self.kind_ref = <PyTypeObject*>kind, kind
        self.offset = member.offset
        self.writable = not (member.flags & READONLY or PyType_IS_GC(self.kind))

    cdef inline object get(self, obj):
        """`obj.<name>`."""
        cdef PyObject* value
        if Py_TYPE(obj) == self.kind:
            value = field_at(obj, self.offset)
            if value != NULL:
                return <object>value
        return getattr(obj, self.name)  # (an unset field raises AttributeError here)

    cdef inline int set(self, obj, value) except -1:
        """`obj.<name> = value`."""
        cdef PyObject** held
        cdef PyObject* old
        if Py_TYPE(obj) != self.kind or not self.writable:
            setattr(obj, self.name, value)
            return 0
        held = <PyObject**>(<char*><PyObject*>obj + self.offset)
        old = held[0]
        Py_INCREF(value)
        held[0] = <PyObject*>value
        Py_XDECREF(old)
        return 0


@cython.final
cdef class Walks:
    """The annual-limit walks of an engine run's order rows (see `FlushGlue.walks`): each
    row's walk, a buyer-year, by number (in order of their first rows), the walks' (buyer,
    year) tuples (`groups`) and the spent each starts from (`starts`: its spent in the
    `starts` given, else the quota `ledger`'s, else 0), and the rows' app `times`."""

    cdef list groups, starts, times
    cdef Py_ssize_t* numbers  # each row's walk
    cdef Py_ssize_t count  # rows

    def __cinit__(self, list buyers, list years, list times, dict starts, dict ledger):
        if len(buyers) != len(times) or len(years) != len(times):
            raise ValueError("the walks do not have a buyer, a year and a time a row")
        self.count, self.times, self.groups, self.starts = len(times), times, [], []
        self.numbers = <Py_ssize_t*>PyMem_Malloc(max(self.count, 1) * sizeof(Py_ssize_t))
        if self.numbers == NULL:
            raise MemoryError()
        self.number_rows(buyers, years)
        cdef Py_hash_t group_hash
        for group in self.groups:
            # Each walk's start looked up once, its tuple hashed once for both dicts (which
            # hold equal tuples, not these)
            group_hash = hash(group)
            spent = mc_dict_get(starts, group, group_hash) if starts else None
            if spent is None:  # (a start is never None)
                spent = mc_dict_get_or(ledger, group, group_hash, 0) if ledger else 0
            self.starts.append(spent)

    def __dealloc__(self):
        PyMem_Free(self.numbers)

    @property
    def groups(self):
        """The walks' (buyer, year), in order of their first rows."""
        return list(self.groups)

    cdef int number_rows(self, list buyers, list years) except -1:
        """Number each row's walk, in order of first rows, putting each walk's (buyer, year)
        in `groups`: found in a table of its own by the hash of the two (open addressing),
        compared as a tuple compares them. A tuple a row hashed and put in a dict costs some
        500 instructions."""
        cdef Py_ssize_t size = 8, at, row, number
        while size < 2 * self.count:
            size *= 2
        cdef WalkEntry* table = <WalkEntry*>PyMem_Malloc(size * sizeof(WalkEntry))
        if table == NULL:
            raise MemoryError()
        cdef uint64_t pair_hash
        memset(table, 0, size * sizeof(WalkEntry))
        try:
            for row in range(self.count):
                buyer, year = buyers[row], years[row]
                # (the buyer's hash is kept in its text; a year's is its value)
                pair_hash = <uint64_t>hash(buyer) * 0x9E3779B97F4A7C15ULL + <uint64_t>hash(year)
                at = <Py_ssize_t>((pair_hash ^ (pair_hash >> 32)) & <uint64_t>(size - 1))
                while True:
                    number = table[at].number - 1
                    if number < 0:  # a new walk
                        number = len(self.groups)
                        table[at].pair_hash, table[at].number = <Py_hash_t>pair_hash, number + 1
                        self.groups.append((buyer, year))
                        break
                    if table[at].pair_hash == <Py_hash_t>pair_hash and same_walk(
                        <tuple>self.groups[number], buyer, year
                    ):
                        break
                    at = (at + 1) & (size - 1)
                self.numbers[row] = number
        finally:
            PyMem_Free(table)
        return 0


cdef inline bint same_walk(tuple group, buyer, year) except -1:
    """Whether `group` is (buyer, year), compared as tuples compare their items."""
    return (
        PyObject_RichCompareBool(group[0], buyer, Py_EQ)
        and PyObject_RichCompareBool(group[1], year, Py_EQ)
    )


cdef inline object live_order(object slot):
    """matcher.py `_live_order`: the order's slot (a `Slot` or None) when it holds a live order
    document."""
    return slot if slot is not None and (<Slot>slot).order_rows is not None else None


cdef int hold(key, packed, link, tuple held) except -1:
    """Add a document (its `packed` rows, its `link`) to `held`, (packed rows, keys, links),
    when it has rows."""
    if packed:
        (<list>held[0]).append(packed)
        (<list>held[1]).append(key)
        (<list>held[2]).append(link)
    return 0


cdef class FlushGlue:
    """The flush steps of one matcher, over its own state (made with it, as a restore makes a
    new matcher state).

    `docs` are the matcher's documents by kind, `slots` its order slots (which keep the order
    documents, `order_revision`, `order_link`, `order_rows`, and the links of payments and
    waybills, `payments`, `waybills`), `buyer_members` its buyer index's members; `linked`
    makes a `_Linked`, `settle(key, live)` does what a touched order that does not go to the
    engine gets (`StreamMatcher._settle`). `place_of(packed, *place_args)` reads the walk place
    of a packed order (matcher.py `_place_of`; `place_args`: the two arguments after the rows
    that `packed.walk_place` takes, called straight, not through a Python frame; given, the
    usual places are read in C, see `place`), `replay` is the `_Replay` type. `verdicts` is
    the matcher's reason mask -> (verdict, reasons) cache, `verdict_of(mask)` fills it;
    `event` makes a VerdictEvent,
    `replayed_event(key, mask)` the order's last one with another reason mask; `emitted` names
    the counter of each verdict; `fraction_text(frac, scale)` gives the decimals of a money
    amount (see matchcore/money.py) and `scale` is the money scale. The slots are compiled
    ones (src_ext/slots.pyx), read and written in C; `entry_type` is the type of the documents
    (`_Entry`), whose fields the glue reads in place (see `Field`; None: through getattr).
    """

    cdef dict slots, buyer_members, verdicts
    cdef dict payments, waybills, inventories
    cdef object linked_type, settle, place_of, replay, verdict_of, event
    cdef object place_at, place_dates  # `place_args` (`place_dates` None: none)
    cdef Py_ssize_t time_at  # `place_at` (when `place_dates` is not None)
    cdef object replayed_event
    cdef dict emitted
    cdef object fraction_text
    cdef list fractions
    cdef int64_t scale
    cdef int decimal_places  # of a scale of a power of ten (else -1: see `put_places`)
    cdef int place_bits
    # A spent this large would overflow the engine's int64 (matcher.py `_INT64_END`, given),
    # and the least it holds (made once: Cython would negate the other on every use).
    cdef object int64_end, int64_min
    cdef Field entry_rows, entry_link
    cdef Field linked_order, linked_payments, linked_waybills, linked_inventory
    cdef Field event_id, event_version, event_verdict, event_mask
    # Where `new_event` puts each field of an event it makes in place (`events_in_place`).
    cdef Py_ssize_t event_offsets[EVENT_FIELD_COUNT]
    cdef bint events_in_place
    # Scratch arrays of one walk (see `reserve`): its orders' keys and slots (2 references an
    # order, `walked` orders: see `sorted_walk`), their positions in walk order, which of them
    # changed, and their places.
    cdef PyObject** held
    cdef Py_ssize_t walked
    cdef Py_ssize_t* order
    cdef char* fresh
    cdef Place* places
    cdef Py_ssize_t capacity

    def __init__(
        self, dict docs, dict slots, dict buyer_members, linked_type, settle, place_of, replay,
        int place_bits,
        dict verdicts, verdict_of, event, replayed_event, dict emitted, fraction_text,
        int64_t scale, *, int64_end, entry_type=None, tuple place_args=(None, None),
    ):
        if place_bits != 64:
            raise ValueError("a compiled slot keeps a walk place as its year above 64 bits")
        self.payments, self.waybills = docs["payment"], docs["waybill"]
        self.inventories = docs["inventory"]
        self.slots, self.buyer_members = slots, buyer_members
        self.linked_type, self.settle = linked_type, settle
        self.place_of, self.replay = place_of, replay
        self.place_at, self.place_dates = place_args
        self.time_at = place_args[0] if self.place_dates is not None else -1
        self.place_bits = place_bits
        self.int64_end, self.int64_min = int64_end, -int64_end
        self.verdicts, self.verdict_of, self.event = verdicts, verdict_of, event
        self.replayed_event, self.emitted = replayed_event, emitted
        self.fraction_text, self.scale = fraction_text, scale
        self.decimal_places = len(str(scale)) - 1 if str(scale).rstrip("0") == "1" else -1
        # the decimals of each fraction, made on first use (where not written in C)
        self.fractions = [None] * scale if self.decimal_places < 0 else None
        self.entry_rows, self.entry_link = Field(entry_type, "rows"), Field(entry_type, "link")
        # (A test makes the glue with functions, not types: their fields go through getattr.)
        linked_kind = linked_type if isinstance(linked_type, type) else None
        self.linked_order = Field(linked_kind, "order")
        self.linked_payments = Field(linked_kind, "payments")
        self.linked_waybills = Field(linked_kind, "waybills")
        self.linked_inventory = Field(linked_kind, "inventory")
        event_kind = event if isinstance(event, type) else None
        self.event_id = Field(event_kind, "verdict_id")
        self.event_version = Field(event_kind, "version")
        self.event_verdict = Field(event_kind, "verdict")
        self.event_mask = Field(event_kind, "reason_mask")
        self.events_in_place = event_layout(event, self.event_offsets)

    def __dealloc__(self):
        self.release()
        PyMem_Free(self.held)
        PyMem_Free(self.order)
        PyMem_Free(self.fresh)
        PyMem_Free(self.places)

    # --- decisions ----------------------------------------------------------------------------

    def decide_all(
        self, dict keys, dict linked, dict changed, bint waiting_count, bint inventory_rules
    ):
        """`StreamMatcher._decide_all`: decide the touched orders (`keys`, in any order),
        putting the documents of those that go to the engine in `linked` and each buyer's
        orders whose walks change in `changed`; settle the others that need it, in key
        order."""
        cdef list orders_of
        cdef dict settles = {}
        cdef Slot slot
        cdef Py_hash_t key_hash
        for key in keys:
            # An order key is looked up in up to four dicts here: hashed once (a tuple keeps no
            # hash, ~100 instructions a time).
            key_hash = hash(key)
            slot = self.slot_of(key, key_hash)
            documents = self.decide(key, key_hash, slot, inventory_rules, settles)
            if documents is not None:
                mc_dict_set(linked, key, documents, key_hash)
            buyer = slot.buyer
            if buyer is not None and (documents is not None or waiting_count):
                orders_of = changed.get(buyer)
                if orders_of is None:
                    changed[buyer] = [key]
                else:
                    orders_of.append(key)
        if settles:
            for key in sorted(settles):
                self.settle(key, settles[key])

    cdef Slot slot_of(self, key, Py_hash_t key_hash):
        """`self.slots[key]` (`key_hash`: its hash)."""
        slot = mc_dict_get(self.slots, key, key_hash)
        if slot is None:
            raise KeyError(key)
        return slot

    cdef object decide(
        self, key, Py_hash_t key_hash, Slot slot, bint inventory_rules, dict settles
    ):
        """`StreamMatcher._decide_without_engine` of one touched order (its `slot`)."""
        order = live_order(slot)
        slot.buyer = slot.order_link if order is not None else None
        cdef bint evaluated = slot.flags & EVALUATED
        if order is None:
            if evaluated or slot.flags & EXPIRED:
                settles[key] = False
            return None
        # What tells whether the order may be complete is what its documents are made of.
        paying = slot.payments
        if evaluated or paying is not None:
            carrying = slot.waybills
            if evaluated or inventory_rules or carrying is not None:
                documents = self.linked_of(
                    key, key_hash, order, paying, carrying, inventory_rules
                )
                if evaluated or not self.lacks(documents, inventory_rules):
                    return documents
        if slot.flags & EXPIRED:
            settles[key] = True
        return None

    cdef object live(self, entry):
        """matcher.py `_alive`: the entry when it holds a live document."""
        return entry if entry is not None and self.entry_rows.get(entry) is not None else None

    cdef bint lacks(self, documents, bint inventory_rules) except -1:
        """True when `_Linked.missing` of these documents is not empty."""
        return (
            self.linked_order.get(documents) is None
            or not self.linked_payments.get(documents)
            or not self.linked_waybills.get(documents)
            or (inventory_rules and self.linked_inventory.get(documents) is None)
        )

    def linked(self, key, bint inventory_rules):
        """`StreamMatcher._linked`: the order's live documents."""
        return self.look_up(key, hash(key), inventory_rules)

    def linked_all(self, list keys, dict known, bint inventory_rules):
        """The documents of these orders as `StreamMatcher._run_engine` has them: those in
        `known` (looked up already this flush), the others' looked up (`linked`)."""
        cdef dict linked = {}
        cdef Py_hash_t key_hash
        for key in keys:
            key_hash = hash(key)
            documents = mc_dict_get(known, key, key_hash)  # (documents are never None)
            if documents is None:
                documents = self.look_up(key, key_hash, inventory_rules)
            mc_dict_set(linked, key, documents, key_hash)
        return linked

    cdef object look_up(self, key, Py_hash_t key_hash, bint inventory_rules):
        """`linked` (`key_hash`: the key's hash)."""
        cdef Slot slot = self.slot_of(key, key_hash)
        return self.linked_of(
            key,
            key_hash,
            live_order(slot),
            slot.payments,
            slot.waybills,
            inventory_rules,
        )

    cdef object linked_of(
        self, key, Py_hash_t key_hash, order, paying, carrying, bint inventory_rules
    ):
        """`linked` of an order whose live `order` (its slot) and slot's links (`paying`,
        `carrying`) were looked up already."""
        inventory = (
            self.live(mc_dict_get(self.inventories, key, key_hash)) if inventory_rules else None
        )
        waybills = sorted_members(carrying)
        if inventory is not None:
            loose_key = self.entry_link.get(inventory)
            loose = self.live(self.waybills.get(loose_key))
            if loose is not None and self.entry_link.get(loose) is None:
                waybills = [*waybills, loose_key]
        return self.linked_type(order, sorted_members(paying), waybills, inventory)

    # --- micro-batches ------------------------------------------------------------------------

    def gather(self, dict linked):
        """`StreamMatcher._gathered`: the packed rows of these orders' documents, with keys
        and links."""
        # Each document is held once, in the order of its first holder, with no dict between
        # but for the few that several orders can hold: a payment or waybill that names an
        # order is held by that one alone (its slot holds the document's key), a
        # waybill that names none (linked through inventories) by any. An inventory's key is
        # its order's.
        cdef tuple orders = ([], [], []), inventories = ([], [], [])
        cdef tuple payments = ([], [], []), waybills = ([], [], [])
        cdef dict paid = {}, carried = {}  # (see `hold_once`)
        cdef Slot order
        for key, documents in linked.items():
            order = self.linked_order.get(documents)
            if order is not None:
                hold(key, order.order_rows, order.order_link, orders)
            for pay_key in self.linked_payments.get(documents):
                self.hold_once(key, pay_key, self.payments[pay_key], payments, paid)
            for waybill_key in self.linked_waybills.get(documents):
                self.hold_once(key, waybill_key, self.waybills[waybill_key], waybills, carried)
            inventory = self.linked_inventory.get(documents)
            if inventory is not None:
                rows = self.entry_rows.get(inventory)
                hold(key, rows, self.entry_link.get(inventory), inventories)
        return orders, payments, waybills, inventories

    cdef int hold_once(self, order_key, key, entry, tuple held, dict shared) except -1:
        """`hold` a payment or waybill of the order `order_key` unless another order held it
        (see `gather`; `shared`: the keys of those of its kind held that name another or no
        order)."""
        link = self.entry_link.get(entry)
        if not (link is order_key or link == order_key):
            if key in shared:
                return 0
            shared[key] = None
        return hold(key, self.entry_rows.get(entry), link, held)

    def ledger_columns(self, Walks walks not None):
        """matcher.py `_ledger_columns`: the quota ledger's columns (buyers, years, spents) of
        the buyer-years of `walks` (see `walks`) whose walks do not start from 0, in order of
        their first rows."""
        cdef list buyers = [], years = [], spents = []
        for group, spent in zip(walks.groups, walks.starts):
            if spent:  # (most walks start from 0: no ledger row)
                buyers.append((<tuple>group)[0])
                years.append((<tuple>group)[1])
                spents.append(spent)
        return buyers, years, spents

    def sorted_keys(self, set keys):
        """`sorted(keys)` of a flush's order keys: tuples of one-byte texts (the usual keys)
        sorted in C by their first bytes (see `SortedKey`), others by `sorted`."""
        cdef Py_ssize_t count = len(keys), at = 0
        cdef SortedKey* done
        cdef SortedKey* items = <SortedKey*>PyMem_Malloc(2 * max(count, 1) * sizeof(SortedKey))
        if items == NULL:
            raise MemoryError()
        try:
            for key in keys:  # (borrowed: nothing below runs Python code)
                if not (byte_texts(<PyObject*>key) and key_prefix(<PyObject*>key, &items[at])):
                    return sorted(keys)
                at += 1
            done = merge_sort(items, items + count, count)  # (unique keys: not stable)
            ordered = PyList_New(count)
            for at in range(count):
                Py_INCREF(<object>done[at].key)
                PyList_SET_ITEM(ordered, at, <object>done[at].key)
            return ordered
        finally:
            PyMem_Free(items)

    def walks(
        self, list keys, list buyers, list years, list times, dict starts, dict ledger
    ):
        """matcher.py `_walks` of the orders table's columns, in the glue's own form (a
        `Walks`): each row's walk (its buyer-year) by number, each walk's spent to start from
        (its `starts`, else the quota `ledger`'s `used`, else 0) and the rows' `times`. A row's
        place in its walk is its app time, then its key (within a walk, of one year, that
        sorts as `_walk_place` does: see `remember_walks`): no big integer and no tuple of a
        place a row, made and freed each micro-batch."""
        cdef Py_ssize_t row, count = len(keys)
        if len(buyers) != count or len(years) != count or len(times) != count:
            raise ValueError("the orders table does not have a row per order key")
        for row in range(count):
            year, time = years[row], times[row]
            if not (isinstance(year, int) and isinstance(time, int)):
                self.walk_place(year, time)  # (a null raises here, as in `_walk_place`)
        return Walks(buyers, years, times, starts, ledger)

    cdef bint place(self, key, Slot slot) except -1:
        """`StreamMatcher._place`: read the order's walk place from its packed row and keep it
        in its `slot`; False when the order is not live and convertible."""
        rows = slot.order_rows
        if not rows:
            return False
        cdef int64_t time, year
        if self.place_dates is None:
            place = self.place_of(rows)
        elif app_time_of(rows, self.time_at, &time, &year):
            set_time_place(slot, <int32_t>year, time)  # the usual time, its year made in C
            return True
        else:
            place = self.place_of(rows, self.place_at, self.place_dates)
        if not set_place(slot, place):  # (a year from `china_dates` is within 1..9999)
            raise OverflowError(f"the walk place of order {key} is past a slot's 96 bits")
        return True

    cdef inline object walk_place(self, year, app_time):
        """matcher.py `_walk_place`: an order's app year and time as one integer."""
        return (year << self.place_bits) + app_time + self.int64_end

    # --- walks --------------------------------------------------------------------------------

    cdef Py_ssize_t sorted_walk(self, buyer) except -1:
        """The buyer's walked orders (its live, convertible orders) in walk order, by place then
        key: holds each one's key and slot in `self.held` (see `key_at`, `slot_at`; until
        `release`), puts its place in `self.places` and their positions in walk order in
        `self.order`; returns how many. In C arrays: no list of them.

        Sorted in C by insertion, comparing places as a tuple (place, key) compares (keys only
        where places tie): a walk is mostly a few orders, for which making and comparing
        tuples costs more than the sort. Many orders are sorted as tuples (no quadratic
        insertion)."""
        cdef Py_ssize_t count = 0, position, at
        cdef Slot slot
        self.release()  # (none held: each walk releases its own)
        orders = members(self.buyer_members.get(buyer))
        self.reserve(len(orders))
        for key in orders:
            slot = self.slots[key]
            if not slot.flags & PLACE_KNOWN and not self.place(key, slot):
                continue
            Py_INCREF(key)
            Py_INCREF(slot)
            self.held[2 * count], self.held[2 * count + 1] = <PyObject*>key, <PyObject*>slot
            self.places[count].high, self.places[count].low = slot.place_high, slot.place_low
            count += 1
            self.walked = count
        if count > INSERTION_MAX:
            pairs = sorted([(self.places[position].high, self.places[position].low,
                             self.key_at(position), position) for position in range(count)])
            for position in range(count):
                self.order[position] = pairs[position][3]
            return count
        for position in range(count):
            at = position
            while at and not walks_before(self.held, self.places, self.order[at - 1], position):
                self.order[at] = self.order[at - 1]
                at -= 1
            self.order[at] = position
        return count

    cdef inline object key_at(self, Py_ssize_t member):
        """The key of order `member` of the walk held (see `sorted_walk`)."""
        return <object>self.held[2 * member]

    cdef inline Slot slot_at(self, Py_ssize_t member):
        """The slot of order `member` of the walk held."""
        return <Slot>self.held[2 * member + 1]

    cdef void release(self) noexcept:
        """Let go of the keys and slots of the walk held."""
        cdef Py_ssize_t at
        for at in range(2 * self.walked):
            Py_XDECREF(self.held[at])
        self.walked = 0

    cdef int reserve(self, Py_ssize_t count) except -1:
        """Room for `count` orders in the scratch arrays of `sorted_walk` and `walked_again`
        (kept between calls: the largest walk's size, not state of any buyer; nothing a walk
        calls back into walks again)."""
        if count <= self.capacity:
            return 0
        count = max(count, 2 * self.capacity, 16)
        held = <PyObject**>PyMem_Realloc(self.held, 2 * count * sizeof(PyObject*))
        if held == NULL:
            raise MemoryError()
        self.held = held
        order = <Py_ssize_t*>PyMem_Realloc(self.order, count * sizeof(Py_ssize_t))
        if order == NULL:
            raise MemoryError()
        self.order = order
        fresh = <char*>PyMem_Realloc(self.fresh, count)
        if fresh == NULL:
            raise MemoryError()
        self.fresh = fresh
        places = <Place*>PyMem_Realloc(self.places, count * sizeof(Place))
        if places == NULL:
            raise MemoryError()
        self.places, self.capacity = places, count
        return 0

    cdef Py_ssize_t year_end(self, Py_ssize_t start, Py_ssize_t count, int32_t year) noexcept:
        """Where the walk of `year` (the year of the order at `start` in walk order) ends."""
        if self.places[self.order[count - 1]].high <= year:
            return count  # (the usual walk: one year)
        while start < count and self.places[self.order[start]].high <= year:
            start += 1
        return start

    cdef list walk_keys(self, Py_ssize_t start, Py_ssize_t end):
        """The keys of the orders from `start` to `end` in walk order."""
        cdef list keys = PyList_New(end - start)
        cdef Py_ssize_t position
        for position in range(start, end):
            key = self.key_at(self.order[position])
            Py_INCREF(key)
            PyList_SET_ITEM(keys, position - start, key)
        return keys

    cpdef dict walk_years(self, buyer):
        """`StreamMatcher._walk_years`: the buyer's walked orders by year, in walk order."""
        cdef Py_ssize_t start = 0, end, count
        cdef dict years = {}
        cdef int32_t year
        try:
            count = self.sorted_walk(buyer)
            while start < count:
                year = self.places[self.order[start]].high
                end = self.year_end(start, count, year)
                years[year] = self.walk_keys(start, end)
                start = end
        finally:
            self.release()
        return years

    def walked_again_all(
        self, dict changed, set walked_whole, dict starts, list replays, set again,
        bint inventory_rules,
    ):
        """`walked_again` of each buyer's `changed` orders (buyer -> keys), but for the buyers
        in `walked_whole`, in one call."""
        for buyer, keys in changed.items():
            if buyer not in walked_whole:
                self.walk_again(buyer, keys, starts, replays, again, inventory_rules)

    def walked_again(
        self, buyer, list changed, dict starts, list replays, set again, bint inventory_rules
    ):
        """`StreamMatcher._walked_again`: put in `again` the buyer's orders that go to the
        engine when the `changed` ones are evaluated (the spent walks start from put in
        `starts`, the walks replayed after the engine in `replays`). The `changed` keys must
        be in `again` already (`_flush` put them there, as `linked`): they are not added."""
        self.walk_again(buyer, changed, starts, replays, again, inventory_rules)

    cdef int walk_again(
        self, buyer, list changed, dict starts, list replays, set again, bint inventory_rules
    ) except -1:
        """`walked_again`."""
        cdef Py_ssize_t count
        try:
            count = self.sorted_walk(buyer)
            self.plan_again(buyer, count, changed, starts, replays, again, inventory_rules)
        finally:
            self.release()
        return 0

    cdef int plan_again(
        self, buyer, Py_ssize_t count, list changed, dict starts, list replays, set again,
        bint inventory_rules,
    ) except -1:
        """`walked_again` of the buyer's walk held (`count` orders, see `sorted_walk`)."""
        cdef Py_ssize_t start = 0, end, at, last, position
        cdef int32_t year
        if not count:
            return 0
        self.mark_changed(count, changed)
        while start < count:
            year = self.places[self.order[start]].high
            end = self.year_end(start, count, year)
            at = last = -1
            for position in range(start, end):
                if self.fresh[self.order[position]]:
                    if at < 0:
                        at = position
                    last = position
            if at < 0:
                start = end
                continue
            if at > start:
                spent = spent_after(self.slot_at(self.order[at - 1]))
                if spent is None:
                    self.add_keys(start, end, again)
                    start = end
                    continue
                starts[(buyer, year)] = spent
            if last + 1 < end and self.all_replayable(last + 1, end, inventory_rules):
                self.add_keys(at, last + 1, again)
                replays.append(replay_of(
                    self.replay,
                    self.key_at(self.order[last]),
                    self.walk_keys(last + 1, end),
                    self.walk_keys(start, end),
                ))
            else:
                self.add_keys(at, end, again)
            start = end
        return 0

    cdef int mark_changed(self, Py_ssize_t count, list changed) except -1:
        """`self.fresh[i]`: whether order i of the walk held is one of the `changed` ones. A
        changed key is mostly the very tuple the buyer's index holds: found by identity first,
        by equality only when some is not (a set for many)."""
        cdef Py_ssize_t member, found = 0
        cdef PyObject* key
        memset(self.fresh, 0, count)
        if len(changed) > CHANGED_SCAN_MAX:
            changing = set(changed)
            for member in range(count):
                self.fresh[member] = self.key_at(member) in changing
            return 0
        for wanted in changed:
            for member in range(count):
                if self.held[2 * member] == <PyObject*>wanted:
                    self.fresh[member] = 1
                    found += 1
                    break
        if found == len(changed):
            return 0
        for member in range(count):
            if not self.fresh[member]:
                key = self.held[2 * member]
                for wanted in changed:
                    if PyObject_RichCompareBool(<object>key, wanted, Py_EQ):
                        self.fresh[member] = 1
                        break
        return 0

    cdef int add_keys(self, Py_ssize_t start, Py_ssize_t end, set again) except -1:
        """Put the keys of the orders from `start` to `end` in walk order in `again`, but the
        changed ones (in it already, see `walked_again`: a tuple's hash is not kept, and
        hashing one costs some 100 instructions)."""
        cdef Py_ssize_t position, member
        for position in range(start, end):
            member = self.order[position]
            if not self.fresh[member]:
                again.add(self.key_at(member))
        return 0

    cdef bint all_replayable(
        self, Py_ssize_t start, Py_ssize_t end, bint inventory_rules
    ) except -1:
        """`StreamMatcher._replayable` of every order from `start` to `end` in walk order."""
        cdef Py_ssize_t position, member
        cdef Slot slot
        for position in range(start, end):
            member = self.order[position]
            slot = self.slot_at(member)
            if slot.flags & EVALUATED:
                if not slot.flags & WALK_LIMIT_KNOWN or slot.last is None:
                    return False
                continue
            # A waiting order: out of the walk unless it may be complete and lacks nothing
            # (`_may_be_complete`, then `_missing`).
            paying = slot.payments
            if paying is None:
                continue
            carrying = slot.waybills
            if carrying is None and not inventory_rules:
                continue
            key = self.key_at(member)
            documents = self.linked_of(
                key, hash(key), live_order(slot), paying, carrying, inventory_rules
            )
            if not self.lacks(documents, inventory_rules):
                return False
        return True

    def replay_all(
        self, list replays, dict replayed, list whole, limit, skip, annual, keep
    ):
        """`StreamMatcher._replay_all` of the walks in `replays` (`limit` the annual limit,
        `skip` and `annual` its `_walk_masks`, `keep` the reason mask bits but the annual
        limit's): returns how many orders were replayed."""
        cdef Py_ssize_t done = 0
        cdef dict changes
        cdef Slot start
        cdef int past  # the limit past int64: 1 above, -1 below
        cdef int64_t bound = PyLong_AsLongLongAndOverflow(limit, &past)
        if past > 0:
            bound = INT64_MAX  # no spent goes over it
        for replay in replays:
            after, orders, walk = <tuple>replay
            start = self.slots[after]
            changes = {}
            if not start.flags & SPENT_KNOWN or not self.replay_walk(
                orders, start.spent, changes, bound, past < 0, skip, annual, keep
            ):
                whole += walk  # the engine's walk did not agree: the engine walks it
                continue
            replayed.update(changes)
            done += len(<list>orders)
        return done

    cdef bint replay_walk(
        self, list keys, int64_t spent, dict changes, int64_t limit, bint below, skip, annual,
        keep,
    ) except -1:
        """`StreamMatcher._replay`: walk these orders from `spent`, keeping the spent after
        each in its slot, their changed reason masks put in `changes`; False when a sum would
        overflow the engine's int64 (`limit`: the annual limit; every spent goes over it when
        `below`)."""
        cdef Slot slot
        cdef int64_t after
        for key in keys:
            slot = self.slots[key]
            if slot.flags & EVALUATED:
                was = self.event_mask.get(slot.last)
                mask = was & keep
                if not mask & skip:
                    # (a replayed order's limit is known, see `all_replayable`; were it not,
                    # the engine would walk it)
                    if not slot.flags & WALK_LIMIT_KNOWN or add_overflows(spent, slot.limit, &after):
                        return False
                    if below or after > limit:
                        mask |= annual
                    else:
                        spent = after
                if mask != was:
                    changes[key] = mask
            slot.spent = spent
            slot.flags |= SPENT_KNOWN
        return True

    def remember_walks(
        self, list keys, Walks walks not None, list spent_before, list masks, list values,
        limit, skip,
    ):
        """`StreamMatcher._remember_walks` of an engine run that says the spent before each
        walked order (`spent_before`): `walks` are the rows' walks (`walks`), which say the
        spent each starts from.

        The rows are put in walk order in C: counted into each walk's run in row order (their
        walks numbered already), and only runs of more than one row sorted by place (most
        walks of a micro-batch have one row): no list or tuple a row."""
        cdef Py_ssize_t count = walks.count, walk_count = len(walks.groups)
        for column in (keys, walks.times, spent_before, masks, values):
            if len(column) != count:
                raise ValueError("the engine's results do not have a row per order")
        # `rows` (the rows in walk order), each walk's first place in `rows` (then its end)
        cdef Py_ssize_t* rows = <Py_ssize_t*>PyMem_Malloc(
            (count + walk_count + 1) * sizeof(Py_ssize_t)
        )
        if rows == NULL:
            raise MemoryError()
        cdef Py_ssize_t* bounds = rows + count
        cdef const Py_ssize_t* number_of = walks.numbers
        cdef Py_ssize_t row, number, at
        try:
            memset(bounds, 0, walk_count * sizeof(Py_ssize_t))
            for row in range(count):
                bounds[number_of[row]] += 1
            at = 0
            for number in range(walk_count):
                at += bounds[number]
                bounds[number] = at - bounds[number]  # the run's start
            for row in range(count):
                number = number_of[row]
                rows[bounds[number]] = row
                bounds[number] += 1  # (ends as the run's end)
            at = 0
            for number in range(walk_count):
                sort_run(walks.times, keys, rows + at, bounds[number] - at)
                self.remember_walk(
                    rows + at, bounds[number] - at, walks.starts[number], keys, spent_before,
                    masks, values, limit, skip,
                )
                at = bounds[number]
        finally:
            PyMem_Free(rows)

    cdef int remember_walk(
        self, const Py_ssize_t* rows, Py_ssize_t count, spent, list keys, list spent_before,
        list masks, list values, limit, skip,
    ) except -1:
        """`remember_walks` of one walk's `rows`, in walk order, from the `spent` it starts
        from."""
        cdef Slot slot
        cdef Py_ssize_t position, row
        for position in range(count):
            row = rows[position]
            before, value = spent_before[row], values[row]
            if before is not None:
                after = before + value if value is not None else self.int64_end
                known = before == spent and self.int64_min <= after < self.int64_end
                spent = (after if after <= limit else before) if known else None
            slot = self.slots[keys[row]]
            set_spent_after(slot, spent)
            walked = not masks[row] & skip
            set_walk_limit(slot, value if (before is not None) == walked else None)
        return 0

    # --- events -------------------------------------------------------------------------------

    def emit_all(
        self, matcher, keys, dict linked, list evaluated, list events, dict replayed,
        dict known, dict direct, bint inventory_rules,
    ):
        """`StreamMatcher._emit_all`: emit the events of an evaluation, in `keys` order."""
        cdef dict counters = matcher.counters._values  # both replaced by a restore or a drain
        cdef list out = matcher._events
        cdef Slot slot
        cdef Py_hash_t key_hash
        cdef Emitted counted
        cdef Py_ssize_t at = 0  # the next of `evaluated`
        counted.size = 0
        if len(events) != len(evaluated):
            raise ValueError("the engine's events are not one per evaluated order")
        try:
            for key in keys:
                key_hash = hash(key)  # (looked up in up to four dicts)
                documents = mc_dict_get(linked, key, key_hash)
                slot = self.slot_of(key, key_hash)
                if documents is None:
                    event = self.replayed_event(key, replayed[key])
                    self.emit(key, slot, event, False, &counted, counters, out)
                    continue
                event = None
                if at < len(evaluated) and (evaluated[at] is key or evaluated[at] == key):
                    event = events[at]
                    at += 1
                if not mc_dict_contains(known, key, key_hash) and (
                    self.linked_order.get(documents) is None
                    or not (slot.flags & EVALUATED or not self.lacks(documents, inventory_rules))
                ):
                    continue  # (the touched orders in `known` were found eligible this flush)
                if event is None:  # the order itself is invalid (batch would reject its row)
                    event = self.event("", key[0], key[1], 0, "invalid")
                slot.flags |= EVALUATED
                self.emit(
                    key, slot, event, mc_dict_contains(direct, key, key_hash), &counted,
                    counters, out,
                )
        finally:
            self.count_emitted(&counted, counters)
        if at != len(evaluated):
            raise ValueError("the engine's events are not in key order")

    cdef emit(
        self, key, Slot slot, event, bint always, Emitted* counted, dict counters, list out
    ):
        """`StreamMatcher._emit`: a new version of the order's verdict (`slot` its slot),
        unless it is the last one again (and not `always`); tallied in `counted`."""
        last = slot.last
        if not always and last is not None:
            # With the last id and version, comparing whole events (in C) compares `content()`
            self.event_id.set(event, self.event_id.get(last))
            self.event_version.set(event, self.event_version.get(last))
            if event == last:
                return
        slot.version += 1
        version = slot.version
        self.event_version.set(event, version)
        self.event_id.set(event, verdict_id(key, version))
        slot.last = event
        out.append(event)
        self.tally(counted, self.event_verdict.get(event), counters)

    cdef int tally(self, Emitted* counted, verdict, dict counters) except -1:
        """Count an event of `verdict` in `counted`: its counter is added to once an
        `emit_all` (a lookup and a store in `counters` an event cost some 550
        instructions)."""
        cdef Py_ssize_t at
        for at in range(counted.size):
            if counted.verdicts[at] == <PyObject*>verdict:
                counted.counts[at] += 1
                return 0
        if counted.size == TALLIED_MAX:  # (more texts than it holds: those counted first)
            self.count_emitted(counted, counters)
        Py_INCREF(verdict)
        counted.verdicts[counted.size] = <PyObject*>verdict
        counted.counts[counted.size] = 1
        counted.size += 1
        return 0

    cdef int count_emitted(self, Emitted* counted, dict counters) except -1:
        """Add the events tallied in `counted` to their counters (`_EMITTED`'s names), the
        verdicts in the order they first came (the order `_emit` adds counters in)."""
        cdef Py_ssize_t at
        try:
            for at in range(counted.size):
                verdict = <object>counted.verdicts[at]
                name = self.emitted.get(verdict)
                if name is None:
                    name = f"emitted_{verdict}"
                add_count(counters, name, counted.counts[at])
        finally:
            for at in range(counted.size):
                Py_XDECREF(counted.verdicts[at])
            counted.size = 0
        return 0

    def events_of(
        self, list keys, list masks, list payments, list waybills, list taxes, list limits,
        list pay_ids, list logistics_nos,
    ):
        """`StreamMatcher._events_of`: one verdict event per evaluated order row."""
        cdef Py_ssize_t row, count = len(keys)
        for column in (masks, payments, waybills, taxes, limits):
            if len(column) != count:
                raise ValueError("the engine's results do not have a row per order")
        cdef list events = PyList_New(count)
        cdef tuple key, verdict = None
        last_mask = None
        for row in range(count):
            key, mask = keys[row], masks[row]
            if mask is not last_mask:  # (most rows pass, with one small int for a mask)
                verdict = self.verdicts.get(mask)
                if verdict is None:
                    verdict = self.verdict_of(mask)
                last_mask = mask
            event = self.new_event(
                key,
                verdict,  # the mask's one tuple of codes, shared (see VerdictEvent)
                mask,
                item_at(pay_ids, payments[row]),
                item_at(logistics_nos, waybills[row]),
                self.money(taxes[row]),
                self.money(limits[row]),
            )
            Py_INCREF(event)
            PyList_SET_ITEM(events, row, event)
        return events

    cdef object new_event(
        self, tuple key, tuple verdict, mask, pay_id, logistics_no, tax, limit
    ):
        """`event(...)` of an evaluated order (`events_of`), with its `verdict` and reason
        codes; made in place where it can be (`event_layout`): a call checks and counts its
        twelve arguments, some 200 instructions more."""
        if not self.events_in_place:
            return self.event(
                "", key[0], key[1], 0, verdict[0], verdict[1], mask, (), pay_id,
                logistics_no, tax, limit,
            )
        cdef const Py_ssize_t* at = self.event_offsets  # (in `EVENT_FIELDS` order)
        made = PyType_GenericAlloc(<PyTypeObject*>self.event, 0)
        put_slot(made, at[0], "")
        put_slot(made, at[1], key[0])
        put_slot(made, at[2], key[1])
        put_slot(made, at[3], 0)
        put_slot(made, at[4], verdict[0])
        put_slot(made, at[5], verdict[1])
        put_slot(made, at[6], mask)
        put_slot(made, at[7], ())
        put_slot(made, at[8], pay_id)
        put_slot(made, at[9], logistics_no)
        put_slot(made, at[10], tax)
        put_slot(made, at[11], limit)
        return made

    cdef object money(self, units):
        """matchcore.money.format_money of an engine value (an int64, or None)."""
        if units is None:
            return None
        cdef int64_t value = units  # the engine's values are int64
        cdef uint64_t magnitude = <uint64_t>0 - <uint64_t>value if value < 0 else <uint64_t>value
        cdef uint64_t whole = magnitude // <uint64_t>self.scale
        cdef Py_ssize_t fraction = magnitude % <uint64_t>self.scale
        # The text in C, digits written backwards from the point: a Python f-string of an int
        # costs three times as much.
        cdef char out[POINT + 1 + MAX_DECIMALS]
        cdef Py_ssize_t start = POINT
        out[POINT] = c'.'
        cdef Py_ssize_t size
        if self.decimal_places >= 0:  # (the usual scale)
            size = put_places(out + POINT + 1, fraction, self.decimal_places)
        else:
            size = self.put_decimals(out + POINT + 1, fraction)
        start -= put_digits_before(out + start, whole)
        if value < 0:
            start -= 1
            out[start] = c'-'
        # An ASCII str filled in place: decoding checks every byte again.
        made = PyUnicode_New(POINT + 1 + size - start, 127)
        memcpy(PyUnicode_DATA(made), out + start, POINT + 1 + size - start)
        return made

    cdef Py_ssize_t put_decimals(self, char* out, Py_ssize_t fraction) except -1:
        """Write `fraction_text(fraction, scale)` at `out` (a scale not of a power of ten, see
        `put_places`): the texts of `fraction_text`, each made once; returns its size."""
        cdef Py_ssize_t size
        text = self.fractions[fraction]
        if text is None:
            text = self.fraction_text(fraction, self.scale)
            if not (<str?>text).isascii():  # (the text is made as ASCII below)
                raise ValueError(f"money: decimals {text!r} are not digits")
            self.fractions[fraction] = text
        cdef const char* decimals = PyUnicode_AsUTF8AndSize(text, &size)
        if size > MAX_DECIMALS:
            raise ValueError("money: more decimals than an int64 scale has")
        memcpy(out, decimals, size)
        return size


cdef inline Py_ssize_t put_places(char* out, uint64_t fraction, Py_ssize_t places) noexcept:
    """Write `fraction_text(fraction, 10 ** places)` at `out`, in C: the `places` digits of
    `fraction`, trailing zeros dropped but two decimals kept; returns its size. (The usual
    scale's: no text looked up and copied a value, and no list of a text per fraction.)"""
    cdef Py_ssize_t size = places, at
    for at in range(places - 1, -1, -1):
        out[at] = <char>(c'0' + fraction % 10)
        fraction //= 10
    while size > 2 and out[size - 1] == c'0':
        size -= 1
    while size < 2:
        out[size] = c'0'
        size += 1
    return size


cdef inline Py_ssize_t put_digits_before(char* end, uint64_t number) noexcept nogil:
    """Write the decimal digits of `number` backwards from `end` (they end there); returns
    how many."""
    cdef Py_ssize_t count = 0
    while True:
        count += 1
        end[-count] = <char>(c'0' + number % 10)
        number //= 10
        if number == 0:
            return count


#: A verdict event's fields, in order (VerdictEvent, matchcore/stream/messages.py).
EVENT_FIELDS = (
    "verdict_id", "ebp_code", "order_no", "version", "verdict", "reasons", "reason_mask",
    "missing", "pay_transaction_id", "logistics_no", "computed_tax", "limit_value",
)


cdef inline void put_slot(object made, Py_ssize_t offset, object value) noexcept:
    """Put `value` in the slot at `offset` of `made`, a new object (its slots are empty)."""
    Py_INCREF(value)
    (<PyObject**>(<char*><PyObject*>made + offset))[0] = <PyObject*>value


cdef bint event_layout(kind, Py_ssize_t* offsets) except -1:
    """Whether `FlushGlue.new_event` makes events of `kind` in place: a msgspec Struct type of
    `EVENT_FIELDS`, in order, each in a slot it may write (their offsets put in `offsets`),
    whose objects the collector does not track, allocated as PyType_GenericAlloc allocates
    them (as msgspec does), and with no __post_init__."""
    if not (
        isinstance(kind, type)
        and not PyType_IS_GC(<PyTypeObject*>kind)
        and mc_generic_alloc(<PyTypeObject*>kind)
        and getattr(kind, "__struct_fields__", None) == EVENT_FIELDS
        and not hasattr(kind, "__post_init__")
    ):
        return False
    for at, name in enumerate(EVENT_FIELDS):
        field = Field(kind, name)
        if not field.writable:
            return False
        offsets[at] = field.offset
    return True


@cython.boundscheck(True)  # (a key of another length is read as Python reads it)
cpdef str verdict_id(key, int64_t version):
    """messages.verdict_id: the key's two texts and the version, joined by "/"; made in C for
    ASCII texts (the f-string's join and the version's text cost some 400 instructions)."""
    if not (type(key) is tuple and len(<tuple>key) == 2 and version >= 0):
        return f"{key[0]}/{key[1]}/{version}"
    ebp_code, order_no = (<tuple>key)[0], (<tuple>key)[1]
    if not (
        type(ebp_code) is str and PyUnicode_IS_ASCII(ebp_code)
        and type(order_no) is str and PyUnicode_IS_ASCII(order_no)
    ):
        return f"{ebp_code}/{order_no}/{version}"
    cdef char digits[20]  # the version's, written backwards from the end
    cdef Py_ssize_t first = len(<str>ebp_code), second = len(<str>order_no)
    cdef Py_ssize_t start = 20 - put_digits_before(digits + 20, <uint64_t>version)
    made = PyUnicode_New(first + second + 2 + 20 - start, 127)
    cdef char* out = <char*>PyUnicode_DATA(made)
    memcpy(out, PyUnicode_DATA(ebp_code), first)
    out[first] = c'/'
    memcpy(out + first + 1, PyUnicode_DATA(order_no), second)
    out[first + 1 + second] = c'/'
    memcpy(out + first + second + 2, digits + start, 20 - start)
    return made


def kernel_values(values, int64_t null):
    """matcher.py `_kernel_values` of a kernel output column (a 1-d array): its int64 values
    as Python ints, `null` as None; uint64 ones as ints; others' through `tolist`. A list made
    in C: no NumPy comparison, search and `tolist` a column."""
    cdef Py_buffer view
    cdef Py_ssize_t row
    cdef const char* at
    cdef int64_t value
    cdef char kind = 0  # the struct module's code of a native 8-byte integer, else 0
    cdef bint unsigned
    PyObject_GetBuffer(values, &view, PyBUF_RECORDS_RO)
    try:
        if view.ndim == 1 and view.itemsize == 8 and view.format[0] and not view.format[1]:
            kind = view.format[0]
        if kind not in b"lqLQ":
            return values.tolist()
        unsigned = kind == c"L" or kind == c"Q"
        listed = PyList_New(view.shape[0])
        for row in range(view.shape[0]):
            at = <const char*>view.buf + row * view.strides[0]
            value = (<const int64_t*>at)[0]
            if unsigned:
                item = PyLong_FromUnsignedLongLong((<const uint64_t*>at)[0])
            elif value == null:
                item = None
            else:
                item = PyLong_FromLongLong(value)
            Py_INCREF(item)
            PyList_SET_ITEM(listed, row, item)
        return listed
    finally:
        PyBuffer_Release(&view)


cdef inline object item_at(list items, index):
    """`items[index]` of an engine row's index into `items` (None: None), read in place when
    within the list (else as Python reads it)."""
    if index is None:
        return None
    cdef Py_ssize_t at = index
    return items[at] if 0 <= at < len(items) else items[index]


cdef inline int walks_before(
    PyObject** held, const Place* places, Py_ssize_t first, Py_ssize_t second
) except -1:
    """1 when order `first` of `held` and `places` (see `FlushGlue.sorted_walk`) comes before
    order `second` in walk order: (place, key) compared as a tuple compares them."""
    cdef Place place = places[first], other = places[second]
    if place.high != other.high:
        return place.high < other.high
    if place.low != other.low:
        return place.low < other.low
    return PyObject_RichCompareBool(<object>held[2 * first], <object>held[2 * second], Py_LT)


cdef int sort_run(list times, list keys, Py_ssize_t* rows, Py_ssize_t count) except -1:
    """Sort a walk's `rows` (in row order) by place, as sorting ((time, key), row) tuples
    does: by insertion for a few, else as tuples (no quadratic insertion)."""
    cdef Py_ssize_t position, at, row
    if count > INSERTION_MAX:
        places = sorted([(times[rows[at]], keys[rows[at]], rows[at]) for at in range(count)])
        for at in range(count):
            rows[at] = places[at][2]
        return 0
    for position in range(1, count):
        row, at = rows[position], position
        while at and row_before(times, keys, row, rows[at - 1]):
            rows[at] = rows[at - 1]
            at -= 1
        rows[at] = row
    return 0


cdef inline bint row_before(list times, list keys, Py_ssize_t row, Py_ssize_t other) except -1:
    """Whether `row` comes before `other` in their walk: (time, key) compared as a tuple
    compares them (keys only where times tie)."""
    time, other_time = times[row], times[other]
    if PyObject_RichCompareBool(time, other_time, Py_LT):
        return True
    if PyObject_RichCompareBool(other_time, time, Py_LT):
        return False
    return PyObject_RichCompareBool(keys[row], keys[other], Py_LT)


cdef object replay_of(kind, after, list orders, list walk):
    """`kind(after, orders, walk)` of a NamedTuple type `kind` (`_Replay`), made as
    tuple.__new__ makes an instance of a subtype: its own __new__ is a Python call, and
    tuple.__new__ a method call through a lookup and an argument tuple."""
    if not (
        isinstance(kind, type)
        and PyType_HasFeature(<PyTypeObject*>kind, Py_TPFLAGS_TUPLE_SUBCLASS)
    ):
        raise TypeError(f"{kind!r} is not a tuple type")
    # (A Python-made type's tp_alloc, as tuple.__new__ calls it: tracked by the collector.)
    made = PyType_GenericAlloc(<PyTypeObject*>kind, 3)
    Py_INCREF(after)
    PyTuple_SET_ITEM(made, 0, after)  # (steals the reference)
    Py_INCREF(orders)
    PyTuple_SET_ITEM(made, 1, orders)
    Py_INCREF(walk)
    PyTuple_SET_ITEM(made, 2, walk)
    return made


cdef bint byte_texts(PyObject* key) noexcept:
    """Whether `key` is a tuple of str of one byte a character (which `key_order` orders)."""
    cdef Py_ssize_t at
    cdef PyObject* item
    if not tuple_exact(key):
        return False
    for at in range(tuple_size(key)):
        item = tuple_item(key, at)
        if not (str_exact(item) and str_ready(item) and str_kind(item) == PyUnicode_1BYTE_KIND):
            return False
    return True


cdef int key_order(const void* first, const void* second) noexcept nogil:
    """The order of two `byte_texts` keys, as Python compares them: item by item, a
    text's characters (Latin-1: a byte each) as unsigned bytes, a prefix first. A tuple
    comparison through Python, equality then order of each item, costs some 300
    instructions."""
    cdef PyObject* one = (<PyObject**>first)[0]
    cdef PyObject* other = (<PyObject**>second)[0]
    cdef Py_ssize_t at, size = min(tuple_size(one), tuple_size(other)), length, other_length
    cdef PyObject* text
    cdef PyObject* other_text
    cdef int order
    for at in range(size):
        text, other_text = tuple_item(one, at), tuple_item(other, at)
        if text == other_text:
            continue
        length, other_length = str_length(text), str_length(other_text)
        order = memcmp(str_data(text), str_data(other_text), min(length, other_length))
        if order:
            return order
        if length != other_length:
            return -1 if length < other_length else 1
    return (tuple_size(one) > tuple_size(other)) - (tuple_size(one) < tuple_size(other))


cdef bint key_prefix(PyObject* key, SortedKey* item) noexcept:
    """Put the `byte_texts` key and its first bytes in `item`: its texts one after another,
    each ended by a 0 byte, cut (or padded with 0) to the prefix's size, read big-endian.
    They order as the key orders, where they differ (a 0 byte ends a text, and sorts before
    any character); False when a text has a 0 byte within them (the key is then not
    told apart by them)."""
    cdef unsigned char first[PREFIX_WORDS * 8]
    cdef Py_ssize_t at, size = PREFIX_WORDS * 8, filled = 0, length
    cdef PyObject* text
    memset(first, 0, size)
    for at in range(tuple_size(key)):
        if filled >= size:
            break
        text = tuple_item(key, at)
        length = min(str_length(text), size - filled)
        if memchr(str_data(text), 0, length) != NULL:
            return False
        memcpy(first + filled, str_data(text), length)
        filled += length + 1  # (and the 0 that ends it)
    for at in range(PREFIX_WORDS):
        item.prefix[at] = big_endian_word(first + 8 * at)
    item.key = key
    return True


cdef inline uint64_t big_endian_word(const unsigned char* at) noexcept nogil:
    """The 8 bytes at `at` as a big-endian integer."""
    cdef uint64_t word
    memcpy(&word, at, 8)
    return bswap64(word)


cdef inline bint key_before(const SortedKey* one, const SortedKey* other) noexcept nogil:
    """Whether key `one` sorts before `other` (see `SortedKey`)."""
    cdef Py_ssize_t at
    for at in range(PREFIX_WORDS):
        if one.prefix[at] != other.prefix[at]:
            return one.prefix[at] < other.prefix[at]
    return key_order(&one.key, &other.key) < 0


cdef SortedKey* merge_sort(SortedKey* items, SortedKey* spare, Py_ssize_t count) noexcept nogil:
    """Sort `count` keys (`spare`: room for as many): runs sorted by insertion in place, then
    merged pairwise from one array to the other (the order `key_before` tells, inlined: no
    call a compare). Returns the array that holds them sorted."""
    cdef Py_ssize_t start, at, width, middle, end, left, right, out
    cdef SortedKey moving
    for at in range(1, count):
        start = at - at % SORTED_RUN  # (the run's first)
        moving = items[at]
        middle = at
        while middle > start and key_before(&moving, &items[middle - 1]):
            items[middle] = items[middle - 1]
            middle -= 1
        items[middle] = moving
    width = SORTED_RUN
    while width < count:
        start = 0
        while start < count:
            middle, end = min(start + width, count), min(start + 2 * width, count)
            left, right, out = start, middle, start
            while left < middle and right < end:
                if key_before(&items[right], &items[left]):
                    spare[out] = items[right]
                    right += 1
                else:
                    spare[out] = items[left]
                    left += 1
                out += 1
            memcpy(&spare[out], &items[left], (middle - left) * sizeof(SortedKey))
            out += middle - left
            memcpy(&spare[out], &items[right], (end - right) * sizeof(SortedKey))
            start = end
        items, spare = spare, items
        width *= 2
    return items


cdef inline object members(found):
    """`_Index.members` of what the index holds for a key."""
    if found is None:
        return ()
    if type(found) is tuple and type((<tuple>found)[0]) is not tuple:
        return (found,)  # a single member (a key: a tuple of str) is held as it is
    return found  # a tuple or set of members


cdef inline object sorted_members(found):
    """matcher.py `_sorted` of `_Index.members`."""
    found = members(found)
    return found if len(found) < 2 else sorted(found)

