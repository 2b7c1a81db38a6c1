"""The mojo-compute protocol, one request body at a time (``protocol.handle``).

1. ``ping`` answers ``pong``; an ``id`` (string or integer) is echoed in ok
   and error replies; an id that is neither (a list, a 300-character string,
   a boolean, an integer beyond 64 bits) is refused as InvalidRequest.
2. The five seed actions (compute_sma, ema, rsi, macd, bollinger) reply with
   the original service's fields, values equal to ``mojo_pool.indicators``
   exactly, and ``null`` (never 0, never NaN) inside the lookback.
3. Parameters absent, the seed actions use the original service's defaults
   (period 20 for SMA, EMA and Bollinger, 14 for RSI, MACD 12/26/9, two
   standard deviations) and echo them in the reply.
4. The seed actions accept TA-Lib's parameter names too, echoed under the
   original names; giving an alias and its TA-Lib name is InvalidRequest.
5. ``compute_<name>`` runs any registry indicator, several inputs included
   (ATR, ADOSC with volume, STOCH with its two outputs named as in TA-Lib),
   equal to the indicator API, with the checked parameters under ``params``.
6. ``batch``: 50 symbols of one length give what 50 single calls give;
   unequal lengths work too; the reply lists its outputs; a bad series is
   refused with an error naming ``series[k]``.
7. Binary mode (a body built by hand per the module docstring, and by
   ``client.encode_request``) gives the JSON mode's values, NaN where JSON
   has null; the header's field order, not the indicator's, orders the
   payload; a payload longer or shorter than the header describes, or
   holding NaN or Infinity, is a ValueError; a malformed prefix or header
   gets its own error.
8. Every error type has its error reply: status "error", a non-empty
   message and the error_type, which the Outcome records too.
9. JSON nested 1,000 levels deep and more gets a typed error, not a crash.
10. Integers above 2**53 in an array (which a double cannot hold exactly)
    are a ValueError, not silently rounded.
11. ``peek`` reads a request's action and id without handling it.
12. Hypothesis: arbitrary bytes, and arbitrary JSON objects whose action is
    a real one, never raise out of ``handle``: the reply is always valid
    JSON with status ok or error.
13. Regressions (bugs these tests found, now fixed): booleans mixed with
    numbers were taken as 1 and 0; ragged or too-deep nested arrays raised
    out of ``handle``; integers above 2**53 beside a float, or in
    [2**63, 2**64) beside a smaller integer, were rounded silently. Integer
    literals of 2**64 and more are read as floats (orjson), by design.
14. ``peek_cheap`` agrees with ``peek`` on large bodies.
15. A JSON body over EXACT_JSON_LIMIT that the fast reader declines (arrays
    inside arrays, duplicate keys, '[' inside a string, invalid JSON) gets
    InvalidRequest naming the limit, before any Python object is made of
    it; the same content under the limit gets the exact path's reply, and
    plain numbers over the limit are computed.
"""
from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mojo_pool import indicators, protocol
from mojo_pool.client import encode_request

RNG = np.random.default_rng(20240611)
N = 250
CLOSE = 100.0 + np.cumsum(RNG.normal(0.0, 1.0, N))
HIGH = CLOSE + RNG.uniform(0.1, 2.0, N)
LOW = CLOSE - RNG.uniform(0.1, 2.0, N)
VOLUME = RNG.uniform(1e3, 1e5, N).round()
PRICES = CLOSE.tolist()


def call(request: dict[str, Any] | bytes) -> tuple[dict[str, Any], protocol.Outcome]:
    """A request (dict, or a body as bytes) through ``handle``; the reply decoded."""
    if isinstance(request, bytes):
        body = request
    else:
        try:
            body = orjson.dumps(request, option=orjson.OPT_SERIALIZE_NUMPY)
        except TypeError:  # an integer beyond 64 bits: its JSON text all the same
            body = json.dumps(request).encode()
    reply, outcome = protocol.handle(body)
    assert isinstance(reply, bytes)
    return protocol.decode(reply), outcome


def ok(request: dict[str, Any] | bytes) -> dict[str, Any]:
    reply, outcome = call(request)
    assert reply["status"] == "ok", reply
    assert outcome.error_type is None
    return reply


def refused(request: dict[str, Any] | bytes, error_type: str, match: str = "") -> dict[str, Any]:
    """The error reply, checked: status, a non-empty message, the type, the same type in the Outcome."""
    reply, outcome = call(request)
    assert reply["status"] == "error", reply
    assert isinstance(reply["error"], str) and reply["error"], reply
    assert reply["error_type"] == error_type, reply
    assert outcome.error_type == error_type
    assert match in reply["error"], reply
    return reply


def as_json(values: np.ndarray) -> list[float | None]:
    """What a JSON reply should hold for these values: NaN as null, the rest exactly."""
    return [None if np.isnan(v) else float(v) for v in values]


def binary_body(header: dict[str, Any], *arrays: np.ndarray, extra: bytes = b"") -> bytes:
    """A binary-mode body by hand: 0x00, u32 BE header length, JSON header, float64 LE values."""
    head = orjson.dumps(header)
    payload = b"".join(np.asarray(a, dtype=np.float64).astype("<f8").tobytes() for a in arrays)
    return b"\x00" + struct.pack(">I", len(head)) + head + payload + extra


# ---------------------------------------------------------------------------
# 1. ping and ids
# ---------------------------------------------------------------------------

def test_1_ping() -> None:
    reply, outcome = call({"action": "ping"})
    assert reply == {"status": "ok", "message": "pong"}
    assert outcome.action == "ping" and outcome.error_type is None


@pytest.mark.parametrize("request_id", ["req-1", "", "x" * 256, 0, 42, -7, 2**63 - 1, -(2**63)])
def test_1_id_is_echoed(request_id: object) -> None:
    assert ok({"action": "ping", "id": request_id})["id"] == request_id
    assert ok({"action": "compute_sma", "prices": PRICES, "id": request_id})["id"] == request_id
    # Errors found after the id was read carry it too.
    assert refused({"action": "nope", "id": request_id}, "UnknownAction")["id"] == request_id
    assert refused({"action": "compute_sma", "prices": [], "id": request_id}, "EmptyPrices")["id"] == request_id
    assert refused({"action": "compute_sma", "prices": PRICES, "period": 0, "id": request_id},
                   "ValueError")["id"] == request_id


