"""The shared-memory rings of mojo_pool.arena, on real memfd mappings.

1. A reply placed by the writer reads back byte for byte through a second
   mapping of the same memfd, at a 4-mod-8 start (aligned body).
2. The writer refuses what does not fit until the reader's views are gone;
   then the published tail lets it place again.
3. Releases out of order: tail moves only over a prefix of released regions.
4. A frame that would cross the ring's end starts again at the beginning.
5. The request ring: regions released when their views go, wrap-around
   included, and a worker's mapping reads the bodies written.
6. A place outside what the writer could have allocated is refused.
"""
from __future__ import annotations

import gc
import os

import pytest

from mojo_pool import arena
from mojo_pool.arena import HEADER, MIN_SHARED, TAIL, PLACE, ReplyRingReader, ReplyRingWriter, RequestRing

SIZE = HEADER + 4 * MIN_SHARED  # room for four minimum-size frames


@pytest.fixture
def reply_ring():
    fd = arena.create(SIZE)
    writer, reader = ReplyRingWriter(fd, SIZE), ReplyRingReader(fd, SIZE)
    os.close(fd)
    return writer, reader


def frame_parts(length: int, fill: int) -> list[bytes]:
    return [length.to_bytes(4, "big"), bytes([fill]) * (length - 4)]


def test_1_placed_reply_reads_back(reply_ring):
    writer, reader = reply_ring
    start = writer.place(frame_parts(MIN_SHARED, 7), MIN_SHARED)
    assert start is not None and (HEADER + start) % 8 == 4
    view = reader.frame(PLACE.pack(start, MIN_SHARED))
    assert bytes(view[:4]) == MIN_SHARED.to_bytes(4, "big")
    assert bytes(view[4:]) == bytes([7]) * (MIN_SHARED - 4)


def test_2_full_until_released(reply_ring):
    writer, reader = reply_ring
    views = []
    for fill in range(3):
        start = writer.place(frame_parts(MIN_SHARED, fill), MIN_SHARED)
        assert start is not None
        views.append(reader.frame(PLACE.pack(start, MIN_SHARED)))
    assert writer.place(frame_parts(2 * MIN_SHARED, 9), 2 * MIN_SHARED) is None
    assert TAIL.unpack_from(reader.ring.map, 0)[0] == 0
    del views[0]
    gc.collect()
    assert TAIL.unpack_from(reader.ring.map, 0)[0] > 0
    start = writer.place(frame_parts(MIN_SHARED, 9), MIN_SHARED)
    assert start is not None
    assert bytes(reader.frame(PLACE.pack(start, MIN_SHARED))[4:8]) == b"\x09" * 4
    # The regions still referenced were not overwritten.
    assert bytes(views[0][4:8]) == b"\x01" * 4 and bytes(views[1][4:8]) == b"\x02" * 4


def test_3_out_of_order_release_moves_tail_over_a_prefix_only(reply_ring):
    writer, reader = reply_ring
    views = [reader.frame(PLACE.pack(writer.place(frame_parts(1000, k), 1000), 1000)) for k in range(3)]
    ends = [region[0] for region in reader.releases.regions]
    del views[1]
    gc.collect()
    assert reader.ring.tail == 0
    del views[0]
    gc.collect()
    assert reader.ring.tail == ends[1]
    del views[0]
    gc.collect()
    assert reader.ring.tail == ends[2] and not reader.releases.regions


def test_4_a_frame_that_would_cross_the_end_wraps(reply_ring):
    writer, reader = reply_ring
    capacity = writer.ring.capacity
    first = writer.place(frame_parts(capacity - MIN_SHARED, 1), capacity - MIN_SHARED)
    reader.frame(PLACE.pack(first, capacity - MIN_SHARED))  # dropped at once: released
    gc.collect()
    start = writer.place(frame_parts(2 * MIN_SHARED, 2), 2 * MIN_SHARED)
    assert start is not None and start % capacity == 4  # back at the beginning, body aligned
    view = reader.frame(PLACE.pack(start, 2 * MIN_SHARED))
    assert bytes(view[-4:]) == b"\x02" * 4


def test_5_request_ring_reserve_release_and_read():
    ring = RequestRing(SIZE)
    try:
        reader = arena.RequestRingReader(ring.fd, SIZE)
        for round_ in range(10):  # 10 x 3 frames through a ring of 4: only if released each round
            held = []
            for k in range(3):
                reserved = ring.reserve(MIN_SHARED + 100)
                assert reserved is not None, f"round {round_}: ring full, regions were not released"
                view, place = reserved
                view[:4] = (MIN_SHARED + 96).to_bytes(4, "big")
                view[4:] = bytes([round_ * 3 + k]) * (MIN_SHARED + 96)
                held.append((view, place))
            assert ring.reserve(2 * MIN_SHARED) is None
            for view, place in held:
                body = reader.body(place)
                assert len(body) == MIN_SHARED + 96 and body[0] == view[4] and (HEADER + PLACE.unpack(place)[0]) % 8 == 4
            del held, view
            gc.collect()
    finally:
        os.close(ring.fd)


def test_6_a_place_beyond_the_ring_is_refused(reply_ring):
    writer, reader = reply_ring
    with pytest.raises(ValueError, match="out of range"):
        reader.frame(PLACE.pack(0, SIZE))
