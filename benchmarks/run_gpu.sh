#!/usr/bin/env bash
# The GPU run, in one command on a machine with an NVIDIA GPU (the device tool's nodes: no
# registry, so the Debian build dependencies come from scripts/bundle-deps, and LibTorch from
# the PyTorch installation there):
#   1. unpacks .deps/debs when present and builds with CUDA (arch 90 unless CUDA_ARCH is set)
#      against the LibTorch inside `python3 -c 'import torch'` (CUDA-enabled);
#   2. runs the whole test suite, CUDA instances included;
#   3. runs `doppel bench fem --backend cuda` on the blade and 3D P1 boxes of ~10^5 and
#      ~10^6 nodes for batch sizes 1..4096, exporting the systems;
#   4. runs the CuPy peer on the same systems, one scenario at a time;
#   5. trains the blade surrogate (FE on CUDA, inference on CUDA) and runs
#      `doppel bench surrogate` for batches 1..10^6 against FE solves of the same scenarios;
#   6. merges everything into benchmarks/results/gpu-<gpu>.json (or $OUT when set).
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
torch_prefix="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null || true)"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cxx11 abi", torch.compiled_with_cxx11_abi())' \
  | tee "$out/torch.txt" || true
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DDOPPEL_CUDA=ON \
  ${torch_prefix:+-DCMAKE_PREFIX_PATH="$torch_prefix"} \
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
build-gpu/bin/doppel train examples/blade/twin.json --out "$out/blade-bundle" --backend cuda --device cuda \
  2>&1 | grep -v "epoch [0-9]*[1-9]00:" | tee "$out/train.log"
cp "$out/blade-bundle/validation.json" "$out/blade-validation.json" 2>/dev/null
build-gpu/bin/doppel bench surrogate --bundle "$out/blade-bundle" --backend cuda --device cuda \
  --batches "${SURROGATE_BATCHES:-1,10,100,1000,10000,100000,1000000}" --fields-max 100000 \
  --output "$out/doppel-surrogate.json" 2>&1 | tee -a "$out/bench.log"
rm -rf "$out/blade-bundle"
python3 benchmarks/merge_gpu_results.py "$out/doppel-fem.json" "$out/cupy.json" "$out" "$out/doppel-surrogate.json"
