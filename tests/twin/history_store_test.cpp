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

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <optional>
#include <vector>

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

// The failure a file system turning read-only under a running server gives: every write to the
// database's files fails with EROFS. Simulated in a child process by a seccomp filter that
// answers EROFS to write, pwrite, fsync and ftruncate on the database's descriptors only.
// Every append then throws Unavailable (503, not acknowledged) - none returns as if stored -,
// reads go on, and a fresh process (once the file system is writable again) finds every
// acknowledged reading and appends again.
#if defined(__x86_64__) || defined(__aarch64__)
bool fail_writes_with_erofs(const std::vector<int>& fds) {
  std::vector<sock_filter> f;
  f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)));
#if defined(__x86_64__)
  f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0));
#else
  f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_AARCH64, 1, 0));
#endif
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
  const std::vector<unsigned> calls = {SYS_write, SYS_pwrite64, SYS_writev, SYS_pwritev, SYS_fsync, SYS_fdatasync, SYS_ftruncate, SYS_fallocate};
  // A syscall in the list jumps to the descriptor check placed right after the list.
  for (size_t i = 0; i < calls.size(); ++i)
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, calls[i], static_cast<unsigned char>(calls.size() - i), 0));
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0])));  // low word on little-endian
  for (size_t i = 0; i < fds.size(); ++i)
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<unsigned>(fds[i]), static_cast<unsigned char>(fds.size() - i), 0));
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EROFS & SECCOMP_RET_DATA)));
  sock_fprog prog{static_cast<unsigned short>(f.size()), f.data()};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

// This process's descriptors open on the database, its write-ahead log or its index.
std::vector<int> descriptors_of(const fs::path& db) {
  std::vector<int> fds;
  for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const auto target = fs::read_symlink(e.path(), ec);
    if (ec) continue;
    const std::string t = target.string();
    if (t == db.string() || t == db.string() + "-wal" || t == db.string() + "-shm") fds.push_back(std::stoi(e.path().filename().string()));
  }
  return fds;
}

TEST(HistoryStore, AFileSystemTurningReadOnlyRefusesReadingsWithoutLosingAcknowledgedOnes) {
  const auto path = fs::temp_directory_path() / ("doppel_erofs_" + std::to_string(getpid()) + ".sqlite");
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path.string() + suffix);
  const auto ack_file = fs::temp_directory_path() / ("doppel_erofs_" + std::to_string(getpid()) + ".acked");
  const pid_t child = fork();
  if (child == 0) {
    int code = 0;
    try {
      twin::HistoryStore s(path.string());
      FILE* acked = std::fopen(ack_file.c_str(), "w");
      for (int i = 0; i < 50; ++i) {
        s.append("t", {{"s1", static_cast<double>(i), static_cast<double>(i)}}, 0);
        std::fprintf(acked, "%d\n", i);
      }
      std::fclose(acked);
      const auto fds = descriptors_of(fs::canonical(path));
      if (fds.empty()) _exit(5);
      if (!fail_writes_with_erofs(fds)) _exit(6);  // seccomp unavailable here
      int refused = 0;
      for (int i = 50; i < 80; ++i) {
        try {
          s.append("t", {{"s1", static_cast<double>(i), static_cast<double>(i)}}, 0);
          code = 3;  // acknowledged while nothing can be written
        } catch (const Unavailable& e) {
          ++refused;
          if (std::string(e.what()).find(path.string()) == std::string::npos) code = 7;  // the error names the database
        }
      }
      if (refused != 30) code = code ? code : 3;
      if (s.count("t") < 50) code = 8;  // reads go on
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
      code = 4;
    }
    _exit(code);
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "the child died of signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  if (WEXITSTATUS(status) == 6) GTEST_SKIP() << "seccomp filters cannot be installed here";
  ASSERT_EQ(WEXITSTATUS(status), 0) << "3: an append was acknowledged with every write failing; 4: an error before the fault; "
                                       "5: no descriptor of the database; 7: the error does not name the database; 8: reads failed";
  twin::HistoryStore s(path.string());
  std::set<double> stored;
  for (const auto& r : s.query("t", "", -1e300, 1e300, 1000, std::nullopt).readings) stored.insert(r.time);
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(stored.count(i)) << "acknowledged reading " << i << " is lost";
  for (int i = 50; i < 80; ++i) EXPECT_FALSE(stored.count(i)) << "refused reading " << i << " was stored";
  EXPECT_EQ(s.append("t", {{"s1", 1e6, 1.0}}, 0)[0], twin::Stored::inserted);
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path.string() + suffix);
  fs::remove(ack_file);
}
#endif

// A database that is read-only when the server starts (its file not writable by the server's
// user): SQLite opened such a file for reading without a word, and every reading would have
// failed later. It is refused at once, naming the file and why; once writable it opens.
// (Run as an unprivileged user in a child: root writes whatever the permissions say.)
TEST(HistoryStore, AReadOnlyDatabaseIsRefusedWhenOpenedAndOpensOnceWritable) {
  const auto dir = fs::temp_directory_path() / ("doppel_ro_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const auto path = dir / "history.sqlite";
  { twin::HistoryStore warm(path.string()); }
  ::chmod(dir.c_str(), 0777);
  ::chmod(path.c_str(), 0444);
  for (const char* suffix : {"-wal", "-shm"}) fs::remove(path.string() + suffix);
  auto in_child = [&](int mode) {
    const pid_t child = fork();
    if (child == 0) {
      if (getuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(6);
      if (mode == 1) {
        try {
          twin::HistoryStore s(path.string());
          _exit(3);  // opened a database it cannot write
        } catch (const Unavailable& e) {
          const std::string what = e.what();
          _exit(what.find(path.string()) != std::string::npos && what.find("read-only") != std::string::npos ? 0 : 7);
        } catch (...) {
          _exit(4);
        }
      }
      try {
        twin::HistoryStore s(path.string());
        _exit(s.append("t", {{"s1", 1.0, 1.0}}, 0)[0] == twin::Stored::inserted ? 0 : 3);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child: %s\n", e.what());
        _exit(4);
      }
    }
    int status = 0;
    waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
  };
  const int read_only = in_child(1);
  if (read_only == 6) GTEST_SKIP() << "cannot run as an unprivileged user here";
  EXPECT_EQ(read_only, 0) << "3: opened; 7: the error does not name the file or the cause; 4: another error";
  ::chmod(path.c_str(), 0666);  // writable again
  EXPECT_EQ(in_child(2), 0);
  fs::remove_all(dir);
}

}  // namespace
