// The observation store (SQLite): durable, idempotent, ordered by time.
#include <filesystem>

#include <unistd.h>

#include <gtest/gtest.h>

#include "twin/history_store.hpp"

namespace {

using namespace doppel;
namespace fs = std::filesystem;

fs::path temp_db() {
  const auto p = fs::temp_directory_path() / ("doppel_obs_" + std::to_string(getpid()) + ".sqlite");
  fs::remove(p);
  return p;
}

TEST(HistoryStore, DuplicatesAreHarmlessConflictsRefusedOrderKept) {
  const auto path = temp_db();
  {
    twin::HistoryStore s(path.string());
    const auto r = s.append("blade", {{"tc1", 100, 1.0}, {"tc2", 100, 2.0}, {"tc1", 50, 0.5}, {"tc1", 100, 1.0}, {"tc1", 100, 9.0}}, 1000);
    EXPECT_EQ(r, (std::vector<twin::Stored>{twin::Stored::inserted, twin::Stored::inserted, twin::Stored::inserted,
                                            twin::Stored::duplicate, twin::Stored::conflict}));
    EXPECT_EQ(s.append("other", {{"tc1", 100, 7.0}}, 1000)[0], twin::Stored::inserted);  // twins are separate
  }
  twin::HistoryStore s(path.string());  // reopened: everything acknowledged is there
  EXPECT_EQ(s.count("blade"), 3u);
  auto page = s.query("blade", "", -1e300, 1e300, 2, std::nullopt);
  ASSERT_EQ(page.readings.size(), 2u);
  EXPECT_EQ(page.readings[0].time, 50);  // time order, whatever the arrival order
  EXPECT_EQ(page.readings[1].sensor, "tc1");
  ASSERT_TRUE(page.next);
  page = s.query("blade", "", -1e300, 1e300, 2, page.next);
  ASSERT_EQ(page.readings.size(), 1u);
  EXPECT_EQ(page.readings[0].sensor, "tc2");
  EXPECT_FALSE(page.next);
  EXPECT_EQ(s.query("blade", "tc2", -1e300, 1e300, 10, std::nullopt).readings.size(), 1u);
  EXPECT_EQ(s.query("blade", "", 60, 1e300, 10, std::nullopt).readings.size(), 2u);
  fs::remove(path);
}

}  // namespace
