"""The mojo-compute wire protocol: frames, requests, replies.

Client <-> supervisor, both ways::

    +----------------+--------------------------------------------+
    | length: u32 BE | body: `length` bytes                       |
    +----------------+--------------------------------------------+

    body, JSON mode   : a UTF-8 JSON object
    body, binary mode :
    +------+----------------+-----------------------+-------------------------+
    | 0x00 | hlen: u32 BE   | header: JSON, hlen B  | float64 LE values       |
    +------+----------------+-----------------------+-------------------------+
      in the header an array field holds its length (an integer); the arrays'
      values follow the header back to back, in the order the fields appear.

Supervisor <-> worker link (one socketpair per worker)::

    to worker   : | rid: u64 LE | received: f64 LE | client frame (length + body) |
    to supervisor: | rid: u64 LE | reply frame (length + body)                   |
    rid 0 from a worker is a control message (a JSON body), e.g. "ready".

The supervisor forwards the client's bytes untouched; only the worker parses
them. This module is the wire format (frames, binary bodies, replies); what a
request may hold, and computing it, is :mod:`mojo_pool.requests`. ``received`` is the supervisor's ``time.monotonic()`` at the frame's
arrival (the clock is system-wide), so the worker can record the whole
request duration and the time it queued.

Requests (JSON mode)::

    {"action": "ping"}                                  -> {"status": "ok", "message": "pong"}
    {"action": "compute_sma", "symbol": "TCS", "prices": [...], "period": 20}
        -> {"status": "ok", "symbol": "TCS", "indicator": "sma", "period": 20, "values": [null, ..., 101.2]}
    {"action": "compute_macd", "prices": [...], "fast_period": 12, "slow_period": 26, "signal_period": 9}
        -> {..., "macd_line": [...], "signal_line": [...], "histogram": [...]}
    {"action": "compute_bollinger", "prices": [...], "period": 20, "std_dev": 2.0}
        -> {..., "upper_band": [...], "middle_band": [...], "lower_band": [...]}
    {"action": "compute_<name>", "high": [...], "low": [...], "close": [...], "timeperiod": 14}
        -> {..., "indicator": "<name>", "params": {...}, "values": [...]}   (one output)
        -> {..., "<output>": [...], ...}                                     (several, TA-Lib's names)
    {"action": "batch", "indicator": "<name>", "params": {...},
     "series": [{"symbol": "A", "prices": [...]}, ...]}
        -> {"status": "ok", "indicator": ..., "params": ..., "results": [{"symbol": "A", "values": [...]}, ...]}

Any request may carry an ``id`` (string or integer), echoed in its reply.
Values inside the lookback are ``null`` (NaN in binary mode). Errors:
``{"status": "error", "error": "<message>", "error_type": "<Type>"}``.
"""
from __future__ import annotations

import re
import struct
from typing import Any, Callable, Mapping

import numpy as np
import orjson

from . import fast_json
from .requests import (ACTIONS, COMMON_FIELDS, Arrays, Computer, Outcome, ProtocolError,  # noqa: F401
                       batch, default_computer, single, unknown_fields)

LENGTH = struct.Struct(">I")
LINK_REQUEST = struct.Struct("<Qd")  # rid, received; then the client frame
LINK_REPLY = struct.Struct("<Q")  # rid; then the reply frame
CONTROL_RID = 0
MAX_ID_LENGTH = 256
# The largest JSON body parsed by orjson into Python objects, the exact path
# that fast_json steps aside to. Objects cost up to ~33x the body (measured
# through a real worker: 10**7 one-element arrays, 38 MB of JSON, peaked it
# at 1,267 MB), so past this a body must be one fast_json reads: arrays of
# numbers or other scalars, nothing nested in them. 8 MiB bounds that peak
# near 270 MB; plain numbers of any size, and binary mode, are unaffected.
EXACT_JSON_LIMIT = 8 * 1024 * 1024


def frame(body: bytes) -> bytes:
    return LENGTH.pack(len(body)) + body


def error_body(message: str, error_type: str, request_id: object = None) -> bytes:
    reply: dict[str, object] = {"status": "error", "error": message, "error_type": error_type}
    if request_id is not None:
        reply["id"] = request_id
    return orjson.dumps(reply)


def peek(body: bytes) -> tuple[str | None, object]:
    """The action and id of a request, or (None, None) if it cannot be read.

    For the supervisor's own error replies (Busy, TimeoutError): it never
    parses requests on the normal path.
    """
    try:
        header = split_binary(body)[0] if body[:1] == b"\x00" else orjson.loads(body)
    except (ProtocolError, ValueError):
        return None, None
    if not isinstance(header, dict):
        return None, None
    request_id = header.get("id")
    valid_id = request_id if _valid_id(request_id) else None
    action = header.get("action")
    return (action if isinstance(action, str) else None), valid_id


