#include "api/config.hpp"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "spec/errors.hpp"
#include "spec/json_reader.hpp"

namespace doppel::api {

namespace {
using Json = nlohmann::json;
namespace fs = std::filesystem;

struct Reader {
  std::string file;
  [[noreturn]] void fail(const std::string& path, const std::string& message) const {
    throw InvalidInput(path, message + " (" + file + ")");
  }
  void known(const Json& j, const std::string& path, std::initializer_list<const char*> keys) const {
    try {
      spec::require_known_keys(j, path, keys);
    } catch (const InvalidInput& e) {
      fail(e.path().empty() ? "(root)" : e.path(), e.detail());  // the same check, naming the file
    }
  }
  std::string string(const Json& j, const std::string& path) const {
    if (!j.is_string() || j.get<std::string>().empty()) fail(path, "must be a non-empty string");
    return j.get<std::string>();
  }
  double number(const Json& j, const std::string& path, double lo, double hi) const {
    if (!j.is_number() || !std::isfinite(j.get<double>())) fail(path, "must be a number");
    const double v = j.get<double>();
    if (v < lo || v > hi) {
      std::ostringstream s;
      s << "must lie in [" << lo << ", " << hi << "]";
      fail(path, s.str());
    }
    return v;
  }
  size_t count(const Json& j, const std::string& path, double lo, double hi) const {
    if (!j.is_number_integer() && !j.is_number_unsigned()) fail(path, "must be an integer");
    return static_cast<size_t>(number(j, path, lo, hi));
  }
  bool boolean(const Json& j, const std::string& path) const {
    if (!j.is_boolean()) fail(path, "must be true or false");
    return j.get<bool>();
  }
};

std::string resolve(const std::string& p, const std::string& base) {
  const fs::path path(p);
  return path.is_absolute() || base.empty() ? p : (fs::path(base) / path).string();
}
}  // namespace

const char* scope_name(Scope s) {
  switch (s) {
    case Scope::none: return "none";
    case Scope::read: return "read";
    case Scope::simulate: return "simulate";
    case Scope::ingest: return "ingest";
    case Scope::control: return "control";
    case Scope::admin: return "admin";
  }
  return "none";
}

Scope parse_scope(const std::string& text, const std::string& path) {
  for (Scope s : {Scope::read, Scope::simulate, Scope::ingest, Scope::control, Scope::admin})
    if (text == scope_name(s)) return s;
  throw InvalidInput(path, "unknown scope \"" + text + "\" (expected read, simulate, ingest, control or admin)");
}

ServerConfig parse_server_config(const std::string& json_text, const std::string& base_dir,
                                 const std::string& file_name) {
  const Reader r{file_name};
  Json root;
  try {
    root = spec::parse_json_document(json_text, "the server config");
  } catch (const InvalidInput& e) {
    r.fail(e.path().empty() ? "(root)" : e.path(), e.detail());
  }
  r.known(root, "", {"database", "tokens", "tls", "limits", "batching", "jobs", "twins", "http_threads", "description"});
  ServerConfig c;
  if (root.contains("database")) c.database = resolve(r.string(root["database"], "database"), base_dir);
  if (root.contains("tokens")) {
    const Json& list = root["tokens"];
    if (!list.is_array()) r.fail("tokens", "must be an array of {name, token|token_env|token_file, scopes}");
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string p = "tokens[" + std::to_string(i) + "]";
      const Json& t = list[i];
      r.known(t, p, {"name", "token", "token_env", "token_file", "scopes"});
      TokenConfig tc;
      tc.name = t.contains("name") ? r.string(t["name"], p + ".name") : "token" + std::to_string(i);
      const int sources = static_cast<int>(t.contains("token")) + static_cast<int>(t.contains("token_env")) +
                          static_cast<int>(t.contains("token_file"));
      if (sources != 1) r.fail(p, "needs exactly one of token, token_env, token_file");
      if (t.contains("token")) {
        tc.secret = r.string(t["token"], p + ".token");
      } else if (t.contains("token_env")) {
        const std::string var = r.string(t["token_env"], p + ".token_env");
        const char* v = std::getenv(var.c_str());
        if (!v || !*v) r.fail(p + ".token_env", "environment variable " + var + " is not set");
        tc.secret = v;
      } else {
        const std::string f = resolve(r.string(t["token_file"], p + ".token_file"), base_dir);
        std::ifstream in(f);
        if (!in) r.fail(p + ".token_file", "cannot read " + f);
        std::getline(in, tc.secret);
        while (!tc.secret.empty() && (tc.secret.back() == '\r' || tc.secret.back() == ' ')) tc.secret.pop_back();
      }
      if (tc.secret.size() < 16) r.fail(p, "the token must have at least 16 characters");
      for (char ch : tc.secret)
        if (ch <= ' ' || ch > '~') r.fail(p, "the token must be printable ASCII without spaces");
      for (const auto& other : c.tokens) {
        if (other.name == tc.name) r.fail(p + ".name", "two tokens are named '" + tc.name + "'");
        if (other.secret == tc.secret) r.fail(p, "the same token appears twice");
      }
      if (!t.contains("scopes") || !t["scopes"].is_array() || t["scopes"].empty())
        r.fail(p + ".scopes", "must be a non-empty array of scopes (read, simulate, ingest, control, admin)");
      for (size_t k = 0; k < t["scopes"].size(); ++k) {
        const std::string sp = p + ".scopes[" + std::to_string(k) + "]";
        tc.scopes.insert(parse_scope(r.string(t["scopes"][k], sp), sp));
      }
      c.tokens.push_back(std::move(tc));
    }
  }
  if (root.contains("tls")) {
    const Json& t = root["tls"];
    r.known(t, "tls", {"cert", "key"});
    if (!t.contains("cert") || !t.contains("key")) r.fail("tls", "needs both cert and key (PEM files)");
    c.tls_cert = resolve(r.string(t["cert"], "tls.cert"), base_dir);
    c.tls_key = resolve(r.string(t["key"], "tls.key"), base_dir);
    if (!fs::is_regular_file(c.tls_cert)) r.fail("tls.cert", "file not found: " + c.tls_cert);
    if (!fs::is_regular_file(c.tls_key)) r.fail("tls.key", "file not found: " + c.tls_key);
  }
  if (root.contains("limits")) {
    const Json& l = root["limits"];
    r.known(l, "limits", {"max_body_mb", "max_sync_scenarios", "max_job_scenarios", "max_compute_s", "max_connections",
                          "idle_timeout_s", "header_timeout_s", "body_timeout_s", "io_timeout_s"});
    if (l.contains("max_connections")) c.max_connections = r.count(l["max_connections"], "limits.max_connections", 1, 1e6);
    if (l.contains("idle_timeout_s")) c.idle_timeout_s = r.number(l["idle_timeout_s"], "limits.idle_timeout_s", 0.1, 3600);
    if (l.contains("header_timeout_s")) c.header_timeout_s = r.number(l["header_timeout_s"], "limits.header_timeout_s", 0.1, 3600);
    if (l.contains("body_timeout_s")) c.body_timeout_s = r.number(l["body_timeout_s"], "limits.body_timeout_s", 0.1, 86400);
    if (l.contains("io_timeout_s")) c.io_timeout_s = r.number(l["io_timeout_s"], "limits.io_timeout_s", 0.1, 3600);
    if (l.contains("max_compute_s")) c.max_compute_s = r.number(l["max_compute_s"], "limits.max_compute_s", 1, 86400);
    if (l.contains("max_body_mb")) c.max_body_mb = r.count(l["max_body_mb"], "limits.max_body_mb", 1, 4096);
    if (l.contains("max_sync_scenarios"))
      c.max_sync_scenarios = r.count(l["max_sync_scenarios"], "limits.max_sync_scenarios", 1, 1e7);
    if (l.contains("max_job_scenarios"))
      c.max_job_scenarios = r.count(l["max_job_scenarios"], "limits.max_job_scenarios", 1, 1e9);
  }
  if (root.contains("batching")) {
    const Json& b = root["batching"];
    r.known(b, "batching", {"enabled", "max_batch", "max_queue_delay_ms"});
    if (b.contains("enabled")) c.batching = r.boolean(b["enabled"], "batching.enabled");
    if (b.contains("max_batch")) c.max_batch = r.count(b["max_batch"], "batching.max_batch", 1, 1e7);
    if (b.contains("max_queue_delay_ms"))
      c.max_queue_delay_ms = r.number(b["max_queue_delay_ms"], "batching.max_queue_delay_ms", 0, 10000);
  }
  if (root.contains("jobs")) {
    const Json& j = root["jobs"];
    r.known(j, "jobs", {"chunk", "fem_chunk"});
    if (j.contains("chunk")) c.job_chunk = r.count(j["chunk"], "jobs.chunk", 1, 1e7);
    if (j.contains("fem_chunk")) c.job_fem_chunk = r.count(j["fem_chunk"], "jobs.fem_chunk", 1, 1e7);
  }
  if (root.contains("twins")) {
    const Json& t = root["twins"];
    r.known(t, "twins", {"max_readings", "max_clock_skew_s", "members", "inflation", "drift", "outlier_gate", "silent_after_s",
                         "alert_probability", "alert_horizon_s", "drift_threshold"});
    if (t.contains("members")) c.members = static_cast<int>(r.count(t["members"], "twins.members", 2, 100000));
    if (t.contains("inflation")) c.inflation = r.number(t["inflation"], "twins.inflation", 1, 2);
    if (t.contains("drift")) c.drift = r.number(t["drift"], "twins.drift", 0, 10);
    if (t.contains("outlier_gate")) c.outlier_gate = r.number(t["outlier_gate"], "twins.outlier_gate", 1, 1e6);
    if (t.contains("silent_after_s")) c.silent_after_s = r.number(t["silent_after_s"], "twins.silent_after_s", 1, 1e9);
    if (t.contains("alert_probability"))
      c.alert_probability = r.number(t["alert_probability"], "twins.alert_probability", 0.001, 1);
    if (t.contains("alert_horizon_s")) c.alert_horizon_s = r.number(t["alert_horizon_s"], "twins.alert_horizon_s", 0, 1e7);
    if (t.contains("drift_threshold")) c.drift_threshold = r.number(t["drift_threshold"], "twins.drift_threshold", 1, 1e6);
    if (t.contains("max_readings")) c.max_readings = r.count(t["max_readings"], "twins.max_readings", 1, 1e7);
    if (t.contains("max_clock_skew_s")) c.max_clock_skew_s = r.number(t["max_clock_skew_s"], "twins.max_clock_skew_s", 0, 86400);
  }
  if (root.contains("http_threads")) c.http_threads = static_cast<int>(r.count(root["http_threads"], "http_threads", 1, 4096));
  return c;
}

ServerConfig load_server_config(const std::string& file) {
  std::ifstream in(file);
  DOPPEL_VERIFY(in.good(), "--config", "cannot read " + file);
  std::ostringstream s;
  s << in.rdbuf();
  return parse_server_config(s.str(), fs::path(file).parent_path().string(), file);
}

}  // namespace doppel::api
