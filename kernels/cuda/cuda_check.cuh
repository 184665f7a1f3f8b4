// One checking macro for every CUDA runtime call and launch. Device memory is owned by
// Array<T> (kernels/executor.hpp) through the CUDA executor: no raw cudaMalloc elsewhere.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "spec/errors.hpp"

#define DOPPEL_CUDA_CHECK(expr)                                                          \
  do {                                                                                   \
    const cudaError_t doppel_err_ = (expr);                                              \
    if (doppel_err_ != cudaSuccess)                                                      \
      throw ::doppel::DeviceError(std::string(__FILE__) + ":" + std::to_string(__LINE__) + \
                                  ": " #expr ": " + cudaGetErrorString(doppel_err_));    \
  } while (0)
