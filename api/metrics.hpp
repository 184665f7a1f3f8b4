// Prometheus metrics of the service (text exposition format 0.0.4): requests by route,
// method and status; request latency histograms by route; requests in flight; scenarios
// answered by fidelity; scenario batch sizes and requests merged per batch; queue waits; and
// gauges sampled at scrape time (queue depth, jobs by state, GPU memory) from a callback.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace doppel::api {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void observe(double v);
  // Lines `name_bucket{labels,le="..."}`, `name_sum{labels}`, `name_count{labels}`.
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  std::vector<unsigned long long> counts_;
  double sum_ = 0;
  unsigned long long count_ = 0;
};

// A label value in the Prometheus text format: backslash, double quote and newline escaped.
std::string label_value(const std::string& v);
// Standard process metrics from /proc (process_resident_memory_bytes, process_open_fds,
// process_cpu_seconds_total, process_start_time_seconds, process_threads).
void render_process_metrics(std::string& out);

class Metrics {
 public:
  void request(const std::string& route, const std::string& method, int status, double seconds);
  void scenarios(const std::string& fidelity, size_t count);
  // One device batch: its scenarios and the requests gathered into it.
  void batch(size_t scenarios, size_t requests = 1);
  void queue_wait(double seconds);
  void readings(size_t stored, size_t rejected);
  void alert(const std::string& event);
  void in_flight(int delta);
  // Appends gauge lines (with their HELP/TYPE) at each scrape.
  void set_gauges(std::function<void(std::string&)> gauges);
  std::string render() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, int>, unsigned long long> requests_;
  std::map<std::string, Histogram> latency_;
  std::map<std::string, unsigned long long> scenarios_;
  Histogram batch_sizes_{{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536}};
  Histogram batch_requests_{{1, 2, 4, 8, 16, 32, 64, 128, 256}};
  Histogram queue_wait_{{0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}};
  long in_flight_ = 0;
  unsigned long long readings_stored_ = 0, readings_rejected_ = 0;
  std::map<std::string, unsigned long long> alerts_;
  std::function<void(std::string&)> gauges_;
};

}  // namespace doppel::api
