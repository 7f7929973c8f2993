"""Sources and sinks: framing, resuming at an offset, follow mode, loopback TCP with acks."""

from __future__ import annotations

import asyncio
import errno
import io
import itertools
import json
import logging
import os
import socket
import threading
import time

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matchcore.exceptions import InputError, StateLogError
from matchcore.stream import io as io_module
from matchcore.stream.io import (
    MAX_FRAME,
    DeadLetters,
    TcpService,
    VerdictSink,
    _ConnectionFrames,
    _frames_end,
    frame,
    read_frames,
    split_frames,
)
from matchcore.stream.messages import VerdictEvent
from matchcore.stream.state import DurableMatcher

from .conftest import failing_fsync


def test_ndjson_frames_carry_their_end_positions():
    data = b'{"a":1}\n\n{"b":2}\n{"c"'
    frames, used = split_frames(data, "ndjson", 100)
    assert frames == [(b'{"a":1}', 108), (b'{"b":2}', 117)] and used == 17


def test_msgpack_frames_are_length_prefixed():
    data = frame(b"abc", "msgpack") + frame(b"", "msgpack") + frame(b"defg", "msgpack")[:5]
    frames, used = split_frames(data, "msgpack", 0)
    assert frames == [(b"abc", 7), (b"", 11)] and used == 11
    with pytest.raises(InputError, match="claims"):
        split_frames(b"\xff\xff\xff\xff", "msgpack", 0)


def test_reading_resumes_at_an_offset_and_keeps_a_last_unterminated_line():
    handle = io.BytesIO(b"one\ntwo\nthree")
    handle.seek(4)
    batches = list(read_frames(handle, "ndjson", start=4, chunk_size=3))
    assert [f for batch in batches for f in batch] == [(b"two", 8), (b"three", 13)]


def test_follow_mode_sees_appended_lines(tmp_path):
    path = tmp_path / "in.ndjson"
    path.write_bytes(b"first\n")
    stop = threading.Event()

    def append_later() -> None:
        time.sleep(0.1)
        with open(path, "ab") as handle:
            handle.write(b"second\n")
        time.sleep(0.1)
        stop.set()

    threading.Thread(target=append_later).start()
    seen, idle = [], 0
    with open(path, "rb") as handle:
        for batch in read_frames(handle, "ndjson", follow=True, stop=stop.is_set):
            if batch is None:
                idle += 1
            else:
                seen += [raw for raw, _ in batch]
    assert seen == [b"first", b"second"] and idle > 0


def test_sink_writes_whole_frames(tmp_path):
    path = tmp_path / "out.ndjson"
    sink = VerdictSink.to_path(path, "ndjson")
    sink.write(
        [VerdictEvent("E/O/1", "E", "O", 1, "pass"), VerdictEvent("E/P/1", "E", "P", 1, "review")]
    )
    sink.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(x["verdict_id"], x["verdict"]) for x in lines] == [
        ("E/O/1", "pass"),
        ("E/P/1", "review"),
    ]


def test_a_sink_file_that_fails_to_sync_raises_and_a_pipe_is_not_synced(tmp_path, monkeypatch):
    """A file's fsync error (EIO, a full disk) reaches the caller: the verdicts a snapshot
    lets go of from the log must be on disk first. A pipe has nothing to sync and is not
    asked (an fsync of it fails with EINVAL)."""
    synced = []

    def fsync(fd):
        synced.append(fd)
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    sink = VerdictSink.to_path(tmp_path / "out.ndjson", "ndjson")
    reader, writer = os.pipe()
    piped = VerdictSink(writer, "ndjson", owns=True)
    monkeypatch.setattr(os, "fsync", fsync)
    try:
        with pytest.raises(OSError, match="Input/output error"):
            sink.sync()
        piped.write([VerdictEvent("E/O/1", "E", "O", 1, "pass")])
        piped.close()
        assert synced == [sink.fd]
        assert json.loads(os.read(reader, 1000))["verdict_id"] == "E/O/1"
    finally:
        monkeypatch.undo()
        sink.close()
        os.close(reader)


@pytest.mark.parametrize("framing", ["ndjson", "msgpack"])
@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(0, 40), max_size=6), kept=st.integers(0, 2**31))
def test_a_sink_cuts_a_torn_last_frame_before_it_appends(tmp_path_factory, framing, sizes, kept):
    """A file that a killed run left with part of a frame at its end (any cut of its bytes)
    loses exactly that part when a sink opens it: whole frames stay, and the next frame
    starts a frame of its own."""
    payloads = [bytes([65 + n % 26]) * size for n, size in enumerate(sizes)]
    whole = b"".join(frame(payload, framing) for payload in payloads)
    torn = whole[: kept % (len(whole) + 1)]
    frames, complete = split_frames(torn, framing, 0)
    path = tmp_path_factory.mktemp("sink") / "out"
    path.write_bytes(torn)
    sink = VerdictSink.to_path(path, framing)
    assert sink.cut == len(torn) - complete
    sink.write([VerdictEvent("E/O/1", "E", "O", 1, "pass")])
    sink.close()
    data = path.read_bytes()
    assert data[:complete] == torn[:complete]
    after, used = split_frames(data, framing, 0)
    assert used == len(data) and after[: len(frames)] == frames
    assert msgspec.json.decode(after[-1][0]) if framing == "ndjson" else after[-1][0]


