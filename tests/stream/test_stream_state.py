"""Durable state: group-committed log, recovery equal to an uninterrupted run, torn tails,
damaged files, snapshots (SPEC §5)."""

from __future__ import annotations

import errno
import gc
import os
import weakref
from functools import partial

import msgspec
import pytest

from matchcore.exceptions import StateError, StateLogError
from matchcore.rules import RuleSettings
from matchcore.stream import state
from matchcore.stream.state import (
    DEAD,
    FLUSH,
    INPUT,
    VERDICT,
    DurableMatcher,
    encode_record,
    read_records,
)

from .conftest import failing_fsync


def _durable(make_matcher, state_dir, delivered, settings=None, **options):
    options.setdefault("sync", True)
    processor = DurableMatcher(
        make_matcher(settings=settings), state_dir, deliver=delivered.extend, **options
    )
    processor.recover()
    return processor


def _encoded(kit, messages):
    return [msgspec.json.encode(m) for m in messages]


def test_records_round_trip_and_stop_at_a_torn_tail():
    data = encode_record(INPUT, b"abc") + encode_record(FLUSH, b"x")
    assert read_records(data) == ([(INPUT, b"abc"), (FLUSH, b"x")], len(data))
    torn = data + encode_record(DEAD, b"12345")[:-2]
    assert read_records(torn) == ([(INPUT, b"abc"), (FLUSH, b"x")], len(data))
    flipped = bytearray(data)
    flipped[-1] ^= 0xFF  # a corrupt last record is cut like a torn one
    assert read_records(bytes(flipped))[1] == len(encode_record(INPUT, b"abc"))


def test_verdicts_are_delivered_only_after_the_commit(kit, make_matcher, tmp_path):
    delivered = []
    processor = _durable(make_matcher, tmp_path, delivered, commit_interval=3600)
    for position, raw in enumerate(_encoded(kit, kit.complete_set("O1")), start=1):
        processor.offer(raw, position)
    processor.matcher.flush()
    assert delivered == []  # flushed but not yet durable
    processor.commit()
    assert [e.verdict for e in delivered] == ["pass"]
    assert processor.committed_position == 3


def _logged_verdicts(state_dir):
    """VERDICT records in the state directory's log segments."""
    return sum(
        kind == VERDICT
        for path in sorted(state_dir.glob("log-*.bin"))
        for kind, _ in read_records(path.read_bytes())[0]
    )


def test_a_poll_commits_at_once_when_verdicts_wait(kit, make_matcher, tmp_path, monkeypatch):
    """Not at the next commit by time or count; and each delivery comes after an fsync that
    covers its verdicts."""
    synced = [0]  # VERDICT records in the log at each fsync
    real_fsync = os.fsync

    def fsync(fd):
        real_fsync(fd)
        synced.append(_logged_verdicts(tmp_path))

    monkeypatch.setattr(os, "fsync", fsync)
    deliveries = []  # (verdicts delivered so far, verdicts synced before the delivery)
    delivered = []

    def deliver(events):
        delivered.extend(events)
        deliveries.append((len(delivered), synced[-1]))

    processor = _durable(make_matcher, tmp_path, [], commit_interval=3600, commit_records=10**6)
    processor.deliver = deliver
    messages = _encoded(kit, kit.complete_set("O1") + kit.complete_set("O2")[:2])
    for position, raw in enumerate(messages, start=1):
        processor.offer(raw, position)
    commits = processor.matcher.counters.get("commits")
    processor.poll()  # no batch due yet: nothing to deliver, and no commit due
    assert processor.matcher.counters.get("commits") == commits
    processor.matcher.flush()
    processor.poll()
    assert [(e.order_no, e.verdict) for e in delivered] == [("O1", "pass")]
    assert processor.committed_position == 5  # the inputs the commit covered
    assert all(count <= durable for count, durable in deliveries)


class _Node:
    """An object that can be in a reference cycle and be watched through a weak reference."""

    me: _Node | None = None


@pytest.fixture()
def frozen_host():
    """Objects the host process froze (`gc.freeze`, as a pre-fork server does), unfrozen after
    the test."""
    gc.freeze()
    yield gc.get_freeze_count()
    gc.unfreeze()


