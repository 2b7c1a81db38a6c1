#!/usr/bin/env bash
# Set everything up (scripts/setup.sh) and run the kernel benchmark
# (results in benchmarks/results/). Arguments go to benchmarks/kernels.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MOJO_POOL_KERNELS=compiled
exec .venv/bin/python benchmarks/kernels.py "$@"
