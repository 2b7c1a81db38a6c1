#!/usr/bin/env bash
# Set everything up (scripts/setup.sh) and run the service in the foreground.
# Arguments go to `mojo-pool serve`:  bash scripts/serve.sh --workers 2 --port 6101
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The service must run the compiled kernels: a missing build stops it with
# an error instead of serving 100x slower.
export MOJO_POOL_KERNELS=compiled
exec .venv/bin/mojo-pool serve "$@"