def test_1_absent_or_null_id_is_not_echoed() -> None:
    assert "id" not in ok({"action": "ping"})
    assert "id" not in ok({"action": "ping", "id": None})
    assert "id" not in refused({"action": "nope"}, "UnknownAction")


@pytest.mark.parametrize("request_id", [[1, 2], ["a"], {"k": 1}, "x" * 300, 1.5, True, 2**63, -(2**63) - 1])
def test_1_invalid_id_is_refused(request_id: object) -> None:
    reply = refused({"action": "ping", "id": request_id}, "InvalidRequest", "id must be")
    assert "id" not in reply  # not echoed: it is what is wrong


# ---------------------------------------------------------------------------
# 2-4. The five seed actions
# ---------------------------------------------------------------------------

def test_2_sma_ema_rsi_equal_the_indicator_api() -> None:
    for action, function, period in [("compute_sma", indicators.sma, 10), ("compute_ema", indicators.ema, 12),
                                     ("compute_rsi", indicators.rsi, 9)]:
        reply = ok({"action": action, "symbol": "TCS", "prices": PRICES, "period": period})
        assert set(reply) == {"status", "symbol", "indicator", "period", "values"}
        assert reply["symbol"] == "TCS"
        assert reply["indicator"] == action.removeprefix("compute_")
        assert reply["period"] == period
        expected = function(CLOSE, timeperiod=period)
        assert reply["values"] == as_json(expected)
        lookback = int(np.isnan(expected).sum())
        assert lookback > 0
        assert reply["values"][:lookback] == [None] * lookback  # null: not 0, not NaN
        assert all(isinstance(v, float) for v in reply["values"][lookback:])


def test_2_macd_equals_the_indicator_api() -> None:
    reply = ok({"action": "compute_macd", "symbol": "INFY", "prices": PRICES,
                "fast_period": 5, "slow_period": 13, "signal_period": 4})
    assert set(reply) == {"status", "symbol", "indicator", "fast_period", "slow_period", "signal_period",
                          "macd_line", "signal_line", "histogram"}
    assert (reply["indicator"], reply["fast_period"], reply["slow_period"], reply["signal_period"]) == (
        "macd", 5, 13, 4)
    macd, signal, hist = indicators.macd(CLOSE, fastperiod=5, slowperiod=13, signalperiod=4)
    assert reply["macd_line"] == as_json(macd)
    assert reply["signal_line"] == as_json(signal)
    assert reply["histogram"] == as_json(hist)
    assert reply["histogram"][0] is None


def test_2_bollinger_equals_the_indicator_api() -> None:
    reply = ok({"action": "compute_bollinger", "symbol": "HDFC", "prices": PRICES, "period": 15, "std_dev": 1.5})
    assert set(reply) == {"status", "symbol", "indicator", "period", "std_dev",
                          "upper_band", "middle_band", "lower_band"}
    assert (reply["indicator"], reply["period"], reply["std_dev"]) == ("bollinger", 15, 1.5)
    upper, middle, lower = indicators.bbands(CLOSE, timeperiod=15, nbdevup=1.5, nbdevdn=1.5)
    assert reply["upper_band"] == as_json(upper)
    assert reply["middle_band"] == as_json(middle)
    assert reply["lower_band"] == as_json(lower)
    assert reply["middle_band"][:14] == [None] * 14


def test_2_symbol_is_optional_and_integer_prices_work() -> None:
    reply = ok({"action": "compute_sma", "prices": list(range(1, 31)), "period": 3})
    assert reply["symbol"] is None
    assert reply["values"] == as_json(indicators.sma(np.arange(1.0, 31.0), timeperiod=3))


def test_3_defaults_are_used_and_echoed() -> None:
    assert ok({"action": "compute_sma", "prices": PRICES})["period"] == 20
    assert ok({"action": "compute_sma", "prices": PRICES})["values"] == as_json(indicators.sma(CLOSE, timeperiod=20))
    assert ok({"action": "compute_ema", "prices": PRICES})["period"] == 20
    assert ok({"action": "compute_ema", "prices": PRICES})["values"] == as_json(indicators.ema(CLOSE, timeperiod=20))
    assert ok({"action": "compute_rsi", "prices": PRICES})["period"] == 14
    assert ok({"action": "compute_rsi", "prices": PRICES})["values"] == as_json(indicators.rsi(CLOSE, timeperiod=14))

    macd = ok({"action": "compute_macd", "prices": PRICES})
    assert (macd["fast_period"], macd["slow_period"], macd["signal_period"]) == (12, 26, 9)
    assert macd["macd_line"] == as_json(indicators.macd(CLOSE, fastperiod=12, slowperiod=26, signalperiod=9)[0])

    bollinger = ok({"action": "compute_bollinger", "prices": PRICES})
    assert (bollinger["period"], bollinger["std_dev"]) == (20, 2.0)
    assert isinstance(bollinger["std_dev"], float)
    upper = indicators.bbands(CLOSE, timeperiod=20, nbdevup=2.0, nbdevdn=2.0)[0]
    assert bollinger["upper_band"] == as_json(upper)

    # Only some parameters given: the rest keep their defaults.
    partial = ok({"action": "compute_macd", "prices": PRICES, "slow_period": 30})
    assert (partial["fast_period"], partial["slow_period"], partial["signal_period"]) == (12, 30, 9)


def test_3_integral_float_parameters_are_echoed_as_integers() -> None:
    reply = ok({"action": "compute_sma", "prices": PRICES, "period": 5.0})
    assert reply["period"] == 5 and type(reply["period"]) is int


def test_4_talib_names_on_seed_actions() -> None:
    sma = ok({"action": "compute_sma", "prices": PRICES, "timeperiod": 7})
    assert sma["period"] == 7
    assert sma["values"] == as_json(indicators.sma(CLOSE, timeperiod=7))

    macd = ok({"action": "compute_macd", "prices": PRICES, "fastperiod": 6, "slowperiod": 19, "signalperiod": 5})
    assert (macd["fast_period"], macd["slow_period"], macd["signal_period"]) == (6, 19, 5)
    assert macd["signal_line"] == as_json(indicators.macd(CLOSE, fastperiod=6, slowperiod=19, signalperiod=5)[1])

    bollinger = ok({"action": "compute_bollinger", "prices": PRICES, "timeperiod": 10, "nbdevup": 1.0,
                    "nbdevdn": 3.0, "matype": 1})
    expected = indicators.bbands(CLOSE, timeperiod=10, nbdevup=1.0, nbdevdn=3.0, matype=1)
    assert bollinger["period"] == 10
    assert bollinger["upper_band"] == as_json(expected[0])
    assert bollinger["lower_band"] == as_json(expected[2])


