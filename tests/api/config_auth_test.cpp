// server.json parsing, bearer-token authorization, the exposure check, the job store and the
// batching worker, in process (no server).
#include <atomic>
#include <chrono>
#include <memory>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <unistd.h>

#include <gtest/gtest.h>

#include "api/auth.hpp"
#include "api/batcher.hpp"
#include "api/config.hpp"
#include "api/errors.hpp"
#include "api/job_store.hpp"
#include "api/time.hpp"
#include "spec/errors.hpp"

namespace {

using namespace doppel;
using namespace doppel::api;
namespace fs = std::filesystem;

// One mapping from error types to statuses. A failing GPU call is 503 device_error with
// Retry-After (it was 500 internal, which says "bug" to operators and clients alike).
TEST(ErrorMapping, EachErrorTypeHasItsStatus) {
  using namespace doppel;
  auto status = [](const std::exception& e) { return api::response_for(e).status; };
  EXPECT_EQ(status(InvalidInput("a.b", "bad")), 400);
  EXPECT_EQ(status(Unavailable("loading")), 503);
  EXPECT_EQ(status(NotCompiled("the CUDA backend")), 501);
  EXPECT_EQ(status(SolverDiverged("no convergence")), 422);
  EXPECT_EQ(status(std::runtime_error("bug")), 500);
  const api::Response r = api::response_for(DeviceError("device 0: could not allocate 9000 MiB"));
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("\"device_error\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("could not allocate"), std::string::npos) << r.body;
  bool retry_after = false;
  for (const auto& [k, v] : r.headers) retry_after |= k == "Retry-After";
  EXPECT_TRUE(retry_after);
  // A lost context (an illegal address): nothing to retry.
  const api::Response lost = api::response_for(DeviceError("kernel x: an illegal memory access", true));
  EXPECT_EQ(lost.status, 500);
  EXPECT_NE(lost.body.find("\"device_failed\""), std::string::npos) << lost.body;
}

TEST(Rfc3339, ParsesAndFormats) {
  EXPECT_DOUBLE_EQ(*parse_rfc3339("1970-01-01T00:00:00Z"), 0.0);
  EXPECT_DOUBLE_EQ(*parse_rfc3339("2026-11-25T10:00:00.250Z"), 1795600800.25);
  EXPECT_DOUBLE_EQ(*parse_rfc3339("2026-11-25T11:00:00.250+01:00"), 1795600800.25);
  EXPECT_DOUBLE_EQ(*parse_rfc3339("2026-11-25t05:30:00-04:30"), 1795600800.0);
  EXPECT_DOUBLE_EQ(*parse_rfc3339("2024-02-29T00:00:00Z"), 1709164800.0);  // leap day
  for (const char* bad : {"", "2026-11-25", "2026-11-25 10:00:00Z", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
                          "2026-11-25T24:00:00Z", "2026-11-25T10:00:00", "2026-11-25T10:00:00+1:00", "yesterday"})
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
  EXPECT_EQ(format_rfc3339(1795600800.25), "2026-11-25T10:00:00.250Z");
  EXPECT_EQ(format_rfc3339(1795600800.9996), "2026-11-25T10:00:01.000Z");
  EXPECT_DOUBLE_EQ(*parse_rfc3339(format_rfc3339(1795600800.125)), 1795600800.125);
}

std::string error_path(const std::string& text) {
  try {
    parse_server_config(text, "/tmp");
  } catch (const InvalidInput& e) {
    return e.path();
  }
  return "(accepted)";
}

TEST(ServerConfig, ReadsEveryField) {
  setenv("DOPPEL_TEST_TOKEN", "env-token-0123456789", 1);
  const ServerConfig c = parse_server_config(R"({
    "tokens": [{"name": "a", "token": "literal-token-0123456789", "scopes": ["read", "simulate"]},
               {"name": "b", "token_env": "DOPPEL_TEST_TOKEN", "scopes": ["admin"]}],
    "limits": {"max_body_mb": 8, "max_sync_scenarios": 10, "max_job_scenarios": 100, "max_connections": 300,
               "idle_timeout_s": 2, "header_timeout_s": 3, "body_timeout_s": 30, "io_timeout_s": 4},
    "batching": {"enabled": false, "max_batch": 64, "max_queue_delay_ms": 0.5},
    "database": "jobs.sqlite", "jobs": {"chunk": 32, "fem_chunk": 8},
    "twins": {"max_readings": 500, "max_clock_skew_s": 5, "members": 32, "drift": 0.05},
    "http_threads": 16})", "/srv/doppel");
  ASSERT_EQ(c.tokens.size(), 2u);
  EXPECT_EQ(c.tokens[1].secret, "env-token-0123456789");
  EXPECT_TRUE(c.tokens[0].scopes.count(Scope::simulate));
  EXPECT_EQ(c.max_body_mb, 8u);
  EXPECT_EQ(c.max_sync_scenarios, 10u);
  EXPECT_EQ(c.max_connections, 300u);
  EXPECT_DOUBLE_EQ(c.idle_timeout_s, 2);
  EXPECT_DOUBLE_EQ(c.header_timeout_s, 3);
  EXPECT_DOUBLE_EQ(c.body_timeout_s, 30);
  EXPECT_DOUBLE_EQ(c.io_timeout_s, 4);
  EXPECT_FALSE(c.batching);
  EXPECT_DOUBLE_EQ(c.max_queue_delay_ms, 0.5);
  EXPECT_EQ(c.database, "/srv/doppel/jobs.sqlite");  // relative to the file's folder
  EXPECT_EQ(c.job_fem_chunk, 8u);
  EXPECT_EQ(c.http_threads, 16);
  EXPECT_EQ(c.max_readings, 500u);
  EXPECT_DOUBLE_EQ(c.max_clock_skew_s, 5);
  EXPECT_EQ(c.members, 32);
  EXPECT_DOUBLE_EQ(c.drift, 0.05);
}

TEST(ServerConfig, BadFieldsAreNamed) {
  EXPECT_EQ(error_path("not json"), "(root)");
  EXPECT_EQ(error_path(R"({"token": []})"), "token");
  EXPECT_EQ(error_path(R"({"tokens": {}})"), "tokens");
  EXPECT_EQ(error_path(R"({"tokens": [{"token": "short", "scopes": ["read"]}]})"), "tokens[0]");
  EXPECT_EQ(error_path(R"({"tokens": [{"token": "0123456789abcdef", "scopes": ["root"]}]})"), "tokens[0].scopes[0]");
  EXPECT_EQ(error_path(R"({"tokens": [{"token": "0123456789abcdef", "scopes": []}]})"), "tokens[0].scopes");
  EXPECT_EQ(error_path(R"({"tokens": [{"token": "0123456789abcdef", "token_env": "X", "scopes": ["read"]}]})"), "tokens[0]");
  EXPECT_EQ(error_path(R"({"tokens": [{"token_env": "DOPPEL_UNSET_VARIABLE", "scopes": ["read"]}]})"), "tokens[0].token_env");
  EXPECT_EQ(error_path(R"({"tokens": [{"token": "0123456789abcdef", "scopes": ["read"]},
                                      {"token": "0123456789abcdef", "scopes": ["admin"]}]})"), "tokens[1]");
  EXPECT_EQ(error_path(R"({"tokens": [{"token": "0123456789 abcdef", "scopes": ["read"]}]})"), "tokens[0]");
  EXPECT_EQ(error_path(R"({"tls": {"cert": "/nonexistent.pem", "key": "/nonexistent.key"}})"), "tls.cert");
  EXPECT_EQ(error_path(R"({"tls": {"cert": "/nonexistent.pem"}})"), "tls");
  EXPECT_EQ(error_path(R"({"limits": {"max_body_mb": 0}})"), "limits.max_body_mb");
  EXPECT_EQ(error_path(R"({"limits": {"max_sync_scenarios": 1.5}})"), "limits.max_sync_scenarios");
  EXPECT_EQ(error_path(R"({"limits": {"max_connections": 0}})"), "limits.max_connections");
  EXPECT_EQ(error_path(R"({"limits": {"header_timeout_s": 0}})"), "limits.header_timeout_s");
  EXPECT_EQ(error_path(R"({"limits": {"idle_timeout_s": "5"}})"), "limits.idle_timeout_s");
  EXPECT_EQ(error_path(R"({"batching": {"enabled": "yes"}})"), "batching.enabled");
  EXPECT_EQ(error_path(R"({"batching": {"max_queue_delay_ms": -1}})"), "batching.max_queue_delay_ms");
  EXPECT_EQ(error_path(R"({"jobs": {"chunk": 0}})"), "jobs.chunk");
  EXPECT_EQ(error_path(R"({"jobs": {"database": "x"}})"), "jobs.database");
  EXPECT_EQ(error_path(R"({"twins": {"max_clock_skew_s": -1}})"), "twins.max_clock_skew_s");
  EXPECT_EQ(error_path(R"({"twins": {"members": 1}})"), "twins.members");
  EXPECT_EQ(error_path(R"({"twins": {"inflation": 0.9}})"), "twins.inflation");
  EXPECT_EQ(error_path("{}"), "(accepted)");
}