@pytest.mark.parametrize("durable", [True, False], ids=["durable", "in-memory"])
def test_the_process_collector_is_left_as_it_is(kit, make_matcher, tmp_path, frozen_host, durable):
    """Commits and snapshots neither freeze the process's objects (a cycle the host drops is
    collected as usual) nor unfreeze what the host froze."""
    processor = _durable(
        make_matcher, tmp_path if durable else None, [], snapshot_records=2, sync=False
    )
    node = _Node()
    node.me = node  # a cycle only the cyclic collector can free
    watched = weakref.ref(node)
    for position, order_no in enumerate(("O1", "O2", "O3"), start=1):
        processor.offer(msgspec.json.encode(kit.order_msg(order_no)), position)
        processor.commit()
        processor.poll()  # a snapshot is due after two records
    del node
    # (frozen objects can only go, freed, not come: a freeze would add the matcher's)
    assert 0 < gc.get_freeze_count() <= frozen_host
    gc.collect()
    assert watched() is None
    processor.close()
    assert 0 < gc.get_freeze_count() <= frozen_host


@pytest.mark.parametrize("durable", [True, False], ids=["durable", "in-memory"])
def test_a_dropped_matcher_is_freed_without_the_cyclic_collector(
    kit, make_matcher, tmp_path, durable
):
    """Neither the flush glue nor the log's flush listener holds the matcher or its durable
    processor back: dropped, they and the state go at once (a cycle would leave them, with
    every pending order, to the next full collection)."""
    processor = _durable(make_matcher, tmp_path if durable else None, [], sync=False)
    messages = kit.complete_set("O1") + kit.complete_set("O2")[:2]
    processor.offer_many(_encoded(kit, messages), range(1, len(messages) + 1))
    processor.close()
    held = weakref.ref(processor), weakref.ref(processor.matcher)
    enabled = gc.isenabled()
    gc.disable()
    try:
        del processor
        assert [ref() for ref in held] == [None, None]
    finally:
        if enabled:
            gc.enable()


def test_a_matcher_outliving_its_durable_processor_still_flushes(kit, make_matcher, tmp_path):
    """The processor's flush listener does not hold it: once it is dropped, the matcher it
    wrapped flushes and gives verdicts as a plain one (no log left to tell)."""
    matcher = _durable(make_matcher, tmp_path, [], sync=False).matcher
    for raw in _encoded(kit, kit.complete_set("O1")):
        matcher.feed(raw)
    matcher.flush()
    assert [event.verdict for event in matcher.drain()] == ["pass"]


def test_recovery_replays_the_log_to_the_same_state(kit, make_matcher, tmp_path):
    delivered = []
    processor = _durable(make_matcher, tmp_path, delivered)
    messages = kit.complete_set("O1") + kit.complete_set("O2")[:2]
    for position, raw in enumerate(_encoded(kit, messages), start=1):
        processor.offer(raw, position)
    processor.matcher.flush()
    processor.poll()
    processor.commit()  # then the process dies: no close, no snapshot
    first_run = list(delivered)

    redelivered = []
    restarted = _durable(make_matcher, tmp_path, redelivered)
    assert restarted.committed_position == 5
    assert [e.verdict_id for e in redelivered] == [e.verdict_id for e in first_run]
    assert restarted.matcher.stats()["pending"] == 1
    restarted.offer(msgspec.json.encode(kit.waybill_msg("O2")), 6)
    restarted.matcher.flush()
    restarted.commit()
    assert [e.verdict_id for e in redelivered][-1] == "EBP001/O2/1"


def test_torn_tail_is_cut_and_reported(kit, make_matcher, tmp_path):
    delivered = []
    processor = _durable(make_matcher, tmp_path, delivered)
    for position, raw in enumerate(_encoded(kit, kit.complete_set("O1")), start=1):
        processor.offer(raw, position)
    processor.commit()
    [log] = sorted(tmp_path.glob("log-*.bin"))
    good_size = log.stat().st_size
    with open(log, "ab") as handle:  # a record whose write was interrupted
        handle.write(encode_record(INPUT, b"x" * 100)[:37])
    restarted = DurableMatcher(make_matcher(), tmp_path, deliver=lambda events: None)
    report = restarted.recover()
    assert report.torn_bytes == 37 and log.stat().st_size == good_size
    assert report.position == 3 and report.replayed_records == 3
    assert any("torn tail" in note for note in report.notes)


