// The API's routes for what needs no live state: health, readiness, metrics, the OpenAPI
// document, twins, scenario batches (answered at once, through the twin's batching worker, or
// as stored jobs) and jobs. Each route is one row of a table (method, path, scope, summary,
// handler) that registers it, authorizes it and documents it in /openapi.json.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/auth.hpp"
#include "api/batcher.hpp"
#include "api/http_server.hpp"
#include "api/job_store.hpp"
#include "api/jobs.hpp"
#include "api/metrics.hpp"
#include "api/twin_registry.hpp"
#include "kernels/solvers/scenario_batch.hpp"
#include "twin/history_store.hpp"
#include "twin/live_twin.hpp"

namespace doppel::api {

struct ServiceOptions {
  size_t max_sync_scenarios = 1000;     // larger batches become jobs
  size_t max_job_scenarios = 1000000;   // larger ones are refused (413)
  bool batching = true;                 // gather concurrent requests per twin
  BatchingOptions batching_options;
  JobOptions jobs;
  std::string database = "doppel.sqlite";  // jobs, results, observations
  size_t max_readings = 10000;          // per observations request (413 above)
  double max_clock_skew_s = 60;         // readings further in the future are rejected
  BatchOptions batch;                   // FE solves
  std::vector<TokenConfig> tokens;      // none: every route open (loopback only, see check_exposure)
  bool gpu_metrics = false;             // report device memory (a CUDA backend or device is in use)
  std::function<void(const nlohmann::ordered_json&)> log;  // event lines (jobs, state)
  twin::LiveOptions live;               // state estimation
};

struct RouteDoc {
  std::string method, path;
  Scope scope = Scope::none;
  std::string summary;
  Scope or_scope = Scope::none;  // a second scope that also admits (the handler may ask for one of them)
};

class Service {
 public:
  // Opens the job store (Unavailable naming the file when it cannot).
  Service(TwinRegistry& twins, ServiceOptions options);
  ~Service();
  void add_routes(HttpServer& server);
  // After the twins are loaded: resumes stored jobs, starts the twins' workers, becomes ready.
  void start();
  // Shutdown, first step: ends waiting result streams (so the HTTP server can stop).
  void begin_shutdown();
  // Last step, after the HTTP server stopped: stops the workers (a running chunk finishes).
  void stop();
  bool ready() const { return ready_; }
  nlohmann::ordered_json openapi() const;
  Metrics& metrics() { return metrics_; }

 private:
  struct Route {
    RouteDoc doc;
    Handler handler;
  };
  std::vector<Route> table();
  AnswerSet compute(TwinRegistry::Entry& twin, const std::vector<spec::Scenario>& scenarios, const AnswerOptions& options);
  Response twins_list(const Request& r) const;
  Response twin_detail(const Request& r) const;
  Response scenarios(const Request& r);
  Response jobs_list(const Request& r) const;
  Response job_detail(const Request& r) const;
  Response job_delete(const Request& r);
  Response job_results(const Request& r);
  Response observations(const Request& r);
  Response history(const Request& r) const;
  Response state(const Request& r);
  Response forecast(const Request& r);
  Response alerts(const Request& r);
  Response field(const Request& r);
  Response recommend(const Request& r);
  Response controls_get(const Request& r);
  Response controls_put(const Request& r);
  void apply_reported(const TwinRegistry::Entry& e, const std::string& reported_json);
  twin::LiveTwin& live(const TwinRegistry::Entry& e) const;
  void render_gauges(std::string& out) const;

  TwinRegistry& twins_;
  ServiceOptions options_;
  Authenticator auth_;
  std::vector<RouteDoc> docs_;
  Metrics metrics_;
  std::function<FrontStats()> connection_stats_;  // the server's front (add_routes)
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<JobManager> jobs_;
  std::unique_ptr<twin::HistoryStore> history_;
  std::map<std::string, std::unique_ptr<TwinWorker>> workers_;
  std::map<std::string, std::unique_ptr<twin::LiveTwin>> live_;  // twins with sensors (steady)
  std::map<std::string, std::string> no_live_;  // twins with sensors that keep no live state: why
  std::atomic<bool> ready_{false};
};

// JSON response helper.
Response json_response(const nlohmann::ordered_json& body, int status = 200);

}  // namespace doppel::api
