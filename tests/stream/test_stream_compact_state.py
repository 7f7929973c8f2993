"""Compact matcher state: packed documents and link indexes survive snapshots, restores and
snapshots of the first format (whole messages) exactly."""

from __future__ import annotations

import gc
import heapq
from contextlib import contextmanager

import msgspec
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from matchcore.stream import matcher as matcher_module
from matchcore.stream.canonical import RowMaker, python_china_dates
from matchcore.stream.messages import from_mapping, message_type


def _events(matcher):
    matcher.flush()
    return [(e.verdict_id, e.content()) for e in matcher.drain()]


def _mixed_state(kit, matcher):
    """Pending, evaluated, revised, cancelled and loosely linked documents, two buyers."""
    loose_waybill = {**kit.waybill_msg("O5"), "logistics_no": "L-LOOSE"}
    del loose_waybill["order_no"], loose_waybill["ebp_code"]  # linked through its inventory
    inventory = {**kit.inventory_msg("O5"), "logistics_no": "L-LOOSE"}
    kit.feed_all(
        matcher,
        kit.complete_set("O1")
        + kit.complete_set("O2")  # the same buyer as O1: evaluated together
        + [kit.order_msg("O3", buyer=kit.BUYER_IDS[1]), kit.payment_msg("O3")]  # pending
        + [kit.order_msg("O4"), kit.waybill_msg("O4")]
        + [kit.order_msg("O5"), kit.payment_msg("O5"), inventory, loose_waybill]
        + [kit.inventory_msg(n) for n in ("O1", "O2", "O3", "O4")],
    )
    matcher.flush()
    matcher.drain()  # delivered: not part of the state
    kit.feed_all(
        matcher,
        [
            kit.payment_msg("O1", amount="1", revision=1),  # a new verdict version
            kit.order_msg("O2", op="cancel", revision=1),  # a tombstone
        ],
    )


def test_restored_state_is_the_same_state(kit, make_matcher):
    matcher = make_matcher(inventory_rules=True)
    _mixed_state(kit, matcher)
    restored = make_matcher(inventory_rules=True)
    restored.restore(matcher.snapshot())
    assert restored.snapshot() == matcher.snapshot()
    assert restored.stats() == matcher.stats()
    later = [
        kit.waybill_msg("O3"),
        kit.payment_msg("O4"),
        kit.order_msg("O2", revision=2),  # back after its cancel
        kit.payment_msg("O5", amount="2", revision=1),
    ]
    for target in (matcher, restored):
        kit.feed_all(target, later)
    expected = _events(matcher)
    assert _events(restored) == expected
    assert {verdict_id for verdict_id, _ in expected} >= {"EBP001/O3/1", "EBP001/O4/1"}
    assert any(v.startswith("EBP001/O5/") for v, _ in expected)  # through the loose waybill


def _held_key(store, key):
    """The tuple `store` holds `key` by (equal to `key`, not always the same object)."""
    return next(held for held in store if held == key)


def _assert_one_tuple_per_order_key(matcher):
    """Every document keyed by or linking to an order with a slot holds the slot's tuple."""
    slots = {key: key for key in matcher._slots}
    assert all(slot.key is key for key, slot in matcher._slots.items())
    assert all(key is slots[key] for key in matcher._order_keys)  # (an order's is its slot's)
    for kind, store in matcher._docs.items():
        for key, entry in store.items():
            if kind == "inventory" and key in slots:
                assert key is slots[key]
            if kind in ("payment", "waybill") and entry.link in slots:
                assert entry.link is slots[entry.link]
    for members in matcher._buyer_orders._members.values():
        for key in (members,) if matcher_module._single(members) else members:
            assert key is slots[key]


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
def test_an_order_key_is_one_tuple_whatever_comes_first(kit, make_matcher, compiled):
    """The order key of an order, its payment, waybill and inventory is one tuple object
    (the slot's), whichever document came first, in the compiled intake and in Python, and
    after a restore."""
    matcher = make_matcher(inventory_rules=True)
    if not compiled:
        matcher._new_upserts = None
    elif matcher._new_upserts is None:
        pytest.skip("the intake extension is not built")
    kit.feed_all(matcher, [kit.order_msg("O1"), kit.payment_msg("O1"), kit.waybill_msg("O1")])
    kit.feed_all(matcher, [kit.payment_msg("O2"), kit.waybill_msg("O2"), kit.order_msg("O2")])
    kit.feed_all(matcher, [kit.inventory_msg("O2"), kit.order_msg("O3", revision=1)])
    for number in ("O1", "O2"):
        key = ("EBP001", number)
        slot_key = _held_key(matcher._slots, key)
        assert _held_key(matcher._order_keys, key) is slot_key
        for kind in ("payment", "waybill"):
            [entry] = [e for e in matcher._docs[kind].values() if e.link == key]
            assert entry.link is slot_key
    assert _held_key(matcher._docs["inventory"], ("EBP001", "O2")) is _held_key(
        matcher._slots, ("EBP001", "O2")
    )
    _assert_one_tuple_per_order_key(matcher)
    restored = make_matcher(inventory_rules=True)
    restored.restore(matcher.snapshot())
    _assert_one_tuple_per_order_key(restored)
    assert restored.snapshot() == matcher.snapshot()


