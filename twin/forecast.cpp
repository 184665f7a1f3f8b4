#include "twin/forecast.hpp"

#include <algorithm>
#include <cmath>

namespace doppel::twin {

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

Forecast run_forecast(const Estimator& estimator, const FemModel& model, const ForecastRequest& request) {
  const auto& t = model.twin();
  Forecast f;
  for (double time = request.step; time <= request.horizon * (1 + 1e-12); time += request.step) f.times.push_back(time);
  f.outputs = request.outputs;
  if (f.outputs.empty())
    for (size_t o = 0; o < t.outputs.size(); ++o) f.outputs.push_back(o);
  const Eigen::Index n = estimator.unit_state().cols();
  const Eigen::Index steps = static_cast<Eigen::Index>(f.times.size());
  // Every member's parameters at every time, then their outputs along that path.
  std::vector<Eigen::MatrixXd> path;
  Eigen::MatrixXd z = estimator.unit_state();
  std::mt19937_64 rng(request.seed);
  double previous = 0;
  for (Eigen::Index k = 0; k < steps; ++k) {
    const double time = f.times[static_cast<size_t>(k)];
    estimator.drift(z, time - previous, rng);
    previous = time;
    Eigen::MatrixXd p = estimator.parameters_of(z);
    for (const auto& s : request.schedules) p.row(s.parameter).setConstant(s.at(time));
    path.push_back(std::move(p));
  }
  const EnsemblePrediction pred = estimator.predict_path(f.times, path);
  f.surrogate = pred.surrogate;
  f.fem = pred.fem;
  for (size_t o : f.outputs) {
    std::vector<double> p05, p50, p95;
    std::vector<std::vector<double>> by_time;
    for (Eigen::Index k = 0; k < steps; ++k) {
      std::vector<double> v(static_cast<size_t>(n));
      for (Eigen::Index j = 0; j < n; ++j) v[static_cast<size_t>(j)] = pred.outputs(static_cast<Eigen::Index>(o), k * n + j);
      p05.push_back(percentile(v, 0.05));
      p50.push_back(percentile(v, 0.50));
      p95.push_back(percentile(v, 0.95));
      by_time.push_back(std::move(v));
    }
    f.p05.push_back(p05);
    f.p50.push_back(p50);
    f.p95.push_back(p95);
    // Limits on this output: probability and expected time of the first crossing.
    for (const auto& limit : t.limits) {
      if (t.outputs[o].name != limit.output) continue;
      for (int side = 0; side < 2; ++side) {
        const std::optional<double>& bound = side == 0 ? limit.max : limit.min;
        if (!bound) continue;
        size_t crossing = 0;
        double time_sum = 0;
        for (Eigen::Index j = 0; j < n; ++j)
          for (Eigen::Index k = 0; k < steps; ++k) {
            const double v = by_time[static_cast<size_t>(k)][static_cast<size_t>(j)];
            if (side == 0 ? v > *bound : v < *bound) {
              ++crossing;
              time_sum += f.times[static_cast<size_t>(k)];
              break;
            }
          }
        Exceedance e;
        e.output = o;
        e.bound = side == 0 ? "max" : "min";
        e.limit = *bound;
        e.probability = static_cast<double>(crossing) / static_cast<double>(n);
        if (crossing) e.expected_time = time_sum / static_cast<double>(crossing);
        f.exceedance.push_back(e);
      }
    }
    f.members.push_back(std::move(by_time));
  }
  return f;
}

}  // namespace doppel::twin
