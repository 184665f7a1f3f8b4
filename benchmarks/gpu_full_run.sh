#!/usr/bin/env bash
# The second call on a lent GPU node, after benchmarks/gpu_first_run.sh: the large benchmarks.
#
#   device tool: run(command="benchmarks/gpu_full_run.sh", carry=[".deps", ".gpu-run"], timeout_s=600)
#   (.gpu-run/doppel-bin.tar.gz: the first call's doppel-bin.tar.gz, copied from where its files
#   came back; without it this call builds bin/doppel first, ~3 minutes of the budget)
#
# Phases, against one deadline of BUDGET_S seconds (default 540):
#   machine, deps   as in the first call
#   binary          bin/doppel from .gpu-run/doppel-bin.tar.gz when it runs here, else built
#   bench-large     doppel bench fem --backend "${BACKEND:-cuda}" on the ~10^6-node box (99^3 cells), batches
#                   1..4096 (blocks sized to the device's memory budget), systems exported
#   peer            CuPy's CG one scenario at a time on the same systems (benchmarks/peers)
#   train           the blade's surrogate, FE on CUDA, network on the GPU
#   bench-surrogate doppel bench surrogate, batches 1..10^6, against FE of the same scenarios
# Files in $OUT (7): gpu-full-run.json, doppel-fem-large.json, cupy.json, doppel-surrogate.json,
# blade-validation.json, bench.log.gz, build.log.gz. The last line printed is the verdict.
SCRIPT_NAME=gpu_full_run
DEFAULT_BUDGET_S=540
. "$(dirname "$0")/gpu/common.sh"

binary() {
  load_deps_env
  if [ -f .gpu-run/doppel-bin.tar.gz ]; then
    mkdir -p "$build_dir" && tar -C "$build_dir" -xzf .gpu-run/doppel-bin.tar.gz
    if "$build_dir/bin/doppel" --help >/dev/null 2>&1; then echo "bin/doppel from the first call"; return 0; fi
    echo "the carried bin/doppel does not run here: building it"
  fi
  { configure "$build_dir" && build "$build_dir" doppel; } >>"$work/build.log" 2>&1 || { tail -30 "$work/build.log"; return 1; }
  echo "bin/doppel built"
}
bench_large() {
  load_deps_env
  "$build_dir/bin/doppel" bench fem --backend "${BACKEND:-cuda}" --twin "" --box-cells "${BOX_CELLS:-99}" \
    --batches "${BATCHES:-1,64,1024,4096}" --max-seconds "${MAX_SECONDS:-40}" --export "$work/systems" \
    --output "$out/doppel-fem-large.json" >"$work/step.log" 2>&1
  local rc=$?
  cat "$work/step.log" >>"$work/bench.log"
  tail -25 "$work/step.log"
  return $rc
}
peer() {
  python3 benchmarks/peers/cupy_cg.py "$work/systems" --rtol 1e-8 --count "${PEER_COUNT:-8}" \
    --max-seconds 60 --output "$out/cupy.json" >"$work/step.log" 2>&1
  local rc=$?
  cat "$work/step.log" >>"$work/bench.log"
  tail -5 "$work/step.log"
  return $rc
}
train() {
  load_deps_env
  "$build_dir/bin/doppel" train examples/blade/twin.json --out "$work/blade-bundle" --backend "${BACKEND:-cuda}" --device "${DEVICE:-cuda}" \
    >"$work/step.log" 2>&1
  local rc=$?
  cat "$work/step.log" >>"$work/bench.log"
  cp "$work/blade-bundle/validation.json" "$out/blade-validation.json" 2>/dev/null
  grep -vE "epoch [0-9]*[1-9]00:" "$work/step.log" | tail -8
  return $rc
}
bench_surrogate() {
  load_deps_env
  "$build_dir/bin/doppel" bench surrogate --bundle "$work/blade-bundle" --backend "${BACKEND:-cuda}" --device "${DEVICE:-cuda}" \
    --batches "${SURROGATE_BATCHES:-1,10,100,1000,10000,100000,1000000}" --fields-max 100000 \
    --output "$out/doppel-surrogate.json" >"$work/step.log" 2>&1
  local rc=$?
  cat "$work/step.log" >>"$work/bench.log"
  tail -12 "$work/step.log"
  return $rc
}
export -f binary bench_large peer train bench_surrogate

phase machine 20 machine
phase deps 90 deps
if phase binary 240 binary; then
  phase bench-large 200 bench_large
  [ -d "$work/systems" ] && phase peer 90 peer
  rm -rf "$work/systems"
  phase train 120 train && phase bench-surrogate 150 bench_surrogate
fi
keep_logs bench.log build.log
finish
