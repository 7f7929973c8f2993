"""`StreamMatcher`: continuous clearance over a stream of documents (SPEC §5).

Documents wait per order key until the set is complete, then go through the batch engine in
micro-batches (one implementation of the rules). A changed order can alter the annual-limit
walk of the buyer's later orders of its year, so the walk sees the same orders as batch: those
whose documents did not change keep every result of their last evaluation but the annual bit,
and are walked again in Python (`_replay`) when it is known, else go to the engine too.
Verdicts are versioned per order; deadlines run on an injectable processing-time clock. All
state is plain data, so it snapshots and replays.
"""

from __future__ import annotations

import dataclasses
import gc
import heapq
import math
import sys
import time
import weakref
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import msgspec
import numpy as np
import polars as pl
import pyarrow as pa

from .. import schema
from ..engine.base import KERNEL_COLUMNS, NULL_INT64, CanonicalTables
from ..exceptions import InputError, RuleConfigError, StateError
from ..money import format_money, fraction_text
from ..rules import Rule, RuleSettings
from .canonical import Invalid, RowMaker, china_dates, clean_text, row_values
from .messages import (
    DOC_TYPES,
    BadMessage,
    Document,
    Inventory,
    Item,
    Message,
    Order,
    OrderKey,
    Payment,
    VerdictEvent,
    Waybill,
    canonical_code,
    canonical_id_number,
    compiled_check,
    decode_checked,
    decode_json,
    decode_msgpack,
    direct_fields,
    order_key_of,
    verdict_id,
)
from .stats import Counters

_packed: ModuleType | None
try:
    from .._native import packed as _packed
except ImportError:  # not built: msgspec decodes packed rows and `RowMaker.frame` converts them
    _packed = None
_intake: ModuleType | None
try:
    from .._native import intake as _intake
except ImportError:  # not built: `_DocumentIntake` does the work
    _intake = None
_flush: ModuleType | None
try:
    from .._native import flush as _flush
except ImportError:  # not built: the matcher's own methods plan walks and make events
    _flush = None
_native_slots: ModuleType | None
try:
    from .._native import slots as _native_slots
except ImportError:  # not built: `_SlotStruct` is the order slot
    _native_slots = None
_snapshot: ModuleType | None
try:
    from .._native import snapshot as _snapshot
except ImportError:  # not built: msgspec packs a `_State` made of the state
    _snapshot = None

#: Default completion window (SPEC §5): 24 hours of processing time.
DEFAULT_COMPLETION_WINDOW = 24 * 3600.0
#: Micro-batch flush thresholds: this many orders waiting, or the oldest waiting this long.
DEFAULT_BATCH_SIZE = 4096
DEFAULT_BATCH_INTERVAL = 0.005
#: The largest batch size: what the compiled offer compares the waiting orders with (a C int).
MAX_BATCH_SIZE = 2**31 - 1
#: The longest the interval grows to under load, following the last flush's cost: a slow flush
#: would otherwise let the next batch grow, and so the flush after it. A flood's flush takes
#: about 1.5x the wait it follows (intake is that much cheaper than evaluation), so a wait of
#: 8 ms, its flush and the commit keep a verdict within about 30 ms (15 ms gave p99 of 47-66).
DEFAULT_MAX_BATCH_INTERVAL = 0.008


@dataclass(frozen=True)
class References:
    """The filed records every evaluation reads, normalised once at start."""

    products: pl.DataFrame
    enterprises: pl.DataFrame
    hs_lists: pl.DataFrame | None = None
    quota_ledger: pl.DataFrame | None = None
    rejects: pl.DataFrame | None = None  # reference rows the normaliser refused

    @classmethod
    def from_frames(
        cls,
        products: Any,
        enterprises: Any,
        *,
        hs_lists: Any = None,
        quota_ledger: Any = None,
    ) -> References:
        """Normalise raw reference tables (any source `matchcore.io.read_source` reads).

        Rows the normaliser rejects are left out, as in batch, and kept in `rejects`.
        """
        from ..io import read_source
        from ..normalise import normalise_table

        given = {
            "products": products,
            "enterprises": enterprises,
            "hs_lists": hs_lists,
            "quota_ledger": quota_ledger,
        }
        frames: dict[str, pl.DataFrame | None] = {}
        rejects: list[pl.DataFrame] = []
        for name, source in given.items():
            if source is None:
                frames[name] = None
                continue
            frames[name], refused = normalise_table(read_source(source, name), schema.TABLES[name])
            rejects.append(refused)
        if frames["products"] is None or frames["enterprises"] is None:
            raise InputError("streaming needs the products and enterprises reference tables")
        return cls(**frames, rejects=pl.concat(rejects, how="diagonal_relaxed"))  # type: ignore[arg-type]


class _Entry(msgspec.Struct, gc=False):
    """The newest version of one document, compact: what linking needs and its packed rows.

    `rows` holds the document's canonical row(s) as MessagePack (a fraction of the memory of
    the decoded message, which is not kept); None after a cancel (a tombstone that keeps the
    revision), empty bytes for a live document restored from an old snapshot whose values no
    longer convert (present, but left out of evaluation as batch leaves it out).
    `link` is what the document links by (see `_LINK`): the rows leave out the values it and
    the document's key are made of (see `_ROWS`).

    Not tracked by the garbage collector (`gc=False`: it never refers back to anything that
    could refer to it), so a full collection does not walk every pending document.
    """

    revision: int
    link: Any = None
    rows: bytes | None = None


#: A document version as the matcher keeps it, `_entry(revision, link, rows)`: every `_Entry` is
#: made through this name (the compiled intake too, see `_new_upserts`). The type itself, not a
#: function calling it: a call from C then runs no Python frame.
_entry: Callable[..., _Entry] = _Entry


class _SlotStruct(msgspec.Struct, gc=False):
    """What the matcher remembers per order key between documents (untracked, like `_Entry`):
    the order slot when the extension is not built, and the reference of the compiled one
    (src_ext/slots.pyx `Slot`: the same fields, its ints in C, None when not known)."""

    first_seen: float
    #: The slot's own key, the tuple `_slots` holds it by: the one tuple of the order key that
    #: the order's documents and the link indexes hold too (see `_order_key`), not a copy each.
    key: tuple[str, str]
    version: int = 0
    last: VerdictEvent | None = None
    evaluated: bool = False  # went through the engine at least once (and not cancelled since)
    expired: bool = False  # completion window passed while incomplete
    buyer: str | None = None
    #: What the buyer had spent in the order's year after this order in its last annual-limit
    #: walk (SPEC §3.1), where a later walk may start; None when not known (not kept in
    #: snapshots: after a restore the first walk of each year starts from its first order).
    spent_after: int | None = None
    #: The order's limit value at its last evaluation by the engine, where that evaluation is
    #: known to have walked the order exactly when its reason mask (`last`) fails no other
    #: reject rule; None when not known (not kept in snapshots). With `last.reason_mask` it is
    #: all a walk needs of an order whose documents did not change since (see `_replay`).
    walk_limit: int | None = None
    #: The order's place in its annual-limit walk (see `_place`) while its order document is
    #: unchanged: read once, not on every flush that walks its buyer; None when not read
    #: (again) yet (not kept in snapshots; `_relink_buyer` forgets it when the document changes).
    place: int | None = None
    #: The newest version of the order document, kept here (an `_Entry`'s fields, without an
    #: `_Entry` and a dict entry an order): its revision (None: no version yet), its link (the
    #: buyer's ID number, see `_LINK`; `buyer` is the buyer at the last decision) and its rows
    #: (see `_Entry.rows`: None after a cancel).
    order_revision: int | None = None
    order_link: str | None = None
    order_rows: bytes | None = None
    #: The keys of the live payments and of the live waybills that name this order, held as an
    #: `_Index` holds a key's members (see `_with_member`; None: none): found with the slot,
    #: not in link indexes of their own, a dict entry each (not kept in snapshots: rebuilt
    #: from the documents, as the indexes are).
    payments: Any = None
    waybills: Any = None


#: The order slot type, `_SlotStruct` or when built its compiled twin: every slot is made through
#: this name (the compiled intake makes the compiled one itself, see `_new_upserts`).
if TYPE_CHECKING:
    _Slot = _SlotStruct
else:
    _Slot = _native_slots.Slot if _native_slots is not None else _SlotStruct


class Configuration(msgspec.Struct, frozen=True):
    """The rules a matcher evaluates with: settings and whether inventory rules are on."""

    settings: RuleSettings
    inventory_rules: bool


class FeedResult(msgspec.Struct, frozen=True):
    """What `feed` did with one message: accepted, duplicate, stale or dead (with a reason)."""

    status: str
    reason: str | None = None


#: What `feed` takes as a message's bytes.
_RAW = (bytes, bytearray, memoryview)

ACCEPTED = FeedResult("accepted")
DUPLICATE = FeedResult("duplicate")
STALE = FeedResult("stale")

#: What a micro-batch needs of the engine, per canonical order row: the failed rules, the
#: linked payment and waybill (0-based rows, None when not linked) and two money values.
RESULT_COLUMNS = ("reason_mask", "payment_row", "waybill_row", "computed_tax", "limit_value")
#: What the matcher reads of the engine: the event's columns, and the spent before each order
#: in the annual-limit walk (None when the order is not walked), to start later walks from.
EVALUATED_COLUMNS = (*RESULT_COLUMNS, "annual_spent")
OrderResults = dict[str, list[Any]]
Evaluator = Callable[[CanonicalTables, RuleSettings], OrderResults]


def engine_evaluator(engine: str = "auto") -> Evaluator:
    """The batch engine, reduced to the order results a verdict event carries (exceptions
    and rendered tables would dominate a micro-batch of a few orders)."""
    from ..engine import get_engine

    chosen = get_engine(engine)  # resolved once: the kernel is loaded a single time
    run_raw = getattr(chosen, "run_raw", None)
    if run_raw is not None:
        # Micro-batches are small: a second OpenMP thread costs more in start-up and spinning
        # (much more when the machine is loaded) than it saves.
        chosen.threads = 1  # type: ignore[attr-defined]
        chosen.reuse_references = True  # type: ignore[attr-defined]

        def evaluate_raw(tables: CanonicalTables, settings: RuleSettings) -> OrderResults:
            raw = run_raw(tables, settings)
            return {name: _kernel_values(raw[name]) for name in EVALUATED_COLUMNS}

        return evaluate_raw

    def evaluate(tables: CanonicalTables, settings: RuleSettings) -> OrderResults:
        documents: dict[str, Any] = {
            name: pl.from_arrow(_arrow_table(getattr(tables, name)))
            for name in (*_ROWS, "quota_ledger")
            if isinstance(getattr(tables, name), _BATCH_TABLES)
        }  # the reference engine reads Polars frames (a micro-batch's tables are Arrow)
        output = chosen.run(dataclasses.replace(tables, **documents), settings)
        return {name: output.orders[name].to_list() for name in EVALUATED_COLUMNS}

    return evaluate


def _kernel_values(values: np.ndarray) -> list[Any]:
    """A kernel output column as Python values, its null marker (in int64 columns) as None
    (made in C when built: src_ext/flush.pyx `kernel_values`)."""
    if _flush is not None:
        return _flush.kernel_values(values, NULL_INT64)
    return _listed_values(values)


def _listed_values(values: np.ndarray) -> list[Any]:
    """`_kernel_values` in Python: listed at once, then the few nulls put in (a test per value
    costs more than the list)."""
    listed = values.tolist()
    if values.dtype == np.int64:
        for row in np.flatnonzero(values == NULL_INT64).tolist():
            listed[row] = None
    return listed


@dataclass
class _Batch:
    """The canonical tables of one evaluation, with the rows behind them."""

    tables: CanonicalTables
    keys: list[OrderKey]  # the matcher's key of each canonical order row
    pay_transaction_ids: list[str]  # of each payment row
    logistics_nos: list[str]  # of each waybill row
    #: Each order row's annual-limit walk and place in it (`_walks`: in the compiled glue's own
    #: form when there is one, which its `ledger_columns` and `remember_walks` read).
    walks: Any


