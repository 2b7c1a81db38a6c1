"""``mojo-pool serve`` options: defaults, sources, precedence, refusals, the CLI.

1. Defaults: socket /tmp/mojo-compute.sock mode 0o660, TCP 127.0.0.1:6101,
   metrics 127.0.0.1:9090, workers 0 meaning one per CPU this process may
   run on (``worker_count()``).
2. Each option has one flag (``--metrics-port``), one environment variable
   (``MOJO_POOL_METRICS_PORT``) and one TOML key (``metrics_port``).
3. Precedence: defaults < TOML file (``--config`` or ``MOJO_POOL_CONFIG``,
   keys at the top level or under ``[serve]``) < environment < flags.
4. Values are converted from text (flags, environment) and from TOML types:
   the socket mode is octal, a TOML integer is taken for a float option.
5. Every bad value is refused with a ConfigError naming where it came from:
   the flag, the environment variable, or the TOML file and key (out of
   range, unparsable, unknown TOML key, wrong TOML type, missing or
   malformed file).
6. The real CLI: a bad flag exits 2 naming it on stderr; ``--help`` lists
   the options.
7. Regressions (bugs these tests found, now fixed): a non-table ``serve`` in the TOML file
   raises TypeError, ``socket_mode = true`` is taken as mode 1, and NaN is
   accepted for the float options.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mojo_pool import config
from mojo_pool.config import Config, ConfigError

NO_ENV: dict[str, str] = {}


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mojo-pool.toml"
    path.write_text(text)
    return path


def refused(argv: list[str], environ: dict[str, str], *names: str) -> str:
    with pytest.raises(ConfigError) as info:
        config.parse(argv, environ)
    message = str(info.value)
    for name in names:
        assert name in message, message
    return message


# ---------------------------------------------------------------------------
# 1. Defaults
# ---------------------------------------------------------------------------

def test_1_defaults() -> None:
    settings = config.parse([], NO_ENV)
    assert settings == Config()
    assert settings.socket == "/tmp/mojo-compute.sock"
    assert settings.socket_mode == 0o660
    assert (settings.host, settings.port) == ("127.0.0.1", 6101)
    assert (settings.metrics_host, settings.metrics_port) == ("127.0.0.1", 9090)
    assert settings.workers == 0
    assert settings.request_timeout == 30.0 and isinstance(settings.request_timeout, float)


def test_1_workers_zero_means_one_per_usable_cpu() -> None:
    assert config.parse([], NO_ENV).worker_count() == len(os.sched_getaffinity(0))
    assert config.parse(["--workers", "3"], NO_ENV).worker_count() == 3
    assert config.parse([], {"MOJO_POOL_WORKERS": "1"}).worker_count() == 1


def test_1_parse_without_environ_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOJO_POOL_METRICS_PORT", "9191")
    assert config.parse([]).metrics_port == 9191


# ---------------------------------------------------------------------------
# 2. Names
# ---------------------------------------------------------------------------

def test_2_one_flag_env_var_and_toml_key_per_option(tmp_path: Path) -> None:
    assert config.flag("metrics_port") == "--metrics-port"
    assert config.env_name("metrics_port") == "MOJO_POOL_METRICS_PORT"
    names = [opt.name for opt in dataclasses.fields(Config)]
    assert [opt.name for opt in config.OPTIONS] == names
    for name in ("socket", "socket_mode", "host", "port", "metrics_host", "metrics_port", "workers",
                 "request_timeout"):
        assert name in names
    # Every option can be set each way (the value each time its default, sent as text or TOML).
    for opt in config.OPTIONS:
        text = oct(opt.default)[2:] if name_is_octal(opt) else str(opt.default)
        assert config.parse([config.flag(opt.name), text], NO_ENV) == Config()
        assert config.parse([], {config.env_name(opt.name): text}) == Config()
        toml = write_toml(tmp_path, f"{opt.name} = {toml_literal(opt.default)}\n")
        assert config.parse(["--config", str(toml)], NO_ENV) == Config()


def name_is_octal(opt: dataclasses.Field) -> bool:
    return opt.name == "socket_mode"


def toml_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"' if isinstance(value, str) else repr(value)


# ---------------------------------------------------------------------------
# 3. Precedence
# ---------------------------------------------------------------------------

def test_3_toml_then_env_then_flags(tmp_path: Path) -> None:
    toml = write_toml(tmp_path, 'port = 7001\nworkers = 2\nhost = "0.0.0.0"\nmetrics_port = 9001\n')
    argv = ["--config", str(toml)]

    from_toml = config.parse(argv, NO_ENV)
    assert (from_toml.port, from_toml.workers, from_toml.host, from_toml.metrics_port) == (7001, 2, "0.0.0.0", 9001)
    assert from_toml.socket == "/tmp/mojo-compute.sock"  # not in the file: the default

    environ = {"MOJO_POOL_PORT": "7002", "MOJO_POOL_WORKERS": "3"}
    from_env = config.parse(argv, environ)
    assert (from_env.port, from_env.workers, from_env.host) == (7002, 3, "0.0.0.0")

    from_flags = config.parse([*argv, "--port", "7003"], environ)
    assert (from_flags.port, from_flags.workers, from_flags.host, from_flags.metrics_port) == (7003, 3, "0.0.0.0",
                                                                                               9001)
    # A flag wins over the file with no environment variable in between.
    assert config.parse([*argv, "--workers", "5"], NO_ENV).workers == 5


def test_3_config_file_from_the_environment(tmp_path: Path) -> None:
    toml = write_toml(tmp_path, "port = 7101\n")
    assert config.parse([], {"MOJO_POOL_CONFIG": str(toml)}).port == 7101
    assert config.parse([], {"MOJO_POOL_CONFIG": str(toml), "MOJO_POOL_PORT": "7102"}).port == 7102
    # --config wins over MOJO_POOL_CONFIG.
    other = tmp_path / "other.toml"
    other.write_text("port = 7103\n")
    assert config.parse(["--config", str(other)], {"MOJO_POOL_CONFIG": str(toml)}).port == 7103


def test_3_serve_table(tmp_path: Path) -> None:
    toml = write_toml(tmp_path, 'metrics_host = "0.0.0.0"\n\n[serve]\nport = 7201\nsocket = ""\n'
                                'request_timeout = 2.5\n')
    settings = config.parse(["--config", str(toml)], NO_ENV)
    assert (settings.metrics_host, settings.port, settings.socket, settings.request_timeout) == (
        "0.0.0.0", 7201, "", 2.5)
    assert config.parse(["--config", str(toml)], {"MOJO_POOL_PORT": "7202"}).port == 7202
    assert config.parse(["--config", str(toml), "--socket", "/tmp/x.sock"], NO_ENV).socket == "/tmp/x.sock"


def test_3_empty_values_disable() -> None:
    settings = config.parse(["--socket", "", "--host", ""], NO_ENV)
    assert (settings.socket, settings.host) == ("", "")
    assert config.parse([], {"MOJO_POOL_HOST": ""}).host == ""


# ---------------------------------------------------------------------------
# 4. Conversions
# ---------------------------------------------------------------------------

def test_4_conversions(tmp_path: Path) -> None:
    assert config.parse(["--socket-mode", "600"], NO_ENV).socket_mode == 0o600
    assert config.parse(["--socket-mode", "0o640"], NO_ENV).socket_mode == 0o640
    assert config.parse([], {"MOJO_POOL_SOCKET_MODE": "0777"}).socket_mode == 0o777
    assert config.parse(["--config", str(write_toml(tmp_path, "socket_mode = 0o600\n"))], NO_ENV).socket_mode == 0o600
    assert config.parse(["--config", str(write_toml(tmp_path, 'socket_mode = "644"\n'))], NO_ENV).socket_mode == 0o644

    timeout = config.parse(["--config", str(write_toml(tmp_path, "request_timeout = 5\n"))], NO_ENV).request_timeout
    assert timeout == 5.0 and isinstance(timeout, float)
    assert config.parse(["--request-timeout", "0.25"], NO_ENV).request_timeout == 0.25
    assert config.parse(["--drain-timeout", "0"], NO_ENV).drain_timeout == 0.0
    assert config.parse([], {"MOJO_POOL_PORT": "0"}).port == 0  # any free port
    assert config.parse(["--metrics-basic-auth", "user:pa:ss"], NO_ENV).metrics_basic_auth == "user:pa:ss"
    assert config.parse(["--log-level", "DEBUG"], NO_ENV).log_level == "DEBUG"


# ---------------------------------------------------------------------------
# 5. Refusals
# ---------------------------------------------------------------------------

BAD_VALUES = [
    # (option, text, what the message says)
    ("port", "70000", "must be in [0, 65535]"),
    ("port", "-1", "must be in [0, 65535]"),
    ("port", "http", "invalid value"),
    ("port", "6101.5", "invalid value"),
    ("metrics_port", "65536", "must be in [0, 65535]"),
    ("workers", "-1", "must be in [0, 1024]"),
    ("workers", "1025", "must be in [0, 1024]"),
    ("workers", "two", "invalid value"),
    ("socket_mode", "999", "invalid value"),
    ("socket_mode", "1000", "must be in [0, 511]"),
    ("socket_mode", "rw", "invalid value"),
    ("request_timeout", "0", "must be at least 0.001"),
    ("request_timeout", "-5", "must be at least 0.001"),
    ("request_timeout", "soon", "invalid value"),
    ("drain_timeout", "-1", "must be at least 0"),
    ("max_frame_bytes", "100", "must be in"),
    ("worker_inflight", "0", "must be in [1, 1024]"),
    ("start_failures", "0", "must be in [1, 1000]"),
    ("log_level", "loud", "must be debug, info, warning or error"),
    ("metrics_basic_auth", "nocolon", "USER:PASSWORD"),
    ("metrics_basic_auth", ":password", "USER:PASSWORD"),
]


@pytest.mark.parametrize("name, text, problem", BAD_VALUES, ids=[f"{n}={t}" for n, t, _ in BAD_VALUES])
def test_5_bad_values_name_their_source(name: str, text: str, problem: str, tmp_path: Path) -> None:
    flag, env = config.flag(name), config.env_name(name)
    refused([flag, text], NO_ENV, flag, problem)
    refused([], {env: text}, env, problem)
    # In TOML the text is a string, or the number itself when it is one.
    try:
        literal = str(int(text)) if name != "socket_mode" else f'"{text}"'
    except ValueError:
        literal = f'"{text}"'
    toml = write_toml(tmp_path, f"{name} = {literal}\n")
    message = refused(["--config", str(toml)], NO_ENV, str(toml), name, problem)
    assert flag not in message and env not in message
    serve = write_toml(tmp_path, f"[serve]\n{name} = {literal}\n")
    refused(["--config", str(serve)], NO_ENV, str(serve), name, problem)


def test_5_a_bad_value_is_refused_even_when_a_later_source_overrides_it(tmp_path: Path) -> None:
    refused(["--port", "7000"], {"MOJO_POOL_PORT": "70000"}, "MOJO_POOL_PORT")
    toml = write_toml(tmp_path, "port = 70000\n")
    refused(["--config", str(toml), "--port", "7000"], NO_ENV, "port", str(toml))


@pytest.mark.parametrize("text, names", [
    ("bogus = 1\n", ["unknown option 'bogus'"]),
    ("[serve]\nbogus = 1\n", ["unknown option 'bogus'"]),
    ("metrics-port = 9000\n", ["unknown option 'metrics-port'"]),
    ("MOJO_POOL_PORT = 9000\n", ["unknown option 'MOJO_POOL_PORT'"]),
    ("[server]\nport = 1\n", ["unknown option 'server'"]),
    ("[serve.extra]\nport = 1\n", ["unknown option 'extra'"]),
])
def test_5_unknown_toml_key(text: str, names: list[str], tmp_path: Path) -> None:
    toml = write_toml(tmp_path, text)
    refused(["--config", str(toml)], NO_ENV, str(toml), *names)


@pytest.mark.parametrize("text, key", [
    ("port = 1.5\n", "port"),
    ("port = true\n", "port"),
    ("port = [6101]\n", "port"),
    ('port = "6101x"\n', "port"),
    ("workers = 2.0\n", "workers"),
    ("host = 5\n", "host"),
    ("socket = ['/tmp/a.sock']\n", "socket"),
    ("socket_mode = 1.5\n", "socket_mode"),
    ("request_timeout = true\n", "request_timeout"),
    ('request_timeout = "soon"\n', "request_timeout"),
    ("log_level = 10\n", "log_level"),
    ("[serve]\nmetrics_port = { value = 1 }\n", "metrics_port"),
    ("metrics_host = 1979-05-27\n", "metrics_host"),
])
def test_5_wrong_toml_type(text: str, key: str, tmp_path: Path) -> None:
    toml = write_toml(tmp_path, text)
    refused(["--config", str(toml)], NO_ENV, f"{toml}: {key}: invalid value")


def test_5_missing_or_malformed_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    refused(["--config", str(missing)], NO_ENV, str(missing))
    refused([], {"MOJO_POOL_CONFIG": str(missing)}, str(missing))
    malformed = write_toml(tmp_path, "port = [\n")
    refused(["--config", str(malformed)], NO_ENV, str(malformed))
    refused(["--config", str(tmp_path)], NO_ENV, str(tmp_path))  # a directory


def test_5_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


# ---------------------------------------------------------------------------
# 6. The CLI
# ---------------------------------------------------------------------------

def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(config.ENV_PREFIX)}
    return subprocess.run([sys.executable, "-m", "mojo_pool", *args], capture_output=True, text=True, timeout=60,
                          env={**clean, **(env or {})}, cwd=cwd)


def test_6_cli_refuses_a_bad_flag(tmp_path: Path) -> None:
    result = run_cli("serve", "--port", "70000", cwd=tmp_path)
    assert result.returncode == 2, result
    assert "--port" in result.stderr and "65535" in result.stderr
    assert result.stdout == ""


def test_6_cli_refuses_a_bad_env_var_and_toml_value(tmp_path: Path) -> None:
    result = run_cli("serve", env={"MOJO_POOL_WORKERS": "-1"}, cwd=tmp_path)
    assert result.returncode == 2, result
    assert "MOJO_POOL_WORKERS" in result.stderr
    toml = write_toml(tmp_path, "[serve]\nsocket_mode = \"999\"\n")
    result = run_cli("serve", "--config", str(toml), cwd=tmp_path)
    assert result.returncode == 2, result
    assert "socket_mode" in result.stderr and str(toml) in result.stderr


def test_6_cli_help(tmp_path: Path) -> None:
    result = run_cli("serve", "--help", cwd=tmp_path)
    assert result.returncode == 0, result
    for flag in ("--socket", "--host", "--port", "--metrics-host", "--metrics-port", "--workers", "--config",
                 "--socket-mode", "--request-timeout"):
        assert flag in result.stdout, flag
    assert "MOJO_POOL_PORT" in result.stdout
    assert "0o660" in result.stdout


def test_6_cli_needs_a_command(tmp_path: Path) -> None:
    result = run_cli(cwd=tmp_path)
    assert result.returncode == 2
    assert "serve" in result.stderr or "COMMAND" in result.stderr


# ---------------------------------------------------------------------------
# 7. Regressions: bugs found by these tests, fixed
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["serve = 5\n", 'serve = "yes"\n', "serve = [1]\n"])
def test_7_serve_that_is_not_a_table_is_refused(text: str, tmp_path: Path) -> None:
    toml = write_toml(tmp_path, text)
    refused(["--config", str(toml)], NO_ENV, str(toml), "serve")


def test_7_boolean_socket_mode_is_refused(tmp_path: Path) -> None:
    toml = write_toml(tmp_path, "socket_mode = true\n")
    refused(["--config", str(toml)], NO_ENV, str(toml), "socket_mode")


@pytest.mark.parametrize("source", ["flag", "env", "toml"])
@pytest.mark.parametrize("name", ["request_timeout", "drain_timeout", "speedup_interval"])
def test_7_nan_is_refused(name: str, source: str, tmp_path: Path) -> None:
    if source == "flag":
        refused([config.flag(name), "nan"], NO_ENV, config.flag(name))
    elif source == "env":
        refused([], {config.env_name(name): "nan"}, config.env_name(name))
    else:
        toml = write_toml(tmp_path, f"{name} = nan\n")
        refused(["--config", str(toml)], NO_ENV, name)