@pytest.mark.parametrize("request_fields", [
    {"action": "compute_sma", "period": 10, "timeperiod": 10},
    {"action": "compute_rsi", "period": 10, "timeperiod": 12},
    {"action": "compute_macd", "fast_period": 5, "fastperiod": 5},
    {"action": "compute_macd", "signal_period": 5, "signalperiod": 4},
    {"action": "compute_bollinger", "std_dev": 2.0, "nbdevup": 2.0},
    {"action": "compute_bollinger", "std_dev": 2.0, "nbdevdn": 1.0},
    {"action": "compute_bollinger", "period": 10, "timeperiod": 10},
])
def test_4_alias_and_talib_name_together_are_refused(request_fields: dict[str, Any]) -> None:
    refused({**request_fields, "prices": PRICES}, "InvalidRequest", "alias")


# ---------------------------------------------------------------------------
# 5. compute_<name>
# ---------------------------------------------------------------------------

def test_5_atr_with_three_inputs() -> None:
    reply = ok({"action": "compute_atr", "symbol": "SBIN", "high": HIGH.tolist(), "low": LOW.tolist(),
                "close": PRICES, "timeperiod": 10})
    assert set(reply) == {"status", "symbol", "indicator", "params", "values"}
    assert (reply["indicator"], reply["symbol"], reply["params"]) == ("atr", "SBIN", {"timeperiod": 10})
    assert reply["values"] == as_json(indicators.atr(HIGH, LOW, CLOSE, timeperiod=10))
    assert reply["values"][:10] == [None] * 10


def test_5_stoch_two_outputs_named_as_in_talib() -> None:
    reply = ok({"action": "compute_stoch", "high": HIGH.tolist(), "low": LOW.tolist(), "close": PRICES,
                "fastk_period": 9, "slowd_period": 4})
    assert set(reply) == {"status", "symbol", "indicator", "params", "slowk", "slowd"}
    assert reply["params"] == {"fastk_period": 9, "slowk_period": 3, "slowk_matype": 0, "slowd_period": 4,
                               "slowd_matype": 0}
    slowk, slowd = indicators.stoch(HIGH, LOW, CLOSE, fastk_period=9, slowd_period=4)
    assert reply["slowk"] == as_json(slowk)
    assert reply["slowd"] == as_json(slowd)


def test_5_adosc_with_volume_and_defaults_in_params() -> None:
    reply = ok({"action": "compute_adosc", "high": HIGH.tolist(), "low": LOW.tolist(), "close": PRICES,
                "volume": VOLUME.tolist()})
    assert reply["params"] == {"fastperiod": 3, "slowperiod": 10}  # TA-Lib's defaults, not the seed's
    assert reply["values"] == as_json(indicators.adosc(HIGH, LOW, CLOSE, VOLUME))


def test_5_generic_single_input_uses_prices_and_talib_defaults() -> None:
    reply = ok({"action": "compute_wma", "prices": PRICES})
    assert reply["params"] == {"timeperiod": 30}
    assert reply["values"] == as_json(indicators.wma(CLOSE))
    # compute_bbands is the generic action: TA-Lib's names, parameters and outputs.
    bbands = ok({"action": "compute_bbands", "prices": PRICES, "nbdevup": 1.0})
    assert bbands["params"] == {"timeperiod": 20, "nbdevup": 1.0, "nbdevdn": 2.0, "matype": 0}
    assert bbands["upperband"] == as_json(indicators.bbands(CLOSE, nbdevup=1.0)[0])


def test_5_outcome_records_the_work() -> None:
    reply, outcome = call({"action": "compute_atr", "high": HIGH.tolist(), "low": LOW.tolist(), "close": PRICES})
    assert reply["status"] == "ok"
    assert (outcome.action, outcome.indicator, outcome.points, outcome.series) == ("compute_atr", "atr", N, 1)
    assert outcome.compute_seconds >= 0.0


# ---------------------------------------------------------------------------
# 6. batch
# ---------------------------------------------------------------------------

SERIES = [100.0 + np.cumsum(RNG.normal(0.0, 1.0, 120)) for _ in range(50)]


def test_6_batch_of_50_equals_50_single_calls() -> None:
    reply, outcome = call({"action": "batch", "indicator": "rsi", "params": {"period": 9}, "id": 3,
                           "series": [{"symbol": f"S{k}", "prices": s.tolist()} for k, s in enumerate(SERIES)]})
    assert reply["status"] == "ok"
    assert (reply["indicator"], reply["period"], reply["outputs"], reply["id"]) == ("rsi", 9, ["values"], 3)
    assert [item["symbol"] for item in reply["results"]] == [f"S{k}" for k in range(50)]
    # Batch RSI steps 16 series at a time in SIMD lanes (lanes.rsi_rows), one bar
    # a step, where a single call advances four bars a step: the same values to
    # 1e-12 relative and the same nulls, not bit for bit.
    def values(listed: list) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in listed])

    for k, (item, series) in enumerate(zip(reply["results"], SERIES)):
        single = ok({"action": "compute_rsi", "symbol": f"S{k}", "prices": series.tolist(), "period": 9})
        np.testing.assert_allclose(values(item["values"]), values(single["values"]), rtol=1e-12, atol=0)
        np.testing.assert_allclose(values(item["values"]), indicators.rsi(series, timeperiod=9), rtol=1e-12, atol=0)
    assert (outcome.action, outcome.indicator, outcome.series, outcome.points) == ("batch", "rsi", 50, 50 * 120)


