// Scenario jobs and their results in SQLite (WAL, synchronous=FULL: a job the API acknowledged
// with 202, and every chunk of results recorded as completed, is on disk before the answer).
// One connection, serialized by a mutex; the job runner and any number of readers share it.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "twin/sqlite.hpp"

namespace doppel::api {

struct JobRecord {
  std::string id, twin, twin_hash;
  std::string state;  // queued | running | done | failed | cancelled
  std::string request;  // the validated request body (kept to resume after a restart)
  size_t total = 0, completed = 0;
  size_t surrogate = 0, fem = 0;  // answers by fidelity so far
  std::string created, started, finished, error, owner;
  int restarts = 0;  // times resumed after the server stopped while it ran
  bool active() const { return state == "queued" || state == "running"; }
};

struct ResultChunk {
  size_t first = 0, count = 0;
  std::string lines;  // NDJSON, one line per scenario
};

class JobStore {
 public:
  // Opens or creates the database; Unavailable naming the file when it cannot.
  explicit JobStore(const std::string& path);
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  void insert(const JobRecord& job);
  std::optional<JobRecord> get(const std::string& id, bool with_request = false) const;
  // Newest first; `twin` empty for all.
  std::vector<JobRecord> list(const std::string& twin, size_t limit) const;
  // queued and running jobs, oldest first, with their requests.
  std::vector<JobRecord> active() const;
  void start(const std::string& id, const std::string& time);
  // Appends a chunk and its counts in one transaction; the job becomes done with the last
  // chunk. False (nothing written) when the job is no longer running (cancelled meanwhile).
  bool append(const std::string& id, const ResultChunk& chunk, size_t surrogate, size_t fem,
              const std::string& time);
  // state for an active job (cancelled / failed / queued); false when it was not active.
  bool finish(const std::string& id, const std::string& state, const std::string& error,
              const std::string& time);
  void requeue_after_restart(const std::string& id);
  bool remove(const std::string& id);  // the job and its results
  // Up to `max_chunks` chunks holding scenarios at or after `from_index`, in order.
  std::vector<ResultChunk> chunks(const std::string& id, size_t from_index, size_t max_chunks) const;
  std::map<std::string, size_t> count_by_state() const;
  const std::string& path() const { return db_.path(); }

 private:
  twin::Database db_;
  mutable std::mutex mutex_;
};

}  // namespace doppel::api
