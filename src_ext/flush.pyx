# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The stream matcher's per-order flush glue in C: deciding the touched orders, looking up
their documents, planning a buyer's annual-limit walks, remembering the engine's walks and
making the verdict events of a micro-batch, each in one call instead of a dozen Python calls an
order.

matchcore/stream/matcher.py keeps the pure-Python path, the reference, for when this is not
built (`StreamMatcher._decide_all`, `_linked`, `_walk_years`, `_walked_again`,
`_remember_walks`, `_events_of`); tests/stream/test_stream_flush.py runs both side by side on
generated streams.
"""

cimport cython
from cpython.object cimport PyObject, PyTypeObject, Py_TYPE
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy

from types import MemberDescriptorType


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object text, Py_ssize_t* size) except NULL
    bint PyType_IS_GC(PyTypeObject* kind)
    ctypedef struct PyMemberDef:
        int type
        Py_ssize_t offset
        int flags
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member


cdef extern from "structmember.h":
    enum:
        T_OBJECT_EX  # a member holding an object (AttributeError when unset)
        READONLY

#: A spent this large would overflow the engine's int64 (matcher.py: `_INT64_END`), and the
#: least it holds (made once: Cython would negate the other on every use).
cdef object INT64_END = 2**63
cdef object INT64_MIN = -(2**63)


cdef enum:
    # Where a money text's point goes in `FlushGlue.money`'s buffer (a sign and 20 digits fit
    # before it), and the most decimals after it (an int64 scale has 18 at most).
    POINT = 24
    MAX_DECIMALS = 20


@cython.final
cdef class Field:
    """One field of a msgspec Struct type, read and written in place: a Struct holds each field
    in a slot of its instances, at the offset its member descriptor knows (a generic attribute
    access, a type lookup and a descriptor call, costs some twenty times as much). Objects of
    another type, and writes to a type the garbage collector tracks (whose Structs track their
    containers on writes), go through getattr and setattr."""

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
        descriptor = getattr(kind, name)
        if type(descriptor) is not MemberDescriptorType:
            raise TypeError(f"{kind.__name__}.{name} is not a field held in a slot")
        member = (<PyMemberDescrObject*>descriptor).d_member
        if member.type != T_OBJECT_EX:
            raise TypeError(f"{kind.__name__}.{name} is not a field holding an object")
        self.kind, self.kind_ref = <PyTypeObject*>kind, kind
        self.offset = member.offset
        self.writable = not (member.flags & READONLY or PyType_IS_GC(self.kind))

    cdef inline object get(self, obj):
        """`obj.<name>`."""
        cdef PyObject* value
        if Py_TYPE(obj) == self.kind:
            value = (<PyObject**>(<char*><PyObject*>obj + self.offset))[0]
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


cdef class FlushGlue:
    """The flush steps of one matcher, over its own state (made with it, as a restore makes a
    new matcher state).

    `docs` are the matcher's documents by kind, `slots` its order slots, `buyer_members`,
    `payment_members` and `waybill_members` its link indexes' members (see `_Index`); `linked`
    makes a `_Linked`, `settle(key, live)` does what a touched order that does not go to the
    engine gets (`StreamMatcher._settle`). `place_of(packed)` reads the walk place of a packed
    order (matcher.py `_place_of`), `replayable(key)` tells whether an order's walk
    is known without the engine (called for the orders not evaluated yet: for the others the
    slot tells), `replay` is the `_Replay` type. `verdicts` is the matcher's reason mask ->
    (verdict, reasons) cache, `verdict_of(mask)` fills it; `event` makes a VerdictEvent,
    `replayed_event(key, mask)` the order's last one with another reason mask; `emitted` names
    the counter of each verdict; `fraction_text(frac, scale)` gives the decimals of a money
    amount (see matchcore/money.py) and `scale` is the money scale. `slot_type` and
    `entry_type` are the types of the slots and documents (`_Slot`, `_Entry`), whose fields the
    glue reads in place (see `Field`; None: through getattr).
    """

    cdef dict slots, buyer_members, payment_members, waybill_members, verdicts
    cdef dict orders, payments, waybills, inventories
    cdef object linked_type, settle, place_of, replayable, replay, verdict_of, event
    cdef object replayed_event
    cdef dict emitted
    cdef object fraction_text
    cdef list fractions
    cdef int64_t scale
    cdef int place_bits
    cdef Field slot_place, slot_buyer, slot_evaluated, slot_expired, slot_last, slot_version
    cdef Field entry_rows, entry_link
    cdef Field linked_order, linked_payments, linked_waybills, linked_inventory
    cdef Field event_id, event_version, event_verdict

    def __init__(
        self, dict docs, dict slots, dict buyer_members, dict payment_members,
        dict waybill_members, linked_type, settle, place_of, replayable, replay,
        int place_bits,
        dict verdicts, verdict_of, event, replayed_event, dict emitted, fraction_text,
        int64_t scale, *, slot_type=None, entry_type=None,
    ):
        self.orders, self.payments = docs["order"], docs["payment"]
        self.waybills, self.inventories = docs["waybill"], docs["inventory"]
        self.slots, self.buyer_members = slots, buyer_members
        self.payment_members, self.waybill_members = payment_members, waybill_members
        self.linked_type, self.settle = linked_type, settle
        self.place_of, self.replayable, self.replay = place_of, replayable, replay
        self.place_bits = place_bits
        self.verdicts, self.verdict_of, self.event = verdicts, verdict_of, event
        self.replayed_event, self.emitted = replayed_event, emitted
        self.fraction_text, self.scale = fraction_text, scale
        self.fractions = [None] * scale  # the decimals of each fraction, made on first use
        self.slot_place, self.slot_buyer = Field(slot_type, "place"), Field(slot_type, "buyer")
        self.slot_evaluated = Field(slot_type, "evaluated")
        self.slot_expired = Field(slot_type, "expired")
        self.slot_last, self.slot_version = Field(slot_type, "last"), Field(slot_type, "version")
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

    # --- decisions ----------------------------------------------------------------------------

    def decide_all(
        self, list keys, dict linked, dict changed, bint waiting_count, bint inventory_rules
    ):
        """`StreamMatcher._decide_all`: decide the touched orders (`keys`, sorted), putting the
        documents of those that go to the engine in `linked` and each buyer's orders whose
        walks change in `changed`."""
        cdef list orders_of
        for key in keys:
            slot = self.slots[key]
            documents = self.decide(key, slot, inventory_rules)
            if documents is not None:
                linked[key] = documents
            buyer = self.slot_buyer.get(slot)
            if buyer is not None and (documents is not None or waiting_count):
                orders_of = changed.get(buyer)
                if orders_of is None:
                    changed[buyer] = [key]
                else:
                    orders_of.append(key)

    cdef object decide(self, key, slot, bint inventory_rules):
        """`StreamMatcher._decide_without_engine` of one touched order (its `slot`)."""
        order = self.live(self.orders.get(key))
        self.slot_buyer.set(slot, self.entry_link.get(order) if order is not None else None)
        evaluated = self.slot_evaluated.get(slot)
        if order is not None and (
            evaluated or (key in self.payment_members and (inventory_rules or key in self.waybill_members))
        ):
            documents = self.linked(key, inventory_rules)
            if evaluated or not self.lacks(documents, inventory_rules):
                return documents
        if (order is None and evaluated) or self.slot_expired.get(slot):
            self.settle(key, order is not None)
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

    cpdef object linked(self, key, bint inventory_rules):
        """`StreamMatcher._linked`: the order's live documents."""
        inventory = self.live(self.inventories.get(key)) if inventory_rules else None
        waybills = sorted_members(self.waybill_members.get(key))
        if inventory is not None:
            loose_key = self.entry_link.get(inventory)
            loose = self.live(self.waybills.get(loose_key))
            if loose is not None and self.entry_link.get(loose) is None:
                waybills = [*waybills, loose_key]
        return self.linked_type(
            self.live(self.orders.get(key)),
            sorted_members(self.payment_members.get(key)),
            waybills,
            inventory,
        )

    # --- micro-batches ------------------------------------------------------------------------

    def gather(self, dict linked):
        """`StreamMatcher._gathered`: the packed rows of these orders' documents, with keys
        and links."""
        cdef dict orders = {}, payments = {}, waybills = {}, inventories = {}
        for key, documents in linked.items():
            order = self.linked_order.get(documents)
            if order is not None:
                orders[key] = order
            for pay_key in self.linked_payments.get(documents):
                payments[pay_key] = self.payments[pay_key]
            for waybill_key in self.linked_waybills.get(documents):
                waybills[waybill_key] = self.waybills[waybill_key]
            inventory = self.linked_inventory.get(documents)
            if inventory is not None:
                inventories[key] = inventory  # an inventory's key is its order's
        return (
            self.held(orders), self.held(payments), self.held(waybills), self.held(inventories)
        )

    cdef tuple held(self, dict documents):
        """(packed rows, keys, links) of the documents that have rows (see `gather`)."""
        cdef list rows = [], keys = [], links = []
        for key, entry in documents.items():
            packed = self.entry_rows.get(entry)
            if packed:
                rows.append(packed)
                keys.append(key)
                links.append(self.entry_link.get(entry))
        return rows, keys, links

    def walks(self, list keys, list buyers, list years, list times):
        """matcher.py `_walks` of the orders table's columns: each row's walk and place."""
        cdef Py_ssize_t row, count = len(keys)
        if len(buyers) != count or len(years) != count or len(times) != count:
            raise ValueError("the orders table does not have a row per order key")
        cdef list walks = []
        for row in range(count):
            year = years[row]
            walks.append(((buyers[row], year), (self.walk_place(year, times[row]), keys[row])))
        return walks

    cdef object place(self, key, slot):
        """`StreamMatcher._place`: the order's walk place, read from its packed row and kept in
        its `slot`; None when the order is not live and convertible."""
        entry = self.orders.get(key)
        if entry is None:
            return None
        rows = self.entry_rows.get(entry)
        if not rows:
            return None
        place = self.place_of(rows)
        self.slot_place.set(slot, place)
        return place

    cdef inline object walk_place(self, year, app_time):
        """matcher.py `_walk_place`: an order's app year and time as one integer."""
        return (year << self.place_bits) + app_time + INT64_END

    # --- walks --------------------------------------------------------------------------------

    cpdef dict walk_years(self, buyer):
        """`StreamMatcher._walk_years`: the buyer's walked orders by year, in walk order."""
        cdef list placed = []
        for key in members(self.buyer_members.get(buyer)):
            slot = self.slots[key]
            place = self.slot_place.get(slot)
            if place is None:
                place = self.place(key, slot)
            if place is not None:
                placed.append((place, key))
        placed.sort()
        cdef dict years = {}
        cdef list keys
        for place, key in placed:
            year = place >> self.place_bits
            keys = years.get(year)
            if keys is None:
                years[year] = [key]
            else:
                keys.append(key)
        return years

    def walked_again(self, buyer, list changed, dict starts, list replays):
        """`StreamMatcher._walked_again`: the buyer's orders that go to the engine when the
        `changed` ones are evaluated (the spent walks start from put in `starts`, the walks
        replayed after the engine in `replays`)."""
        cdef set changing = set(changed)
        cdef list again = [], keys
        cdef Py_ssize_t at, end, position, count
        for year, keys in self.walk_years(buyer).items():
            at, end, count = -1, -1, len(keys)
            for position in range(count):
                if keys[position] in changing:
                    if at < 0:
                        at = position
                    end = position + 1
            if at < 0:
                continue
            if at:
                spent = self.slots[keys[at - 1]].spent_after
                if spent is None:
                    again += keys
                    continue
                starts[(buyer, year)] = spent
            if end < count and self.all_replayable(keys, end):
                again += keys[at:end]
                # A NamedTuple's own __new__ is a Python call: made as that makes it.
                replays.append(tuple.__new__(self.replay, (keys[end - 1], keys[end:], keys)))
            else:
                again += keys[at:]
        return again

    cdef bint all_replayable(self, list keys, Py_ssize_t start) except -1:
        """`StreamMatcher._replayable` of every order from `start` on."""
        cdef Py_ssize_t position
        for position in range(start, len(keys)):
            key = keys[position]
            slot = self.slots[key]
            if slot.evaluated:
                if slot.walk_limit is None or slot.last is None:
                    return False
            elif not self.replayable(key):
                return False
        return True

    def remember_walks(
        self, list keys, list walks, list spent_before, list masks, list values, dict starts,
        dict ledger, limit, skip,
    ):
        """`StreamMatcher._remember_walks` of an engine run that says the spent before each
        walked order (`spent_before`): `walks` is each row's walk and place in it, `ledger` the
        quota ledger's `used` by buyer and year (`_ledger_by_group`)."""
        cdef dict groups = {}
        cdef list rows
        cdef Py_ssize_t row
        for row in range(len(walks)):
            group, place = walks[row]
            rows = groups.get(group)
            if rows is None:
                groups[group] = [(place, row)]
            else:
                rows.append((place, row))
        for group, rows in groups.items():
            spent = starts.get(group)
            if spent is None:  # (a start is never None)
                spent = ledger.get(group, 0)
            if len(rows) > 1:
                rows.sort()
            for _, row in rows:
                before, value = spent_before[row], values[row]
                if before is not None:
                    after = before + value if value is not None else INT64_END
                    known = before == spent and INT64_MIN <= after < INT64_END
                    spent = (after if after <= limit else before) if known else None
                slot = self.slots[keys[row]]
                slot.spent_after = spent
                walked = not masks[row] & skip
                slot.walk_limit = value if (before is not None) == walked else None

    # --- events -------------------------------------------------------------------------------

    def emit_all(
        self, matcher, keys, dict linked, dict events, dict replayed, dict known, dict direct,
        bint inventory_rules,
    ):
        """`StreamMatcher._emit_all`: emit the events of an evaluation, in `keys` order."""
        cdef dict counters = matcher.counters._values  # both replaced by a restore or a drain
        cdef list out = matcher._events
        for key in keys:
            documents = linked.get(key)
            slot = self.slots[key]
            if documents is None:
                event = self.replayed_event(key, replayed[key])
                self.emit(key, slot, event, False, counters, out)
                continue
            if key not in known and (
                self.linked_order.get(documents) is None
                or not (self.slot_evaluated.get(slot) or not self.lacks(documents, inventory_rules))
            ):
                continue  # (the touched orders in `known` were found eligible this flush)
            event = events.get(key)
            if event is None:  # the order itself is invalid (batch would reject its row)
                event = self.event("", key[0], key[1], 0, "invalid")
            self.slot_evaluated.set(slot, True)
            self.emit(key, slot, event, key in direct, counters, out)

    cdef emit(self, key, slot, event, bint always, dict counters, list out):
        """`StreamMatcher._emit`: a new version of the order's verdict (`slot` its slot),
        unless it is the last one again (and not `always`)."""
        last = self.slot_last.get(slot)
        if not always and last is not None:
            # With the last id and version, comparing whole events (in C) compares `content()`
            self.event_id.set(event, self.event_id.get(last))
            self.event_version.set(event, self.event_version.get(last))
            if event == last:
                return
        version = self.slot_version.get(slot) + 1
        self.slot_version.set(slot, version)
        self.event_version.set(event, version)
        self.event_id.set(event, f"{key[0]}/{key[1]}/{version}")  # messages.verdict_id
        self.slot_last.set(slot, event)
        out.append(event)
        verdict = self.event_verdict.get(event)
        name = self.emitted.get(verdict)
        if name is None:
            name = f"emitted_{verdict}"
        counters[name] = counters.get(name, 0) + 1

    def events_of(
        self, list keys, list masks, list payments, list waybills, list taxes, list limits,
        list pay_ids, list logistics_nos,
    ):
        """`StreamMatcher._events_of`: one verdict event per evaluated order row."""
        cdef Py_ssize_t row, count = len(keys)
        for column in (masks, payments, waybills, taxes, limits):
            if len(column) != count:
                raise ValueError("the engine's results do not have a row per order")
        cdef dict events = {}
        for row in range(count):
            key, mask = keys[row], masks[row]
            verdict = self.verdicts.get(mask)
            if verdict is None:
                verdict = self.verdict_of(mask)
            payment, waybill = payments[row], waybills[row]
            events[key] = self.event(
                "",
                key[0],
                key[1],
                0,
                verdict[0],
                list(verdict[1]),
                mask,
                [],
                pay_ids[payment] if payment is not None else None,
                logistics_nos[waybill] if waybill is not None else None,
                self.money(taxes[row]),
                self.money(limits[row]),
            )
        return events

    cdef object money(self, units):
        """matchcore.money.format_money of an engine value (an int64, or None)."""
        if units is None:
            return None
        cdef int64_t value = units  # the engine's values are int64
        cdef uint64_t magnitude = <uint64_t>0 - <uint64_t>value if value < 0 else <uint64_t>value
        cdef uint64_t whole = magnitude // <uint64_t>self.scale
        cdef Py_ssize_t fraction = magnitude % <uint64_t>self.scale
        text = self.fractions[fraction]
        if text is None:
            text = self.fractions[fraction] = self.fraction_text(fraction, self.scale)
        cdef Py_ssize_t size
        cdef const char* decimals = PyUnicode_AsUTF8AndSize(text, &size)
        if size > MAX_DECIMALS:
            raise ValueError("money: more decimals than an int64 scale has")
        # The text in C, digits written backwards from the point: a Python f-string of an int
        # costs three times as much.
        cdef char out[POINT + 1 + MAX_DECIMALS]
        cdef Py_ssize_t start = POINT
        out[POINT] = c'.'
        memcpy(out + POINT + 1, decimals, size)
        while True:
            start -= 1
            out[start] = <char>(c'0' + whole % 10)
            whole //= 10
            if whole == 0:
                break
        if value < 0:
            start -= 1
            out[start] = c'-'
        return PyUnicode_DecodeASCII(out + start, POINT + 1 + size - start, NULL)


cdef inline object members(found):
    """`_Index.members` of what the index holds for a key."""
    if found is None:
        return ()
    return (found,) if type(found) is tuple else found  # a single member is held as it is


cdef inline object sorted_members(found):
    """matcher.py `_sorted` of `_Index.members`."""
    found = members(found)
    return found if len(found) < 2 else sorted(found)

