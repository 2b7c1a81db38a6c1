"""Every option of ``mojo-pool serve``, defined once: name, default, check, help.

An option is a field of :class:`Config`; its metadata holds the help text,
the parser for text values and the check. From that one definition come
the command-line flag (``--metrics-port``), the environment variable
(``MOJO_POOL_METRICS_PORT``) and the TOML key (``metrics_port``, top level
or under ``[serve]``). Later sources win: defaults, then the TOML file
(``--config`` or ``MOJO_POOL_CONFIG``), then the environment, then flags.
A bad value is refused with a message naming where it came from.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

ENV_PREFIX = "MOJO_POOL_"


class ConfigError(ValueError):
    pass


def _octal(text: str) -> int:
    return int(text, 8)


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _arena_size(value: int) -> str | None:
    return None if value == 0 or 2**20 <= value <= 2**40 else "must be 0 (off) or between 1 MiB and 1 TiB"


def _within(low: float, high: float | None = None) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value != value:
            return "must be a number, not NaN"
        if value < low or (high is not None and value > high):
            return f"must be in [{low:g}, {high:g}]" if high is not None else f"must be at least {low:g}"
        return None
    return check


def _basic_auth(value: str) -> str | None:
    return None if not value or (":" in value and value.index(":") > 0) else "must be USER:PASSWORD"


def option(default: Any, help: str, parse: Callable[[str], Any] | None = None,
           check: Callable[[Any], str | None] | None = None, metavar: str | None = None) -> Any:
    parse = parse or type(default)
    return field(default=default, metadata={"help": help, "parse": parse, "check": check, "metavar": metavar})


@dataclass(frozen=True)
class Config:
    socket: str = option("/tmp/mojo-compute.sock", "Unix socket path; empty to disable", metavar="PATH")
    socket_mode: int = option(0o660, "permissions of the Unix socket, octal", parse=_octal,
                              check=_within(0, 0o777), metavar="MODE")
    host: str = option("127.0.0.1", "TCP listen address; empty to disable TCP", metavar="HOST")
    port: int = option(6101, "TCP port (0: any free port)", check=_within(0, 65535), metavar="PORT")
    metrics_host: str = option("127.0.0.1", "address of the /metrics, /health and /ready endpoint",
                               metavar="HOST")
    metrics_port: int = option(9090, "port of the metrics endpoint (0: any free port)", check=_within(0, 65535),
                               metavar="PORT")
    workers: int = option(0, "worker processes (0: one per CPU this process may run on)",
                          check=_within(0, 1024), metavar="N")
    max_frame_bytes: int = option(64 * 1024 * 1024, "largest request frame accepted; larger closes the "
                                  "connection after an error reply", check=_within(1024, 2**32 - 1), metavar="BYTES")
    max_connections: int = option(10000, "client connections open at once; more are refused with an error "
                                  "frame and closed", check=_within(1, 10**6), metavar="N")
    idle_timeout: float = option(300.0, "seconds a connection may stay without a complete request (nothing "
                                 "awaiting a reply) before it is closed; ends half-sent frames too",
                                 check=_within(0.01), metavar="SECONDS")
    worker_inflight: int = option(64, "requests sent to one worker at a time (more wait in the queue)",
                                  check=_within(1, 1024), metavar="N")
    request_arena_bytes: int = option(64 * 1024 * 1024, "shared memory for request frames of 256 KiB and more, "
                                      "received there and read in place by the workers (0: off; else at "
                                      "least 1 MiB)", check=_arena_size, metavar="BYTES")
    reply_arena_bytes: int = option(64 * 1024 * 1024, "shared memory per worker for replies of 256 KiB and "
                                    "more, sent to the client from there instead of through the worker's "
                                    "socket (0: off; else at least 1 MiB)", check=_arena_size, metavar="BYTES")
    queue_limit: int = option(1024, "requests waiting for a worker before new ones get Busy",
                              check=_within(0, 10**7), metavar="N")
    max_queue_wait: float = option(0.0, "seconds a request may wait for a worker; older queued ones get Busy, "
                                   "which bounds admitted latency under overload (0: wait up to "
                                   "--request-timeout)", check=_within(0.0), metavar="SECONDS")
    request_timeout: float = option(30.0, "seconds before an unanswered request gets TimeoutError (its worker "
                                    "is replaced)", check=_within(0.001), metavar="SECONDS")
    drain_timeout: float = option(30.0, "seconds SIGTERM waits for accepted requests before stopping anyway",
                                  check=_within(0.0), metavar="SECONDS")
    drain_grace: float = option(0.0, "seconds after SIGTERM during which /ready says 503 but the service still "
                                "accepts and serves, so load balancers stop sending first", check=_within(0.0),
                                metavar="SECONDS")
    metrics_dir: str = option("", "prometheus_client's multiprocess directory, wiped at start (default: "
                              "$PROMETHEUS_MULTIPROC_DIR, else a new directory in /dev/shm or the temp dir)",
                              metavar="DIR")
    speedup_interval: float = option(300.0, "seconds between a worker's speed-up measurements (0: at start only)",
                                     check=_within(0.0), metavar="SECONDS")
    supervisor_priority: int = option(0, "nice levels the supervisor runs above the workers while no request "
                                      "gets Busy (needs CAP_SYS_NICE, as root has; 0: off): more served over "
                                      "a Unix socket, none over TCP, a longer latency tail; dropped under "
                                      "overload, where refusing at that priority costs served requests",
                                      check=_within(0, 39), metavar="LEVELS")
    metrics_certfile: str = option("", "TLS certificate for the metrics endpoint (PEM); off if empty",
                                   metavar="FILE")
    metrics_keyfile: str = option("", "TLS private key for the metrics endpoint (PEM)", metavar="FILE")
    metrics_basic_auth: str = option("", "USER:PASSWORD required on /metrics; off if empty (prefer the "
                                     "environment variable to the flag)", check=_basic_auth, metavar="USER:PASSWORD")
    request_metrics: bool = option(True, "record per-request metrics in the workers (off only to measure "
                                   "what they cost)", parse=_boolean, metavar="on|off")
    start_failures: int = option(5, "a worker slot failing to start this many times in a row stops the service",
                                 check=_within(1, 1000), metavar="N")
    log_level: str = option("info", "logging level", check=lambda v: None if v.upper() in (
        "DEBUG", "INFO", "WARNING", "ERROR") else "must be debug, info, warning or error", metavar="LEVEL")

    def worker_count(self) -> int:
        return self.workers or len(os.sched_getaffinity(0))


OPTIONS: tuple[dataclasses.Field, ...] = dataclasses.fields(Config)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per option; unset flags stay None so other sources show through."""
    parser.add_argument("--config", metavar="FILE", help=f"TOML file of options (or ${ENV_PREFIX}CONFIG)")
    for opt in OPTIONS:
        default = opt.default
        shown = oct(default) if opt.metadata["parse"] is _octal else repr(default)
        parser.add_argument(flag(opt.name), dest=opt.name, default=None, metavar=opt.metadata["metavar"],
                            help=f"{opt.metadata['help']} [default {shown}; env {env_name(opt.name)}]")