def test_pending_documents_are_held_packed(kit, make_matcher):
    matcher = make_matcher()
    kit.feed_all(matcher, [kit.order_msg("O1"), kit.payment_msg("O1")])
    for store in matcher._docs.values():
        for entry in store.values():
            assert isinstance(entry.rows, bytes)  # no decoded message is kept
    assert isinstance(matcher._slots[("EBP001", "O1")].order_rows, bytes)
    assert matcher._slots[("EBP001", "O1")].payments == ("PAY001", "T-O1")


def test_pending_state_is_not_walked_by_the_garbage_collector(kit, make_matcher):
    """A full collection must not visit every pending document and order: with millions of
    them it would stall the stream for seconds."""
    matcher = make_matcher()
    kit.feed_all(matcher, [kit.order_msg("O1"), kit.payment_msg("O1"), kit.order_msg("O2")])
    entries = [entry for store in matcher._docs.values() for entry in store.values()]
    assert len(entries) == 1  # (the orders' are in their slots)
    assert not any(gc.is_tracked(entry) for entry in entries)
    assert matcher._slots and not any(gc.is_tracked(slot) for slot in matcher._slots.values())
    assert all(slot.order_rows for slot in matcher._slots.values())


def test_first_format_snapshot_is_upgraded(kit, make_matcher):
    current = make_matcher()
    documents = kit.complete_set("O1") + [
        kit.order_msg("O2"),
        kit.payment_msg("O2"),
    ]
    kit.feed_all(current, documents)
    current.flush()
    current.drain()
    state = msgspec.msgpack.decode(current.snapshot(), type=matcher_module._State)
    by_key = {
        (message.key(), message_type(message)): message for message in map(from_mapping, documents)
    }
    first_format = matcher_module._StateV1(
        docs={
            kind: [
                matcher_module._SavedDocV1(
                    d.k1, d.k2, d.revision, by_key[((d.k1, d.k2), kind)] if d.rows else None
                )
                for d in saved
            ]
            for kind, saved in state.docs.items()
        },
        slots=state.slots,
        dirty=state.dirty,
        dirty_buyers=state.dirty_buyers,
        dirty_since=state.dirty_since,
        counters=state.counters,
    )
    upgraded = make_matcher()
    upgraded.restore(msgspec.msgpack.encode(first_format))
    assert upgraded.snapshot() == current.snapshot()
    for target in (current, upgraded):
        kit.feed_all(target, [kit.waybill_msg("O2")])
    assert _events(upgraded) == _events(current) != []


def test_link_index_keeps_one_member_small_and_many_in_a_set():
    index = matcher_module._Index()
    index.add("buyer", ("E", "1"))
    index.add("buyer", ("E", "1"))
    assert index.members("buyer") == (("E", "1"),)
    index.add("buyer", ("E", "2"))
    assert index.members("buyer") == (("E", "1"), ("E", "2"))  # a few: a tuple
    for number in range(3, 3 + matcher_module._Index.LIST_MAX):
        index.add("buyer", ("E", str(number)))
    assert isinstance(index.members("buyer"), set)  # many: a set
    for number in range(3, 3 + matcher_module._Index.LIST_MAX):
        index.discard("buyer", ("E", str(number)))
    assert set(index.members("buyer")) == {("E", "1"), ("E", "2")}
    index.discard("buyer", ("E", "1"))
    index.discard("buyer", ("E", "9"))  # not linked: nothing happens
    assert list(index.members("buyer")) == [("E", "2")]
    index.discard("buyer", ("E", "2"))
    assert index.members("buyer") == ()


