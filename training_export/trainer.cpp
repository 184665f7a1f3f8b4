#include "training_export/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <numeric>
#include <random>
#include <sstream>

#include "kernels/fem/outputs.hpp"
#include "kernels/host/parallel.hpp"
#include "spec/errors.hpp"
#include "surrogate/galerkin.hpp"
#include "surrogate/output_map.hpp"
#include "surrogate/reduced_space.hpp"

namespace doppel {

using Json = nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

Json stats(std::vector<double> v) {
  if (v.empty()) return Json::object();
  std::sort(v.begin(), v.end());
  const double mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  const size_t i95 = static_cast<size_t>(std::ceil(0.95 * static_cast<double>(v.size()))) - 1;
  return {{"mean", mean}, {"median", v[v.size() / 2]}, {"p95", v[std::min(i95, v.size() - 1)]}, {"max", v.back()}};
}

// Scenarios per solve chunk: the backend's own choice (wide on a GPU), held to about 256 MB of
// per-scenario fields in flight.
size_t chunk_for(size_t backend_chunk, size_t doubles_per_scenario) {
  const size_t by_memory = (size_t{256} << 20) / (8 * std::max<size_t>(1, doubles_per_scenario));
  return std::max<size_t>(1, std::min(backend_chunk, std::max<size_t>(16, by_memory)));
}

// Absolute and relative (where the reference is not zero) errors of answers.
Json error_stats(const std::vector<double>& ref, const std::vector<double>& got) {
  std::vector<double> a, r;
  for (size_t i = 0; i < ref.size(); ++i) {
    a.push_back(std::abs(got[i] - ref[i]));
    if (std::abs(ref[i]) > 0) r.push_back(std::abs(got[i] - ref[i]) / std::abs(ref[i]));
  }
  return {{"absolute", stats(a)}, {"relative", stats(r)}};
}

// The error estimate against the true error: how often it bounds it, effectivity, estimates.
Json estimate_stats(const std::vector<double>& truth, const std::vector<double>& estimate) {
  std::vector<double> eff;
  size_t bounded = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    if (estimate[i] >= truth[i]) ++bounded;
    if (truth[i] > 0) eff.push_back(estimate[i] / truth[i]);
  }
  return {{"bounds_true_error_fraction", truth.empty() ? 0.0 : static_cast<double>(bounded) / static_cast<double>(truth.size())},
          {"pairs", truth.size()},
          {"effectivity", stats(eff)},
          {"estimate", stats(estimate)}};
}

// validation.json's summary from its sections.
Json summary(size_t scenarios, const Json& field, const Json& outputs, const Json& estimate) {
  double worst = 0;
  for (const auto& [name, o] : outputs.items())
    if (!o["relative"].empty()) worst = std::max(worst, o["relative"]["p95"].get<double>());
  Json s = {{"scenarios", scenarios},
            {"field_relative_l2_p95", field.value("p95", 0.0)},
            {"worst_output_relative_p95", worst},
            {"estimate_bounds_fraction", estimate["bounds_true_error_fraction"]},
            {"estimate_effectivity_mean", estimate["effectivity"].value("mean", 0.0)}};
  // Per-output estimates: the worst output's coverage.
  double covered = 2.0;
  for (const auto& [name, o] : outputs.items())
    if (o.contains("estimate")) covered = std::min(covered, o["estimate"]["bounds_true_error_fraction"].get<double>());
  if (covered <= 1.0) s["output_estimate_bounds_fraction_min"] = covered;
  return s;
}

bool is_prime(size_t n) {
  for (size_t d = 2; d * d <= n; ++d)
    if (n % d == 0) return false;
  return n >= 2;
}

std::string fmt(double v, int digits = 3) {
  std::ostringstream s;
  s.precision(digits);
  s << v;
  return s.str();
}

}  // namespace

std::vector<std::vector<double>> halton(size_t count, size_t dim, uint64_t seed) {
  std::vector<size_t> primes;
  for (size_t n = 2; primes.size() < dim; ++n)
    if (is_prime(n)) primes.push_back(n);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> shift(dim);
  for (double& s : shift) s = u(rng);
  std::vector<std::vector<double>> pts(count, std::vector<double>(dim));
  for (size_t i = 0; i < count; ++i) {
    for (size_t d = 0; d < dim; ++d) {
      double f = 1.0, r = 0.0;
      for (size_t k = i; k > 0; k /= primes[d]) {
        f /= static_cast<double>(primes[d]);
        r += f * static_cast<double>(k % primes[d]);
      }
      pts[i][d] = std::fmod(r + shift[d], 1.0);
    }
  }
  return pts;
}

