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

from libc.stdint cimport int64_t, uint64_t

#: A spent this large would overflow the engine's int64 (matcher.py: `_INT64_END`), and the
#: least it holds (made once: Cython would negate the other on every use).
cdef object INT64_END = 2**63
cdef object INT64_MIN = -(2**63)


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
    amount (see matchcore/money.py) and `scale` is the money scale.
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

    def __init__(
        self, dict docs, dict slots, dict buyer_members, dict payment_members,
        dict waybill_members, linked_type, settle, place_of, replayable, replay,
        int place_bits,
        dict verdicts, verdict_of, event, replayed_event, dict emitted, fraction_text,
        int64_t scale,
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

    # --- decisions ----------------------------------------------------------------------------

    def decide_all(
        self, list keys, dict linked, dict changed, bint waiting_count, bint inventory_rules
    ):
        """`StreamMatcher._decide_all`: decide the touched orders (`keys`, sorted), putting the
        documents of those that go to the engine in `linked` and each buyer's orders whose
        walks change in `changed`."""
        cdef list orders_of
        for key in keys:
            documents = self.decide(key, inventory_rules)
            if documents is not None:
                linked[key] = documents
            buyer = self.slots[key].buyer
            if buyer is not None and (documents is not None or waiting_count):
                orders_of = changed.get(buyer)
                if orders_of is None:
                    changed[buyer] = [key]
                else:
                    orders_of.append(key)

    cdef object decide(self, key, bint inventory_rules):
        """`StreamMatcher._decide_without_engine` of one touched order."""
        slot = self.slots[key]
        order = live(self.orders.get(key))
        slot.buyer = order.link if order is not None else None
        evaluated = slot.evaluated
        if order is not None and (
            evaluated or (key in self.payment_members and (inventory_rules or key in self.waybill_members))
        ):
            documents = self.linked(key, inventory_rules)
            if evaluated or not self.lacks(documents, inventory_rules):
                return documents
        if (order is None and evaluated) or slot.expired:
            self.settle(key, order is not None)
        return None

    cdef bint lacks(self, documents, bint inventory_rules) except -1:
        """True when `_Linked.missing` of these documents is not empty."""
        return (
            documents.order is None
            or not documents.payments
            or not documents.waybills
            or (inventory_rules and documents.inventory is None)
        )

    cpdef object linked(self, key, bint inventory_rules):
        """`StreamMatcher._linked`: the order's live documents."""
        inventory = live(self.inventories.get(key)) if inventory_rules else None
        waybills = sorted_members(self.waybill_members.get(key))
        if inventory is not None:
            loose_key = inventory.link
            loose = live(self.waybills.get(loose_key))
            if loose is not None and loose.link is None:
                waybills = [*waybills, loose_key]
        return self.linked_type(
            live(self.orders.get(key)),
            sorted_members(self.payment_members.get(key)),
            waybills,
            inventory,
        )

    # --- micro-batches ------------------------------------------------------------------------

    def gather(self, dict linked):
        """`StreamMatcher._gathered`: the packed rows of these orders' documents, with keys."""
        cdef list orders = [], keys = [], inventories = [], inventory_keys = []
        cdef dict payments = {}, waybills = {}
        for key, documents in linked.items():
            order = documents.order
            if order is not None and order.rows:
                orders.append(order.rows)
                keys.append(key)
            for pay_key in documents.payments:
                payments[pay_key] = self.payments[pay_key].rows
            for waybill_key in documents.waybills:
                waybills[waybill_key] = self.waybills[waybill_key].rows
            inventory = documents.inventory
            if inventory is not None and inventory.rows:
                inventories.append(inventory.rows)
                inventory_keys.append(key)  # an inventory's key is its order's
        return (
            (orders, keys),
            held(payments),
            held(waybills),
            (inventories, inventory_keys),
        )

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
        rows = entry.rows
        if not rows:
            return None
        place = slot.place = self.place_of(rows)
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
            place = slot.place
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
            if documents is None:
                self.emit(key, self.replayed_event(key, replayed[key]), False, counters, out)
                continue
            slot = self.slots[key]
            if key not in known and (
                documents.order is None
                or not (slot.evaluated or not self.lacks(documents, inventory_rules))
            ):
                continue  # (the touched orders in `known` were found eligible this flush)
            event = events.get(key)
            if event is None:  # the order itself is invalid (batch would reject its row)
                event = self.event("", key[0], key[1], 0, "invalid")
            slot.evaluated = True
            self.emit(key, event, key in direct, counters, out)

    cdef emit(self, key, event, bint always, dict counters, list out):
        """`StreamMatcher._emit`: a new version of the order's verdict, unless it is the last
        one again (and not `always`)."""
        slot = self.slots[key]
        last = slot.last
        if not always and last is not None:
            # With the last id and version, comparing whole events (in C) compares `content()`
            event.verdict_id, event.version = last.verdict_id, last.version
            if event == last:
                return
        version = slot.version + 1
        slot.version = event.version = version
        event.verdict_id = f"{key[0]}/{key[1]}/{version}"  # messages.verdict_id
        slot.last = event
        out.append(event)
        verdict = event.verdict
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
        return f"-{whole}.{text}" if value < 0 else f"{whole}.{text}"


cdef tuple held(dict documents):
    """(packed rows, keys) of the documents that have rows (see `gather`)."""
    cdef list rows = [], keys = []
    for key, packed in documents.items():
        if packed:
            rows.append(packed)
            keys.append(key)
    return rows, keys


cdef inline object live(entry):
    """matcher.py `_alive`: the entry when it holds a live document."""
    return entry if entry is not None and entry.rows is not None else None


cdef inline object members(found):
    """`_Index.members` of what the index holds for a key."""
    if found is None:
        return ()
    return (found,) if type(found) is tuple else found  # a single member is held as it is


cdef inline object sorted_members(found):
    """matcher.py `_sorted` of `_Index.members`."""
    found = members(found)
    return found if len(found) < 2 else sorted(found)

