#include "api/answer_format.hpp"

#include <cmath>

namespace doppel::api {
namespace {
nlohmann::ordered_json number(double v) {
  // JSON has no NaN/Inf; they cannot occur for a converged solve, but never emit invalid JSON.
  return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(nullptr);
}
}  // namespace

nlohmann::ordered_json answers_json(const FemModel& model, const std::vector<spec::Scenario>& scenarios,
                                    const AnswerSet& set, const std::vector<size_t>& selected) {
  const auto& twin = model.twin();
  const bool transient = twin.analysis.transient;
  std::vector<size_t> which = selected;
  if (which.empty())
    for (size_t o = 0; o < twin.outputs.size(); ++o) which.push_back(o);
  nlohmann::ordered_json doc;
  doc["twin"] = twin.name;
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  auto per_output = [&](const std::vector<std::vector<double>>& values) {
    nlohmann::ordered_json outs = nlohmann::ordered_json::object();
    for (size_t o : which) {
      if (transient) {
        nlohmann::ordered_json series = nlohmann::ordered_json::array();
        for (const auto& at_time : values) series.push_back(number(at_time[o]));
        outs[twin.outputs[o].name] = series;
      } else {
        outs[twin.outputs[o].name] = number(values[0][o]);
      }
    }
    return outs;
  };
  for (size_t s = 0; s < scenarios.size(); ++s) {
    const ScenarioAnswer& a = set.answers[s];
    nlohmann::ordered_json item;
    item["id"] = scenarios[s].id;
    nlohmann::ordered_json params = nlohmann::ordered_json::object();
    for (size_t k = 0; k < twin.parameters.size(); ++k) params[twin.parameters[k].name] = scenarios[s].parameters[k];
    item["parameters"] = params;
    item["outputs"] = per_output(a.outputs);
    item["fidelity"] = a.surrogate ? "surrogate" : "fem";
    item["tier"] = a.tier;
    item["error_estimate"] = number(a.error_estimate);
    if (!a.error_estimates.empty()) {
      nlohmann::ordered_json series = nlohmann::ordered_json::array();
      for (double e : a.error_estimates) series.push_back(number(e));
      item["error_estimates"] = series;  // per output time; error_estimate is their maximum
    }
    if (!a.output_estimates.empty()) item["output_estimates"] = per_output(a.output_estimates);  // in the outputs' units
    if (!a.spread.empty()) {
      nlohmann::ordered_json spread = nlohmann::ordered_json::object();
      for (size_t o : which) spread[twin.outputs[o].name] = number(a.spread[o]);
      item["spread"] = spread;
    }
    if (!a.fallback.empty()) item["fallback"] = a.fallback;
    if (a.surrogate_estimate) item["surrogate_estimate"] = number(*a.surrogate_estimate);
    if (a.solver)
      item["solver"] = {{"method", a.solver->method}, {"iterations", a.solver->iterations}, {"residual", a.solver->residual}};
    list.push_back(item);
  }
  doc["scenarios"] = list;
  doc["times"] = transient ? nlohmann::ordered_json(set.times) : nlohmann::ordered_json(nullptr);
  return doc;
}

}  // namespace doppel::api
