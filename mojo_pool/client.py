"""Clients for mojo_pool (and any mojo-compute service): sync and asyncio.

::

    from mojo_pool.client import Client
    with Client("/tmp/mojo-compute.sock") as client:          # or "tcp://127.0.0.1:6101"
        sma = client.compute("sma", prices, timeperiod=20)     # numpy in, numpy out
        macd, signal, hist = client.compute("macd", prices)
        by_symbol = client.batch("rsi", {"TCS": tcs, "INFY": infy}, timeperiod=14)
        replies = client.pipeline([{"action": "ping"}] * 1000)  # one connection, in order

One connection is opened on first use and kept. ``binary=True`` sends and
receives float64 arrays as raw bytes instead of JSON numbers. An error
reply raises :class:`ServiceError`, or its subclass for the error type
(:class:`Busy`, :class:`ServiceTimeout`, ...); the connection stays usable.
"""
from __future__ import annotations

import asyncio
import selectors
import socket
import time
from collections import deque
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import orjson

from .protocol import ACTIONS, LENGTH, binary_prefix, decode

Address = str | tuple[str, int]
RETRY_PAUSE_SECONDS = 0.05
DEFAULT_ADDRESS = "/tmp/mojo-compute.sock"


class ServiceError(Exception):
    """An error reply: ``error_type`` and the reply as sent."""

    error_type = "ServiceError"

    def __init__(self, reply: Mapping[str, Any]) -> None:
        super().__init__(reply.get("error", "error"))
        self.reply = dict(reply)
        self.error_type = str(reply.get("error_type", self.error_type))


class Busy(ServiceError):
    """The service's queue is full: retry later, or slow down."""


class ServiceTimeout(ServiceError):
    """The request was not answered within the service's deadline."""


class InvalidRequest(ServiceError):
    """The request was refused as malformed (bad JSON, types, values, unknown action...)."""


class WorkerLost(ServiceError):
    """The request killed two workers; it was not retried again."""


ERRORS: dict[str, type[ServiceError]] = {
    "Busy": Busy, "TimeoutError": ServiceTimeout, "WorkerLost": WorkerLost,
    **{name: InvalidRequest for name in ("InvalidJSON", "InvalidRequest", "UnknownAction", "EmptyPrices",
                                         "TypeError", "ValueError", "FrameTooLarge")},
}


def check(reply: dict[str, Any]) -> dict[str, Any]:
    if reply.get("status") == "error":
        raise ERRORS.get(str(reply.get("error_type")), ServiceError)(reply)
    return reply


def parse_address(address: Address) -> tuple[int, Any]:
    """(socket family, address) from ``unix:/p``, ``/p``, ``tcp://h:p``, ``h:p`` or ``(h, p)``."""
    if isinstance(address, tuple):
        return socket.AF_INET, address
    if address.startswith("unix:"):
        return socket.AF_UNIX, address[5:]
    if address.startswith("tcp://"):
        address = address[6:]
    elif address.startswith("/") or address.startswith("."):
        return socket.AF_UNIX, address
    host, _, port = address.rpartition(":")
    return socket.AF_INET, (host.strip("[]") or "127.0.0.1", int(port))