def test_6_batch_of_several_outputs_and_several_inputs() -> None:
    macd = ok({"action": "batch", "indicator": "macd", "series": [{"prices": s.tolist()} for s in SERIES[:5]]})
    assert macd["outputs"] == ["macd_line", "signal_line", "histogram"]
    assert (macd["fast_period"], macd["slow_period"], macd["signal_period"]) == (12, 26, 9)
    for item, series in zip(macd["results"], SERIES):
        expected = indicators.macd(series)
        assert [item[name] for name in macd["outputs"]] == [as_json(e) for e in expected]

    highs = [s + 1.0 for s in SERIES[:4]]
    lows = [s - 1.0 for s in SERIES[:4]]
    atr = ok({"action": "batch", "indicator": "atr", "params": {"timeperiod": 5},
              "series": [{"symbol": str(k), "high": h.tolist(), "low": lo.tolist(), "close": c.tolist()}
                         for k, (h, lo, c) in enumerate(zip(highs, lows, SERIES))]})
    assert atr["params"] == {"timeperiod": 5} and atr["outputs"] == ["values"]
    for item, h, lo, c in zip(atr["results"], highs, lows, SERIES):
        assert item["values"] == as_json(indicators.atr(h, lo, c, timeperiod=5))


def test_6_batch_of_unequal_lengths() -> None:
    lengths = [120, 37, 80, 5, 64]
    series = [s[:n] for s, n in zip(SERIES, lengths)]
    reply = ok({"action": "batch", "indicator": "ema", "params": {"timeperiod": 10},
                "series": [{"symbol": str(n), "prices": s.tolist()} for n, s in zip(lengths, series)]})
    assert reply["period"] == 10
    for item, s in zip(reply["results"], series):
        assert len(item["values"]) == len(s)
        assert item["values"] == as_json(indicators.ema(s, timeperiod=10))
    assert reply["results"][3]["values"] == [None] * 5  # shorter than the lookback: all null


def test_6_batch_of_one() -> None:
    reply = ok({"action": "batch", "indicator": "sma", "series": [{"prices": PRICES}]})
    assert reply["results"] == [{"symbol": None, "values": as_json(indicators.sma(CLOSE, timeperiod=20))}]


@pytest.mark.parametrize("bad, error_type, match", [
    ({"prices": "1,2,3"}, "TypeError", "series[2]: prices must be an array"),
    ({"prices": []}, "EmptyPrices", "series[2]: prices is empty"),
    ({}, "EmptyPrices", "series[2]: prices is missing"),
    ({"prices": [1.0, "x"]}, "TypeError", "series[2]"),
    ({"prices": [1.0, 2.0], "extra": 1}, "InvalidRequest", "series[2]"),
    ({"prices": [1.0, 2.0], "symbol": 7}, "TypeError", "series[2]"),
    ([1.0, 2.0], "TypeError", "series[2] must be an object"),
])
def test_6_bad_series_is_named(bad: object, error_type: str, match: str) -> None:
    series = [{"prices": PRICES}, {"prices": PRICES}, bad, {"prices": PRICES}]
    refused({"action": "batch", "indicator": "sma", "series": series}, error_type, match)


def test_6_bad_batch_requests() -> None:
    refused({"action": "batch", "indicator": "nope", "series": [{"prices": PRICES}]}, "UnknownAction", "nope")
    refused({"action": "batch", "series": [{"prices": PRICES}]}, "UnknownAction")
    refused({"action": "batch", "indicator": "sma", "series": []}, "EmptyPrices")
    refused({"action": "batch", "indicator": "sma"}, "EmptyPrices")
    refused({"action": "batch", "indicator": "sma", "params": [20], "series": [{"prices": PRICES}]}, "TypeError")
    refused({"action": "batch", "indicator": "sma", "params": {"bogus": 1}, "series": [{"prices": PRICES}]},
            "InvalidRequest", "bogus")
    refused({"action": "batch", "indicator": "sma", "params": {"period": 0}, "series": [{"prices": PRICES}]},
            "ValueError")
    refused({"action": "batch", "indicator": "sma", "prices": PRICES, "series": [{"prices": PRICES}]},
            "InvalidRequest", "prices")
    atr = {"action": "batch", "indicator": "atr",
           "series": [{"high": [1.0, 2.0], "low": [0.5, 1.0], "close": [0.7]}]}
    refused(atr, "ValueError", "series[0]: input lengths differ")


# ---------------------------------------------------------------------------
# 7. Binary mode
# ---------------------------------------------------------------------------

def test_7_binary_by_hand_equals_json() -> None:
    body = binary_body({"action": "compute_bollinger", "symbol": "TCS", "prices": N, "period": 15, "id": "b1"},
                       CLOSE)
    reply_body, outcome = protocol.handle(body)
    assert reply_body[:1] == b"\x00" and outcome.error_type is None
    binary = protocol.decode(reply_body)
    as_json_reply = ok({"action": "compute_bollinger", "symbol": "TCS", "prices": PRICES, "period": 15, "id": "b1"})
    assert binary["status"] == "ok" and binary["id"] == "b1" and binary["period"] == 15
    for name in ("upper_band", "middle_band", "lower_band"):
        assert isinstance(binary[name], np.ndarray) and binary[name].dtype == np.float64
        np.testing.assert_array_equal(binary[name], np.array(as_json_reply[name], dtype=np.float64))
    assert np.isnan(binary["middle_band"][:14]).all()  # NaN where JSON has null
    np.testing.assert_array_equal(binary["upper_band"],
                                  indicators.bbands(CLOSE, timeperiod=15, nbdevup=2.0, nbdevdn=2.0)[0])


def test_7_binary_reply_layout() -> None:
    body, _ = protocol.handle(binary_body({"action": "compute_sma", "prices": 30, "period": 5}, CLOSE[:30]))
    assert body[0] == 0
    (header_length,) = struct.unpack(">I", body[1:5])
    header = orjson.loads(body[5:5 + header_length])
    assert header["values"] == 30 and header["outputs"] == ["values"]
    values = np.frombuffer(body[5 + header_length:], dtype="<f8")
    np.testing.assert_array_equal(values, indicators.sma(CLOSE[:30], timeperiod=5))


