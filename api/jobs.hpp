// Scenario jobs: large batches answered in the background, chunk by chunk, each chunk's
// results stored (api/job_store) before it counts as done. A job that was queued or running
// when the server stopped (even by SIGKILL) is resumed at the next start from its last stored
// chunk, or marked failed with the reason when its twin is gone or changed; never dropped.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "api/job_store.hpp"
#include "api/metrics.hpp"
#include "api/scenario_request.hpp"
#include "api/twin_registry.hpp"

namespace doppel::api {

struct JobOptions {
  size_t chunk = 1024;     // scenarios per chunk answered by the surrogate
  size_t fem_chunk = 64;   // per chunk when FEM may answer (fidelity fem or auto)
};

class JobManager {
 public:
  using Parser = std::function<ScenarioRequest(const TwinRegistry::Entry&, const std::string& body)>;
  using Answer = std::function<AnswerSet(TwinRegistry::Entry&, const std::vector<spec::Scenario>&, const AnswerOptions&)>;
  using Log = std::function<void(const nlohmann::ordered_json&)>;

  JobManager(JobStore& store, TwinRegistry& twins, Metrics& metrics, JobOptions options, Parser parse,
             Answer answer, Log log);
  // Called when a twin has new job work (wakes its worker).
  void set_wake(std::function<void(const std::string& twin)> wake) { wake_ = std::move(wake); }

  // Stores the job (queued) and wakes the twin's worker. The body must have parsed into request.
  JobRecord submit(const TwinRegistry::Entry& twin, const std::string& body, ScenarioRequest request,
                   const std::string& owner);
  // After the twins are loaded: resumes or fails every job the store holds as queued/running.
  void recover();
  // One chunk of the oldest active job of this twin; false when it has none.
  bool step(TwinRegistry::Entry& twin);

  JobRecord get(const std::string& id) const;  // HttpError 404 when unknown
  std::vector<JobRecord> list(const std::string& twin, size_t limit) const { return store_.list(twin, limit); }
  // Cancels an active job (its stored results stay readable), or deletes a finished one.
  // Returns the job as it was left; deleted tells which happened.
  JobRecord cancel_or_delete(const std::string& id, bool& deleted);
  // Writes the results (NDJSON) from scenario index `from`, chunk by chunk; while the job is
  // active and wait is set, waits for more. Returns when every result is written, the job
  // ended, write() returns false (client gone) or the server shuts down.
  void stream(const std::string& id, size_t from, bool wait, const std::function<bool(const std::string&)>& write);
  // Ends waiting streams (server shutdown).
  void shutdown();
  std::map<std::string, size_t> count_by_state() const { return store_.count_by_state(); }

 private:
  std::shared_ptr<const ScenarioRequest> request_of(const std::string& id);
  void changed();
  void fail(const std::string& id, const std::string& why);

  JobStore& store_;
  TwinRegistry& twins_;
  Metrics& metrics_;
  JobOptions options_;
  Parser parse_;
  Answer answer_;
  Log log_;
  std::function<void(const std::string&)> wake_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  unsigned long changes_ = 0;
  bool shutting_down_ = false;
  std::map<std::string, std::deque<std::string>> queues_;  // twin -> active job ids, oldest first
  std::map<std::string, std::shared_ptr<const ScenarioRequest>> requests_;
};

// The NDJSON lines of answered scenarios ({"index": first + i, ...answer}).
std::string result_lines(const FemModel& model, const std::vector<spec::Scenario>& scenarios, const AnswerSet& set,
                         const std::vector<size_t>& outputs, size_t first);

nlohmann::ordered_json job_json(const JobRecord& job);

}  // namespace doppel::api
