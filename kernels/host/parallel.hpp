// Host threading across independent items (scenarios). Items are split into contiguous
// chunks, one per thread, run by a pool of workers started once; exceptions from a worker are
// re-thrown on the caller.
#pragma once

#include <algorithm>
#include <cstddef>

namespace doppel {

// Default worker count: the hardware threads, overridable with set_host_threads (the
// command line's --threads).
int host_threads();
void set_host_threads(int n);

// While one lives, the BLAS library (OpenBLAS: Debian's libblas.so.3, found at run time) runs
// each call on its calling thread: for work that is split across the host's threads by doppel
// itself, such as a block of right-hand sides cut into column slices, one per thread. A
// threaded BLAS would otherwise start and join its own workers on every small call (CHOLMOD's
// supernodal solves make one per supernode) and spin beside doppel's threads. Process-wide and
// counted: the BLAS threads come back when the last guard goes. A BLAS without a thread
// setting (the reference BLAS) is left as it is.
class SerialBlas {
 public:
  SerialBlas();
  ~SerialBlas();
  SerialBlas(const SerialBlas&) = delete;
  SerialBlas& operator=(const SerialBlas&) = delete;
  // The BLAS library's thread count now (1 where it has no setting).
  static int blas_threads();
};

namespace detail {
// Runs task(context, w) for every w in [0, tasks) on the caller and the host's worker pool,
// returning when all have finished; the first exception of any is re-thrown on the caller.
// The pool's workers start once and then wait on a condition variable, so a call costs a
// wake-up, not a thread start (a thread start cost ~0.1 ms each on the 2-core development
// VM). A call made from inside a pool task, or while another thread's call holds the pool,
// runs its tasks on the caller alone: nesting cannot deadlock, concurrent callers stay correct.
void run_tasks(size_t tasks, void (*task)(void*, size_t), void* context);
}  // namespace detail

// body(i) for every i in [0, n): contiguous chunks, one per thread (threads > 0: at most that
// many; default host_threads()).
template <class Body>
void parallel_for(size_t n, Body&& body, int threads = 0) {
  const size_t t = std::min<size_t>(n, static_cast<size_t>(threads > 0 ? threads : host_threads()));
  if (t <= 1) {
    for (size_t i = 0; i < n; ++i) body(i);
    return;
  }
  auto chunk = [&](size_t w) {
    const size_t begin = n * w / t, end = n * (w + 1) / t;
    for (size_t i = begin; i < end; ++i) body(i);
  };
  detail::run_tasks(t, [](void* c, size_t w) { (*static_cast<decltype(chunk)*>(c))(w); }, &chunk);
}

}  // namespace doppel
