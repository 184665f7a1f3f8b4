// Recommendations: the control values that keep every limit of the twin, over a forecast
// horizon and with a stated probability, at the lowest declared cost (Σ cost × value over the
// control parameters, twin.json `cost`). A random search over the controls' bounds (the current
// values included), each candidate judged by a forecast of the current ensemble with the
// controls held at the candidate (the same random drift for every candidate), then a second,
// narrower search around the best; infeasible everywhere, the candidate closest to feasible.
#pragma once

#include <functional>
#include <vector>

#include "twin/forecast.hpp"

namespace doppel::twin {

struct RecommendRequest {
  double horizon = 3600, step = 600;
  double probability = 0.95;   // each limit kept with at least this probability
  int candidates = 64;         // per search round (two rounds)
  unsigned long seed = 1;
  // Called before each candidate's forecast: throws to stop the search (a deadline, shutdown).
  std::function<void()> check;
  // Runs each candidate's forecast (the caller takes the finite-element lock around it, one
  // candidate at a time, so analyses are not held up for the whole search). Empty: run it.
  std::function<void(const std::function<void()>&)> run;
};

struct Candidate {
  std::vector<double> controls;     // values of the control parameters, in their order
  double cost = 0;
  double worst_exceedance = 0;      // largest crossing probability over the limits
  double worst_excess = 0;          // largest median overshoot beyond a limit, relative to it (0: none)
  bool feasible = false;
};

struct Recommendation {
  std::vector<size_t> controls;     // parameter indices of the controls
  Candidate best, current;
  Forecast forecast;                // under the recommended controls
  size_t evaluated = 0;
};

// InvalidInput (naming "controls" or "limits") when the twin has nothing to recommend.
void check_recommendable(const spec::TwinSpec& twin);
Recommendation recommend(const Estimator& estimator, const FemModel& model, const RecommendRequest& request);

}  // namespace doppel::twin
