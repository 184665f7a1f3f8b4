#include "kernels/executor.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>

#include "kernels/cuda/cuda_api.hpp"
#include "kernels/host/parallel.hpp"
#include "spec/errors.hpp"

namespace doppel {

size_t MemoryBudget::claimed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return claimed_;
}

int MemoryBudget::waiting() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return waiting_;
}

size_t MemoryBudget::acquire(size_t minimum, size_t wanted, const std::function<size_t()>& free_bytes) {
  wanted = std::max(wanted, minimum);
  for (;;) {
    // Measured outside the lock (a device query); a release while measuring is seen below.
    const size_t free_now = free_bytes();
    std::unique_lock<std::mutex> lock(mutex_);
    const size_t left = std::min(limit_ > claimed_ ? limit_ - claimed_ : size_t{0}, free_now);
    if (holders_ == 0 || left >= minimum) {
      const size_t granted = std::max(minimum, std::min(wanted, left));
      claimed_ += granted;
      ++holders_;
      return granted;
    }
    const unsigned long seen = releases_;
    ++waiting_;
    released_.wait(lock, [&] { return releases_ != seen; });
    --waiting_;
  }
}

void MemoryBudget::release(size_t bytes) noexcept {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    claimed_ -= std::min(bytes, claimed_);
    --holders_;
    ++releases_;
  }
  released_.notify_all();
}

double memory_fraction() {
  const char* text = std::getenv("DOPPEL_MEMORY_FRACTION");
  if (!text || !*text) return 0.7;
  char* end = nullptr;
  const double f = std::strtod(text, &end);
  DOPPEL_VERIFY(end && *end == '\0' && f >= 0.05 && f <= 0.95, "DOPPEL_MEMORY_FRACTION",
                std::string("must be a number in [0.05, 0.95] (got \"") + text + "\")");
  return f;
}

namespace {

// /proc/meminfo's value for `key` in bytes, or `fallback`.
size_t meminfo(const std::string& key, size_t fallback) {
  std::ifstream in("/proc/meminfo");
  std::string k, unit;
  size_t kb = 0;
  while (in >> k >> kb >> unit)
    if (k == key) return kb * 1024;
  return fallback;
}

class HostExecutor final : public Executor {
 public:
  Backend backend() const override { return Backend::host; }
  std::string description() const override {
    return "cpu (" + std::to_string(host_threads()) + " threads)";
  }
  void* allocate(size_t bytes) const override {
    // 64-byte alignment: whole cache lines per row block of a multi-vector.
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) throw std::bad_alloc();
    return p;
  }
  void deallocate(void* ptr) const noexcept override { std::free(ptr); }
  void copy_from_host(void* dst, const void* src, size_t bytes) const override { std::memcpy(dst, src, bytes); }
  void copy_to_host(void* dst, const void* src, size_t bytes) const override { std::memcpy(dst, src, bytes); }
  void copy(void* dst, const void* src, size_t bytes) const override { std::memcpy(dst, src, bytes); }
  void synchronize() const override {}
  size_t free_memory() const override { return meminfo("MemAvailable:", size_t{4} << 30); }
  MemoryBudget& memory_budget() const override {
    static MemoryBudget budget(static_cast<size_t>(memory_fraction() *
                                                   static_cast<double>(meminfo("MemTotal:", size_t{8} << 30))));
    return budget;
  }
};

}  // namespace

std::shared_ptr<const Executor> Executor::host() {
  static const std::shared_ptr<const Executor> exec = std::make_shared<HostExecutor>();
  return exec;
}

std::shared_ptr<const Executor> Executor::cuda(int device) { return cuda::make_executor(device); }

std::shared_ptr<const Executor> Executor::create(Backend backend) {
  return backend == Backend::cuda ? cuda(0) : host();
}

}  // namespace doppel