SMALL_BODY = 4096
_ID_VALUE = re.compile(rb'[ \t\r\n]*:[ \t\r\n]*(-?\d{1,19}(?![\d.eE])|"[^"\\]{0,256}")')
_ACTION_VALUE = re.compile(rb'[ \t\r\n]*:[ \t\r\n]*"([^"\\]{1,64})"')


def peek_cheap(body: bytes | memoryview) -> tuple[str | None, object]:
    """:func:`peek` without parsing the price arrays, for refusals under load.

    A supervisor refusing requests with Busy must not spend what it refuses
    to give: parsing a 1,000-point body costs ~17 us, and measured at 2x
    offered load on 2 cores, that halved what the pool served. Price arrays
    hold no quote character, so walking the quotes (memchr) visits only keys
    and strings: a ``"id"`` or ``"action"`` token followed by ``:`` is that
    key, since in valid JSON a string never ends right before another.
    Values with escapes, and small or binary bodies, take the exact
    :func:`peek`.
    """
    if len(body) <= SMALL_BODY or body[:1] == b"\x00":
        return peek(body)
    data = bytes(body)
    action: str | None = None
    request_id: object = None
    found_action = found_id = False
    position = data.find(b'"')
    while position >= 0 and not (found_action and found_id):
        if data[position - 1] == 0x5C and _escaped(data, position):
            pass  # a quote inside a string, not a token
        elif data.startswith(b'"id"', position) and not found_id:
            match = _ID_VALUE.match(data, position + 4)
            if match is not None:
                token = match.group(1)
                request_id = token[1:-1].decode("utf-8", "replace") if token[:1] == b'"' else int(token)
                found_id = True
            elif data[position + 4:position + 5].strip() in (b"", b":"):
                return peek(body)  # an id with escapes, or some other shape: exact
        elif data.startswith(b'"action"', position) and not found_action:
            match = _ACTION_VALUE.match(data, position + 8)
            if match is None:
                return peek(body)
            action = match.group(1).decode("utf-8", "replace")
            found_action = True
        position = data.find(b'"', position + 1)
    return action, (request_id if _valid_id(request_id) else None)


def _escaped(data: bytes, position: int) -> bool:
    """True if the quote at ``position`` follows an odd run of backslashes."""
    start = position
    while start > 0 and data[start - 1] == 0x5C:
        start -= 1
    return (position - start) % 2 == 1


def _valid_id(value: object) -> bool:
    return (isinstance(value, str) and len(value) <= MAX_ID_LENGTH) or (
        type(value) is int and -(2**63) <= value < 2**63)


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------

def split_binary(body: bytes) -> tuple[dict[str, Any], memoryview]:
    """A binary-mode body as (header, payload)."""
    if len(body) < 5:
        raise ProtocolError("binary frame shorter than its 5-byte prefix", "InvalidRequest")
    (header_length,) = LENGTH.unpack_from(body, 1)
    if 5 + header_length > len(body):
        raise ProtocolError(f"binary header length {header_length} exceeds the frame", "InvalidRequest")
    try:
        header = orjson.loads(body[5:5 + header_length])
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"binary header is not valid JSON: {exc}", "InvalidJSON") from None
    if not isinstance(header, dict):
        raise ProtocolError("binary header must be a JSON object", "InvalidRequest")
    return header, memoryview(body)[5 + header_length:]


# ---------------------------------------------------------------------------
# Handling one request
# ---------------------------------------------------------------------------

Extra = Mapping[str, Callable[[dict[str, Any]], dict[str, object]]]


def handle(body: bytes, compute: Computer = default_computer, extra: Extra | None = None) -> tuple[bytes, Outcome]:
    """One request body in, one reply body out, and what happened.

    ``extra`` adds actions (the workers' test-only debug actions).
    """
    parts, outcome = handle_parts(body, compute, extra)
    return parts[0] if len(parts) == 1 else b"".join(parts), outcome


