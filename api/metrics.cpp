#include "api/metrics.hpp"

#include <cmath>
#include <sstream>
#include <vector>
#include <unistd.h>
#include <iterator>
#include <filesystem>
#include <fstream>

namespace doppel::api {

namespace {
std::string number(double v) {
  std::ostringstream s;
  s.precision(12);
  s << v;
  return s.str();
}
std::string escape(const std::string& v);
}  // namespace

std::string label_value(const std::string& v) { return escape(v); }

void render_process_metrics(std::string& out) {
  // /proc/self/stat: utime and stime (fields 14, 15, clock ticks), num_threads (20), starttime (22).
  std::ifstream stat("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return;
  std::istringstream rest(text.substr(close + 2));
  std::vector<std::string> f((std::istream_iterator<std::string>(rest)), std::istream_iterator<std::string>());
  if (f.size() < 20) return;  // f[0] is field 3
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double cpu = (std::stod(f[11]) + std::stod(f[12])) / tick;
  double boot = 0;
  std::ifstream s("/proc/stat");
  for (std::string line; std::getline(s, line);)
    if (line.rfind("btime ", 0) == 0) boot = std::stod(line.substr(6));
  const double start = boot + std::stod(f[19]) / tick;
  long rss_pages = 0;
  std::ifstream statm("/proc/self/statm");
  long size_pages = 0;
  statm >> size_pages >> rss_pages;
  size_t fds = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec); !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) ++fds;
  out += "# HELP process_cpu_seconds_total User and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\n";
  out += "process_cpu_seconds_total " + number(cpu) + "\n";
  out += "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\n";
  out += "process_resident_memory_bytes " + std::to_string(rss_pages * ::sysconf(_SC_PAGESIZE)) + "\n";
  out += "# HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\n";
  out += "process_open_fds " + std::to_string(fds) + "\n";
  out += "# HELP process_threads Threads of the process.\n# TYPE process_threads gauge\n";
  out += "process_threads " + f[17] + "\n";
  out += "# HELP process_start_time_seconds Start time of the process since the Unix epoch in seconds.\n# TYPE process_start_time_seconds gauge\n";
  out += "process_start_time_seconds " + number(start) + "\n";
}

namespace {
std::string escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}
}  // namespace

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  const std::string sep = labels.empty() ? "" : ",";
  unsigned long long cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += name + "_bucket{" + labels + sep + "le=\"" + number(bounds_[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket{" + labels + sep + "le=\"+Inf\"} " + std::to_string(count_) + "\n";
  const std::string l = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + l + " " + number(sum_) + "\n";
  out += name + "_count" + l + " " + std::to_string(count_) + "\n";
}

void Metrics::request(const std::string& route, const std::string& method, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{route, method, status}];
  auto it = latency_.find(route);
  if (it == latency_.end())
    it = latency_.emplace(route, Histogram({0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10})).first;
  it->second.observe(seconds);
}

void Metrics::scenarios(const std::string& fidelity, size_t count) {
  std::lock_guard<std::mutex> lock(mutex_);
  scenarios_[fidelity] += count;
}

void Metrics::batch(size_t scenarios, size_t requests) {
  std::lock_guard<std::mutex> lock(mutex_);
  batch_sizes_.observe(static_cast<double>(scenarios));
  batch_requests_.observe(static_cast<double>(requests));
}

void Metrics::queue_wait(double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  queue_wait_.observe(seconds);
}

void Metrics::readings(size_t stored, size_t rejected) {
  std::lock_guard<std::mutex> lock(mutex_);
  readings_stored_ += stored;
  readings_rejected_ += rejected;
}

void Metrics::alert(const std::string& event) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++alerts_[event];
}

void Metrics::set_gauges(std::function<void(std::string&)> gauges) {
  std::lock_guard<std::mutex> lock(mutex_);
  gauges_ = std::move(gauges);
}

void Metrics::in_flight(int delta) {
  std::lock_guard<std::mutex> lock(mutex_);
  in_flight_ += delta;
}

std::string Metrics::render() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  out += "# HELP doppel_http_requests_total HTTP requests by route template, method and status.\n";
  out += "# TYPE doppel_http_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    out += "doppel_http_requests_total{route=\"" + escape(std::get<0>(key)) + "\",method=\"" + std::get<1>(key) +
           "\",status=\"" + std::to_string(std::get<2>(key)) + "\"} " + std::to_string(n) + "\n";
  out += "# HELP doppel_http_request_duration_seconds Request latency by route template.\n";
  out += "# TYPE doppel_http_request_duration_seconds histogram\n";
  for (const auto& [route, h] : latency_) h.render(out, "doppel_http_request_duration_seconds", "route=\"" + escape(route) + "\"");
  out += "# HELP doppel_http_requests_in_flight Requests being handled now.\n";
  out += "# TYPE doppel_http_requests_in_flight gauge\n";
  out += "doppel_http_requests_in_flight " + std::to_string(in_flight_) + "\n";
  out += "# HELP doppel_scenarios_total Scenarios answered, by the fidelity that answered them.\n";
  out += "# TYPE doppel_scenarios_total counter\n";
  for (const char* f : {"surrogate", "fem"}) {
    const auto it = scenarios_.find(f);
    out += std::string("doppel_scenarios_total{fidelity=\"") + f + "\"} " + std::to_string(it == scenarios_.end() ? 0 : it->second) + "\n";
  }
  out += "# HELP doppel_scenario_batch_size Scenarios per answered batch.\n";
  out += "# TYPE doppel_scenario_batch_size histogram\n";
  batch_sizes_.render(out, "doppel_scenario_batch_size", "");
  out += "# HELP doppel_batch_requests Requests gathered into one device batch.\n";
  out += "# TYPE doppel_batch_requests histogram\n";
  batch_requests_.render(out, "doppel_batch_requests", "");
  out += "# HELP doppel_queue_wait_seconds Time a request waited in its twin's queue before its batch ran.\n";
  out += "# TYPE doppel_queue_wait_seconds histogram\n";
  queue_wait_.render(out, "doppel_queue_wait_seconds", "");
  out += "# HELP doppel_readings_total Sensor readings received: stored (new) or rejected.\n";
  out += "# TYPE doppel_readings_total counter\n";
  out += "doppel_readings_total{result=\"stored\"} " + std::to_string(readings_stored_) + "\n";
  out += "doppel_readings_total{result=\"rejected\"} " + std::to_string(readings_rejected_) + "\n";
  out += "# HELP doppel_alerts_total Alert events: raised, updated, cleared.\n";
  out += "# TYPE doppel_alerts_total counter\n";
  for (const char* ev : {"raised", "updated", "cleared"}) {
    const auto it = alerts_.find(ev);
    out += std::string("doppel_alerts_total{event=\"") + ev + "\"} " + std::to_string(it == alerts_.end() ? 0 : it->second) + "\n";
  }
  if (gauges_) gauges_(out);
  return out;
}

}  // namespace doppel::api
