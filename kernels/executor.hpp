// Executors (Ginkgo's idea): where data lives and kernels run. An algorithm is written once
// against an Executor and the kernel sets it calls; each kernel set has a host
// implementation (plain loops, the reference) and a CUDA one (kernels/cuda/*.cu).
//
// Array<T> is the one owner of executor memory: move-only, freed in its destructor, copied to
// and from the host explicitly. Code outside kernels/cuda never sees a CUDA type: the CUDA
// executor hands out its stream and library handles as opaque pointers.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "kernels/backend.hpp"

namespace doppel {

// The working memory that concurrent solves on one memory (a GPU, or the host) may hold
// together. A solve claims the bytes its blocks of scenarios need before it allocates them,
// so two twins solving at once split the memory instead of each sizing its blocks to all
// that is free (and one of them failing to allocate).
class MemoryBudget {
 public:
  explicit MemoryBudget(size_t limit) : limit_(limit) {}
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  size_t limit() const { return limit_; }
  size_t claimed() const;
  int waiting() const;  // claims blocked in acquire now
  // Grants at least `minimum` and at most `wanted` bytes: no more than the limit less what the
  // other claims hold, nor more than `free_bytes()` (what can still be allocated, measured
  // again after every wait). When less than `minimum` is left while other claims are held,
  // waits until one is released: a solve that does not fit beside the others waits its turn.
  // Alone, it gets `minimum` (its allocations then say whether that fits). A thread never holds
  // two claims at once.
  size_t acquire(size_t minimum, size_t wanted, const std::function<size_t()>& free_bytes);
  void release(size_t bytes) noexcept;

 private:
  const size_t limit_;
  mutable std::mutex mutex_;
  std::condition_variable released_;
  unsigned long releases_ = 0;  // counts releases, so a waiter measures again after each
  size_t claimed_ = 0;
  int holders_ = 0, waiting_ = 0;
};

// Bytes granted by a MemoryBudget, given back when the claim goes out of scope.
class MemoryClaim {
 public:
  MemoryClaim(MemoryBudget& budget, size_t minimum, size_t wanted, const std::function<size_t()>& free_bytes)
      : budget_(&budget), bytes_(budget.acquire(minimum, wanted, free_bytes)) {}
  ~MemoryClaim() {
    if (budget_) budget_->release(bytes_);
  }
  MemoryClaim(MemoryClaim&& o) noexcept : budget_(std::exchange(o.budget_, nullptr)), bytes_(o.bytes_) {}
  MemoryClaim(const MemoryClaim&) = delete;
  MemoryClaim& operator=(const MemoryClaim&) = delete;
  MemoryClaim& operator=(MemoryClaim&&) = delete;
  size_t bytes() const { return bytes_; }

 private:
  MemoryBudget* budget_;
  size_t bytes_;
};

// The fraction of a memory that doppel's solves may claim: DOPPEL_MEMORY_FRACTION when set
// (a number in [0.05, 0.95]; anything else throws InvalidInput naming the variable), else 0.7
// (the rest stays for operators, factor caches and, on a GPU, LibTorch's allocator).
double memory_fraction();

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
  // The budget shared by every executor on the same memory (all executors of one device).
  virtual MemoryBudget& memory_budget() const = 0;
  // Claims working memory for one solve's blocks (MemoryBudget::acquire).
  MemoryClaim claim_memory(size_t minimum, size_t wanted) const {
    return MemoryClaim(memory_budget(), minimum, wanted, [this] { return free_memory(); });
  }

  // The host executor (shared, threads from host_threads()).
  static std::shared_ptr<const Executor> host();
  // A new CUDA executor on `device`: its own stream (non-blocking) and cuBLAS handle, the
  // device's memory pool and budget shared with the others. Memory of one executor is used by work on
  // that executor only (its stream orders the work and the frees). An executor is used
  // by one thread at a time; each solve takes its own. Throws NotCompiled in a host-only
  // build and Unavailable when no such device is present.
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
      : Array(std::move(exec), host.data(), host.size()) {}
  // A copy of n values at `host`.
  Array(std::shared_ptr<const Executor> exec, const T* host, size_t n) : Array(std::move(exec), n) {
    if (size_) exec_->copy_from_host(data_, host, size_ * sizeof(T));
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

// Runs one kernel of a kernel set (host:: and cuda:: functions of the same name, taking the
// executor first) on the executor's backend.
#define DOPPEL_RUN(exec, kernel, ...)                                                          \
  ((exec).backend() == ::doppel::Backend::cuda ? ::doppel::cuda::kernel((exec), __VA_ARGS__) \
                                               : ::doppel::host::kernel((exec), __VA_ARGS__))