// The steady reduced tier's answers to the same test solves: field and output errors, and how
// often its own estimates bounded them.
Json validate_reduced_tier(const Surrogate& sur, const std::vector<Params>& params,
                           const std::vector<std::vector<double>>& ref_outputs,
                           const std::vector<std::vector<double>>& ref_T,
                           const std::vector<std::vector<double>>& ref_u) {
  const FemModel& model = sur.model();
  const auto red = sur.evaluate_reduced(params, true);
  const size_t S = params.size(), O = model.twin().outputs.size();
  std::vector<double> truth(S), estimate(S);
  parallel_for(S, [&](size_t s) {
    truth[s] = model.thermal() ? sur.relative_l2(ref_T[s].data(), red[s].field.data(), true)
                               : sur.relative_l2(ref_u[s].data(), red[s].field.data(), false);
    estimate[s] = red[s].estimate;
  });
  Json v;
  v["fields"] = {{model.thermal() ? "temperature" : "displacement", {{"relative_l2", stats(truth)}}}};
  Json outs = Json::object();
  for (size_t k = 0; k < O; ++k) {
    std::vector<double> ref, got, err, est;
    for (size_t s = 0; s < S; ++s) {
      ref.push_back(ref_outputs[s][k]);
      got.push_back(red[s].outputs[k]);
      if (!red[s].output_estimates.empty()) {
        err.push_back(std::abs(got.back() - ref.back()));
        est.push_back(red[s].output_estimates[k]);
      }
    }
    Json o = error_stats(ref, got);
    if (!est.empty()) o["estimate"] = estimate_stats(err, est);
    outs[model.twin().outputs[k].name] = o;
  }
  v["outputs"] = outs;
  v["error_estimate"] = estimate_stats(truth, estimate);
  v["error_estimate"]["calibration"] = sur.parts().reduced_calibration;
  return v;
}

Json validate_surrogate(const Surrogate& sur, const std::vector<Params>& params,
                        const std::vector<std::vector<double>>& ref_outputs,
                        const std::vector<std::vector<double>>& ref_T,
                        const std::vector<std::vector<double>>& ref_u) {
  const FemModel& model = sur.model();
  const SurrogateBatch b = sur.evaluate(params, true);
  const size_t S = params.size(), O = b.outputs_per_scenario;
  const size_t nT = model.thermal() ? model.mesh().num_nodes() : 0;
  const size_t nu = model.mechanical() ? model.mesh().num_nodes() * static_cast<size_t>(model.mesh().dim) : 0;
  std::vector<double> eT(S, 0.0), eu(S, 0.0);
  parallel_for(S, [&](size_t s) {
    if (nT) eT[s] = sur.relative_l2(ref_T[s].data(), &b.T[s * nT], true);
    if (nu) eu[s] = sur.relative_l2(ref_u[s].data(), &b.u[s * nu], false);
  });
  Json v;
  v["scenarios"] = S;
  Json fields = Json::object();
  if (nT) fields["temperature"] = {{"relative_l2", stats(eT)}};
  if (nu) fields["displacement"] = {{"relative_l2", stats(eu)}};
  v["fields"] = fields;
  Json outs = Json::object();
  for (size_t k = 0; k < O; ++k) {
    std::vector<double> ref, got, spread;
    for (size_t s = 0; s < S; ++s) {
      ref.push_back(ref_outputs[s][k]);
      got.push_back(b.output(s, k));
      spread.push_back(b.spread[s * O + k]);
    }
    Json o = error_stats(ref, got);
    o["ensemble_spread"] = stats(spread);
    if (sur.has_output_estimates()) {
      std::vector<double> truth, estimate;
      for (size_t s = 0; s < S; ++s) {
        truth.push_back(std::abs(got[s] - ref[s]));
        estimate.push_back(b.output_estimate[s * O + k]);
      }
      o["estimate"] = estimate_stats(truth, estimate);
      o["estimate"]["factor"] = sur.parts().output_calibration[k];
    }
    outs[model.twin().outputs[k].name] = o;
  }
  v["outputs"] = outs;
  // The estimate against the true error of the primary field.
  const std::vector<double>& truth = nT ? eT : eu;
  Json est = estimate_stats(truth, b.estimate);
  est["field"] = nT ? "temperature" : "displacement";
  est["quantity"] = "relative L2 (mass-norm) error of the field";
  est["calibration"] = sur.parts().calibration;
  v["error_estimate"] = est;
  v["summary"] = summary(S, stats(truth), outs, est);
  if (sur.has_reduced_tier()) v["reduced_tier"] = validate_reduced_tier(sur, params, ref_outputs, ref_T, ref_u);
  return v;
}