def test_7_binary_with_the_client_encoder() -> None:
    request = {"action": "compute_stoch", "symbol": "X", "high": HIGH, "low": LOW, "close": CLOSE,
               "fastk_period": 7}
    binary = protocol.decode(protocol.handle(encode_request(request, binary=True))[0])
    json_reply = protocol.decode(protocol.handle(encode_request(request, binary=False))[0])
    assert binary["params"] == json_reply["params"]
    slowk, slowd = indicators.stoch(HIGH, LOW, CLOSE, fastk_period=7)
    np.testing.assert_array_equal(binary["slowk"], slowk)
    np.testing.assert_array_equal(binary["slowd"], slowd)
    np.testing.assert_array_equal(binary["slowk"], np.array(json_reply["slowk"], dtype=np.float64))
    assert json_reply["slowk"] == as_json(slowk)


def test_7_binary_batch() -> None:
    series = [SERIES[0], SERIES[1][:60], SERIES[2]]
    request = {"action": "batch", "indicator": "sma", "params": {"timeperiod": 4},
               "series": [{"symbol": str(k), "prices": s} for k, s in enumerate(series)]}
    reply = protocol.decode(protocol.handle(encode_request(request, binary=True))[0])
    assert reply["status"] == "ok" and reply["outputs"] == ["values"]
    json_reply = protocol.decode(protocol.handle(encode_request(request, binary=False))[0])
    for item, json_item, s in zip(reply["results"], json_reply["results"], series):
        assert item["symbol"] == json_item["symbol"]
        np.testing.assert_array_equal(item["values"], indicators.sma(s, timeperiod=4))
        np.testing.assert_array_equal(item["values"], np.array(json_item["values"], dtype=np.float64))


def test_7_binary_payload_follows_the_header_order() -> None:
    expected = indicators.atr(HIGH, LOW, CLOSE, timeperiod=6)
    for order in (("close", "high", "low"), ("low", "close", "high"), ("high", "low", "close")):
        arrays = {"high": HIGH, "low": LOW, "close": CLOSE}
        header = {"action": "compute_atr", **{name: N for name in order}, "timeperiod": 6}
        reply = ok(binary_body(header, *(arrays[name] for name in order)))
        np.testing.assert_array_equal(reply["values"], expected)
        # The client encoder keeps the request's order too.
        request = {"action": "compute_atr", **{name: arrays[name] for name in order}, "timeperiod": 6}
        np.testing.assert_array_equal(ok(encode_request(request, binary=True))["values"], expected)


@pytest.mark.parametrize("body, error_type, match", [
    (binary_body({"action": "compute_sma", "prices": 30}, CLOSE[:31]), "ValueError", "the header describes"),
    (binary_body({"action": "compute_sma", "prices": 30}, CLOSE[:30], extra=b"\x01"), "ValueError",
     "the header describes"),
    (binary_body({"action": "compute_sma", "prices": 30}, CLOSE[:29]), "ValueError", "asks for more"),
    (binary_body({"action": "compute_sma", "prices": 30}), "ValueError", "asks for more"),
    (binary_body({"action": "compute_sma", "prices": 3}, [1.0, float("nan"), 3.0]), "ValueError", "NaN"),
    (binary_body({"action": "compute_sma", "prices": 3}, [1.0, float("inf"), 3.0]), "ValueError", "Infinity"),
    (binary_body({"action": "compute_sma", "prices": 3}, [1.0, -float("inf"), 3.0]), "ValueError", "Infinity"),
    (binary_body({"action": "compute_sma", "prices": [1.0, 2.0]}), "TypeError", "holds its length"),
    (binary_body({"action": "compute_sma", "prices": 2.0}, [1.0, 2.0]), "TypeError", "holds its length"),
    (binary_body({"action": "compute_sma", "prices": -1}), "TypeError", "holds its length"),
    (binary_body({"action": "compute_sma", "prices": 0}), "EmptyPrices", "empty"),
    (binary_body({"action": "compute_atr", "high": 2, "close": 2}, [1.0, 2.0], [1.0, 2.0]), "EmptyPrices",
     "low is missing"),
    (binary_body({"action": "compute_atr", "high": 2, "low": 2, "close": 1}, [2.0, 3.0], [1.0, 2.0], [1.5]),
     "ValueError", "lengths differ"),
    (binary_body({"action": "ping"}, [1.0]), "ValueError", "the header describes"),
    (b"\x00\x00\x00", "InvalidRequest", "5-byte prefix"),
    (b"\x00\x00\x00\x00\x10{}", "InvalidRequest", "exceeds the frame"),
    (b"\x00\x00\x00\x00\x03{x}", "InvalidJSON", "not valid JSON"),
    (b"\x00\x00\x00\x00\x02[]", "InvalidRequest", "JSON object"),
    (b"\x00\x00\x00\x00\x02{}", "InvalidRequest", "missing action"),
])
def test_7_binary_errors(body: bytes, error_type: str, match: str) -> None:
    reply, _ = protocol.handle(body)
    assert reply[:1] == b"{"  # error replies are JSON in either mode
    refused(body, error_type, match)


def test_7_binary_error_echoes_the_id() -> None:
    body = binary_body({"action": "compute_sma", "prices": 3, "id": 99}, [1.0, float("nan"), 3.0])
    assert refused(body, "ValueError")["id"] == 99


# ---------------------------------------------------------------------------
# 8. Every error type
# ---------------------------------------------------------------------------

def _request(**fields: Any) -> bytes:
    return orjson.dumps(fields)


