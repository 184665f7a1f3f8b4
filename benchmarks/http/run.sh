#!/usr/bin/env bash
# The HTTP load test on this machine: builds doppel, installs wrk when missing, trains the blade
# bundle (or uses --bundle DIR), and writes benchmarks/results/<machine>-http.json.
# Usage: benchmarks/http/run.sh [--bundle DIR] [run.py options]
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/build
if ! command -v wrk >/dev/null; then
  sudo_cmd=""; if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
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
benchmarks/http/run.py --bundle "$bundle" --output "benchmarks/results/${name}-http.json" "${args[@]}"
