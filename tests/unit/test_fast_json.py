"""mojo_pool.fast_json: the simdjson path gives what orjson would, or steps aside.

1. Random doubles written by orjson (shortest round-trip form) and random
   decimal strings of up to 19 significant digits and wide exponents read
   back bit for bit as orjson + numpy read them.
   (Exponents up to -4 keep every value below 2**53, so none steps aside.)
2. The common request: every field as orjson reads it, prices as float64.
3. Everything it cannot prove equal comes back None: nested arrays and
   objects in arrays (also one element deep, which simdjson would flatten),
   integers of 2**53 or more (or values whose squares
   sum past 2**106), duplicate keys (also inside a
   batch's series), NaN literals, invalid JSON, a top-level array, nested
   objects other than a batch's series and params, arrays or objects in
   params, a series element that is not an object, arrays in non-price
   fields, '[' inside a string.
4. Through protocol.handle: replies and error replies are the same bytes
   whichever path ran (the fast path switched off for comparison), single
   requests and batches alike.
5. A batch: its series' arrays as float64, everything else as orjson reads it.
6. Random batches (numbers of every kind, integers past 2**53, odd symbols
   and parameters): the same reply bytes whichever path ran.
7. Random arrays of any scalars (numbers, strings, nulls, booleans), single
   and batched: the same reply bytes whichever path ran; an array holding a
   non-number is kept as the set of its element types, not its elements.
"""
from __future__ import annotations

import numpy as np
import orjson
import pytest
from hypothesis import given, settings, strategies as st

from mojo_pool import fast_json, protocol


def orjson_prices(body: bytes) -> np.ndarray:
    return np.array(orjson.loads(body)["prices"], dtype=np.float64)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=300))
def test_1_doubles_round_trip_bit_for_bit(values: list[float]) -> None:
    body = orjson.dumps({"prices": values})
    read = fast_json.loads(body)
    if read is None:  # only when a value may be past 2**53 (its square, or the sum of squares, is)
        with np.errstate(over="ignore"):
            assert not float(np.dot(values, values)) < 2.0**106
        return
    assert max(abs(v) for v in values) < 2.0**53
    assert read["prices"].tobytes() == orjson_prices(body).tobytes()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=10**19 - 1), st.integers(min_value=-345, max_value=-4),
                          st.booleans()), min_size=1, max_size=50))
def test_1_decimal_strings_read_as_orjson_reads_them(numbers: list[tuple[int, int, bool]]) -> None:
    text = ",".join(f"{'-' if negative else ''}{digits}e{exponent}" for digits, exponent, negative in numbers)
    body = b'{"prices":[' + text.encode() + b"]}"
    try:
        expected = orjson_prices(body)
    except orjson.JSONDecodeError:  # out of a double's range: orjson refuses, so must we
        assert fast_json.loads(body) is None
        return
    read = fast_json.loads(body)  # below 1e15 in magnitude, subnormals and underflow included
    assert read is not None and read["prices"].tobytes() == expected.tobytes()


def test_2_common_request() -> None:
    prices = 100.0 + np.cumsum(np.random.default_rng(5).normal(0.0, 1.0, 1000))
    body = orjson.dumps({"action": "compute_sma", "symbol": "TCS", "prices": prices, "period": 20, "id": "a\"b",
                         "std_dev": 2.5, "flag": None, "on": True}, option=orjson.OPT_SERIALIZE_NUMPY)
    read = fast_json.loads(body)
    expected = orjson.loads(body)
    assert read is not None
    assert read["prices"].dtype == np.float64 and read["prices"].tobytes() == np.array(expected["prices"]).tobytes()
    assert {k: v for k, v in read.items() if k != "prices"} == {k: v for k, v in expected.items() if k != "prices"}
    assert [type(read[k]) for k in ("period", "std_dev", "on")] == [int, float, bool]


