#!/usr/bin/env bash
# CPU benchmarks of the host backend: writes benchmarks/results/cpu-<host>.json (FE) and
# cpu-<host>-surrogate.json (the blade surrogate, trained first, against FE in the same run).
# Usage: benchmarks/run_cpu.sh [extra `doppel bench fem` options]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build
export DOPPEL_COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
mkdir -p benchmarks/results
build/bin/doppel bench fem --output "benchmarks/results/cpu-$(hostname -s).json" "$@"
bundle="$(mktemp -d)/blade-bundle"
build/bin/doppel train examples/blade/twin.json --out "$bundle" 2>&1 | grep -v "epoch [0-9]*[1-9]00:"
build/bin/doppel bench surrogate --bundle "$bundle" --output "benchmarks/results/cpu-$(hostname -s)-surrogate.json"
rm -rf "$bundle"
