// Broken twin files: each gives InvalidInput naming the offending JSON path (never a crash).
// The command-line test (tests/apps) checks the same files give a non-zero exit.
#include <gtest/gtest.h>

#include "kernels/fem/fem_model.hpp"
#include "spec/errors.hpp"
#include "tests/bad_twins.hpp"

namespace doppel {
namespace {

class BadTwin : public ::testing::TestWithParam<test::BadTwin> {};

TEST_P(BadTwin, ClearErrorNamingThePath) {
  const test::BadTwin& c = GetParam();
  try {
    FemModel model(spec::parse_twin(c.json, DOPPEL_SOURCE_DIR "/tests/data"));
    FAIL() << c.name << ": no error";
  } catch (const InvalidInput& e) {
    EXPECT_EQ(e.path(), c.path) << c.name << ": " << e.what();
    EXPECT_FALSE(e.detail().empty());
  }
}

INSTANTIATE_TEST_SUITE_P(Table, BadTwin, ::testing::ValuesIn(test::bad_twins()),
                         [](const auto& info) { return info.param.name; });

TEST(BadTwinTable, HasAtLeastTwentyCases) { EXPECT_GE(test::bad_twins().size(), 20u); }

}  // namespace
}  // namespace doppel
