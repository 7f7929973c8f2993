"""Durable streaming state: an append-only checksummed log, snapshots, and recovery (SPEC §5).

The log holds what came in (messages with their arrival time and input position), the flush
points (so replay evaluates exactly the same micro-batches) and the verdicts emitted. Records
are group-committed; verdicts are delivered and inputs acknowledged only after the fsync that
covers them. Recovery = newest valid snapshot + replay of the log after it; a torn tail is cut.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import msgspec

from ..exceptions import StateError, StateLogError
from .matcher import (
    ACCEPTED,
    Configuration,
    FeedResult,
    StreamMatcher,
    decode_bytes,
    decode_in_python,
    weakly_bound,
)
from .messages import BadMessage, Message, VerdictEvent, checked_decoder, encode_message

_intake: ModuleType | None
try:
    from .._native import intake as _intake
except ImportError:  # not built: records are made in Python
    _intake = None
_snapshot: ModuleType | None
try:
    from .._native import snapshot as _snapshot
except ImportError:  # not built: verdict records are packed by msgspec
    _snapshot = None

# Record kinds.
INPUT = b"I"  # [arrival, position, raw message bytes]
DEAD = b"D"  # [position]: a dead-lettered message (only its position matters on replay)
FLUSH = b"F"  # [now]: the matcher flushed here
VERDICT = b"V"  # an emitted VerdictEvent

_HEADER = struct.Struct(">II")  # body length, CRC32 of body
_MAX_RECORD = 64 << 20
_SNAPSHOT_MAGIC = b"MCSNAP1\n"
_SNAPSHOT_HEADER = struct.Struct(">IQ")  # CRC32, length
_LOG_PREFIX, _LOG_SUFFIX = "log-", ".bin"
_SNAP_PREFIX, _SNAP_SUFFIX = "snapshot-", ".bin"
_RULES_FILE = "rules.json"  # the Configuration the state was built with

_encoder = msgspec.msgpack.Encoder()
_encode, _encode_into = _encoder.encode, _encoder.encode_into
#: Packs an item into a bytearray (which then holds just it), as msgspec's `encode_into`.
PackInto = Callable[[Any, bytearray], Any]
#: A verdict event packed, its record's bytes: msgspec's, written in C when built
#: (src_ext/snapshot.pyx `StructPacker`: some 1,000 instructions fewer an event).
_pack_event_into: PackInto = (
    _snapshot.StructPacker(VerdictEvent, _encode, _encode_into).pack_into
    if _snapshot is not None
    else _encode_into
)
#: Snapshots are written by a forked child where processes fork (POSIX).
_CAN_FORK = hasattr(os, "fork")
_event_decoder = msgspec.msgpack.Decoder(VerdictEvent)


def encode_record(kind: bytes, payload: bytes) -> bytes:
    """One framed record: length, CRC32, then kind + payload."""
    body = kind + payload
    return _HEADER.pack(len(body), zlib.crc32(body)) + body


def python_input_record(kind: bytes, now: float, position: int | None, raw: bytes) -> bytes:
    """The record of one input: [arrival, position, raw message bytes] (`INPUT`)."""
    return encode_record(kind, _encode((now, position, raw)))


#: The CRC-32 of a snapshot's body: zlib's, compiled (16 bytes a step where the CPU can) when
#: the extension is built; a snapshot is read back with zlib's.
_snapshot_crc: Callable[[bytes, int], int] = _intake.crc32_of if _intake is not None else zlib.crc32

#: `DurableMatcher.offer` of many messages in one compiled loop (src_ext/intake.pyx: `Offers`);
#: None when the extension is not built (`offer_many` then offers them one by one).
_offers: Any = (
    _intake.Offers(
        checked_decoder,
        decode_in_python,
        BadMessage,
        encode_message,
        INPUT,
        python_input_record,
        ACCEPTED,
    )
    if _intake is not None
    else None
)


def read_records(data: bytes) -> tuple[list[tuple[bytes, bytes]], int]:
    """Valid records from the start of `data`, and the offset where validity ends.

    Stops at the first incomplete or corrupt record (a torn tail); the caller decides whether
    that may be cut.
    """
    records: list[tuple[bytes, bytes]] = []
    offset, size = 0, len(data)
    while offset + _HEADER.size <= size:
        length, crc = _HEADER.unpack_from(data, offset)
        start, end = offset + _HEADER.size, offset + _HEADER.size + length
        if length == 0 or length > _MAX_RECORD or end > size:
            break
        body = data[start:end]
        if zlib.crc32(body) != crc:
            break
        records.append((body[:1], body[1:]))
        offset = end
    return records, offset


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _numbered(directory: Path, prefix: str, suffix: str) -> list[tuple[int, Path]]:
    found = []
    for path in directory.glob(f"{prefix}*{suffix}"):
        number = path.name[len(prefix) : -len(suffix)]
        if number.isdigit():
            found.append((int(number), path))
    return sorted(found)


class _SnapshotFile(msgspec.Struct):
    segment: int  # first log segment to replay after loading this snapshot
    position: int | None  # committed input position at the snapshot
    matcher: bytes


@dataclass
class RecoveryReport:
    """What recovery found: snapshot used, records replayed, torn bytes cut, resume position."""

    snapshot_segment: int | None = None
    replayed_records: int = 0
    torn_bytes: int = 0
    torn_segment: int | None = None
    position: int | None = None
    redelivered: int = 0
    notes: list[str] = field(default_factory=list)


class StateLog:
    """Append-only segment files `log-<n>.bin` in the state directory, group-committed.

    Fail-stop: after a write or fsync failed, what reached the disk is unknown (a record may
    be torn); a record committed after it would be acknowledged, then cut by recovery with the
    torn one. So the log stops for good (`failure` says why): nothing more reaches the file
    and every later commit, roll or close raises StateLogError.
    """

    def __init__(self, directory: Path, segment: int, *, sync: bool = True) -> None:
        self.directory = directory
        self.segment = segment
        self.sync = sync
        #: The records waiting for the next commit, framed one after another: written in place
        #: by the compiled intake (`LogBuffer`) when it is built (the caller counts those in
        #: `records_pending`).
        self.queue: Any = _intake.LogBuffer() if _intake is not None else bytearray()
        self._file = open(self._path(segment), "ab")  # noqa: SIM115 - kept open for appends
        self.records_pending = 0
        self.bytes_written = 0
        self.fsyncs = 0
        self.failure: str | None = None

    def _path(self, segment: int) -> Path:
        return self.directory / f"{_LOG_PREFIX}{segment:08d}{_LOG_SUFFIX}"

    def append(self, kind: bytes, payload: bytes) -> None:
        """Queue a record for the next commit."""
        self.queue.extend(encode_record(kind, payload))
        self.records_pending += 1

    def append_input(self, now: float, position: int | None, raw: bytes) -> None:
        """Queue the `INPUT` record of a message arrived at `now`."""
        if isinstance(self.queue, bytearray):
            self.queue.extend(python_input_record(INPUT, now, position, raw))
        else:  # framed in place (one call, no bytes object for the record)
            self.queue.input(INPUT, python_input_record, now, position, raw)
        self.records_pending += 1

    def append_all(self, kind: bytes, items: list[Any], pack_into: PackInto = _encode_into) -> None:
        """`append` of each item, packed by msgspec, in turn (a flush's verdicts: framed in
        one compiled loop, without two Python calls and four bytes objects each); the
        compiled loop packs each by `pack_into`, which packs as msgspec packs."""
        if _intake is None or isinstance(self.queue, bytearray):
            for item in items:
                self.append(kind, _encode(item))
            return
        tally = _intake.Tally()
        try:
            _intake.frame_all(tally, self.queue, kind, items, pack_into, encode_record)
        finally:  # those queued count, also when packing one raised
            self.records_pending += tally.records

    def commit(self) -> None:
        """Write queued records and (when `sync`) fsync: after this they survive a crash."""
        self._check()
        try:
            if self.queue:
                self._file.write(self.queue)
                self.bytes_written += len(self.queue)
                self.queue.clear()
            self._file.flush()
            if self.sync:
                os.fsync(self._file.fileno())
                self.fsyncs += 1
        except BaseException as exc:
            self._fail(exc)
        self.records_pending = 0

    def roll(self, segment: int) -> None:
        """Continue in a new segment (after a snapshot made the old ones unnecessary)."""
        self.commit()
        try:
            self._file.close()
            self.segment = segment
            self._file = open(self._path(segment), "ab")  # noqa: SIM115
            if self.sync:
                _fsync_dir(self.directory)
        except BaseException as exc:
            self._fail(exc)

    def _check(self) -> None:
        """StateLogError once the log has stopped."""
        if self.failure is not None:
            raise StateLogError(self.failure)

    def _fail(self, exc: BaseException) -> NoReturn:
        """Stop the log for good after `exc` interrupted a write, fsync or new segment, and
        raise: StateLogError for an OSError (from it), else `exc` itself."""
        self.failure = (
            f"a write or fsync of the state log {self._path(self.segment)} failed ({exc}); "
            "the log stopped: restart the process to recover from the state directory"
        )
        self.queue.clear()  # never written
        with suppress(OSError):  # and what the file's buffer holds is dropped, not written
            self._file.raw.close()
        if isinstance(exc, OSError):
            raise StateLogError(self.failure) from exc
        raise exc

    def close(self) -> None:
        """Commit and close the current segment."""
        self.commit()
        self._file.close()


class _NullLog:
    """The log of a run without a state directory: nothing is kept, commits are free (but
    still counted, so verdicts are delivered at the same moments as with a log)."""

    segment = 0
    bytes_written = 0
    fsyncs = 0
    queue = None  # records are not kept (only counted)

    def __init__(self) -> None:
        self.records_pending = 0

    def append(self, kind: bytes, payload: bytes) -> None:
        """Nothing to keep."""
        self.records_pending += 1

    def append_input(self, now: float, position: int | None, raw: bytes) -> None:
        """Nothing to keep."""
        self.records_pending += 1

    def append_all(self, kind: bytes, items: list[Any], pack_into: PackInto = _encode_into) -> None:
        """Nothing to keep."""
        self.records_pending += len(items)

    def commit(self) -> None:
        """Nothing to write."""
        self.records_pending = 0

    def roll(self, segment: int) -> None:
        """No segments."""

    def close(self) -> None:
        """Nothing to close."""


class DurableMatcher:
    """A StreamMatcher whose inputs and outputs are logged in `state_dir` before they count.

    With `state_dir` None nothing is kept (the same flow without durability).

    `offer(message, position)` logs and feeds one message; `poll(now)` lets time pass and
    commits when due (every `commit_interval` seconds or `commit_records` records, and at once
    when verdicts wait). After each commit `deliver(events)` gets the verdicts it covers and
    `committed_position` moves on (the input offset to resume from). `recover()` must be called
    once before use.

    The process's cyclic garbage collector is left as it is: the matcher keeps its state where
    the collector does not look (matcher.py `_untracked`), so a full collection costs about
    what the libraries hold, however many orders wait.
    """

    def __init__(
        self,
        matcher: StreamMatcher,
        state_dir: str | Path | None,
        *,
        sync: bool = True,
        commit_interval: float = 0.005,
        commit_records: int = 1000,
        snapshot_interval: float = 30.0,
        snapshot_records: int = 200_000,
        deliver: Callable[[list[VerdictEvent]], None] | None = None,
        before_snapshot: Callable[[], None] | None = None,
        on_dead_letter: Callable[[str, int | None, bytes], None] | None = None,
        reevaluate: bool = False,
    ) -> None:
        self.matcher = matcher
        #: On recovery with other rules than the state was built with: evaluate every order
        #: again under the new rules (else recovery refuses).
        self.reevaluate = reevaluate
        self.directory = Path(state_dir) if state_dir is not None else None
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        self.sync = sync
        self.commit_interval = commit_interval
        self.commit_records = commit_records
        self.snapshot_interval = snapshot_interval
        self.snapshot_records = snapshot_records
        self.deliver = deliver or (lambda events: None)
        self.before_snapshot = before_snapshot or (lambda: None)
        self.on_dead_letter = on_dead_letter or (lambda reason, position, raw: None)
        self.committed_position: int | None = None
        self._position: int | None = None  # of the newest logged input (not yet committed)
        self._undelivered: list[VerdictEvent] = []
        self._log: StateLog | _NullLog | None = None
        #: The log after it stopped (a write or fsync failed: see `_let_go_if_stopped`).
        self._stopped_log: StateLog | None = None
        self._last_commit = time.monotonic()
        self._last_snapshot = time.monotonic()
        self._records_since_snapshot = 0
        #: The process writing a snapshot in the background, and that snapshot's segment.
        self._snapshot_writer: tuple[int, int] | None = None
        #: `_log_flush`, as the matcher (which this holds) calls it before each flush.
        self._flush_listener = weakly_bound(self._log_flush)
        matcher.flush_listener = self._flush_listener

    # --- recovery -----------------------------------------------------------------------------

    def recover(self) -> RecoveryReport:
        """Load the newest valid snapshot, replay the log after it, cut a torn tail.

        Verdicts produced by the replay are delivered again (at-least-once; their ids and
        contents are the ones first emitted, since replay repeats the same micro-batches).
        """
        if self._stopped_log is not None:  # its matcher holds inputs the log lost
            raise StateLogError(self._stopped_log.failure)
        if self._log is not None:
            raise StateError(
                "DurableMatcher.recover() was called already: recover once, into a new "
                "StreamMatcher and DurableMatcher"
            )
        report = RecoveryReport()
        if self.directory is None:
            self._log = _NullLog()
            return report
        wanted = self.matcher.configuration()
        built_with = self._built_with(wanted)
        self.matcher.reconfigure(built_with)  # the log replays as it first ran
        segment = self._load_snapshot(self.directory, report)
        segments = _numbered(self.directory, _LOG_PREFIX, _LOG_SUFFIX)
        to_replay = [(n, p) for n, p in segments if n >= segment]
        if to_replay and to_replay[0][0] != segment:
            raise StateError(
                f"{self.directory}: log segment {segment} is missing (the snapshot that "
                "covered the older log is damaged or gone); the state cannot be recovered"
            )
        self.matcher.auto_flush = False
        self.matcher.flush_listener = None
        try:
            for index, (number, path) in enumerate(to_replay):
                last = index == len(to_replay) - 1
                self._replay_segment(number, path, last=last, report=report)
        finally:
            self.matcher.auto_flush = True
            self.matcher.flush_listener = self._flush_listener
        current = to_replay[-1][0] if to_replay else segment
        self._log = StateLog(self.directory, current, sync=self.sync)
        if self.sync:
            _fsync_dir(self.directory)
        replayed = self.matcher.drain()
        report.redelivered = len(replayed)
        report.position = self._position
        self.committed_position = self._position
        self.deliver(replayed)
        if built_with != wanted:
            self.matcher.reconfigure(wanted)
            self.matcher.reevaluate()
            self.snapshot()  # a new segment: no later replay mixes the two sets of rules
            report.notes.append("rules changed: every order with a verdict was evaluated again")
        _write_atomically(self.directory / _RULES_FILE, msgspec.json.encode(wanted))
        return report

    def _built_with(self, wanted: Configuration) -> Configuration:
        """The rules the state was built with (`wanted` for a new state); StateError when they
        differ from `wanted` and re-evaluation was not asked for."""
        assert self.directory is not None
        path = self.directory / _RULES_FILE
        if not path.exists():
            return wanted
        try:
            built_with = msgspec.json.decode(path.read_bytes(), type=Configuration)
        except msgspec.MsgspecError as exc:
            raise StateError(f"{path}: unreadable ({exc})") from None
        if built_with != wanted and not self.reevaluate:
            raise StateError(
                f"{self.directory}: the state was built with other rules (rule settings or "
                "inventory rules differ); run with the same ones, or pass --reevaluate "
                "(reevaluate=True) to evaluate every order under the new ones"
            )
        return built_with

    def _load_snapshot(self, directory: Path, report: RecoveryReport) -> int:
        for number, path in reversed(_numbered(directory, _SNAP_PREFIX, _SNAP_SUFFIX)):
            snapshot = _read_snapshot(path)
            if snapshot is None:
                report.notes.append(f"snapshot {path.name} is damaged; trying an older one")
                continue
            self.matcher.restore(snapshot.matcher)
            self._position = snapshot.position
            report.snapshot_segment = number
            return snapshot.segment
        return 0

    def _replay_segment(
        self, number: int, path: Path, *, last: bool, report: RecoveryReport
    ) -> None:
        data = path.read_bytes()
        records, valid = read_records(data)
        if valid < len(data):
            if not last:
                raise StateError(
                    f"{path}: corrupt record at byte {valid} in a log segment that is not the "
                    "newest; the state cannot be recovered"
                )
            with open(path, "r+b") as handle:
                handle.truncate(valid)
                handle.flush()
                os.fsync(handle.fileno())
            report.torn_bytes = len(data) - valid
            report.torn_segment = number
            report.notes.append(f"cut a torn tail of {len(data) - valid} bytes from {path.name}")
        for kind, payload in records:
            self._replay_record(kind, payload)
        report.replayed_records += len(records)

    def _replay_record(self, kind: bytes, payload: bytes) -> None:
        if kind == INPUT:
            arrival, position, raw = msgspec.msgpack.decode(payload)
            self.matcher.feed(raw, now=arrival)
            self._position = position if position is not None else self._position
        elif kind == DEAD:
            (position,) = msgspec.msgpack.decode(payload)
            self.matcher.counters.add("dead_lettered")
            self._position = position if position is not None else self._position
        elif kind == FLUSH:
            (now,) = msgspec.msgpack.decode(payload)
            self.matcher.flush(now)
        elif kind != VERDICT:
            raise StateError(f"{self.directory}: unknown log record kind {kind!r}")

    # --- running ------------------------------------------------------------------------------

    def offer(
        self, message: bytes | Message, position: int | None = None, *, now: float | None = None
    ) -> FeedResult:
        """Log and feed one message (raw bytes as received, or a Message)."""
        log = self._log
        if log is None or _offers is None:  # not recovered (it raises), or not built
            return self._offer(message, position, now)
        matcher = self.matcher
        tally = _intake.Tally()  # type: ignore[union-attr]
        try:  # one compiled call, without `_offer`'s Python calls
            return _offers.offer_one(
                tally,
                self,
                matcher,
                log.queue,
                message,
                position,
                now,
                matcher._new_upserts,
                matcher._direct_json,
                matcher.auto_flush,
                matcher.batch_size,
                matcher._dirty,
                matcher.counters._values,
            )
        finally:
            log.records_pending += tally.records
            self._records_since_snapshot += tally.taken
            if tally.moved:
                self._position = tally.position

    def _offer(
        self, message: bytes | Message, position: int | None, now: float | None
    ) -> FeedResult:
        """`offer` in Python: the reference of `Offers` (src_ext/intake.pyx)."""
        log = self._require_log()
        matcher = self.matcher
        now = matcher.clock() if now is None else now
        raw = message if isinstance(message, bytes) else encode_message(message)
        read = matcher._read(raw)  # the usual new upsert, read without decoding
        if not read:
            try:
                decoded = decode_bytes(raw)
            except BadMessage as exc:
                return self.reject(exc.reason, position, raw)
        log.append_input(now, position, raw)
        result = matcher._take_read(now) if read else matcher.take(decoded, now)
        if result.status == "dead":  # a value batch would reject (replay finds it dead again)
            self.on_dead_letter(result.reason or "", position, raw)
        if position is not None:
            self._position = position
        self._records_since_snapshot += 1
        if matcher.has_events():  # the feed flushed
            self._collect()
        return result

    def offer_many(
        self,
        messages: Sequence[bytes | Message],
        positions: Sequence[int | None] | None = None,
        *,
        now: float | None = None,
    ) -> None:
        """`offer` of each message in turn, with the position of the same index (None for
        all when `positions` is None): the same log, state, verdicts and dead letters, in one
        compiled loop, without `offer`'s Python calls and result object per message."""
        log = self._require_log()
        if _offers is None:  # not built
            for at, message in enumerate(messages):
                self.offer(message, positions[at] if positions is not None else None, now=now)
            return
        tally = _intake.Tally()  # type: ignore[union-attr]
        try:
            _offers.offer(tally, self, self.matcher, log.queue, messages, positions, now)
        finally:  # booked as `offer` books them, also when a message raised
            log.records_pending += tally.records
            self._records_since_snapshot += tally.taken
            if tally.moved:
                self._position = tally.position

    def reject(self, reason: str, position: int | None, raw: bytes) -> FeedResult:
        """Dead-letter one message: logged by position only, so a restart resumes after it."""
        self.matcher.counters.add("dead_lettered")
        self._require_log().append(DEAD, _encode((position,)))
        self.on_dead_letter(reason, position, raw)
        if position is not None:
            self._position = position
        self._records_since_snapshot += 1
        return FeedResult("dead", reason)

    def poll(self, now: float | None = None) -> None:
        """Let processing time pass: flush the matcher when due, commit and snapshot when due."""
        now = self.matcher.clock() if now is None else now
        self.matcher.tick(now)
        self._collect()
        # Verdicts are late already by their batch's wait and flush: no waiting for the
        # commit by time or count on top.
        if self._undelivered or self._commit_due():
            self.commit()
        self._reap_snapshot(wait=False)
        if self._snapshot_writer is None and (
            self._records_since_snapshot >= self.snapshot_records
            or (
                self._records_since_snapshot
                and time.monotonic() - self._last_snapshot >= self.snapshot_interval
            )
        ):
            self.snapshot(background=_CAN_FORK)

    def _commit_due(self) -> bool:
        """True when `commit_records` records wait, or some and `commit_interval` has passed
        since the last commit."""
        pending = self._require_log().records_pending
        elapsed = time.monotonic() - self._last_commit
        return pending >= self.commit_records or (pending > 0 and elapsed >= self.commit_interval)

    def commit(self) -> None:
        """Group commit: write and fsync the log, then deliver the verdicts it covers."""
        self._collect()
        log = self._require_log()
        try:
            log.commit()
        finally:
            self._let_go_if_stopped(log)
        self._last_commit = time.monotonic()
        self.matcher.counters.add("commits")
        events, self._undelivered = self._undelivered, []
        self.committed_position = self._position
        if events:
            self.deliver(events)

    def snapshot(self, *, background: bool = False) -> None:
        """Write an atomic snapshot and start a new log segment; older files are removed once
        the snapshot is written.

        With `background` a forked child encodes and writes it from a copy-on-write image of
        the state, so intake stops only for the fork: new records go to the new segment
        meanwhile, and until the child is done recovery still has the older snapshot and
        every segment after it. Without a state directory it only commits (and restarts the
        count to the next one `poll` makes).
        """
        log = self._require_log()
        self.commit()
        self._last_snapshot = time.monotonic()
        self._records_since_snapshot = 0
        if self.directory is None:
            return
        self._reap_snapshot(wait=True)  # one at a time
        self.before_snapshot()  # delivered verdicts must be durable before their log goes
        segment = log.segment + 1
        try:
            log.roll(segment)  # the snapshot covers every segment before this one
        finally:
            self._let_go_if_stopped(log)
        path = self.directory / f"{_SNAP_PREFIX}{segment:08d}{_SNAP_SUFFIX}"
        if background:
            pid = os.fork()
            if pid == 0:  # the child: write and leave without running the parent's cleanup
                status = 1
                try:
                    self._write_snapshot(path, segment)
                    status = 0
                finally:
                    os._exit(status)
            self._snapshot_writer = (pid, segment)
            return
        self._write_snapshot(path, segment)
        self._snapshot_written(segment)

    def _write_snapshot(self, path: Path, segment: int) -> None:
        state = self.matcher.snapshot()
        _write_snapshot(path, *_snapshot_body(segment, self.committed_position, state))

    def _snapshot_written(self, segment: int) -> None:
        """The snapshot starting `segment` is durable: older snapshots and logs can go."""
        assert self.directory is not None
        for number, path in _numbered(self.directory, _SNAP_PREFIX, _SNAP_SUFFIX):
            if number < segment:
                path.unlink(missing_ok=True)
        for number, path in _numbered(self.directory, _LOG_PREFIX, _LOG_SUFFIX):
            if number < segment:
                path.unlink(missing_ok=True)
        self.matcher.counters.add("snapshots")

    def wait_for_snapshot(self) -> None:
        """Wait until a snapshot being written in the background is done (and cleaned up)."""
        self._reap_snapshot(wait=True)

    def _reap_snapshot(self, *, wait: bool) -> None:
        """Collect a background snapshot writer that has finished (or wait for it)."""
        if self._snapshot_writer is None:
            return
        pid, segment = self._snapshot_writer
        done, status = os.waitpid(pid, 0 if wait else os.WNOHANG)
        if done == 0:
            return  # still writing
        self._snapshot_writer = None
        if os.waitstatus_to_exitcode(status) == 0:
            self._snapshot_written(segment)
        else:  # nothing lost: the older snapshot and the log after it are still there
            self.matcher.counters.add("snapshot_failures")

    def close(self, *, snapshot: bool = True) -> None:
        """Flush the matcher, commit, optionally snapshot, and close the log."""
        self.matcher.close()
        self._collect()
        if snapshot:
            self.snapshot()
        else:
            self.commit()
            self._reap_snapshot(wait=True)
        log = self._require_log()
        try:
            log.close()
        finally:
            self._let_go_if_stopped(log)

    def stats(self) -> dict[str, Any]:
        """Matcher counters plus this process's log figures (which counters a restart keeps
        exact: stats.py)."""
        values: dict[str, Any] = self.matcher.stats()
        log = self._log or self._stopped_log
        if log is not None:
            values["log_bytes"] = log.bytes_written
            values["fsyncs"] = log.fsyncs
        return values

    def _collect(self) -> None:
        events = self.matcher.drain()
        if events:
            self._require_log().append_all(VERDICT, events, _pack_event_into)
            self._undelivered.extend(events)

    def _log_flush(self, now: float) -> None:
        self._require_log().append(FLUSH, _encode((now,)))

    def _require_log(self) -> StateLog | _NullLog:
        if self._log is None:
            if self._stopped_log is not None:
                raise StateLogError(self._stopped_log.failure)
            raise StateError("DurableMatcher.recover() must be called before use")
        return self._log

    def _let_go_if_stopped(self, log: StateLog | _NullLog) -> None:
        """After a write to `log`: once it has stopped (a write or fsync failed) it is let go,
        so every later use raises StateLogError (`_require_log`), also `offer`'s compiled
        call, which goes to `_offer` when there is no log (no check a message)."""
        if isinstance(log, StateLog) and log.failure is not None:
            self._log, self._stopped_log = None, log


