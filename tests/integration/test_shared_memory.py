"""Large frames through the shared-memory rings, on a real service.

1. Large binary requests, pipelined past what the rings hold: every reply
   equals the local computation, each frame counted once by its path.
1b. While requests hold the request ring, the next large ones go through
   the sockets, and are answered all the same.
2. One at a time, many more large requests than the rings hold all go
   through shared memory: regions are released once replies are sent.
3. A large JSON request is read in place too.
4. A worker killed while computing a request held in the request ring: the
   request is re-sent from the ring to the other worker and answered.
5. A client that sends half a large frame and disconnects gives its region
   back: the next large requests still go through shared memory.
6. With the rings off, large requests still work, through the sockets.
7. However a large frame's bytes are cut into reads (the whole frame at
   once, after a small frame in the same write, its length split across
   two reads, a pause right after its length), it is read into the request
   ring and answered exactly.
"""
from __future__ import annotations

import socket
import time

import numpy as np
import orjson

from mojo_pool import indicators
from mojo_pool.arena import MIN_SHARED
from mojo_pool.client import Client, encode_request
from service import Service, read_reply, value

POINTS = 300_000  # a 2.4 MB frame each way
RING = 8 * 1024 * 1024  # three such frames


def series(seed: int, n: int = POINTS) -> np.ndarray:
    return 100.0 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0.0, 0.01, n)))


def large(samples: dict, direction: str, path: str) -> float:
    return value(samples, "mojo_compute_large_frames_total", direction=direction, path=path)


def ring_args(size: int = RING) -> tuple[str, ...]:
    return ("--request-arena-bytes", str(size), "--reply-arena-bytes", str(size))


def test_1_pipelined_large_requests_are_exact_on_both_paths():
    with Service(*ring_args(), workers=2) as service:
        inputs = [series(seed) for seed in range(12)]
        with Client(service.socket, binary=True) as client:
            replies = client.pipeline([{"action": "compute_sma", "prices": x, "period": 20, "id": k}
                                       for k, x in enumerate(inputs)])
            bands = client.compute("bbands", inputs[0], timeperiod=10)
        for k, (x, reply) in enumerate(zip(inputs, replies)):
            assert reply["id"] == k
            np.testing.assert_array_equal(reply["values"], indicators.sma(x, timeperiod=20))
        for got, want in zip(bands, indicators.bbands(inputs[0], timeperiod=10)):
            np.testing.assert_array_equal(got, want)
        samples = service.samples()
        assert large(samples, "request", "shared") >= 3 and large(samples, "reply", "shared") >= 3
        assert large(samples, "request", "shared") + large(samples, "request", "socket") == 13
        assert large(samples, "reply", "shared") + large(samples, "reply", "socket") == 13


