"""A worker's life: pin to a CPU, load the kernels, serve the link to the supervisor.

The supervisor starts each worker as a fresh interpreter
(``python -m mojo_pool.worker``, through ``posix_spawn``), never by forking
itself: nothing of the supervisor's event loop, threads or open metric
files is inherited. The worker needs no event loop at all: it does one
CPU-bound thing at a time, so a blocking read-compute-write loop over its
socketpair is the leanest shape, and requests it has not read yet wait in
the socket buffer (the supervisor bounds how many it sends).

Order matters at start-up: thread-count variables and the metrics
environment are set before numpy or prometheus_client is imported (both
read them once, at import), then the CPU is pinned, the kernels loaded and
the speed-up gauge measured, and only then does the worker say "ready".
The supervisor counts a worker that exits before that as a failed start.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import os
import signal
import socket
import sys
import time

from .arena import MIN_SHARED, PLACE, SHARED_FLAG, ReplyRingWriter, RequestRingReader

# Each worker is pinned to one CPU: a BLAS or OpenMP pool would only fight
# the other workers for their CPUs.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS")
DEBUG_ACTIONS_ENV = "MOJO_POOL_DEBUG_ACTIONS"
EXIT_START_FAILED = 3
LARGE_FRAME = 1 << 18  # bodies this large are received into a buffer of their own
# Replies of at most this many requests wait for each other: enough to save
# most per-reply system calls, few enough that the first reply is not held
# long (4 small requests: ~0.25 ms).
MAX_BURST = 4
PR_SET_PDEATHSIG = 1


def single_threaded_env() -> None:
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this worker if the supervisor dies first.

    The link's EOF would end the worker too, but only once it finishes the
    request in hand; a worker stuck in a long kernel must not outlive its
    supervisor.
    """
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the link's EOF still ends the worker
        pass


