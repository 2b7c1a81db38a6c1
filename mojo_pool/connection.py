"""One client connection in the supervisor: framing in, replies out in order.

The supervisor reads only the 4-byte length of each frame; bodies go to
workers as they came. A connection may pipeline any number of frames:
each becomes a :class:`~mojo_pool.dispatch.Request` in ``pending``, and
replies are written in the order the requests arrived, whichever worker
finishes first. Frames are memoryview slices of the bytes read (no copy),
and replies are gathered and written once per event-loop pass. A frame of
``arena.MIN_SHARED`` bytes or more, once its length has arrived, is read
straight into the shared request ring (``get_buffer`` hands uvloop the
rest of its region), where the workers read it in place. A client that
stops reading its replies is not read from either (``pause_writing``), so
it cannot make the supervisor buffer without bound.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING, Callable

from . import metrics, protocol
from .arena import MIN_SHARED
from .dispatch import Request
from .framing import Assembler

if TYPE_CHECKING:
    from .arbiter import Arbiter


# Where every connection's small reads land: each read is copied out at once
# (as a bytes object, what a plain Protocol would have been handed), so one
# buffer serves all connections of the event loop.
READ_BUFFER = memoryview(bytearray(256 * 1024))


class ClientConnection(asyncio.BufferedProtocol):
    def __init__(self, arbiter: "Arbiter") -> None:
        self.arbiter = arbiter
        self.transport: asyncio.Transport | None = None
        self.frames = Assembler(0, arbiter.config.max_frame_bytes)
        # A large frame is received straight into the request ring, where the
        # workers read it: no bytes objects, no join, no copy to the link.
        self.large: memoryview | None = None
        self.large_have = 0
        self.large_place: bytes | None = None
        self.pending: deque[Request] = deque()
        self.closed = False
        self.close_after_flush = False
        self.reading = True
        self.out: list[bytes | memoryview] = []  # replies gathered for one write (see Dispatcher.mark)
        self.marked = False

    # ---- asyncio.Protocol ------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.last_active = time.monotonic()
        limit = self.arbiter.config.max_connections
        if len(self.arbiter.connections) >= limit:
            # A clear refusal, not a silent reset: one error frame, then close.
            self.closed = True
            metrics.REJECTED.labels("connections").inc()
            body = protocol.error_body(f"too many connections (limit {limit}); retry later", "Busy")
            transport.write(protocol.frame(body))  # type: ignore[attr-defined]
            transport.close()
            return
        self.arbiter.connections.add(self)
        metrics.ACTIVE_CONNECTIONS.inc()
        if self.arbiter.closing:
            self.pause()

    def connection_lost(self, exc: Exception | None) -> None:
        if self not in self.arbiter.connections:
            return  # refused at connection_made: never counted
        self.closed = True
        self.large = None  # a frame half received into the request ring: its region is released
        self.arbiter.connections.discard(self)
        metrics.ACTIVE_CONNECTIONS.dec()
        # Requests still queued for a worker are dropped (no one to answer);
        # ones already in a worker finish there and their replies are discarded.
        for request in self.pending:
            request.replied = True
        self.pending.clear()
        self.arbiter.connection_gone()

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.large is not None:
            return self.large[self.large_have:]
        return READ_BUFFER

    def buffer_updated(self, nbytes: int) -> None:
        if self.large is None:
            if self.frames.between_frames() and self.start_large(nbytes):
                return
            self.data_received(bytes(READ_BUFFER[:nbytes]))
            return
        self.large_have += nbytes
        if self.large_have == len(self.large):
            frame, place = self.large, self.large_place
            self.large = self.large_place = None
            self.submit([frame], place)

    def data_received(self, data: bytes) -> None:
        if self.close_after_flush:
            return
        frames = self.frames.feed(data)
        if frames:
            self.submit(frames)
        if self.frames.too_large is not None:
            self.refuse_frame(self.frames.too_large, self.arbiter.config.max_frame_bytes)
        elif self.frames.pending() >= MIN_SHARED:
            self.receive_large(self.frames.pending())

    def submit(self, frames: list[memoryview], place: bytes | None = None) -> None:
        now = self.last_active = time.monotonic()
        deadline = now + self.arbiter.config.request_timeout
        dispatcher = self.arbiter.dispatcher
        for frame in frames:
            if len(frame) >= MIN_SHARED:
                metrics.LARGE_FRAMES.labels("request", "shared" if place is not None else "socket").inc()
            request = Request(self, frame, now, deadline, place)
            self.pending.append(request)
            dispatcher.submit(request)

    def start_large(self, nbytes: int) -> bool:
        """A read that begins a large frame (the usual way one arrives) is
        copied from the shared read buffer straight into the request ring.

        Through :meth:`data_received` its first read (up to 256 KiB) was
        copied three times: into a bytes object, into the assembler's
        partial piece, into the ring. Under batch RSI 100 x 1,000 JSON
        requests (1.8 MB each way) over the Unix socket, ``cpu_split.py``,
        three alternating runs each: the supervisor's CPU fell from 617-666
        to 402-415 us a request. Over TCP loopback, whose reads come in
        smaller pieces, no change showed.
        """
        if nbytes < 4 or self.close_after_flush:
            return False
        size = 4 + int.from_bytes(READ_BUFFER[:4], "big")
        if size <= nbytes or size < MIN_SHARED or size - 4 > self.arbiter.config.max_frame_bytes:
            return False  # whole already, small, or refused by the usual path
        return self.into_ring(size, lambda: [READ_BUFFER[:nbytes]])

    def receive_large(self, size: int) -> None:
        """Read the rest of a large frame in place, into the request ring.

        If the ring is full the frame is assembled from its reads as before:
        memory then grows with the bytes that arrive, never with what a
        frame's length merely announces (a client that announces 64 MiB and
        stalls must not cost 64 MiB).
        """
        self.into_ring(size, self.frames.take_pending)

    def into_ring(self, size: int, first_bytes: Callable[[], list[bytes | memoryview]]) -> bool:
        """Reserve the request ring's region for a ``size``-byte frame and copy
        the bytes already read (``first_bytes()``, taken only if it fits)
        there; the rest is read in place. False if the ring is full or off."""
        ring = self.arbiter.request_ring
        reserved = ring.reserve(size) if ring is not None else None
        if reserved is None:
            return False
        self.large, self.large_place = reserved
        have = 0
        for piece in first_bytes():
            self.large[have:have + len(piece)] = piece
            have += len(piece)
        self.large_have = have
        return True

    def pause_writing(self) -> None:
        self.pause()

    def resume_writing(self) -> None:
        if not self.arbiter.closing:
            self.resume()

    # ---- replies ---------------------------------------------------------
    def deliver(self, request: Request, reply_frame: bytes | memoryview) -> None:
        request.frame = reply_frame  # the request's bytes are no longer needed
        request.replied = True
        if self.closed:
            return
        pending = self.pending
        if pending[0] is not request:
            return  # an earlier request is still being computed; written when it is
        out = self.out
        while pending and pending[0].replied:
            out.append(pending.popleft().frame)
        self.arbiter.dispatcher.mark(self)

    def flush(self) -> None:
        """Write the replies gathered since the last flush, in one call."""
        if self.closed:
            return
        if self.out:
            self.transport.writelines(self.out)  # type: ignore[union-attr]
            self.out = []
            self.last_active = time.monotonic()
        if not self.pending:
            if self.close_after_flush:
                self.transport.close()  # type: ignore[union-attr]
            elif self.arbiter.closing:
                self.arbiter.connection_idle(self)

    def refuse_frame(self, length: int, limit: int) -> None:
        """A frame over the limit: an error reply after the earlier ones, then close."""
        self.close_after_flush = True
        self.pause()
        request = Request(self, b"", time.monotonic(), 0.0)
        self.pending.append(request)
        self.arbiter.count_rejection(None, "FrameTooLarge", "too_large")
        body = protocol.error_body(f"frame of {length} bytes exceeds the limit of {limit} bytes; closing the "
                                   f"connection", "FrameTooLarge")
        self.deliver(request, protocol.frame(body))

    # ---- flow control ----------------------------------------------------
    def pause(self) -> None:
        if self.reading and self.transport is not None and not self.closed:
            self.reading = False
            self.transport.pause_reading()

    def resume(self) -> None:
        if not self.reading and self.transport is not None and not self.closed and not self.close_after_flush:
            self.reading = True
            self.transport.resume_reading()

    def idle_since(self, now: float) -> float:
        """Seconds without a complete request and with nothing awaiting a reply (0 if busy)."""
        return 0.0 if self.pending else now - self.last_active

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