def test_snapshot_then_recovery_uses_it(kit, make_matcher, tmp_path):
    delivered = []
    processor = _durable(make_matcher, tmp_path, delivered)
    for position, raw in enumerate(_encoded(kit, kit.complete_set("O1")), start=1):
        processor.offer(raw, position)
    processor.close()  # flush, commit, snapshot
    assert [p.name for p in tmp_path.glob("snapshot-*.bin")] == ["snapshot-00000001.bin"]
    restarted = DurableMatcher(make_matcher(), tmp_path, deliver=lambda events: None)
    report = restarted.recover()
    assert (report.snapshot_segment, report.replayed_records, report.position) == (1, 0, 3)
    assert restarted.matcher.stats()["emitted_pass"] == 1


def _names(directory):
    return sorted(p.name for p in directory.glob("*.bin"))


def test_background_snapshot_lets_intake_go_on(kit, make_matcher, tmp_path):
    processor = _durable(make_matcher, tmp_path, [])
    messages = _encoded(kit, kit.complete_set("O1") + kit.complete_set("O2"))
    for position, raw in enumerate(messages[:3], start=1):
        processor.offer(raw, position)
    processor.snapshot(background=True)
    for position, raw in enumerate(messages[3:], start=4):  # while the child writes
        processor.offer(raw, position)
    processor.matcher.flush()
    processor.commit()
    processor.wait_for_snapshot()
    assert _names(tmp_path) == ["log-00000001.bin", "snapshot-00000001.bin"]
    assert processor.matcher.stats()["snapshots"] == 1
    # Then the process dies: recovery = the snapshot + the records logged after it.
    restarted = DurableMatcher(make_matcher(), tmp_path, deliver=lambda events: None)
    report = restarted.recover()
    assert (report.snapshot_segment, report.position) == (1, 6)
    counted_by_the_process = {"commits", "snapshots"}  # not replayed (as without a fork)
    assert {
        k: v for k, v in restarted.matcher.stats().items() if k not in counted_by_the_process
    } == {k: v for k, v in processor.matcher.stats().items() if k not in counted_by_the_process}
    assert restarted.matcher.stats()["emitted_pass"] == 2


def test_failed_background_snapshot_keeps_the_older_state(kit, make_matcher, tmp_path):
    processor = _durable(make_matcher, tmp_path, [])
    for position, raw in enumerate(_encoded(kit, kit.complete_set("O1")), start=1):
        processor.offer(raw, position)
    processor.snapshot()

    def fail(path, segment):
        raise OSError("disk full")

    processor._write_snapshot = fail  # in the forked writer
    processor.offer(msgspec.json.encode(kit.order_msg("O2")), 4)
    processor.snapshot(background=True)
    processor.wait_for_snapshot()
    assert processor.matcher.stats()["snapshot_failures"] == 1
    assert _names(tmp_path) == ["log-00000001.bin", "log-00000002.bin", "snapshot-00000001.bin"]
    restarted = DurableMatcher(make_matcher(), tmp_path, deliver=lambda events: None)
    report = restarted.recover()
    assert (report.snapshot_segment, report.position) == (1, 4)
    assert restarted.matcher.stats()["pending"] == 2  # O1 (never flushed) and O2


def _offer_orders(processor, kit, orders, position):
    """Offer the complete sets of `orders` from `position` on, flush and commit; the next
    position."""
    for raw in _encoded(kit, [m for order in orders for m in kit.complete_set(order)]):
        processor.offer(raw, position)
        position += 1
    processor.matcher.flush()
    processor.commit()
    return position


def _path_of(fd):
    return os.readlink(f"/proc/self/fd/{fd}")


class _TornWrite:
    """A log file whose next write stops part-way, inside its first record, with ENOSPC;
    writes after that one go through (a log that wrote on would show)."""

    def __init__(self, file):
        self.file, self.failed = file, False

    def write(self, data):
        if self.failed:
            return self.file.write(data)
        self.failed = True
        self.file.write(bytes(data)[:7])
        self.file.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self.file, name)


def _fail_once(processor, log, failing, monkeypatch):
    """Make the next write (`failing` "write") or fsync ("fsync") of the processor's log
    fail once; a failed fsync loses the pages it was to sync but 7 bytes of a record."""
    if failing == "write":
        processor._log._file = _TornWrite(processor._log._file)
        return
    real_fsync, good = os.fsync, log.stat().st_size

    def fsync(fd):
        if _path_of(fd) == str(log) and not failed:
            failed.append(fd)
            os.truncate(log, good + 7)
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_fsync(fd)

    failed = []
    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