@given(
    st.sampled_from([1, 2, 3, 1024]),
    st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.sampled_from([0.0, 1.0, 2.5, 3.0, 7.0, 8.0])),
            st.tuples(st.just("pop"), st.sampled_from([0.0, 2.0, 3.0, 5.0, 9.0, 20.0])),
        ),
        max_size=40,
    ),
)
def test_deadlines_come_due_as_a_heap_of_due_times_gives_them(chunk, operations):
    """The queue of deadlines (chunks of `CHUNK` keys and a tail; a heap only for slots made
    after the clock went back) pops what a heap of (due, key) pops, in the same order, however
    adding and popping interleave across chunks."""

    class Deadlines(matcher_module._Deadlines):
        __slots__ = ()
        CHUNK = chunk

    window = 4.0
    slots: dict = {}
    deadlines = Deadlines(slots, window)
    heap: list = []
    for number, (operation, time) in enumerate(operations):
        if operation == "add":
            key = ("EBP", f"O{number}")
            slots[key] = matcher_module._Slot(time, key)
            deadlines.add(key, time)
            heapq.heappush(heap, (time + window, key))
            continue
        assert deadlines.next_due() == (heap[0][0] if heap else None)
        expected = []
        while heap and heap[0][0] <= time:
            expected.append(heapq.heappop(heap)[1])
        assert deadlines.pop_due(time) == expected
    assert deadlines.next_due() == (heap[0][0] if heap else None)


@given(
    st.lists(
        st.tuples(st.booleans(), st.sampled_from("ab"), st.integers(0, 20)),
        max_size=80,
    )
)
def test_link_index_holds_what_a_dict_of_sets_holds(operations):
    """Single members held bare, a few in a tuple, many in a set: the same members (and a key
    has members exactly when it has some left)."""
    index = matcher_module._Index()
    model: dict = {}
    for adding, key, number in operations:
        member = ("EBP", f"O{number}")
        if adding:
            index.add(key, member)
            model.setdefault(key, set()).add(member)
        else:
            index.discard(key, member)
            model.get(key, set()).discard(member)
        for name in "ab":
            members = index.members(name)
            assert len(members) == len(set(members))
            assert set(members) == model.get(name, set())
            assert (name in index._members) == bool(model.get(name))  # none kept empty


@given(
    st.lists(
        st.tuples(st.integers(-294_000, 294_000), st.integers(-(2**63), 2**63 - 1)),
        min_size=2,
        max_size=20,
    )
)
def test_walk_places_sort_as_year_then_app_time(pairs):
    """One integer per (app year, app time): sorted as the pairs sort, the year given back."""
    places = [matcher_module._walk_place(year, app_time) for year, app_time in pairs]
    assert sorted(range(len(pairs)), key=places.__getitem__) == sorted(
        range(len(pairs)), key=pairs.__getitem__
    )
    assert [place >> matcher_module._PLACE_BITS for place in places] == [y for y, _ in pairs]


_VALUES = {
    pa.string(): st.none() | st.text(max_size=6),
    pa.int64(): st.none() | st.integers(-(2**63), 2**63 - 1),
    pa.timestamp("us", tz="UTC"): st.none() | st.integers(-(2**62), 2**62),
    pa.int32(): st.none() | st.integers(-(2**31), 2**31 - 1),
}


def _by_columns(maker, rows):
    """The table built the plain way: one `pa.array` per column (null where rows do not keep
    the column), then `_row` 1..n."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(maker.types)
    kept = dict(zip(maker.kept_names, columns, strict=True))
    arrays = [
        pa.array(kept.get(field.name, [None] * len(rows)), field.type)
        for field in maker.schema
        if field.name != "_row"
    ]
    arrays.insert(maker.row_at, pa.array(range(1, len(rows) + 1), pa.int64()))
    return pa.Table.from_arrays(arrays, schema=maker.schema)


def _makers():
    """The matcher's row makers, and one of every column of each of their tables."""
    makers = {name: maker for name, maker in matcher_module._ROWS.items()}
    makers |= {f"{name} (every column)": RowMaker(m.table) for name, m in makers.items()}
    return makers