def _snapshot_body(segment: int, position: int | None, matcher: bytes) -> tuple[bytes, bytes]:
    """`_SnapshotFile(segment, position, matcher)` packed, as two parts: the matcher's state
    (the last field, most of the file) is not copied into a packed whole, which would hold a
    second copy of the state in memory while the snapshot is written."""
    head = _encode(_SnapshotFile(segment, position, b""))
    if not head.endswith(b"\xc4\x00"):  # the last field, as bin 8 of length 0
        raise AssertionError("the snapshot's state is not its last packed field")
    size = len(matcher)
    code, width = (0xC4, 1) if size < 1 << 8 else (0xC5, 2) if size < 1 << 16 else (0xC6, 4)
    return head[:-2] + bytes([code]) + size.to_bytes(width, "big"), matcher


def _write_snapshot(path: Path, *body: bytes) -> None:
    """A snapshot file: magic, CRC32 and length, then the body (given in parts); written
    atomically."""
    crc = 0
    for part in body:
        crc = _snapshot_crc(part, crc)
    size = sum(map(len, body))
    _write_atomically(path, _SNAPSHOT_MAGIC + _SNAPSHOT_HEADER.pack(crc, size), *body)


def _write_atomically(path: Path, *parts: bytes) -> None:
    """Write `parts` to a temp file, fsync, rename over, fsync the directory: all or nothing
    (in parts: a snapshot's body is not copied behind its head first)."""
    temp = path.with_suffix(path.suffix + ".tmp")
    try:
        with open(temp, "wb") as handle:
            handle.writelines(parts)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:  # (a disk that is full keeps no part-written file)
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _read_snapshot(path: Path) -> _SnapshotFile | None:
    """The snapshot in `path`, or None when it is damaged."""
    data = path.read_bytes()
    start = len(_SNAPSHOT_MAGIC) + _SNAPSHOT_HEADER.size
    if not data.startswith(_SNAPSHOT_MAGIC) or len(data) < start:
        return None
    crc, length = _SNAPSHOT_HEADER.unpack_from(data, len(_SNAPSHOT_MAGIC))
    body = data[start : start + length]
    if len(body) != length or zlib.crc32(body) != crc:
        return None
    try:
        return msgspec.msgpack.decode(body, type=_SnapshotFile)
    except msgspec.MsgspecError:
        return None


def decode_verdict(payload: bytes) -> VerdictEvent:
    """A VERDICT record's payload -> the event (for tools that read the log)."""
    return _event_decoder.decode(payload)


__all__ = [
    "DEAD",
    "FLUSH",
    "INPUT",
    "VERDICT",
    "DurableMatcher",
    "RecoveryReport",
    "StateLog",
    "decode_verdict",
    "encode_record",
    "read_records",
]