def test_frames_are_walked_across_read_blocks(tmp_path):
    """The length prefixes of MessagePack frames are read a block at a time: frames and
    prefixes that cross a block's end are walked the same."""
    data = b"".join(frame(bytes(size), "msgpack") for size in (3, 0, 9, 1, 5)) + b"\0\0"
    path = tmp_path / "out"
    path.write_bytes(data)
    with open(path, "rb") as handle:
        for block in (4, 5, 7, 64):
            assert _frames_end(handle.fileno(), len(data), "msgpack", block) == len(data) - 2
            assert _frames_end(handle.fileno(), len(data) - 3, "msgpack", block) == 29


def test_a_sink_refuses_a_file_of_another_format_and_leaves_it_whole(tmp_path, monkeypatch):
    """Cutting back to the last whole frame must not eat a file that was never this framing:
    NDJSON read as MessagePack claims huge frames, and a file with no line end near its end is
    no torn NDJSON (past the longest frame a torn write can leave)."""
    lines = tmp_path / "lines"
    lines.write_bytes(b'{"verdict_id": "E/O/1"}\n{"verdict_id": "E/O/2"}\n')
    with pytest.raises(InputError, match="claims .* bytes .* another format"):
        VerdictSink.to_path(lines, "msgpack")
    assert lines.read_bytes().count(b"\n") == 2
    monkeypatch.setattr(io_module, "_TORN_MAX", 64)
    binary = tmp_path / "binary"
    binary.write_bytes(b"a line\n" + bytes(range(11, 111)))
    with pytest.raises(InputError, match="no line ends in its last 64 bytes"):
        DeadLetters(binary)
    assert len(binary.read_bytes()) == 107
    binary.write_bytes(b"a line\n" + bytes(range(11, 60)))  # within the bound: torn
    assert VerdictSink.to_path(binary, "ndjson").cut == 49


def test_dead_letters_cut_a_torn_last_line(tmp_path):
    path = tmp_path / "dead.ndjson"
    path.write_bytes(b'{"reason": "a"}\n{"reas')
    dead = DeadLetters(path)
    dead.write("bad", 3, b"x")
    dead.close()
    assert dead.cut == 6
    assert [json.loads(line)["reason"] for line in path.read_bytes().splitlines()] == ["a", "bad"]


def test_tcp_intake_acks_after_commit_and_serves_verdicts(kit, make_matcher, tmp_path):
    matcher = make_matcher(clock=time.time)  # the service lets real time pass
    processor = DurableMatcher(matcher, tmp_path / "state", commit_interval=0.001)
    processor.recover()
    service = TcpService(processor, "ndjson", port=0, output_port=0, tick_interval=0.002)

    async def scenario() -> tuple[list[dict], list[dict]]:
        ports: dict[str, int] = {}
        server = asyncio.ensure_future(service.serve(lambda p, o: ports.update(intake=p, output=o)))
        while "intake" not in ports:
            await asyncio.sleep(0.01)
        out_reader, _ = await asyncio.open_connection("127.0.0.1", ports["output"])
        reader, writer = await asyncio.open_connection("127.0.0.1", ports["intake"])
        for message in kit.complete_set("T1"):
            writer.write(msgspec.json.encode(message) + b"\n")
        writer.write(b"not json\n")
        await writer.drain()
        acks = []
        while not acks or acks[-1]["ack"] < 4:
            acks.append(json.loads(await asyncio.wait_for(reader.readline(), 30)))
        verdict = json.loads(await asyncio.wait_for(out_reader.readline(), 30))
        writer.close()
        service.stop()
        await server
        return acks, [verdict]

    acks, verdicts = asyncio.run(scenario())
    assert acks[-1] == {"ack": 4}
    assert verdicts[0]["verdict_id"] == "EBP001/T1/1" and verdicts[0]["verdict"] == "pass"
    assert list((tmp_path / "state").glob("snapshot-*.bin"))  # stopped cleanly


