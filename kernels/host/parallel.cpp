#include "kernels/host/parallel.hpp"

#include <atomic>

namespace doppel {
namespace {
std::atomic<int> g_threads{0};
}

int host_threads() {
  const int t = g_threads.load();
  if (t > 0) return t;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

void set_host_threads(int n) { g_threads.store(n > 0 ? n : 0); }

}  // namespace doppel
