#!/usr/bin/env bash
# The second call on a lent GPU node, after benchmarks/gpu_first_run.sh: the large benchmarks.
#
#   device tool: run(command="BUDGET_S=... benchmarks/gpu_full_run.sh", carry=[".deps", ".gpu-run"],
#                    timeout_s=BUDGET_S+50)
#   BUDGET_S: the session's budget_left_s (device tool `status`) less ~60 s when the machine is
#   still warm from the first call (called within 30 s: its build-gpu/ is still there), less
#   ~150 s for a cold start. Default 300.
#   .gpu-run/doppel-bin.tar.gz (optional): the first call's doppel-bin.tar.gz, for a cold machine;
#   with neither, this call builds bin/doppel first (minutes of the budget).
#
# Phases, against one deadline of BUDGET_S seconds:
#   machine, deps   as in the first call
#   binary          bin/doppel left by the first call (warm machine), else from
#                   .gpu-run/doppel-bin.tar.gz, else built
#   bench-large     doppel bench fem --backend "${BACKEND:-cuda}" on the ~10^6-node box (99^3 cells), batches
#                   1..4096 (blocks sized to the device's memory budget), systems exported
#   peer            CuPy's CG one scenario at a time on the same systems (benchmarks/peers)
#   train           the blade's surrogate, FE on CUDA, network on the GPU
#   bench-surrogate doppel bench surrogate, batches 1..10^6, against FE of the same scenarios
# Files in $OUT (7): gpu-full-run.json, doppel-fem-large.json, cupy.json, doppel-surrogate.json,
# blade-validation.json, bench.log.gz, build.log.gz. The last line printed is the verdict.
SCRIPT_NAME=gpu_full_run
DEFAULT_BUDGET_S=300
LOGS="bench.log build.log"
. "$(dirname "$0")/gpu/common.sh"

binary() {
  load_deps_env
  if "$build_dir/bin/doppel" --help >/dev/null 2>&1; then echo "bin/doppel left by the first call"; return 0; fi
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
    --batches "${BATCHES:-1,64,1024,4096}" --max-seconds "${MAX_SECONDS:-40}" --export "$work/systems" --no-preconditioners \
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
phase deps 60 deps
if phase binary 240 binary; then
  phase bench-large 120 bench_large
  [ -d "$work/systems" ] && phase peer 60 peer
  rm -rf "$work/systems"
  phase train 90 train && phase bench-surrogate 90 bench_surrogate
fi
finish
