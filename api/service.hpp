// The API's routes for what needs no live state: health, readiness, the OpenAPI document,
// twins, and synchronous scenario batches. Each route is one row of a table (method, path,
// summary, handler) that both registers it and documents it in /openapi.json.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/http_server.hpp"
#include "api/metrics.hpp"
#include "kernels/scenario_batch.hpp"
#include "surrogate/surrogate.hpp"

namespace doppel::api {

// The loaded twins (and their bundles), looked up by twin name.
class TwinRegistry {
 public:
  struct Entry {
    std::string id;
    std::string twin_path, bundle_path;
    std::unique_ptr<FemModel> model;
    std::unique_ptr<Surrogate> surrogate;
    std::mutex fem;  // one FE batch per twin at a time (it already uses every core)
  };
  // Loads the twins, then each bundle onto the twin it was trained for (meta.json names it).
  // Throws InvalidInput naming the file on a bad twin or bundle, or a bundle for no twin.
  void load(const std::vector<std::string>& twins, const std::vector<std::string>& bundles,
            const std::string& device);
  bool ready() const { return ready_; }
  const std::vector<std::unique_ptr<Entry>>& entries() const { return entries_; }
  Entry& find(const std::string& id) const;  // HttpError 404 when unknown

 private:
  std::vector<std::unique_ptr<Entry>> entries_;
  std::atomic<bool> ready_{false};
};

struct ServiceOptions {
  size_t max_sync_scenarios = 1000;  // larger batches are refused with 413 (jobs: issue 5)
  BatchOptions batch;                // FE solves
};

struct RouteDoc {
  std::string method, path, summary;
};

class Service {
 public:
  Service(TwinRegistry& twins, ServiceOptions options);
  void add_routes(HttpServer& server);
  nlohmann::ordered_json openapi() const;
  Metrics& metrics() { return metrics_; }

 private:
  struct Route {
    RouteDoc doc;
    Handler handler;
  };
  std::vector<Route> table() ;
  Response twins_list(const Request& r) const;
  Response twin_detail(const Request& r) const;
  Response scenarios(const Request& r);
  TwinRegistry& twins_;
  ServiceOptions options_;
  std::vector<RouteDoc> docs_;
  Metrics metrics_;
};

// JSON response helper.
Response json_response(const nlohmann::ordered_json& body, int status = 200);

}  // namespace doppel::api
