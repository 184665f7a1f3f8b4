#include "kernels/executor.hpp"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>

#include "kernels/cuda/cuda_api.hpp"
#include "kernels/parallel.hpp"
#include "spec/errors.hpp"

namespace doppel {
namespace {

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
  size_t free_memory() const override {
    std::ifstream in("/proc/meminfo");
    std::string key;
    size_t kb = 0;
    std::string unit;
    while (in >> key >> kb >> unit)
      if (key == "MemAvailable:") return kb * 1024;
    return size_t{4} << 30;
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
