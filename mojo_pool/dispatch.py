"""Admission, choice of worker, the in-flight table, retries and deadlines.

Everything here runs on the supervisor's event loop and never blocks. A
request is one client frame, forwarded as bytes; the dispatcher decides
where it goes and what happens when things go wrong:

* **Admission.** Each live worker takes at most ``per_worker`` requests at
  a time (enough to keep it busy across the link's round trip, few enough
  that a worker's death re-sends little). Beyond that, requests wait in one
  FIFO queue of at most ``queue_limit``; past that the client gets ``Busy``
  at once. Nothing is ever queued without bound. With ``max_queue_wait``
  set, a request that waited that long for its first worker also gets
  ``Busy``, when a worker frees up or at the next tick, whichever comes
  first: under overload the queue's length says little about its wait
  (the served rate falls as refusals take CPU), so this is the bound in
  time a latency-sensitive client wants. Requests re-sent after a worker
  died are exempt: they were being computed already.
* **Choice.** The least-loaded ready worker, by requests in flight.
* **Worker death.** Its in-flight requests go back to the head of the queue
  and are sent again, once (indicator work is idempotent); a request that
  loses a second worker gets ``WorkerLost`` instead of killing a third.
* **Deadlines.** A request still unanswered ``timeout`` seconds after it
  arrived gets ``TimeoutError``; if a worker holds it, that worker overran
  and is replaced (the arbiter kills it).
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Callable, Protocol

from . import protocol
from .arena import SHARED_FLAG, ReplyRingReader
from .framing import Assembler
from .protocol import LINK_REPLY, LINK_REQUEST, LENGTH

MAX_ATTEMPTS = 2  # the first send and one re-send after a worker died


class Replyable(Protocol):
    """What a request needs from the connection it came on."""

    def deliver(self, request: "Request", reply_frame: bytes | memoryview) -> None: ...


class Flushable(Protocol):
    marked: bool

    def flush(self) -> None: ...


class Request:
    """One client frame on its way through the pool."""

    __slots__ = ("source", "frame", "received", "deadline", "attempts", "rid", "replied", "place")

    def __init__(self, source: Replyable, frame: bytes | memoryview, received: float, deadline: float,
                 place: bytes | None = None) -> None:
        self.source = source
        self.frame = frame  # length prefix + body, exactly as the client sent it
        self.place = place  # where the frame is in the request ring, if it is there (see mojo_pool.arena)
        self.received = received
        self.deadline = deadline
        self.attempts = 0
        self.rid = 0
        self.replied = False


class WorkerLink(asyncio.Protocol):
    """The supervisor's end of one worker's socketpair."""

    def __init__(self, slot: int, pid: int, metrics_id: str,
                 on_ready: Callable[["WorkerLink", dict], None], on_reply: Callable[["WorkerLink", int, bytes], None],
                 on_lost: Callable[["WorkerLink"], None], replies: ReplyRingReader | None = None) -> None:
        self.slot = slot
        self.pid = pid
        self.metrics_id = metrics_id
        self.on_ready = on_ready
        self.on_reply = on_reply
        self.on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self.inflight: dict[int, Request] = {}
        self.ready = False
        self.retiring = False  # takes no new requests; closed once its in-flight ones are answered
        self.lost = False
        self.kill_reason: str | None = None
        self.ready_at: float | None = None
        self.last_cpu = 0.0  # CPU seconds last read from /proc, so a slot's counter never goes back
        self.cpu_counted = False  # reaped: its CPU is in its slot's past_cpu_seconds
        self.out: list[bytes | memoryview] = []
        self.marked = False
        self.frames = Assembler(LINK_REPLY.size)
        self.replies = replies  # where the worker puts large replies (see mojo_pool.arena)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        for frame in self.frames.feed(data):
            (rid,) = LINK_REPLY.unpack_from(frame)
            reply = frame[LINK_REPLY.size:]  # the client frame, forwarded as is
            if rid & SHARED_FLAG and self.replies is not None:
                self.on_reply(self, rid ^ SHARED_FLAG, self.replies.frame(reply[LENGTH.size:]))
            elif rid == protocol.CONTROL_RID:
                self.control(bytes(reply[LENGTH.size:]))
            else:
                self.on_reply(self, rid, reply)

    def control(self, body: bytes) -> None:
        import orjson

        message = orjson.loads(body)
        if "ready" in message:
            self.ready = True
            self.ready_at = time.monotonic()
            self.on_ready(self, message)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.on_lost(self)

    def send(self, request: Request) -> None:
        """Queue the request for the next flush."""
        if request.place is not None:
            self.out.append(LINK_REQUEST.pack(request.rid | SHARED_FLAG, request.received) +
                            LENGTH.pack(len(request.place)) + request.place)
        else:
            self.out.append(LINK_REQUEST.pack(request.rid, request.received))
            self.out.append(request.frame)

    def flush(self) -> None:
        if self.out and self.transport is not None and not self.transport.is_closing():
            self.transport.writelines(self.out)
        self.out = []

    def close(self) -> None:
        """EOF on the link: the worker finishes what it read and exits."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class Dispatcher:
    def __init__(self, per_worker: int, queue_limit: int, timeout: float,
                 reject: Callable[[Request, str, str, str], None], kill: Callable[[WorkerLink, str], None],
                 max_queue_wait: float = 0.0) -> None:
        self.per_worker = per_worker
        self.queue_limit = queue_limit
        self.max_queue_wait = max_queue_wait
        self.timeout = timeout
        self.reject = reject  # (request, message, error_type, reason) -> error reply to the client
        self.kill = kill  # (worker, reason) -> the arbiter replaces it
        self.workers: list[WorkerLink] = []  # ready and not retiring: the ones requests go to
        self.links: set[WorkerLink] = set()  # every live link, including retiring ones
        self.queue: deque[Request] = deque()
        self.next_rid = 1
        self.dirty: list[Flushable] = []
        self.flush_scheduled = False
        self.call_soon: Callable[..., object] | None = None  # the running loop's, taken at the first mark
        self.on_idle: Callable[[WorkerLink], None] | None = None  # a retiring worker finished its last request

    # ---- admission -------------------------------------------------------
    def submit(self, request: Request) -> None:
        worker = self.least_loaded()
        if worker is not None and not self.queue:
            self.send(worker, request)
        elif len(self.queue) < self.queue_limit:
            self.queue.append(request)
        else:
            self.reject(request, f"service busy: {self.queue_limit} requests already queued; retry later",
                        "Busy", "busy")

    def least_loaded(self) -> WorkerLink | None:
        best: WorkerLink | None = None
        load = self.per_worker
        for worker in self.workers:
            if len(worker.inflight) < load:
                best, load = worker, len(worker.inflight)
        return best

    def send(self, worker: WorkerLink, request: Request) -> None:
        request.rid = self.next_rid
        self.next_rid += 1
        request.attempts += 1
        worker.inflight[request.rid] = request
        worker.send(request)
        self.mark(worker)

    def mark(self, target: "Flushable") -> None:
        """Gather writes: ``target.flush()`` runs once at the end of this
        event-loop pass, so the frames of a pipelined burst (and the replies of
        a worker's burst) go out in one system call instead of one each."""
        if target.marked:
            return
        target.marked = True
        self.dirty.append(target)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            if self.call_soon is None:
                # Looked up once: asyncio.get_running_loop() makes a getpid()
                # system call each time (its fork check), 2% of the
                # supervisor's samples when it ran per request.
                self.call_soon = asyncio.get_running_loop().call_soon
            self.call_soon(self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        dirty, self.dirty = self.dirty, []
        for target in dirty:
            target.marked = False
            target.flush()

    def pump(self) -> None:
        """Move queued requests to workers with room."""
        queue = self.queue
        stale_before = time.monotonic() - self.max_queue_wait if self.max_queue_wait else 0.0
        while queue:
            worker = self.least_loaded()
            if worker is None:
                return
            request = queue.popleft()
            if request.replied:
                continue
            if request.received < stale_before and not request.attempts:
                self.refuse_stale(request)
            else:
                self.send(worker, request)

    def refuse_stale(self, request: Request) -> None:
        self.reject(request, f"service busy: no worker free within {self.max_queue_wait:g} s; retry later",
                    "Busy", "busy")

    # ---- replies and failures -------------------------------------------
    def complete(self, worker: WorkerLink, rid: int, reply: bytes | memoryview) -> None:
        request = worker.inflight.pop(rid, None)
        if request is not None and not request.replied:
            request.replied = True
            request.source.deliver(request, reply)
        if worker.retiring and not worker.inflight and self.on_idle is not None:
            self.on_idle(worker)
        self.pump()

    def add(self, worker: WorkerLink) -> None:
        """A worker said it is ready: it takes requests from now on."""
        self.links.add(worker)
        self.workers.append(worker)
        self.pump()

    def retire(self, worker: WorkerLink) -> None:
        """No new requests for ``worker``; ``on_idle`` fires once its last one is answered."""
        worker.retiring = True
        if worker in self.workers:
            self.workers.remove(worker)
        if not worker.inflight and self.on_idle is not None:
            self.on_idle(worker)

    def lost(self, worker: WorkerLink) -> None:
        """The worker's link closed: re-send what it held, once."""
        if worker in self.workers:
            self.workers.remove(worker)
        self.links.discard(worker)
        retry: list[Request] = []
        for request in worker.inflight.values():
            if request.replied:
                continue
            if request.attempts >= MAX_ATTEMPTS:
                self.reject(request, "the worker computing this request died twice; not retried again",
                            "WorkerLost", "")
            else:
                retry.append(request)
        worker.inflight.clear()
        # Back to the head of the queue, in arrival order: they were admitted already.
        self.queue.extendleft(reversed(retry))
        self.pump()

    def expire(self, now: float) -> None:
        """Answer requests past their deadline; a worker holding one overran and is killed."""
        while self.queue and (self.queue[0].replied or self.queue[0].deadline <= now):
            request = self.queue.popleft()
            if not request.replied:
                self.reject(request, f"no worker took the request within {self.timeout:g} s", "TimeoutError",
                            "timeout")
        if self.max_queue_wait:
            # The queue is in arrival order except for re-sent requests at its
            # head, which are exempt: stop at the first fresh one.
            stale_before = now - self.max_queue_wait
            keep: list[Request] = []
            while self.queue and (self.queue[0].attempts or self.queue[0].received < stale_before):
                request = self.queue.popleft()
                if request.attempts:
                    keep.append(request)
                elif not request.replied:
                    self.refuse_stale(request)
            self.queue.extendleft(reversed(keep))
        for worker in list(self.links):
            late = [r for r in worker.inflight.values() if r.deadline <= now and not r.replied]
            for request in late:
                del worker.inflight[request.rid]
                self.reject(request, f"not computed within {self.timeout:g} s; the worker was replaced",
                            "TimeoutError", "timeout")
            if late:
                self.kill(worker, "timeout")

    def outstanding(self) -> int:
        """Requests admitted and not yet answered (queued or in a worker)."""
        return len(self.queue) + sum(len(w.inflight) for w in self.links)
