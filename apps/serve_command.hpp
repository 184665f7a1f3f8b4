// `doppel serve`: the HTTP API (api/) over the twins and bundles named on the command line.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace doppel::app {

struct ServeArgs {
  std::vector<std::string> twins;
  std::vector<std::string> bundles;
  std::string config;  // server.json: tokens, TLS, limits, batching, jobs
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string device = "auto";
  std::string backend = "auto";
  // Set on the command line: override server.json.
  std::optional<size_t> max_sync, max_body_mb;
  std::optional<std::string> batching;  // on | off
  std::optional<size_t> max_batch;
  std::optional<double> max_queue_delay_ms;
  std::optional<std::string> database;
  int threads = 0;
  bool quiet = false;  // no request log lines
};

int run_serve(const ServeArgs& args);

}  // namespace doppel::app