ERRORS = [
    # InvalidJSON
    ("truncated JSON", b'{"action": "ping"', "InvalidJSON", "invalid JSON"),
    ("not JSON", b"hello", "InvalidJSON", "invalid JSON"),
    ("empty body", b"", "InvalidJSON", "invalid JSON"),
    ("trailing garbage", b'{"action": "ping"} x', "InvalidJSON", "invalid JSON"),
    ("invalid UTF-8", b'{"action": "ping", "symbol": "\xff\xfe"}', "InvalidJSON", "invalid JSON"),
    ("lone surrogate", b'{"action": "ping", "symbol": "\\ud800"}', "InvalidJSON", "invalid JSON"),
    ("NaN literal", b'{"action": "compute_sma", "prices": [1.0, NaN, 2.0]}', "InvalidJSON", "invalid JSON"),
    ("Infinity literal", b'{"action": "compute_sma", "prices": [Infinity]}', "InvalidJSON", "invalid JSON"),
    ("-Infinity literal", b'{"action": "compute_sma", "prices": [-Infinity]}', "InvalidJSON", "invalid JSON"),
    ("overflowing float", b'{"action": "compute_sma", "prices": [1e400]}', "InvalidJSON", "invalid JSON"),
    # InvalidRequest
    ("JSON array", b'[{"action": "ping"}]', "InvalidRequest", "JSON object"),
    ("JSON string", b'"ping"', "InvalidRequest", "JSON object"),
    ("JSON null", b"null", "InvalidRequest", "JSON object"),
    ("missing action", _request(prices=[1.0]), "InvalidRequest", "missing action"),
    ("action not a string", _request(action=["ping"]), "InvalidRequest", "missing action"),
    ("unknown field", _request(action="compute_sma", prices=[1.0, 2.0], bogus=1), "InvalidRequest", "bogus"),
    ("unknown field on ping", _request(action="ping", prices=[1.0]), "InvalidRequest", "prices"),
    ("other indicator's parameter", _request(action="compute_sma", prices=[1.0], fastperiod=3), "InvalidRequest",
     "fastperiod"),
    ("other indicator's input", _request(action="compute_sma", prices=[1.0], high=[1.0]), "InvalidRequest",
     "high"),
    # UnknownAction
    ("unknown action", _request(action="compute_nothing", prices=[1.0]), "UnknownAction", "compute_nothing"),
    ("action case matters", _request(action="PING"), "UnknownAction", "PING"),
    # EmptyPrices
    ("missing prices", _request(action="compute_sma", period=3), "EmptyPrices", "prices is missing"),
    ("null prices", _request(action="compute_ema", prices=None), "EmptyPrices", "prices is missing"),
    ("empty prices", _request(action="compute_rsi", prices=[]), "EmptyPrices", "prices is empty"),
    ("missing input", _request(action="compute_atr", high=[1.0], low=[1.0]), "EmptyPrices", "close is missing"),
    # TypeError
    ("string in prices", _request(action="compute_sma", prices=[1.0, "2.0", 3.0]), "TypeError", "numbers only"),
    ("booleans", _request(action="compute_sma", prices=[True, False, True]), "TypeError", "numbers only"),
    ("null in prices", _request(action="compute_sma", prices=[1.0, None]), "TypeError", "numbers only"),
    ("object in prices", _request(action="compute_sma", prices=[1.0, {}]), "TypeError", "numbers only"),
    ("nested lists", _request(action="compute_sma", prices=[[1.0, 2.0], [3.0, 4.0]]), "TypeError",
     "numbers only"),
    ("prices as a string", _request(action="compute_sma", prices="1,2,3"), "TypeError", "must be an array"),
    ("prices as a number", _request(action="compute_sma", prices=5), "TypeError", "must be an array"),
    ("prices as an object", _request(action="compute_sma", prices={"a": 1}), "TypeError", "must be an array"),
    ("period as a string", _request(action="compute_sma", prices=[1.0], period="20"), "TypeError",
     "must be a number"),
    ("period as a boolean", _request(action="compute_sma", prices=[1.0], period=True), "TypeError",
     "must be a number"),
    ("period as null", _request(action="compute_sma", prices=[1.0], period=None), "TypeError", "must be a number"),
    ("std_dev as a list", _request(action="compute_bollinger", prices=[1.0], std_dev=[2]), "TypeError",
     "must be a number"),
    ("symbol not a string", _request(action="compute_sma", prices=[1.0], symbol=5), "TypeError", "symbol"),
    # ValueError
    ("period 0", _request(action="compute_sma", prices=[1.0], period=0), "ValueError", "timeperiod must be in"),
    ("period negative", _request(action="compute_rsi", prices=[1.0], period=-3), "ValueError", "timeperiod"),
    ("period too large", _request(action="compute_ema", prices=[1.0], period=100001), "ValueError", "timeperiod"),
    ("period huge", b'{"action": "compute_sma", "prices": [1.0], "period": 100000000000000000000000}',
     "ValueError", "timeperiod"),
    ("period not an integer", _request(action="compute_sma", prices=[1.0], period=2.5), "ValueError",
     "must be an integer"),
    ("fast period 1", _request(action="compute_macd", prices=[1.0], fast_period=1), "ValueError", "fastperiod"),
    ("matype out of range", _request(action="compute_bollinger", prices=[1.0], matype=9), "ValueError", "matype"),
    ("mismatched lengths", _request(action="compute_atr", high=[2.0, 3.0], low=[1.0, 2.0], close=[1.5]),
     "ValueError", "input lengths differ"),
]


@pytest.mark.parametrize("body, error_type, match", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_8_every_error_type(body: bytes, error_type: str, match: str) -> None:
    reply = refused(body, error_type, match)
    assert set(reply) == {"status", "error", "error_type"}


def test_8_every_error_type_is_covered() -> None:
    assert {e[2] for e in ERRORS} == {"InvalidJSON", "InvalidRequest", "UnknownAction", "EmptyPrices",
                                      "TypeError", "ValueError"}


# ---------------------------------------------------------------------------
# 9. Deep nesting
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [1_000, 1_100, 5_000, 100_000])
def test_9_deeply_nested_json_gets_a_typed_error(depth: int) -> None:
    arrays = b'{"action": "ping", "x": ' + b"[" * depth + b"]" * depth + b"}"
    objects = b'{"action": "ping", "x": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"
    top = b"[" * depth + b"]" * depth
    for body in (arrays, objects, top):
        reply, outcome = call(body)
        assert reply["status"] == "error"
        assert reply["error_type"] in ("InvalidJSON", "InvalidRequest")
        assert outcome.error_type == reply["error_type"]
    # Past the parser's depth limit it is InvalidJSON; within it, the field is refused.
    if depth > 1_024:
        refused(arrays, "InvalidJSON")
        refused(b"\x00" + struct.pack(">I", len(top)) + top, "InvalidJSON")
    else:
        refused(arrays, "InvalidRequest", "unknown field")


# ---------------------------------------------------------------------------
# 10. Integers a double cannot hold
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("prices", [[1, 2**53 + 1, 3], [1, -(2**53) - 1], [2**63 - 1, 1], [-(2**63) + 1, 5],
                                    [2**64 - 1, 2**63]])
