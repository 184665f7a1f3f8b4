// One checking macro for every CUDA runtime call and launch, and a move-only RAII device
// buffer: no raw cudaMalloc elsewhere.
#pragma once

#include <cuda_runtime.h>

#include <string>
#include <utility>

#include "spec/errors.hpp"

#define DOPPEL_CUDA_CHECK(expr)                                                          \
  do {                                                                                   \
    const cudaError_t doppel_err_ = (expr);                                              \
    if (doppel_err_ != cudaSuccess)                                                      \
      throw ::doppel::DeviceError(std::string(__FILE__) + ":" + std::to_string(__LINE__) + \
                                  ": " #expr ": " + cudaGetErrorString(doppel_err_));    \
  } while (0)

namespace doppel::cuda {

template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t n) : size_(n) {
    if (n) DOPPEL_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&data_), n * sizeof(T)));
  }
  ~DeviceBuffer() {
    if (data_) cudaFree(data_);  // never throws
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      if (data_) cudaFree(data_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  void upload(const T* host) { DOPPEL_CUDA_CHECK(cudaMemcpy(data_, host, size_ * sizeof(T), cudaMemcpyHostToDevice)); }
  void download(T* host) const { DOPPEL_CUDA_CHECK(cudaMemcpy(host, data_, size_ * sizeof(T), cudaMemcpyDeviceToHost)); }

 private:
  T* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace doppel::cuda
