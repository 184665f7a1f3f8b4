#!/usr/bin/env bash
# The first call on a lent GPU node: does the GPU path work at all, and how fast is it.
#
#   device tool: run(command="benchmarks/gpu_first_run.sh", carry=[".deps"], timeout_s=470)
#   (.deps: `scripts/bundle-deps fetch` here first, ~19 MB of Debian .debs; the node has no registry)
#
# Phases, against one deadline of BUDGET_S seconds (default 420: with the machine's start the
# call stays under 8 minutes of the 15 lent), each recorded with its time in
# $OUT/gpu-first-run.json, rewritten after every phase:
#   machine    nvidia-smi, nvcc, PyTorch's LibTorch
#   deps       unpack .deps/debs into .deps/prefix (scripts/bundle-deps)
#   configure  CUDA on, sm_90, LibTorch from PyTorch; build.ninja checked for sm_90 only
#   build      bin/doppel and the test binaries of the CUDA tests first (all cores); bin/doppel
#              kept as doppel-bin.tar.gz for a second call on a cold machine
#   build-rest every other target, before all-tests
#   cuda-tests every CUDA test and the training suite (surrogate inference on the GPU, surrogate
#              and FE sharing the device) with DOPPEL_REQUIRE_GPU=1 (a skip for want of a
#              device fails), DOPPEL_CUDA_SYNC=1 and CUDA_LAUNCH_BLOCKING=1 (a fault is reported
#              at the kernel that caused it)
#   bench      doppel bench fem --backend "${BACKEND:-cuda}" on the blade and the ~10^5-node box, batches
#              1..4096, host backend as the baseline in the same run
#   sanitizer  compute-sanitizer memcheck and racecheck CTest entries
#   all-tests  the rest of the suite with DOPPEL_REQUIRE_GPU=1 (auto backend: CUDA)
# Files in $OUT (7, of the 8 that come back): gpu-first-run.json, doppel-fem.json,
# doppel-bin.tar.gz, build.log.gz, ctest-cuda.log.gz, ctest-all.log.gz, bench.log.gz.
# The last line printed is the verdict. Off a GPU node it rehearses: everything up to the
# build runs, and the phases that need a GPU fail, saying why.
SCRIPT_NAME=gpu_first_run
DEFAULT_BUDGET_S=420
LOGS="build.log ctest-cuda.log ctest-all.log bench.log"
. "$(dirname "$0")/gpu/common.sh"

cuda_tests() {
  export DOPPEL_REQUIRE_GPU=1 DOPPEL_CUDA_SYNC=1 CUDA_LAUNCH_BLOCKING=1
  ctest_run "$build_dir" ctest-cuda -R '[Cc]uda|training_export_tests' -E 'cuda_sanitizer' -j 4 --timeout 240
}
bench() {
  load_deps_env
  "$build_dir/bin/doppel" bench fem --backend "${BACKEND:-cuda}" --box-cells "${BOX_CELLS:-46}" \
    --batches "${BATCHES:-1,64,1024,4096}" --max-seconds "${MAX_SECONDS:-15}" --no-preconditioners \
    --output "$out/doppel-fem.json" >"$work/bench.log" 2>&1
  local rc=$?
  tail -30 "$work/bench.log"
  return $rc
}
sanitizer() {
  export DOPPEL_REQUIRE_GPU=1
  ctest_run "$build_dir" ctest-sanitizer -R cuda_sanitizer -j 2 --timeout 300
  local rc=$?
  cat "$work/ctest-sanitizer.log" >>"$work/ctest-cuda.log"
  grep -E "SKIPPED|FAILED|clean" "$work/ctest-sanitizer.log" | head -5
  return $rc
}
all_tests() {
  export DOPPEL_REQUIRE_GPU=1
  ctest_run "$build_dir" ctest-all -E '[Cc]uda|training_export_tests' -j "$(nproc)" --timeout 300
}
configure_step() {
  configure "$build_dir" >>"$work/build.log" 2>&1
  local rc=$?
  (( rc == 0 )) && grep "build.ninja:" "$work/build.log" | tail -1 || tail -25 "$work/build.log"
  return $rc
}
# The targets of the CUDA tests and the benchmark, then the rest.
first_targets="doppel kernels_batched_cg_tests kernels_backend_tests apps_cli_tests training_export_tests"
export first_targets
build_step() {
  build "$build_dir" "${1:-}" >>"$work/build.log" 2>&1
  local rc=$?
  (( rc == 0 )) && tail -1 "$work/build.log" || grep -E "error|FAILED" "$work/build.log" | head -20
  return $rc
}
package() { tar -C "$build_dir" -czf "$out/doppel-bin.tar.gz" bin/doppel && ls -la "$out/doppel-bin.tar.gz"; }
export -f configure_step build_step cuda_tests bench sanitizer all_tests package

phase machine 20 machine
phase deps 60 deps
phase configure 120 configure_step && phase build 300 build_step "$first_targets"
if [ -x "$build_dir/bin/doppel" ]; then
  phase package 20 package
  phase cuda-tests 170 cuda_tests
  phase bench 110 bench
  phase sanitizer 100 sanitizer
  phase build-rest 200 build_step && phase all-tests 200 all_tests
fi
finish
