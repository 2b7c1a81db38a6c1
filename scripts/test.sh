#!/usr/bin/env bash
# Set everything up (scripts/setup.sh) and run the whole test suite.
# Extra arguments go to pytest:  bash scripts/test.sh -k rsi -x
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Tests must exercise the compiled kernels: a missing build is an error here,
# not a silent 100x slower fallback.
export MOJO_POOL_KERNELS=compiled
exec .venv/bin/python -m pytest "$@"
