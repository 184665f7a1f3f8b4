// The observation store (SQLite): durable, idempotent, ordered by time.
#include <filesystem>
#include <fstream>
#include <set>

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

#include <sys/resource.h>
#include <sys/wait.h>

#include <csignal>

#include "spec/errors.hpp"

namespace {

// The disk fills up while readings arrive (simulated in a child process by a file-size limit,
// RLIMIT_FSIZE, so that SQLite's writes fail as on a full disk): every append either returns
// (acknowledged) or throws Unavailable (the service's 503: not acknowledged); nothing
// acknowledged is lost, and appends succeed again once space returns. The parent then reopens
// the store and finds every acknowledged reading.
TEST(HistoryStore, AFullDiskRefusesReadingsWithoutLosingAcknowledgedOnes) {
  const auto path = fs::temp_directory_path() / ("doppel_full_" + std::to_string(getpid()) + ".sqlite");
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path.string() + suffix);
  { twin::HistoryStore warm(path.string()); }  // the schema exists before space runs out
  const auto ack_file = fs::temp_directory_path() / ("doppel_full_" + std::to_string(getpid()) + ".acked");
  const pid_t child = fork();
  if (child == 0) {
    std::signal(SIGXFSZ, SIG_IGN);  // a write past the limit fails with EFBIG instead of killing
    rlimit lim{};
    getrlimit(RLIMIT_FSIZE, &lim);
    const rlim_t hard = lim.rlim_max;
    lim.rlim_cur = 256 * 1024;  // the database and its write-ahead log may not grow past 256 KB
    setrlimit(RLIMIT_FSIZE, &lim);
    int code = 0;
    try {
      twin::HistoryStore s(path.string());
      FILE* acked = std::fopen(ack_file.c_str(), "w");
      int refused = 0, last = -1;
      for (int i = 0; i < 4000 && refused < 20; ++i) {
        try {
          s.append("t", {{"s1", static_cast<double>(i), static_cast<double>(i)}}, 0);
          last = i;
          std::fprintf(acked, "%d\n", i);  // what the service would have answered 200 for
          std::fflush(acked);
        } catch (const Unavailable&) {
          ++refused;
        }
      }
      if (refused == 0) code = 3;  // the limit was never reached: the test proves nothing
      lim.rlim_cur = hard;  // space returns
      setrlimit(RLIMIT_FSIZE, &lim);
      s.append("t", {{"s1", 1e6, 42.0}}, 0);
      std::fprintf(acked, "%d\n", 1000000);
      std::fclose(acked);
      (void)last;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
      code = 4;
    }
    _exit(code);
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << "3: the file-size limit was never reached; 4: an append failed after space returned";
  std::vector<int> acked;
  {
    std::ifstream in(ack_file);
    for (int i; in >> i;) acked.push_back(i);
  }
  ASSERT_GT(acked.size(), 10u);
  twin::HistoryStore s(path.string());
  std::set<double> stored;
  std::optional<twin::HistoryStore::Cursor> cursor;
  do {
    auto page = s.query("t", "", -1e300, 1e300, 1000, cursor);
    for (const auto& r : page.readings) stored.insert(r.time);
    cursor = page.next;
  } while (cursor);
  for (int i : acked) EXPECT_TRUE(stored.count(static_cast<double>(i))) << "acknowledged reading " << i << " is lost";
  std::printf("%zu acknowledged before and after the disk filled, %zu stored\n", acked.size(), stored.size());
  fs::remove(ack_file);
}

}  // namespace
