"""The stream keeps of each document the values of the columns the rules read, and no others
(`_kept_columns` in matchcore/stream/matcher.py): both engines give the same results when the
others are null, the reference engine when they are left out; a value of a column not kept is
still checked as batch checks it; snapshots written while rows held every column restore."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import msgspec
import polars as pl
import pytest

from matchcore import schema
from matchcore.engine import get_engine, kernel_available
from matchcore.engine.base import KERNEL_COLUMNS, CanonicalTables, EngineOutput
from matchcore.exceptions import StateError
from matchcore.generate import generate
from matchcore.normalise import load_tables
from matchcore.rules import RuleSettings
from matchcore.stream import matcher as matcher_module
from matchcore.stream.canonical import RowMaker, row_values
from matchcore.stream.messages import from_mapping, message_type

DOCUMENT_TABLES = ("orders", "order_items", "payments", "waybills", "inventories")

#: The columns of each document table that no rule reads.
UNREAD = {
    "orders": {"buyer_telephone", "consignee_address", "ebp_name", "ebc_name", "note"},
    "order_items": {"item_name", "unit", "country", "bar_code"},
    "payments": {"payer_id_type"},
    "waybills": {"freight", "insured_fee", "weight", "consignee_address"},
    "inventories": {"trade_mode", "app_time"},
}


def _kernel_columns() -> Any:
    """The compiled kernel's own column list when it is built, else the declared one."""
    try:
        from matchcore._native import kernel
    except ImportError:
        return KERNEL_COLUMNS
    return kernel.COLUMNS


@pytest.mark.parametrize("name", DOCUMENT_TABLES)
def test_rows_keep_what_the_kernel_reads_and_the_key_and_nothing_else(name):
    kept = matcher_module._ROWS[name].kept_names
    read = {column for table, column in _kernel_columns() if table == name}
    assert set(kept) == read | set(schema.TABLES[name].key)
    assert set(row_values(schema.TABLES[name])) == set(kept) | UNREAD[name]
    assert not set(kept) & UNREAD[name]


# --- the engines read no column the stream drops ----------------------------------------------


@pytest.fixture(scope="module")
def generated() -> CanonicalTables:
    """Canonical tables of generated documents (every kind of anomaly), every column filled."""
    tables = load_tables(generate(300, seed=11, anomaly_rate=0.4).tables).tables
    filled = {name: _filled(getattr(tables, name), UNREAD[name]) for name in DOCUMENT_TABLES}
    return replace(tables, **filled)


#: A value of each dtype of the columns not kept.
_FILL = {pl.String: "x", pl.Int64: 7, pl.Datetime: datetime(2025, 1, 1, tzinfo=UTC)}


def _filled(frame: pl.DataFrame, columns: set[str]) -> pl.DataFrame:
    """`frame` with a value wherever these columns are null."""
    return frame.with_columns(
        pl.col(c).fill_null(pl.lit(_FILL[frame.schema[c].base_type()], frame.schema[c]))
        for c in columns
    )


def _without_unread(tables: CanonicalTables, *, drop: bool) -> CanonicalTables:
    """The document tables with the columns the stream does not keep null, or left out."""
    narrowed = {}
    for name in DOCUMENT_TABLES:
        frame = getattr(tables, name)
        kept = set(matcher_module._ROWS[name].kept_names) | {schema.ROW}
        unread = [c for c in frame.columns if c not in kept]
        narrowed[name] = (
            frame.drop(unread)
            if drop
            else frame.with_columns(pl.lit(None, frame.schema[c]).alias(c) for c in unread)
        )
    return replace(tables, **narrowed)


def _assert_same(actual: EngineOutput, expected: EngineOutput) -> None:
    assert actual.orders.equals(expected.orders)
    assert actual.subjects.equals(expected.subjects)
    assert actual.orphans.sort(pl.all()).equals(expected.orphans.sort(pl.all()))
    assert actual.ledger.equals(expected.ledger)


ENGINES = [
    "reference",
    pytest.param(
        "kernel",
        marks=pytest.mark.skipif(not kernel_available(), reason="the kernel is not built"),
    ),
]


