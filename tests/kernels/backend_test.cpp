// Backend selection and the CUDA seam. Device tests skip with a message where no GPU is
// present; they do not pass silently.
#include <atomic>
#include <cstdlib>
#include <thread>

#include "kernels/backend.hpp"
#include "kernels/cuda/cuda_api.hpp"
#include "kernels/executor.hpp"
#include "tests/test_util.hpp"

namespace doppel {
namespace {

TEST(Backend, SelectionWords) {
  EXPECT_EQ(select_backend("cpu"), Backend::host);
  EXPECT_NO_THROW(select_backend("auto"));
  EXPECT_THROW(select_backend("gpu"), InvalidInput);
  if (!cuda::compiled()) {
    EXPECT_THROW(select_backend("cuda"), NotCompiled);
  } else if (cuda::device_count() == 0) {
    EXPECT_THROW(select_backend("cuda"), Unavailable);
  } else {
    EXPECT_EQ(select_backend("cuda"), Backend::cuda);
    EXPECT_EQ(select_backend("auto"), Backend::cuda);  // auto picks CUDA when a device is present
  }
}

TEST(CudaDevice, SelfTestKernelMatchesHostOnMoreThanAWarp) {
  DOPPEL_SKIP_WITHOUT_CUDA("the device self-test");
  EXPECT_LT(cuda::self_test(1000003), 1e-14);
  EXPECT_FALSE(cuda::device_name(0).empty());
}

// Claims on one budget: granted up to what is left, never more than the free bytes, at least
// the minimum; released on scope exit.
TEST(MemoryBudget, GrantsWhatIsLeftAndReleasesOnScopeExit) {
  MemoryBudget budget(1000);
  {
    MemoryClaim a(budget, 100, 600, [] { return size_t{5000}; });
    EXPECT_EQ(a.bytes(), 600u);
    EXPECT_EQ(budget.claimed(), 600u);
    MemoryBudget other(1000);
    MemoryClaim b(other, 100, 900, [] { return size_t{250}; });  // only 250 bytes are free
    EXPECT_EQ(b.bytes(), 250u);
  }
  EXPECT_EQ(budget.claimed(), 0u);
  // Alone, a claim gets its minimum even beyond the limit (its allocation then decides).
  MemoryClaim big(budget, 4000, 8000, [] { return size_t{100}; });
  EXPECT_EQ(big.bytes(), 4000u);
}

// A claim that does not fit beside another waits until that one is released, then proceeds;
// two solves share a device instead of both sizing to all of it.
TEST(MemoryBudget, AClaimThatDoesNotFitWaitsForTheOthersRelease) {
  MemoryBudget budget(1000);
  std::atomic<bool> released{false}, granted{false};
  std::atomic<size_t> free_bytes{10000};
  const auto measure = [&] { return free_bytes.load(); };
  size_t second = 0;
  auto first = std::make_unique<MemoryClaim>(budget, 100, 800, measure);
  std::thread t([&] {
    MemoryClaim c(budget, 300, 900, measure);  // 200 left: waits
    EXPECT_TRUE(released.load()) << "granted before the first claim was released";
    second = c.bytes();
    granted = true;
  });
  while (budget.waiting() == 0) std::this_thread::yield();  // the second claim is blocked
  EXPECT_FALSE(granted.load());
  // Free memory is measured again after the wait: what the first solve's arrays held is free
  // once it is released.
  free_bytes = 700;
  released = true;
  first.reset();
  t.join();
  EXPECT_TRUE(granted.load());
  EXPECT_EQ(second, 700u);
  // A claim that fits beside another does not wait.
  free_bytes = 10000;
  MemoryClaim a(budget, 100, 400, measure), b(budget, 100, 400, measure);
  EXPECT_EQ(a.bytes() + b.bytes(), 800u);
}

// DOPPEL_MEMORY_FRACTION: read and checked by name.
TEST(MemoryBudget, FractionFromTheEnvironmentIsChecked) {
  ::unsetenv("DOPPEL_MEMORY_FRACTION");
  EXPECT_DOUBLE_EQ(memory_fraction(), 0.7);
  ::setenv("DOPPEL_MEMORY_FRACTION", "0.25", 1);
  EXPECT_DOUBLE_EQ(memory_fraction(), 0.25);
  for (const char* bad : {"2", "0", "half", "0.5x"}) {
    ::setenv("DOPPEL_MEMORY_FRACTION", bad, 1);
    try {
      memory_fraction();
      ADD_FAILURE() << bad << " accepted";
    } catch (const InvalidInput& e) {
      EXPECT_EQ(e.path(), "DOPPEL_MEMORY_FRACTION");
    }
  }
  ::unsetenv("DOPPEL_MEMORY_FRACTION");
}

// Executors on one device are distinct (each its own stream) but share the device's budget and
// memory pool: a block one solve frees stays in the pool for the next (pool figures are this
// process's own, unlike cudaMemGetInfo, so tests running beside this one cannot disturb them).
TEST(CudaDevice, ExecutorsShareTheDeviceBudgetAndMemoryPool) {
  DOPPEL_SKIP_WITHOUT_CUDA("the CUDA executor's budget and pool");
  const auto a = Executor::cuda(0), b = Executor::cuda(0);
  EXPECT_NE(a.get(), b.get());
  // Non-blocking streams: no implicit serialization with LibTorch's (legacy default) stream.
  EXPECT_TRUE(cuda::non_blocking_stream(*a));
  EXPECT_TRUE(cuda::non_blocking_stream(*b));
  EXPECT_EQ(&a->memory_budget(), &b->memory_budget());
  EXPECT_GT(a->memory_budget().limit(), size_t{1} << 28);
  {
    const MemoryClaim c = a->claim_memory(1 << 20, 1 << 20);
    EXPECT_GE(b->memory_budget().claimed(), size_t{1} << 20);
  }
  { Array<double> big(a, size_t{1} << 27); }  // 1 GiB, freed to the pool (stream-ordered)
  a->synchronize();
  size_t reserved = 0, used = 0, claimed = 0, limit = 0;
  ASSERT_TRUE(cuda::memory_pool_info(0, reserved, used, claimed, limit));
  EXPECT_EQ(limit, a->memory_budget().limit());
  EXPECT_GE(reserved - used, size_t{1} << 30) << "the freed block did not stay in the pool";
  // ... and the next allocation of that size is served from it.
  { Array<double> again(b, size_t{1} << 27); }
  b->synchronize();
  size_t reserved2 = 0;
  ASSERT_TRUE(cuda::memory_pool_info(0, reserved2, used, claimed, limit));
  EXPECT_EQ(reserved2, reserved);
}

}  // namespace
}  // namespace doppel
