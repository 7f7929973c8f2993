"""A flush's verdict records, framed in C (src_ext/intake.pyx: `frame_all`, called by
`StateLog.append_all`), against their Python reference: byte for byte the records `append`
of each verdict packed by msgspec queues (`encode_record`), so the log reads as before.
"""

from __future__ import annotations

import tempfile
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matchcore.stream import state
from matchcore.stream.matcher import References

from .conftest import complete_set
from .test_stream_offer_many import _Run

intake: Any
try:
    from matchcore._native import intake
except ImportError:  # not built: the Python path is all there is
    intake = None


@pytest.mark.skipif(intake is None, reason="the intake extension is not built")
@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=300),
            st.text(max_size=80),
            st.tuples(st.floats(allow_nan=False), st.none() | st.integers(-(2**63), 2**63 - 1)),
        ),
        max_size=20,
    ),
    st.sampled_from([state.VERDICT, state.FLUSH, state.DEAD]),
)
def test_framed_records_are_encode_records(items: list[Any], kind: bytes) -> None:
    """Each item's record is `encode_record` of it packed (packed into one scratch buffer
    and framed in C), in order, counted, and reads back as packed."""
    packed = [msgspec.msgpack.encode(item) for item in items]
    expected = [state.encode_record(kind, payload) for payload in packed]
    buffer, tally = intake.LogBuffer(), intake.Tally()
    buffer.extend(b"before")
    encode_into = msgspec.msgpack.Encoder().encode_into
    intake.frame_all(tally, buffer, kind, items, encode_into, state.encode_record)
    assert bytes(buffer) == b"".join([b"before", *expected])
    assert tally.records == len(items)
    assert state.read_records(b"".join(expected)) == (
        [(kind, payload) for payload in packed],
        sum(map(len, expected)),
    )


@pytest.mark.parametrize("compiled", [True, False])
def test_verdicts_are_logged_one_record_each(
    references: References, monkeypatch: pytest.MonkeyPatch, compiled: bool
) -> None:
    """A flush's verdicts are logged in emission order, one `VERDICT` record each holding the
    event packed by msgspec, counted as pending records (with the compiled framing or
    without it)."""
    if compiled and intake is None:
        pytest.skip("the intake extension is not built")
    with tempfile.TemporaryDirectory(prefix="verdict-records-") as state_dir:
        run = _Run(references, state_dir, 4096, "direct")
        raws = [msgspec.json.encode(m) for number in range(4) for m in complete_set(f"O{number}")]
        run.processor.offer_many(raws, range(1, len(raws) + 1))
        run.matcher.flush(2000.0)
        pending = run.processor._require_log().records_pending
        monkeypatch.setattr(state, "_intake", intake if compiled else None)
        run.processor._collect()
        pending = run.processor._require_log().records_pending - pending
        log, delivered = run.outcome()[:2]
    records = state.read_records(log)[0]
    verdicts = [body for kind, body in records if kind == state.VERDICT]
    assert pending == len(delivered) == 4
    assert verdicts == [msgspec.msgpack.encode(event) for event in delivered]


@pytest.mark.skipif(intake is None, reason="the intake extension is not built")
def test_log_buffer_reads_as_its_bytes() -> None:
    """The compiled queue of records: its bytes in order (read in place), emptied by `clear`
    and used again, and it does not move its memory while it is being read."""
    buffer = intake.LogBuffer()
    assert not buffer
    assert bytes(buffer) == b""
    records = [bytes([n % 256]) * n for n in range(0, 9000, 700)]
    for record in records:
        buffer.extend(record)
    assert len(buffer) == sum(map(len, records))
    assert bytes(buffer) == b"".join(records)
    with memoryview(buffer) as view:
        assert view.readonly
        assert view.tobytes() == b"".join(records)
        with pytest.raises(BufferError):
            buffer.extend(b"x" * 100_000)  # would move the memory being read
        with pytest.raises(BufferError):
            buffer.clear()
    buffer.clear()
    assert len(buffer) == 0
    buffer.extend(b"again")
    assert bytes(buffer) == b"again"