#: A buyer and a year: the orders that share one annual-limit walk (SPEC §3.1).
BuyerYear = tuple[str, int]
#: Documents' packed rows, their keys and links, which the rows leave out (see `_gathered`).
_Held = tuple[list[bytes], list[tuple[str, str]], list[Any]]
#: An order's place in its walk: (its `_walk_place`, its key), sorted as the engines sort the
#: walk, by year, app time, ebp_code and order_no (keys are unique in a stream: no row number).
WalkKey = tuple[int, OrderKey]


class _Replay(NamedTuple):
    """Part of a buyer-year's walk the matcher replays once the engine walked the part before
    it (see `_replay`): it starts from the spent the engine's walk left after order `after`.
    When that is not known, the engine walks the whole `walk` (the year's orders) again."""

    after: OrderKey
    orders: list[OrderKey]  # in walk order, none changed since its last evaluation
    walk: list[OrderKey]


class _Linked(msgspec.Struct, gc=False):
    """An order's live documents, looked up once per flush (see `_linked`)."""

    order: _Slot | None  # the order's slot, when its order document is live
    payments: Sequence[tuple[str, str]]  # keys, sorted
    waybills: Sequence[tuple[str, str]]  # keys (see `_linked_waybill_keys`)
    inventory: _Entry | None  # None too when inventory rules are off

    def missing(self, inventory_rules: bool) -> tuple[str, ...]:
        """The documents the order still lacks, in SPEC order."""
        return _MISSING[
            (self.order is None)
            | (not self.payments) << 1
            | (not self.waybills) << 2
            | (inventory_rules and self.inventory is None) << 3
        ]


