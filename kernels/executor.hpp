// Executors (Ginkgo's idea): where data lives and kernels run. An algorithm is written once
// against an Executor and the kernel sets it calls; each kernel set has a host
// implementation (plain loops, the reference) and a CUDA one (kernels/cuda/*.cu).
//
// Array<T> is the one owner of executor memory: move-only, freed in its destructor, copied to
// and from the host explicitly. Code outside kernels/cuda never sees a CUDA type: the CUDA
// executor hands out its stream and library handles as opaque pointers.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kernels/backend.hpp"

namespace doppel {

class Executor {
 public:
  virtual ~Executor() = default;
  virtual Backend backend() const = 0;
  virtual std::string description() const = 0;  // "cpu (16 threads)", "NVIDIA H100 ..."

  virtual void* allocate(size_t bytes) const = 0;
  virtual void deallocate(void* ptr) const noexcept = 0;
  virtual void copy_from_host(void* dst, const void* src, size_t bytes) const = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t bytes) const = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) const = 0;  // within the executor
  // Waits for all work queued on this executor.
  virtual void synchronize() const = 0;
  // Bytes that can still be allocated (for sizing scenario blocks).
  virtual size_t free_memory() const = 0;

  // The host executor (shared, threads from host_threads()).
  static std::shared_ptr<const Executor> host();
  // The CUDA executor on `device`; throws NotCompiled in a host-only build and Unavailable
  // when no such device is present.
  static std::shared_ptr<const Executor> cuda(int device = 0);
  static std::shared_ptr<const Executor> create(Backend backend);
};

template <class T>
class Array {
 public:
  Array() = default;
  Array(std::shared_ptr<const Executor> exec, size_t n) : exec_(std::move(exec)), size_(n) {
    if (n) data_ = static_cast<T*>(exec_->allocate(n * sizeof(T)));
  }
  Array(std::shared_ptr<const Executor> exec, const std::vector<T>& host)
      : Array(std::move(exec), host.size()) {
    if (size_) exec_->copy_from_host(data_, host.data(), size_ * sizeof(T));
  }
  ~Array() {
    if (data_) exec_->deallocate(data_);
  }
  Array(Array&& o) noexcept
      : exec_(std::move(o.exec_)), data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  Array& operator=(Array&& o) noexcept {
    if (this != &o) {
      if (data_) exec_->deallocate(data_);
      exec_ = std::move(o.exec_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  Array(const Array&) = delete;
  Array& operator=(const Array&) = delete;

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const std::shared_ptr<const Executor>& executor() const { return exec_; }

  std::vector<T> to_host() const {
    std::vector<T> out(size_);
    if (size_) exec_->copy_to_host(out.data(), data_, size_ * sizeof(T));
    return out;
  }
  void copy_from_host(const T* src, size_t n, size_t offset = 0) {
    if (n) exec_->copy_from_host(data_ + offset, src, n * sizeof(T));
  }
  void copy_to_host(T* dst, size_t n, size_t offset = 0) const {
    if (n) exec_->copy_to_host(dst, data_ + offset, n * sizeof(T));
  }

 private:
  std::shared_ptr<const Executor> exec_;
  T* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace doppel
