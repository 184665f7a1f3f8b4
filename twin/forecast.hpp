// Forecasts: the current ensemble run forward. Between forecast times each member's estimated
// parameters drift as in the estimator (a random walk), scheduled parameters follow their
// schedules (times in seconds from the forecast's start), and every member's outputs at every
// time are predicted in one batch (surrogate where it may answer, FEM otherwise). Each output
// becomes its 5/50/95 percentiles over time; each output with a limit gets the probability of
// crossing it within the horizon and the expected time of the first crossing.
#pragma once

#include <optional>
#include <vector>

#include "twin/estimator.hpp"

namespace doppel::twin {

struct ForecastRequest {
  double horizon = 3600, step = 60;   // seconds
  std::vector<spec::Schedule> schedules;  // times relative to the start
  std::vector<size_t> outputs;        // indices (empty: all)
  unsigned long seed = 1;
};

struct Exceedance {
  size_t output = 0;
  double probability = 0;                // members crossing the limit within the horizon
  std::optional<double> expected_time;   // mean first-crossing time of those members (s)
  std::string bound;                     // "max" | "min"
  double limit = 0;
};

struct Forecast {
  std::vector<double> times;  // seconds from the start: step, 2 step, ..., horizon
  // [output][time]
  std::vector<std::vector<double>> p05, p50, p95;
  std::vector<size_t> outputs;
  std::vector<Exceedance> exceedance;  // one per requested output with a limit
  size_t surrogate = 0, fem = 0;
  // Every member's outputs: [output][time][member] (recommendations use them).
  std::vector<std::vector<std::vector<double>>> members;
};

Forecast run_forecast(const Estimator& estimator, const FemModel& model, const ForecastRequest& request);

// Linear-interpolation percentile (q in [0, 1]) of unsorted values.
double percentile(std::vector<double> values, double q);

}  // namespace doppel::twin