def _convert(opt: dataclasses.Field, value: Any, source: str) -> Any:
    parse = opt.metadata["parse"]
    try:
        if isinstance(value, str) and parse is not str:
            value = parse(value)
        elif parse is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif parse is _octal and type(value) is int:
            pass
        elif not isinstance(value, type(opt.default)) or isinstance(value, bool) != isinstance(opt.default, bool):
            raise ValueError(f"expected {type(opt.default).__name__}, got {type(value).__name__}")
    except ValueError as exc:
        raise ConfigError(f"{source}: invalid value {value!r} ({exc})") from None
    check = opt.metadata["check"]
    problem = check(value) if check else None
    if problem:
        raise ConfigError(f"{source}: {problem}, got {value!r}")
    return value


def load(args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """The configuration from defaults, TOML, environment and parsed flags."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    by_name = {opt.name: opt for opt in OPTIONS}
    path = getattr(args, "config", None) or environ.get(ENV_PREFIX + "CONFIG")
    if path:
        try:
            with open(path, "rb") as f:
                document = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
        serve = document.get("serve", {})
        if not isinstance(serve, dict):
            raise ConfigError(f"config file {path}: [serve] must be a table")
        table = {**{k: v for k, v in document.items() if k != "serve"}, **serve}
        for key, value in table.items():
            if key not in by_name:
                raise ConfigError(f"config file {path}: unknown option {key!r}")
            values[key] = _convert(by_name[key], value, f"{path}: {key}")
    for opt in OPTIONS:
        if env_name(opt.name) in environ:
            values[opt.name] = _convert(opt, environ[env_name(opt.name)], env_name(opt.name))
    for opt in OPTIONS:
        given = getattr(args, opt.name, None) if args is not None else None
        if given is not None:
            values[opt.name] = _convert(opt, given, flag(opt.name))
    return Config(**values)


def parse(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Config:
    """Flags as ``mojo-pool serve`` takes them (for tests and embedding)."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return load(parser.parse_args(list(argv)), environ)
