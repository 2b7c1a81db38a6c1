"""Large frames through shared memory instead of the worker links.

A 1,000,000-point binary request or reply is 8 MB. Relayed through a
worker's link, the supervisor copied each one four times: out of the
kernel, into a bytes object per 256 KiB read, once more to join those
pieces, and back into the kernel; the worker copied it once more at its
end. Measured with ``benchmarks/cpu_split.py`` on 1M-point binary SMA
requests, that made the supervisor the pool's bottleneck (4.5 ms of CPU a
request, 150 requests/s).

So large frames live in shared memory (``memfd`` rings the supervisor
creates; workers map them, the fds inherited at spawn) and the links carry
only where they are, a :data:`PLACE` (start, length) under a rid with
:data:`SHARED_FLAG` set:

* **Requests**: one ring for the pool. The supervisor receives a large
  frame's bytes straight into it (the connection's ``get_buffer``) and any
  worker reads them in place, so a request re-sent after its worker died
  is still there.
* **Replies**: one ring per worker. The worker writes its large reply frame
  there; the supervisor hands a view of it to the client's transport, which
  sends from it.

Both rings work the same way. Space is taken at ``head``, a running byte
count (a frame that would cross the end starts again at the beginning; the
skipped bytes are passed over), and only below ``tail + capacity``. A
region is released when nothing refers to its view any more (sent, or
dropped); releases come in any order, and ``tail`` moves over a region only
once every earlier one is released too. For the reply rings the worker
allocates and the supervisor releases, so the supervisor publishes
``tail`` in the ring's first 8 bytes. A frame that does not fit takes the
old path through the link: the rings are a fast path, never a limit.
"""
from __future__ import annotations

import mmap
import os
import struct
import weakref
from collections import deque
from typing import Any

HEADER = 64  # the published tail, alone on its cache line
TAIL = struct.Struct("<Q")
PLACE = struct.Struct("<QQ")  # start (running count), frame length
SHARED_FLAG = 1 << 63  # set in a link message's rid: its body is a PLACE
MIN_SHARED = 1 << 18  # smaller frames cost less through a socket than a region's bookkeeping


def create(size: int) -> int:
    """A new ring's file descriptor, inheritable by the workers spawned next."""
    fd = os.memfd_create("mojo_pool-arena", 0)
    try:
        os.set_inheritable(fd, True)
        os.ftruncate(fd, size)
    except OSError:
        os.close(fd)
        raise
    return fd


class Ring:
    """A shared ring of frames, as one process maps it."""

    def __init__(self, fd: int, size: int) -> None:
        if size < HEADER + MIN_SHARED:
            raise ValueError(f"a shared ring needs at least {HEADER + MIN_SHARED} bytes, got {size}")
        self.map = mmap.mmap(fd, size)
        self.view = memoryview(self.map)
        self.capacity = (size - HEADER) // 8 * 8
        self.head = 0
        self.tail = 0

    def allocate(self, length: int, tail: int) -> int | None:
        """The start of ``length`` free bytes, or None.

        Frames start 4 bytes past an 8-byte boundary, so that the body after
        the length prefix is aligned and binary values can be used in place.
        """
        capacity = self.capacity
        offset = self.head % capacity
        start = self.head + (4 - offset) % 8
        if start % capacity + length > capacity:
            start = self.head + capacity - offset + 4
        if start + length - tail > capacity:
            return None
        self.head = start + length
        return start

    def at(self, start: int, length: int) -> memoryview:
        position = HEADER + start % self.capacity
        return self.view[position:position + length]


class Releases:
    """Views of a ring's regions that release themselves when the last reference goes.

    The views are ndarrays (memoryviews take no weak references) wrapped in
    a memoryview, which keeps its array alive and compares like bytes.
    """

    def __init__(self, ring: Ring, publish: bool) -> None:
        import numpy  # here: a worker imports this module before it sets up numpy's threads

        self.numpy = numpy
        self.ring = ring
        self.publish = publish  # the other process allocates: tell it where tail is
        self.regions: deque[list] = deque()  # [end, released], in the order they were placed

    def track(self, start: int, length: int) -> memoryview:
        ring = self.ring
        region = [start + length, False]
        self.regions.append(region)
        array = self.numpy.frombuffer(ring.at(start, length), dtype=self.numpy.uint8)
        weakref.finalize(array, self._release, region)
        return memoryview(array)

    def _release(self, region: list) -> None:
        region[1] = True
        regions = self.regions
        ring = self.ring
        while regions and regions[0][1]:
            ring.tail = regions.popleft()[0]
        if self.publish and not ring.map.closed:
            TAIL.pack_into(ring.map, 0, ring.tail)


class RequestRing:
    """The supervisor's request ring: it allocates, fills and releases."""

    def __init__(self, size: int) -> None:
        self.fd = create(size)  # kept open: every worker spawned maps it
        self.ring = Ring(self.fd, size)
        self.releases = Releases(self.ring, publish=False)

    def reserve(self, length: int) -> tuple[memoryview, bytes] | None:
        """A region for a ``length``-byte frame: its view and its PLACE, or None if the ring is full."""
        start = self.ring.allocate(length, self.ring.tail)
        if start is None:
            return None
        return self.releases.track(start, length), PLACE.pack(start, length)


class ReplyRingReader:
    """The supervisor's side of one worker's reply ring."""

    def __init__(self, fd: int, size: int) -> None:
        self.ring = Ring(fd, size)
        self.releases = Releases(self.ring, publish=True)

    def frame(self, place: bytes | memoryview) -> memoryview:
        """The reply frame a PLACE points at, as a view the transport can send from."""
        start, length = PLACE.unpack_from(place)
        ring = self.ring
        if start < ring.tail or start + length > ring.tail + ring.capacity:
            raise ValueError(f"reply place out of range: start {start}, length {length}, tail {ring.tail}")
        return self.releases.track(start, length)


class ReplyRingWriter:
    """A worker's side of its reply ring: places frames where the supervisor has released."""

    def __init__(self, fd: int, size: int) -> None:
        self.ring = Ring(fd, size)

    def place(self, parts: list[Any], length: int) -> int | None:
        """Write ``parts`` back to back (``length`` bytes in all); the start, or None if they do not fit."""
        ring = self.ring
        (tail,) = TAIL.unpack_from(ring.map, 0)
        start = ring.allocate(length, tail)
        if start is None:
            return None
        view = ring.at(start, length)
        position = 0
        for part in parts:
            size = len(part)
            view[position:position + size] = part
            position += size
        return start


class RequestRingReader:
    """A worker's view of the pool's request ring."""

    def __init__(self, fd: int, size: int) -> None:
        self.ring = Ring(fd, size)

    def body(self, place: bytes | memoryview) -> memoryview:
        """The request body (the frame without its length prefix) a PLACE points at."""
        start, length = PLACE.unpack_from(place)
        return self.ring.at(start + 4, length - 4)
