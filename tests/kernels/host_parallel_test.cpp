// Host threading (kernels/host/parallel.hpp): the worker pool behind parallel_for, and the
// SerialBlas guard. References: counts of visited items (each exactly once), the exception a
// task throws, and OpenBLAS's own thread count read back.
#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/host/parallel.hpp"

namespace doppel {
namespace {

// Restores the host thread count a test changes.
struct ThreadCount {
  int saved = host_threads();
  ~ThreadCount() { set_host_threads(saved); }
};

TEST(ParallelFor, VisitsEveryItemOnceForAnyCountAndThreads) {
  for (int threads : {1, 2, 3, 8})
    for (size_t n : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{17}, size_t{1000}}) {
      std::vector<std::atomic<int>> seen(n);
      parallel_for(n, [&](size_t i) { seen[i].fetch_add(1); }, threads);
      for (size_t i = 0; i < n; ++i) ASSERT_EQ(seen[i].load(), 1) << "item " << i << " of " << n << ", " << threads << " threads";
    }
}

TEST(ParallelFor, RunsOnSeveralThreadsWhenAskedTo) {
  // Two tasks that wait for each other finish only when they run at the same time.
  std::atomic<int> arrived{0};
  parallel_for(2, [&](size_t) {
    arrived.fetch_add(1);
    while (arrived.load() < 2) std::this_thread::yield();
  }, 2);
  EXPECT_EQ(arrived.load(), 2);
}

TEST(ParallelFor, NestedCallsRunInsideTheirTask) {
  ThreadCount restore;
  set_host_threads(4);
  std::vector<std::atomic<int>> seen(12 * 7);
  parallel_for(12, [&](size_t i) { parallel_for(7, [&](size_t j) { seen[i * 7 + j].fetch_add(1); }); });
  for (size_t k = 0; k < seen.size(); ++k) EXPECT_EQ(seen[k].load(), 1) << k;
}

TEST(ParallelFor, AnExceptionReachesTheCallerAndThePoolGoesOn) {
  EXPECT_THROW(parallel_for(64, [](size_t i) {
                 if (i == 37) throw std::runtime_error("item 37");
               }, 4),
               std::runtime_error);
  try {
    parallel_for(8, [](size_t i) {
      if (i % 2 == 1) throw std::invalid_argument("odd " + std::to_string(i));
    }, 4);
    FAIL() << "expected an exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()).rfind("odd ", 0), 0u) << e.what();
  }
  std::atomic<long> sum{0};
  parallel_for(100, [&](size_t i) { sum.fetch_add(static_cast<long>(i)); }, 4);
  EXPECT_EQ(sum.load(), 4950);
}

TEST(ParallelFor, ConcurrentCallersEachGetTheirOwnItems) {
  constexpr int kCallers = 4, kRounds = 200;
  std::vector<long> sums(kCallers, 0);
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c)
    callers.emplace_back([&, c] {
      for (int r = 0; r < kRounds; ++r) {
        std::atomic<long> s{0};
        parallel_for(50 + static_cast<size_t>(c), [&](size_t i) { s.fetch_add(static_cast<long>(i) + 1); }, 3);
        sums[static_cast<size_t>(c)] += s.load();
      }
    });
  for (auto& t : callers) t.join();
  for (int c = 0; c < kCallers; ++c) {
    const long n = 50 + c;
    EXPECT_EQ(sums[static_cast<size_t>(c)], kRounds * n * (n + 1) / 2) << "caller " << c;
  }
}

TEST(SerialBlas, GuardsCountAndRestoreTheBlasThreads) {
  const int before = SerialBlas::blas_threads();
  {
    SerialBlas a;
    EXPECT_EQ(SerialBlas::blas_threads(), 1);
    {
      SerialBlas b;
      EXPECT_EQ(SerialBlas::blas_threads(), 1);
    }
    EXPECT_EQ(SerialBlas::blas_threads(), 1) << "the outer guard still holds";
  }
  EXPECT_EQ(SerialBlas::blas_threads(), before);
  // Guards taken on several threads at once, as sliced solves of concurrent batches do.
  parallel_for(16, [](size_t) {
    SerialBlas g;
    EXPECT_EQ(SerialBlas::blas_threads(), 1);
  }, 4);
  EXPECT_EQ(SerialBlas::blas_threads(), before);
}

}  // namespace
}  // namespace doppel
