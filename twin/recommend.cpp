#include "twin/recommend.hpp"

#include <algorithm>
#include <random>

#include "spec/errors.hpp"

namespace doppel::twin {

namespace {

// Whether a (cost, worst exceedance) candidate beats another: feasible before infeasible, then
// the lower cost; among infeasible ones the smaller worst exceedance.
// the lower cost; among infeasible ones the smaller worst crossing probability, then the
// smaller overshoot (probabilities saturate at 1 far from feasibility), then the cost.
bool better(const Candidate& a, const Candidate& b) {
  if (a.feasible != b.feasible) return a.feasible;
  if (a.feasible) return a.cost < b.cost;
  if (std::abs(a.worst_exceedance - b.worst_exceedance) > 1e-9) return a.worst_exceedance < b.worst_exceedance;
  if (std::abs(a.worst_excess - b.worst_excess) > 1e-12) return a.worst_excess < b.worst_excess;
  return a.cost < b.cost;
}

}  // namespace

void check_recommendable(const spec::TwinSpec& t) {
  bool controls = false;
  for (const auto& p : t.parameters) controls = controls || (p.role == spec::ParameterRole::control && p.max > p.min);
  DOPPEL_VERIFY(controls, "controls", "twin '" + t.name + "' has no control parameters to recommend");
  DOPPEL_VERIFY(!t.limits.empty(), "limits", "twin '" + t.name + "' has no limits to keep");
}

Recommendation recommend(const Estimator& estimator, const FemModel& model, const RecommendRequest& request) {
  const auto& t = model.twin();
  check_recommendable(t);
  Recommendation out;
  for (size_t k = 0; k < t.parameters.size(); ++k)
    if (t.parameters[k].role == spec::ParameterRole::control && t.parameters[k].max > t.parameters[k].min)
      out.controls.push_back(k);
  ForecastRequest fr;
  fr.horizon = request.horizon;
  fr.step = request.step;
  fr.seed = request.seed;  // common random numbers: every candidate sees the same drift
  for (const auto& l : t.limits)
    for (size_t o = 0; o < t.outputs.size(); ++o)
      if (t.outputs[o].name == l.output && std::find(fr.outputs.begin(), fr.outputs.end(), o) == fr.outputs.end())
        fr.outputs.push_back(o);
  const Eigen::MatrixXd now = estimator.parameters();
  auto judge = [&](const std::vector<double>& controls, Forecast* keep) {
    if (request.check) request.check();
    ForecastRequest r = fr;
    for (size_t i = 0; i < out.controls.size(); ++i) {
      spec::Schedule s;
      s.parameter = static_cast<int>(out.controls[i]);
      s.points = {{0.0, controls[i]}};
      r.schedules.push_back(s);
    }
    Forecast f;
    if (request.run) request.run([&] { f = run_forecast(estimator, model, r); });
    else f = run_forecast(estimator, model, r);
    Candidate c;
    c.controls = controls;
    for (size_t i = 0; i < out.controls.size(); ++i) c.cost += t.parameters[out.controls[i]].cost * controls[i];
    for (const auto& e : f.exceedance) {
      c.worst_exceedance = std::max(c.worst_exceedance, e.probability);
      // The median over members of the largest overshoot over the horizon, relative to the limit.
      const size_t i = static_cast<size_t>(std::find(f.outputs.begin(), f.outputs.end(), e.output) - f.outputs.begin());
      std::vector<double> overshoot;
      const size_t members = f.members[i].empty() ? 0 : f.members[i][0].size();
      for (size_t j = 0; j < members; ++j) {
        double worst = -1e300;
        for (const auto& at_time : f.members[i])
          worst = std::max(worst, e.bound == "max" ? at_time[j] - e.limit : e.limit - at_time[j]);
        overshoot.push_back(std::max(0.0, worst) / std::max(std::abs(e.limit), 1e-12));
      }
      c.worst_excess = std::max(c.worst_excess, percentile(overshoot, 0.5));
    }
    c.feasible = c.worst_exceedance <= 1 - request.probability + 1e-12;
    ++out.evaluated;
    if (keep) *keep = std::move(f);
    return c;
  };
  std::vector<double> current;
  for (size_t k : out.controls) current.push_back(now(static_cast<Eigen::Index>(k), 0));
  out.current = judge(current, nullptr);
  out.best = out.current;
  std::mt19937_64 rng(request.seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int round = 0; round < 2; ++round) {
    // Round 0: the whole box; round 1: a box of a fifth of the ranges around the best so far.
    const std::vector<double> centre = out.best.controls;
    for (int n = 0; n < request.candidates; ++n) {
      std::vector<double> c(out.controls.size());
      for (size_t i = 0; i < c.size(); ++i) {
        const auto& p = t.parameters[out.controls[i]];
        const double lo = round == 0 ? p.min : std::max(p.min, centre[i] - 0.1 * (p.max - p.min));
        const double hi = round == 0 ? p.max : std::min(p.max, centre[i] + 0.1 * (p.max - p.min));
        c[i] = lo + (hi - lo) * unit(rng);
      }
      const Candidate cand = judge(c, nullptr);
      if (better(cand, out.best)) out.best = cand;
    }
  }
  judge(out.best.controls, &out.forecast);
  return out;
}

}  // namespace doppel::twin