def test_10_integers_above_2_53_are_refused(prices: list[int]) -> None:
    refused({"action": "compute_sma", "prices": prices, "period": 1}, "ValueError", "too large to be exact")
    refused({"action": "batch", "indicator": "sma", "series": [{"prices": [1, 2]}, {"prices": prices}]},
            "ValueError", "series[1]: prices holds an integer too large")


def test_10_integers_up_to_2_53_are_exact() -> None:
    for value in (2**53, -(2**53), 2**53 - 1):
        reply = ok({"action": "compute_sma", "prices": [value], "period": 1})
        assert reply["values"] == [float(value)]


# ---------------------------------------------------------------------------
# 11. peek
# ---------------------------------------------------------------------------

def test_11_peek() -> None:
    assert protocol.peek(b'{"action": "compute_sma", "id": "a", "prices": [1]}') == ("compute_sma", "a")
    assert protocol.peek(binary_body({"action": "batch", "id": 5, "series": []})) == ("batch", 5)
    assert protocol.peek(b'{"action": 3, "id": [1]}') == (None, None)
    assert protocol.peek(b'{"id": "' + b"x" * 300 + b'"}') == (None, None)
    for body in (b"", b"nonsense", b"[1]", b"\x00\x00", b"\x00\x00\x00\x00\x02[]", b"\xff"):
        assert protocol.peek(body) == (None, None)


# ---------------------------------------------------------------------------
# 12. Hypothesis: handle never raises
# ---------------------------------------------------------------------------

def assert_well_formed(body: bytes) -> None:
    reply_body, outcome = protocol.handle(body)
    reply = protocol.decode(reply_body)
    assert isinstance(reply, dict)
    assert reply["status"] in ("ok", "error")
    if reply["status"] == "error":
        assert isinstance(reply["error"], str) and reply["error"]
        assert reply["error_type"] == outcome.error_type
        assert reply_body[:1] == b"{"
        orjson.loads(reply_body)
    else:
        assert outcome.error_type is None
        if reply_body[:1] != b"\x00":
            orjson.loads(reply_body)


def _binary_of(header: bytes, payload: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", len(header)) + header + payload


HEADERS = [b'{"action": "compute_sma", "prices": 3}', b'{"action": "compute_atr", "close": 1, "high": 1, "low": 1}',
           b'{"action": "batch", "indicator": "sma", "series": [{"prices": 2}, {"prices": 1}]}',
           b'{"action": "ping", "id": 1}']


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300)
       | st.binary(max_size=100).map(lambda b: b"\x00" + struct.pack(">I", len(b)) + b)
       | st.tuples(st.sampled_from(HEADERS), st.binary(max_size=64)).map(lambda t: _binary_of(*t)))
def test_12_arbitrary_bytes_never_raise(body: bytes) -> None:
    assert_well_formed(body)


SERIES_FIELDS = ["prices", "high", "low", "close", "volume", "symbol"]


def _field_names(action: str) -> list[str]:
    """The fields an action knows (drawn most often, so that requests get past the field check)."""
    if action == "ping":
        return ["id", "symbol"]
    if action == "batch":
        return ["id", "symbol", "indicator", "params", "series"]
    known = protocol.ACTIONS[action]
    return ["id", "symbol", *known.input_fields, *known.aliases, *known.indicator.param_index]


SCALARS = (st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.integers(-5, 60)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
           | st.sampled_from(sorted(indicators.REGISTRY)))
NUMBERS = st.lists(st.floats(-1e6, 1e6) | st.integers(-1000, 1000), min_size=1, max_size=40)
KEYS = st.sampled_from(SERIES_FIELDS + ["period", "params", "series", "id"]) | st.text(max_size=6)


def _json_values(lists_of_lists: bool) -> st.SearchStrategy[Any]:
    """JSON values; with ``lists_of_lists`` False no list sits directly inside a list (see test_13)."""
    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        items = children if lists_of_lists else (SCALARS | st.dictionaries(KEYS, children, max_size=4))
        return st.lists(items, max_size=8) | st.dictionaries(KEYS, children, max_size=6)
    series = st.lists(st.dictionaries(st.sampled_from(SERIES_FIELDS), NUMBERS | SCALARS, max_size=4), max_size=3)
    return st.recursive(SCALARS | NUMBERS | series, extend, max_leaves=40)


def _requests(lists_of_lists: bool) -> st.SearchStrategy[dict[str, Any]]:
    values = _json_values(lists_of_lists)
    arrays = set(SERIES_FIELDS) - {"symbol"}

    def value_for(name: str) -> st.SearchStrategy[Any]:
        """Mostly a plausible value for the field (so that some requests succeed), sometimes anything."""
        if name in arrays:
            likely: st.SearchStrategy[Any] = NUMBERS
        elif name == "series":
            likely = st.lists(st.fixed_dictionaries({"prices": NUMBERS}), min_size=1, max_size=4)
        elif name == "indicator":
            likely = st.sampled_from(sorted(indicators.REGISTRY) + ["macd", "bollinger"])
        elif name in ("id", "symbol"):
            likely = st.text(max_size=10)
        elif name == "params":
            likely = st.fixed_dictionaries({}, optional={"timeperiod": st.integers(1, 50)})
        else:
            likely = st.integers(1, 50)
        return likely | likely | likely | values

    def for_action(action: str) -> st.SearchStrategy[dict[str, Any]]:
        required = (["indicator", "series"] if action == "batch" else [] if action == "ping"
                    else list(protocol.ACTIONS[action].input_fields))
        base = st.fixed_dictionaries({}, optional={name: value_for(name) for name in required})
        names = st.sampled_from(_field_names(action))
        known = st.lists(names.flatmap(lambda n: st.tuples(st.just(n), value_for(n))), max_size=4).map(dict)
        other = st.dictionaries(KEYS, values, min_size=1, max_size=2)
        extra = st.sampled_from([False, False, False, True]).flatmap(lambda yes: other if yes else st.just({}))
        return st.tuples(base, known, extra).map(lambda t: {**t[0], **t[1], **t[2], "action": action})
    actions = st.sampled_from(["ping", "batch"]) | st.sampled_from(sorted(protocol.ACTIONS))
    return actions.flatmap(for_action)