@pytest.mark.parametrize("body", [
    b'{"prices":[1.5,[2]]}', b'{"prices":[[1.5,2.5]]}', b'{"prices":[1.5,{"a":1}]}',
    b'{"prices":[1,9007199254740993]}', b'{"prices":[-9007199254740993,1]}',
    b'{"prices":[1,9007199254740992]}', b'{"prices":[-9007199254740992]}', b'{"prices":[1e200,1]}',
    b'{"prices":[' + b",".join([b"5e15"] * 4) + b']}',  # each below 2**53, their squares' sum not
    b'{"prices":[1],"prices":[2]}', b'{"prices":[NaN]}', b'{"prices":[1.0]', b'[1,2]', b'"x"',
    b'{"action":"batch","series":[{"prices":[1.0]},[1.0]]}', b'{"action":"batch","series":[{"prices":[[1.0]]}]}',
    b'{"action":"batch","series":[{"prices":[1.0],"prices":[2.0]}]}', b'{"series":[{"series":[{"prices":[1]}]}]}',
    b'{"series":[{"symbol":"[x","prices":[1.0]}]}', b'{"series":[{"prices":[1.0]}],"series":[]}',
    b'{"params":{"timeperiod":[5]},"prices":[1.0]}', b'{"params":{"a":{"b":1}}}', b'{"other":{"a":1}}',
    b'{"series":[{"prices":[1.0],"volume":{"a":1}}]}', b'{"period":[5],"prices":[1.0]}', b'{"symbol":"A[1]","prices":[1.0]}', b'{"prices":[1e400]}',
    b'{"symbol":"\\ud800","prices":[1.0]}', b'\xff\xfe',
])
def test_3_steps_aside(body: bytes) -> None:
    assert fast_json.loads(body) is None


def test_3_arrays_of_other_scalars_keep_only_their_types() -> None:
    read = fast_json.loads(b'{"prices":[1.5,"x",null,true,2,"y"],"high":[false]}')
    assert read is not None
    assert type(read["prices"]) is fast_json.NotNumbers and read["prices"].kinds == {float, str, type(None), bool, int}
    assert read["high"].kinds == {bool}
    assert fast_json.loads(b'{"prices":["x",[1]]}') is None  # nested: the exact path words it
    assert fast_json.loads(b'{"prices":[null,{"a":1}]}') is None


def test_3_largest_exact_magnitudes_stay() -> None:
    for largest in (b"9007199254740991", b"-9007199254740991"):  # 2**53 - 1: its square is just below 2**106
        read = fast_json.loads(b'{"prices":[' + largest + b',1.5,1e-300]}')
        assert read is not None and read["prices"].tolist() == [float(largest), 1.5, 1e-300]


def assert_same_reply_either_way(body: bytes) -> None:
    """The reply to ``body`` is the same bytes with fast_json as with it switched off (orjson)."""
    fast, _ = protocol.handle(body)
    original = fast_json.loads
    try:
        fast_json.loads = lambda body: None  # type: ignore[assignment]
        slow, _ = protocol.handle(body)
    finally:
        fast_json.loads = original  # type: ignore[assignment]
    assert fast == slow


@pytest.mark.parametrize("request_body", [
    {"action": "compute_sma", "symbol": "TCS", "prices": [100.0 + k % 7 for k in range(300)], "period": 20},
    {"action": "compute_rsi", "prices": [float(k % 5) for k in range(50)], "timeperiod": 9, "id": 7},
    {"action": "compute_atr", "high": [2.0, 3.0, 4.0], "low": [1.0, 1.5, 2.0], "close": [1.5, 2.5, 3.0]},
    {"action": "compute_sma", "prices": [], "period": 2},
    {"action": "compute_sma", "prices": [1.0, 2.0], "period": 20},
    {"action": "compute_sma", "prices": [1.0, 2.0, 3.0], "period": 2, "extra": 1},
    {"action": "compute_sma", "prices": [1.0, 2.0, 3.0], "period": "2"},
    {"action": "compute_sma", "prices": [1.0, 2.0, 3.0], "params": {"period": 2}},
    {"action": "batch", "indicator": "rsi", "params": {"timeperiod": 5}, "id": "b1",
     "series": [{"symbol": f"S{k}", "prices": [100.0 + (k * j) % 7 for j in range(60)]} for k in range(5)]},
    {"action": "batch", "indicator": "atr", "series": [
        {"symbol": "A", "high": [2.0, 3.0, 4.0, 5.0], "low": [1.0, 1.5, 2.0, 2.5], "close": [1.5, 2.5, 3.0, 4.0]},
        {"high": [2.0, 3.0], "low": [1.0, 1.5], "close": [1.5, 2.5]}], "params": {"timeperiod": 2}},
    {"action": "batch", "indicator": "sma", "series": [{"prices": [1.0, 2.0]}, {"prices": []}]},
    {"action": "batch", "indicator": "sma", "series": [{"prices": [1.0, 2.0]}, {"symbol": 5, "prices": [3.0]}]},
    {"action": "batch", "indicator": "sma", "series": [{"prices": [1.0, 2.0, 3.0], "extra": 1}]},
    {"action": "batch", "indicator": "sma", "series": [], "params": {}},
    {"action": "batch", "indicator": "sma", "series": [{"prices": [1.0, 2.0, 3.0]}], "params": {"nope": 1}},
    {"action": "batch", "indicator": "nope", "series": [{"prices": [1.0]}]},
    # Arrays of other scalars, read as the types they hold (fast_json.NotNumbers):
    {"action": "compute_sma", "prices": [1.5, "x", None, True], "period": 2},
    {"action": "compute_sma", "prices": [True, False], "period": 2},
    {"action": "compute_sma", "prices": [0.0, 1, True], "period": 2},
    {"action": "compute_sma", "prices": ["1.5", "2.5"], "period": 2},
    {"action": "compute_sma", "prices": [None], "period": 2},
    {"action": "nope", "prices": ["x"]},
    {"action": "compute_sma", "prices": ["x"], "period": "a"},
    {"action": "compute_sma", "prices": ["x"], "period": 2, "extra": 1},
    {"action": "compute_atr", "high": [2.0, 3.0], "low": ["a", None], "close": [1.5, 2.5]},
    {"action": "compute_atr", "high": [2.0, 3.0], "low": [1.0], "close": [None]},
    {"action": "batch", "indicator": "sma", "series": [{"prices": [1.0, 2.0]}, {"prices": [1.0, "2"]}]},
    {"action": "batch", "indicator": "sma", "series": [{"prices": [None, 2.0]}], "params": {"nope": 1}},
])
def test_4_same_reply_either_way(request_body: dict) -> None:
    body = orjson.dumps(request_body)
    assert fast_json.loads(body) is not None
    assert_same_reply_either_way(body)