namespace {

double conformal_quantile(std::vector<double> ratio, double coverage) {
  if (ratio.empty()) return 1.0;
  std::sort(ratio.begin(), ratio.end());
  const size_t k = static_cast<size_t>(std::ceil((static_cast<double>(ratio.size()) + 1) * coverage));
  return k <= ratio.size() ? ratio[k - 1] : ratio.back() * 1.25;
}

// The calibration scores of held-out runs: ratio[i] for the answers i, `per_run` consecutive
// answers to a run (every output time of a transient run). The runs are what is exchangeable
// (the answers of one run at its times are not independent), so a run scores the largest of
// its ratios: the conformal quantile of these then bounds every time of a new run at once with
// the stated probability, hence each of its answers with at least that probability.
std::vector<double> run_scores(const std::vector<double>& ratio, const std::vector<char>& valid, size_t per_run) {
  std::vector<double> score;
  for (size_t first = 0; first < ratio.size(); first += per_run) {
    double worst = -1;
    for (size_t i = first; i < std::min(ratio.size(), first + per_run); ++i)
      if (valid[i]) worst = std::max(worst, ratio[i]);
    if (worst >= 0) score.push_back(worst);
  }
  return score;
}

// Per-output error factors: for each output, the conformal quantile (at `coverage`) of
// |surrogate - FE| / field error estimate over held-out runs (run_scores), so factor * field
// error bounds the output's error with that probability on answers like them. got[i][k],
// ref[i][k] and field_error[i] for the held-out answers i, `per_run` to a run.
std::vector<double> output_factors(const std::vector<std::vector<double>>& got, const std::vector<std::vector<double>>& ref,
                                   const std::vector<double>& field_error, size_t outputs, size_t per_run, double coverage) {
  std::vector<double> factors(outputs, 0.0);
  std::vector<char> valid(got.size());
  for (size_t i = 0; i < got.size(); ++i) valid[i] = field_error[i] > 0;
  for (size_t k = 0; k < outputs; ++k) {
    std::vector<double> ratio(got.size(), 0.0);
    bool any_error = false;
    for (size_t i = 0; i < got.size(); ++i) {
      const double e = std::abs(got[i][k] - ref[i][k]);
      any_error = any_error || e > 0;
      if (valid[i]) ratio[i] = e / field_error[i];
    }
    factors[k] = any_error ? conformal_quantile(run_scores(ratio, valid, per_run), coverage) : 0.0;
  }
  return factors;
}

// Transient heat (and thermo-elasticity, whose displacement follows from the temperature):
// snapshots of every time step of the training runs, POD of the temperature, the Galerkin
// reduced model, its estimate calibrated and validated against held-out transient FE runs
// (errors at every output time).
TrainResult train_transient(const FemModel& model, const TrainOptions& opt, const std::vector<double>& lo,
                            const std::vector<double>& hi, const std::vector<Params>& all, Clock::time_point t_all) {
  auto log = [&](const std::string& s) { if (opt.log) opt.log(s); };
  const auto& twin = model.twin();
  const auto& an = twin.analysis;
  const size_t N = static_cast<size_t>(opt.samples), C = static_cast<size_t>(opt.calibration);
  const size_t n = model.mesh().num_nodes(), times = an.output_times.size();
  const long steps = std::lround(an.end_time / an.time_step);
  const long stride = std::max<long>(1, static_cast<long>(std::ceil(static_cast<double>(N) * static_cast<double>(steps) / 3000.0)));
  std::vector<spec::Scenario> scenarios(all.size());
  for (size_t s = 0; s < all.size(); ++s) {
    scenarios[s].id = "sample" + std::to_string(s);
    scenarios[s].parameters = all[s];
  }
  const auto t_solve = Clock::now();
  std::vector<std::vector<double>> snaps;
  std::vector<size_t> snap_of;
  std::vector<double> snap_time;  // values that depend on t lift at the snapshot's time
  std::vector<std::vector<std::vector<double>>> Tout(all.size(), std::vector<std::vector<double>>(times));
  BatchOptions batch = opt.batch;
  batch.keep_first_fields = false;
  batch.chunk = chunk_for(batch.chunk, 4 * n);  // T^n, T^{n-1}, T^{n+1}, rhs per scenario
  batch.step_sink = [&](size_t s, long step, const double* T) {
    if (s < N && (step % stride == 0 || step == steps)) {
      snaps.emplace_back(T, T + n);
      snap_of.push_back(s);
      snap_time.push_back(an.time_step * static_cast<double>(step));
    }
  };
  batch.field_sink = [&](size_t s, size_t t, const double* T, const double*) { Tout[s][t].assign(T, T + n); };
  batch.progress = [&](const std::string& stage, size_t done, size_t total) {
    if (stage == "scenarios") log("solved " + std::to_string(done) + "/" + std::to_string(total) + " transient finite-element runs");
  };
  const BatchResult fe = solve_batch(model, scenarios, batch);
  const double solve_seconds = since(t_solve);

  const auto t_pod = Clock::now();
  MassMatrix M(model.mesh());
  ReducedSpace space(model.thermal_operator(), model.thermal_rhs_terms(), 1);
  Eigen::MatrixXd D(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(snaps.size()));
  for (size_t k = 0; k < snaps.size(); ++k) {
    std::copy(snaps[k].begin(), snaps[k].end(), D.col(static_cast<Eigen::Index>(k)).data());
    space.remove_lift(scenarios[snap_of[k]].parameters_at(snap_time[k]), D.col(static_cast<Eigen::Index>(k)).data());
  }
  snaps.clear();
  SurrogateParts parts;
  parts.lower = lo;
  parts.upper = hi;
  const Eigen::Index snapshot_count = D.cols();
  parts.T = compute_pod(std::move(D), M, 1, opt.pod);
  log("temperature POD of " + std::to_string(snapshot_count) + " snapshots (every " + std::to_string(stride) +
      " steps): rank " + std::to_string(parts.T->rank()) + ", captured energy 1 - " + fmt(1 - parts.T->captured));
  // Hot spots: the sites a max/min output keeps (heat only; thermo-elastic outputs are
  // evaluated over every site, from the displacement solved for each reduced temperature).
  if (!model.mechanical()) {
    const OutputEvaluator full = OutputEvaluator::for_outputs(model);
    std::vector<std::vector<double>> comps;
    for (size_t s = 0; s < N; ++s)
      for (size_t t = 0; t < times; ++t) comps.push_back(full.site_components(all[s], Tout[s][t].data(), nullptr));
    parts.sites = select_hot_spots(full, comps, opt.hot_spot_margin);
  }
  auto sur = std::make_unique<Surrogate>(model, std::move(parts), opt.device);
  const double pod_seconds = since(t_pod);

  // Relative errors at every output time of held-out runs [first, first + count).
  auto errors = [&](size_t first, size_t count, std::vector<TransientAnswer>& answers) {
    std::vector<spec::Scenario> sc(scenarios.begin() + static_cast<long>(first), scenarios.begin() + static_cast<long>(first + count));
    answers = sur->evaluate_transient(sc, true);
    std::vector<std::vector<double>> e(count, std::vector<double>(times));
    parallel_for(count, [&](size_t s) {
      for (size_t t = 0; t < times; ++t) e[s][t] = sur->relative_l2(Tout[first + s][t].data(), answers[s].T[t].data(), true);
    });
    return e;
  };
  std::vector<TransientAnswer> cal_answers;
  const auto cal_err = errors(N, C, cal_answers);
  std::vector<double> ratio;
  std::vector<char> valid;
  for (size_t s = 0; s < C; ++s)
    for (size_t t = 0; t < times; ++t) {
      valid.push_back(cal_answers[s].estimate[t] > 0);
      ratio.push_back(valid.back() ? cal_err[s][t] / cal_answers[s].estimate[t] : 0.0);
    }
  const double calib = conformal_quantile(run_scores(ratio, valid, times), opt.coverage);
  sur->set_calibration(calib);
  log("error estimate calibrated on " + std::to_string(C) + " held-out runs: factor " + fmt(calib));
  {
    std::vector<std::vector<double>> got, ref;
    std::vector<double> fe_err;
    for (size_t s = 0; s < C; ++s)
      for (size_t t = 0; t < times; ++t) {
        got.push_back(cal_answers[s].outputs[t]);
        ref.push_back(fe.scenarios[N + s].outputs[t]);
        fe_err.push_back(cal_answers[s].field_error[t]);
      }
    sur->set_output_calibration(output_factors(got, ref, fe_err, twin.outputs.size(), times, opt.coverage));
  }

  const size_t first = N + C, count = all.size() - first;
  std::vector<TransientAnswer> test;
  const auto err = errors(first, count, test);
  std::vector<double> field, truth, estimate;
  for (size_t s = 0; s < count; ++s) {
    field.push_back(*std::max_element(err[s].begin(), err[s].end()));
    for (size_t t = 0; t < times; ++t) {
      truth.push_back(err[s][t]);
      estimate.push_back(test[s].estimate[t]);
    }
  }
  Json outs = Json::object();
  for (size_t k = 0; k < twin.outputs.size(); ++k) {
    std::vector<double> ref, got;
    std::vector<double> truth_k, estimate_k;
    for (size_t s = 0; s < count; ++s)
      for (size_t t = 0; t < times; ++t) {
        ref.push_back(fe.scenarios[first + s].outputs[t][k]);
        got.push_back(test[s].outputs[t][k]);
        truth_k.push_back(std::abs(got.back() - ref.back()));
        estimate_k.push_back(test[s].output_estimates[t][k]);
      }
    Json o = error_stats(ref, got);
    o["estimate"] = estimate_stats(truth_k, estimate_k);
    o["estimate"]["factor"] = sur->parts().output_calibration[k];
    outs[twin.outputs[k].name] = o;
  }
  Json est = estimate_stats(truth, estimate);
  est["field"] = "temperature";
  est["quantity"] = "relative L2 (mass-norm) error of the field at each output time";
  est["calibration"] = calib;
  Json v;
  v["scenarios"] = count;
  v["output_times"] = an.output_times;
  v["fields"] = {{"temperature", {{"relative_l2_worst_time", stats(field)}}}};
  v["outputs"] = outs;
  v["error_estimate"] = est;
  v["summary"] = summary(count, stats(field), outs, est);
  v["samples"] = {{"training", N}, {"calibration", C}, {"test", count},
                  {"test_distribution", "uniform random inside the training bounds, never trained on"}};
  TrainResult result;
  result.training = {{"samples", N}, {"calibration_samples", C}, {"test_samples", count},
                     {"sampling", "scrambled Halton sequence inside the parameter bounds"}, {"seed", opt.seed},
                     {"snapshots", snapshot_count}, {"snapshot_stride_steps", stride},
                     {"backend", opt.batch.backend == Backend::cuda ? "cuda" : "cpu"},
                     {"seconds", {{"finite_element_solves", solve_seconds}, {"pod_and_reduced_model", pod_seconds},
                                  {"total", since(t_all)}}},
                     {"threads", host_threads()}};
  result.surrogate = std::move(sur);
  result.validation = std::move(v);
  return result;
}

}  // namespace