class Worker:
    """Serves one link: reads requests, handles them, writes replies, records metrics."""

    def __init__(self, sock: socket.socket, slot: int, cpu: int | None, speedup_interval: float,
                 request_metrics: bool = True, replies: ReplyRingWriter | None = None,
                 requests: RequestRingReader | None = None) -> None:
        from . import protocol  # after the environment is set up
        from .metrics import LARGE_FRAMES
        from .tally import Tally

        self.sock = sock
        self.slot = slot
        self.cpu = cpu
        self.protocol = protocol
        self.speedup_interval = speedup_interval
        self.request_metrics = request_metrics
        self.tally = Tally(direct=True)
        self.large_frames = LARGE_FRAMES
        self.speedup_due = False
        self.idle = False
        self.buffer = bytearray()
        self.chunk = memoryview(bytearray(1 << 20))
        # Where large requests are read and large replies written (see mojo_pool.arena).
        self.replies = replies
        self.requests = requests
        self.extra = debug_actions() if os.environ.get(DEBUG_ACTIONS_ENV) == "1" else {}

    def start(self) -> None:
        from . import ext
        from .indicators import api

        backend = api.backend()
        for family in ext.FAMILIES:
            ext.load(family, backend)
        self.measure_speedup()
        if self.speedup_interval > 0:
            # A timer signal, not a poll() before every read: the re-measurement
            # must cost the request path nothing. Idle, the handler measures at
            # once (Python runs it between the blocking read's retries); busy,
            # it marks the measurement due after the current burst.
            signal.signal(signal.SIGALRM, self.on_alarm)
            signal.setitimer(signal.ITIMER_REAL, self.speedup_interval, self.speedup_interval)
        # Everything loaded so far (numpy, the kernels, the registry) lives as
        # long as the worker: frozen, out of the collector's sight, a full
        # collection no longer walks it in the middle of a request (measured:
        # 28,000 objects, 4.4 ms a full collection before, ~0 after).
        gc.freeze()
        self.send_control({"ready": os.getpid(), "slot": self.slot, "cpu": self.cpu, "backend": backend})

    def measure_speedup(self) -> None:
        from . import speedup

        self.speedup_due = False
        speedup.record_all()

    def on_alarm(self, signum: int, frame: object) -> None:
        if self.idle:
            self.measure_speedup()
        else:
            self.speedup_due = True

    def send_control(self, message: dict[str, object]) -> None:
        import orjson

        body = orjson.dumps(message)
        self.sock.sendall(self.protocol.LINK_REPLY.pack(self.protocol.CONTROL_RID) + self.protocol.frame(body))

    def fill(self) -> bool:
        """Read more from the link; False at EOF.

        Into a buffer kept for the worker's life: ``recv(1 MiB)`` allocates
        its 1 MiB result afresh each call, which glibc serves with mmap,
        mremap to shrink and munmap, plus a page fault per page touched
        (measured with py-spy: 3.3% of the worker in those calls alone).
        """
        self.idle = not self.buffer
        received = self.sock.recv_into(self.chunk)
        self.idle = False
        if not received:
            return False
        self.buffer += self.chunk[:received]
        return True

    def serve(self) -> None:
        """Answer requests until the link closes.

        The requests already in the buffer are handled, up to MAX_BURST,
        before their replies are sent (a burst);
        the burst's metrics are written, then its replies go out in one call.
        A large request is read straight into a buffer of its own size.
        """
        protocol = self.protocol
        header = protocol.LINK_REQUEST.size + protocol.LENGTH.size
        buffer = self.buffer
        while True:
            while len(buffer) < header:
                if not self.fill():
                    return
            length = int.from_bytes(buffer[header - 4:header], "big")
            if len(buffer) < header + length and length >= LARGE_FRAME:
                rid, received = protocol.LINK_REQUEST.unpack_from(buffer)
                body = self.read_large(header, length)
                if body is None:
                    return
                self.send_burst([(rid, self.answer(received, body))])
                continue
            while len(buffer) < header + length:
                if not self.fill():
                    return
            burst = []
            offset = 0
            end = len(buffer)
            while end - offset >= header and len(burst) < MAX_BURST:
                length = int.from_bytes(buffer[offset + header - 4:offset + header], "big")
                if offset + header + length > end:
                    break
                rid, received = protocol.LINK_REQUEST.unpack_from(buffer, offset)
                body = bytes(buffer[offset + header:offset + header + length])
                offset += header + length
                if rid & SHARED_FLAG and self.requests is not None:
                    rid ^= SHARED_FLAG
                    body = self.requests.body(body)  # type: ignore[assignment]
                burst.append((rid, self.answer(received, body)))
            del buffer[:offset]
            self.send_burst(burst)
            if self.speedup_due:
                self.measure_speedup()

    def read_large(self, header: int, length: int) -> bytearray | None:
        """The body of a large frame, received into its own buffer (no re-copying)."""
        body = bytearray(length)
        view = memoryview(body)
        have = len(self.buffer) - header
        view[:have] = self.buffer[header:]
        self.buffer.clear()
        while have < length:
            received = self.sock.recv_into(view[have:])
            if received == 0:
                return None
            have += received
        return body

    def send_burst(self, burst: list[tuple[int, list[bytes | memoryview]]]) -> None:
        """Metrics first (a reply sent is a request counted), then every reply in one gathered send."""
        self.tally.flush()
        protocol = self.protocol
        buffers: list[bytes | memoryview] = []
        for rid, parts in burst:
            size = sum(len(part) for part in parts)
            length = protocol.LENGTH.pack(size)
            if size >= MIN_SHARED:
                start = self.replies.place([length, *parts], len(length) + size) if self.replies else None
                self.large_frames.labels("reply", "socket" if start is None else "shared").inc()
                if start is not None:
                    buffers.append(protocol.LINK_REPLY.pack(rid | SHARED_FLAG) + protocol.LENGTH.pack(PLACE.size) +
                                   PLACE.pack(start, len(length) + size))
                    continue
            buffers.append(protocol.LINK_REPLY.pack(rid) + length)
            buffers.extend(parts)
        send_all(self.sock, buffers)

    def answer(self, received: float, body: bytes | bytearray) -> list[bytes | memoryview]:
        started = time.monotonic()
        parts, outcome = self.handle(body)
        if self.request_metrics:
            self.tally.request(outcome.action, outcome.error_type, outcome.indicator,  # type: ignore[attr-defined]
                               outcome.points, outcome.series, outcome.compute_seconds,  # type: ignore[attr-defined]
                               received, started, time.monotonic())
        return parts

    def handle(self, body: bytes | bytearray) -> tuple[list[bytes | memoryview], object]:
        protocol = self.protocol
        try:
            return protocol.handle_parts(body, extra=self.extra)
        except Exception as exc:  # noqa: BLE001 - a bug must cost one request, never the worker
            import logging

            logging.getLogger("mojo_pool.worker").exception("request failed unexpectedly")
            outcome = protocol.Outcome(action=None, error_type="InternalError")
            return [protocol.error_body(f"internal error ({type(exc).__name__}); logged by the service",
                                        "InternalError")], outcome