@pytest.mark.parametrize("maker", list(_makers().values()), ids=list(_makers()))
@given(data=st.data())
def test_a_table_built_in_one_conversion_is_the_table_built_by_columns(maker, data):
    """`frame` (one Arrow conversion) gives exactly the table built column by column, the
    dates it derives (when it does) those of each row's app time."""
    end = len(maker.types) - maker.derived
    row = st.tuples(*(_VALUES[type] for type in maker.types[:end]))
    rows = data.draw(st.lists(row, max_size=5))
    expected = _by_columns(maker, [(*r, *_derived(maker, r)) for r in rows])
    assert maker.frame(rows).equals(expected, check_metadata=True)
    names = maker.kept_names[:end]
    given = data.draw(st.sets(st.sampled_from(names), max_size=len(names) - 1))
    columns = {name: [r[names.index(name)] for r in rows] for name in given}
    rest = [tuple(v for name, v in zip(names, r, strict=True) if name not in given) for r in rows]
    assert maker.frame(rest, columns).equals(expected, check_metadata=True)


def _derived(maker, row):
    """The values `maker` derives of a row of its other kept values: an order's dates, made
    by the Python reference from its app time (None: null)."""
    if not maker.derived:
        return ()
    app_time = row[maker.kept_names.index("app_time")]
    return python_china_dates(app_time) if app_time is not None else (None, None)


@contextmanager
def _reading(compiled):
    """Packed rows read by the extension, or (`compiled` False) decoded in Python."""
    if compiled and matcher_module._packed is None:
        pytest.skip("the packed-rows extension is not built")
    saved = matcher_module._packed
    matcher_module._packed = saved if compiled else None
    try:
        yield
    finally:
        matcher_module._packed = saved


def _kept_rows(maker, data, size):
    """Random rows of the columns a table keeps, those apart (its key's, its link's) text as
    a key and a link are (a waybill names a whole order key or none), the values it derives
    derived."""
    end = len(maker.types) - maker.derived
    names = maker.kept_names[:end]
    text = st.text(max_size=6)
    values = [
        text if name in maker.apart else _VALUES[kind]
        for name, kind in zip(names, maker.types[:end], strict=True)
    ]
    rows = data.draw(st.lists(st.tuples(*values), max_size=size))
    if maker.table.name == "waybills":
        link = [names.index(name) for name in matcher_module._LINK_NAMES["waybills"]]
        none = data.draw(st.lists(st.booleans(), min_size=len(rows), max_size=len(rows)))
        rows = [
            tuple(None if no_link and at in link else v for at, v in enumerate(row))
            for row, no_link in zip(rows, none, strict=True)
        ]
    return [(*row, *_derived(maker, row)) for row in rows]


def _split(name, row):
    """A row of every kept column -> (the document's key, in key order; its link, as the
    matcher holds it; the row held)."""
    maker = matcher_module._ROWS[name]
    value = dict(zip(maker.kept_names, row, strict=True))
    key = tuple(value[column] for column in matcher_module._KEY_NAMES[name])
    link = tuple(value[column] for column in matcher_module._LINK_NAMES[name])
    if len(link) == 1:
        link = link[0]  # a buyer
    elif link == (None, None):
        link = None  # a waybill naming no order
    return key, link, tuple(value[column] for column in maker.held_names)


