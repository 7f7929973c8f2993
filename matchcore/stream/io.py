"""Streaming sources and sinks: framing, files (with follow), stdin, TCP on loopback.

Framing is newline-delimited JSON or length-prefixed (4-byte big-endian) MessagePack, for
messages in and verdicts out. Sources yield (frame bytes, input position after the frame);
sinks write verdict events in one system call per batch, and a file sink cuts the incomplete
frame a crash can still leave (a killed write stops part-way) before it appends.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import stat
import struct
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Literal

import msgspec

from ..exceptions import InputError, StateLogError
from .messages import VerdictEvent
from .state import DurableMatcher

Framing = Literal["ndjson", "msgpack"]
FRAMINGS: tuple[str, ...] = ("ndjson", "msgpack")

_LENGTH = struct.Struct(">I")
MAX_FRAME = 16 << 20
_json_encode = msgspec.json.Encoder().encode
_msgpack_encode = msgspec.msgpack.Encoder().encode


# --- framing ----------------------------------------------------------------------------------


def frame(payload: bytes, framing: Framing) -> bytes:
    """One payload framed: a line for NDJSON, a 4-byte length prefix for MessagePack."""
    if framing == "ndjson":
        return payload + b"\n"
    return _LENGTH.pack(len(payload)) + payload


def encode_events(events: list[VerdictEvent], framing: Framing) -> bytes:
    """Verdict events as one framed byte string."""
    encode = _json_encode if framing == "ndjson" else _msgpack_encode
    return b"".join(frame(encode(event), framing) for event in events)


def split_frames(buffer: bytes, framing: Framing, base: int) -> tuple[list[tuple[bytes, int]], int]:
    """Complete frames at the start of `buffer` (each with its end position, `base` + offset)
    and the number of bytes they use. Blank NDJSON lines are skipped."""
    frames: list[tuple[bytes, int]] = []
    offset = 0
    if framing == "ndjson":
        while True:
            end = buffer.find(b"\n", offset)
            if end < 0:
                break
            line = buffer[offset:end]
            offset = end + 1
            if line.strip():
                frames.append((line, base + offset))
        return frames, offset
    size = len(buffer)
    while offset + 4 <= size:
        (length,) = _LENGTH.unpack_from(buffer, offset)
        if length > MAX_FRAME:
            raise InputError(
                f"MessagePack frame at byte {base + offset} claims {length} bytes "
                f"(limit {MAX_FRAME}): not length-prefixed MessagePack"
            )
        if offset + 4 + length > size:
            break
        frames.append((buffer[offset + 4 : offset + 4 + length], base + offset + 4 + length))
        offset += 4 + length
    return frames, offset


def cut_torn_tail(fd: int, framing: Framing, name: str) -> int:
    """Cut an incomplete last frame off the file `name`, open at `fd` (read and write), so
    what is appended next starts a frame of its own; the number of bytes cut. A write of many
    frames stops part-way when its process is killed (Linux checks for a fatal signal between
    pages), which one write call per batch does not prevent. Pipes and terminals are left
    alone. A file whose end is no frame of `framing` torn (another format) is refused, whole:
    InputError."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        return 0
    try:
        end = _frames_end(fd, info.st_size, framing)
    except InputError as error:
        raise InputError(
            f"{name}: {error}; is it a file of another format? It was left as it is"
        ) from None
    if end < info.st_size:
        os.ftruncate(fd, end)
    return info.st_size - end


#: The most a torn frame can leave: a length prefix and a whole frame but its last byte.
_TORN_MAX = _LENGTH.size + MAX_FRAME


def _frames_end(fd: int, size: int, framing: Framing, block: int = 1 << 20) -> int:
    """Where the last whole frame of the file at `fd` (`size` bytes) ends; InputError when
    the bytes after it could not be a torn frame of `framing`."""
    if framing == "ndjson":  # after the last newline, looked for from the end
        end = size
        while end > 0 and size - end <= _TORN_MAX:
            start = max(0, end - block)
            newline = os.pread(fd, end - start, start).rfind(b"\n")
            if newline >= 0:
                end = start + newline + 1
                break
            end = start
        if size - end > _TORN_MAX:
            raise InputError(f"no line ends in its last {_TORN_MAX} bytes")
        return end
    offset = 0  # frames walked from the start by `split_frames`, a block at a time
    while offset < size:
        wanted = min(block, size - offset)
        _, used = split_frames(os.pread(fd, wanted, offset), framing, offset)
        if used:
            offset += used
        elif wanted < size - offset:
            block *= 2  # a frame longer than the block (`split_frames` bounds it)
        else:
            break  # at the torn last frame
    return offset


