#!/usr/bin/env bash
# The live-twin latency benchmark on this machine: builds doppel, trains the blade bundle (or
# uses --bundle DIR), and writes benchmarks/results/<machine>-live.json.
# Usage: benchmarks/live/run.sh [--bundle DIR] [run.py options]
set -euo pipefail
cd "$(dirname "$0")/../.."
source benchmarks/bundle_args.sh
benchmarks/live/run.py --bundle "$bundle" --output "benchmarks/results/${name}-live.json" "${args[@]}"