def handle_parts(body: bytes | bytearray, compute: Computer = default_computer,
                 extra: Extra | None = None) -> tuple[list[bytes | memoryview], Outcome]:
    """:func:`handle`, the reply as buffers to send back to back (see :func:`encode_parts`)."""
    request_id: object = None
    outcome = Outcome(action=None)
    try:
        if body[:1] == b"\x00":
            request, payload = split_binary(body)
            arrays = Arrays(payload)
        else:
            # The common request without a Python float per price; anything
            # unusual comes back None and takes orjson (see fast_json).
            request = fast_json.loads(body)  # type: ignore[assignment]
            if request is None:
                if len(body) > EXACT_JSON_LIMIT:
                    raise ProtocolError(
                        f"a JSON request over {EXACT_JSON_LIMIT >> 20} MiB must be valid JSON whose arrays hold "
                        f"numbers (or other scalars), with nothing nested in them, no duplicate keys and no '[' "
                        f"inside strings; send it in binary mode or split it", "InvalidRequest")
                try:
                    request = orjson.loads(body)
                except orjson.JSONDecodeError as exc:
                    raise ProtocolError(f"invalid JSON: {exc}", "InvalidJSON") from None
            if not isinstance(request, dict):
                raise ProtocolError("a request must be a JSON object", "InvalidRequest")
            arrays = Arrays(None)
        request_id = request.get("id")
        if request_id is not None and not _valid_id(request_id):
            request_id = None
            raise ProtocolError(f"id must be a string of at most {MAX_ID_LENGTH} characters or a 64-bit integer",
                                "InvalidRequest")
        action_name = request.get("action")
        if not isinstance(action_name, str):
            raise ProtocolError("missing action (a string)", "InvalidRequest")
        outcome.action = action_name
        if action_name == "ping":
            unknown_fields(request, COMMON_FIELDS, "ping")
            reply: dict[str, object] = {"status": "ok", "message": "pong"}
        elif action_name == "batch":
            reply = batch(request, arrays, compute, outcome)
        elif extra and action_name in extra:
            reply = extra[action_name](request)
        else:
            action = ACTIONS.get(action_name)
            if action is None:
                raise ProtocolError(f"unknown action {action_name[:64]!r}; try ping, batch, compute_sma, "
                                    f"compute_<indicator> (one of {len(ACTIONS)})", "UnknownAction")
            reply = single(action, request, arrays, compute, outcome)
        arrays.finish()
    except ProtocolError as exc:
        outcome.error_type = exc.error_type
        return [error_body(str(exc), exc.error_type, request_id)], outcome
    if request_id is not None:
        reply["id"] = request_id
    return encode_parts(reply, arrays.binary), outcome


# ---------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------

def encode_parts(reply: dict[str, object], binary: bool) -> list[bytes | memoryview]:
    """A reply body as buffers to send back to back: JSON (NaN becomes null,
    orjson's rule) in one, or a binary header followed by each array's own
    memory (no copy of the values)."""
    if not binary:
        return [orjson.dumps(reply, option=orjson.OPT_SERIALIZE_NUMPY)]
    chunks: list[bytes | memoryview] = []

    def lengths(item: dict[str, object]) -> dict[str, object]:
        out = {}
        for key, value in item.items():
            if isinstance(value, np.ndarray):
                chunks.append(memoryview(np.ascontiguousarray(value, dtype="<f8")).cast("B"))
                out[key] = len(value)
            else:
                out[key] = value
        return out

    header = lengths(reply)
    if "results" in header:
        header["results"] = [lengths(item) for item in header["results"]]  # type: ignore[union-attr]
    else:
        header["outputs"] = [k for k, v in reply.items() if isinstance(v, np.ndarray)]
    return [binary_prefix(orjson.dumps(header)), *chunks]


def binary_prefix(header: bytes) -> bytes:
    """0x00, the header length and the header, padded with spaces (JSON
    allows them) so the values start 8-byte aligned: a reader can then use
    them in place instead of copying."""
    header += b" " * (-(5 + len(header)) % 8)
    return b"\x00" + LENGTH.pack(len(header)) + header


def encode(reply: dict[str, object], binary: bool) -> bytes:
    return b"".join(encode_parts(reply, binary))


def decode(body: bytes) -> dict[str, Any]:
    """A reply (or request) body back into a dict, binary arrays as numpy arrays.

    Used by the client; the inverse of :func:`encode`.
    """
    if body[:1] != b"\x00":
        return orjson.loads(body)
    header, payload = split_binary(body)
    offset = 0

    def fill(item: dict[str, Any], names: list[str]) -> None:
        nonlocal offset
        for name in names:
            count = item[name]
            item[name] = np.frombuffer(payload[offset:offset + 8 * count], dtype="<f8").copy()
            offset += 8 * count

    outputs = header.get("outputs", [])
    if "results" in header:
        for item in header["results"]:
            fill(item, outputs)
    else:
        fill(header, outputs)
    return header
