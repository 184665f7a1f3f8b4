#!/usr/bin/env bash
# A CUDA-enabled LibTorch's find module (Caffe2's public/cuda.cmake) sets
# CMAKE_CUDA_ARCHITECTURES to OFF and appends its own -gencode flags. This configures doppel
# against a Torch config that does the same on top of the real one (TORCH_DIR) and checks
# that doppel's kernels are still built for doppel's architecture (90) and for nothing else.
# Usage: cuda_architectures_survive_torch.sh SOURCE_DIR TORCH_DIR SCRATCH_DIR
set -euo pipefail
src="$1" torch_dir="$2" scratch="$3"
rm -rf "$scratch"
mkdir -p "$scratch/torch"
cat > "$scratch/torch/TorchConfig.cmake" <<CONFIG
include("$torch_dir/TorchConfig.cmake")
set(CMAKE_CUDA_ARCHITECTURES OFF)
string(APPEND CMAKE_CUDA_FLAGS " -gencode arch=compute_50,code=sm_50")
message(STATUS "torch stand-in: TORCH_CUDA_ARCH_LIST=\${TORCH_CUDA_ARCH_LIST}")
CONFIG
cmake -S "$src" -B "$scratch/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDOPPEL_CUDA=ON \
  -DDOPPEL_BUILD_TESTS=OFF -DTorch_DIR="$scratch/torch" >"$scratch/configure.log" 2>&1 ||
  { cat "$scratch/configure.log"; exit 1; }
grep -q "TORCH_CUDA_ARCH_LIST=9.0" "$scratch/configure.log" ||
  { echo "LibTorch's find module was not given TORCH_CUDA_ARCH_LIST=9.0"; grep stand-in "$scratch/configure.log"; exit 1; }
ninja_file="$scratch/build/build.ninja"
if ! grep -q "arch=compute_90,code=\[compute_90,sm_90\]" "$ninja_file"; then
  echo "doppel's CUDA sources are not built for sm_90:"; grep -o "arch=[^ ]*" "$ninja_file" | sort -u; exit 1
fi
if grep -q "compute_50" "$ninja_file"; then
  echo "LibTorch's -gencode flags leaked into doppel's CUDA sources"; exit 1
fi
echo "doppel's kernels keep sm_90 after find_package(Torch)"
rm -rf "$scratch"
