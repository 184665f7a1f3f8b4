// The server configuration file (`doppel serve --config server.json`): bearer tokens and their
// scopes, TLS, request limits, request batching and the job store. Every field is optional;
// command-line options override the file. Reference: docs/http-api.md ("server.json").
#pragma once

#include <set>
#include <string>
#include <vector>

namespace doppel::api {

// What a token may do. admin implies every other scope.
enum class Scope { none, read, simulate, ingest, control, admin };
const char* scope_name(Scope s);
Scope parse_scope(const std::string& text, const std::string& path);  // InvalidInput naming path

struct TokenConfig {
  std::string name;    // shown in logs and job owners (the secret never is)
  std::string secret;  // from "token", "token_env" or "token_file"
  std::set<Scope> scopes;
};

struct ServerConfig {
  std::vector<TokenConfig> tokens;
  std::string tls_cert, tls_key;      // PEM files; both or neither
  size_t max_body_mb = 64;
  size_t max_sync_scenarios = 1000;   // larger batches become jobs
  size_t max_job_scenarios = 1000000;
  double max_compute_s = 120;  // a recommendation search answers 503 past this (and at shutdown)
  bool batching = true;               // gather concurrent requests into one device batch
  size_t max_batch = 4096;            // scenarios per gathered batch
  double max_queue_delay_ms = 2;      // longest a request waits for others to join it
  std::string database = "doppel.sqlite";  // jobs, results, observations
  size_t job_chunk = 1024;            // scenarios per stored chunk (surrogate jobs)
  size_t job_fem_chunk = 0;           // per chunk when FEM answers (0: 64 on the CPU, 1024 on a GPU)
  size_t max_readings = 10000;        // per observations request
  double max_clock_skew_s = 60;       // readings further in the future are refused
  // State estimation (twin/estimator.hpp).
  int members = 64;
  double inflation = 1.02;
  double drift = 0.02;                // per sqrt(hour), fraction of a parameter's range
  double outlier_gate = 4;
  double silent_after_s = 600;
  double alert_probability = 0.2;
  double alert_horizon_s = 3600;
  double drift_threshold = 4;
  int http_threads = 64;              // requests answered at once
  // Connections (api/connection_front.hpp): "limits" in server.json.
  size_t max_connections = 1024;
  double idle_timeout_s = 5, header_timeout_s = 10, body_timeout_s = 60, io_timeout_s = 10;
};

// Reads and checks a server.json; InvalidInput naming the field ("tokens[1].scopes[0]") and
// the file. Relative paths (TLS files, database, token files) resolve against the file's folder.
ServerConfig load_server_config(const std::string& file);
ServerConfig parse_server_config(const std::string& json_text, const std::string& base_dir,
                                 const std::string& file_name = "server.json");

}  // namespace doppel::api
