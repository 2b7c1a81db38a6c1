"""``mojo-pool``: the command line. Argument parsing only.

``mojo-pool serve [options]`` runs the service (``python -m mojo_pool serve``
too). Options come from :mod:`mojo_pool.config`, where each is defined once.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from typing import Sequence

from . import __version__, config, metrics_dir


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mojo-pool",
        description="Technical-analysis indicators as a service: the mojo-compute protocol over Unix and TCP "
                    "sockets, computed by CPU-pinned worker processes, watched through Prometheus.")
    parser.add_argument("--version", action="version", version=f"mojo_pool {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve", help="run the service",
        description="Run the service. Every option may also come from a MOJO_POOL_* environment variable or a "
                    "TOML file; flags win over the environment, which wins over the file. Signals: TERM drains, "
                    "INT/QUIT stop at once, HUP replaces the workers, TTIN/TTOU add/remove one.")
    config.add_arguments(serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = config.load(args)
    except config.ConfigError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    # prometheus_client chooses its storage when first imported: the
    # directory must exist, empty, and be in the environment before the
    # arbiter (which imports it) loads. Workers inherit the variable.
    given = settings.metrics_dir or os.environ.get(metrics_dir.ENV) or None
    directory = metrics_dir.prepare(given)
    os.environ["MOJO_POOL_METRICS_ID"] = "supervisor"
    from .arbiter import Arbiter

    try:
        return Arbiter(settings, directory).run()
    finally:
        if given is None:  # a directory of our own (in /dev/shm: memory) goes with us
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
