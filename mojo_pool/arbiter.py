"""The supervisor: listeners, workers in their slots, signals, the metrics endpoint.

The Arbiter owns everything long-lived on the supervisor's uvloop event
loop. It starts one worker per slot (slot ``k`` pinned to the k-th CPU of
this process's affinity mask), replaces workers that die, and reacts to
signals the way operators of pre-fork servers expect:

=========  ================================================================
TERM       drain: stop accepting, answer every accepted request, exit
INT, QUIT  stop fast: close everything, workers get EOF then SIGKILL
HUP        replace every worker, new first: the old one retires only once
           its replacement is ready, so capacity never dips
TTIN/TTOU  one worker more / one fewer
=========  ================================================================

Exited workers are noticed by their link's EOF and reaped by a 50 ms poll
(uvloop keeps SIGCHLD for itself).

Replacement has a memory: a worker that dies soon after starting is
respawned with a growing delay, and a slot whose workers fail to start
``start_failures`` times in a row stops the service with a clear error
instead of crash-looping.

Workers are started with ``posix_spawn`` as fresh interpreters; each gets
one end of a socketpair (the link) and its metric-file id. A slot keeps its
id across restarts, so a respawned worker continues its predecessor's
counters; during HUP the two workers of a slot hold different ids, since
two live processes must never write one file.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import stat
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import uvloop
from prometheus_client import multiprocess

from . import __version__, arena, metrics, protocol
from .config import Config
from .connection import ClientConnection
from .dispatch import Dispatcher, Request, WorkerLink
from .exporter import Exporter, Health
from .pool_collector import PoolSnapshot, WorkerSlot, process_cpu_seconds
from .priority import Priority
from .tally import Tally
from .worker import THREAD_VARIABLES

log = logging.getLogger("mojo_pool.arbiter")

TICK_SECONDS = 0.05
QUICK_DEATH_SECONDS = 1.0  # a worker dying sooner than this after ready counts toward the backoff
MAX_BACKOFF_SECONDS = 5.0
# Bytes either end of a link may have queued (Unix stream sockets bound what is
# in flight by the sender's SO_SNDBUF; the kernel caps it at net.core.wmem_max).
# The default ~208 KiB is ~11 SMA-1000 replies: under overload the supervisor's
# loop pass, busy with hundreds of client reads, took longer than a worker
# needed to fill that, and the worker then sat blocked in sendmsg.
LINK_BUFFER_BYTES = 4 << 20
# glibc malloc in the workers (unless GLIBC_TUNABLES is set already): blocks
# up to 16 MiB come from the heap rather than from mmap, and the heap keeps
# up to 64 MiB of freed memory instead of handing it back. A request's
# buffers (a parsed body, outputs, the reply) are mostly above glibc's
# default 128 KiB mmap threshold, so each one was a fresh mapping whose
# pages faulted in on first write, and freed ones went straight back.
WORKER_MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=16777216:glibc.malloc.trim_threshold=67108864"
STOP_GRACE_SECONDS = 5.0


@dataclass
class Slot:
    index: int
    cpu: int
    worker: WorkerLink | None = None
    retiring: list[WorkerLink] = field(default_factory=list)
    past_cpu_seconds: float = 0.0
    start_failures: int = 0
    quick_deaths: int = 0
    respawn: asyncio.TimerHandle | None = None
    removed: bool = False


class Arbiter:
    def __init__(self, config: Config, metrics_dir: Path) -> None:
        self.config = config
        self.metrics_dir = metrics_dir
        self.cpus = sorted(os.sched_getaffinity(0))
        self.worker_nice = os.getpriority(os.PRIO_PROCESS, 0)  # the workers keep what the service started with
        self.priority = Priority(config.supervisor_priority, self.worker_nice)
        self.slots: list[Slot] = []
        self.children: dict[int, tuple[Slot, WorkerLink]] = {}
        self.metrics_ids: set[str] = set()
        self.connections: set[ClientConnection] = set()
        self.cpu_lock = threading.Lock()
        self.tally = Tally()
        self.servers: list[asyncio.AbstractServer] = []
        self.dispatcher = Dispatcher(config.worker_inflight, config.queue_limit, config.request_timeout,
                                     self.reject, self.kill, config.max_queue_wait)
        self.dispatcher.on_idle = self.retired_idle
        # Large request frames are received here and read in place by the workers (see mojo_pool.arena).
        self.request_ring = arena.RequestRing(config.request_arena_bytes) if config.request_arena_bytes else None
        self.draining = False  # SIGTERM received: /ready says 503
        self.closing = False  # listeners closed, connections finishing what they sent
        self.stopping = False
        self.drain_deadline = 0.0
        self.started_at = time.time()
        self.announced_ready = False
        self.exit_code = 0
        self.done: asyncio.Future[int] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.exporter: Exporter | None = None
        self.addresses: list[str] = []

    # ---- life ------------------------------------------------------------
    def run(self) -> int:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(self.main())

    async def main(self) -> int:
        self.loop = asyncio.get_running_loop()
        self.done = self.loop.create_future()
        self.set_info()
        self.exporter = Exporter(self.health, self.config.metrics_host, self.config.metrics_port,
                                 pool=self.snapshot, certfile=self.config.metrics_certfile or None,
                                 keyfile=self.config.metrics_keyfile or None,
                                 basic_auth=tuple(self.config.metrics_basic_auth.split(":", 1))  # type: ignore[arg-type]
                                 if self.config.metrics_basic_auth else None).start()
        await self.listen()
        host, port = self.exporter.address
        scheme = "https" if self.config.metrics_certfile else "http"
        say(f"listening on {', '.join(self.addresses)}; metrics on {scheme}://{host}:{port}/metrics")
        problem = self.priority.start()
        if problem:
            say(f"note: {problem}")
        for index in range(self.config.worker_count()):
            self.slots.append(Slot(index, self.cpus[index % len(self.cpus)]))
        for slot in self.slots:
            self.spawn(slot)
        for sig, handler in ((signal.SIGTERM, self.handle_term), (signal.SIGINT, self.handle_int),
                             (signal.SIGQUIT, self.handle_int), (signal.SIGHUP, self.handle_hup),
                             (signal.SIGTTIN, self.handle_ttin), (signal.SIGTTOU, self.handle_ttou)):
            self.loop.add_signal_handler(sig, handler)
        gc.freeze()  # start-up objects live as long as the service: no full collection walks them again
        ticker = self.loop.create_task(self.tick())
        try:
            return await self.done
        finally:
            ticker.cancel()
            await self.shutdown()

    async def listen(self) -> None:
        assert self.loop is not None
        factory = lambda: ClientConnection(self)  # noqa: E731
        if self.config.socket:
            path = self.config.socket
            remove_stale_socket(path)
            server = await self.loop.create_unix_server(factory, path, backlog=1024)
            os.chmod(path, self.config.socket_mode)
            self.servers.append(server)
            self.addresses.append(f"unix:{path}")
        if self.config.host:
            server = await self.loop.create_server(factory, self.config.host, self.config.port, backlog=1024,
                                                   reuse_address=True)
            self.servers.append(server)
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                self.addresses.append(f"tcp://{host}:{port}")
        if not self.servers:
            raise SystemExit("mojo-pool: no listener: give --socket or --host")

    async def tick(self) -> None:
        next_idle_check = 0.0
        while True:
            await asyncio.sleep(TICK_SECONDS)
            now = time.monotonic()
            self.dispatcher.expire(now)
            self.dispatcher.flush()
            self.reap()
            self.priority.tick(now)
            if now >= next_idle_check:  # O(connections): once a second, not every tick
                next_idle_check = now + min(1.0, self.config.idle_timeout / 2)
                self.close_idle(now)
            if self.closing and now >= self.drain_deadline:
                say(f"drain timeout ({self.config.drain_timeout:g} s) reached with "
                    f"{self.dispatcher.outstanding()} requests unanswered; stopping")
                self.finish(0)

    def finish(self, code: int) -> None:
        if self.done is not None and not self.done.done():
            self.exit_code = code
            self.done.set_result(code)

    async def shutdown(self) -> None:
        """Close everything: listeners, connections, then workers (EOF, then SIGKILL)."""
        self.stopping = True
        self.close_listeners()
        for connection in list(self.connections):
            connection.close()
        for slot in self.slots:
            if slot.respawn is not None:
                slot.respawn.cancel()
        for _, link in list(self.children.values()):
            link.close()
        deadline = time.monotonic() + (1.0 if self.exit_code or not self.closing else STOP_GRACE_SECONDS)
        while self.children and time.monotonic() < deadline:
            self.reap()
            await asyncio.sleep(0.02)
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        while self.children:
            self.reap(block=True)
        if self.exporter is not None:
            self.exporter.stop()

    def close_listeners(self) -> None:
        for server in self.servers:
            server.close()
        self.servers.clear()
        if self.config.socket:
            try:
                if stat.S_ISSOCK(os.stat(self.config.socket).st_mode):
                    os.unlink(self.config.socket)
            except FileNotFoundError:
                pass

    # ---- signals ---------------------------------------------------------
    def handle_term(self) -> None:
        """Drain: /ready answers 503 at once; after --drain-grace (time for a
        load balancer's health check to notice) stop accepting, answer
        everything accepted, exit."""
        if self.draining:
            return
        self.draining = True
        grace = self.config.drain_grace
        if grace > 0:
            say(f"SIGTERM: not ready; still serving for {grace:g} s (--drain-grace), then draining")
            assert self.loop is not None
            self.loop.call_later(grace, self.stop_accepting)
        else:
            self.stop_accepting()

    def stop_accepting(self) -> None:
        say(f"draining {self.dispatcher.outstanding()} requests, no new connections")
        self.closing = True
        self.drain_deadline = time.monotonic() + self.config.drain_timeout
        self.close_listeners()
        for connection in list(self.connections):
            connection.pause()
            if not connection.pending:
                connection.close()
        self.connection_gone()

    def handle_int(self) -> None:
        say("stopping now")
        self.finish(0)

    def handle_hup(self) -> None:
        say("SIGHUP: replacing every worker, new ones first")
        for slot in self.slots:
            if slot.worker is not None and not slot.removed:
                slot.retiring.append(slot.worker)
                slot.worker = None
                self.spawn(slot)

    def handle_ttin(self) -> None:
        slot = Slot(len(self.slots), self.cpus[len(self.slots) % len(self.cpus)])
        self.slots.append(slot)
        say(f"SIGTTIN: adding worker slot {slot.index}")
        self.spawn(slot)

    def handle_ttou(self) -> None:
        if len(self.slots) <= 1:
            say("SIGTTOU: keeping the last worker")
            return
        slot = self.slots.pop()
        slot.removed = True
        say(f"SIGTTOU: removing worker slot {slot.index}")
        if slot.respawn is not None:
            slot.respawn.cancel()
        if slot.worker is not None:
            worker, slot.worker = slot.worker, None
            slot.retiring.append(worker)
            self.dispatcher.retire(worker)

    # ---- connections -----------------------------------------------------
    def close_idle(self, now: float) -> None:
        """Close connections idle past --idle-timeout, half-sent frames included (slowloris)."""
        limit = self.config.idle_timeout
        for connection in [c for c in self.connections if c.idle_since(now) > limit]:
            metrics.REJECTED.labels("idle").inc()
            connection.close()

    def connection_idle(self, connection: ClientConnection) -> None:
        connection.close()

    def connection_gone(self) -> None:
        if self.closing and not self.connections:
            say("drained: every accepted request answered")
            self.finish(0)

    # ---- workers ---------------------------------------------------------
    def spawn(self, slot: Slot) -> None:
        assert self.loop is not None
        slot.respawn = None
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for end in (parent, child):
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, LINK_BUFFER_BYTES)
        child.set_inheritable(True)
        metrics_id = self.free_metrics_id(slot.index)
        argv = [sys.executable, "-m", "mojo_pool.worker", "--fd", str(child.fileno()), "--slot", str(slot.index),
                "--cpu", str(slot.cpu), "--speedup-interval", str(self.config.speedup_interval),
                "--request-metrics", "on" if self.config.request_metrics else "off", "--nice", str(self.worker_nice)]
        size = self.config.reply_arena_bytes
        arena_fd = arena.create(size) if size else -1
        if size:
            argv += ["--reply-ring", str(arena_fd), str(size)]
        if self.request_ring is not None:
            argv += ["--request-ring", str(self.request_ring.fd), str(self.config.request_arena_bytes)]
        # Thread pools sized to one before the worker's interpreter starts:
        # numpy's BLAS reads these once, when it loads.
        env = {**os.environ, **{name: "1" for name in THREAD_VARIABLES}, metrics.METRICS_ID_ENV: metrics_id}
        env.setdefault("GLIBC_TUNABLES", WORKER_MALLOC_TUNABLES)
        try:
            pid = os.posix_spawn(sys.executable, argv, env, setsigmask=())
            reader = arena.ReplyRingReader(arena_fd, size) if size else None
        finally:
            child.close()
            if size:
                os.close(arena_fd)
        self.metrics_ids.add(metrics_id)
        link = WorkerLink(slot.index, pid, metrics_id, self.worker_ready, self.dispatcher.complete,
                          self.worker_lost, reader)
        self.children[pid] = (slot, link)
        if slot.worker is None:
            slot.worker = link
        self.loop.create_task(self.loop.create_unix_connection(lambda: link, sock=parent))

    def free_metrics_id(self, index: int) -> str:
        generation = 0
        while f"w{index}g{generation}" in self.metrics_ids:
            generation += 1
        return f"w{index}g{generation}"

    def worker_ready(self, link: WorkerLink, message: dict) -> None:
        slot, _ = self.children.get(link.pid, (None, None))
        if slot is None or self.stopping:
            return
        slot.start_failures = 0
        if slot.removed or link is not slot.worker:
            self.dispatcher.retire(link)
            return
        self.dispatcher.add(link)
        if message.get("backend") != "compiled":
            log.error("worker %d runs %s kernels", slot.index, message.get("backend"))
        for old in slot.retiring:
            self.dispatcher.retire(old)
        if not self.announced_ready and all(s.worker is not None and s.worker.ready for s in self.slots):
            self.announced_ready = True
            say(f"ready: {len(self.slots)} workers on CPUs "
                f"{', '.join(str(s.cpu) for s in self.slots)}, {message.get('backend')} kernels")

    def retired_idle(self, link: WorkerLink) -> None:
        link.close()

    def worker_lost(self, link: WorkerLink) -> None:
        self.dispatcher.lost(link)
        self.reap()

    def kill(self, link: WorkerLink, reason: str) -> None:
        """Replace an overrunning worker: SIGKILL now, respawned when reaped."""
        if link.kill_reason is None:
            link.kill_reason = reason
            log.warning("killing worker %d (pid %d): %s", link.slot, link.pid, reason)
            try:
                os.kill(link.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def reap(self, block: bool = False) -> None:
        for pid in list(self.children):
            try:
                done, status, usage = os.wait4(pid, 0 if block else os.WNOHANG)
            except ChildProcessError:
                done, status, usage = pid, 0, None
            if done == 0:
                continue
            slot, link = self.children.pop(pid)
            cpu = (usage.ru_utime + usage.ru_stime) if usage is not None else 0.0
            with self.cpu_lock:  # the exporter thread must see the CPU in past or in the link, once
                slot.past_cpu_seconds += max(cpu, link.last_cpu)
                link.cpu_counted = True
            self.metrics_ids.discard(link.metrics_id)
            multiprocess.mark_process_dead(link.metrics_id, str(self.metrics_dir))  # type: ignore[arg-type]
            link.close()
            if not link.lost:
                self.dispatcher.lost(link)
            self.after_exit(slot, link, status)

    def after_exit(self, slot: Slot, link: WorkerLink, status: int) -> None:
        if link in slot.retiring:
            slot.retiring.remove(link)
            metrics.WORKER_RESTARTS.labels("scale" if slot.removed else "reload").inc()
            return
        if self.stopping or slot.removed or link is not slot.worker:
            return
        slot.worker = None
        signaled = os.WIFSIGNALED(status)
        how = f"signal {os.WTERMSIG(status)}" if signaled else f"exit status {os.waitstatus_to_exitcode(status)}"
        reason = link.kill_reason or ("killed" if signaled else "exited")
        metrics.WORKER_RESTARTS.labels(reason).inc()
        if not link.ready:
            slot.start_failures += 1
            say(f"worker {slot.index} (pid {link.pid}) failed to start ({how}); "
                f"{slot.start_failures} of {self.config.start_failures} attempts")
            if slot.start_failures >= self.config.start_failures:
                say(f"error: worker slot {slot.index} failed to start {slot.start_failures} times in a row "
                    f"(last: {how}); stopping the service. See the worker's output above.")
                self.finish(1)
                return
        else:
            say(f"worker {slot.index} (pid {link.pid}) died ({how}, {reason}); respawning")
        quick = not link.ready or (time.monotonic() - (link.ready_at or 0.0)) < QUICK_DEATH_SECONDS
        slot.quick_deaths = slot.quick_deaths + 1 if quick else 0
        delay = min(0.1 * 2 ** (slot.quick_deaths - 1), MAX_BACKOFF_SECONDS) if slot.quick_deaths else 0.0
        assert self.loop is not None
        slot.respawn = self.loop.call_later(delay, self.spawn, slot)

    # ---- errors the supervisor answers itself ------------------------------
    def reject(self, request: Request, message: str, error_type: str, reason: str) -> None:
        action, request_id = protocol.peek_cheap(request.frame[4:])
        now = time.monotonic()
        if reason == "busy":
            self.priority.refused(now)
        self.count_rejection(action, error_type, reason, now - request.received)
        request.source.deliver(request, protocol.frame(protocol.error_body(message, error_type, request_id)))

    def count_rejection(self, action: str | None, error_type: str, reason: str, seconds: float = 0.0) -> None:
        """Counted in the tally, written at the end of this loop pass, before the reply's flush."""
        self.tally.refusal(action, error_type, reason, seconds)
        self.dispatcher.mark(self.tally)

    # ---- what /health, /ready and /metrics read (from the exporter's thread) --
    def health(self) -> Health:
        """Workers alive = workers taking requests: during SIGHUP an old worker
        counts until its replacement is ready, so capacity shows no dip."""
        workers = tuple(
            {"slot": s.index, "pid": link.pid, "cpu": s.cpu, "ready": link.ready and not link.retiring,
             "retiring": link.retiring or link is not s.worker}
            for s in list(self.slots) for link in ([s.worker] if s.worker else []) + list(s.retiring)
        )
        serving = min(len(self.dispatcher.workers), len(self.slots))
        return Health(workers_alive=serving, workers_expected=len(self.slots),
                      active_connections=len(self.connections), started_at=self.started_at,
                      draining=self.draining, workers=workers)

    def snapshot(self) -> PoolSnapshot:
        """The pool for /metrics (exporter thread). A slot's CPU is its reaped
        workers' plus its live ones', each worker counted exactly once (the
        lock orders this against reaping), so the counter never dips."""
        workers = []
        with self.cpu_lock:
            for slot in list(self.slots):
                past = slot.past_cpu_seconds
                for link in list(slot.retiring):
                    if not link.cpu_counted:
                        link.last_cpu = max(process_cpu_seconds(link.pid) or 0.0, link.last_cpu)
                        past += link.last_cpu
                current = slot.worker
                live = 0.0
                if current is not None and not current.cpu_counted:
                    current.last_cpu = max(process_cpu_seconds(current.pid) or 0.0, current.last_cpu)
                    live = current.last_cpu
                workers.append(WorkerSlot(slot.index, current.pid if current is not None else None, past, live))
        return PoolSnapshot(queue_depth=len(self.dispatcher.queue), queue_limit=self.config.queue_limit,
                            workers_expected=len(self.slots), workers=tuple(workers))

    def set_info(self) -> None:
        from . import _build_info

        metrics.INFO.info({
            "version": __version__,
            "pythran_version": _build_info.PYTHRAN_VERSION,
            "cpu_target": _build_info.CPU_TARGET,
            "simd": "on" if _build_info.SIMD else "off",
            "simd_width_bits": str(simd_width_bits(_build_info.CPU_TARGET) if _build_info.SIMD else 64),
            "workers": str(self.config.worker_count()),
        })


def simd_width_bits(cpu_target: str) -> int:
    """Widest vector the build may use: AVX-512 for x86-64-v4, AVX2 for v3; native asks the CPU."""
    if cpu_target == "native":
        try:
            flags = Path("/proc/cpuinfo").read_text().split("flags")[1].split("\n")[0].split()
        except (OSError, IndexError):
            return 128
        return 512 if "avx512f" in flags else 256 if "avx2" in flags else 128
    return {"x86-64-v4": 512, "x86-64-v3": 256}.get(cpu_target, 128)


def remove_stale_socket(path: str) -> None:
    """Unlink a socket file left by a dead service; refuse if a live one answers there."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise SystemExit(f"mojo-pool: --socket {path} exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        os.unlink(path)
        return
    finally:
        probe.close()
    raise SystemExit(f"mojo-pool: another service is listening on {path}")


def say(message: str) -> None:
    """Operator-facing lines on stdout (supervisord logs them).

    Never raises: with stdout gone (a closed pipe), a signal handler that
    failed to print would otherwise leave SIGTERM unanswered.
    """
    try:
        print(f"mojo-pool[{os.getpid()}]: {message}", flush=True)
    except (OSError, ValueError):
        pass