class StreamMatcher:
    """Matches documents as they arrive; verdicts come out of `drain()` as VerdictEvents.

    `feed(message)` takes a Message or its JSON/MessagePack bytes; `tick(now)` lets processing
    time pass (flushes due micro-batches, expires the completion window); `close()` flushes.
    `clock` gives processing time in seconds (injectable for tests).
    """

    def __init__(
        self,
        references: References,
        settings: RuleSettings | None = None,
        *,
        inventory_rules: bool = False,
        completion_window: float = DEFAULT_COMPLETION_WINDOW,
        batch_size: int = DEFAULT_BATCH_SIZE,
        batch_interval: float = DEFAULT_BATCH_INTERVAL,
        max_batch_interval: float = DEFAULT_MAX_BATCH_INTERVAL,
        engine: str = "auto",
        evaluator: Evaluator | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.references = references
        self.settings = settings if settings is not None else RuleSettings()
        self.inventory_rules = inventory_rules
        self.completion_window = completion_window
        self.batch_size = _checked_batch_size(batch_size)
        self.batch_interval = batch_interval
        self.max_batch_interval = max_batch_interval
        self.clock = clock
        self.counters = Counters()
        self.auto_flush = True
        #: Called with `now` just before every flush (the durable log records flush points).
        self.flush_listener: Callable[[float], None] | None = None
        self._evaluate = evaluator if evaluator is not None else engine_evaluator(engine)
        self._pack = _Packer()
        #: The documents but orders, by kind (an order's is in its slot, see `_SlotStruct`).
        self._docs: dict[str, dict[tuple[str, str], _Entry]] = {
            "payment": {},
            "waybill": {},
            "inventory": {},
        }
        self._slots: dict[OrderKey, _Slot] = {}  # (with the payments and waybills linked)
        #: The orders with a version, in the order their first came: the order a snapshot holds
        #: them in. Untracked (`_untracked` of an empty list: keys refer to nothing).
        self._order_keys: list[OrderKey] = _untracked([])
        self._inventory_orders = _Index()  # (logistics_code, logistics_no) -> order keys
        self._buyer_orders = _Index()  # canonical buyer ID number -> order keys
        self._deadlines = _Deadlines(self._slots, completion_window)
        #: Orders touched since the last flush (a dict as an ordered set: a third of the memory).
        self._dirty: dict[OrderKey, None] = {}
        self._dirty_buyers: set[str] = set()
        self._dirty_since: float | None = None
        self._events: list[VerdictEvent] = []
        self._flush_cost = 0.0  # seconds the last flush took (wall clock)
        self._verdicts: dict[int, tuple[str, tuple[str, ...]]] = {}  # mask -> verdict, codes
        self._ledger: dict[BuyerYear, int] | None = None  # the quota ledger, once read
        self._walk_masks = _walk_bits(self.settings)  # of the settings, like `_verdicts`
        self._verdict_masks = self.settings.verdict_masks()  # (see `_verdict_of`)
        #: `_apply` of the usual message in one compiled call (None: not built).
        self._new_upserts = _new_upserts(self) if _intake is not None else None
        #: The usual JSON message read straight into what `_new_upserts` keeps, by `feed`,
        #: `DurableMatcher.offer` and `offer_many` (None: not built, or switched off: decoded
        #: first).
        self._direct_json = _DIRECT_JSON
        #: The per-order steps of a flush in compiled calls (None: not built, see `_glue_of`).
        self._glue = _glue_of(self) if _flush is not None else None

    # --- intake -------------------------------------------------------------------------------

    def feed(self, message: Message | bytes, *, now: float | None = None) -> FeedResult:
        """Take one message (a Message, JSON bytes, or MessagePack bytes).

        Bytes are decoded strictly; a bad message returns status "dead" with the reason (the
        caller dead-letters it) and changes nothing. Redeliveries and older revisions change
        nothing either.
        """
        if isinstance(message, _RAW):
            raw = bytes(message)
            if self._read(raw):
                return self._take_read(self.clock() if now is None else now)
            try:
                message = decode_bytes(raw)
            except BadMessage as exc:
                self.counters.add("dead_lettered")
                return FeedResult("dead", exc.reason)
        return self.take(message, self.clock() if now is None else now)

    def take(self, message: Message, now: float) -> FeedResult:
        """`feed` of a decoded and checked message arrived at `now`."""
        new_upserts = self._new_upserts  # the usual message (a new upsert) in one call
        result = new_upserts.apply(self, message, now) if new_upserts is not None else None
        if result is None:
            result = self._apply(message, now)
        return self._flushed_when_full(result, now)

    def _read(self, raw: bytes) -> bool:
        """True when the compiled JSON intake read `raw` as the usual new upsert, without
        decoding it (`_take_read` then takes it); False having changed nothing: `raw` is then
        decoded (see `Offers` in src_ext/intake.pyx, the loop of `offer_many`)."""
        direct, upserts = self._direct_json, self._new_upserts
        return (
            direct is not None
            and isinstance(upserts, _intake.NewUpserts)  # type: ignore[union-attr]
            and direct.read(upserts, raw)
        )

    def _take_read(self, now: float) -> FeedResult:
        """`take` of what `_read` read, arrived at `now`."""
        return self._flushed_when_full(self._direct_json.store(self._new_upserts, self, now), now)

    def _flushed_when_full(self, result: FeedResult, now: float) -> FeedResult:
        if self.auto_flush and len(self._dirty) >= self.batch_size:
            self.flush(now)
        return result

    def _apply(self, message: Message, now: float) -> FeedResult:
        """Take one message into the state: the reference of every case (`_new_upserts` does
        the usual one in one compiled call, with the same outcome)."""
        intake = _INTAKES.get(message.__class__) or _intake_of(message.__class__)
        kind = intake.kind
        key = intake.key(message)
        if kind in _KEYED_BY_ORDER:
            key = self._order_key(key)
        entry = self._order_version(key) if kind == "order" else self._docs[kind].get(key)
        if entry is not None and message.revision <= entry.revision:
            same = message.revision == entry.revision
            self.counters.add("duplicates" if same else "stale")
            return DUPLICATE if same else STALE
        if message.op == "cancel":
            new = _entry(message.revision)
        else:
            try:  # converted once, here: a value batch would reject is the sender's to fix
                link, rows = intake.keep(message)
            except Invalid as exc:
                self.counters.add("dead_lettered")
                return FeedResult("dead", f"{kind}: {exc}")
            if kind in _LINKED_TO_ORDER and link is not None:
                link = self._order_key(link)
            new = _entry(message.revision, link, rows)
        if kind == "order":
            self._keep_order(self._slot(key, now), new)
        else:
            self._docs[kind][key] = new
        self.counters.add("accepted")
        for order_key in self._relink(kind, key, _alive(entry), _alive(new), now):
            self._touch(order_key, now)
        return ACCEPTED

    def _relink(
        self,
        kind: str,
        key: tuple[str, str],
        old: _Entry | None,
        new: _Entry | None,
        now: float | None,
    ) -> Collection[OrderKey]:
        """Update the links for one document change (`old`, `new`: the live versions before
        and after; `now`: when a slot it needs is made, see `_slot`); returns the orders it
        affects (an order may come twice)."""
        if kind == "order":
            self._relink_buyer(key, old, new)
            return (key,)
        if kind == "inventory":
            if old is not None:
                self._inventory_orders.discard(old.link, key)
            if new is not None:
                self._inventory_orders.add(new.link, key)
            return (key,)
        if old is None:  # the usual change: a new document
            return self._link_change(kind, key, new, _with_member, now) if new is not None else ()
        unlinked = self._link_change(kind, key, old, _without_member, now)
        if new is None:
            return unlinked
        return [*unlinked, *self._link_change(kind, key, new, _with_member, now)]

    def _link_change(
        self,
        kind: str,
        key: tuple[str, str],
        entry: _Entry,
        change: Callable[[Any, Any], Any],
        now: float | None,
    ) -> Collection[OrderKey]:
        """The orders a payment or waybill `entry` links to, after `change` (`_with_member`
        or `_without_member`) of the members of its kind its order's slot holds (the slot
        made first if none)."""
        link = entry.link
        if link is None:  # a waybill without an order key: linked through inventories
            return self._inventory_orders.members(key)
        if link == ("", ""):  # half an order key links to nothing
            return ()
        slot = self._slot(link, now)
        if kind == "payment":
            slot.payments = change(slot.payments, key)
        else:
            slot.waybills = change(slot.waybills, key)
        return (link,)

    def _relink_buyer(self, key: OrderKey, old: _Entry | None, new: _Entry | None) -> None:
        """An order document changed: its buyers' walks and its place in them change."""
        slot = self._slots.get(key)
        if slot is not None:
            slot.place = None  # read again from the new document (see `_place`)
        old_buyer = old.link if old is not None else None
        if old_buyer is not None:
            self._buyer_orders.discard(old_buyer, key)
            self._dirty_buyers.add(old_buyer)  # its remaining orders walk without this one
        if new is not None and new.link is not None:
            self._buyer_orders.add(new.link, key)

    def _order_version(self, key: OrderKey) -> _Entry | None:
        """The order document's version its slot keeps, as an `_Entry` (None: none)."""
        slot = self._slots.get(key)
        return _order_entry(slot) if slot is not None and slot.order_revision is not None else None

    def _order_versions(self) -> dict[OrderKey, _Entry]:
        """`_order_version` of every order that has one, in the order their first came."""
        return {key: _order_entry(self._slots[key]) for key in self._order_keys}

    def _keep_order(self, slot: _Slot, entry: _Entry) -> None:
        """Keep this version of the order document in its `slot` (src_ext/intake.pyx
        `NewUpserts.keep` keeps a new one the same way)."""
        if slot.order_revision is None:
            self._order_keys.append(slot.key)
        slot.order_revision = entry.revision
        slot.order_link, slot.order_rows = entry.link, entry.rows

    def _order_key(self, key: OrderKey) -> OrderKey:
        """The tuple of this order key the matcher holds already (its slot's), else `key`: a
        document keyed by or linking to an order holds that one, not a copy of its own."""
        slot = self._slots.get(key)
        return slot.key if slot is not None else key

    def _touch(self, key: OrderKey, now: float) -> None:
        self._slot(key, now)
        if not self._dirty:
            self._dirty_since = now
        self._dirty[key] = None

    def _slot(self, key: OrderKey, now: float | None) -> _Slot:
        """The order's slot, made at `now` (None: the clock's time, for a restore of a snapshot
        that lacks it; its deadline queued) when it has none."""
        slot = self._slots.get(key)
        if slot is None:
            first_seen = self.clock() if now is None else now
            slot = self._slots[key] = _Slot(first_seen, key)
            self._deadlines.add(key, first_seen)
        return slot

    # --- time ---------------------------------------------------------------------------------

    def tick(self, now: float | None = None) -> bool:
        """Let processing time pass: flush when a micro-batch or a deadline is due.

        Returns True when it flushed.
        """
        now = self.clock() if now is None else now
        if self.flush_due(now):
            self.flush(now)
            return True
        return False

    def flush_due(self, now: float) -> bool:
        """True when waiting orders are old enough or many enough, or a deadline passed."""
        if self._dirty or self._dirty_buyers:
            since = self._dirty_since if self._dirty_since is not None else now
            # Under load a flush costs more than the interval; waiting at least as long as the
            # last one took keeps the engine's fixed cost per call below half the time, up to
            # a bound that keeps the wait plus the flush within the latency goal.
            grown = min(self._flush_cost, self.max_batch_interval)
            interval = max(self.batch_interval, grown)
            if len(self._dirty) >= self.batch_size or now - since >= interval:
                return True
        due = self._deadlines.next_due()
        return due is not None and due <= now

    def flush(self, now: float | None = None) -> None:
        """Evaluate every waiting order now and expire the deadlines up to `now`."""
        now = self.clock() if now is None else now
        if self.flush_listener is not None:
            self.flush_listener(now)
        with _collection_paused():
            self._flush(now)

    def _flush(self, now: float) -> None:
        direct, self._dirty = self._dirty, {}
        buyers, self._dirty_buyers = self._dirty_buyers, set()
        self._dirty_since = None
        self.counters.add("flushes")
        self._expire(now, direct)
        linked: dict[OrderKey, _Linked] = {}  # the touched orders that go to the engine
        changed: dict[str, list[OrderKey]] = {}  # per buyer, its orders that go to the engine
        # Unless a missing document rejects, an order still waiting for one counts in its
        # buyer's walks: a document for it can change the other orders' verdicts.
        waiting_count = not self._walks_resume()
        if self._glue is not None:
            self._glue.decide_all(direct, linked, changed, waiting_count, self.inventory_rules)
        else:
            self._decide_all(direct, linked, changed, waiting_count)
        if waiting_count:
            buyers.update(changed)
        starts: dict[BuyerYear, int] = {}
        to_evaluate: set[OrderKey] = set(linked)
        replays: list[_Replay] = []  # walks the matcher replays after the engine ran
        replayed: dict[OrderKey, int] = {}  # orders replayed already: their new reason masks
        # A document left or moved: every walk of the buyer again, the orders that did not
        # change replayed (when all their last evaluations are known), unless waiting orders
        # count in walks.
        for buyer in buyers:
            if waiting_count or not self._walked_whole(
                buyer, linked, starts, replays, replayed, to_evaluate
            ):
                to_evaluate.update(self._buyer_orders.members(buyer))
        # The other buyers' walks resume from their first changed orders.
        if self._glue is not None:
            self._glue.walked_again_all(
                changed, buyers, starts, replays, to_evaluate, self.inventory_rules
            )
        else:
            for buyer, keys in changed.items():
                if buyer not in buyers:
                    self._walked_again(buyer, keys, starts, replays, to_evaluate)
        if to_evaluate or replays or replayed:
            started = time.perf_counter()
            # Every key sorted (`linked` is in arrival order: no merge), in C when built.
            if self._glue is not None:
                keys = self._glue.sorted_keys(to_evaluate)
            else:
                keys = sorted(to_evaluate)
            self._evaluate_orders(keys, direct, starts, linked, replays, replayed)
            self._flush_cost = time.perf_counter() - started

    def close(self) -> None:
        """Flush what is waiting (pending orders stay pending)."""
        if self._dirty or self._dirty_buyers:
            self.flush()

    def has_events(self) -> bool:
        """True when there are verdict events to drain."""
        return bool(self._events)

    def drain(self) -> list[VerdictEvent]:
        """The verdict events produced since the last drain, in emission order."""
        events, self._events = self._events, []
        return events

    def _expire(self, now: float, direct: dict[OrderKey, None]) -> None:
        """Emit `incomplete` for orders whose completion window passed (SPEC §5)."""
        for key in self._deadlines.pop_due(now):
            slot = self._slots.get(key)
            if slot is None or slot.evaluated or slot.expired:
                continue
            if slot.last is not None and slot.last.verdict == "cancelled":
                continue  # a withdrawn order is not waiting for anything
            if key in direct:
                slot.expired = True  # decided below, with the documents that just came
                continue
            missing = self._missing(key)
            if not missing:
                continue  # complete: evaluated when it was touched
            slot.expired = True
            self._emit(key, self._incomplete(key, missing), always=True)

    # --- decisions ----------------------------------------------------------------------------

    def _missing(self, key: OrderKey) -> tuple[str, ...]:
        """The documents the order still lacks, in SPEC order."""
        return self._linked(key).missing(self.inventory_rules)

    def _decide_all(
        self,
        keys: dict[OrderKey, None],
        linked: dict[OrderKey, _Linked],
        changed: dict[str, list[OrderKey]],
        waiting_count: bool,
    ) -> None:
        """Decide the touched orders (`keys`, in any order): put the documents of those that go
        to the engine in `linked`, and per buyer in `changed` its orders whose walks change
        (those that go to the engine; all of them when `waiting_count`). The others that need
        it are settled after, in key order (the order of their events): only they are sorted,
        not every touched order."""
        settles: dict[OrderKey, bool] = {}
        for key in keys:
            to_engine = self._decide_without_engine(key, settles)
            if to_engine is not None:
                linked[key] = to_engine
            buyer = self._slots[key].buyer
            if buyer is not None and (to_engine is not None or waiting_count):
                changed.setdefault(buyer, []).append(key)
        for key in sorted(settles):
            self._settle(key, settles[key])

    def _decide_without_engine(
        self, key: OrderKey, settles: dict[OrderKey, bool]
    ) -> _Linked | None:
        """When the touched order goes to the engine, its documents (see `_linked`); else,
        when it needs settling, whether it is live is put in `settles` (see `_settle`)."""
        slot = self._slots[key]
        order = _live_order(slot)
        slot.buyer = slot.order_link if order is not None else None
        if order is not None and (slot.evaluated or self._may_be_complete(slot)):
            linked = self._linked(key)
            if self._eligible(key, linked):
                return linked
        if (order is None and slot.evaluated) or slot.expired:
            settles[key] = order is not None
        return None

    def _settle(self, key: OrderKey, live: bool) -> None:
        """What a touched order that does not go to the engine gets: `cancelled` when its
        order document went after an evaluation, else `incomplete` again when its window
        passed."""
        slot = self._slots[key]
        if not live and slot.evaluated:
            slot.evaluated = False
            self._emit(key, self._bare_event(key, "cancelled"), always=True)
        elif slot.expired:
            self._emit(key, self._incomplete(key, self._missing(key)), always=False)

    def _may_be_complete(self, slot: _Slot) -> bool:
        """False when the order (of `slot`) surely lacks a document (no payment names it, or no
        waybill does where no inventory can link one): most touched orders, told without
        looking up their documents (`_linked`)."""
        return slot.payments is not None and (self.inventory_rules or slot.waybills is not None)

    def _eligible(self, key: OrderKey, linked: _Linked) -> bool:
        """True when the order gets a verdict from the engine: it is live, and complete or
        evaluated before."""
        return linked.order is not None and (
            self._slots[key].evaluated or not linked.missing(self.inventory_rules)
        )

    def _walks_resume(self) -> bool:
        """True when a walk may resume from the spent an order left (`_walked_again`): when
        every order still missing a document is out of the walk, as a missing document is a
        reject rule. Else such an order could count, unseen, in the spent of the orders
        after it (that case re-walks whole buyers, as it always did)."""
        needed = Rule.PAYMENT_MISSING.bit | Rule.WAYBILL_MISSING.bit
        if self.inventory_rules:
            needed |= Rule.INVENTORY_MISSING.bit
        rejecting = self._walk_masks[0]  # the reject rules but the annual limit, worked out once
        return rejecting & needed == needed

    def _walked_again(
        self,
        buyer: str,
        changed: list[OrderKey],
        starts: dict[BuyerYear, int],
        replays: list[_Replay],
        again: set[OrderKey],
    ) -> None:
        """Put in `again` the buyer's orders that go to the engine when the `changed` ones are
        evaluated.

        An order's annual-limit walk reads only the orders before it in its year (SPEC §3.1),
        so in each year with a changed order the walk is done again from the first changed
        one, starting from the spent the order just before it left (put in `starts`). When
        that is not known, the whole year is walked again. The orders after the last changed
        one did not change: when their last evaluations are known, their walk is replayed
        after the engine ran (put in `replays`), else they go to the engine too.
        """
        changing = set(changed)
        for year, keys in self._walk_years(buyer).items():
            fresh = [position for position, key in enumerate(keys) if key in changing]
            if not fresh:
                continue
            at, end = fresh[0], fresh[-1] + 1
            if at:
                spent = self._slots[keys[at - 1]].spent_after
                if spent is None:
                    again.update(keys)
                    continue
                starts[(buyer, year)] = spent
            tail = keys[end:]
            if tail and all(self._replayable(key) for key in tail):
                again.update(keys[at:end])
                replays.append(_Replay(keys[end - 1], tail, keys))
            else:
                again.update(keys[at:])

    def _walked_whole(
        self,
        buyer: str,
        linked: dict[OrderKey, _Linked],
        starts: dict[BuyerYear, int],
        replays: list[_Replay],
        replayed: dict[OrderKey, int],
        to_evaluate: set[OrderKey],
    ) -> bool:
        """Walk every year of a buyer again from the quota ledger (a document left or moved
        one of its walks), the engine evaluating only the orders from the first to the last
        changed one (in `linked`) of each year: the orders before those are replayed now (to
        start the engine's walk from the spent they leave, put in `starts`; their new reason
        masks put in `replayed`), the orders after them once the engine ran (`replays`).

        False, with nothing planned, when the last evaluation of some order to replay is not
        known (then every order of the buyer goes to the engine, as a whole walk).
        """
        plans: list[tuple[BuyerYear, list[OrderKey], int, int]] = []
        for year, keys in self._walk_years(buyer).items():
            fresh = [position for position, key in enumerate(keys) if key in linked]
            first, last = (fresh[0], fresh[-1]) if fresh else (len(keys), len(keys))
            if not all(self._replayable(key) for key in (*keys[:first], *keys[last + 1 :])):
                return False
            plans.append(((buyer, year), keys, first, last))
        changes: dict[OrderKey, int] = {}
        spents: list[int] = []
        for group, keys, first, _ in plans:
            spent = self._replay(keys[:first], self._ledger_used(group), changes)
            if spent is None:
                return False
            spents.append(spent)
        replayed.update(changes)
        for (group, keys, first, last), spent in zip(plans, spents, strict=True):
            self.counters.add("replayed_orders", first + max(len(keys) - last - 1, 0))
            if first == len(keys):
                continue  # nothing changed in this year: replayed whole
            starts[group] = spent
            to_evaluate.update(keys[first : last + 1])
            if last + 1 < len(keys):
                replays.append(_Replay(keys[last], keys[last + 1 :], keys))
        return True

    def _walk_years(self, buyer: str) -> dict[int, list[OrderKey]]:
        """The buyer's orders in each year's annual-limit walk (its live, convertible orders),
        in walk order, by year (ascending; the walks of different years are independent)."""
        if self._glue is not None:
            return self._glue.walk_years(buyer)  # type: ignore[no-any-return]
        slots = self._slots
        placed: list[WalkKey] = []
        for key in self._buyer_orders.members(buyer):
            place = slots[key].place
            if place is None:
                place = self._place(key)
            if place is not None:
                placed.append((place, key))
        placed.sort()
        years: dict[int, list[OrderKey]] = {}
        for place, key in placed:
            years.setdefault(place >> _PLACE_BITS, []).append(key)
        return years

    def _place(self, key: OrderKey) -> int | None:
        """The order's walk place (see `_walk_place`), read from its packed row and kept in its
        slot; None when the order is not live and convertible."""
        slot = self._slots[key]
        if not slot.order_rows:
            return None
        place = slot.place = _place_of(slot.order_rows)
        return place

    def _replayable(self, key: OrderKey) -> bool:
        """True when what the order's walk needs is known without the engine: an evaluated
        order's last evaluation (`_SlotStruct.walk_limit`); an order still waiting is missing a
        document, which takes it out of the walk (`_walks_resume` holds while replaying)."""
        slot = self._slots[key]
        if slot.evaluated:
            return slot.walk_limit is not None and slot.last is not None
        return not self._may_be_complete(slot) or bool(self._missing(key))

    def _replay(self, keys: list[OrderKey], spent: int, changes: dict[OrderKey, int]) -> int | None:
        """Walk these orders (in walk order; none changed since its last evaluation) from
        `spent` as the engines walk them (SPEC §3.1), keeping the spent after each in its slot.

        An evaluated order keeps every result of its last evaluation but the annual-limit bit:
        it is out of the walk when its reason mask fails another reject rule; else it fails
        the annual limit when `spent` + its limit value > the limit (the bit is set unless the
        rule is off) and adds nothing, or adds its limit value. An order still waiting is out
        of the walk (it misses a document, see `_replayable`). Puts the reason mask of each
        order whose mask changes in `changes`; returns the spent after the last order, None
        when a sum would overflow the engine's int64 (the walk is then the engine's).
        """
        limit = self.settings.parameters.annual_limit
        skip, annual = self._walk_masks
        slots = self._slots
        for key in keys:
            slot = slots[key]
            if slot.evaluated:
                was: int = slot.last.reason_mask  # type: ignore[union-attr]
                mask = was & ~_ANNUAL_BIT
                if not mask & skip:
                    after = spent + slot.walk_limit  # type: ignore[operator]
                    if not -_INT64_END <= after < _INT64_END:
                        return None
                    if after > limit:
                        mask |= annual
                    else:
                        spent = after
                if mask != was:
                    changes[key] = mask
            slot.spent_after = spent
        return spent

    def _replay_all(
        self, replays: list[_Replay], replayed: dict[OrderKey, int], whole: list[OrderKey]
    ) -> int:
        """Replay the walks of `replays` from the spent the engine's walk left (see `_replay`),
        putting the new reason masks in `replayed`; a walk whose start is not known, or whose
        replay would overflow, goes in `whole` (the engine walks it again). Returns how many
        orders were replayed."""
        done = 0
        for replay in replays:
            start = self._slots[replay.after].spent_after
            changes: dict[OrderKey, int] = {}
            if start is None or self._replay(replay.orders, start, changes) is None:
                whole += replay.walk  # the engine's walk did not agree: the engine walks it
                continue
            replayed.update(changes)
            done += len(replay.orders)
        return done

    def _evaluate_orders(
        self,
        keys: list[OrderKey],
        direct: dict[OrderKey, None],
        starts: dict[BuyerYear, int],
        known: dict[OrderKey, _Linked],
        replays: list[_Replay],
        replayed: dict[OrderKey, int],
    ) -> None:
        """Run the batch engine on these orders with their documents, replay the walks of
        `replays` from the spent the engine's walk left; emit changed verdicts.

        `starts` holds the spent a buyer-year's walk starts from, where it does not start from
        the year's first order (see `_walked_again`); `known` the documents of some of these
        orders, already looked up in this flush; `replayed` the new reason masks of orders
        replayed before (see `_walked_whole`). Events go out in order key order.
        """
        linked, evaluated, events = self._run_engine(keys, starts, known) if keys else ({}, [], [])
        whole: list[OrderKey] = []
        if self._glue is not None:
            limit = self.settings.parameters.annual_limit
            done = self._glue.replay_all(
                replays, replayed, whole, limit, *self._walk_masks, ~_ANNUAL_BIT
            )
        else:
            done = self._replay_all(replays, replayed, whole)
        if done:
            self.counters.add("replayed_orders", done)
        runs = [(evaluated, events)]
        if whole:  # from the quota ledger, as after a restore
            more_linked, more_evaluated, more_events = self._run_engine(whole, {}, linked)
            linked.update(more_linked)
            runs.append((more_evaluated, more_events))
            for key in whole:
                replayed.pop(key, None)
        keys = list(linked)  # in key order, but for the orders of `whole`
        if replayed or whole:
            keys = _merged(keys, (key for key in replayed if key not in linked))
        if whole:
            evaluated, events = _events_in_order(keys, runs)
        emitting = (keys, linked, evaluated, events, replayed, known, direct)
        if self._glue is not None:
            self._glue.emit_all(self, *emitting, self.inventory_rules)
        else:
            self._emit_all(*emitting)

    def _emit_all(
        self,
        keys: list[OrderKey],
        linked: dict[OrderKey, _Linked],
        evaluated: list[OrderKey],
        events: list[VerdictEvent],
        replayed: dict[OrderKey, int],
        known: dict[OrderKey, _Linked],
        direct: dict[OrderKey, None],
    ) -> None:
        """Emit the events of an evaluation in `keys` order: the engine's (`events`, of the
        orders `evaluated`, in `keys` order: read along, not looked up by key) for the orders
        with their documents in `linked` that are eligible, replayed ones for the others (see
        `_evaluate_orders`)."""
        if len(events) != len(evaluated):
            raise ValueError("the engine's events are not one per evaluated order")
        at = 0  # the next of `evaluated`
        for key in keys:
            documents = linked.get(key)
            if documents is None:
                self._emit(key, self._replayed_event(key, replayed[key]), always=False)
                continue
            event = None
            if at < len(evaluated) and evaluated[at] == key:
                event = events[at]
                at += 1
            if key not in known and not self._eligible(key, documents):
                continue  # (the touched orders in `known` were found eligible this flush)
            if event is None:  # the order itself is invalid (batch would reject its row)
                event = self._bare_event(key, "invalid")
            self._slots[key].evaluated = True
            self._emit(key, event, always=key in direct)
        if at != len(evaluated):
            raise ValueError("the engine's events are not in key order")

    def _run_engine(
        self, keys: list[OrderKey], starts: dict[BuyerYear, int], known: dict[OrderKey, _Linked]
    ) -> tuple[dict[OrderKey, _Linked], list[OrderKey], list[VerdictEvent]]:
        """These orders' documents, the orders the engine evaluated (those with a live order
        document, in `keys` order) and its events of them; its walks remembered."""
        if self._glue is not None:
            linked = self._glue.linked_all(keys, known, self.inventory_rules)
        else:
            linked = {key: known[key] if key in known else self._linked(key) for key in keys}
        batch = self._batch_for(linked, starts)
        self.counters.add("evaluated_orders", len(keys))
        results = self._evaluate(batch.tables, self.settings)
        self._remember_walks(batch, results, starts)
        return linked, batch.keys, self._events_of(batch, results)

    def _replayed_event(self, key: OrderKey, mask: int) -> VerdictEvent:
        """The order's last event with another reason mask (see `_replay`)."""
        verdict, reasons = self._verdict_of(mask)
        last = self._slots[key].last
        assert last is not None  # an evaluated order (see `_replayable`)
        return msgspec.structs.replace(
            last, verdict=verdict, reasons=reasons, reason_mask=mask, missing=()
        )

    def _verdict_of(self, mask: int) -> tuple[str, tuple[str, ...]]:
        """The verdict and reason codes of a reason mask (cached: every event of the mask
        shares the one tuple of codes)."""
        verdict = self._verdicts.get(mask)
        if verdict is None:
            masks = self._verdict_masks
            verdict = self._verdicts[mask] = (
                masks.verdict_of(mask),
                tuple(masks.reasons_of(mask)),
            )
        return verdict

    def _remember_walks(
        self, batch: _Batch, results: OrderResults, starts: dict[BuyerYear, int]
    ) -> None:
        """Keep in each evaluated order's slot the spent after it in its walk (SPEC §3.1),
        replaying the engine's walk from the spent before each walked order: an order out of
        the walk leaves it as it was; an order walked adds its limit value unless that goes
        over the limit. Anything that does not agree with the engine leaves it unknown.

        Keeps too each order's limit value (`_SlotStruct.walk_limit`) when the engine walked it
        exactly when its reason mask fails no reject rule but the annual limit."""
        limit = self.settings.parameters.annual_limit
        spent_before = results.get("annual_spent")
        if spent_before is None:  # an evaluator that does not say: nothing is known
            for key in batch.keys:
                slot = self._slots[key]
                slot.spent_after = slot.walk_limit = None
            return
        skip = self._walk_masks[0]
        masks, values = results["reason_mask"], results["limit_value"]
        if self._glue is not None:
            self._glue.remember_walks(
                batch.keys, batch.walks, spent_before, masks, values, limit, skip
            )
            return
        slots, keys = self._slots, batch.keys
        walks: dict[BuyerYear, list[tuple[WalkKey, int]]] = {}
        for row, (group, walk) in enumerate(batch.walks):
            walks.setdefault(group, []).append((walk, row))
        for group, rows in walks.items():
            spent: int | None = starts[group] if group in starts else self._ledger_used(group)
            rows.sort()
            for _, row in rows:
                before, value = spent_before[row], values[row]
                if before is not None:
                    after = before + value if value is not None else _INT64_END
                    known = before == spent and -_INT64_END <= after < _INT64_END
                    spent = (after if after <= limit else before) if known else None
                slot = slots[keys[row]]
                slot.spent_after = spent
                walked = not masks[row] & skip
                slot.walk_limit = value if (before is not None) == walked else None

    def _ledger_used(self, group: BuyerYear) -> int:
        """The quota ledger's `used` for a buyer and year (0 when it has none)."""
        return self._ledger_by_group().get(group, 0)

    def _ledger_by_group(self) -> dict[BuyerYear, int]:
        """The quota ledger's `used` per buyer and year, read once."""
        if self._ledger is None:
            ledger = self.references.quota_ledger
            rows = ledger.select(_LEDGER_COLUMNS).iter_rows() if ledger is not None else ()
            self._ledger = {}
            for buyer, year, used in rows:
                self._ledger.setdefault((buyer, year), used)  # the first row counts
        return self._ledger

    def _events_of(self, batch: _Batch, results: OrderResults) -> list[VerdictEvent]:
        """One verdict event per evaluated order (`batch.keys`), as the batch renderer would
        state it."""
        if self._glue is not None:
            columns = [results[name] for name in RESULT_COLUMNS]
            return self._glue.events_of(  # type: ignore[no-any-return]
                batch.keys, *columns, batch.pay_transaction_ids, batch.logistics_nos
            )
        events: list[VerdictEvent] = []
        rows = zip(batch.keys, *(results[name] for name in RESULT_COLUMNS), strict=True)
        pay_ids, logistics_nos = batch.pay_transaction_ids, batch.logistics_nos
        verdict_of = self._verdict_of
        for key, mask, payment, waybill, tax, limit in rows:
            verdict, reasons = verdict_of(mask)
            event = VerdictEvent(  # every field, in order (see `VerdictEvent`)
                "",
                key[0],
                key[1],
                0,
                verdict,
                reasons,
                mask,
                (),
                pay_ids[payment] if payment is not None else None,
                logistics_nos[waybill] if waybill is not None else None,
                format_money(tax),
                format_money(limit),
            )
            events.append(event)
        return events

    def _emit(self, key: OrderKey, event: VerdictEvent, *, always: bool) -> None:
        slot = self._slots[key]
        last = slot.last
        if not always and last is not None:
            # With the last id and version, comparing whole events (in C) compares `content()`
            event.verdict_id, event.version = last.verdict_id, last.version
            if event == last:
                return
        slot.version += 1
        event.version = slot.version
        event.verdict_id = verdict_id(key, slot.version)
        slot.last = event
        self._events.append(event)
        self.counters.add(_EMITTED.get(event.verdict) or f"emitted_{event.verdict}")

    def _bare_event(self, key: OrderKey, verdict: str) -> VerdictEvent:
        return VerdictEvent("", key[0], key[1], 0, verdict)

    def _incomplete(self, key: OrderKey, missing: tuple[str, ...]) -> VerdictEvent:
        event = self._bare_event(key, "incomplete")
        event.missing = missing
        return event

    # --- documents -> canonical tables ----------------------------------------------------------

    def _live(self, kind: str, key: tuple[str, str]) -> _Entry | None:
        return _alive(self._docs[kind].get(key))

    def _linked(self, key: OrderKey) -> _Linked:
        """The order's live documents (its slot holds the links of live documents only)."""
        if self._glue is not None:
            return self._glue.linked(key, self.inventory_rules)  # type: ignore[no-any-return]
        slot = self._slots[key]
        inventory = self._live("inventory", key) if self.inventory_rules else None
        return _Linked(
            _live_order(slot),
            _sorted(_members(slot.payments)),
            self._linked_waybill_keys(slot.waybills, inventory),
            inventory,
        )

    def _linked_waybill_keys(
        self, carrying: Any, inventory: _Entry | None
    ) -> Sequence[tuple[str, str]]:
        """Waybills naming the order (`carrying`: its slot's `waybills`), plus the one its live
        `inventory` (given when inventory rules are on) names when that waybill names no order
        itself."""
        found: Sequence[tuple[str, str]] = _sorted(_members(carrying))
        if inventory is not None:
            loose_key = inventory.link
            loose = self._live("waybill", loose_key)
            if loose is not None and loose.link is None:
                return [*found, loose_key]
        return found

    def _batch_for(self, linked: dict[OrderKey, _Linked], starts: dict[BuyerYear, int]) -> _Batch:
        """Canonical tables holding these orders and every document linked to them.

        Each document was converted once, when it came (`canonical.RowMaker`), and its rows
        kept packed with it. A table's packed rows go to Arrow in one call (see `_table`): no
        work per value in Python. The quota ledger holds the rows of these orders'
        buyer-years, with `starts` in place of the ledger's figure.
        """
        gathered = self._glue.gather(linked) if self._glue is not None else self._gathered(linked)
        (orders, raw_keys, buyers), payments, waybills, inventories = gathered
        order_tables = _order_tables(orders, raw_keys, buyers)
        frames = dict(zip(("orders", "order_items"), order_tables, strict=True))
        frames["payments"] = _table("payments", *payments)
        frames["waybills"] = _table("waybills", *waybills)
        if self.inventory_rules:
            frames["inventories"] = _table("inventories", *inventories)
        walks = _walks(
            raw_keys, buyers, frames["orders"], self._glue, starts, self._ledger_by_group()
        )
        refs = self.references
        tables = CanonicalTables(
            products=refs.products,
            enterprises=refs.enterprises,
            hs_lists=refs.hs_lists,
            quota_ledger=self._batch_ledger(walks, starts),
            **frames,
        )
        return _Batch(
            tables,
            raw_keys,
            # The tables' columns of these are the documents' keys: read from the keys held
            list(map(_PAY_ID_OF, payments[1])),
            list(map(_LOGISTICS_NO_OF, waybills[1])),
            walks,
        )

    def _gathered(self, linked: dict[OrderKey, _Linked]) -> tuple[_Held, _Held, _Held, _Held]:
        """The packed rows of these orders' documents with their keys and links (which the
        rows leave out): (the orders', their payments', their waybills', their inventories'),
        each document once."""
        payment_docs, waybill_docs = self._docs["payment"], self._docs["waybill"]
        orders: _Held = ([], [], [])
        payments: dict[tuple[str, str], _Entry] = {}
        waybills: dict[tuple[str, str], _Entry] = {}
        inventories: dict[tuple[str, str], _Entry] = {}
        for key, documents in linked.items():
            if documents.order is not None:
                _hold(orders, key, documents.order.order_rows, documents.order.order_link)
            for pay_key in documents.payments:
                payments[pay_key] = payment_docs[pay_key]
            for waybill_key in documents.waybills:
                waybills[waybill_key] = waybill_docs[waybill_key]
            if documents.inventory is not None:
                inventories[key] = documents.inventory  # an inventory's key is its order's
        return orders, _held(payments), _held(waybills), _held(inventories)

    def _batch_ledger(
        self, walks: list[tuple[BuyerYear, WalkKey]], starts: dict[BuyerYear, int]
    ) -> Any:
        """The quota ledger rows of the buyer-years of these `walks` (the others are not read),
        in order of their first rows, with the spent a walk starts from where it does not start
        from the year's first order; None when there are none (a walk without a ledger row
        starts from 0)."""
        if self.references.quota_ledger is None and not starts:
            return None
        if self._glue is not None:  # (its walks hold the spent each starts from)
            buyers, years, spents = self._glue.ledger_columns(walks)
        else:
            buyers, years, spents = _ledger_columns(walks, starts, self._ledger_by_group())
        if not buyers:
            return None
        if _packed is not None:  # no Arrow object between (see `_table`)
            return _packed.from_columns(_LEDGER_SHAPE, [buyers, years, spents])
        # The numbers through NumPy: half the cost of Arrow converting them one by one.
        integers = [pa.array(np.array(values, dtype=np.int64)) for values in (years, spents)]
        return pa.Table.from_arrays(
            [pa.array(buyers, pa.string()), *integers], schema=_LEDGER_SCHEMA
        )

    # --- rules ----------------------------------------------------------------------------------

    def configuration(self) -> Configuration:
        """What decides verdicts besides the documents (kept with durable state)."""
        return Configuration(self.settings, self.inventory_rules)

    def reconfigure(self, configuration: Configuration) -> None:
        """Evaluate with these rules from now on (see `reevaluate`)."""
        self.settings = configuration.settings
        self.inventory_rules = configuration.inventory_rules
        self._verdicts.clear()
        self._walk_masks = _walk_bits(self.settings)
        self._verdict_masks = self.settings.verdict_masks()
        for slot in self._slots.values():  # spent and results under other rules
            slot.spent_after = slot.walk_limit = None

    def reevaluate(self, now: float | None = None) -> None:
        """Evaluate every order that has a verdict again (after the rules changed); only a
        verdict that changes gets a new version. Every walk is the engine's: nothing of the
        last evaluations is replayed."""
        for slot in self._slots.values():
            slot.walk_limit = None
        self._dirty_buyers |= {
            slot.buyer for slot in self._slots.values() if slot.evaluated and slot.buyer
        }
        self.flush(now)

    # --- observability and state ------------------------------------------------------------

    def pending(self) -> int:
        """Orders waiting for documents (not yet evaluated nor expired)."""
        return sum(1 for s in self._slots.values() if not s.evaluated and not s.expired)

    def stats(self) -> dict[str, int]:
        """Counters plus the current number of pending orders."""
        values = self.counters.as_dict()
        values["pending"] = self.pending()
        return values

    def snapshot(self) -> bytes:
        """The whole state as MessagePack (see `restore`): `_saved()` packed by msgspec, or
        the same bytes written by the compiled writer straight from the state."""
        if _snapshot is not None:
            data = _snapshot.encode_state(
                _State.__struct_fields__,
                self._docs,
                self._order_keys,
                self._slots,
                self._saved_rest(),
                msgspec.msgpack.encode,
                _ENCODE_INTO,
                _Entry,
                VerdictEvent,
            )
            if data is not None:
                return data  # type: ignore[no-any-return]
        return msgspec.msgpack.encode(self._saved())

    def _saved(self) -> _State:
        """The whole state as a snapshot holds it."""
        stores = {"order": self._order_versions(), **self._docs}
        return _State(
            docs={
                kind: [_SavedDoc(k[0], k[1], e.revision, e.link, e.rows) for k, e in store.items()]
                for kind, store in stores.items()
            },
            slots=[
                _SavedSlot(
                    k[0], k[1], s.first_seen, s.version, s.last, s.evaluated, s.expired, s.buyer
                )
                for k, s in self._slots.items()
            ],
            **self._saved_rest(),
        )

    def _saved_rest(self) -> dict[str, Any]:
        """The fields of `_State` after its documents and slots, by name."""
        return {
            "dirty": sorted(self._dirty),
            "dirty_buyers": sorted(self._dirty_buyers),
            "dirty_since": self._dirty_since,
            "counters": self.counters.as_dict(),
            "columns": _KEPT,
        }

    def restore(self, data: bytes) -> None:
        """Replace the state with a `snapshot()`; indexes are rebuilt from the documents."""
        try:
            state = msgspec.msgpack.decode(data, type=_State)
        except msgspec.ValidationError:
            state = self._upgraded(data)
        except msgspec.MsgspecError as exc:
            raise StateError(f"snapshot cannot be decoded ({exc})") from None
        _keep_rows(state, self._pack)  # before the state is replaced: it may refuse
        self.__init__(  # type: ignore[misc]
            self.references,
            self.settings,
            inventory_rules=self.inventory_rules,
            completion_window=self.completion_window,
            batch_size=self.batch_size,
            batch_interval=self.batch_interval,
            max_batch_interval=self.max_batch_interval,
            evaluator=self._evaluate,
            clock=self.clock,
        )
        # One tuple per order key, held by its slot and every document keyed by or linking to
        # the order (as `_order_key` makes them while documents come).
        order_keys = {key: key for key in (_shared_key((s.k1, s.k2)) for s in state.slots)}
        waiting: list[tuple[float, OrderKey]] = []
        for saved_slot in state.slots:  # first: they keep the order documents and the links
            key = order_keys[(saved_slot.k1, saved_slot.k2)]
            slot = self._slots[key] = _Slot(
                saved_slot.first_seen,
                key,
                saved_slot.version,
                saved_slot.last,
                saved_slot.evaluated,
                saved_slot.expired,
                saved_slot.buyer,
            )
            if not slot.evaluated and not slot.expired:
                waiting.append((slot.first_seen, key))
        for first_seen, key in sorted(waiting):  # before `_relink` makes a slot a snapshot lacks
            self._deadlines.add(key, first_seen)
        for kind, saved in state.docs.items():
            for doc in saved:
                key = _shared_key((doc.k1, doc.k2))
                if kind in _KEYED_BY_ORDER:
                    key = order_keys.get(key, key)
                link: Any = doc.link
                if isinstance(doc.link, list):
                    link = _shared_key(doc.link)
                    if kind in _LINKED_TO_ORDER:
                        link = order_keys.get(link, link)
                entry = _entry(doc.revision, link, doc.rows)
                if kind != "order":
                    self._docs[kind][key] = entry
                elif key in self._slots:
                    self._keep_order(self._slots[key], entry)
                else:
                    raise StateError("snapshot cannot be restored: an order without its slot")
                if entry.rows is not None:
                    self._relink(kind, key, None, entry, None)
        self._dirty_buyers = set(state.dirty_buyers)  # _relink marked none that were not saved
        self._dirty = dict.fromkeys(order_keys.get(k, k) for k in map(_shared_key, state.dirty))
        self._dirty_since = state.dirty_since
        self.counters = Counters.from_dict(state.counters)

    def _upgraded(self, data: bytes) -> _State:
        """A snapshot of the first format (whole messages) in the current one: each live
        document converted as it would have been at its first evaluation."""
        try:
            old = msgspec.msgpack.decode(data, type=_StateV1)
        except msgspec.MsgspecError as exc:
            raise StateError(f"snapshot cannot be decoded ({exc})") from None
        docs: dict[str, list[_SavedDoc]] = {}
        for kind, saved in old.docs.items():
            docs[kind] = []
            for doc in saved:
                link, rows = None, None
                if doc.doc is not None:
                    link = _LINK[kind](doc.doc)
                    try:
                        rows = self._pack(_CONVERT[kind](doc.doc))
                    except Invalid:
                        rows = b""  # present, but left out of evaluation
                        rejected = old.counters.get("rejected_at_evaluation", 0)
                        old.counters["rejected_at_evaluation"] = rejected + 1
                docs[kind].append(_SavedDoc(doc.k1, doc.k2, doc.revision, link, rows))
        return _State(
            docs, old.slots, old.dirty, old.dirty_buyers, old.dirty_since, old.counters, _KEPT
        )


def _keep_rows(state: _State, pack: _Packer) -> None:
    """Make the snapshot's rows hold the columns the stream keeps now: rows saved with other
    columns (every column, in snapshots written before the stream kept fewer; the key's
    columns, in snapshots written before rows left them out; the link's, before rows left
    those out) are packed again with those; StateError when they lack one, or hold a key or
    link other than their document's."""
    saved = state.columns or _EVERY_COLUMN
    if saved == _KEPT:
        return
    for kind, documents in state.docs.items():
        kept = _kept_of(kind, saved)
        table = _KEPT_AS[kind][0]
        key_of = _saved_values(kind, saved, _KEY_NAMES[table])
        link_of = _saved_values(kind, saved, _LINK_NAMES[table])
        for doc in documents:
            if doc.rows:  # not a tombstone, nor a document left out of evaluation
                rows = _UNPACK(doc.rows)
                if key_of is not None and key_of(rows) != (doc.k1, doc.k2):
                    raise StateError(
                        f"snapshot cannot be restored: a {kind}'s rows hold another key"
                    )
                link = _link_values(doc.link, len(_LINK_NAMES[table]))
                if link_of is not None and link is not None and link_of(rows) != link:
                    raise StateError(
                        f"snapshot cannot be restored: a {kind}'s rows hold another link"
                    )
                doc.rows = pack(kept(rows))
    state.columns = _KEPT


def _kept_of(kind: str, saved: dict[str, list[str]]) -> Callable[[Any], Any]:
    """A document's rows of the `saved` columns -> its rows of the columns kept now."""
    table = _KEPT_AS[kind][0]
    row = _picker(table, saved[table], _KEPT[table])
    if kind != "order":
        return row
    # An order's lines never held the order key, whatever the columns saved say.
    saved_lines = [name for name in saved["order_items"] if name not in _KEY_NAMES["order_items"]]
    line = _picker("order_items", saved_lines, _KEPT["order_items"])
    return lambda order: (row(order[0]), [line(values) for values in order[1]])


def _saved_values(kind: str, saved: dict[str, list[str]], names: Sequence[str]) -> Any:
    """A document's rows of the `saved` columns -> the values they hold of the columns `names`
    (a tuple); None when they do not hold them all."""
    columns = saved[_KEPT_AS[kind][0]]
    if not set(names) <= set(columns):
        return None
    places = [columns.index(name) for name in names]
    if kind == "order":
        return lambda order: tuple(order[0][at] for at in places)
    return lambda row: tuple(row[at] for at in places)


def _link_values(link: Any, parts: int) -> tuple[Any, ...] | None:
    """The values a document's link gives the columns its row leaves out (see `_link_part`);
    None for half an order key, which links to nothing and gives none."""
    if parts == 2 and link is not None and not all(link):
        return None
    return tuple(_link_part(link, part, parts) for part in range(parts))


def _picker(table: str, saved: list[str], kept: list[str]) -> Callable[[Any], Any]:
    """A row of the `saved` columns -> its values of the `kept` columns (two or more)."""
    lacking = [name for name in kept if name not in saved]
    if lacking:
        raise StateError(
            f"snapshot cannot be restored: its {table} rows lack {', '.join(lacking)}, "
            "which the rules read"
        )
    return itemgetter(*(saved.index(name) for name in kept))


class _SavedDoc(msgspec.Struct, array_like=True, gc=False):
    k1: str
    k2: str
    revision: int
    link: str | list[str] | None  # see `_LINK` (a key tuple comes back as a list)
    rows: bytes | None  # see `_Entry.rows`


class _SavedDocV1(msgspec.Struct, array_like=True, gc=False):
    """A document in a snapshot of the first format: the whole message."""

    k1: str
    k2: str
    revision: int
    doc: Message | None


class _SavedSlot(msgspec.Struct, array_like=True, gc=False):
    k1: str
    k2: str
    first_seen: float
    version: int
    last: VerdictEvent | None
    evaluated: bool
    expired: bool
    buyer: str | None


class _State(msgspec.Struct):
    docs: dict[str, list[_SavedDoc]]
    slots: list[_SavedSlot]
    dirty: list[tuple[str, str]]
    dirty_buyers: list[str]
    dirty_since: float | None
    counters: dict[str, int]
    #: The columns each table's packed rows hold, in their order (`_KEPT`); None in snapshots
    #: written while rows held every column (see `_keep_rows`).
    columns: dict[str, list[str]] | None = None


class _StateV1(_State):
    """A snapshot of the first format: the same, with whole messages for documents."""

    docs: dict[str, list[_SavedDocV1]]  # type: ignore[assignment]


def decode_bytes(raw: bytes) -> Message:
    """JSON or MessagePack bytes -> a checked Message, told apart by the first byte."""
    if decode_checked is not None:  # the usual message in one call
        message = decode_checked(raw)
        if message is not None:
            return message
    return decode_in_python(raw)


def decode_in_python(raw: bytes) -> Message:
    """`decode_bytes` of a message the compiled decoder leaves (or of any, when it is not
    built): the Python path, which decides, and gives the reason of a bad message."""
    stripped = raw.lstrip()
    first = stripped[:1]
    if first == b"{":
        return decode_json(raw)
    if first and (0x80 <= first[0] <= 0x8F or first[0] in (0xDE, 0xDF)):  # MessagePack map
        return decode_msgpack(raw)
    raise BadMessage("undecodable: neither a JSON object nor a MessagePack map")


class _Index:
    """A many-to-many link index: key -> members (members are key tuples of str). Nearly every
    key has a single member, held as it is; a few members go into a tuple of them, many into a
    set (so no key costs quadratic time).

    Held that way, what the index holds for up to `LIST_MAX` members is out of the cyclic
    garbage collector's sight, and so is its dict while no key has a set (see `_untracked`)."""

    __slots__ = ("_members",)

    #: Members kept in a tuple up to this many.
    LIST_MAX = 16

    def __init__(self) -> None:
        self._members: dict[Any, _Members] = {}

    def members(self, key: Any) -> tuple[Any, ...] | set[Any]:
        """The members of `key` (empty when none)."""
        return _members(self._members.get(key))

    def add(self, key: Any, member: tuple[Any, ...]) -> None:
        """Link `member` to `key`."""
        found = self._members.setdefault(key, member)  # one lookup for the usual new key
        if found is not member:
            self._members[key] = _with_member(found, member)

    def discard(self, key: Any, member: tuple[Any, ...]) -> None:
        """Unlink `member` from `key` (nothing when it is not linked; a key whose last member
        goes is removed)."""
        found = self._members.get(key)
        if found is not None:
            rest = _without_member(found, member)
            if rest is None:
                del self._members[key]
            else:
                self._members[key] = rest


#: What an `_Index` holds for a key, as a slot holds its payments and waybills: a single member
#: as it is, a few in a tuple, more in a set; None for none.
_Members = tuple[Any, ...] | set[Any] | None


def _members(found: _Members) -> tuple[Any, ...] | set[Any]:
    """The members `found` holds (empty when none)."""
    if found is None:
        return ()
    return (found,) if _single(found) else found


def _with_member(found: _Members, member: tuple[Any, ...]) -> _Members:
    """What holds `found`'s members and `member` (src_ext/intake.pyx: `with_member`, the same
    in C, which the compiled intake adds with)."""
    if found is None:
        return member
    if _single(found):
        return found if found == member else _untracked((found, member))
    if member in found:
        return found
    if type(found) is set:
        found.add(member)
        return found
    if len(found) < _Index.LIST_MAX:
        return _untracked((*found, member))
    return {*found, member}


def _without_member(found: _Members, member: tuple[Any, ...]) -> _Members:
    """What holds `found`'s members but `member` (None when none is left)."""
    if found is None or _single(found):
        return None if found == member else found
    if member not in found:
        return found
    if type(found) is set:
        found.remove(member)
        rest: Collection[Any] = found
    else:
        rest = _untracked(tuple(other for other in found if other != member))
    if len(rest) == 1:
        (rest,) = rest  # back to a single member held as it is
    return rest  # type: ignore[return-value]


def _single(found: tuple[Any, ...] | set[Any]) -> bool:
    """Whether what an `_Index` holds for a key is a single member (a tuple of str), not a
    tuple or set of members (src_ext/flush.pyx `members` tells them apart the same way)."""
    return type(found) is tuple and type(found[0]) is not tuple


#: `_untracked(items)`: the tuple `items`, out of the cyclic garbage collector's sight when
#: nothing in it is tracked (what a full collection would do to a plain tuple, done at once).
#: The matcher's state holds millions of tuples of keys and no cycles; kept untracked, so are
#: the dicts that hold them (CPython tracks a dict again when a tracked object goes in), and a
#: full collection costs the same however many orders wait (see docs/internals.md).
#: Without the extension: the tuple as it is.
_untracked: Callable[[Any], Any] = _intake.untracked if _intake is not None else (lambda t: t)


class _DeadlineQueue:
    """Where `_Deadlines.add` queues an order slot's deadline: the reference, and the base of
    `_Deadlines` when the extension is not built (else src_ext/slots.pyx `DeadlineQueue`, whose
    `add` the compiled intake calls in C, not through a Python frame)."""

    __slots__ = ("_window", "_chunks", "_tail", "_late", "_newest", "_untracked")

    CHUNK: ClassVar[int]  # `_Deadlines.CHUNK`

    def __init__(self, window: float, untracked: Callable[[Any], Any]) -> None:
        self._window = window
        self._chunks: deque[tuple[OrderKey, ...]] = deque()  # full, oldest first
        self._tail: list[OrderKey] = []  # the newest keys, fewer than CHUNK
        self._late: list[tuple[float, OrderKey]] = []
        self._newest = -math.inf  # first_seen of the last queued slot
        self._untracked = untracked  # makes each full chunk (`_untracked`)

    def add(self, key: OrderKey, first_seen: float) -> None:
        """The slot of `key`, first seen at `first_seen`, is due a window later."""
        if first_seen >= self._newest:
            self._tail.append(key)
            if len(self._tail) == self.CHUNK:
                self._chunks.append(self._untracked(tuple(self._tail)))
                self._tail = []
            self._newest = first_seen
        else:
            heapq.heappush(self._late, (first_seen + self._window, key))


if TYPE_CHECKING:
    _DeadlineBase = _DeadlineQueue
else:
    _DeadlineBase = _native_slots.DeadlineQueue if _native_slots is not None else _DeadlineQueue


class _Deadlines(_DeadlineBase):
    """The completion deadlines of order slots (each slot's `first_seen` + the window).

    Slots are made in processing-time order, so nearly every deadline sits in a queue of keys
    (8 bytes each, against 80 for a heap entry of due time and key), due in queue order; a
    slot first seen before the newest queued one (the clock went back) waits in a heap.

    The queue is chunks of `CHUNK` keys, each a tuple out of the cyclic garbage collector's
    sight, and the newest keys in a list: a full collection visits a few hundred chunks, not
    every pending order (see `_untracked`). `add` is the base's (`_DeadlineBase`).
    """

    __slots__ = ("_slots", "_head")

    CHUNK = 1024  # read once a queue is made (by the compiled one)

    def __init__(self, slots: dict[OrderKey, _Slot], window: float) -> None:
        super().__init__(window, _untracked)
        self._slots = slots
        self._head = 0  # keys already due of the first chunk (of the tail when none)

    def next_due(self) -> float | None:
        """The earliest deadline, None when there is none."""
        late = self._late[0][0] if self._late else None
        first = self._first()
        if first is None:
            return late
        due = self._due(first)
        return due if late is None or due < late else late

    def pop_due(self, now: float) -> list[OrderKey]:
        """Remove and return the keys due at or before `now`, by due time then key."""
        due: list[tuple[float, OrderKey]] = []
        while (first := self._first()) is not None and self._due(first) <= now:
            self._head += 1
            due.append((self._due(first), first))
        while self._late and self._late[0][0] <= now:
            due.append(heapq.heappop(self._late))
        return [key for _, key in sorted(due)]

    def _first(self) -> OrderKey | None:
        """The first key in the queue, None when it is empty (moving past a chunk all due)."""
        if self._chunks:
            if self._head < self.CHUNK:
                return self._chunks[0][self._head]
            self._chunks.popleft()
            self._head = 0
            return self._first()
        if self._head < len(self._tail):
            return self._tail[self._head]
        self._tail.clear()  # all due
        self._head = 0
        return None

    def _due(self, key: OrderKey) -> float:
        return self._slots[key].first_seen + self._window


@contextmanager
def _collection_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: a flush makes tens of thousands of short-lived
    containers (rows, keys, events) and no cycles, and each collection it would trigger walks
    them again (the full ones also every tracked object of the state)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _alive(entry: _Entry | None) -> _Entry | None:
    """The entry when it holds a live document (not absent, not cancelled)."""
    return entry if entry is not None and entry.rows is not None else None


def _order_entry(slot: _Slot) -> _Entry:
    """The order document's version `slot` keeps, as an `_Entry`."""
    return _entry(slot.order_revision, slot.order_link, slot.order_rows)


def _live_order(slot: _Slot | None) -> _Slot | None:
    """The order's slot when it holds a live order document (`_alive` of its version)."""
    return slot if slot is not None and slot.order_rows is not None else None


def _joined(packed: list[bytes]) -> bytes:
    """Packed values as the items of one MessagePack array, to decode them in one call."""
    return b"\xdd" + len(packed).to_bytes(4, "big") + b"".join(packed)  # array 32


def _unpack_rows(packed: list[bytes]) -> list[tuple[Any, ...]]:
    """Packed canonical rows (payments, waybills, inventories) as tuples."""
    return _UNPACK_ROWS(_joined(packed))


def _checked_batch_size(size: object) -> int:
    """`size` when it is a batch size (a whole number from 1 to `MAX_BATCH_SIZE`), else
    RuleConfigError naming it."""
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_BATCH_SIZE:
        raise RuleConfigError(
            f"batch size {size!r}: expected a whole number from 1 to {MAX_BATCH_SIZE}"
        )
    return size


def _walk_bits(settings: RuleSettings) -> tuple[int, int]:
    """(the reject rules that take an order out of the annual walk, the bit an order over the
    annual limit gets: 0 when the rule is off), as both engines have them."""
    annual = Rule.ANNUAL_LIMIT_EXCEEDED
    return (
        settings.mask_of("reject") & ~annual.bit,
        annual.bit if settings.enabled(annual) else 0,
    )


def _walk_place(year: int, app_time: int) -> int:
    """An order's app year and app time as one integer that sorts as the pair (a fraction of
    the memory of a tuple): the int64 app time from 0 up in the low `_PLACE_BITS` bits, the
    year above them (`place >> _PLACE_BITS` gives it back)."""
    return (year << _PLACE_BITS) + app_time + _INT64_END


def _walk_places(packed: list[bytes]) -> list[tuple[int, int]]:
    """(app year, app time) of each packed order (see `_order_rows`): the year is made from
    the time, as the orders table's `_app_year` is (the reference of `_place_of`)."""
    times = [head[_APP_TIME] for head, _ in _UNPACK_ORDERS(_joined(packed))]
    return [(china_dates(time)[0], time) for time in times]


def _place_of(rows: bytes) -> int:
    """`_walk_place` of a packed order's `_walk_places`."""
    if _packed is not None:  # made in C, no tuple between
        return _packed.walk_place(rows, *_WALK_PLACE_ARGS)  # type: ignore[no-any-return]
    ((year, app_time),) = _walk_places([rows])
    return _walk_place(year, app_time)


def _walks(
    keys: list[OrderKey],
    buyers: list[Any],
    orders: Any,
    glue: Any,
    starts: dict[BuyerYear, int],
    ledger: dict[BuyerYear, int],
) -> Any:
    """Each canonical order row's annual-limit walk and its place in it, from the rows' order
    keys (the same text as their ebp_code and order_no), their links (the buyer_id_number
    column's values) and the orders table just built: a list of (walk, place), or with the
    matcher's compiled `glue` when there is one its own form (src_ext/flush.pyx `Walks`: the
    walks numbered, with the spent each starts from, from `starts` or the quota `ledger`, and
    the app times, which within a walk, of one year, sort the same)."""
    if isinstance(orders, pa.Table):
        years = orders.column(schema.APP_YEAR).to_pylist()
        times = _microseconds(orders.column("app_time"))
    else:  # src_ext/packed.pyx's: read from its buffers
        years, times = orders.integers(schema.APP_YEAR), orders.integers("app_time")
    if glue is not None:
        return glue.walks(keys, buyers, years, times, starts, ledger)
    return [
        ((buyer, year), (_walk_place(year, app_time), key))
        for key, buyer, year, app_time in zip(keys, buyers, years, times, strict=True)
    ]


def _microseconds(times: pa.ChunkedArray) -> list[Any]:
    """A timestamp column's values as microseconds (any year; None where null): its chunks seen
    as Int64, which costs a tenth of a cast."""
    return [value for chunk in times.chunks for value in chunk.view(pa.int64()).to_pylist()]


def _order_tables(packed: list[bytes], keys: list[OrderKey], links: list[Any]) -> tuple[Any, Any]:
    """Packed orders (see `_order_rows`), their keys and links -> the orders and order_items
    tables (pyarrow Tables, or when compiled src_ext/packed.pyx's, which Arrow consumers read
    through `__arrow_c_stream__`: see `_arrow_table`)."""
    if _packed is not None:  # straight from the bytes to Arrow buffers (src_ext/packed.pyx)
        layouts = _LAYOUTS["orders"], _LAYOUTS["order_items"]
        return _packed.order_tables(packed, keys, links, *layouts)  # type: ignore[no-any-return]
    decoded = _UNPACK_ORDERS(_joined(packed))
    heads = [head for head, _ in decoded]
    lines = [line for _, order_lines in decoded for line in order_lines]
    line_keys = [
        key for key, (_, order_lines) in zip(keys, decoded, strict=True) for _ in order_lines
    ]
    return (
        _ROWS["orders"].frame(heads, _apart_columns("orders", keys, links)),
        _ROWS["order_items"].frame(lines, _apart_columns("order_items", line_keys, [])),
    )


def _table(name: str, packed: list[bytes], keys: list[tuple[str, str]], links: list[Any]) -> Any:
    """Packed canonical rows of one table (payments, waybills, inventories) and their
    documents' keys and links -> the table (as `_order_tables` makes them)."""
    if _packed is not None:
        return _packed.table(packed, _LAYOUTS[name], keys, links)
    return _ROWS[name].frame(_unpack_rows(packed), _apart_columns(name, keys, links))


def _arrow_table(table: Any) -> pa.Table:
    """A micro-batch's table as a pyarrow Table (src_ext/packed.pyx's shares its buffers)."""
    return table if isinstance(table, pa.Table) else pa.table(table)


def _apart_columns(
    name: str, keys: list[tuple[str, str]], links: list[Any]
) -> dict[str, list[Any]]:
    """The values of the columns a table's rows leave out, by name, from their documents' keys
    and links (`_KEY_NAMES`, `_LINK_NAMES`)."""
    columns = {column: [key[part] for key in keys] for part, column in enumerate(_KEY_NAMES[name])}
    parts = len(_LINK_NAMES[name])
    for part, column in enumerate(_LINK_NAMES[name]):
        columns[column] = [_link_part(link, part, parts) for link in links]
    return columns


def _link_part(link: Any, part: int, parts: int) -> Any:
    """Part `part` of a link of `parts` parts (as `TableLayout` reads it): of one, the link
    itself (a buyer's ID number); of two, its item (a key); no link (None): null."""
    return link if link is None or parts == 1 else link[part]


def _held(documents: dict[tuple[str, str], _Entry]) -> _Held:
    """(packed rows, keys, links) of the documents that have rows."""
    held: _Held = ([], [], [])
    for key, entry in documents.items():
        _hold(held, key, entry.rows, entry.link)
    return held


def _hold(held: _Held, key: tuple[str, str], rows: bytes | None, link: Any) -> None:
    """Add a document to `held` (see `_held`) when it has rows."""
    if rows:
        held[0].append(rows)
        held[1].append(key)
        held[2].append(link)


def _ledger_columns(
    walks: list[tuple[BuyerYear, WalkKey]],
    starts: dict[BuyerYear, int],
    ledger: dict[BuyerYear, int],
) -> tuple[list[str], list[int], list[int]]:
    """The quota ledger's columns (buyers, years, spents) of `_batch_ledger`: a row per
    buyer-year of `walks` whose walk does not start from 0 (its spent in `starts`, else in
    `ledger`), in order of their first rows."""
    buyers: list[str] = []
    years: list[int] = []
    spents: list[int] = []
    for group in dict.fromkeys(group for group, _ in walks):
        spent = starts[group] if group in starts else ledger.get(group, 0)
        if spent:
            buyers.append(group[0])
            years.append(group[1])
            spents.append(spent)
    return buyers, years, spents


def _events_in_order(
    keys: list[OrderKey], runs: list[tuple[list[OrderKey], list[VerdictEvent]]]
) -> tuple[list[OrderKey], list[VerdictEvent]]:
    """The engine's events of several `runs` (evaluated orders, their events; a later run's
    event of an order replaces an earlier one's) with their orders, in `keys` order."""
    found: dict[OrderKey, VerdictEvent] = {}
    for evaluated, events in runs:
        found.update(zip(evaluated, events, strict=True))
    ordered = [key for key in keys if key in found]
    return ordered, [found[key] for key in ordered]


def _merged(ordered: Iterable[OrderKey], more: Iterable[OrderKey]) -> list[OrderKey]:
    """Keys `ordered` (in key order, mostly) and `more` (none of them in `ordered`) in key
    order: `more` sorted on its own, then the two runs merged, which takes a fraction of the
    comparisons of sorting them all (a tuple comparison costs as much as a dict lookup)."""
    return sorted([*ordered, *sorted(more)])


def _sorted(members: tuple[Any, ...] | set[Any]) -> Any:
    return members if len(members) < 2 else sorted(members)


def _shared_key(key: Any) -> tuple[str, str]:
    """A key with its company code interned: one copy of a code that thousands of documents
    hold. Its second part, a document's number, is its own (an order's is held by its one key
    tuple, which its documents and the indexes share, see `_order_key`): interning it would
    only grow the interpreter's table of interned text by an entry per document (the compiled
    intake interns the same parts, as do `_buyer_of` a buyer's ID number)."""
    return _untracked((sys.intern(key[0]), key[1]))  # type: ignore[no-any-return]


def _logistics_of(inventory: Inventory) -> tuple[str, str]:
    return _shared_key(
        (
            canonical_code(inventory.logistics_code) or "",
            canonical_code(inventory.logistics_no) or "",
        )
    )


def _order_link(message: Payment | Waybill) -> OrderKey | None:
    link = order_key_of(message)
    return _shared_key(link) if link is not None else None


def _buyer_of(order: Order) -> str | None:
    buyer = canonical_id_number(order.buyer_id_number)
    return sys.intern(buyer) if buyer is not None else None  # a buyer has several orders


def _kept_columns(table: schema.Table) -> frozenset[str]:
    """The columns of a document table whose values the stream keeps: those the rules read,
    which are the kernel's (the reference engine reads no others but a key:
    tests/stream/test_stream_kept_columns.py), and the table's key (an order line's gnum,
    which makes an order's lines unique). The others are converted and checked, then dropped:
    a micro-batch's tables have them null."""
    return frozenset(column for name, column in KERNEL_COLUMNS if name == table.name).union(
        table.key
    )


#: Each document table's own key, in key order (`Message.KEY`): an order line's is its order's.
_KEY_NAMES = {
    "orders": Order.KEY,
    "order_items": Order.KEY,
    "payments": Payment.KEY,
    "waybills": Waybill.KEY,
    "inventories": Inventory.KEY,
}
#: Each document table's columns whose values are what its document links by (`_LINK`), in
#: the link's order: an order's buyer ID number, a payment's or waybill's order key, an
#: inventory's waybill key (an order line links to nothing).
_LINK_NAMES: dict[str, tuple[str, ...]] = {
    "orders": ("buyer_id_number",),
    "order_items": (),
    "payments": ("ebp_code", "order_no"),
    "waybills": ("ebp_code", "order_no"),
    "inventories": ("logistics_code", "logistics_no"),
}
#: A document's rows leave out its key's and its link's columns, which its key in `_docs` and
#: its link give back: both are made of those canonical values (required, but a waybill's
#: order key: its link is None when it names none, nulls, and ("", "") when it names half of
#: one, which links to nothing: such a waybill goes in no table). An order line's row leaves
#: out its order's key, which it does not read either (see `_order_rows`).
_ROWS = {
    table.name: RowMaker(
        table,
        kept=_kept_columns(table),
        apart=(*_KEY_NAMES[table.name], *_LINK_NAMES[table.name]),
        given=len(Order.KEY) if table is schema.ORDER_ITEMS else 0,
        derive_dates=True,  # an order's dates: two values less a row
    )
    for table in (
        schema.ORDERS,
        schema.ORDER_ITEMS,
        schema.PAYMENTS,
        schema.WAYBILLS,
        schema.INVENTORIES,
    )
}


def _layout(name: str) -> Any:
    """A canonical table as src_ext/packed.pyx makes it from packed rows, which leave out the
    key's and the link's columns (see `_ROWS`), their documents' keys and links."""
    assert _packed is not None
    maker = _ROWS[name]
    at = maker.schema.get_field_index
    dates: dict[str, Any] = {}
    if maker.derived:
        dates = {
            "dates_at": [at(column) for column in maker.kept_names[-2:]],
            "time_value": maker.held_names.index("app_time"),
            "dates": china_dates,
            "china": True,
        }
    return _packed.TableLayout(
        maker.schema,
        maker.row_at,
        maker.kept_fields,
        key_at=[at(column) for column in _KEY_NAMES[name]],
        link_at=[at(column) for column in _LINK_NAMES[name]],
        **dates,
    )


#: Each canonical table as src_ext/packed.pyx makes it from packed rows (none when not built).
_LAYOUTS = {name: _layout(name) for name in _ROWS} if _packed is not None else {}


def _order_rows(order: Order) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """An order's canonical row and its lines' rows, less the columns kept apart (a line's
    order key too, which the order's key gives back: kept once, not once a line). A repeated
    `gnum` keeps the first line, as batch keeps the first copy of a duplicated key."""
    row = _ROWS["orders"].row(order)
    lines: dict[int, tuple[Any, ...]] = {}
    for position, item in enumerate(order.items):
        try:
            line = _ROWS["order_items"].row(item)
        except Invalid as exc:
            raise Invalid(f"items[{position}]: {exc}") from None
        lines.setdefault(line[0], line)  # by its gnum
    return row, list(lines.values())


#: The position of app time in a held order row (its dates are made from it, not held).
_APP_TIME = _ROWS["orders"].held_names.index("app_time")
#: What the compiled `walk_place` takes after a packed order's rows (`_place_of`; the flush
#: glue calls it with them straight).
_WALK_PLACE_ARGS = (_APP_TIME, china_dates)
assert _ROWS["orders"].derived and _ROWS["orders"].kept_names[-2:] == [
    schema.APP_YEAR,
    schema.APP_YMD,
]
_LEDGER_COLUMNS = ("buyer_id_number", "year", "used")
_LEDGER_SCHEMA = pa.schema(
    [("buyer_id_number", pa.string()), ("year", pa.int64()), ("used", pa.int64())]
)
#: A micro-batch's quota ledger as src_ext/packed.pyx makes it (see `_batch_ledger`).
_LEDGER_SHAPE = _packed.TableSchema(_LEDGER_SCHEMA) if _packed is not None else None
#: The types of a micro-batch's tables (see `_order_tables`).
_BATCH_TABLES: tuple[type, ...] = (pa.Table,) if _packed is None else (pa.Table, _packed.Table)
#: The key part of a payment's pay_transaction_id and of a waybill's logistics_no (an event's).
_PAY_ID_OF = itemgetter(Payment.KEY.index("pay_transaction_id"))
_LOGISTICS_NO_OF = itemgetter(Waybill.KEY.index("logistics_no"))
_INT64_END = 2**63  # a spent this large would overflow the engine's int64
_PLACE_BITS = 64  # see `_walk_place` (src_ext/packed.pyx `walk_place` makes it in 64 bits)
_ANNUAL_BIT = Rule.ANNUAL_LIMIT_EXCEEDED.bit
#: The counter of each verdict emitted (named once, not on every event).
_EMITTED = {
    verdict: f"emitted_{verdict}"
    for verdict in ("pass", "review", "reject", "incomplete", "cancelled", "invalid")
}
assert _ROWS["order_items"].held_names[0] == "gnum"
#: The documents an order lacks (`_Linked.missing`) by bit (1 order, 2 payment, 4 waybill,
#: 8 inventory), in SPEC order: one shared tuple each, not a list per event.
_MISSING: tuple[tuple[str, ...], ...] = tuple(
    tuple(kind for bit, kind in enumerate(DOC_TYPES) if lacks >> bit & 1) for lacks in range(16)
)


class _Packer:
    """Packs canonical rows as MessagePack into bytes of exactly their size: msgspec's
    `encode` leaves its growth room in the bytes it returns (a quarter more, kept for as long
    as the document waits); packing into a reused buffer and copying out does not."""

    __slots__ = ("_buffer", "_encode_into")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._encode_into = msgspec.msgpack.Encoder().encode_into

    def __call__(self, rows: Any) -> bytes:
        self._encode_into(rows, self._buffer)
        return bytes(self._buffer)


#: The columns each table's packed rows hold (`RowMaker.held_names`; see `_State.columns`),
#: and the columns they held before the stream kept fewer: every one.
_KEPT = {name: maker.held_names for name, maker in _ROWS.items()}
#: msgspec's packing into a bytearray, for the values the compiled snapshot writer leaves to it.
_ENCODE_INTO = msgspec.msgpack.Encoder().encode_into
_EVERY_COLUMN = {name: row_values(maker.table) for name, maker in _ROWS.items()}
#: One packed document (see `_Entry.rows`).
_UNPACK = msgspec.msgpack.Decoder().decode
#: Many packed documents at once (see `_joined`), rows as tuples (what Arrow converts).
_UNPACK_ROWS = msgspec.msgpack.Decoder(list[tuple]).decode
_UNPACK_ORDERS = msgspec.msgpack.Decoder(list[tuple[tuple, list[tuple]]]).decode

#: Each kind of document -> its canonical row(s); raises Invalid naming the field.
_CONVERT: dict[str, Callable[[Any], Any]] = {
    "order": _order_rows,
    "payment": _ROWS["payments"].row,
    "waybill": _ROWS["waybills"].row,
    "inventory": _ROWS["inventories"].row,
}


#: The kinds of document keyed by their order's key, and those that link to an order by its key.
_KEYED_BY_ORDER = frozenset(("order", "inventory"))
_LINKED_TO_ORDER = frozenset(("payment", "waybill"))

#: Each kind of document -> what it links by: an order its canonical buyer ID number; a payment
#: or waybill the order key it names (see `order_key_of`); an inventory its waybill's key.
_LINK: dict[str, Callable[[Any], Any]] = {
    "order": _buyer_of,
    "payment": _order_link,
    "waybill": _order_link,
    "inventory": _logistics_of,
}


class _DocumentIntake:
    """What the matcher keeps of one kind of document: its key (`key`), and for an upsert what
    it links by with its canonical rows packed (`keep`, Invalid when a value batch would
    reject). This is the reference; `_compiled_intake` the same in one compiled call each."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._convert = _CONVERT[kind]
        self._link = _LINK[kind]
        self._pack = _Packer()

    def key(self, message: Message) -> OrderKey:
        """The document's own key, canonical (see `_shared_key`)."""
        return _shared_key(message.key())

    def keep(self, message: Message) -> tuple[Any, bytes]:
        """(link, packed rows) of an upsert (see `_Entry`)."""
        rows = self._pack(self._convert(message))
        return self._link(message), rows


#: Each kind of document -> its canonical table, and how `_LINK` links it, from which fields.
_KEPT_AS = {
    "order": ("orders", "LINK_BUYER", _LINK_NAMES["orders"]),
    "payment": ("payments", "LINK_ORDER", _LINK_NAMES["payments"]),
    "waybill": ("waybills", "LINK_ORDER", _LINK_NAMES["waybills"]),
    "inventory": ("inventories", "LINK_WAYBILL", _LINK_NAMES["inventories"]),
}


def _compiled_intake(kind: str, cls: type[Message]) -> Any:
    """`_DocumentIntake` of one kind in C (src_ext/intake.pyx): one call for the key, one for
    link and rows (in Python the conversions, interning and packing are a dozen calls)."""
    assert _intake is not None
    table, link, link_names = _KEPT_AS[kind]
    return _intake.DocumentIntake(
        kind,
        cls.KEY,
        getattr(_intake, link),
        link_names,
        clean_text,  # what `canonical_code` calls (a compiled `Converter` too)
        canonical_id_number,
        _ROWS[table].plan,
        _ROWS["order_items"].plan if kind == "order" else None,
        _CONVERT[kind],
        msgspec.msgpack.Encoder().encode_into,
    )


def _intake_of(cls: type[Message]) -> Any:
    """The `_DocumentIntake` of a message type (compiled when the extension is built)."""
    kind: str = cls.__struct_config__.tag  # type: ignore[assignment]
    intake = _compiled_intake(kind, cls) if _intake is not None else _DocumentIntake(kind)
    _INTAKES[cls] = intake
    return intake


#: Message type -> its `_DocumentIntake`, made on first use.
_INTAKES: dict[type, Any] = {}


def _glue_of(matcher: StreamMatcher) -> Any:
    """The matcher's per-order flush steps in compiled calls on its own documents, slots, link
    indexes and verdict cache (src_ext/flush.pyx: `FlushGlue`), which calls the matcher's
    methods through a weak reference to it (`weakly_bound`): the matcher holds the glue."""
    assert _flush is not None and _packed is not None  # (flush.pyx uses packed.pyx)
    return _flush.FlushGlue(
        matcher._docs,
        matcher._slots,
        matcher._buyer_orders._members,
        _Linked,
        weakly_bound(matcher._settle),
        _packed.walk_place,
        _Replay,
        _PLACE_BITS,
        matcher._verdicts,
        weakly_bound(matcher._verdict_of),
        VerdictEvent,
        weakly_bound(matcher._replayed_event),
        _EMITTED,
        fraction_text,
        schema.MONEY_SCALE,
        int64_end=_INT64_END,
        entry_type=_Entry,
        place_args=_WALK_PLACE_ARGS,  # `_place_of` without its Python frame
    )


def weakly_bound(method: Callable[..., Any]) -> Callable[..., Any]:
    """`method`, a bound method, called through a weak reference to its object: for what the
    object itself holds (a callback to it would make a reference cycle, and the object, with
    all it holds, would wait for the cyclic garbage collector when dropped). Once the object
    is gone a call does nothing (a matcher kept after its `DurableMatcher` was dropped has no
    log to tell of its flushes)."""
    owner = weakref.ref(method.__self__)  # type: ignore[attr-defined]
    function = method.__func__  # type: ignore[attr-defined]

    def call(*args: Any) -> Any:
        target = owner()
        return function(target, *args) if target is not None else None

    return call


def _new_upserts(matcher: StreamMatcher) -> Any:
    """`matcher._apply` of a new upsert in one compiled call, working on the matcher's own
    documents, indexes and slots (src_ext/intake.pyx: `NewUpserts`)."""
    assert _intake is not None
    indexes = {  # where each kind's links go: an index, or a field of their order's slot
        "order": matcher._buyer_orders,
        "payment": "payments",
        "waybill": "waybills",
        "inventory": matcher._inventory_orders,
    }
    routes = {}
    for cls in (Order, Payment, Waybill, Inventory):
        intake = _INTAKES.get(cls) or _intake_of(cls)
        # (an order's documents: None, kept in its slot)
        links = indexes[intake.kind]
        routes[cls] = (intake, matcher._docs.get(intake.kind), links, _Index.LIST_MAX)
    return _intake.NewUpserts(
        routes, matcher._slots, matcher._order_keys, matcher._deadlines, _entry, ACCEPTED
    )


def _direct_plans() -> list[Any]:
    """Per message type, how the compiled JSON intake reads it (src_ext/intake.pyx:
    `DirectPlan`): from its fields as msgspec decodes them, its compiled check and intake."""
    assert _intake is not None
    plans = []
    for cls in (Order, Payment, Waybill, Inventory):
        intake = _INTAKES.get(cls) or _intake_of(cls)
        plans.append(
            _intake.DirectPlan(
                intake.kind,
                cls,
                intake,
                compiled_check(cls),
                direct_fields(cls),
                direct_fields(Item) if cls is Order else None,
                msgspec.msgpack.encode,
                time_at=_APP_TIME if cls is Order else -1,  # its walk place made at intake
            )
        )
    return plans


#: The usual JSON message -> what `_new_upserts` keeps, in one pass over its bytes (None: not
#: built). Holds no matcher state: every matcher shares it.
_DIRECT_JSON: Any = (
    _intake.DirectJson(_direct_plans(), Document.__struct_config__.tag_field)
    if _intake is not None
    else None
)


__all__ = [
    "Configuration",
    "DEFAULT_BATCH_INTERVAL",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_COMPLETION_WINDOW",
    "FeedResult",
    "MAX_BATCH_SIZE",
    "References",
    "StreamMatcher",
    "decode_bytes",
    "decode_in_python",
    "engine_evaluator",
]