def _packed_orders(data, lines_of):
    """Random order rows, each with random lines (less the order key), as the matcher packs
    them (less their key and link), with their keys and links; and the orders and
    order_items tables built column by column from rows of every kept column."""
    orders, items = matcher_module._ROWS["orders"], matcher_module._ROWS["order_items"]
    heads = _kept_rows(orders, data, 4)
    line_row = st.tuples(*(_VALUES[t] for t in items.types[len(items.apart) :]))
    lines = [data.draw(st.lists(line_row, max_size=lines_of)) for _ in heads]
    pack = matcher_module._Packer()
    keys, links, held = [], [], []
    for head in heads:
        for found, part in zip((keys, links, held), _split("orders", head), strict=True):
            found.append(part)
    packed = [pack((row, rows)) for row, rows in zip(held, lines, strict=True)]
    keyed = [
        (*head[:2], *line)
        for head, order_lines in zip(heads, lines, strict=True)
        for line in order_lines
    ]
    expected = (_by_columns(orders, heads), _by_columns(items, keyed))
    return packed, keys, links, held, expected


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
@pytest.mark.parametrize("name", ["payments", "waybills", "inventories"])
@given(data=st.data())
def test_packed_rows_give_the_table_built_by_columns(name, compiled, data):
    """Packed rows less their key, and the keys, go to the table of the whole rows built
    column by column, whether read in place (src_ext/packed.pyx) or decoded with msgspec and
    converted by `frame`."""
    maker = matcher_module._ROWS[name]
    rows = _kept_rows(maker, data, 5)
    pack = matcher_module._Packer()
    split = [_split(name, row) for row in rows]
    keys, links = [key for key, _, _ in split], [link for _, link, _ in split]
    with _reading(compiled):
        table = matcher_module._table(name, [pack(held) for *_, held in split], keys, links)
    assert matcher_module._arrow_table(table).equals(_by_columns(maker, rows), check_metadata=True)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
@given(data=st.data())
def test_packed_orders_give_the_tables_built_by_columns(compiled, data):
    """Packed orders go to the orders and order_items tables, and give each order's app year
    and time, whether read in place or decoded."""
    packed, keys, links, heads, expected = _packed_orders(data, lines_of=3)
    with _reading(compiled):
        tables = matcher_module._order_tables(packed, keys, links)
        timed = [
            (p, h[matcher_module._APP_TIME])
            for p, h in zip(packed, heads, strict=True)
            if h[matcher_module._APP_TIME] is not None
        ]
        places = matcher_module._walk_places([p for p, _ in timed])
    for table, wanted in zip(tables, expected, strict=True):
        assert matcher_module._arrow_table(table).equals(wanted, check_metadata=True)
    assert places == [(python_china_dates(time)[0], time) for _, time in timed]


@pytest.mark.skipif(matcher_module._packed is None, reason="the extension is not built")
@pytest.mark.parametrize(
    ("packed", "types"),
    [
        ([b"\x92\xa1a"], [pa.string(), pa.string()]),  # ends before its second value
        ([b"\x91\x01"], [pa.string()]),  # an integer where text belongs
        ([b"\x91\xa1a"], [pa.int64()]),  # text where an integer belongs
        ([b"\x91\xce\x80\x00\x00\x00"], [pa.int32()]),  # beyond int32
        ([b"\x92\x01\x02"], [pa.int64()]),  # more values than columns
        ([b"\x91\xcf\x80\x00\x00\x00\x00\x00\x00\x00"], [pa.int64()]),  # beyond int64
    ],
)
def test_packed_rows_that_do_not_fit_their_table_are_refused(packed, types):
    with pytest.raises(ValueError, match="packed row"):
        layout = matcher_module._packed.TableLayout(
            pa.schema([*((f"c{i}", kind) for i, kind in enumerate(types)), ("_row", pa.int64())]),
            len(types),
        )
        matcher_module._packed.table(packed, layout)


@pytest.mark.skipif(matcher_module._packed is None, reason="the extension is not built")
def test_packed_rows_without_a_key_each_are_refused():
    """Rows leave their key and link out: a table needs one key and one link per row (no row
    gets another's)."""
    pack = matcher_module._Packer()
    maker = matcher_module._ROWS["payments"]
    held = [pack(tuple(None for _ in maker.held_names))] * 2
    links = [("E", "O1"), ("E", "O2")]
    with pytest.raises(ValueError, match="not a key per row"):
        matcher_module._table("payments", held, [("P", "T1")], links)
    with pytest.raises(ValueError, match="not a link per row"):
        matcher_module._table("payments", held, [("P", "T1"), ("P", "T2")], links[:1])
    order = pack((tuple(None for _ in matcher_module._ROWS["orders"].held_names), []))
    with pytest.raises(ValueError, match="not a key per order"):
        matcher_module._order_tables([order], [], [])
    with pytest.raises(ValueError, match="not a link per row"):
        matcher_module._order_tables([order], [("E", "O1")], [])


