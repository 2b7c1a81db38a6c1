"""The stack a Python team would build instead of mojo_pool: HTTP + TA-Lib.

A Starlette app with one endpoint, ``POST /compute``, taking the same JSON
request as the mojo-compute protocol's seed actions (``compute_sma``,
``compute_ema``, ``compute_rsi``, ``compute_macd``, ``compute_bollinger``,
with ``prices``, ``period`` ...) and answering with the same reply fields.
It is deliberately the well-tuned version of the obvious design, so that
mojo_pool is measured against a fair alternative rather than a straw man:

* uvicorn with several worker processes, uvloop and httptools, no access log;
* orjson to parse the body and to write the reply (numpy arrays serialised
  directly; NaN in the lookback becomes ``null``);
* numpy + TA-Lib (the C library, from PyPI's ``ta-lib`` wheel) to compute;
* an ``async def`` handler: the TA-Lib call is microseconds, cheaper than
  handing it to a thread pool.

Run it (from the repository root) with::

    uvicorn benchmarks.servers.http_app:app --workers 2 --loop uvloop --http httptools --no-access-log

Bad input gets HTTP 400 and ``{"status": "error", "error": ..., "error_type": ...}``.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import orjson
import talib
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


class RequestError(Exception):
    def __init__(self, message: str, error_type: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _prices(request: dict[str, Any]) -> np.ndarray:
    prices = request.get("prices")
    if not prices:
        raise RequestError("prices is missing or empty", "EmptyPrices")
    try:
        return np.asarray(prices, dtype=np.float64)
    except (TypeError, ValueError):
        raise RequestError("prices must be an array of numbers", "TypeError") from None


def _period(request: dict[str, Any], name: str, default: int) -> int:
    value = request.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 2 <= value <= 100_000:
        raise RequestError(f"{name} must be an integer in 2..100000", "ValueError")
    return value


def _sma(request: dict[str, Any]) -> dict[str, Any]:
    period = _period(request, "period", 20)
    return {"indicator": "sma", "period": period, "values": talib.SMA(_prices(request), timeperiod=period)}


def _ema(request: dict[str, Any]) -> dict[str, Any]:
    period = _period(request, "period", 20)
    return {"indicator": "ema", "period": period, "values": talib.EMA(_prices(request), timeperiod=period)}


def _rsi(request: dict[str, Any]) -> dict[str, Any]:
    period = _period(request, "period", 14)
    return {"indicator": "rsi", "period": period, "values": talib.RSI(_prices(request), timeperiod=period)}


def _macd(request: dict[str, Any]) -> dict[str, Any]:
    fast = _period(request, "fast_period", 12)
    slow = _period(request, "slow_period", 26)
    signal = _period(request, "signal_period", 9)
    line, signal_line, histogram = talib.MACD(_prices(request), fastperiod=fast, slowperiod=slow,
                                              signalperiod=signal)
    return {"indicator": "macd", "fast_period": fast, "slow_period": slow, "signal_period": signal,
            "macd_line": line, "signal_line": signal_line, "histogram": histogram}


def _bollinger(request: dict[str, Any]) -> dict[str, Any]:
    period = _period(request, "period", 20)
    std_dev = request.get("std_dev", 2.0)
    if not isinstance(std_dev, (int, float)) or isinstance(std_dev, bool):
        raise RequestError("std_dev must be a number", "TypeError")
    upper, middle, lower = talib.BBANDS(_prices(request), timeperiod=period, nbdevup=std_dev, nbdevdn=std_dev)
    return {"indicator": "bollinger", "period": period, "std_dev": std_dev,
            "upper_band": upper, "middle_band": middle, "lower_band": lower}


ACTIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "compute_sma": _sma,
    "compute_ema": _ema,
    "compute_rsi": _rsi,
    "compute_macd": _macd,
    "compute_bollinger": _bollinger,
}


def _json(reply: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(reply, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type="application/json")


async def compute(request: Request) -> Response:
    try:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            raise RequestError(f"invalid JSON: {exc}", "InvalidJSON") from None
        if not isinstance(body, dict):
            raise RequestError("a request must be a JSON object", "InvalidRequest")
        action = body.get("action")
        if action == "ping":
            return _json({"status": "ok", "message": "pong"})
        handler = ACTIONS.get(action) if isinstance(action, str) else None
        if handler is None:
            raise RequestError(f"unknown action {action!r}", "UnknownAction")
        return _json({"status": "ok", "symbol": body.get("symbol"), **handler(body)})
    except RequestError as exc:
        return _json({"status": "error", "error": str(exc), "error_type": exc.error_type}, 400)


app = Starlette(routes=[Route("/compute", compute, methods=["POST"])])
