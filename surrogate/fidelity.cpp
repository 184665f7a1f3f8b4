#include "surrogate/fidelity.hpp"

#include <algorithm>

#include <cmath>

#include "spec/errors.hpp"

namespace doppel {

Fidelity parse_fidelity(const std::string& text, const std::string& path) {
  if (text == "fem") return Fidelity::fem;
  if (text == "surrogate") return Fidelity::surrogate;
  if (text == "auto") return Fidelity::automatic;
  throw InvalidInput(path, "must be fem, surrogate or auto (got \"" + text + "\")");
}

const char* fidelity_name(Fidelity f) {
  return f == Fidelity::fem ? "fem" : f == Fidelity::surrogate ? "surrogate" : "auto";
}

std::vector<double> parse_output_tolerances(const spec::TwinSpec& twin,
                                            const std::vector<std::pair<std::string, double>>& tolerances,
                                            const std::string& path) {
  std::vector<double> out(twin.outputs.size(), 0.0);
  for (const auto& [name, value] : tolerances) {
    size_t k = 0;
    while (k < twin.outputs.size() && twin.outputs[k].name != name) ++k;
    std::string names;
    for (const auto& o : twin.outputs) names += (names.empty() ? "" : ", ") + o.name;
    DOPPEL_VERIFY(k < twin.outputs.size(), path + "." + name,
                  "twin '" + twin.name + "' has no output '" + name + "' (outputs: " + (names.empty() ? "none" : names) + ")");
    DOPPEL_VERIFY(std::isfinite(value) && value > 0, path + "." + name, "must be a positive number (in the output's units)");
    out[k] = value;
  }
  return out;
}

namespace {

// Every output's estimate (over every time) within its tolerance (0: no tolerance).
bool outputs_within(const std::vector<std::vector<double>>& estimates, const std::vector<double>& tolerances) {
  for (const auto& at : estimates)
    for (size_t k = 0; k < tolerances.size() && k < at.size(); ++k)
      if (tolerances[k] > 0 && !(at[k] <= tolerances[k])) return false;
  return true;
}

}  // namespace

AnswerSet answer_scenarios(const FemModel& model, const Surrogate* sur, const std::vector<spec::Scenario>& scenarios,
                           const AnswerOptions& options) {
  DOPPEL_VERIFY(options.fidelity == Fidelity::fem || sur, "fidelity",
                std::string(fidelity_name(options.fidelity)) + " needs a surrogate bundle");
  DOPPEL_VERIFY(options.tolerance > 0 && std::isfinite(options.tolerance), "tolerance", "must be a positive number");
  const bool transient = model.transient();
  const std::vector<double>& tol_k = options.output_tolerances;
  const bool per_output = std::any_of(tol_k.begin(), tol_k.end(), [](double t) { return t > 0; });
  DOPPEL_VERIFY(!per_output || tol_k.size() == model.twin().outputs.size(), "output_tolerances",
                "needs one entry per output");
  DOPPEL_VERIFY(!per_output || options.fidelity == Fidelity::automatic, "output_tolerances", "apply to fidelity auto only");
  DOPPEL_VERIFY(!per_output || sur->has_output_estimates(), "output_tolerances",
                "the bundle has no per-output error estimates (it was trained before they existed): retrain it with doppel train");
  AnswerSet set;
  if (transient) set.times = model.twin().analysis.output_times;
  set.answers.resize(scenarios.size());
  std::vector<size_t> fem;
  if (options.fidelity == Fidelity::fem) {
    for (size_t s = 0; s < scenarios.size(); ++s) fem.push_back(s);
  } else if (transient) {
    const auto tb = sur->evaluate_transient(scenarios);
    for (size_t s = 0; s < scenarios.size(); ++s) {
      ScenarioAnswer& a = set.answers[s];
      const bool field_ok = options.fidelity == Fidelity::surrogate || tb[s].max_estimate <= options.tolerance;
      const bool outputs_ok = options.fidelity == Fidelity::surrogate || outputs_within(tb[s].output_estimates, tol_k);
      if (!tb[s].in_bounds || !field_ok || !outputs_ok) {
        a.fallback = !tb[s].in_bounds ? "outside_training_bounds" : !field_ok ? "estimate_above_tolerance" : "output_estimate_above_tolerance";
        a.surrogate_estimate = tb[s].max_estimate;
        fem.push_back(s);
        continue;
      }
      a.surrogate = true;
      a.tier = "reduced";
      a.outputs = tb[s].outputs;
      a.error_estimate = tb[s].max_estimate;
      a.error_estimates = tb[s].estimate;
      a.output_estimates = tb[s].output_estimates;
      if (s == 0 && options.first_fields) {  // fields of scenario 0 only, at the last output time
        const auto f = sur->evaluate_transient({scenarios[0]}, true);
        FieldSnapshot snap;
        snap.parameters = scenarios[0].parameters_at(set.times.back());
        snap.time = set.times.back();
        snap.T.assign(f[0].T.back().data(), f[0].T.back().data() + f[0].T.back().size());
        if (!f[0].u.empty()) snap.u.assign(f[0].u.back().data(), f[0].u.back().data() + f[0].u.back().size());
        set.first_fields = std::move(snap);
      }
    }
  } else {
    std::vector<Params> params;
    for (size_t s = 0; s < scenarios.size(); ++s) {
      DOPPEL_VERIFY(scenarios[s].schedules.empty(), "scenarios[" + std::to_string(s) + "].schedules",
                    "schedules apply to transient analyses only");
      params.push_back(scenarios[s].parameters);
    }
    const SurrogateBatch b = sur->evaluate(params);
    const size_t O = b.outputs_per_scenario;
    // Whether the network's answer s meets both tolerances (auto), and a tier-2 answer.
    auto network_ok = [&](size_t s) {
      return b.estimate[s] <= options.tolerance && (!per_output || outputs_within({b.output_estimates(s)}, tol_k));
    };
    auto reduced_ok = [&](const Surrogate::ReducedAnswer& r) {
      return r.estimate <= options.tolerance && (!per_output || outputs_within({r.output_estimates}, tol_k));
    };
    // The network's answers above the tolerance get the second tier (the Galerkin solve in the
    // reduced space): under auto where its estimate is within the tolerance (FEM after it);
    // under surrogate, which never runs FEM in bounds, where its estimate is below the network's.
    std::vector<size_t> second;
    std::vector<Params> second_params;
    if (sur->has_reduced_tier())
      for (size_t s = 0; s < scenarios.size(); ++s)
        if (b.in_bounds[s] && !network_ok(s)) {
          second.push_back(s);
          second_params.push_back(params[s]);
        }
    const auto reduced = second.empty() ? std::vector<Surrogate::ReducedAnswer>{} : sur->evaluate_reduced(second_params);
    std::vector<const Surrogate::ReducedAnswer*> tier2(scenarios.size(), nullptr);
    for (size_t i = 0; i < second.size(); ++i)
      if (options.fidelity == Fidelity::automatic ? reduced_ok(reduced[i]) : reduced[i].estimate < b.estimate[second[i]])
        tier2[second[i]] = &reduced[i];
    for (size_t s = 0; s < scenarios.size(); ++s) {
      ScenarioAnswer& a = set.answers[s];
      if (tier2[s]) {
        a.surrogate = true;
        a.tier = "reduced";
        a.outputs.assign(1, tier2[s]->outputs);
        a.error_estimate = tier2[s]->estimate;
        if (!tier2[s]->output_estimates.empty()) a.output_estimates.assign(1, tier2[s]->output_estimates);
        a.surrogate_estimate = b.estimate[s];  // the network's, which sent it here
        continue;
      }
      const bool field_ok = options.fidelity == Fidelity::surrogate || b.estimate[s] <= options.tolerance;
      const bool ok = b.in_bounds[s] && (options.fidelity == Fidelity::surrogate || network_ok(s));
      if (!ok) {
        a.fallback = !b.in_bounds[s] ? "outside_training_bounds" : !field_ok ? "estimate_above_tolerance" : "output_estimate_above_tolerance";
        a.surrogate_estimate = b.estimate[s];
        fem.push_back(s);
        continue;
      }
      a.surrogate = true;
      a.tier = "network";
      a.outputs.assign(1, std::vector<double>(b.outputs.begin() + static_cast<long>(s * O), b.outputs.begin() + static_cast<long>((s + 1) * O)));
      a.spread.assign(b.spread.begin() + static_cast<long>(s * O), b.spread.begin() + static_cast<long>((s + 1) * O));
      a.error_estimate = b.estimate[s];
      if (!b.output_estimate.empty()) a.output_estimates.assign(1, b.output_estimates(s));
    }
    // One fidelity, and one tier: a batch mixing network and reduced answers is answered by the
    // reduced tier throughout (under auto by FEM, below, when that exceeds the tolerance somewhere;
    // under surrogate the scenarios outside the training bounds stay FEM answers, as always).
    const bool mixed = std::any_of(set.answers.begin(), set.answers.end(), [](const ScenarioAnswer& a) { return a.tier == "reduced"; }) &&
                       std::any_of(set.answers.begin(), set.answers.end(), [](const ScenarioAnswer& a) { return a.tier == "network"; });
    if (options.one_fidelity && (fem.empty() || options.fidelity == Fidelity::surrogate) && mixed) {
      const auto all = sur->evaluate_reduced(params);
      for (size_t s = 0; s < scenarios.size(); ++s) {
        ScenarioAnswer& a = set.answers[s];
        if (a.tier != "network") continue;
        if (options.fidelity == Fidelity::automatic && !reduced_ok(all[s])) {
          fem.push_back(s);  // one scenario past both tiers: FEM for the batch (below)
          break;
        }
        a.tier = "reduced";
        a.outputs.assign(1, all[s].outputs);
        a.spread.clear();
        a.surrogate_estimate = a.error_estimate;
        a.error_estimate = all[s].estimate;
        a.output_estimates.clear();
        if (!all[s].output_estimates.empty()) a.output_estimates.assign(1, all[s].output_estimates);
      }
    }
    if (options.first_fields && set.answers[0].tier == "network") {
      const SurrogateBatch f = sur->evaluate({params[0]}, true);
      FieldSnapshot snap;
      snap.parameters = params[0];
      snap.T = f.T;
      snap.u = f.u;
      set.first_fields = std::move(snap);
    } else if (options.first_fields && set.answers[0].tier == "reduced") {
      const auto f = sur->evaluate_reduced({params[0]}, true);
      FieldSnapshot snap;
      snap.parameters = params[0];
      (model.thermal() ? snap.T : snap.u) = f[0].field;
      if (!f[0].displacement.empty()) snap.u = f[0].displacement;
      set.first_fields = std::move(snap);
    }
  }
  if (options.one_fidelity && options.fidelity == Fidelity::automatic && !fem.empty() && fem.size() < scenarios.size()) {
    // One scenario needs FEM: so does the batch (the surrogate's answers are dropped).
    for (size_t s = 0; s < scenarios.size(); ++s) {
      ScenarioAnswer& a = set.answers[s];
      if (!a.surrogate) continue;
      const double estimate = a.error_estimate;
      a = ScenarioAnswer{};
      a.fallback = "one_fidelity";
      a.surrogate_estimate = estimate;
    }
    set.first_fields.reset();
    fem.resize(scenarios.size());
    for (size_t s = 0; s < scenarios.size(); ++s) fem[s] = s;
  }
  if (!fem.empty()) {
    std::vector<spec::Scenario> part;
    for (size_t s : fem) part.push_back(scenarios[s]);
    BatchOptions batch = options.batch;
    batch.keep_first_fields = options.first_fields && fem.front() == 0;
    BatchResult r = solve_batch(model, part, batch);
    set.factorizations = r.factorizations;
    set.operator_bytes = r.operator_bytes;
    set.preconditioner_bytes = r.preconditioner_bytes;
    for (size_t i = 0; i < fem.size(); ++i) {
      ScenarioAnswer& a = set.answers[fem[i]];
      a.surrogate = false;
      a.outputs = r.scenarios[i].outputs;
      a.error_estimate = r.scenarios[i].residual;
      a.solver = r.scenarios[i];
    }
    if (batch.keep_first_fields && r.first_fields) set.first_fields = std::move(r.first_fields);
  }
  set.fem_answers = fem.size();
  set.surrogate_answers = scenarios.size() - fem.size();
  return set;
}

}  // namespace doppel
