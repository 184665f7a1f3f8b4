#!/usr/bin/env bash
# Runs CUDA tests under compute-sanitizer (memcheck: out-of-bounds and misaligned accesses;
# racecheck: shared-memory races in the reductions).
# Usage: cuda_sanitizer.sh TOOL TEST_BINARY GTEST_FILTER
# Exit 77 (CTest: skipped) where it cannot run: no GPU or no compute-sanitizer (a failure
# instead under DOPPEL_REQUIRE_GPU=1), or a GPU the sanitizer does not support (gVisor
# sandboxes; a failure only under DOPPEL_REQUIRE_SANITIZER=1).
set -uo pipefail
tool="$1" binary="$2" filter="$3"
required() { [ -n "${1:-}" ] && [ "${1:-}" != 0 ]; }
give_up() {  # give_up MESSAGE REQUIRED
  if required "$2"; then echo "FAILED: $1"; exit 1; fi
  echo "SKIPPED: $1: compute-sanitizer $tool not run"; exit 77
}
sanitizer="$(command -v compute-sanitizer || true)"
for d in "${CUDA_HOME:-}" /usr/local/cuda; do
  [ -z "$sanitizer" ] && [ -n "$d" ] && [ -x "$d/bin/compute-sanitizer" ] && sanitizer="$d/bin/compute-sanitizer"
done
[ -n "$sanitizer" ] || give_up "compute-sanitizer is not installed" "${DOPPEL_REQUIRE_GPU:-}"
nvidia-smi -L >/dev/null 2>&1 || give_up "no NVIDIA GPU is present" "${DOPPEL_REQUIRE_GPU:-}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# No --leak-check: the per-device lanes (streams, cuBLAS workspaces) and the memory pool live as
# long as the process by design.
"$sanitizer" --tool "$tool" --error-exitcode 86 --print-limit 20 "$binary" --gtest_filter="$filter" >"$log" 2>&1
rc=$?
tail -60 "$log"
if grep -qiE "device not supported|not supported on this (platform|device)|unable to (connect|attach)" "$log"; then
  give_up "compute-sanitizer does not support this GPU here (a sandboxed runtime?)" "${DOPPEL_REQUIRE_SANITIZER:-}"
fi
if [ "$rc" -eq 86 ]; then echo "FAILED: compute-sanitizer $tool reported errors"; exit 1; fi
if [ "$rc" -ne 0 ]; then echo "FAILED: the tests under compute-sanitizer $tool exited $rc"; exit 1; fi
grep -q "ERROR SUMMARY: 0 errors" "$log" || { echo "FAILED: no clean ERROR SUMMARY from compute-sanitizer"; exit 1; }
echo "compute-sanitizer $tool: clean"