@pytest.mark.parametrize("failing", ["write", "fsync"])
def test_a_failed_log_write_or_fsync_stops_the_log(
    kit, make_matcher, tmp_path, monkeypatch, failing, compiled
):
    """Fail-stop: after a failed write or fsync every later use raises StateLogError and
    nothing more reaches the log (a record committed after a torn one would be acknowledged,
    then cut by recovery); a restart recovers exactly what was committed before."""
    if not compiled:  # the log queued and offers made in Python
        monkeypatch.setattr(state, "_intake", None)
        monkeypatch.setattr(state, "_offers", None)
    delivered = []
    processor = _durable(
        make_matcher, tmp_path / "state", delivered, commit_interval=3600, commit_records=10**6
    )
    position = _offer_orders(processor, kit, ["O1"], 1)
    [log] = (tmp_path / "state").glob("log-*.bin")
    _fail_once(processor, log, failing, monkeypatch)
    with pytest.raises(StateLogError, match="state log .*log-00000000.bin.* restart"):
        _offer_orders(processor, kit, ["O2"], position)
    assert processor.committed_position == 3
    assert [e.verdict_id for e in delivered] == ["EBP001/O1/1"]
    written, files = log.read_bytes(), sorted((tmp_path / "state").iterdir())
    raw = msgspec.json.encode(kit.order_msg("O3"))
    for later in (
        partial(processor.offer, raw, 7),
        partial(processor.offer_many, [raw], [7]),
        partial(processor.reject, "bad", 7, raw),
        processor.poll,
        processor.commit,
        processor.snapshot,
        processor.close,
    ):
        with pytest.raises(StateLogError, match="restart"):
            later()
    assert processor.committed_position == 3 and len(delivered) == 1
    assert processor.stats()["log_bytes"] > 0
    del processor, later
    gc.collect()  # (the log file's buffer is not written when it goes)
    assert log.read_bytes() == written and sorted((tmp_path / "state").iterdir()) == files

    redelivered = []
    restarted = DurableMatcher(make_matcher(), tmp_path / "state", deliver=redelivered.extend)
    report = restarted.recover()
    assert (report.position, report.torn_bytes) == (3, 7)
    assert [e.verdict_id for e in redelivered] == ["EBP001/O1/1"]
    reference = _durable(make_matcher, tmp_path / "reference", [])
    _offer_orders(reference, kit, ["O1"], 1)
    reference = _durable(make_matcher, tmp_path / "reference", [])  # recovered as well
    assert restarted.matcher.snapshot() == reference.matcher.snapshot()
    _offer_orders(restarted, kit, ["O2"], 4)  # and it goes on
    assert [e.verdict_id for e in redelivered] == ["EBP001/O1/1", "EBP001/O2/1"]


def test_a_snapshot_that_fails_to_be_written_keeps_the_log(
    kit, make_matcher, tmp_path, monkeypatch
):
    """A disk full while a snapshot is written: the snapshot raises, but no part-written file
    is left, the log goes on in its new segment, and recovery has every committed input."""
    processor = _durable(make_matcher, tmp_path, [])
    position = _offer_orders(processor, kit, ["O1"], 1)
    processor.snapshot()
    position = _offer_orders(processor, kit, ["O2"], position)
    failing_fsync(monkeypatch, lambda path: path.endswith(".tmp"), errno.ENOSPC)
    with pytest.raises(OSError, match="No space left") as raised:
        processor.snapshot()
    assert not isinstance(raised.value, StateLogError)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".json") == [
        "log-00000001.bin",
        "log-00000002.bin",
        "snapshot-00000001.bin",
    ]
    _offer_orders(processor, kit, ["O3"], position)
    restarted = DurableMatcher(make_matcher(), tmp_path, deliver=lambda events: None)
    report = restarted.recover()
    assert (report.snapshot_segment, report.position) == (1, 9)
    assert restarted.matcher.stats()["emitted_pass"] == 3


def test_damaged_snapshot_without_older_log_is_a_state_error(kit, make_matcher, tmp_path):
    processor = _durable(make_matcher, tmp_path, [])
    processor.offer(msgspec.json.encode(kit.order_msg("O1")), 1)
    processor.close()
    [snapshot] = tmp_path.glob("snapshot-*.bin")
    data = bytearray(snapshot.read_bytes())
    data[-1] ^= 0xFF
    snapshot.write_bytes(bytes(data))
    with pytest.raises(StateError, match="cannot be recovered"):
        DurableMatcher(make_matcher(), tmp_path).recover()


