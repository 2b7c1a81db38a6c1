"""The supervisor's frame assembler.

1. A stream of frames cut at every possible point comes out as the same
   frames, in order, whatever the pieces.
2. With a prefix (the worker link's rid), frames include it.
3. A frame announced over the limit stops the stream after the frames
   before it, even when its length arrives split across reads.
"""
from __future__ import annotations

import struct

from mojo_pool.framing import Assembler


def frames(bodies: list[bytes], prefix: bytes = b"") -> list[bytes]:
    return [prefix + struct.pack(">I", len(b)) + b for b in bodies]


def test_1_every_cut_point():
    wanted = frames([b"", b"a", b"hello world", b"x" * 1000])
    stream = b"".join(wanted)
    for cut in range(len(stream) + 1):
        for step in (1, 3, 7, len(stream)):
            assembler = Assembler()
            got = assembler.feed(stream[:cut])
            for start in range(cut, len(stream), step):
                got += assembler.feed(stream[start:start + step])
            assert [bytes(f) for f in got] == wanted, (cut, step)
            assert assembler.pieces == []


def test_2_prefix_is_part_of_the_frame():
    wanted = frames([b"reply one", b"two"], prefix=b"\x01" * 8)
    assembler = Assembler(prefix=8)
    stream = b"".join(wanted)
    got = assembler.feed(stream[:5]) + assembler.feed(stream[5:14]) + assembler.feed(stream[14:])
    assert [bytes(f) for f in got] == wanted


def test_3_too_large_stops_after_earlier_frames():
    ok = frames([b"fine"])[0]
    big = struct.pack(">I", 5000) + b"y" * 10
    for cut in range(len(ok) + 1, len(ok) + 5):  # the big frame's length split across reads
        assembler = Assembler(limit=4096)
        got = assembler.feed((ok + big)[:cut])
        got += assembler.feed((ok + big)[cut:])
        assert [bytes(f) for f in got] == [ok]
        assert assembler.too_large == 5000
        assert assembler.feed(ok) == []
