"""`DurableMatcher.offer_many` against `offer` one message at a time: on random streams of good
and bad messages, redeliveries, revisions and cancels, cut into random calls, with auto flushes
inside them, both give the same log bytes, verdicts, counters (also as seen at every flush,
dead letter and delivery inside a call), dead letters and positions; with
the compiled intake reading the usual JSON message directly, decoding it first, or all in
Python. `offer` in one compiled call against its Python reference, likewise."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matchcore.exceptions import StateError
from matchcore.stream import matcher as stream_matcher
from matchcore.stream import state
from matchcore.stream.io import read_frames, run_file
from matchcore.stream.matcher import ACCEPTED, References, StreamMatcher
from matchcore.stream.state import DurableMatcher

from .conftest import complete_set
from .test_stream_intake import mutated_messages, stream_messages

#: How `_Run` takes messages in: the usual JSON message read directly by the compiled intake
#: (in `offer_many`), decoded first, or every message in Python.
_INTAKES = ["direct", "direct", "decoded", "python"]
#: Bytes that are no message: not JSON or MessagePack, not an object, empty, a torn frame.
_GARBAGE = [b"not json", b"", b"   ", b"[1, 2]", b'{"doc_type": "order"', b"\x93\x01\x02\x03"]


@st.composite
def raw_messages(draw: Any, earlier: list[bytes]) -> bytes:
    """One message as received: a stream document (JSON or MessagePack, white space around
    it), one with a bad value, garbage, or one received before (a redelivery)."""
    choice = draw(st.sampled_from(["stream", "stream", "stream", "mutated", "garbage", "again"]))
    if choice == "again" and earlier:
        return draw(st.sampled_from(earlier))
    if choice == "garbage":
        return draw(st.sampled_from(_GARBAGE))
    message = draw(stream_messages() if choice != "mutated" else mutated_messages())
    if draw(st.booleans()):
        return msgspec.msgpack.encode(message)
    return draw(st.sampled_from([b"", b" ", b"\n\t"])) + msgspec.json.encode(message)


@st.composite
def streams(draw: Any) -> list[list[tuple[bytes, int | None]]]:
    """Messages with their positions (None sometimes: the TCP intake has none), in calls."""
    earlier: list[bytes] = []
    calls = []
    position = 0
    for _ in range(draw(st.integers(1, 8))):
        call = []
        for _ in range(draw(st.integers(0, 12))):
            raw = draw(raw_messages(earlier))
            earlier.append(raw)
            position += draw(st.integers(1, 3))
            call.append((raw, position if draw(st.integers(0, 4)) else None))
        calls.append(call)
    return calls


class _Run:
    """A durable matcher (state in a temporary directory, or none) with what comes out of it;
    the clock moves at every read, so each message has a time of its own. Commits only when
    asked (not on the wall clock)."""

    def __init__(
        self, references: References, state_dir: str | None, batch_size: int, intake: str
    ) -> None:
        ticks = itertools.count()
        self.matcher = StreamMatcher(
            references,
            engine="reference",
            batch_size=batch_size,
            batch_interval=1e9,
            clock=lambda: 1000.0 + next(ticks),
        )
        if intake == "python":  # every message taken by the Python path
            self.matcher._new_upserts = None
        elif intake == "decoded":  # every message decoded, then taken (compiled or not)
            self.matcher._direct_json = None
        self.state_dir = state_dir
        self.delivered: list[Any] = []
        self.dead: list[tuple[str, int | None, bytes]] = []
        #: The counters whenever something could read them: at each flush, dead letter and
        #: delivery (`offer_many` counts what it takes at once, before any of them).
        self.seen: list[dict[str, int]] = []
        self.processor = DurableMatcher(
            self.matcher,
            state_dir,
            commit_interval=1e9,
            commit_records=10**9,
            deliver=self._delivered,
            on_dead_letter=self._dead,
        )
        self.processor.recover()
        flushed = self.matcher.flush_listener
        assert flushed is not None

        def counters_at_flush(now: float) -> None:
            self.seen.append(self.matcher.counters.as_dict())
            flushed(now)

        self.matcher.flush_listener = counters_at_flush

    def _delivered(self, events: list[Any]) -> None:
        self.seen.append(self.matcher.counters.as_dict())
        self.delivered.extend(events)

    def _dead(self, *letter: Any) -> None:
        self.seen.append(self.matcher.counters.as_dict())
        self.dead.append(letter)

    def outcome(self) -> tuple[Any, ...]:
        """Everything a caller sees, after a last commit."""
        self.processor.commit()
        log = b""
        if self.state_dir is not None:
            log = b"".join(path.read_bytes() for path in sorted(Path(self.state_dir).glob("*")))
        return (
            log,
            self.delivered,
            self.matcher.counters.as_dict(),
            self.dead,
            self.processor.committed_position,
            self.processor._records_since_snapshot,
            self.matcher.snapshot(),
            self.seen,
        )


def _fed(references: References, calls: Any, options: tuple[bool, int, str], many: bool) -> Any:
    """The outcome of feeding `calls` one message at a time or a call at a time, with a poll
    after each call; `options`: durable, batch size, intake (see `_Run`). The outcome ends
    with what `offer` returned (one at a time)."""
    durable, batch_size, intake = options
    results = []
    with tempfile.TemporaryDirectory(prefix="offer-many-") as state_dir:
        run = _Run(references, state_dir if durable else None, batch_size, intake)
        for call in calls:
            if many:
                run.processor.offer_many([raw for raw, _ in call], [at for _, at in call])
            else:
                for raw, position in call:
                    results.append(run.processor.offer(raw, position))
            run.processor.poll()
        return (*run.outcome(), results)


#: How `_fed` runs: durable or not, the batch size, the intake.
_OPTIONS = st.tuples(st.booleans(), st.sampled_from([1, 2, 3, 4096]), st.sampled_from(_INTAKES))


@settings(max_examples=150, deadline=None)
@given(streams(), _OPTIONS)
def test_offer_many_is_offer_one_by_one(
    references: References, calls: Any, options: tuple[bool, int, str]
) -> None:
    one_by_one = _fed(references, calls, options, many=False)
    many = _fed(references, calls, options, many=True)
    assert many[:-1] == one_by_one[:-1]


@settings(max_examples=100, deadline=None)
@given(streams(), _OPTIONS)
def test_the_compiled_offer_is_the_python_offer(
    references: References, calls: Any, options: tuple[bool, int, str]
) -> None:
    """`offer` in one compiled call (`Offers.offer_one`) against its Python reference
    (`DurableMatcher._offer`): the same log, verdicts, counters (also as seen inside a call),
    dead letters, positions and results (the shared ACCEPTED one where Python gives it)."""
    compiled = _fed(references, calls, options, many=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(state, "_offers", None)
        python = _fed(references, calls, options, many=False)
    assert compiled == python
    for ours, theirs in zip(compiled[-1], python[-1], strict=True):
        assert (ours is ACCEPTED) == (theirs is ACCEPTED)


def _raising(references: References, calls: Any, failing: int, intake: str) -> Any:
    """What `offer` one at a time books when the `failing`-th flush (one a message) raises:
    the positions that raised, the records waiting and their bytes, the messages since the
    snapshot, the position, the counters."""
    with tempfile.TemporaryDirectory(prefix="offer-raises-") as state_dir:
        run = _Run(references, state_dir, 1, intake)
        flushes = itertools.count(1)
        listener = run.matcher.flush_listener
        assert listener is not None

        def flush_or_raise(now: float) -> None:
            if next(flushes) == failing:
                raise RuntimeError("the flush failed")
            listener(now)

        run.matcher.flush_listener = flush_or_raise
        raised = []
        for call in calls:
            for raw, position in call:
                try:
                    run.processor.offer(raw, position)
                except RuntimeError:
                    raised.append(position)
        log = run.processor._require_log()
        return (
            raised,
            log.records_pending,
            bytes(log.queue),
            run.processor._records_since_snapshot,
            run.processor._position,
            run.matcher.counters.as_dict(),
        )


@settings(max_examples=40, deadline=None)
@given(streams(), st.integers(1, 6), st.sampled_from(_INTAKES))
def test_the_compiled_offer_books_what_python_books_when_it_raises(
    references: References, calls: Any, failing: int, intake: str
) -> None:
    """A flush inside `offer` raises: the compiled call books what it did (the input logged,
    not taken) as its Python reference does, and raises the same."""
    outcomes = []
    for offers in (state._offers, None):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(state, "_offers", offers)
            outcomes.append(_raising(references, calls, failing, intake))
    assert outcomes[0] == outcomes[1]


def test_offer_before_recover_raises(references: References) -> None:
    """Compiled or not, `offer` before `recover` is refused, having changed nothing."""
    for offers in (state._offers, None):
        processor = DurableMatcher(StreamMatcher(references), None)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(state, "_offers", offers)
            with pytest.raises(StateError, match="recover"):
                processor.offer(msgspec.json.encode(complete_set("O1")[0]), 1)
        assert processor.matcher.counters.as_dict() == StreamMatcher(references).counters.as_dict()


@settings(max_examples=60, deadline=None)
@given(streams(), st.sampled_from([1, 3, 4096]))
def test_the_compiled_log_is_the_python_log(
    references: References, calls: Any, batch_size: int
) -> None:
    """The log the compiled intake writes (records framed in place, one after another, in one
    buffer) is byte for byte the one written record by record in Python (a bytes object
    each, joined at the commit), with the same verdicts, counters and positions."""
    options = (True, batch_size, "direct")
    compiled = _fed(references, calls, options, many=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(state, "_intake", None)
        patch.setattr(state, "_offers", None)
        python = _fed(references, calls, options, many=True)
    assert compiled == python


def test_offer_many_without_positions_and_with_a_fixed_time(references: References) -> None:
    """No positions: none is recorded (as `offer` without one); `now` is every message's.
    Both read the three documents directly when the extension is built."""
    raws = [msgspec.json.encode(m) for m in complete_set("O1")] + [b"bad"]
    outcomes = []
    direct = stream_matcher._DIRECT_JSON
    for many in (False, True):
        with tempfile.TemporaryDirectory(prefix="offer-many-") as state_dir:
            run = _Run(references, state_dir, batch_size=4096, intake="direct")
            taken = direct.taken if direct is not None else 0
            if many:
                run.processor.offer_many(raws, now=5.0)
            else:
                for raw in raws:
                    run.processor.offer(raw, now=5.0)
            if direct is not None:
                assert direct.taken - taken == 3
            run.matcher.flush(6.0)
            outcomes.append(run.outcome())
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][4] is None  # no position acknowledged
    assert [event.verdict for event in outcomes[0][1]] == ["pass"]
    assert [letter[0] for letter in outcomes[0][3]][0].startswith("undecodable")


@settings(max_examples=25, deadline=None)
@given(
    start=st.one_of(st.integers(-5, 5), st.integers(2**62 - 40, 2**62), st.just(2**63 - 60)),
    step=st.integers(1, 5),
)
def test_offer_many_takes_a_range_of_positions_as_their_list(
    references: References, start: int, step: int
) -> None:
    """Positions given as a range (made in C where they are small) are those of its list."""
    raws = [msgspec.json.encode(m) for m in [*complete_set("O1"), *complete_set("O2")]]
    raws.insert(2, b"bad")
    positions = range(start, start + step * len(raws), step)
    outcomes = []
    for given_as in (positions, list(positions)):
        with tempfile.TemporaryDirectory(prefix="offer-many-") as state_dir:
            run = _Run(references, state_dir, batch_size=4, intake="direct")
            run.processor.offer_many(raws, given_as)
            outcomes.append(run.outcome())
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][4] == positions[-1]  # acknowledged
    assert [letter[1] for letter in outcomes[0][3]] == [positions[2]]


class _Calls:
    """A processor that records what it is asked: each message offered (with its position,
    one by one or many at once) and each poll."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def offer_many(self, raws: list[bytes], positions: list[int]) -> None:
        self.calls += [
            ("offer", raw, position) for raw, position in zip(raws, positions, strict=True)
        ]

    def poll(self) -> None:
        self.calls.append(("poll",))


class _ShortReads:
    """A file that gives at most `size` bytes a read: frames come in many reads."""

    def __init__(self, data: bytes, size: int) -> None:
        self.data, self.size = data, size

    def read(self, _: int) -> bytes:
        chunk, self.data = self.data[: self.size], self.data[self.size :]
        return chunk


def test_run_file_polls_between_the_same_frames() -> None:
    """Every `poll_every` frames and after each read, as when frames were offered one by one
    (the loop run_file had, below)."""
    data = b"".join(b'{"n": %d}\n' % n for n in range(40))
    processor = _Calls()
    run_file(processor, _ShortReads(data, 70), "ndjson", poll_every=5)  # type: ignore[arg-type]
    expected: list[Any] = []
    seen = 0
    for frames in read_frames(_ShortReads(data, 70), "ndjson"):  # type: ignore[arg-type]
        assert frames is not None
        for raw, position in frames:
            expected.append(("offer", raw, position))
            seen += 1
            if seen % 5 == 0:
                expected.append(("poll",))
        expected.append(("poll",))
    assert len(expected) > 40 + 40 // 5 + 2  # several reads, some not at a multiple of 5
    assert processor.calls == expected
