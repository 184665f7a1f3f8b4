// The CUDA executor: one device, one non-blocking stream of its own (every kernel and copy of
// the solve that owns it goes on it, in order), one cuBLAS handle bound to that stream.
// Streams and handles come from a per-device pool of lanes and go back to it when the
// executor is destroyed; device memory comes from the device's stream-ordered memory pool
// (cudaMallocAsync: no device-wide synchronization per free, blocks reused across solves),
// and the device's MemoryBudget is shared by all of its executors.
// Only .cu files include this header.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <memory>
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

struct DeviceContext;  // per device: properties, memory pool, budget, idle lanes (device.cu)

class CudaExecutor final : public Executor {
 public:
  explicit CudaExecutor(std::shared_ptr<DeviceContext> context);
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
  MemoryBudget& memory_budget() const override;

  int device() const;
  cudaStream_t stream() const { return stream_; }
  cublasHandle_t blas() const { return blas_; }
  int multiprocessors() const;

 private:
  std::shared_ptr<DeviceContext> context_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
};

inline const CudaExecutor& as_cuda(const Executor& exec) {
  return static_cast<const CudaExecutor&>(exec);
}

// DOPPEL_CUDA_SYNC=1: every launch is followed by a synchronization of its stream, so a fault
// is reported at the kernel that caused it (with its name) rather than at the next copy.
bool sync_after_launch();

// Launches a kernel on the executor's stream and checks the launch (and, with
// DOPPEL_CUDA_SYNC=1, its execution). Use through DOPPEL_CUDA_LAUNCH, which names the kernel.
template <class... KernelArgs, class... Args>
void launch(const char* name, const CudaExecutor& exec, dim3 grid, dim3 block, size_t shared_bytes,
            void (*kernel)(KernelArgs...), Args&&... args) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;
  kernel<<<grid, block, shared_bytes, exec.stream()>>>(std::forward<Args>(args)...);
  const cudaError_t launched = cudaGetLastError();
  if (launched != cudaSuccess)
    throw_error(launched, std::string("launch of ") + name + " (grid " + std::to_string(grid.x) + "x" +
                              std::to_string(grid.y) + ", block " + std::to_string(block.x) + "x" +
                              std::to_string(block.y) + ")");
  if (sync_after_launch()) {
    const cudaError_t ran = cudaStreamSynchronize(exec.stream());
    if (ran != cudaSuccess) throw_error(ran, std::string("kernel ") + name);
  }
}

}  // namespace doppel::cuda

#define DOPPEL_CUDA_LAUNCH(exec, grid, block, shared, kernel, ...) \
  ::doppel::cuda::launch(#kernel, (exec), (grid), (block), (shared), kernel, __VA_ARGS__)
