"""The supervisor's scheduling priority over its workers, and when it gives it up.

On a machine where the supervisor shares CPUs with its workers, every
request waits twice for the supervisor to be scheduled: to forward its
frame, and to forward its reply. At equal priority the kernel lets a busy
worker finish its slice first, so requests queue behind computations and
CPUs sit idle meanwhile. Measured with ``benchmarks/cpu_split.py`` (2
workers, 16 connections, SMA-20 over 1,000 points, two runs each): the
machine was 85-88% busy and served 20,600-21,000 requests/s at equal
priority; with the supervisor 5 nice levels above, 94-95% and
24,000-24,300. That is over the Unix socket. Over TCP loopback, four runs
each, nothing showed (19,800-20,900 against 18,500-21,200): scheduled
sooner, the supervisor forwards smaller batches, and there each system
call costs more. And it lengthens the latency tail: open loop at 15,500
req/s over TCP (80% of peak, ``load.py -c 16 -d 8 --rate 15500``), four
alternating pairs, p99 3.0-9.0 ms (median 4.1) and p99.9 10-20 ms at
equal priority, 4.2-12.8 ms (median 6.2) and 17-22 ms with 5 levels. So
the boost is off by default (``--supervisor-priority 0``): for
deployments that serve through the Unix socket and want the throughput.

Under overload the same boost costs served requests: a supervisor that is
always scheduled at once reads every flooding connection and refuses what
it read, where one at equal priority reads less often and lets the
sockets push back on the clients. With
``soak.py --only overload --overload 2``: 11,200 requests/s served and
148,000 Busy at 5 levels against 16,000 and 45,000 at equal priority. So
the boost is dropped at the first Busy refusal and taken back once no
request has been refused for :data:`QUIET_SECONDS`.

Linux keeps niceness per thread: this changes the event loop's thread
only, which is where requests are forwarded (the metrics endpoint's thread
keeps the service's niceness).
"""
from __future__ import annotations

import os

QUIET_SECONDS = 1.0  # no Busy refusal for this long: overload is over, boost again


class Priority:
    """``levels`` nice levels above ``base`` (the workers'), while not refusing work."""

    def __init__(self, levels: int, base: int) -> None:
        self.levels = levels
        self.base = base
        self.boosted_nice = max(-20, base - levels)
        self.permitted = False
        self.boosted = False
        self.last_busy = float("-inf")

    def start(self) -> str | None:
        """Boost; a sentence for the log if it is not permitted (needs CAP_SYS_NICE)."""
        if not self.levels or self.boosted_nice == self.base:
            return None
        try:
            os.setpriority(os.PRIO_PROCESS, 0, self.boosted_nice)
        except PermissionError:
            return (f"--supervisor-priority {self.levels}: nice {self.boosted_nice} not permitted (needs "
                    f"CAP_SYS_NICE); the supervisor runs at the workers' nice {self.base}")
        self.permitted = self.boosted = True
        return None

    def refused(self, now: float) -> None:
        """A request got Busy: drop the boost until the refusals stop."""
        self.last_busy = now
        if self.boosted:
            self.boosted = False
            os.setpriority(os.PRIO_PROCESS, 0, self.base)  # lowering one's own priority is always allowed

    def tick(self, now: float) -> None:
        if self.permitted and not self.boosted and now - self.last_busy >= QUIET_SECONDS:
            try:
                os.setpriority(os.PRIO_PROCESS, 0, self.boosted_nice)
            except PermissionError:  # the capability was dropped since start: stay at the workers' level
                self.permitted = False
                return
            self.boosted = True
