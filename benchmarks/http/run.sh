#!/usr/bin/env bash
# The HTTP load test on this machine: builds doppel, installs wrk when missing, trains the blade
# bundle (or uses --bundle DIR), and writes benchmarks/results/<machine>-http.json.
# Usage: benchmarks/http/run.sh [--bundle DIR] [run.py options]
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v wrk >/dev/null; then
  sudo_cmd=""; if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
source benchmarks/bundle_args.sh
benchmarks/http/run.py --bundle "$bundle" --output "benchmarks/results/${name}-http.json" "${args[@]}"
