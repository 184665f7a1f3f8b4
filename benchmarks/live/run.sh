#!/usr/bin/env bash
# The live-twin latency benchmark on this machine: builds doppel, trains the blade bundle (or
# uses --bundle DIR), and writes benchmarks/results/<machine>-live.json.
# Usage: benchmarks/live/run.sh [--bundle DIR] [run.py options]
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/build
bundle=""
args=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--bundle" ]; then bundle="$2"; shift 2; else args+=("$1"); shift; fi
done
if [ -z "$bundle" ]; then
  bundle="$(mktemp -d)/blade-bundle"
  build/bin/doppel train examples/blade/twin.json --out "$bundle" 2>&1 | grep -v "epoch [0-9]*[1-9]00:"
fi
mkdir -p benchmarks/results
name="${DOPPEL_MACHINE:-cpu-$(hostname -s)}"
benchmarks/live/run.py --bundle "$bundle" --output "benchmarks/results/${name}-live.json" "${args[@]}"