TEST(Auth, ConstantTimeEqualityIsEquality) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "ab"));
  EXPECT_FALSE(constant_time_equal("ab", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", std::string("abc\0", 4)));
}

int status_of(const Authenticator& a, const std::string& header, Scope scope) {
  Request r;
  if (!header.empty()) r.headers["authorization"] = header;
  try {
    a.authorize(r, scope);
    return 200;
  } catch (const HttpError& e) {
    return e.status();
  }
}

TEST(Auth, ScopesDecide) {
  const Authenticator open;
  EXPECT_EQ(status_of(open, "", Scope::admin), 200);  // no tokens configured: open
  const Authenticator a({{"reader", "reader-token-0123456789", {Scope::read}},
                         {"ops", "ops-token-0123456789", {Scope::admin}}});
  EXPECT_EQ(status_of(a, "", Scope::none), 200);
  EXPECT_EQ(status_of(a, "", Scope::read), 401);
  EXPECT_EQ(status_of(a, "Bearer", Scope::read), 401);
  EXPECT_EQ(status_of(a, "bearer reader-token-0123456789", Scope::read), 401);
  EXPECT_EQ(status_of(a, "Bearer reader-token-012345678", Scope::read), 401);
  EXPECT_EQ(status_of(a, "Bearer reader-token-0123456789", Scope::read), 200);
  EXPECT_EQ(status_of(a, "Bearer reader-token-0123456789", Scope::simulate), 403);
  for (Scope s : {Scope::read, Scope::simulate, Scope::ingest, Scope::control, Scope::admin})
    EXPECT_EQ(status_of(a, "Bearer ops-token-0123456789", s), 200);  // admin holds every scope
  Request r;
  r.headers["authorization"] = "Bearer ops-token-0123456789";
  EXPECT_EQ(a.authorize(r, Scope::read), "ops");
}

TEST(Auth, OpenServersStayOnLoopback) {
  EXPECT_NO_THROW(check_exposure("127.0.0.1", {}));
  EXPECT_NO_THROW(check_exposure("localhost", {}));
  EXPECT_NO_THROW(check_exposure("::1", {}));
  EXPECT_NO_THROW(check_exposure("127.0.0.2", {}));
  EXPECT_NO_THROW(check_exposure("::ffff:127.0.0.1", {}));
  // Loopback is a property of the addresses, not of the text (a prefix check let these pass).
  for (const char* host : {"127.0.0.1.example.invalid", "127.evil.invalid", "0.0.0.0", "::", "", "10.0.0.1"}) {
    EXPECT_FALSE(is_loopback(host)) << host;
    EXPECT_THROW(check_exposure(host, {}), InvalidInput) << host;
  }
  try {
    check_exposure("0.0.0.0", {{"r", "reader-token-0123456789", {Scope::read, Scope::ingest}}});
    FAIL();
  } catch (const InvalidInput& e) {
    EXPECT_EQ(e.path(), "--host");
    EXPECT_NE(std::string(e.what()).find("control, admin"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(check_exposure("0.0.0.0", {{"ops", "ops-token-0123456789", {Scope::admin}}}));
}

fs::path store_dir() { return fs::temp_directory_path() / ("doppel_store_" + std::to_string(getpid())); }
struct RemoveStoreDir {
  ~RemoveStoreDir() {
    std::error_code ec;
    fs::remove_all(store_dir(), ec);
  }
} remove_store_dir;

fs::path temp_db(const std::string& name) {
  const auto dir = store_dir();
  fs::create_directories(dir);
  const auto p = dir / name;
  fs::remove(p);
  return p;
}

JobRecord job(const std::string& id, size_t total) {
  JobRecord j;
  j.id = id;
  j.twin = "t";
  j.twin_hash = "h";
  j.state = "queued";
  j.request = R"({"scenarios": []})";
  j.total = total;
  j.created = "2026-11-25T00:00:00.000Z";
  return j;
}

TEST(JobStore, ChunksAppendInOrderAndSurviveReopening) {
  const auto path = temp_db("a.sqlite");
  {
    JobStore s(path.string());
    s.insert(job("j1", 5));
    EXPECT_FALSE(s.append("j1", {0, 2, "{\"index\":0}\n{\"index\":1}\n"}, 2, 0, "t"));  // not running yet
    s.start("j1", "t1");
    EXPECT_TRUE(s.append("j1", {0, 2, "{\"index\":0}\n{\"index\":1}\n"}, 2, 0, "t"));
    EXPECT_THROW(s.append("j1", {4, 1, "x\n"}, 1, 0, "t"), Unavailable);  // a gap: refused, nothing written
    EXPECT_EQ(s.get("j1")->completed, 2u);
  }
  JobStore s(path.string());  // as after a crash: the job is still running, its chunk kept
  auto active = s.active();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].state, "running");
  EXPECT_EQ(active[0].request, R"({"scenarios": []})");
  s.requeue_after_restart("j1");
  EXPECT_EQ(s.get("j1")->restarts, 1);
  s.start("j1", "t2");
  EXPECT_EQ(s.get("j1")->started, "t1");  // the first start is kept
  EXPECT_TRUE(s.append("j1", {2, 3, "{\"index\":2}\n{\"index\":3}\n{\"index\":4}\n"}, 1, 2, "t3"));
  const auto done = *s.get("j1");
  EXPECT_EQ(done.state, "done");
  EXPECT_EQ(done.surrogate, 3u);
  EXPECT_EQ(done.fem, 2u);
  EXPECT_EQ(done.finished, "t3");
  EXPECT_EQ(s.chunks("j1", 3, 10).size(), 1u);
  EXPECT_EQ(s.chunks("j1", 0, 10).size(), 2u);
  EXPECT_EQ(s.chunks("j1", 0, 1).size(), 1u);
  EXPECT_FALSE(s.finish("j1", "cancelled", "", "t4"));  // finished jobs stay finished
  EXPECT_TRUE(s.remove("j1"));
  EXPECT_FALSE(s.get("j1"));
  EXPECT_TRUE(s.chunks("j1", 0, 10).empty());
}

TEST(JobStore, CancelStopsFurtherChunks) {
  JobStore s(temp_db("b.sqlite").string());
  s.insert(job("j2", 4));
  s.start("j2", "t");
  EXPECT_TRUE(s.append("j2", {0, 1, "a\n"}, 1, 0, "t"));
  EXPECT_TRUE(s.finish("j2", "cancelled", "", "t"));
  EXPECT_FALSE(s.append("j2", {1, 1, "b\n"}, 1, 0, "t"));
  EXPECT_EQ(s.get("j2")->completed, 1u);
  EXPECT_EQ(s.count_by_state().at("cancelled"), 1u);
}

TEST(JobStore, UnusablePathIsUnavailable) { EXPECT_THROW(JobStore("/proc/doppel/jobs.sqlite"), Unavailable); }

// The worker gathers requests that arrive within the queue delay into one call, and splits the
// answers back by request.
TEST(TwinWorker, GathersConcurrentRequestsAndSplitsTheAnswers) {
  Metrics metrics;
  std::atomic<int> calls{0};
  auto answer = [&](const std::vector<spec::Scenario>& s, const AnswerOptions&) {
    ++calls;
    AnswerSet set;
    for (const auto& sc : s) {
      ScenarioAnswer a;
      a.outputs = {{sc.parameters[0] * 2}};
      a.surrogate = true;
      set.answers.push_back(a);
      ++set.surrogate_answers;
    }
    return set;
  };
  BatchingOptions o;
  o.max_batch = 1000;
  o.max_queue_delay_s = 0.5;
  TwinWorker w("t", answer, o, metrics, nullptr);
  // Eight requests announce themselves, then arrive one by one: the batch waits for all of them.
  std::vector<std::unique_ptr<TwinWorker::Arrival>> arrivals;
  for (int i = 0; i < 8; ++i) arrivals.push_back(std::make_unique<TwinWorker::Arrival>(w));
  std::vector<std::thread> clients;
  std::vector<double> got(8, 0);
  for (int i = 0; i < 8; ++i)
    clients.emplace_back([&, i] {
      std::this_thread::sleep_for(std::chrono::milliseconds(5 * i));
      spec::Scenario s;
      s.parameters = {static_cast<double>(i)};
      const AnswerSet set = arrivals[static_cast<size_t>(i)]->answer({s, s}, AnswerOptions{});
      got[static_cast<size_t>(i)] = set.answers.size() == 2 ? set.answers[1].outputs[0][0] : -1;
    });
  for (auto& t : clients) t.join();
  for (int i = 0; i < 8; ++i) EXPECT_EQ(got[static_cast<size_t>(i)], 2.0 * i);
  EXPECT_EQ(calls.load(), 1);
  {
    // A lone request does not wait for the queue delay (an hour here: waiting would hang the
    // test), and an announced request that never comes does not hold the batch either.
    BatchingOptions patient;
    patient.max_queue_delay_s = 3600;
    TwinWorker lone("t", answer, patient, metrics, nullptr);
    auto gone = std::make_unique<TwinWorker::Arrival>(lone);
    std::thread late([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      gone.reset();  // e.g. its body was malformed
    });
    spec::Scenario s;
    s.parameters = {3};
    EXPECT_EQ(lone.answer({s}, AnswerOptions{}).answers.at(0).outputs[0][0], 6.0);
    late.join();
    EXPECT_EQ(lone.answer({s}, AnswerOptions{}).answers.size(), 1u);
  }
  // max_batch bounds a gathered batch: a request larger than it still runs, alone.
  o.max_batch = 1;
  o.max_queue_delay_s = 0;
  TwinWorker small("t", answer, o, metrics, nullptr);
  spec::Scenario s;
  s.parameters = {1};
  EXPECT_EQ(small.answer({s, s, s}, AnswerOptions{}).answers.size(), 3u);
}

TEST(TwinWorker, OneFailingRequestDoesNotFailTheOthersInItsBatch) {
  Metrics metrics;
  auto answer = [](const std::vector<spec::Scenario>& s, const AnswerOptions&) {
    AnswerSet set;
    for (const auto& sc : s) {
      if (sc.parameters[0] < 0) throw SolverDiverged("negative");
      ScenarioAnswer a;
      a.outputs = {{sc.parameters[0]}};
      set.answers.push_back(a);
    }
    return set;
  };
  BatchingOptions o;
  o.max_queue_delay_s = 0.3;
  TwinWorker w("t", answer, o, metrics, nullptr);
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i)
    clients.emplace_back([&, i] {
      spec::Scenario s;
      s.parameters = {i == 2 ? -1.0 : 1.0};
      try {
        w.answer({s}, AnswerOptions{});
        ++ok;
      } catch (const SolverDiverged&) {
        ++failed;
      }
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 3);
  EXPECT_EQ(failed.load(), 1);
}

}  // namespace