@pytest.mark.parametrize("engine", ENGINES)
def test_engines_give_the_same_results_without_the_columns_not_kept(generated, engine):
    for name, columns in UNREAD.items():  # the data would not tell otherwise
        frame = getattr(generated, name)
        assert frame.height and not any(frame[c].null_count() for c in columns)
    settings = RuleSettings()
    chosen = get_engine(engine)
    expected = chosen.run(generated, settings)
    assert expected.orders["reason_mask"].n_unique() > 5  # many rules fail somewhere
    _assert_same(chosen.run(_without_unread(generated, drop=False), settings), expected)
    if engine == "reference":  # it reads columns by name: one it read would be missing
        _assert_same(chosen.run(_without_unread(generated, drop=True), settings), expected)


# --- a value of a column not kept is still checked ----------------------------------------------

_AMOUNT = "invalid amount (negative, malformed or more than 4 decimals)"


@pytest.mark.parametrize(
    ("kind", "field", "value", "reason"),
    [
        ("waybill", "weight", "1.2.3", f"{_AMOUNT} at `$.weight`"),
        ("waybill", "insured_fee", "0.00001", f"{_AMOUNT} at `$.insured_fee`"),
        ("inventory", "trade_mode", "9999", "inventory: field trade_mode: not one of 9610, 1210"),
        ("inventory", "app_time", "yesterday", "inventory: field app_time is not a valid time"),
        ("inventory", "app_time", None, "inventory: required field app_time is missing"),
    ],
)
def test_a_bad_value_of_a_column_not_kept_is_dead_lettered(
    kit, make_matcher, kind, field, value, reason
):
    messages = {"waybill": kit.waybill_msg("O1"), "inventory": kit.inventory_msg("O1")}
    message = {**messages[kind], field: value}
    if value is None:
        del message[field]
    matcher = make_matcher(inventory_rules=True)
    [result] = kit.feed_all(matcher, [message])
    assert (result.status, result.reason) == ("dead", reason)
    assert matcher.stats()["dead_lettered"] == 1


# --- snapshots of rows of every column ----------------------------------------------------------


def _documents(kit) -> list[dict[str, Any]]:
    """Documents with values in columns not kept: evaluated, pending, cancelled, loose."""
    order = {
        **kit.order_msg("O2"),
        "buyer_telephone": "13800001111",
        "consignee_address": "1 Road",
        "note": "gift",
    }
    order["items"] = [
        {**order["items"][0], "item_name": "Cream", "unit": "035", "country": "JPN"},
        {**order["items"][0], "gnum": 2, "item_no": "SKU2", "qty": "0", "total_price": "0"},
    ]
    loose = {**kit.waybill_msg("O4"), "logistics_no": "L-LOOSE", "weight": "1.5"}
    del loose["order_no"], loose["ebp_code"]  # linked through its inventory
    half = {**kit.waybill_msg("O4"), "logistics_no": "L-HALF"}
    del half["order_no"]  # half an order key: linked to nothing
    return [
        *kit.complete_set("O1"),
        order,
        {**kit.payment_msg("O2"), "payer_id_type": "1"},
        {**kit.waybill_msg("O3"), "freight": "5", "insured_fee": "1", "weight": "0.5"},
        kit.order_msg("O3"),
        kit.order_msg("O4"),
        {**kit.inventory_msg("O4"), "logistics_no": "L-LOOSE"},
        loose,
        half,
        kit.payment_msg("O4"),
        kit.payment_msg("O1", op="cancel", revision=1),
    ]


def _makers(*, every: bool, keyed: bool) -> dict[str, RowMaker]:
    """Row makers as the stream had them: of every column or of the kept ones (`every`),
    their rows holding their document's link and (unless `keyed`) key; an order line's row
    never held its order's key."""
    makers = {}
    for name, maker in matcher_module._ROWS.items():
        apart = matcher_module._KEY_NAMES[name] if keyed or maker.given else ()
        kept = None if every else matcher_module._kept_columns(maker.table)
        makers[name] = RowMaker(maker.table, kept=kept, apart=apart, given=maker.given)
    return makers


def _every_column_snapshot(matcher, documents, monkeypatch) -> bytes:
    """`matcher`'s snapshot as the stream wrote it while rows held every column."""
    makers = _makers(every=True, keyed=False)
    return _older_snapshot(matcher, documents, monkeypatch, makers, columns=False)


