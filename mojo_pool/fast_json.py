"""The common JSON request, read without a Python float per price.

orjson turns a 1,000-price body into a list of 1,000 Python floats (16 us)
that numpy then walks to learn their type and copy them (13 us), after
which :class:`~mojo_pool.requests.Arrays` checks for booleans and huge
integers (4 us): about a third of what a worker spends on an SMA-20
request. simdjson (pysimdjson) parses the body into its own tape and copies
a numeric array straight into a float64 buffer, correctly rounded, in about
12 us for the whole request.

:func:`loads` takes that path only when it can prove the result is what
``orjson.loads`` followed by ``Arrays.take`` would give: a JSON object with
distinct keys, whose arrays are price inputs holding numbers only (no
integer past 2**53, which a double would round) or other scalars (kept as
the set of their types, :class:`NotNumbers`, which is all the error reply
needs), and whose other values are scalars; or a batch, whose ``series``
is an array of such objects and whose ``params`` is an object of scalars.
Anything else -- invalid JSON, NaN literals, arrays or objects inside
arrays, other nested objects -- returns None and the caller parses with
orjson as before, so replies and error messages do not depend on which
path ran.

Batches gain the most: a worker given 100 series x 1,000 points spent half
its time in orjson and in numpy's reading of the 100,000 Python floats it
made (py-spy), after simdjson had parsed the body and stepped aside.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

try:
    import simdjson
except ImportError:  # pragma: no cover - a dependency; without it everything takes orjson
    simdjson = None

from .indicators.registry import PRICE_INPUTS

ARRAY_FIELDS = frozenset({"prices", *PRICE_INPUTS})
EXACT_INTEGERS = 2.0**53
EXACT_SQUARES = EXACT_INTEGERS * EXACT_INTEGERS
_dot = np.dot
# A price past ~1e154 overflows the sum of squares to inf, which rightly
# sends its array down the exact path; numpy's warning about it is noise.
warnings.filterwarnings("ignore", "overflow encountered in dot", RuntimeWarning, __name__)


class NotNumbers:
    """A price array holding something other than numbers, kept as the set
    of its elements' types (what the exact reader's ``set(map(type, ...))``
    gives): ``Arrays.take`` refuses it with the same words as the list the
    exact path would have made. Without it, orjson made a Python object per
    element: 10**7 strings (38 MB of JSON) took a worker ~880 MB above its
    baseline, against the ~250 MB simdjson needs for the document.
    """
    __slots__ = ("kinds",)

    def __init__(self, kinds: set[type]) -> None:
        self.kinds = kinds


def _element_kinds(array: Any) -> set[type] | None:
    """The types of an array's elements, one element alive at a time; None
    if one is an array or object (the exact path tells ragged nesting from
    rectangular)."""
    kinds: set[type] = set()
    add = kinds.add
    for item in array:
        kind = type(item)
        if kind is simdjson.Array or kind is simdjson.Object:
            return None
        add(kind)
    return kinds


def loads(body: bytes | bytearray | memoryview) -> dict[str, Any] | None:
    """The request with its price arrays as float64 arrays, or None (parse it with orjson)."""
    if simdjson is None:
        return None
    # A parser per call: its documents refer to the parser's buffers, and a
    # parser still referenced by a document (an exception's traceback, say)
    # refuses to parse again. Making one costs ~0.05 us.
    data = bytes(body) if isinstance(body, memoryview) else body
    try:
        return _read(simdjson.Parser().parse(data), data)
    except Exception:  # noqa: BLE001 - whatever simdjson refuses, orjson judges (and words the error)
        return None


def _read(document: Any, data: bytes | bytearray) -> dict[str, Any] | None:
    if not isinstance(document, simdjson.Object):
        return None
    arrays = [0]  # the arrays read, each of which has one '[' in the body
    request = _fields(document, arrays, top=True)
    if request is None:
        return None
    # as_buffer flattens nested arrays: a body with any '[' beyond the arrays'
    # own (even inside a string) goes the exact way. Found with find()
    # (memchr) rather than count(), which walks the body byte by byte: 0.5
    # against 4.3 us over 18 KB.
    position = -1
    for _ in range(arrays[0] + 1):
        position = data.find(b"[", position + 1)
        if position < 0:
            break
    else:
        return None
    return request


def _fields(source: Any, arrays: list[int], top: bool = False, scalars: bool = False) -> dict[str, Any] | None:
    """One JSON object's fields: price arrays as float64, scalars as they are;
    at the top, a batch's ``series`` (objects like this one) and ``params``
    (scalars only). None for anything else."""
    keys = list(source.keys())
    if len(set(keys)) != len(keys):
        return None  # duplicate keys: orjson keeps the last, simdjson the first
    fields: dict[str, Any] = {}
    for key in keys:
        value = source[key]
        if isinstance(value, simdjson.Array):
            if scalars:
                return None
            if top and key == "series":
                items = []
                for item in value:
                    one = _fields(item, arrays) if isinstance(item, simdjson.Object) else None
                    if one is None:
                        return None
                    items.append(one)
                fields[key] = items
            elif key in ARRAY_FIELDS:
                # A non-number element raises here (nested arrays of numbers
                # do not: as_buffer flattens them, and _read's count of '['
                # sends those down the exact path).
                try:
                    values = np.frombuffer(value.as_buffer(of_type="d"), dtype=np.float64)
                except TypeError:  # an element that is not a number
                    kinds = _element_kinds(value)
                    if kinds is None:
                        return None
                    fields[key] = NotNumbers(kinds)
                    arrays[0] += 1
                    continue
                # Every |value| is below 2**53 if the sum of squares is below
                # 2**106: squares and sums of non-negative terms round
                # monotonically, so one value of 2**53 or more makes the
                # computed sum at least 2**106 (and an overflow makes it inf).
                # One BLAS call, 0.45 us for 1,000 values, against 1.8 us for
                # min() and max(); arrays whose values are merely large in
                # bulk (1e13 a price) take the exact path, which is slower only.
                if not _dot(values, values) < EXACT_SQUARES:
                    return None
                fields[key] = values
            else:
                return None
            arrays[0] += 1
        elif isinstance(value, simdjson.Object):
            if not (top and key == "params"):
                return None
            params = _fields(value, arrays, scalars=True)
            if params is None:
                return None
            fields[key] = params
        else:
            fields[key] = value
    return fields
