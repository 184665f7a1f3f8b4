// `doppel serve`: the HTTP API (api/) over the twins and bundles named on the command line.
#pragma once

#include <string>
#include <vector>

namespace doppel::app {

struct ServeArgs {
  std::vector<std::string> twins;
  std::vector<std::string> bundles;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string device = "auto";
  std::string backend = "auto";
  size_t max_sync = 1000;
  size_t max_body_mb = 64;
  int threads = 0;
  bool quiet = false;  // no request log lines
};

int run_serve(const ServeArgs& args);

}  // namespace doppel::app