def _keyed_snapshot(matcher, documents, monkeypatch) -> bytes:
    """`matcher`'s snapshot as the stream wrote it while rows held their document's key."""
    makers = _makers(every=False, keyed=False)
    return _older_snapshot(matcher, documents, monkeypatch, makers, columns=True)


def _linked_snapshot(matcher, documents, monkeypatch) -> bytes:
    """`matcher`'s snapshot as the stream wrote it while rows held their document's link."""
    makers = _makers(every=False, keyed=True)
    return _older_snapshot(matcher, documents, monkeypatch, makers, columns=True)


def _older_snapshot(matcher, documents, monkeypatch, makers, *, columns: bool) -> bytes:
    """`matcher`'s snapshot with rows made by `makers`: naming their columns (`columns`, as
    the stream named them then: the columns its rows held, an order line's with its order's
    key), or not (as before snapshots named them)."""
    state = msgspec.msgpack.decode(matcher.snapshot(), type=matcher_module._State)
    every = makers
    monkeypatch.setattr(matcher_module, "_ROWS", every)  # `_order_rows` makes rows of these
    convert = {
        "order": matcher_module._order_rows,
        "payment": every["payments"].row,
        "waybill": every["waybills"].row,
        "inventory": every["inventories"].row,
    }
    messages = {}
    for message in map(from_mapping, documents):
        messages[message.key(), message_type(message)] = message
    pack = matcher_module._Packer()
    for kind, saved in state.docs.items():
        for doc in saved:
            if doc.rows:
                doc.rows = pack(convert[kind](messages[(doc.k1, doc.k2), kind]))
    fields = msgspec.structs.asdict(state)
    if columns:
        fields["columns"] = {name: maker.held_names for name, maker in every.items()}
        fields["columns"]["order_items"] = every["order_items"].kept_names
    else:
        del fields["columns"]  # not in snapshots of those days
    return msgspec.msgpack.encode(fields)


def _rows_size(snapshot: bytes) -> int:
    """The bytes of the packed rows in a snapshot."""
    state = msgspec.msgpack.decode(snapshot, type=matcher_module._State)
    return sum(len(doc.rows or b"") for saved in state.docs.values() for doc in saved)


def _events(matcher) -> list[Any]:
    matcher.flush()
    return [(event.verdict_id, event.content()) for event in matcher.drain()]


@pytest.mark.parametrize("older", [_every_column_snapshot, _keyed_snapshot, _linked_snapshot])
def test_a_snapshot_of_rows_of_more_columns_restores(kit, make_matcher, monkeypatch, older):
    """Rows of every column, of the kept columns with the document's key (before rows left
    their key out), or with its link (before rows left that out) restore to the same state,
    which gives the same verdicts."""
    documents = _documents(kit)
    current = make_matcher(inventory_rules=True)
    kit.feed_all(current, documents[:3])
    current.flush()
    kit.feed_all(current, documents[3:])
    old = older(current, documents, monkeypatch)
    monkeypatch.undo()
    assert _rows_size(old) > _rows_size(current.snapshot())  # the values not kept were in it
    restored = make_matcher(inventory_rules=True)
    restored.restore(old)
    assert restored.snapshot() == current.snapshot()
    later = [kit.waybill_msg("O2"), kit.payment_msg("O3"), kit.order_msg("O1", revision=2)]
    later += [kit.inventory_msg("O2"), kit.inventory_msg("O3")]
    for target in (current, restored):
        kit.feed_all(target, later)
    expected = _events(current)
    assert _events(restored) == expected
    assert {v for v, _ in expected} >= {"EBP001/O2/1", "EBP001/O3/1", "EBP001/O4/1"}


