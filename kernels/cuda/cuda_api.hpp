// The plain C++ face of the CUDA backend: what code outside kernels/cuda may call. A
// host-only build links kernels/cuda/device_stub.cpp instead, whose functions throw
// NotCompiled.
#pragma once

#include <memory>

namespace doppel {
class Executor;
namespace cuda {
// A new CUDA executor on `device` (its own stream and cuBLAS handle from the device's pool of
// lanes; the device's memory pool and budget shared with the others).
std::shared_ptr<const Executor> make_executor(int device);
// The executor's stream does not synchronize implicitly with the legacy default stream (the one
// LibTorch and most libraries use unless told otherwise).
bool non_blocking_stream(const Executor& exec);
}  // namespace cuda
}  // namespace doppel
