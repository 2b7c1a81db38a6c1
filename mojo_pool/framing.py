"""Cutting a byte stream into frames, for the supervisor's two kinds of stream.

A frame is ``prefix`` bytes (0 from clients; the rid from workers), a 4-byte
big-endian length, then that many bytes. Reads arrive in arbitrary pieces:
:meth:`Assembler.feed` returns every whole frame as a memoryview slice of
the bytes read (no copy), and keeps a partial frame as a list of pieces,
joined once when it is complete, so a 64 MiB frame read 256 KiB at a time
is copied once, not once per read.
"""
from __future__ import annotations


class Assembler:
    def __init__(self, prefix: int = 0, limit: int | None = None) -> None:
        self.prefix = prefix
        self.head = prefix + 4
        self.limit = limit
        self.pieces: list[bytes] = []
        self.have = 0
        self.need = 0  # bytes of the first pending frame, once its length is known
        self.too_large: int | None = None  # a frame over the limit was announced: nothing more is read

    def _length(self, data: bytes | memoryview, offset: int) -> int:
        length = int.from_bytes(data[offset + self.prefix:offset + self.head], "big")
        if self.limit is not None and length > self.limit:
            self.too_large = length
        return length

    def feed(self, data: bytes) -> list[memoryview]:
        """The whole frames completed by ``data``, in order; after them, if
        ``too_large`` is set, the stream announced a frame over the limit."""
        if self.too_large is not None:
            return []
        if self.pieces:
            self.pieces.append(data)
            self.have += len(data)
            if not self.need:
                if self.have < self.head:
                    return []
                joined = b"".join(self.pieces)  # a few bytes: the length was split
                self.pieces = [joined]
                self.need = self.head + self._length(joined, 0)
                if self.too_large is not None:
                    return []
            if self.have < self.need:
                return []
            data = b"".join(self.pieces)
            self.pieces, self.have, self.need = [], 0, 0
        view = memoryview(data)
        frames = []
        offset = 0
        end = len(data)
        head = self.head
        while end - offset >= head:
            stop = offset + head + self._length(view, offset)
            if self.too_large is not None:
                return frames
            if stop > end:
                break
            frames.append(view[offset:stop])
            offset = stop
        if offset < end:
            rest = bytes(view[offset:])
            self.pieces, self.have = [rest], len(rest)
            self.need = head + self._length(rest, 0) if len(rest) >= head else 0
        return frames

    def between_frames(self) -> bool:
        """Nothing of a frame is held: the next byte read starts a new one."""
        return not self.pieces and self.too_large is None

    def pending(self) -> int:
        """The full size of the frame in progress (prefix included), if its length has arrived; else 0."""
        return self.need if self.pieces else 0

    def take_pending(self) -> list[bytes]:
        """Hand over the pieces of the frame in progress and forget it: its
        remaining bytes will be read by someone else (see ClientConnection)."""
        pieces = self.pieces
        self.pieces, self.have, self.need = [], 0, 0
        return pieces