def test_rows_leave_out_their_documents_key_and_link(kit, make_matcher):
    """A document's packed rows hold no value of its own key's columns (the key is the dict's)
    nor of its link's (the entry's), an order's lines none of the order key's, and the tables
    built for the engine have them back."""
    matcher = make_matcher(inventory_rules=True)
    kit.feed_all(matcher, _documents(kit))
    for kind, store in {"order": matcher._order_versions(), **matcher._docs}.items():
        table = matcher_module._KEPT_AS[kind][0]
        held = matcher_module._ROWS[table].held_names
        assert not set(held) & {*schema.TABLES[table].key, *matcher_module._LINK_NAMES[table]}
        for key, entry in store.items():
            if entry.rows:
                rows = msgspec.msgpack.decode(entry.rows)
                head = rows[0] if kind == "order" else rows
                assert len(head) == len(held)
                link = entry.link if isinstance(entry.link, tuple) else (entry.link,)
                assert not {*key, *link} & {value for value in head if isinstance(value, str)}
                for line in rows[1] if kind == "order" else ():
                    assert not set(key) & {value for value in line if isinstance(value, str)}
                    assert len(line) == len(matcher_module._ROWS["order_items"].held_names)
    linked = {key: matcher._linked(key) for key in matcher._slots}
    batch = matcher._batch_for(linked, {})
    arrow = matcher_module._arrow_table
    orders = arrow(batch.tables.orders)
    live = [key for key in linked if linked[key].order is not None]
    assert (
        list(zip(orders["ebp_code"].to_pylist(), orders["order_no"].to_pylist(), strict=True))
        == live
    )
    buyers = [matcher._slots[key].order_link for key in live]
    assert orders["buyer_id_number"].to_pylist() == buyers
    items = arrow(batch.tables.order_items)
    item_keys = zip(items["ebp_code"].to_pylist(), items["order_no"].to_pylist(), strict=True)
    assert set(item_keys) <= set(linked)
    payments = arrow(batch.tables.payments)
    linked_payments = {pay for documents in linked.values() for pay in documents.payments}
    assert linked_payments
    assert (
        set(
            zip(
                payments["pay_code"].to_pylist(),
                payments["pay_transaction_id"].to_pylist(),
                strict=True,
            )
        )
        == linked_payments
    )
    pay_keys, links = (
        zip(payments[a].to_pylist(), payments[b].to_pylist(), strict=True)
        for a, b in (("pay_code", "pay_transaction_id"), ("ebp_code", "order_no"))
    )
    assert list(links) == [matcher._docs["payment"][key].link for key in pay_keys]


def _snapshot_state(kit, make_matcher, monkeypatch, snapshot):
    """The decoded state of `snapshot(matcher, documents, monkeypatch)` after the documents."""
    documents = _documents(kit)
    current = make_matcher(inventory_rules=True)
    kit.feed_all(current, documents)
    state = msgspec.msgpack.decode(
        snapshot(current, documents, monkeypatch), type=matcher_module._State
    )
    monkeypatch.undo()
    return state


def test_a_snapshot_whose_rows_hold_another_key_is_refused(kit, make_matcher, monkeypatch):
    state = _snapshot_state(kit, make_matcher, monkeypatch, _keyed_snapshot)
    [doc] = [d for d in state.docs["payment"] if d.rows][:1]
    doc.k2 = "T-ELSE"
    with pytest.raises(StateError, match="a payment's rows hold another key"):
        make_matcher(inventory_rules=True).restore(msgspec.msgpack.encode(state))


@pytest.mark.parametrize(("kind", "link"), [("order", "X99"), ("payment", ["EBP001", "O-ELSE"])])
def test_a_snapshot_whose_rows_hold_another_link_is_refused(
    kit, make_matcher, monkeypatch, kind, link
):
    state = _snapshot_state(kit, make_matcher, monkeypatch, _linked_snapshot)
    next(doc for doc in state.docs[kind] if doc.rows).link = link
    with pytest.raises(StateError, match=f"a {kind}'s rows hold another link"):
        make_matcher(inventory_rules=True).restore(msgspec.msgpack.encode(state))


def test_a_snapshot_without_a_column_the_rules_read_is_refused(kit, make_matcher):
    current = make_matcher()
    kit.feed_all(current, kit.complete_set("O1"))
    state = msgspec.msgpack.decode(current.snapshot(), type=matcher_module._State)
    assert state.columns is not None
    state.columns["payments"].remove("amount_paid")
    with pytest.raises(StateError, match="payments rows lack amount_paid"):
        make_matcher().restore(msgspec.msgpack.encode(state))
