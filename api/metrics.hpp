// Prometheus metrics of the service (text exposition format 0.0.4): requests by route,
// method and status; request latency histograms by route; requests in flight; scenarios
// answered by fidelity; scenario batch sizes.
#pragma once

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

class Metrics {
 public:
  void request(const std::string& route, const std::string& method, int status, double seconds);
  void scenarios(const std::string& fidelity, size_t count);
  void batch(size_t scenarios);
  void in_flight(int delta);
  std::string render() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, int>, unsigned long long> requests_;
  std::map<std::string, Histogram> latency_;
  std::map<std::string, unsigned long long> scenarios_;
  Histogram batch_sizes_{{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536}};
  long in_flight_ = 0;
};

}  // namespace doppel::api