#: App times around China's midnights (2024 +- decades), and far ones Python's dates make.
_CHINA_MIDNIGHT_2024 = 1_704_038_400  # 2024-01-01T00:00+08:00, in seconds
_APP_TIMES = st.one_of(
    st.builds(
        lambda day, offset: (_CHINA_MIDNIGHT_2024 + 86_400 * day) * 10**6 + offset,
        st.integers(-20_000, 3_000),
        st.sampled_from([-1, 0, 1, 999_999]),
    ),
    st.integers(-(2**62), 2**62),
)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
@given(times=st.lists(_APP_TIMES, min_size=1, max_size=6))
def test_order_dates_are_made_from_app_time(compiled, times):
    """Rows do not hold an order's dates: the orders table and walk places make them from its
    app time, as `china_dates` makes them (in C for the usual times when compiled)."""
    held = matcher_module._ROWS["orders"].held_names
    pack = matcher_module._Packer()
    rows = [
        pack((tuple(time if name == "app_time" else None for name in held), [])) for time in times
    ]
    keys = [("E", f"O{number}") for number in range(len(times))]
    with _reading(compiled):
        orders = matcher_module._arrow_table(
            matcher_module._order_tables(rows, keys, ["B"] * len(times))[0]
        )
        places = matcher_module._walk_places(rows)
        one_by_one = [matcher_module._place_of(packed) for packed in rows]
    expected = [python_china_dates(time) for time in times]
    assert orders["_app_year"].to_pylist() == [year for year, _ in expected]
    assert orders["_app_ymd"].to_pylist() == [ymd for _, ymd in expected]
    assert places == [(year, time) for (year, _), time in zip(expected, times, strict=True)]
    assert one_by_one == [matcher_module._walk_place(*place) for place in places]


@pytest.mark.skipif(matcher_module._packed is None, reason="the extension is not built")
@given(data=st.data())
def test_walk_places_step_over_values_of_every_kind(data):
    """The compiled walk place steps over the values before an order's app time (nil, text of
    every length, integers of every width) to the same place as the decoded rows give."""
    maker = matcher_module._ROWS["orders"]
    kinds = dict(zip(maker.kept_names, maker.types, strict=True))
    values = [
        _APP_TIMES
        if name == "app_time"
        else st.none() | _LONG_TEXT
        if pa.types.is_string(kinds[name])
        else _VALUES[kinds[name]]
        for name in maker.held_names
    ]
    rows = data.draw(st.lists(st.tuples(*values), min_size=1, max_size=4))
    pack = matcher_module._Packer()
    packed = [pack((row, [])) for row in rows]
    with _reading(compiled=False):
        wanted = [matcher_module._place_of(order) for order in packed]
    assert [matcher_module._place_of(order) for order in packed] == wanted


# --- the compiled tables handed to Arrow consumers (src_ext/packed.pyx `Table`) ---------------

_compiled = pytest.mark.skipif(
    matcher_module._packed is None, reason="the packed-rows extension is not built"
)


def _kernel_values(table, names):
    """The values the kernel reads of `names` (imported as a micro-batch's tables are)."""
    kernel = pytest.importorskip("matchcore._native.kernel")
    return {name: column.to_pylist() for name, column in kernel.import_table(table, names).items()}


def _integers(column):
    """An integer or timestamp column's values as integers (a timestamp's as `_walks` reads it
    in Python)."""
    if pa.types.is_timestamp(column.type):
        return matcher_module._microseconds(column)
    return column.to_pylist()


def _same_tables(table, wanted):
    """`table` (compiled) reads as the pyarrow table `wanted`: through pyarrow, Polars and the
    kernel, its integers directly, and again after the kernel moved its columns out."""
    names = wanted.column_names
    assert (table.num_rows, table.column_names) == (wanted.num_rows, names)
    assert _kernel_values(table, names) == _kernel_values(wanted, names)
    assert pa.table(table).equals(wanted, check_metadata=True)
    assert pl.DataFrame(table).equals(pl.from_arrow(wanted))
    for name, kind in zip(names, wanted.schema.types, strict=True):
        if not pa.types.is_string(kind):
            assert table.integers(name) == _integers(wanted.column(name))


