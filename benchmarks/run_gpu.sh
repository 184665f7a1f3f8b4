#!/usr/bin/env bash
# The GPU run of issue 3, in one command on a machine with an NVIDIA GPU (the device tool's
# nodes: no registry, so the Debian build dependencies come from scripts/bundle-deps):
#   1. unpacks .deps/debs when present and builds with CUDA (arch 90 unless CUDA_ARCH is set);
#   2. runs the whole test suite, CUDA instances included;
#   3. runs `doppel bench fem --backend cuda` on the blade and 3D P1 boxes of ~10^5 and
#      ~10^6 nodes for batch sizes 1..4096, exporting the systems;
#   4. runs the CuPy peer on the same systems, one scenario at a time;
#   5. merges everything into benchmarks/results/gpu-<gpu>.json (or $OUT when set).
# Usage: benchmarks/run_gpu.sh [OUTDIR]
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-benchmarks/results}}"
mkdir -p "$out"
if [ -d .deps/debs ] && ! dpkg-query -W libsuitesparse-dev >/dev/null 2>&1; then
  scripts/bundle-deps unpack .deps/debs .deps/prefix && . .deps/prefix/env.sh
fi
export DOPPEL_COMMIT="${DOPPEL_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/nvidia-smi.txt"
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DDOPPEL_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
cmake --build build-gpu -j "$(nproc)" >"$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
(cd build-gpu && ctest -j 8 --output-on-failure --timeout 900) >"$out/ctest.log" 2>&1
echo "ctest exit $?"; grep -E "tests passed|Failed|Skipped" "$out/ctest.log" | tail -15
build-gpu/bin/doppel bench fem --backend cuda --box-cells "${BOX_CELLS:-46,99}" \
  --batches "${BATCHES:-1,16,64,256,1024,4096}" --max-seconds "${MAX_SECONDS:-60}" \
  --export "$out/systems" --output "$out/doppel-fem.json" 2>&1 | tee "$out/bench.log"
python3 benchmarks/peers/cupy_cg.py "$out/systems" --rtol 1e-8 --count "${PEER_COUNT:-16}" \
  --output "$out/cupy.json" 2>&1 | tee -a "$out/bench.log"
rm -rf "$out/systems"
python3 benchmarks/merge_gpu_results.py "$out/doppel-fem.json" "$out/cupy.json" "$out"