def _body_of(request: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(request)
    except TypeError:  # an integer beyond 64 bits: send its JSON text anyway
        return json.dumps(request).encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_requests(lists_of_lists=False))
def test_12_arbitrary_json_objects_never_raise(request_fields: dict[str, Any]) -> None:
    assert_well_formed(_body_of(request_fields))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_requests(lists_of_lists=True))
@example({"action": "compute_sma", "prices": [[1.0], [2.0, 3.0]]})
def test_12_arbitrary_json_objects_with_nested_lists_never_raise(request_fields: dict[str, Any]) -> None:
    assert_well_formed(_body_of(request_fields))


# ---------------------------------------------------------------------------
# 13. Regressions: bugs found by these tests, fixed
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("prices", [[1.5, True, 3.0], [1, False, 3], [True, 2.0]])
def test_13_booleans_among_numbers_are_refused(prices: list[object]) -> None:
    refused({"action": "compute_sma", "prices": prices, "period": 1}, "TypeError")


NESTED_1000 = b"[" * 1_000 + b"1.0" + b"]" * 1_000


@pytest.mark.parametrize("body", [
    _request(action="compute_sma", prices=[[1.0], [2.0, 3.0]]),
    _request(action="compute_sma", prices=[1.0, [2.0]]),
    _request(action="compute_atr", high=[1.0, 2.0], low=[[1.0, 2.0], 1.0], close=[1.0, 2.0]),
    _request(action="batch", indicator="sma", series=[{"prices": [1.0, [2.0, 3.0]]}]),
    b'{"action": "compute_sma", "prices": ' + b"[" * 100 + b"1.0" + b"]" * 100 + b"}",
    b'{"action": "compute_sma", "prices": ' + NESTED_1000 + b"}",
], ids=["ragged", "number and list", "ragged atr low", "ragged in batch", "100 levels", "1000 levels"])
def test_13_nested_arrays_never_raise(body: bytes) -> None:
    refused(body, "TypeError")


@pytest.mark.parametrize("body", [
    _request(action="compute_sma", prices=[2**53 + 1, 0.5], period=1),
    _request(action="compute_sma", prices=[1, 2**63], period=1),
    _request(action="compute_sma", prices=[2**64 - 1, 100.0], period=1),
    _request(action="compute_sma", prices=[2**63 + 1, -1], period=1),
], ids=["int and float", "uint64 and int", "uint64 and float", "uint64 and negative"])
def test_13_integers_above_2_53_are_refused_in_any_mix(body: bytes) -> None:
    refused(body, "ValueError", "too large")


def test_13_integer_literals_beyond_64_bits_read_as_floats() -> None:
    """orjson reads an integer literal of 2**64 or more as a double, as JSON
    parsers that map numbers to doubles do: it arrives as a float, not an
    integer, and is computed as that float."""
    reply, outcome = protocol.handle(b'{"action": "compute_sma", "prices": [100000000000000000000001, 1], "period": 1}')
    assert outcome.error_type is None
    values = orjson.loads(reply)["values"]
    assert len(values) == 2 and values[0] == float(100000000000000000000001)


# ---------------------------------------------------------------------------
# 14. peek_cheap: the supervisor's refusal path reads action and id like peek
# ---------------------------------------------------------------------------

_KEYS = st.sampled_from(["action", "id", "symbol", "period", "sym\"id", "x\\", "id ", "note"])
_VALUES = st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=12), st.sampled_from(
    ["compute_sma", "id", "action", "a\"b", "\\", "ping"]), st.floats(allow_nan=False, allow_infinity=False),
    st.none(), st.booleans())


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=6), st.integers(0, 3), st.booleans())
def test_14_peek_cheap_agrees_with_peek(fields: dict, where: int, spaced: bool) -> None:
    """14. On large bodies (past SMALL_BODY, where the cheap walk is used),
    with keys in any order, look-alike keys and values, escapes and spacing,
    peek_cheap returns what the exact peek does."""
    prices = [100.0 + k / 7 for k in range(600)]
    items = list(fields.items())
    items.insert(min(where, len(items)), ("prices", prices))
    request = dict(items)
    body = json.dumps(request, separators=(", ", ": ") if spaced else (",", ":")).encode()
    assert len(body) > protocol.SMALL_BODY
    assert protocol.peek_cheap(body) == protocol.peek(body)
    assert protocol.peek_cheap(memoryview(body)) == protocol.peek(body)


def test_14_peek_cheap_on_a_typical_request() -> None:
    body = orjson.dumps({"action": "compute_sma", "symbol": "TCS", "prices": [1.5] * 1000, "period": 20,
                         "id": "req-7"})
    assert protocol.peek_cheap(body) == ("compute_sma", "req-7")
    body = orjson.dumps({"prices": [1.5] * 1000, "id": 12, "action": "compute_rsi"})
    assert protocol.peek_cheap(body) == ("compute_rsi", 12)


def _large_body(size: int, element: bytes, extra: bytes = b"") -> bytes:
    count = size // (len(element) + 1) + 1
    return b'{"action":"compute_sma","period":2,' + extra + b'"prices":[' + b",".join([element] * count) + b"]}"


@pytest.mark.parametrize("element, extra, under_limit_error", [
    (b"[1]", b"", "TypeError"),                                # arrays inside the array
    (b"1.5", b'"period":3,', None),                             # a duplicate key: orjson keeps the last
    (b"1.5", b'"symbol":"A[1]",', None),                        # '[' inside a string
    (b"1.5", b'"symbol":,', "InvalidJSON"),                     # not JSON
])
def test_15_large_bodies_the_fast_reader_declines(element: bytes, extra: bytes, under_limit_error: str | None) -> None:
    over = _large_body(protocol.EXACT_JSON_LIMIT + 1, element, extra)
    reply = json.loads(protocol.handle(over)[0])
    assert reply["error_type"] == "InvalidRequest" and "over 8 MiB" in reply["error"] and "binary mode" in reply["error"]
    under = json.loads(protocol.handle(_large_body(4096, element, extra))[0])
    assert under.get("error_type") == under_limit_error
    plain = _large_body(protocol.EXACT_JSON_LIMIT + 1, b"1.5")
    reply = json.loads(protocol.handle(plain)[0])
    assert reply["status"] == "ok" and reply["values"][-1] == 1.5