@_compiled
@pytest.mark.parametrize("name", ["payments", "waybills", "inventories"])
@given(data=st.data())
def test_compiled_tables_read_as_the_pyarrow_tables_of_their_rows(name, data):
    """Any reader gets from a compiled table the values of the pyarrow table of the same rows
    (the Python path's): nulls, no rows, text of several UTF-8 bytes, int64's extremes."""
    maker = matcher_module._ROWS[name]
    rows = _kept_rows(maker, data, 5)
    split = [_split(name, row) for row in rows]
    keys, links = [key for key, _, _ in split], [link for _, link, _ in split]
    packed = [matcher_module._Packer()(held) for *_, held in split]
    table = matcher_module._table(name, packed, keys, links)
    with _reading(compiled=False):
        wanted = matcher_module._table(name, packed, keys, links)
    _same_tables(table, wanted)


@_compiled
@given(data=st.data())
def test_compiled_order_tables_read_as_the_pyarrow_tables_of_their_rows(data):
    packed, keys, links, _, _ = _packed_orders(data, lines_of=3)
    tables = matcher_module._order_tables(packed, keys, links)
    with _reading(compiled=False):
        wanted = matcher_module._order_tables(packed, keys, links)
    for table, expected in zip(tables, wanted, strict=True):
        _same_tables(table, expected)


#: A table of every kind of packed value, a key and a link part, and a field none fills.
_WIDE = pa.schema(
    [
        ("key", pa.string()),
        ("text", pa.string()),
        ("count", pa.int32()),
        ("amount", pa.int64()),
        ("time", pa.timestamp("us", tz="UTC")),
        ("link", pa.string()),
        ("absent", pa.int64()),
        ("_row", pa.int64()),
    ]
)
#: Text of every length the small copies handle differently (0 to 40 bytes and more), some of
#: several UTF-8 bytes a character.
_LONG_TEXT = st.text(max_size=12) | st.text(min_size=12, max_size=45) | st.just("身份证" * 11)


