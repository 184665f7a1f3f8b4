// Backend selection and the CUDA seam. Device tests skip with a message where no GPU is
// present; they do not pass silently.
#include "kernels/backend.hpp"
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
  if (!cuda::compiled()) GTEST_SKIP() << "CUDA backend not compiled into this build";
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device present";
  EXPECT_LT(cuda::self_test(1000003), 1e-14);
  EXPECT_FALSE(cuda::device_name(0).empty());
}

}  // namespace
}  // namespace doppel
