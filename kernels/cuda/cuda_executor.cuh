// The CUDA executor: one device, one stream (every kernel and copy of doppel goes on it, in
// order), one cuBLAS handle, and a small scratch buffer for values read back by the host.
// Only .cu files include this header.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "kernels/cuda/cuda_check.cuh"
#include "kernels/executor.hpp"

#define DOPPEL_CUBLAS_CHECK(expr)                                                            \
  do {                                                                                       \
    const cublasStatus_t doppel_status_ = (expr);                                            \
    if (doppel_status_ != CUBLAS_STATUS_SUCCESS)                                             \
      throw ::doppel::DeviceError(std::string(__FILE__) + ":" + std::to_string(__LINE__) +     \
                                  ": " #expr ": cuBLAS status " + std::to_string(static_cast<int>(doppel_status_))); \
  } while (0)

namespace doppel::cuda {

class CudaExecutor final : public Executor {
 public:
  explicit CudaExecutor(int device);
  ~CudaExecutor() override;
  CudaExecutor(const CudaExecutor&) = delete;
  CudaExecutor& operator=(const CudaExecutor&) = delete;

  Backend backend() const override { return Backend::cuda; }
  std::string description() const override;
  void* allocate(size_t bytes) const override;
  void deallocate(void* ptr) const noexcept override;
  void copy_from_host(void* dst, const void* src, size_t bytes) const override;
  void copy_to_host(void* dst, const void* src, size_t bytes) const override;
  void copy(void* dst, const void* src, size_t bytes) const override;
  void synchronize() const override;
  size_t free_memory() const override;

  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }
  cublasHandle_t blas() const { return blas_; }
  int multiprocessors() const { return props_.multiProcessorCount; }
  // Device scratch of at least 64 bytes, for reductions whose result the host reads.
  void* scratch() const { return scratch_; }

 private:
  int device_ = 0;
  cudaDeviceProp props_{};
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  void* scratch_ = nullptr;
};

inline const CudaExecutor& as_cuda(const Executor& exec) {
  return static_cast<const CudaExecutor&>(exec);
}

// Launches a kernel on the executor's stream and checks the launch.
template <class... KernelArgs, class... Args>
void launch(const CudaExecutor& exec, dim3 grid, dim3 block, size_t shared_bytes,
            void (*kernel)(KernelArgs...), Args&&... args) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;
  kernel<<<grid, block, shared_bytes, exec.stream()>>>(std::forward<Args>(args)...);
  DOPPEL_CUDA_CHECK(cudaGetLastError());
}

}  // namespace doppel::cuda
