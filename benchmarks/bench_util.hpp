// Small helpers shared by the benchmark commands.
#pragma once

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "spec/json_reader.hpp"

namespace doppel::bench {

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

inline std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

inline std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// Writes the results so far to `path` (when not empty) through a temporary file and a rename,
// so a run cut short (a time limit, a device failure) leaves the last complete document.
inline void write_results(const std::string& path, const nlohmann::ordered_json& doc) {
  if (path.empty()) return;
  const std::string tmp = path + ".partial";
  spec::write_text_file(tmp, doc.dump(2) + "\n", "--output");
  std::filesystem::rename(tmp, path);
}

}  // namespace doppel::bench
