"""A reference server built the way the old single-process mojo-compute was.

mojo_pool replaces a service that was one asyncio process: it accepted a
connection, read one frame, parsed it with the ``json`` module, computed the
indicator in plain Python loops over a list of floats, wrote one reply and
closed the connection. The comparison needs that baseline running on this
machine, under the same load generator, so this file rebuilds it in that
style on purpose (nothing here is meant to be fast):

* the default asyncio event loop and asyncio streams;
* one frame per connection, then the connection is closed (clients connect
  per request);
* ``json.loads`` / ``json.dumps``;
* SMA re-sums every window (O(n * period)); EMA, RSI (Wilder), MACD and
  Bollinger bands are per-element Python loops;
* the compute runs on the event loop, so one slow request holds up the rest.

Request and reply fields are the original protocol's (those mojo_pool keeps
for its seed actions): ``prices`` and ``period`` (``fast_period``,
``slow_period``, ``signal_period`` for MACD; ``std_dev`` for Bollinger),
values inside the lookback are ``null``, errors are
``{"status": "error", "error": ..., "error_type": ...}``. The figures follow
TA-Lib's conventions (SMA-seeded EMA, Wilder's RSI, population standard
deviation, MACD's fast EMA seeded at the slow EMA's first bar), so SMA
matches ``mojo_pool.indicators.sma`` to rounding.

    python benchmarks/servers/reference.py --socket /tmp/ref.sock --host 127.0.0.1 --port 0

Prints ``reference[pid]: listening on unix:PATH, tcp://HOST:PORT`` once bound.
"""
from __future__ import annotations

import asyncio
import json
import math
import os
import struct
import sys
from typing import Any, Callable

import common  # benchmarks/servers/common.py: this script's directory is on sys.path

LENGTH = struct.Struct(">I")
MAX_FRAME = 64 << 20

Values = list[float | None]


class RequestError(Exception):
    def __init__(self, message: str, error_type: str) -> None:
        super().__init__(message)
        self.error_type = error_type


# ---------------------------------------------------------------------------
# Indicators, one Python loop each
# ---------------------------------------------------------------------------

def sma(prices: list[float], period: int) -> Values:
    out: Values = [None] * min(period - 1, len(prices))
    for end in range(period, len(prices) + 1):
        total = 0.0
        for index in range(end - period, end):
            total += prices[index]
        out.append(total / period)
    return out


def _ema_from(prices: list[float], period: int, first: int) -> Values:
    """EMA whose seed is the mean of the ``period`` prices ending at ``first``."""
    out: Values = [None] * min(first, len(prices))
    if first >= len(prices):
        return out
    k = 2.0 / (period + 1)
    value = sum(prices[first - period + 1:first + 1]) / period
    out.append(value)
    for index in range(first + 1, len(prices)):
        value = (prices[index] - value) * k + value
        out.append(value)
    return out


def ema(prices: list[float], period: int) -> Values:
    return _ema_from(prices, period, period - 1)


def rsi(prices: list[float], period: int) -> Values:
    out: Values = [None] * min(period, len(prices))
    if len(prices) <= period:
        return out
    gain = loss = 0.0
    for index in range(1, period + 1):
        change = prices[index] - prices[index - 1]
        if change > 0:
            gain += change
        else:
            loss -= change
    gain /= period
    loss /= period
    out.append(100.0 * gain / (gain + loss) if gain + loss else 0.0)
    for index in range(period + 1, len(prices)):
        change = prices[index] - prices[index - 1]
        gain = (gain * (period - 1) + (change if change > 0 else 0.0)) / period
        loss = (loss * (period - 1) + (-change if change < 0 else 0.0)) / period
        out.append(100.0 * gain / (gain + loss) if gain + loss else 0.0)
    return out


def macd(prices: list[float], fast: int, slow: int, signal_period: int) -> tuple[Values, Values, Values]:
    if fast > slow:
        fast, slow = slow, fast
    start = slow - 1
    fast_line = _ema_from(prices, fast, start)
    slow_line = _ema_from(prices, slow, start)
    line: list[float] = [f - s for f, s in zip(fast_line[start:], slow_line[start:])]  # type: ignore[operator]
    signal_line = _ema_from(line, signal_period, signal_period - 1)
    first = start + signal_period - 1  # the first bar with all three outputs
    n = len(prices)
    macd_out: Values = [None] * n
    signal_out: Values = [None] * n
    hist_out: Values = [None] * n
    for index in range(first, n):
        m, s = line[index - start], signal_line[index - start]
        assert s is not None
        macd_out[index], signal_out[index], hist_out[index] = m, s, m - s
    return macd_out, signal_out, hist_out