def test_tcp_service_ends_when_its_state_log_fails(
    kit, make_matcher, tmp_path, monkeypatch, caplog
):
    """A failed fsync of the log in a connection's commit: the connection ends without an ack
    (and without an unhandled error logged for it), and `serve` ends with the StateLogError
    (the log stopped: a restart recovers)."""
    matcher = make_matcher(clock=time.time, batch_interval=3600.0)
    processor = DurableMatcher(matcher, tmp_path / "state", commit_interval=3600.0)
    processor.recover()
    service = TcpService(processor, "ndjson", port=0, tick_interval=0.002)
    failing_fsync(monkeypatch, lambda path: os.path.basename(path).startswith("log-"))

    async def scenario() -> bytes:
        ports: dict[str, int] = {}
        server = asyncio.ensure_future(service.serve(lambda p, o: ports.update(intake=p)))
        while "intake" not in ports:
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", ports["intake"])
        writer.write(b"".join(msgspec.json.encode(m) + b"\n" for m in kit.complete_set("T1")))
        writer.write_eof()  # the connection's end: it commits
        with pytest.raises(StateLogError, match="restart"):
            await asyncio.wait_for(server, 30)
        return await asyncio.wait_for(reader.read(), 30)

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        assert asyncio.run(scenario()) == b""  # no ack
    assert not caplog.records


def test_tcp_refuses_other_hosts(make_matcher):
    processor = DurableMatcher(make_matcher(), None)
    with pytest.raises(InputError, match="loopback"):
        TcpService(processor, "ndjson", host="0.0.0.0")


def test_a_slow_verdict_client_slows_intake(kit, make_matcher, tmp_path):
    """A verdict client that stops reading fills its bounded queue; intake then stops being
    acknowledged instead of buffering without end, and resumes when the client reads."""
    matcher = make_matcher(clock=time.time, engine="auto", batch_size=16)
    processor = DurableMatcher(matcher, tmp_path / "state", commit_interval=0.001)
    processor.recover()
    service = TcpService(
        processor,
        "ndjson",
        port=0,
        output_port=0,
        queue_size=2,
        client_buffer=16 * 1024,
        tick_interval=0.002,
    )
    messages = [
        msgspec.json.encode(m) + b"\n" for n in range(1500) for m in kit.complete_set(f"S{n:05d}")
    ]

    async def acks_until_quiet(reader: asyncio.StreamReader, quiet: float) -> int:
        last = 0
        while True:
            try:
                line = await asyncio.wait_for(reader.readline(), quiet)
            except TimeoutError:
                return last
            last = json.loads(line)["ack"]
            if last == len(messages):
                return last

    async def scenario() -> tuple[int, int, int]:
        ports: dict[str, int] = {}
        server = asyncio.ensure_future(service.serve(lambda p, o: ports.update(intake=p, output=o)))
        while "intake" not in ports:
            await asyncio.sleep(0.01)
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a slow reader
        client.connect(("127.0.0.1", ports["output"]))
        client.setblocking(False)
        out_reader, _ = await asyncio.open_connection(sock=client)
        reader, writer = await asyncio.open_connection("127.0.0.1", ports["intake"])

        async def send() -> None:
            for data in messages:
                writer.write(data)
                await writer.drain()  # blocks too once the service stops reading

        sender = asyncio.ensure_future(send())
        stalled_at = await acks_until_quiet(reader, quiet=2.0)
        verdicts = 0
        while verdicts < 1500:
            await asyncio.wait_for(out_reader.readline(), 60)
            verdicts += 1
        final = await acks_until_quiet(reader, quiet=30.0)
        await sender
        writer.close()
        service.stop()
        await server
        return stalled_at, final, verdicts

    stalled_at, final, verdicts = asyncio.run(scenario())
    assert 0 < stalled_at < len(messages)  # intake waited for the verdict client
    assert final == len(messages) and verdicts == 1500  # and then everything went through


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(max_size=40), max_size=8),
    st.sampled_from(["ndjson", "msgpack"]),
    st.lists(st.integers(1, 50), min_size=1, max_size=20),
    st.integers(0, 8),
)
def test_connection_frames_are_the_frames_of_the_whole_input(payloads, framing, cuts, torn):
    """However the bytes of a connection arrive, the frames are the ones of the whole input,
    and at its end a last unterminated NDJSON line (stripped) is one more."""
    if framing == "ndjson":
        payloads = [p.replace(b"\n", b"") for p in payloads]
    tail = frame(b" last ", framing)[:torn]  # a frame cut anywhere (or whole, or none)
    data = b"".join(frame(p, framing) for p in payloads) + tail
    frames = _ConnectionFrames(framing)
    received = []
    offset = 0
    for cut in itertools.cycle(cuts):
        if offset >= len(data):
            break
        received += frames.add(data[offset : offset + cut])
        offset += cut
    received += frames.end()
    whole, used = split_frames(data, framing, 0)
    expected = [raw for raw, _ in whole]
    rest = data[used:].strip()
    if framing == "ndjson" and rest:
        expected.append(rest)
    assert received == expected


def test_a_connection_frame_over_the_limit_is_refused_at_once():
    """Not buffered until it is complete: the connection ends."""
    with pytest.raises(InputError, match="claims"):
        _ConnectionFrames("msgpack").add(frame(b"x", "msgpack") + b"\xff\xff\xff\xff")
    lines = _ConnectionFrames("ndjson")
    lines.add(b"x" * MAX_FRAME)
    with pytest.raises(InputError, match="NDJSON line"):
        lines.add(b"x")
