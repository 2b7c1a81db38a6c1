"""An echo server on the mojo-compute framing: the ceiling for moving the bytes.

Every frame that arrives is sent back unchanged, on persistent connections,
pipelined (replies in order, as many frames in flight as the client likes).
It does no parsing beyond the 4-byte lengths and no computing, on the same
event loop (uvloop) and the same kind of ``asyncio.Protocol`` as the
mojo_pool supervisor, in one process. So the throughput a load generator
gets from it with a given request body is the most any server of this
design could answer on this machine with that body and that client: a
mojo_pool figure as a share of it says how much of the budget goes to
forwarding to workers, parsing, computing and encoding.

    python benchmarks/servers/echo.py --socket /tmp/echo.sock --host 127.0.0.1 --port 0

Prints ``echo[pid]: listening on unix:PATH, tcp://HOST:PORT`` once bound;
SIGINT or SIGTERM stop it.
"""
from __future__ import annotations

import asyncio
import os
import socket
import struct
import sys

import common  # benchmarks/servers/common.py: this script's directory is on sys.path

LENGTH = struct.Struct(">I")


class Echo(asyncio.Protocol):
    """Sends back each complete frame; a partial one waits in the buffer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.frame_end = 0  # where the frame being completed ends in the buffer (0: unknown yet)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        if not self.buffer:
            # Common case: the read holds whole frames only; send it back as it is.
            end = self._complete(data)
            if end == len(data):
                self.transport.write(data)
                return
            if end:
                self.transport.write(data[:end])
            self.buffer += memoryview(data)[end:]
        else:
            self.buffer += data
            if self.frame_end and len(self.buffer) < self.frame_end:
                return  # a big frame still arriving: skip the scan
            end = self._complete(self.buffer)
            if end:
                self.transport.write(bytes(self.buffer[:end]))
                del self.buffer[:end]
        self.frame_end = self._next_end(self.buffer)

    @staticmethod
    def _complete(data: bytes | bytearray) -> int:
        """The length of the longest prefix of ``data`` made of whole frames."""
        position, size = 0, len(data)
        while size - position >= 4:
            end = position + 4 + LENGTH.unpack_from(data, position)[0]
            if end > size:
                break
            position = end
        return position

    @staticmethod
    def _next_end(buffer: bytearray) -> int:
        return 4 + LENGTH.unpack_from(buffer, 0)[0] if len(buffer) >= 4 else 0


async def serve(socket_path: str, host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    servers = []
    where = []
    if socket_path:
        if os.path.exists(socket_path):
            os.unlink(socket_path)
        servers.append(await loop.create_unix_server(Echo, socket_path))
        where.append(f"unix:{socket_path}")
    if host:
        server = await loop.create_server(Echo, host, port)
        servers.append(server)
        bound = server.sockets[0].getsockname()
        where.append(f"tcp://{bound[0]}:{bound[1]}")
    print(f"echo[{os.getpid()}]: listening on {', '.join(where)}", flush=True)
    await common.until_signal(servers, socket_path)


def main(argv: list[str] | None = None) -> int:
    import uvloop

    return common.main("Echo server on the mojo-compute framing", serve, uvloop.run, argv)


if __name__ == "__main__":
    sys.exit(main())