def bollinger(prices: list[float], period: int, std_dev: float) -> tuple[Values, Values, Values]:
    upper: Values = [None] * min(period - 1, len(prices))
    middle: Values = list(upper)
    lower: Values = list(upper)
    for end in range(period, len(prices) + 1):
        window = prices[end - period:end]
        mean = sum(window) / period
        variance = sum((x - mean) ** 2 for x in window) / period
        width = std_dev * math.sqrt(variance)
        upper.append(mean + width)
        middle.append(mean)
        lower.append(mean - width)
    return upper, middle, lower


# ---------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------

def _prices(request: dict[str, Any]) -> list[float]:
    prices = request.get("prices")
    if not prices:
        raise RequestError("prices is missing or empty", "EmptyPrices")
    if not isinstance(prices, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in prices):
        raise RequestError("prices must be an array of numbers", "TypeError")
    return [float(v) for v in prices]


def _period(request: dict[str, Any], name: str, default: int) -> int:
    value = request.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 2 <= value <= 100_000:
        raise RequestError(f"{name} must be an integer in 2..100000", "ValueError")
    return value


def _compute_sma(request: dict[str, Any]) -> dict[str, Any]:
    period = _period(request, "period", 20)
    return {"indicator": "sma", "period": period, "values": sma(_prices(request), period)}


def _compute_ema(request: dict[str, Any]) -> dict[str, Any]:
    period = _period(request, "period", 20)
    return {"indicator": "ema", "period": period, "values": ema(_prices(request), period)}


def _compute_rsi(request: dict[str, Any]) -> dict[str, Any]:
    period = _period(request, "period", 14)
    return {"indicator": "rsi", "period": period, "values": rsi(_prices(request), period)}


def _compute_macd(request: dict[str, Any]) -> dict[str, Any]:
    fast = _period(request, "fast_period", 12)
    slow = _period(request, "slow_period", 26)
    signal_period = _period(request, "signal_period", 9)
    line, signal_line, histogram = macd(_prices(request), fast, slow, signal_period)
    return {"indicator": "macd", "fast_period": fast, "slow_period": slow, "signal_period": signal_period,
            "macd_line": line, "signal_line": signal_line, "histogram": histogram}


def _compute_bollinger(request: dict[str, Any]) -> dict[str, Any]:
    period = _period(request, "period", 20)
    std_dev = request.get("std_dev", 2.0)
    if not isinstance(std_dev, (int, float)) or isinstance(std_dev, bool):
        raise RequestError("std_dev must be a number", "TypeError")
    upper, middle, lower = bollinger(_prices(request), period, float(std_dev))
    return {"indicator": "bollinger", "period": period, "std_dev": std_dev,
            "upper_band": upper, "middle_band": middle, "lower_band": lower}


ACTIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "compute_sma": _compute_sma,
    "compute_ema": _compute_ema,
    "compute_rsi": _compute_rsi,
    "compute_macd": _compute_macd,
    "compute_bollinger": _compute_bollinger,
}


def handle(body: bytes) -> dict[str, Any]:
    try:
        try:
            request = json.loads(body)
        except ValueError as exc:
            raise RequestError(f"invalid JSON: {exc}", "InvalidJSON") from None
        if not isinstance(request, dict):
            raise RequestError("a request must be a JSON object", "InvalidRequest")
        action = request.get("action")
        if action == "ping":
            return {"status": "ok", "message": "pong"}
        compute = ACTIONS.get(action) if isinstance(action, str) else None
        if compute is None:
            raise RequestError(f"unknown action {action!r}", "UnknownAction")
        return {"status": "ok", "symbol": request.get("symbol"), **compute(request)}
    except RequestError as exc:
        return {"status": "error", "error": str(exc), "error_type": exc.error_type}


async def client_connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One frame in, one frame out, close."""
    try:
        (length,) = LENGTH.unpack(await reader.readexactly(4))
        if length > MAX_FRAME:
            reply = {"status": "error", "error": "frame too large", "error_type": "FrameTooLarge"}
        else:
            reply = handle(await reader.readexactly(length))
        body = json.dumps(reply).encode()
        writer.write(LENGTH.pack(len(body)) + body)
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(socket_path: str, host: str, port: int) -> None:
    servers = []
    where = []
    if socket_path:
        if os.path.exists(socket_path):
            os.unlink(socket_path)
        servers.append(await asyncio.start_unix_server(client_connected, socket_path, limit=MAX_FRAME))
        where.append(f"unix:{socket_path}")
    if host:
        server = await asyncio.start_server(client_connected, host, port, limit=MAX_FRAME)
        servers.append(server)
        bound = server.sockets[0].getsockname()
        where.append(f"tcp://{bound[0]}:{bound[1]}")
    print(f"reference[{os.getpid()}]: listening on {', '.join(where)}", flush=True)
    await common.until_signal(servers, socket_path)


def main(argv: list[str] | None = None) -> int:
    return common.main("The old single-process mojo-compute, as a baseline", serve, asyncio.run, argv)


if __name__ == "__main__":
    sys.exit(main())
