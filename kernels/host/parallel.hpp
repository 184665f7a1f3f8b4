// Host threading across independent items (scenarios). Items are split into contiguous
// chunks, one per thread; exceptions from a worker are re-thrown on the caller.
#pragma once

#include <algorithm>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace doppel {

// Default worker count: the hardware threads, overridable with set_host_threads (the
// command line's --threads).
int host_threads();
void set_host_threads(int n);

template <class Body>
void parallel_for(size_t n, Body&& body, int threads = 0) {
  const size_t t = std::min<size_t>(n, static_cast<size_t>(threads > 0 ? threads : host_threads()));
  if (t <= 1) {
    for (size_t i = 0; i < n; ++i) body(i);
    return;
  }
  std::exception_ptr error;
  std::mutex error_mutex;
  std::vector<std::thread> workers;
  workers.reserve(t);
  for (size_t w = 0; w < t; ++w) {
    workers.emplace_back([&, w] {
      const size_t begin = n * w / t, end = n * (w + 1) / t;
      try {
        for (size_t i = begin; i < end; ++i) body(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    });
  }
  for (auto& th : workers) th.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace doppel