def test_corrupt_older_segment_is_a_state_error(make_matcher, tmp_path):
    (tmp_path / "log-00000000.bin").write_bytes(encode_record(INPUT, b"x")[:-1] + b"?")
    (tmp_path / "log-00000001.bin").write_bytes(b"")
    with pytest.raises(StateError, match="not the newest"):
        DurableMatcher(make_matcher(), tmp_path).recover()


def test_dead_letters_are_logged_by_position(kit, make_matcher, tmp_path):
    dead = []
    processor = DurableMatcher(
        make_matcher(), tmp_path, on_dead_letter=lambda *args: dead.append(args)
    )
    processor.recover()
    result = processor.offer(b"{broken", 7)
    processor.commit()
    assert result.status == "dead" and dead[0][1:] == (7, b"{broken")
    [log] = tmp_path.glob("log-*.bin")
    records, _ = read_records(log.read_bytes())
    assert [kind for kind, _ in records] == [DEAD]
    assert DurableMatcher(make_matcher(), tmp_path).recover().position == 7


def test_value_the_batch_would_reject_reaches_the_dead_letters(kit, make_matcher, tmp_path):
    dead = []
    processor = DurableMatcher(
        make_matcher(), tmp_path, on_dead_letter=lambda *args: dead.append(args)
    )
    processor.recover()
    raw = msgspec.json.encode(kit.order_msg("O1", app_time="1988-04-17 02:30:00"))
    result = processor.offer(raw, 3)
    processor.close()
    assert result.status == "dead" and dead == [(result.reason, 3, raw)]
    again = DurableMatcher(make_matcher(), tmp_path)
    assert again.recover().position == 3
    assert again.matcher.stats()["dead_lettered"] == 1 and again.matcher.stats()["pending"] == 0


def test_restart_with_other_rules_is_refused_or_reevaluates(kit, make_matcher, tmp_path):
    delivered = []
    processor = _durable(make_matcher, tmp_path, delivered)
    wrong_tax = [
        kit.order_msg("O2", tax="1.00"),
        kit.payment_msg("O2", amount="111.00"),
        kit.waybill_msg("O2"),
    ]
    messages = kit.complete_set("O1") + wrong_tax
    for position, raw in enumerate(_encoded(kit, messages), start=1):
        processor.offer(raw, position)
    processor.matcher.flush()
    processor.commit()  # then the process dies
    assert [(e.order_no, e.verdict, e.reasons) for e in delivered] == [
        ("O1", "pass", ()),
        ("O2", "reject", ("TAX_MISMATCH",)),
    ]

    lenient = RuleSettings.from_overrides({"TAX_MISMATCH": "warn"})
    with pytest.raises(StateError, match="other rules"):
        _durable(make_matcher, tmp_path, [], settings=lenient)

    redelivered = []
    changed = _durable(make_matcher, tmp_path, redelivered, settings=lenient, reevaluate=True)
    # The log replays under the rules it was written with, then only O2's verdict changes.
    assert [(e.verdict_id, e.verdict) for e in redelivered] == [
        ("EBP001/O1/1", "pass"),
        ("EBP001/O2/1", "reject"),
        ("EBP001/O2/2", "pass"),
    ]
    changed.close()
    again: list = []
    _durable(make_matcher, tmp_path, again, settings=lenient)  # the new rules are the state's
    assert again == []


def test_without_a_state_dir_verdicts_are_delivered_as_they_come(kit, make_matcher):
    delivered = []
    processor = DurableMatcher(make_matcher(), None, deliver=delivered.extend, commit_interval=0)
    processor.recover()
    for position, raw in enumerate(_encoded(kit, kit.complete_set("O1")), start=1):
        processor.offer(raw, position)
    processor.matcher.flush()
    processor.poll()
    assert [e.verdict_id for e in delivered] == ["EBP001/O1/1"]  # not only at close


#: Counters that describe the state, not the work done: equal after any crash and restart.
EXACT_ACROSS_RESTARTS = ("accepted", "duplicates", "stale", "dead_lettered", "pending")


