// The plain C++ face of the CUDA backend: what code outside kernels/cuda may call. A
// host-only build links kernels/cuda/device_stub.cpp instead, whose functions throw
// NotCompiled.
#pragma once

#include <memory>

namespace doppel {
class Executor;
namespace cuda {
// The CUDA executor on `device` (one stream, one cuBLAS handle). Executors are cached per
// device: every caller shares the same stream.
std::shared_ptr<const Executor> make_executor(int device);
}  // namespace cuda
}  // namespace doppel