namespace {

TrainResult train_once(const FemModel& model, const TrainOptions& options) {
  const auto t_all = Clock::now();
  const auto& twin = model.twin();
  // 0 picks the default: transient runs cost a whole time integration each.
  TrainOptions opt = options;
  if (opt.samples == 0) opt.samples = twin.analysis.transient ? 48 : 512;
  if (opt.calibration == 0) opt.calibration = twin.analysis.transient ? 40 : 128;
  if (opt.test == 0) opt.test = twin.analysis.transient ? 24 : 128;
  auto log = [&](const std::string& s) { if (opt.log) opt.log(s); };
  DOPPEL_VERIFY(opt.samples >= 8, "--samples", "must be at least 8");
  DOPPEL_VERIFY(opt.calibration >= 8, "--calibration", "must be at least 8");
  DOPPEL_VERIFY(opt.test >= 1, "--test", "must be at least 1");
  const size_t P = twin.parameters.size();
  std::vector<double> lo(P), hi(P);
  std::vector<size_t> varying;
  for (size_t i = 0; i < P; ++i) {
    lo[i] = twin.parameters[i].min;
    hi[i] = twin.parameters[i].max;
    const auto r = opt.ranges.find(twin.parameters[i].name);
    if (r != opt.ranges.end()) {
      const std::string path = "--range " + r->first;
      DOPPEL_VERIFY(r->second.first <= r->second.second, path, "min must not exceed max");
      DOPPEL_VERIFY(r->second.first >= lo[i] && r->second.second <= hi[i], path,
                    "must lie inside the parameter's bounds [" + fmt(lo[i], 12) + ", " + fmt(hi[i], 12) + "]");
      lo[i] = r->second.first;
      hi[i] = r->second.second;
    }
    if (hi[i] > lo[i]) varying.push_back(i);
  }
  for (const auto& r : opt.ranges)
    DOPPEL_VERIFY(twin.parameter_index(r.first) >= 0, "--range " + r.first, "names no parameter of the twin");
  DOPPEL_VERIFY(!varying.empty(), "parameters", "no parameter has a range (min < max) to train over");

  // --- samples --------------------------------------------------------------------------
  Params p0 = twin.default_parameters();
  for (size_t i = 0; i < P; ++i) p0[i] = std::clamp(p0[i], lo[i], hi[i]);
  std::vector<Params> all;
  for (const auto& x : halton(static_cast<size_t>(opt.samples), varying.size(), opt.seed)) {
    Params p = p0;
    for (size_t d = 0; d < varying.size(); ++d) p[varying[d]] = lo[varying[d]] + x[d] * (hi[varying[d]] - lo[varying[d]]);
    all.push_back(p);
  }
  for (const Params& p : opt.extra_samples) {
    DOPPEL_VERIFY(p.size() == P, "training", "an extra sample has the wrong number of parameters");
    all.push_back(p);
  }
  opt.samples += static_cast<int>(opt.extra_samples.size());
  std::mt19937_64 rng(opt.seed + 1);
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  for (int s = 0; s < opt.calibration + opt.test; ++s) {
    Params p = p0;
    for (size_t i : varying) p[i] = lo[i] + u01(rng) * (hi[i] - lo[i]);
    all.push_back(p);
  }
  const size_t N = static_cast<size_t>(opt.samples), C = static_cast<size_t>(opt.calibration), Tn = static_cast<size_t>(opt.test);

  if (twin.analysis.transient) return train_transient(model, opt, lo, hi, all, t_all);

  // --- finite-element snapshots ------------------------------------------------------------
  const auto t_solve = Clock::now();
  std::vector<spec::Scenario> scenarios(all.size());
  for (size_t s = 0; s < all.size(); ++s) {
    scenarios[s].id = "sample" + std::to_string(s);
    scenarios[s].parameters = all[s];
  }
  const size_t nT = model.thermal() ? model.mesh().num_nodes() : 0;
  const size_t nu = model.mechanical() ? model.mesh().num_nodes() * static_cast<size_t>(model.mesh().dim) : 0;
  std::vector<std::vector<double>> Ts(all.size()), us(all.size());
  std::vector<std::vector<double>> outputs(all.size());
  // Solves an earlier adaptive round made come from the cache.
  std::vector<size_t> todo;
  std::vector<spec::Scenario> to_solve;
  for (size_t s = 0; s < all.size(); ++s) {
    const auto hit = opt.cache ? opt.cache->steady.find(all[s]) : decltype(opt.cache->steady.end()){};
    if (opt.cache && hit != opt.cache->steady.end()) {
      Ts[s] = hit->second.T;
      us[s] = hit->second.u;
      outputs[s] = hit->second.outputs;
      continue;
    }
    todo.push_back(s);
    to_solve.push_back(scenarios[s]);
  }
  BatchOptions batch = opt.batch;
  batch.keep_first_fields = false;
  batch.chunk = chunk_for(batch.chunk, 2 * (nT + nu));
  batch.field_sink = [&](size_t i, size_t, const double* T, const double* u) {
    if (T) Ts[todo[i]].assign(T, T + nT);
    if (u) us[todo[i]].assign(u, u + nu);
  };
  batch.progress = [&](const std::string& stage, size_t done, size_t total) {
    if (stage == "scenarios") log("solved " + std::to_string(done) + "/" + std::to_string(total) + " finite-element snapshots");
  };
  if (!to_solve.empty()) {
    const BatchResult fe = solve_batch(model, to_solve, batch);
    for (size_t i = 0; i < todo.size(); ++i) {
      outputs[todo[i]] = fe.scenarios[i].outputs[0];
      if (opt.cache) opt.cache->steady[all[todo[i]]] = {Ts[todo[i]], us[todo[i]], outputs[todo[i]]};
    }
  }
  const double solve_seconds = since(t_solve);

  // --- POD ----------------------------------------------------------------------------------
  const auto t_pod = Clock::now();
  MassMatrix M(model.mesh());
  SurrogateParts parts;
  parts.lower = lo;
  parts.upper = hi;
  auto pod_of = [&](const std::vector<std::vector<double>>& fields, size_t n, const ReducedSpace& space) {
    Eigen::MatrixXd D(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(N));
    for (size_t s = 0; s < N; ++s) {
      std::copy(fields[s].begin(), fields[s].end(), D.col(static_cast<Eigen::Index>(s)).data());
      space.remove_lift(all[s], D.col(static_cast<Eigen::Index>(s)).data());
    }
    return compute_pod(std::move(D), M, space.components(), opt.pod);
  };
  std::unique_ptr<ReducedSpace> sT, su;
  if (nT) {
    sT = std::make_unique<ReducedSpace>(model.thermal_operator(), model.thermal_rhs_terms(), 1);
    parts.T = pod_of(Ts, nT, *sT);
    sT->set_basis(*parts.T);
    log("temperature POD: rank " + std::to_string(parts.T->rank()) + ", captured energy 1 - " + fmt(1 - parts.T->captured));
  }
  if (nu) {
    su = std::make_unique<ReducedSpace>(model.mechanical_operator(), model.mechanical_rhs_terms(), model.mesh().dim);
    parts.u = pod_of(us, nu, *su);
    su->set_basis(*parts.u);
    log("displacement POD: rank " + std::to_string(parts.u->rank()) + ", captured energy 1 - " + fmt(1 - parts.u->captured));
  }
  const size_t R = static_cast<size_t>((parts.T ? parts.T->rank() : 0) + (parts.u ? parts.u->rank() : 0));
  std::vector<std::vector<double>> coef(N, std::vector<double>(R));
  parallel_for(N, [&](size_t s) {
    size_t j = 0;
    for (const ReducedSpace* sp : {sT.get(), su.get()}) {
      if (!sp) continue;
      std::vector<double> x = sp == sT.get() ? Ts[s] : us[s];
      sp->remove_lift(all[s], x.data());
      const Eigen::VectorXd c = sp->basis().project(M, x.data());
      for (Eigen::Index i = 0; i < c.size(); ++i) coef[s][j++] = c(i);
    }
  });
  parts.coef_mean.assign(R, 0.0);
  parts.coef_std.assign(R, 0.0);
  for (size_t j = 0; j < R; ++j) {
    for (size_t s = 0; s < N; ++s) parts.coef_mean[j] += coef[s][j] / static_cast<double>(N);
    for (size_t s = 0; s < N; ++s) parts.coef_std[j] += std::pow(coef[s][j] - parts.coef_mean[j], 2) / static_cast<double>(N);
  }
  double max_std = 0;
  for (double& v : parts.coef_std) max_std = std::max(max_std, v = std::sqrt(v));
  for (double& v : parts.coef_std) v = std::max(v, 1e-12 * max_std + 1e-300);
  const double pod_seconds = since(t_pod);

  // --- network ------------------------------------------------------------------------------
  const auto t_net = Clock::now();
  std::vector<float> X(N * P), Y(N * R);
  for (size_t s = 0; s < N; ++s) {
    for (size_t i = 0; i < P; ++i) X[s * P + i] = hi[i] > lo[i] ? static_cast<float>(2.0 * (all[s][i] - lo[i]) / (hi[i] - lo[i]) - 1.0) : 0.0f;
    for (size_t j = 0; j < R; ++j) Y[s * R + j] = static_cast<float>((coef[s][j] - parts.coef_mean[j]) / parts.coef_std[j]);
  }
  MlpShape shape = opt.network;
  shape.inputs = static_cast<int>(P);
  shape.outputs = static_cast<int>(R);
  MlpTrainOptions fit = opt.fit;
  fit.seed = opt.seed;
  // Loss weights: within each field, 90 % by the mode's share of the variance (so the loss
  // tracks the field's L2 error) and 10 % shared equally (so small modes, which carry
  // gradients and stresses, are still learned); the fields weigh equally.
  if (fit.output_weights.empty()) {
    size_t j = 0;
    for (const auto* b : {parts.T ? &*parts.T : nullptr, parts.u ? &*parts.u : nullptr}) {
      if (!b) continue;
      double var = 0;
      for (int i = 0; i < b->rank(); ++i) var += parts.coef_std[j + static_cast<size_t>(i)] * parts.coef_std[j + static_cast<size_t>(i)];
      for (int i = 0; i < b->rank(); ++i) {
        const double s2 = parts.coef_std[j + static_cast<size_t>(i)] * parts.coef_std[j + static_cast<size_t>(i)];
        fit.output_weights.push_back(static_cast<float>(0.9 * s2 / var + 0.1 / b->rank()));
      }
      j += static_cast<size_t>(b->rank());
    }
  }
  if (!fit.progress)
    fit.progress = [&](int epoch, double train, double val) {
      log("epoch " + std::to_string(epoch) + ": training loss " + fmt(train) + ", validation loss " + fmt(val));
    };
  MlpTrainReport report;
  parts.net = train_mlp_ensemble(X, Y, N, shape, fit, &report);
  const double net_seconds = since(t_net);

  // --- hot spots, output map, estimator ------------------------------------------------------
  const auto t_build = Clock::now();
  {
    const OutputEvaluator full = OutputEvaluator::for_outputs(model);
    std::vector<std::vector<double>> comps(N);
    parallel_for(N, [&](size_t s) {
      comps[s] = full.site_components(all[s], nT ? Ts[s].data() : nullptr, nu ? us[s].data() : nullptr);
    });
    parts.sites = select_hot_spots(full, comps, opt.hot_spot_margin);
  }
  auto sur = std::make_unique<Surrogate>(model, std::move(parts), opt.device);
  const double build_seconds = since(t_build);

  // --- calibration ---------------------------------------------------------------------------
  std::vector<Params> cal(all.begin() + static_cast<long>(N), all.begin() + static_cast<long>(N + C));
  const SurrogateBatch cb = sur->evaluate(cal, true);
  std::vector<double> ratio;
  for (size_t s = 0; s < C; ++s) {
    const size_t g = N + s;
    const double truth = nT ? sur->relative_l2(Ts[g].data(), &cb.T[s * nT], true) : sur->relative_l2(us[g].data(), &cb.u[s * nu], false);
    if (cb.estimate[s] > 0) ratio.push_back(truth / cb.estimate[s]);
  }
  const double calib = conformal_quantile(ratio, opt.coverage);
  sur->set_calibration(calib);
  log("error estimate calibrated on " + std::to_string(C) + " held-out solves: factor " + fmt(calib));
  {
    std::vector<std::vector<double>> got, ref;
    for (size_t s = 0; s < C; ++s) {
      got.push_back(std::vector<double>(cb.outputs.begin() + static_cast<long>(s * cb.outputs_per_scenario),
                                        cb.outputs.begin() + static_cast<long>((s + 1) * cb.outputs_per_scenario)));
      ref.push_back(outputs[N + s]);
    }
    sur->set_output_calibration(output_factors(got, ref, cb.field_error, cb.outputs_per_scenario, 1, opt.coverage));
  }
  // The reduced tier's own factors, on its answers to the same solves: its errors are the POD
  // space's (small, and where the modes miss the field), not the network's.
  if (sur->has_reduced_tier()) {
    const auto red = sur->evaluate_reduced(cal, true);
    std::vector<double> ratio_r, field_error;
    std::vector<std::vector<double>> got, ref;
    for (size_t s = 0; s < C; ++s) {
      const size_t g = N + s;
      const double truth = nT ? sur->relative_l2(Ts[g].data(), red[s].field.data(), true) : sur->relative_l2(us[g].data(), red[s].field.data(), false);
      if (red[s].relative_residual > 0) ratio_r.push_back(truth / red[s].relative_residual);
      got.push_back(red[s].outputs);
      ref.push_back(outputs[g]);
      field_error.push_back(red[s].field_error);
    }
    const double calib_r = conformal_quantile(ratio_r, opt.coverage);
    sur->set_reduced_calibration(calib_r, sur->has_output_estimates()
                                              ? output_factors(got, ref, field_error, cb.outputs_per_scenario, 1, opt.coverage)
                                              : std::vector<double>{});
    log("reduced tier's error estimate calibrated on the same solves: factor " + fmt(calib_r));
  }

  // --- validation ----------------------------------------------------------------------------
  std::vector<Params> test(all.begin() + static_cast<long>(N + C), all.end());
  std::vector<std::vector<double>> ro(outputs.begin() + static_cast<long>(N + C), outputs.end());
  std::vector<std::vector<double>> rT(Ts.begin() + static_cast<long>(N + C), Ts.end()), ru(us.begin() + static_cast<long>(N + C), us.end());
  Json validation = validate_surrogate(*sur, test, ro, rT, ru);
  validation["samples"] = {{"training", N}, {"calibration", C}, {"test", Tn},
                           {"test_distribution", "uniform random inside the training bounds, never trained on"}};

  TrainResult result;
  result.training = {{"samples", N}, {"calibration_samples", C}, {"test_samples", Tn},
                     {"sampling", "scrambled Halton sequence inside the parameter bounds"},
                     {"seed", opt.seed},
                     {"backend", opt.batch.backend == Backend::cuda ? "cuda" : "cpu"},
                     {"device", opt.device},
                     {"epochs", report.epochs}, {"best_epochs", report.best_epoch},
                     {"validation_mse", report.validation}, {"training_mse", report.train},
                     {"seconds", {{"finite_element_solves", solve_seconds}, {"pod", pod_seconds},
                                  {"network", net_seconds}, {"estimator_and_outputs", build_seconds},
                                  {"total", since(t_all)}}},
                     {"threads", host_threads()}};
  result.surrogate = std::move(sur);
  result.validation = std::move(validation);
  return result;
}

}  // namespace

