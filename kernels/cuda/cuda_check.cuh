// One checking macro for every CUDA runtime call and launch. Device memory is owned by
// Array<T> (kernels/executor.hpp) through the CUDA executor: no raw cudaMalloc elsewhere.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "spec/errors.hpp"

namespace doppel::cuda {
// Throws DeviceError for `err` with `what` (file, line, call); an error CUDA keeps for the
// rest of the process (the context is lost) also marks the process's devices as lost
// (cuda::device_lost(), kernels/backend.hpp).
[[noreturn]] void throw_error(cudaError_t err, const std::string& what);
}  // namespace doppel::cuda

#define DOPPEL_CUDA_CHECK(expr)                                                          \
  do {                                                                                   \
    const cudaError_t doppel_err_ = (expr);                                              \
    if (doppel_err_ != cudaSuccess)                                                      \
      ::doppel::cuda::throw_error(doppel_err_, std::string(__FILE__) + ":" + std::to_string(__LINE__) + \
                                                   ": " #expr);                          \
  } while (0)