@_compiled
@given(data=st.data())
def test_a_compiled_table_of_many_rows_reads_as_the_pyarrow_table_of_its_rows(data):
    """Rows enough for validity bitmaps of several bytes (a column's first null anywhere, or
    none), text of every length in packed values, keys and links; keys given as tuples or
    lists."""
    packed_module = matcher_module._packed
    kinds = [_WIDE.field(name).type for name in ("text", "count", "amount", "time")]
    values = [st.none() | _LONG_TEXT, *(_VALUES[kind] for kind in kinds[1:])]
    rows = data.draw(st.lists(st.tuples(*values), max_size=40))
    apart = st.lists(st.none() | _LONG_TEXT, min_size=len(rows), max_size=len(rows))
    keys, links = data.draw(apart), data.draw(apart)
    layout = packed_module.TableLayout(_WIDE, 7, [1, 2, 3, 4], key_at=[0], link_at=[5])
    pack = matcher_module._Packer()
    packed = [pack(row) for row in rows]
    columns = [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * 4
    wanted = pa.Table.from_arrays(
        [
            pa.array(keys, pa.string()),
            *(pa.array(column, kind) for column, kind in zip(columns, kinds, strict=True)),
            pa.array(links, pa.string()),
            pa.nulls(len(rows), pa.int64()),
            pa.array(range(1, len(rows) + 1), pa.int64()),
        ],
        schema=_WIDE,
    )
    _same_tables(packed_module.table(packed, layout, [(key,) for key in keys], links), wanted)
    _same_tables(packed_module.table(packed, layout, [[key] for key in keys], links), wanted)


@_compiled
def test_key_and_link_parts_that_are_not_text_are_refused():
    layout = matcher_module._packed.TableLayout(_WIDE, 7, [1, 2, 3, 4], key_at=[0], link_at=[5])
    packed = [matcher_module._Packer()(("x", 1, 2, 3))]
    with pytest.raises(TypeError, match="a key or link part is text, not int"):
        matcher_module._packed.table(packed, layout, [(1,)], ["L"])
    with pytest.raises(TypeError, match="a key or link part is text, not bytes"):
        matcher_module._packed.table(packed, layout, [("K",)], [b"L"])


_LEDGER_ROWS = st.lists(
    st.tuples(
        st.none() | st.text(max_size=4) | st.just("身份证é"),
        st.none() | st.integers(-(2**63), 2**63 - 1) | st.sampled_from([-(2**63), 2**63 - 1]),
        st.none() | st.integers(-(2**63), 2**63 - 1),
    ),
    max_size=4,
)


@_compiled
@given(rows=_LEDGER_ROWS)
def test_a_ledger_from_python_values_reads_as_its_pyarrow_table(rows):
    """A micro-batch's quota ledger, made from Python values (`_batch_ledger`)."""
    columns = [list(values) for values in zip(*rows, strict=True)] if rows else [[], [], []]
    schema = matcher_module._LEDGER_SCHEMA
    table = matcher_module._packed.from_columns(matcher_module._LEDGER_SHAPE, columns)
    wanted = pa.Table.from_arrays(
        [pa.array(values, kind) for values, kind in zip(columns, schema.types, strict=True)],
        schema=schema,
    )
    _same_tables(table, wanted)


@_compiled
def test_python_values_that_do_not_fit_a_compiled_table_are_refused():
    shape, packed = matcher_module._LEDGER_SHAPE, matcher_module._packed
    before = packed.allocated()
    with pytest.raises(ValueError, match="different lengths|not as many"):
        packed.from_columns(shape, [["a"], [1, 2], [3]])
    with pytest.raises(ValueError, match="a list of values per field"):
        packed.from_columns(shape, [["a"], [1]])
    with pytest.raises(OverflowError):
        packed.from_columns(shape, [["a"], [2**63], [0]])
    with pytest.raises(TypeError):
        packed.Table()
    gc.collect()
    assert packed.allocated() == before  # what the refused tables held is freed


@_compiled
def test_a_table_made_without_its_buffers_refuses_to_be_read():
    bare = matcher_module._packed.Table.__new__(matcher_module._packed.Table)
    for read in (lambda: bare.num_rows, lambda: len(bare), bare.__arrow_c_stream__):
        with pytest.raises(ValueError, match="was not made by"):
            read()
    with pytest.raises(ValueError, match="was not made by"):
        bare.integers("year")


def _ledger(rows):
    columns = [list(values) for values in zip(*rows, strict=True)]
    return matcher_module._packed.from_columns(matcher_module._LEDGER_SHAPE, columns)


@_compiled
def test_every_export_of_a_compiled_table_is_released_once():
    """A table's buffers are freed once, when the table and every array exported from it are
    released, whoever lets go last: the kernel (which moves the columns it reads out of the
    batch and releases the rest), pyarrow, Polars, or a capsule nobody consumed."""
    packed = matcher_module._packed
    gc.collect()
    before = packed.allocated()
    rows = [("B1", 2024, 10), (None, 2025, None), ("身份证", -(2**63), 2**63 - 1)]
    table = _ledger(rows)
    assert packed.allocated() == (before[0] + 1, before[1])
    columns = pytest.importorskip("matchcore._native.kernel").import_table(
        table, ["used", "buyer_id_number"]
    )
    table.__arrow_c_stream__()  # a capsule dropped unread
    reader = pa.RecordBatchReader.from_stream(table)  # its schema read, no batch
    assert reader.schema == matcher_module._LEDGER_SCHEMA
    del reader
    arrow, frame = pa.table(table), pl.DataFrame(table)
    assert packed.allocated()[1] == before[1]  # every schema copy released
    del table
    gc.collect()
    assert packed.allocated()[0] == before[0] + 1  # the readers still hold the buffers
    assert arrow.to_pylist() == [dict(zip(arrow.column_names, row, strict=True)) for row in rows]
    assert columns["used"].to_pylist() == [10, None, 2**63 - 1]
    del arrow, frame
    gc.collect()
    assert columns["buyer_id_number"].to_pylist() == ["B1", None, "身份证"]
    del columns
    gc.collect()
    assert packed.allocated() == before