TrainResult train_surrogate(const FemModel& model, const TrainOptions& options) {
  if (!(options.adaptive_target > 0)) {
    DOPPEL_VERIFY(options.adaptive_target == 0, "--adaptive", "must be a positive relative error estimate");
    return train_once(model, options);
  }
  const auto& twin = model.twin();
  const auto t_all = Clock::now();
  TrainOptions opt = options;
  auto log = [&](const std::string& s) { if (opt.log) opt.log(s); };
  const int base = opt.samples > 0 ? opt.samples : (twin.analysis.transient ? 48 : 512);
  const int budget = opt.max_samples > 0 ? opt.max_samples : 4 * base;
  DOPPEL_VERIFY(budget >= base, "--max-samples", "must be at least --samples (" + std::to_string(base) + ")");
  if (!opt.cache) opt.cache = std::make_shared<SnapshotCache>();
  opt.samples = base;
  // The candidate pool: uniform random inside the training bounds (a seed of its own, so never
  // the calibration or test points).
  const size_t P = twin.parameters.size();
  std::vector<double> lo(P), hi(P);
  for (size_t i = 0; i < P; ++i) {
    lo[i] = twin.parameters[i].min;
    hi[i] = twin.parameters[i].max;
    const auto r = opt.ranges.find(twin.parameters[i].name);
    if (r != opt.ranges.end()) {
      lo[i] = r->second.first;
      hi[i] = r->second.second;
    }
  }
  Params p0 = twin.default_parameters();
  for (size_t i = 0; i < P; ++i) p0[i] = std::clamp(p0[i], lo[i], hi[i]);
  const size_t pool_size = std::max<size_t>(512, 8 * static_cast<size_t>(base));
  std::mt19937_64 rng(opt.seed + 7);
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  std::vector<Params> pool(pool_size, p0);
  for (auto& p : pool)
    for (size_t i = 0; i < P; ++i)
      if (hi[i] > lo[i]) p[i] = lo[i] + u01(rng) * (hi[i] - lo[i]);
  std::vector<spec::Scenario> pool_scenarios(pool.size());
  for (size_t s = 0; s < pool.size(); ++s) pool_scenarios[s].parameters = pool[s];

  Json rounds = Json::array();
  TrainResult best;  // the round whose pool estimates were best (fewest above the target, then smallest maximum)
  size_t best_above = static_cast<size_t>(-1);
  double best_worst = 0, best_frac = 1.0;
  int best_round = 0, stalled = 0;
  for (int round = 1;; ++round) {
    TrainResult r = train_once(model, opt);
    const int samples = base + static_cast<int>(opt.extra_samples.size());
    std::vector<double> est(pool.size());
    if (twin.analysis.transient) {
      const auto a = r.surrogate->evaluate_transient(pool_scenarios);
      for (size_t s = 0; s < pool.size(); ++s) est[s] = a[s].max_estimate;
    } else {
      const SurrogateBatch b = r.surrogate->evaluate(pool);
      est = b.estimate;
    }
    std::vector<size_t> order(pool.size());
    for (size_t s = 0; s < order.size(); ++s) order[s] = s;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return est[a] > est[b]; });
    const double worst = est[order.front()];
    std::vector<double> sorted = est;
    std::sort(sorted.begin(), sorted.end());
    const double p95 = sorted[static_cast<size_t>(std::ceil(0.95 * static_cast<double>(sorted.size()))) - 1];
    const size_t above = static_cast<size_t>(std::count_if(est.begin(), est.end(), [&](double e) { return e > opt.adaptive_target; }));
    rounds.push_back({{"round", round}, {"training_samples", samples}, {"pool", pool.size()},
                      {"pool_estimate_max", worst}, {"pool_estimate_p95", p95}, {"pool_above_target", above},
                      {"validation_field_relative_l2_p95", r.validation["summary"].value("field_relative_l2_p95", 0.0)}});
    log("adaptive round " + std::to_string(round) + ": " + std::to_string(samples) + " training samples, pool estimate max " +
        fmt(worst) + ", p95 " + fmt(p95) + ", " + std::to_string(above) + "/" + std::to_string(pool.size()) + " above the target " +
        fmt(opt.adaptive_target));
    // Compared as fractions of the pool (picked points leave it, so counts shrink by themselves).
    const double frac = static_cast<double>(above) / static_cast<double>(pool.size());
    const bool better = best_round == 0 || frac < best_frac || (frac == best_frac && worst < best_worst);
    stalled = better ? 0 : stalled + 1;
    if (better) {
      best = std::move(r);
      best_frac = frac;
      best_above = above;
      best_worst = worst;
      best_round = round;
    }
    // Stop when the target is met, the budget or the round limit is reached, or two rounds in
    // a row brought no improvement (the network's own noise floor, not a lack of samples).
    const char* why = above == 0 ? "target met" : samples >= budget ? "sample budget reached"
                      : round >= opt.adaptive_rounds ? "round limit reached" : stalled >= 2 ? "no improvement in two rounds" : nullptr;
    if (why) {
      best.training["adaptive"] = {{"target", opt.adaptive_target}, {"max_samples", budget}, {"max_rounds", opt.adaptive_rounds},
                                   {"pool", pool.size()}, {"met", best_above == 0}, {"stopped", why},
                                   {"kept_round", best_round}, {"rounds", rounds}, {"seconds", since(t_all)}};
      log(std::string("adaptive training: ") + why + "; keeping round " + std::to_string(best_round) + " (" +
          std::to_string(best_above) + " pool points above the target, max estimate " + fmt(best_worst) + ")");
      return best;
    }
    // The largest estimates, at least a minimum distance apart in the normalized parameter
    // box (a cluster of neighbours would teach the same thing), a quarter of the samples per round.
    const size_t add = std::min<size_t>(static_cast<size_t>(budget - samples), std::max<size_t>(1, static_cast<size_t>(base) / 4));
    const double spacing = 0.5 / std::pow(static_cast<double>(samples + add), 1.0 / static_cast<double>(std::max<size_t>(1, P)));
    std::vector<Params> picked;
    for (size_t s : order) {
      if (picked.size() >= add || !(est[s] > opt.adaptive_target)) break;
      bool far = true;
      for (const Params& q : picked) {
        double d2 = 0;
        for (size_t i = 0; i < P; ++i)
          if (hi[i] > lo[i]) d2 += std::pow((pool[s][i] - q[i]) / (hi[i] - lo[i]), 2);
        far = far && std::sqrt(d2) >= spacing;
      }
      if (far) picked.push_back(pool[s]);
    }
    for (const Params& p : picked) opt.extra_samples.push_back(p);
    // Picked candidates leave the pool (it judges the next round on points it has not trained on).
    std::vector<Params> rest;
    std::vector<spec::Scenario> rest_scenarios;
    for (size_t s = 0; s < pool.size(); ++s)
      if (std::find(picked.begin(), picked.end(), pool[s]) == picked.end()) {
        rest.push_back(pool[s]);
        rest_scenarios.push_back(pool_scenarios[s]);
      }
    pool = std::move(rest);
    pool_scenarios = std::move(rest_scenarios);
  }
}

}  // namespace doppel
