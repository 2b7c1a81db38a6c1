"""What the framed benchmark servers share: their command line, and serving until a signal."""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
from typing import Any, Awaitable, Callable


async def until_signal(servers: list[asyncio.AbstractServer], socket_path: str) -> None:
    """Serve until SIGINT or SIGTERM, then close the listeners and remove the socket file."""
    loop = asyncio.get_running_loop()
    stop = loop.create_future()

    def finish() -> None:
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, finish)
    await stop
    for server in servers:
        server.close()
    if socket_path and os.path.exists(socket_path):
        os.unlink(socket_path)


def main(description: str, serve: Callable[[str, str, int], Awaitable[None]],
         run: Callable[[Awaitable[None]], Any], argv: list[str] | None = None) -> int:
    """``--socket``/``--host``/``--port``, then ``run(serve(...))`` (asyncio.run or uvloop.run)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--socket", default="", help="Unix socket path (empty: none)")
    parser.add_argument("--host", default="", help="TCP address (empty: none)")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: any free one)")
    args = parser.parse_args(argv)
    if not args.socket and not args.host:
        parser.error("give --socket and/or --host")
    run(serve(args.socket, args.host, args.port))
    return 0