def send_all(sock: socket.socket, buffers: list[bytes | memoryview]) -> None:
    """``sendall`` for a list of buffers: gathered writes (sendmsg), no joining copy."""
    views = [memoryview(b).cast("B") for b in buffers if len(b)]
    while views:
        sent = sock.sendmsg(views[:512])  # below IOV_MAX
        while sent:
            if sent >= len(views[0]):
                sent -= len(views.pop(0))
            else:
                views[0] = views[0][sent:]
                sent = 0


def debug_actions() -> dict[str, object]:
    """Test-only actions, enabled by MOJO_POOL_DEBUG_ACTIONS=1: a kernel that hangs, a worker that dies."""

    def sleep(request: dict[str, object]) -> dict[str, object]:
        seconds = request.get("seconds", 1.0)
        time.sleep(float(seconds) if isinstance(seconds, (int, float)) else 1.0)
        return {"status": "ok", "slept": seconds, "pid": os.getpid()}

    def crash(request: dict[str, object]) -> dict[str, object]:
        os.kill(os.getpid(), signal.SIGKILL)
        return {}

    def whoami(request: dict[str, object]) -> dict[str, object]:
        return {"status": "ok", "pid": os.getpid()}

    def fail(request: dict[str, object]) -> dict[str, object]:
        raise RuntimeError("secret internal detail /etc/passwd")

    return {"debug_sleep": sleep, "debug_crash": crash, "debug_whoami": whoami, "debug_raise": fail}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mojo_pool.worker", description="A mojo_pool worker (started by the "
                                     "supervisor, not by hand).")
    parser.add_argument("--fd", type=int, required=True, help="the link socket's file descriptor")
    parser.add_argument("--slot", type=int, required=True)
    parser.add_argument("--cpu", type=int, default=None, help="the CPU to pin to")
    parser.add_argument("--speedup-interval", type=float, default=300.0)
    parser.add_argument("--request-metrics", choices=("on", "off"), default="on")
    parser.add_argument("--nice", type=int, default=None,
                        help="the niceness to run at (the supervisor may run above it; see --supervisor-priority)")
    parser.add_argument("--reply-ring", type=int, nargs=2, metavar=("FD", "BYTES"),
                        help="this worker's reply ring: a memfd and its size (see mojo_pool.arena)")
    parser.add_argument("--request-ring", type=int, nargs=2, metavar=("FD", "BYTES"),
                        help="the pool's request ring: a memfd and its size")
    args = parser.parse_args(argv)
    single_threaded_env()
    die_with_parent()
    # The supervisor's TERM/INT reach the whole process group: a worker
    # finishes through its link (EOF), so it ignores them and never leaves a
    # reply half-written. HUP, TTIN and TTOU are the supervisor's business.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    if args.nice is not None and os.getpriority(os.PRIO_PROCESS, 0) != args.nice:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)  # back down from the supervisor's (always permitted)
    sock = socket.socket(fileno=args.fd)
    sock.setblocking(True)
    try:
        replies = requests = None
        if args.reply_ring:
            replies = ReplyRingWriter(*args.reply_ring)
            os.close(args.reply_ring[0])
        if args.request_ring:
            requests = RequestRingReader(*args.request_ring)
            os.close(args.request_ring[0])
        worker = Worker(sock, args.slot, args.cpu, args.speedup_interval, args.request_metrics == "on", replies,
                        requests)
        worker.start()
    except Exception as exc:  # noqa: BLE001 - reported to the supervisor through the exit code
        print(f"mojo_pool worker {args.slot}: failed to start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_START_FAILED
    try:
        worker.serve()
    except (BrokenPipeError, ConnectionResetError):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