def encode_request(request: Mapping[str, Any], binary: bool) -> bytes:
    """A request body; numpy arrays become JSON lists, or raw bytes in binary mode."""
    if not binary:
        return orjson.dumps(request, option=orjson.OPT_SERIALIZE_NUMPY)
    chunks: list[bytes] = []

    def lengths(item: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in item.items():
            if isinstance(value, np.ndarray):
                chunks.append(np.ascontiguousarray(value, dtype="<f8").tobytes())
                out[key] = int(value.shape[0])
            elif key == "series" and isinstance(value, list):
                out[key] = [lengths(series) for series in value]
            else:
                out[key] = value
        return out

    return b"".join([binary_prefix(orjson.dumps(lengths(request))), *chunks])


def _as_array(values: Any) -> np.ndarray:
    return values if isinstance(values, np.ndarray) else np.array(values, dtype=np.float64)


def compute_request(indicator: str, inputs: Sequence[Any], symbol: str | None,
                    params: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The request for one indicator call, and the reply fields holding its outputs."""
    action = ACTIONS.get(f"compute_{indicator}")
    if action is None:
        raise ValueError(f"unknown indicator {indicator!r}")
    fields = action.input_fields
    if len(inputs) != len(fields):
        raise ValueError(f"{indicator} takes {len(fields)} input(s): {', '.join(fields)}")
    request: dict[str, Any] = {"action": f"compute_{indicator}"}
    if symbol is not None:
        request["symbol"] = symbol
    request.update((name, np.ascontiguousarray(values, dtype=np.float64)) for name, values in zip(fields, inputs))
    request.update(params)
    return request, action.outputs


def batch_request(indicator: str, series: Mapping[str, Any], params: Mapping[str, Any]) -> tuple[
        dict[str, Any], tuple[str, ...]]:
    action = ACTIONS.get(f"compute_{indicator}")
    if action is None:
        raise ValueError(f"unknown indicator {indicator!r}")
    fields = action.input_fields
    items = []
    for symbol, inputs in series.items():
        arrays = (inputs,) if len(fields) == 1 and not isinstance(inputs, (tuple, list)) else tuple(inputs)
        items.append({"symbol": symbol, **{name: np.ascontiguousarray(values, dtype=np.float64)
                                           for name, values in zip(fields, arrays)}})
    return {"action": "batch", "indicator": indicator, "params": dict(params), "series": items}, action.outputs


def outputs_of(reply: Mapping[str, Any], names: tuple[str, ...]) -> np.ndarray | tuple[np.ndarray, ...]:
    arrays = tuple(_as_array(reply[name]) for name in names)
    return arrays[0] if len(arrays) == 1 else arrays


def endpoints_of(address: Address | Sequence[Address]) -> list[tuple[int, Any]]:
    """One address, or a list of them (a tuple is one TCP address)."""
    addresses = address if isinstance(address, list) else [address]
    if not addresses:
        raise ValueError("no endpoint given")
    return [parse_address(a) for a in addresses]  # type: ignore[arg-type]


class Client:
    """A blocking client on one kept connection, to one endpoint or the first of several that answers.

    With several endpoints (hosts behind no balancer, or balancers), a request
    whose connection cannot be made or breaks before its reply is sent again,
    once, on the next endpoint: indicator requests are idempotent, so a host
    dying loses nothing the client sent.
    """

    def __init__(self, address: Address | list[Address] = DEFAULT_ADDRESS, *, timeout: float | None = 60.0,
                 binary: bool = False) -> None:
        self.endpoints = endpoints_of(address)
        self.current = 0
        self.family, self.address = self.endpoints[0]
        self.timeout = timeout
        self.binary = binary
        self.sock: socket.socket | None = None
        self.buffer = bytearray()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> socket.socket:
        """The kept connection; otherwise the first endpoint (from the current one on) that accepts."""
        if self.sock is None:
            failure: OSError | None = None
            for step in range(len(self.endpoints)):
                index = (self.current + step) % len(self.endpoints)
                family, address = self.endpoints[index]
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                try:
                    sock.connect(address)
                except OSError as exc:
                    sock.close()
                    failure = exc
                    continue
                if family == socket.AF_INET:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.current, self.family, self.address = index, family, address
                self.sock = sock
                self.buffer.clear()
                break
            else:
                raise ConnectionError(f"no endpoint accepted a connection (last: {failure})") from failure
        return self.sock

    def failover(self) -> None:
        """Drop the connection; the next one starts at the next endpoint."""
        self.close()
        self.current = (self.current + 1) % len(self.endpoints)

    def exchange_retrying(self, bodies: list[bytes]) -> list[bytes]:
        """:meth:`exchange`, and the bodies left unanswered by a broken connection sent once more, on the
        next endpoint (a service that closes after replying to all, as after FrameTooLarge, is not retried)."""
        try:
            replies = self.exchange(bodies)
        except (ConnectionError, OSError) as exc:
            if isinstance(exc, TimeoutError):
                raise
            replies = []
        if len(replies) < len(bodies):
            self.failover()
            if len(self.endpoints) == 1:
                # The same endpoint again (a load balancer): give it a moment to
                # notice the host that just failed, or the retry may reach it.
                time.sleep(RETRY_PAUSE_SECONDS)
            replies += self.exchange(bodies[len(replies):])
        return replies

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    # ---- frames ----------------------------------------------------------
    def exchange(self, bodies: Sequence[bytes]) -> list[bytes]:
        """Send every body, read as many replies (in order); pipelined without deadlock.

        If the service closes the connection (after FrameTooLarge, say), the
        replies it sent until then are returned, fewer than the bodies.

        Writing and reading interleave through a selector: a client that
        wrote everything first could block on a full socket while the
        service, whose replies it does not read, stops reading it.
        """
        sock = self.connect()
        out = memoryview(b"".join(LENGTH.pack(len(body)) + body for body in bodies))
        replies: list[bytes] = []
        sent = 0
        sock.setblocking(False)
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if out else 0))
                while len(replies) < len(bodies):
                    events = selector.select(self.timeout)
                    if not events:
                        raise TimeoutError(f"no reply within {self.timeout} s")
                    _, mask = events[0]
                    if mask & selectors.EVENT_WRITE:
                        try:
                            sent += sock.send(out[sent:sent + (1 << 20)])
                        except (BrokenPipeError, ConnectionResetError):
                            sent = len(out)  # closed on us: read the replies it sent before closing
                        if sent == len(out):
                            selector.modify(sock, selectors.EVENT_READ)
                    if mask & selectors.EVENT_READ:
                        try:
                            chunk = sock.recv(1 << 20)
                        except ConnectionResetError:
                            chunk = b""  # like a close: the caller sees which replies came
                        if not chunk:
                            self._split(replies)
                            self.close()
                            return replies  # fewer than asked: the caller says so
                        self.buffer += chunk
                        self._split(replies)
        except BaseException:
            self.close()
            raise
        else:
            sock.settimeout(self.timeout)
        return replies

    def _split(self, replies: list[bytes]) -> None:
        buffer = self.buffer
        offset = 0
        while len(buffer) - offset >= 4:
            length = int.from_bytes(buffer[offset:offset + 4], "big")
            if len(buffer) - offset - 4 < length:
                break
            replies.append(bytes(buffer[offset + 4:offset + 4 + length]))
            offset += 4 + length
        del buffer[:offset]

    # ---- requests --------------------------------------------------------
    def request(self, request: Mapping[str, Any], binary: bool | None = None) -> dict[str, Any]:
        """One request; the reply as a dict, or the error raised."""
        replies = self.exchange_retrying([encode_request(request, self.binary if binary is None else binary)])
        if not replies:
            raise ConnectionError("the service closed the connection without a reply")
        return check(decode(replies[0]))

    def pipeline(self, requests: Iterable[Mapping[str, Any]], binary: bool | None = None,
                 raise_errors: bool = False) -> list[dict[str, Any]]:
        """Many requests on the connection at once; replies in order (errors as dicts unless raise_errors)."""
        mode = self.binary if binary is None else binary
        bodies = [encode_request(r, mode) for r in requests]
        replies = [decode(body) for body in self.exchange_retrying(bodies)]
        if len(replies) < len(bodies):
            last = f"; the last: {replies[-1]}" if replies else ""
            raise ConnectionError(f"the service closed the connection after {len(replies)} of {len(bodies)} "
                                  f"replies{last}")
        if raise_errors:
            for reply in replies:
                check(reply)
        return replies

    def ping(self) -> bool:
        return self.request({"action": "ping"}).get("message") == "pong"

    def compute(self, indicator: str, *inputs: Any, symbol: str | None = None, binary: bool | None = None,
                **params: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        """``indicator`` (TA-Lib's name, lower case) over the inputs; outputs in TA-Lib's order."""
        request, names = compute_request(indicator, inputs, symbol, params)
        return outputs_of(self.request(request, binary), names)

    def batch(self, indicator: str, series: Mapping[str, Any], binary: bool | None = None,
              **params: Any) -> dict[str, np.ndarray | tuple[np.ndarray, ...]]:
        """One indicator over many symbols' series in one frame: {symbol: outputs}."""
        request, names = batch_request(indicator, series, params)
        reply = self.request(request, binary)
        return {item["symbol"]: outputs_of(item, names) for item in reply["results"]}


class AsyncClient:
    """An asyncio client: concurrent calls share one connection, pipelined, answered in order.

    Takes one endpoint or several, like :class:`Client`: a call whose
    connection breaks before its reply is sent again once, on the next one.
    """

    def __init__(self, address: Address | list[Address] = DEFAULT_ADDRESS, *, binary: bool = False) -> None:
        self.endpoints = endpoints_of(address)
        self.current = 0
        self.family, self.address = self.endpoints[0]
        self.binary = binary
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.waiting: deque[asyncio.Future[bytes]] = deque()
        self.reading: asyncio.Task[None] | None = None
        self.connecting: asyncio.Lock | None = None

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        if self.connecting is None:
            self.connecting = asyncio.Lock()
        async with self.connecting:  # concurrent first calls share one connection
            if self.writer is None:
                await self._open()

    async def _open(self) -> None:
        failure: OSError | None = None
        for step in range(len(self.endpoints)):
            index = (self.current + step) % len(self.endpoints)
            family, address = self.endpoints[index]
            try:
                if family == socket.AF_UNIX:
                    self.reader, self.writer = await asyncio.open_unix_connection(address, limit=1 << 26)
                else:
                    self.reader, self.writer = await asyncio.open_connection(*address, limit=1 << 26)
            except OSError as exc:
                failure = exc
                continue
            self.current, self.family, self.address = index, family, address
            self.reading = asyncio.get_running_loop().create_task(self._read_replies())
            return
        raise ConnectionError(f"no endpoint accepted a connection (last: {failure})") from failure

    async def _read_replies(self) -> None:
        assert self.reader is not None
        try:
            while True:
                length = LENGTH.unpack(await self.reader.readexactly(4))[0]
                body = await self.reader.readexactly(length)
                future = self.waiting.popleft()
                if not future.done():
                    future.set_result(body)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            while self.waiting:
                future = self.waiting.popleft()
                if not future.done():
                    future.set_exception(ConnectionError(f"the service closed the connection ({exc})"))
            self.writer = None

    async def close(self) -> None:
        if self.reading is not None:
            self.reading.cancel()
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    async def request(self, request: Mapping[str, Any], binary: bool | None = None) -> dict[str, Any]:
        body = encode_request(request, self.binary if binary is None else binary)
        try:
            reply = await self._send(body)
        except ConnectionError:
            if len(self.endpoints) == 1:
                await asyncio.sleep(RETRY_PAUSE_SECONDS)  # see Client.exchange_retrying
            await self._failover()
            reply = await self._send(body)
        return check(decode(reply))

    async def _send(self, body: bytes) -> bytes:
        await self.connect()
        assert self.writer is not None
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        try:
            self.writer.write(LENGTH.pack(len(body)) + body)
            await self.writer.drain()
        except OSError as exc:
            raise ConnectionError(str(exc)) from exc
        return await future

    async def _failover(self) -> None:
        if self.connecting is None:
            self.connecting = asyncio.Lock()
        async with self.connecting:
            if self.writer is not None and not self.writer.is_closing() and self.reading and not self.reading.done():
                return  # another call already reconnected
            if self.reading is not None:
                self.reading.cancel()
            if self.writer is not None:
                self.writer.close()
            self.writer = None
            self.current = (self.current + 1) % len(self.endpoints)
            await self._open()

    async def ping(self) -> bool:
        return (await self.request({"action": "ping"})).get("message") == "pong"

    async def compute(self, indicator: str, *inputs: Any, symbol: str | None = None, binary: bool | None = None,
                      **params: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        request, names = compute_request(indicator, inputs, symbol, params)
        return outputs_of(await self.request(request, binary), names)

    async def batch(self, indicator: str, series: Mapping[str, Any], binary: bool | None = None,
                    **params: Any) -> dict[str, np.ndarray | tuple[np.ndarray, ...]]:
        request, names = batch_request(indicator, series, params)
        reply = await self.request(request, binary)
        return {item["symbol"]: outputs_of(item, names) for item in reply["results"]}
