#!/usr/bin/env bash
# CPU benchmark of the host backend: writes benchmarks/results/cpu-<host>.json.
# Usage: benchmarks/run_cpu.sh [extra `doppel bench fem` options]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build
export DOPPEL_COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
mkdir -p benchmarks/results
build/bin/doppel bench fem --output "benchmarks/results/cpu-$(hostname -s).json" "$@"