def read_frames(
    handle: BinaryIO,
    framing: Framing,
    *,
    start: int = 0,
    follow: bool = False,
    poll_interval: float = 0.02,
    chunk_size: int = 1 << 20,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[list[tuple[bytes, int]] | None]:
    """Batches of (frame, end position) from a binary stream, starting at byte `start`.

    With `follow`, end of input yields None (idle: time passes) and reading goes on as the
    file grows, until `stop()`; without it a last unterminated NDJSON line is a frame, and an
    incomplete MessagePack frame is given as is (it then fails to decode: a dead letter).
    """
    position = start
    pending = b""
    while True:
        chunk = handle.read(chunk_size)
        if chunk:
            pending += chunk
            frames, used = split_frames(pending, framing, position)
            position += used
            pending = pending[used:]
            if frames:
                yield frames
            continue
        if follow and not stop():
            yield None
            time.sleep(poll_interval)
            continue
        if pending.strip():
            yield [(pending, position + len(pending))]
        return


def open_input(path: str | Path, start: int = 0) -> BinaryIO:
    """A message file opened for reading at byte `start` ("-" is stdin, read from its start)."""
    if str(path) == "-":
        return sys.stdin.buffer
    file = Path(path)
    if not file.is_file():
        raise InputError(f"input file {file} does not exist or is not a regular file")
    handle = open(file, "rb")  # noqa: SIM115 - the caller closes it
    size = file.stat().st_size
    if start > size:
        handle.close()
        raise InputError(
            f"{file}: the committed offset {start} is past the end of the file ({size} bytes); "
            "was the input replaced?"
        )
    handle.seek(start)
    return handle


# --- sinks ------------------------------------------------------------------------------------


class VerdictSink:
    """Verdict events to a file descriptor (stdout or a file opened for appending).

    `cut` is the bytes of a torn last frame cut from the file when it was opened (see
    `cut_torn_tail`; recovery delivers that frame's verdicts again)."""

    def __init__(self, fd: int, framing: Framing, *, owns: bool = False, cut: int = 0) -> None:
        self.fd = fd
        self.framing = framing
        self.owns = owns
        self.written = 0
        self.cut = cut
        #: Whether `sync` has something to make durable: a regular file (stdout may be one),
        #: not a pipe, socket or terminal, which cannot be synced.
        self.syncs = stat.S_ISREG(os.fstat(fd).st_mode)

    @classmethod
    def to_path(cls, path: str | Path, framing: Framing) -> VerdictSink:
        """A sink appending to `path` ("-" is stdout), a torn last frame cut first."""
        if str(path) == "-":
            return cls(sys.stdout.fileno(), framing)
        fd, cut = _open_appending(path, framing)
        return cls(fd, framing, owns=True, cut=cut)

    def write(self, events: list[VerdictEvent]) -> None:
        """Write the events; one write call, so a crash leaves whole frames only."""
        if not events:
            return
        data = memoryview(encode_events(events, self.framing))
        while data:
            done = os.write(self.fd, data)
            data = data[done:]
        self.written += len(events)

    def sync(self) -> None:
        """Make what was written durable (files; a pipe or terminal needs nothing). A file
        that fails to sync raises: the verdicts a snapshot lets go of from the log must be
        safe here first."""
        if self.syncs:
            os.fsync(self.fd)

    def close(self) -> None:
        """Sync and close (stdout is left open)."""
        self.sync()
        if self.owns:
            os.close(self.fd)


def _open_appending(path: str | Path, framing: Framing) -> tuple[int, int]:
    """A file opened for appending (and reading), its torn last frame cut: the descriptor and
    the bytes cut (see `cut_torn_tail`)."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        return fd, cut_torn_tail(fd, framing, str(path))
    except BaseException:
        os.close(fd)
        raise


class DeadLetters:
    """Dead-letter file: one NDJSON line per bad message (reason, position, raw bytes)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self.fd: int | None = None
        #: Bytes of a torn last line cut when the file was opened (see `cut_torn_tail`; its
        #: message, not committed, is read and dead-lettered again).
        self.cut = 0
        if self.path is not None:
            self.fd, self.cut = _open_appending(self.path, "ndjson")
        self.count = 0

    def write(self, reason: str, position: int | None, raw: bytes) -> None:
        """Record one bad message; raw bytes as text when UTF-8, else base64."""
        self.count += 1
        if self.fd is None:
            return
        record: dict[str, Any] = {"reason": reason, "position": position}
        try:
            record["raw"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            record["raw_base64"] = base64.b64encode(raw).decode("ascii")
        os.write(self.fd, _json_encode(record) + b"\n")

    def sync(self) -> None:
        """Make the dead letters durable."""
        if self.fd is not None:
            os.fsync(self.fd)

    def close(self) -> None:
        """Sync and close."""
        if self.fd is not None:
            self.sync()
            os.close(self.fd)
            self.fd = None


# --- the loop over a file or stdin -------------------------------------------------------------


def run_file(
    processor: DurableMatcher,
    handle: BinaryIO,
    framing: Framing,
    *,
    start: int = 0,
    follow: bool = False,
    stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[], None] = lambda: None,
    poll_every: int = 256,
) -> None:
    """Feed every frame of `handle` to `processor`, letting time pass between small batches
    (every `poll_every` frames and after each read): the frames in between in one call."""
    seen = 0
    for frames in read_frames(handle, framing, start=start, follow=follow, stop=stop):
        if frames is None:
            processor.poll()
            on_progress()
            continue
        offset = 0
        while offset < len(frames):
            part = frames[offset : offset + poll_every - seen % poll_every]
            processor.offer_many([raw for raw, _ in part], [position for _, position in part])
            offset += len(part)
            seen += len(part)
            if seen % poll_every == 0:
                processor.poll()
                on_progress()
        processor.poll()
        on_progress()
        if stop():
            break


def run_messages(
    processor: DurableMatcher,
    messages: Iterator[dict[str, Any]],
    *,
    start: int = 0,
    poll_every: int = 256,
) -> None:
    """Feed messages given as mappings (the CEB reader); position = messages consumed."""
    from .messages import BadMessage, encode_message, from_mapping

    for index, data in enumerate(messages, start=1):
        if index <= start:
            continue
        try:
            processor.offer(encode_message(from_mapping(data)), index)
        except BadMessage as exc:
            processor.reject(exc.reason, index, msgspec.json.encode(data, order="sorted"))
        if index % poll_every == 0:
            processor.poll()
    processor.poll()


# --- TCP on loopback ---------------------------------------------------------------------------


async def _cancel_all(tasks: set[asyncio.Task[None]]) -> None:
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


#: Bytes asked of a connection a read (a read gives what has arrived, up to this).
_READ_SIZE = 1 << 16


class _ConnectionFrames:
    """A connection's bytes cut into frames as they arrive: every complete one a read gives
    (blank NDJSON lines skipped), so the frames that came together are offered in one call.
    Bytes are joined only when a frame may be complete (a newline came, or the length a
    MessagePack header announced), so a large frame is not copied once a read. A frame over
    `MAX_FRAME` is an InputError (which ends the connection; what it sent since the last
    acknowledgement it sends again)."""

    def __init__(self, framing: Framing) -> None:
        self.framing = framing
        self._parts: list[bytes] = []
        self._size = 0
        self._wanted = 1  # bytes held before a frame may be complete

    def add(self, data: bytes) -> list[bytes]:
        """The frames completed by `data` (InputError for a MessagePack frame over the limit)."""
        self._parts.append(data)
        self._size += len(data)
        if self.framing == "ndjson" and b"\n" not in data:
            if self._size > MAX_FRAME:
                raise InputError(f"NDJSON line of over {MAX_FRAME} bytes")
            return []
        if self._size < self._wanted <= _LENGTH.size + MAX_FRAME:
            return []  # split_frames refuses a frame over the limit at once
        buffer = b"".join(self._parts)
        frames, used = split_frames(buffer, self.framing, 0)
        rest = buffer[used:]
        self._parts, self._size = [rest], len(rest)
        self._wanted = 1
        if self.framing == "msgpack" and len(rest) >= _LENGTH.size:
            self._wanted = _LENGTH.size + _LENGTH.unpack_from(rest)[0]
        return [raw for raw, _ in frames]

    def end(self) -> list[bytes]:
        """At the end of the connection: a last unterminated NDJSON line (stripped); an
        incomplete MessagePack frame is dropped (its sender never finished it)."""
        rest = b"".join(self._parts).strip()
        return [rest] if rest and self.framing == "ndjson" else []


class TcpService:
    """Intake on a loopback port (ack frames after the covering fsync) and optional verdict
    output to TCP clients on another port, with bounded queues for backpressure.

    Ack frame: `{"ack": n}` in the connection's framing, n = frames of that connection that
    are durable (accepted, duplicate or dead-lettered). Verdict clients receive every event
    emitted while connected; a slow client slows intake once its queue is full. What waits
    for one client is bounded: `queue_size` micro-batches of events plus `client_buffer`
    bytes in the socket's kernel send buffer and as much again in the transport.
    """

    def __init__(
        self,
        processor: DurableMatcher,
        framing: Framing,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        output_port: int | None = None,
        output_framing: Framing = "ndjson",
        queue_size: int = 1024,
        client_buffer: int = 256 * 1024,
        tick_interval: float = 0.005,
        extra_sink: Callable[[list[VerdictEvent]], None] | None = None,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise InputError(f"the TCP listener only binds to loopback, not {host!r}")
        self.processor = processor
        self.framing = framing
        self.host = host
        self.port = port
        self.output_port = output_port
        self.output_framing = output_framing
        self.queue_size = queue_size
        self.client_buffer = client_buffer
        self.tick_interval = tick_interval
        self.extra_sink = extra_sink
        self._clients: set[asyncio.Queue[bytes | None]] = set()
        self._acks: dict[asyncio.StreamWriter, int] = {}  # connection -> frames received
        self._outbox: list[VerdictEvent] = []
        self._stopping = asyncio.Event()
        self._input_handlers: set[asyncio.Task[None]] = set()
        self._output_handlers: set[asyncio.Task[None]] = set()
        self.bound_port: int | None = None
        self.bound_output_port: int | None = None
        processor.deliver = self._outbox.extend

    async def serve(self, ready: Callable[[int, int | None], None] = lambda p, o: None) -> None:
        """Run until `stop()`: accept messages, tick, commit, ack, and publish verdicts."""
        intake = await asyncio.start_server(self._handle_input, self.host, self.port)
        self.bound_port = intake.sockets[0].getsockname()[1]
        output = None
        if self.output_port is not None:
            output = await asyncio.start_server(self._handle_output, self.host, self.output_port)
            self.bound_output_port = output.sockets[0].getsockname()[1]
        ready(self.bound_port, self.bound_output_port)
        try:
            while not self._stopping.is_set():
                await self._settle()
                try:
                    await asyncio.wait_for(self._stopping.wait(), self.tick_interval)
                except TimeoutError:
                    pass
        finally:
            intake.close()
            if output is not None:
                output.close()
            await _cancel_all(self._input_handlers)  # unacked frames are resent by clients
            self.processor.close()
            await self._publish()  # the last verdicts still reach connected clients
            for queue in list(self._clients):
                await queue.put(None)
            await asyncio.gather(*self._output_handlers, return_exceptions=True)

    def stop(self) -> None:
        """Ask `serve` to finish (state is flushed and snapshotted)."""
        self._stopping.set()

    @staticmethod
    def _track(handlers: set[asyncio.Task[None]]) -> None:
        task = asyncio.current_task()
        if task is not None:
            handlers.add(task)  # type: ignore[arg-type]
            task.add_done_callback(handlers.discard)  # type: ignore[arg-type]

    async def _settle(self) -> None:
        """Let time pass, commit when due, then ack and publish what the commit covered."""
        before = self.processor.matcher.counters.get("commits")
        self.processor.poll()
        if self.processor.matcher.counters.get("commits") != before:
            await self._ack()
        await self._publish()

    async def _ack(self) -> None:
        for writer, count in list(self._acks.items()):
            if writer.is_closing():
                self._acks.pop(writer, None)
                continue
            payload = (_json_encode if self.framing == "ndjson" else _msgpack_encode)(
                {"ack": count}
            )
            writer.write(frame(payload, self.framing))
            await writer.drain()

    async def _publish(self) -> None:
        events, self._outbox[:] = list(self._outbox), []
        if not events:
            return
        if self.extra_sink is not None:
            self.extra_sink(events)
        data = encode_events(events, self.output_framing)
        for queue in list(self._clients):
            await queue.put(data)  # blocks when a client lags: backpressure on intake

    async def _handle_input(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._track(self._input_handlers)
        self._acks[writer] = 0
        frames = _ConnectionFrames(self.framing)
        try:
            while True:
                data = await reader.read(_READ_SIZE)
                batch = frames.add(data) if data else frames.end()
                if batch:
                    self.processor.offer_many(batch)
                    self._acks[writer] += len(batch)
                    # Every read: the matcher may have flushed on its own (batch size), and the
                    # verdicts that produced must wait for slow clients before more is taken.
                    await self._settle()
                if not data:
                    break
            self.processor.commit()
            await self._ack()
            await self._publish()
        except (InputError, ConnectionError, asyncio.CancelledError):
            pass  # the client resends whatever was not acknowledged
        except StateLogError:
            pass  # the service's next tick raises it again (the log stopped): `serve` ends
        finally:
            self._acks.pop(writer, None)
            writer.close()

    async def _handle_output(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._track(self._output_handlers)
        # A fixed send buffer: Linux would otherwise grow it to megabytes for a loopback peer.
        writer.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF, self.client_buffer
        )
        writer.transport.set_write_buffer_limits(high=self.client_buffer)
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(self.queue_size)
        self._clients.add(queue)
        try:
            while True:
                data = await queue.get()
                if data is None:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._clients.discard(queue)
            writer.close()


__all__ = [
    "FRAMINGS",
    "DeadLetters",
    "Framing",
    "TcpService",
    "VerdictSink",
    "encode_events",
    "frame",
    "open_input",
    "read_frames",
    "run_file",
    "run_messages",
    "split_frames",
]