def test_1b_a_full_ring_sends_the_rest_through_the_sockets():
    with Service(*ring_args(), workers=2) as service:
        padding = "x" * (RING // 3 - 1000)  # three fit in the ring
        with Client(service.socket) as client:
            replies = client.pipeline([{"action": "debug_sleep", "seconds": 0.3, "pad": padding, "id": k}
                                       for k in range(6)])
        assert [(r["status"], r["id"]) for r in replies] == [("ok", k) for k in range(6)]
        samples = service.samples()
        # Both workers sleep on their first request while the next ones hold regions: the ring fills.
        assert large(samples, "request", "shared") >= 2 and large(samples, "request", "socket") >= 1
        assert large(samples, "request", "shared") + large(samples, "request", "socket") == 6


def test_2_regions_are_released_after_each_reply():
    with Service(*ring_args(), workers=2) as service:
        with Client(service.socket, binary=True) as client:
            for seed in range(15):
                x = series(seed)
                np.testing.assert_array_equal(client.compute("ema", x, timeperiod=30),
                                              indicators.ema(x, timeperiod=30))
        samples = service.samples()
        assert large(samples, "request", "shared") == 15 and large(samples, "request", "socket") == 0
        assert large(samples, "reply", "shared") == 15 and large(samples, "reply", "socket") == 0


def test_3_large_json_request_in_place():
    with Service(*ring_args(), workers=1) as service:
        x = series(3, 20_000)
        body = orjson.dumps({"action": "compute_rsi", "prices": x, "period": 14}, option=orjson.OPT_SERIALIZE_NUMPY)
        assert len(body) >= MIN_SHARED
        with Client(service.socket) as client:
            got = client.compute("rsi", x, timeperiod=14)
        np.testing.assert_allclose(got, indicators.rsi(x, timeperiod=14), rtol=0, atol=0, equal_nan=True)
        samples = service.samples()
        assert large(samples, "request", "shared") == 1


def test_4_worker_killed_while_its_request_sits_in_the_ring():
    with Service(*ring_args(), workers=2) as service:
        pids = service.worker_pids()
        padding = "x" * (2 * MIN_SHARED)  # makes the frame large: it goes to the ring
        results = service.kill_during({"action": "debug_sleep", "seconds": 1.0, "pad": padding}, pids[0], 0.4)
        assert [r["status"] for r in results] == ["ok", "ok"]
        assert pids[0] not in [r["pid"] for r in results]
        service.wait_workers(2, exclude={pids[0]})
        samples = service.samples()
        assert large(samples, "request", "shared") == 2
        assert value(samples, "mojo_compute_worker_restarts_total", reason="killed") == 1


def test_5_half_sent_large_frame_gives_its_region_back():
    size = 4 * 1024 * 1024  # one 2.4 MB frame at a time
    with Service(*ring_args(size), workers=1) as service:
        frame = encode_request({"action": "compute_sma", "prices": series(1), "period": 20}, binary=True)
        wire = len(frame).to_bytes(4, "big") + frame
        for _ in range(3):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as half:
                half.connect(service.socket)
                half.sendall(wire[:len(wire) // 2])
                time.sleep(0.2)
        with Client(service.socket, binary=True) as client:
            for seed in range(3):
                x = series(seed)
                np.testing.assert_array_equal(client.compute("sma", x, timeperiod=5), indicators.sma(x, timeperiod=5))
        samples = service.samples()
        assert large(samples, "request", "shared") == 3 and large(samples, "request", "socket") == 0


def test_6_rings_off_large_requests_through_the_sockets():
    with Service(*ring_args(0), workers=2) as service:
        x = series(5)
        with Client(service.socket, binary=True) as client:
            np.testing.assert_array_equal(client.compute("wma", x, timeperiod=7), indicators.wma(x, timeperiod=7))
        samples = service.samples()
        assert large(samples, "request", "socket") == 1 and large(samples, "reply", "socket") == 1
        assert large(samples, "request", "shared") == 0


def test_7_every_cut_of_a_large_frame_reaches_the_ring():
    x = series(7)
    body = encode_request({"action": "compute_sma", "prices": x, "period": 9}, binary=True)
    wire = len(body).to_bytes(4, "big") + body
    small = orjson.dumps({"action": "ping"})
    small_wire = len(small).to_bytes(4, "big") + small
    cuts = {
        "whole": [wire],
        "after a small frame": [small_wire + wire],
        "length split": [wire[:2], wire[2:]],
        "pause after the length": [wire[:4], wire[4:]],
        "pause inside the body": [wire[:1000], wire[1000:]],
    }
    want = indicators.sma(x, timeperiod=9)
    with Service(*ring_args(), workers=1) as service:
        for name, pieces in cuts.items():
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(service.socket)
                for piece in pieces:
                    sock.sendall(piece)
                    time.sleep(0.05)  # each piece its own read
                if pieces[0].startswith(small_wire):
                    assert read_reply(sock) == {"status": "ok", "message": "pong"}, name
                reply = read_reply(sock)
                assert reply["status"] == "ok", (name, reply)
                np.testing.assert_array_equal(reply["values"], want)
        samples = service.samples()
        assert large(samples, "request", "shared") == len(cuts) and large(samples, "request", "socket") == 0