def test_5_batch() -> None:
    rng = np.random.default_rng(6)
    series = [{"symbol": f"S{k}", "prices": 50.0 + np.cumsum(rng.normal(0.0, 1.0, 200))} for k in range(20)]
    body = orjson.dumps({"action": "batch", "indicator": "ema", "params": {"timeperiod": 10}, "series": series},
                        option=orjson.OPT_SERIALIZE_NUMPY)
    read = fast_json.loads(body)
    expected = orjson.loads(body)
    assert read is not None and read["params"] == {"timeperiod": 10} and read["indicator"] == "ema"
    assert [item["symbol"] for item in read["series"]] == [item["symbol"] for item in expected["series"]]
    for ours, theirs in zip(read["series"], expected["series"]):
        assert ours["prices"].dtype == np.float64
        assert ours["prices"].tobytes() == np.array(theirs["prices"], dtype=np.float64).tobytes()


NUMBERS = st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=64),
                    st.integers(min_value=-(2**60), max_value=2**60))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.fixed_dictionaries({"prices": st.lists(NUMBERS, max_size=40)},
                                      optional={"symbol": st.one_of(st.text(max_size=8), st.integers(-(2**63), 2**63 - 1))}),
                min_size=0, max_size=6),
       st.sampled_from(["sma", "ema", "rsi", "mom"]),
       st.dictionaries(st.sampled_from(["timeperiod", "period", "other"]),
                       st.one_of(st.integers(-3, 50), st.floats(allow_nan=False), st.text(max_size=3)), max_size=2))
def test_6_random_batches_same_reply_either_way(series: list[dict], indicator: str, params: dict) -> None:
    body = orjson.dumps({"action": "batch", "indicator": indicator, "params": params, "series": series})
    assert_same_reply_either_way(body)


SCALARS = st.one_of(NUMBERS, st.text(max_size=3), st.none(), st.booleans())


@settings(max_examples=200, deadline=None)
@given(st.lists(SCALARS, max_size=12), st.lists(SCALARS, max_size=4), st.sampled_from(["sma", "atr"]),
       st.booleans())
def test_7_arrays_of_any_scalars_same_reply_either_way(first: list, second: list, indicator: str, batch: bool) -> None:
    if indicator == "sma":
        fields = {"prices": first}
    else:
        fields = {"high": first, "low": second, "close": first}
    request = ({"action": "batch", "indicator": indicator, "series": [fields, {**fields}]} if batch
               else {"action": f"compute_{indicator}", **fields})
    body = orjson.dumps(request)
    assert_same_reply_either_way(body)