def _run_with_kills(make_matcher, state_dir, messages, kills=()):
    """Offer `messages` at positions 1.., flushing and committing after every 4th and taking a
    snapshot after the 10th. After each position in `kills` the process dies (what it did since
    its last commit is lost) and a new one recovers and goes on from where the log ends.
    Returns the stats after a clean close."""
    processor = DurableMatcher(make_matcher(), state_dir)
    position = processor.recover().position or 0
    kills = set(kills)
    while position < len(messages):
        position += 1
        processor.offer(messages[position - 1], position)
        if position % 4 == 0:
            processor.matcher.flush()
            processor.commit()
        if position == 10:
            processor.snapshot()
        if position in kills:
            kills.discard(position)
            processor = DurableMatcher(make_matcher(), state_dir)  # the old one just stops
            position = processor.recover().position or 0
    processor.close()
    return processor.stats()


def test_state_counters_are_exact_across_kills_and_restarts(kit, make_matcher, tmp_path):
    """accepted, duplicates, stale, dead_lettered, pending and emitted_<verdict> equal an
    uninterrupted run's (with the same micro-batches); work counters may differ."""
    buyer = kit.BUYER_IDS[1]
    messages = []
    for number in range(1, 7):  # one buyer-year: the sixth order is over the annual limit
        messages += [
            kit.order_msg(f"O{number}", buyer=buyer, goods="4800", tax="437.71"),
            kit.payment_msg(f"O{number}", amount="5247.71", buyer=buyer),
            kit.waybill_msg(f"O{number}"),
        ]
    # Then O1 turns out paid the wrong amount: a reject, out of the walk, so O6 passes.
    messages += [kit.payment_msg("O1", amount="1", buyer=buyer, revision=1)]
    messages += [kit.payment_msg("O1", buyer=buyer, revision=0)]  # stale
    messages[14:14] = [messages[13]]  # redelivered
    raw = [msgspec.json.encode(m) for m in messages]
    raw[17:17] = [b"{broken"]  # dead-lettered
    whole = _run_with_kills(make_matcher, tmp_path / "whole", raw)
    crashy = _run_with_kills(make_matcher, tmp_path / "crashy", raw, kills=(7, 13, 14, 19, 21))
    exact = [*EXACT_ACROSS_RESTARTS, *(name for name in whole if name.startswith("emitted_"))]
    assert {name: crashy.get(name, 0) for name in exact} == {name: whole[name] for name in exact}
    assert whole["duplicates"] == whole["stale"] == whole["dead_lettered"] == 1
    assert whole["emitted_pass"] > 0 and whole["emitted_reject"] > 0


@pytest.mark.parametrize("size", [0, 1, 255, 256, 65_535, 65_536, 70_000])
@pytest.mark.parametrize("position", [None, 0, 2**40])
def test_a_snapshot_written_in_parts_is_the_packed_snapshot_file(tmp_path, size, position):
    """The matcher's state goes into the file behind a head packed alone (no packed whole
    holds a second copy of it): the bytes are those of the whole `_SnapshotFile` packed, at
    every width of MessagePack's bin length, and read back as written."""
    state_bytes = bytes(range(256)) * (size // 256) + bytes(size % 256)
    parts = state._snapshot_body(7, position, state_bytes)
    whole = msgspec.msgpack.encode(state._SnapshotFile(7, position, state_bytes))
    assert b"".join(parts) == whole
    path = tmp_path / "snapshot.bin"
    state._write_snapshot(path, *parts)
    assert path.read_bytes()[len(state._SNAPSHOT_MAGIC) + state._SNAPSHOT_HEADER.size :] == whole
    assert state._read_snapshot(path) == state._SnapshotFile(7, position, state_bytes)


def test_recover_is_refused_once_recovered_and_after_the_log_stopped(
    tmp_path, make_matcher, monkeypatch
):
    """A DurableMatcher recovers once: a second `recover` would replay the log into a matcher
    that holds it already (and, after the log stopped, inputs the log lost)."""
    durable = DurableMatcher(make_matcher(), tmp_path)
    durable.recover()
    with pytest.raises(StateError, match="called already"):
        durable.recover()
    failing_fsync(monkeypatch, lambda path: True)
    with pytest.raises(StateLogError):
        durable.commit()
    monkeypatch.undo()
    with pytest.raises(StateLogError, match="restart the process"):
        durable.recover()
