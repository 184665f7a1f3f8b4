#include "twin/estimator.hpp"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "kernels/host/parallel.hpp"
#include "spec/errors.hpp"

namespace doppel::twin {

namespace {
constexpr double kEdge = 1e-6;  // unit coordinates stay in [kEdge, 1 - kEdge]
double logit(double u) { return std::log(u / (1 - u)); }
double logistic(double z) { return 1 / (1 + std::exp(-z)); }
}  // namespace

namespace {
// The outputs of one solve of the truth, and its sensors read from the fields the solve reports
// (the thermo-elastic displacement included); fields, when set, sees the temperature too.
SensorResponse sensor_response(const FemModel& model, const Params& parameters,
                               const std::function<BatchResult(const spec::Scenario&, BatchOptions&)>& solve,
                               const std::function<void(const double* T)>& fields = {}) {
  spec::Scenario s;
  s.id = "truth";
  s.parameters = parameters;
  const OutputEvaluator sensors = OutputEvaluator::for_sensors(model);
  SensorResponse out;
  BatchOptions o;
  o.keep_first_fields = false;
  o.field_sink = [&](size_t, size_t, const double* T, const double* u) {
    if (fields) fields(T);
    out.sensors = sensors.evaluate(parameters, T, u);
  };
  out.outputs = solve(s, o).scenarios[0].outputs[0];
  return out;
}
}  // namespace

SensorResponse solve_with_sensors(const FemModel& model, const Params& parameters) {
  return sensor_response(model, parameters, [&](const spec::Scenario& s, BatchOptions& o) { return solve_batch(model, {s}, o); });
}

std::string live_refusal(const spec::TwinSpec& t) {
  if (t.time_varying.empty()) return "";
  return t.time_varying[0] + " depends on t, the clock of a transient analysis; a live twin (sensors, state, plant) "
         "follows the asset's clock instead, so twin '" + t.name + "' keeps no live state: give the time dependence "
         "as a control parameter set by PUT /controls, or as a schedule in a scenario";
}

namespace {
void require_no_clock(const spec::TwinSpec& t) {
  const std::string why = live_refusal(t);
  if (!why.empty()) throw InvalidInput(t.time_varying[0], why.substr(t.time_varying[0].size() + 1));
}
}  // namespace

SensorResponse advance_with_sensors(const FemModel& model, const Params& parameters, std::vector<double>& state,
                                    double seconds) {
  DOPPEL_VERIFY(model.transient(), "analysis.type", "advance_with_sensors is for transient twins");
  require_no_clock(model.twin());
  if (state.empty()) {
    state.assign(model.mesh().num_nodes(), model.twin().analysis.initial_temperature);
    FemModel::apply_dirichlet(model.thermal_rhs_terms(), parameters, state.data());
  }
  // A window of FEM from the state (or, for no time at all, the state as it is), its
  // temperature kept as the new state.
  return sensor_response(
      model, parameters,
      [&](const spec::Scenario& s, BatchOptions& o) {
        if (seconds > 0) {
          o.window = BatchOptions::TransientWindow{seconds, [&](size_t, double* T) { std::copy(state.begin(), state.end(), T); }};
          return solve_batch(model, {s}, o);
        }
        const Eigen::MatrixXd T = Eigen::Map<const Eigen::VectorXd>(state.data(), static_cast<Eigen::Index>(state.size()));
        return solve_with_temperatures(model, {s}, T, 0.0, o);
      },
      [&](const double* T) { state.assign(T, T + state.size()); });
}

Estimator::Estimator(const FemModel& model, const Surrogate* surrogate, EstimatorOptions options, BatchOptions fem)
    : model_(model), surrogate_(surrogate), options_(options), fem_(std::move(fem)),
      sensors_(OutputEvaluator::for_sensors(model)), outputs_(OutputEvaluator::for_outputs(model)), rng_(options.seed) {
  const auto& t = model.twin();
  require_no_clock(t);
  DOPPEL_VERIFY(!t.analysis.transient || model.thermal(), "physics", "a transient twin needs heat conduction");
  DOPPEL_VERIFY(!t.analysis.transient || !surrogate || (surrogate->transient() && surrogate->parts().T), "bundle",
                "the bundle of transient twin '" + t.name + "' is not a transient surrogate with a temperature space");
  DOPPEL_VERIFY(!t.sensors.empty(), "sensors", "state estimation needs at least one sensor (twin '" + t.name + "')");
  DOPPEL_VERIFY(options.members >= 2, "members", "an ensemble needs at least 2 members");
  fem_.keep_first_fields = false;
  known_ = t.default_parameters();
  for (size_t p = 0; p < t.parameters.size(); ++p) {
    const auto& par = t.parameters[p];
    if (par.role != spec::ParameterRole::control && par.max > par.min) estimated_.push_back(p);
  }
  // Prior: around each default, spread prior_width of the range (in unit coordinates).
  z_.resize(static_cast<Eigen::Index>(estimated_.size()), options.members);
  std::normal_distribution<double> normal;
  for (size_t i = 0; i < estimated_.size(); ++i) {
    const double u0 = std::clamp((known_[estimated_[i]] - t.parameters[estimated_[i]].min) /
                                     (t.parameters[estimated_[i]].max - t.parameters[estimated_[i]].min),
                                 0.02, 0.98);
    const double sigma = std::min(3.0, options.prior_width / (u0 * (1 - u0)));
    for (int j = 0; j < options.members; ++j) z_(static_cast<Eigen::Index>(i), j) = logit(u0) + sigma * normal(rng_);
  }
  if (t.analysis.transient && !surrogate) {
    // Without a bundle each member carries its nodal temperature, from the twin's initial
    // state (its boundary values at the member's parameters).
    const Eigen::MatrixXd p = parameters();
    c_.setConstant(static_cast<Eigen::Index>(model.mesh().num_nodes()), options.members, t.analysis.initial_temperature);
    for (int j = 0; j < options.members; ++j)
      FemModel::apply_dirichlet(model.thermal_rhs_terms(), Params(p.col(j).data(), p.col(j).data() + p.rows()),
                                c_.col(j).data());
  } else if (t.analysis.transient) {
    // Each member starts from the twin's initial state at its parameters, perturbed along each
    // mode by the mode's spread over the training snapshots (energy / number of snapshots).
    const PodBasis& pod = *surrogate->parts().T;
    const Eigen::MatrixXd p = parameters();
    c_.resize(pod.rank(), options.members);
    const double snapshots = static_cast<double>(std::max<size_t>(1, pod.eigenvalues.size()));
    for (int j = 0; j < options.members; ++j) {
      Params pj(p.col(j).data(), p.col(j).data() + p.rows());
      c_.col(j) = surrogate->initial_coordinates(pj);
      for (int i = 0; i < pod.rank(); ++i)
        c_(i, j) += std::sqrt(pod.eigenvalues[static_cast<size_t>(i)] / snapshots) * normal(rng_);
    }
  }
}

double Estimator::to_unit(size_t p, double value) const {
  const auto& par = model_.twin().parameters[p];
  return std::clamp((value - par.min) / (par.max - par.min), kEdge, 1 - kEdge);
}

double Estimator::from_unit(size_t p, double z) const {
  const auto& par = model_.twin().parameters[p];
  return par.min + (par.max - par.min) * std::clamp(logistic(z), kEdge, 1 - kEdge);
}

void Estimator::set_known(size_t parameter, double value) {
  if (known_.at(parameter) == value) return;
  known_[parameter] = value;
  cached_.reset();
}

void Estimator::drift(Eigen::MatrixXd& z, double seconds, std::mt19937_64& rng) const {
  if (!(seconds > 0) || options_.drift <= 0) return;
  std::normal_distribution<double> normal;
  const double step = options_.drift * std::sqrt(seconds / 3600.0);  // in unit coordinates
  for (Eigen::Index i = 0; i < z.rows(); ++i)
    for (Eigen::Index j = 0; j < z.cols(); ++j) {
      const double u = std::clamp(logistic(z(i, j)), 0.02, 0.98);
      z(i, j) += std::min(3.0, step / (u * (1 - u))) * normal(rng);
    }
}

void Estimator::random_walk(double seconds) {
  drift(z_, seconds, rng_);
  cached_.reset();
}

void Estimator::advance(double time) {
  if (started_ && time > time_) {
    const double seconds = time - time_;
    random_walk(seconds);
    if (transient()) {
      advanced_surrogate_ = advanced_fem_ = 0;
      c_ = propagate(c_, parameters(), seconds, &advanced_surrogate_, &advanced_fem_);
    }
  }
  if (!started_ || time > time_) time_ = time;
  started_ = true;
}

namespace {
Eigen::VectorXd spread(const Eigen::MatrixXd& x) {
  Eigen::VectorXd s(x.rows());
  for (Eigen::Index i = 0; i < x.rows(); ++i) s(i) = moments_of(x.row(i)).std;
  return s;
}

// Relaxation to prior spread (Whitaker & Hamill 2012): each variable's analysis anomalies are
// rescaled so its spread becomes alpha * prior + (1 - alpha) * posterior.
void relax_to_prior_spread(Eigen::MatrixXd& x, const Eigen::VectorXd& prior, double alpha) {
  if (alpha <= 0) return;
  const Eigen::VectorXd mean = x.rowwise().mean();
  const Eigen::VectorXd post = spread(x);
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    if (!(post(i) > 0)) continue;
    const double factor = 1 + alpha * (prior(i) - post(i)) / post(i);
    x.row(i) = (mean(i) + factor * (x.row(i).array() - mean(i))).matrix();
  }
}

Params column(const Eigen::MatrixXd& P, Eigen::Index j) { return Params(P.col(j).data(), P.col(j).data() + P.rows()); }
}  // namespace

Eigen::MatrixXd Estimator::propagate(const Eigen::MatrixXd& C, const Eigen::MatrixXd& P, double seconds, size_t* surrogate,
                                     size_t* fem) const {
  const size_t N = static_cast<size_t>(C.cols());
  Eigen::MatrixXd out(C.rows(), C.cols());
  std::vector<spec::Scenario> sc(N);
  std::vector<char> by_fem(N, 1);  // without a bundle every member runs FEM
  parallel_for(N, [&](size_t j) {
    sc[j].id = std::to_string(j);
    sc[j].parameters = column(P, static_cast<Eigen::Index>(j));
    if (!surrogate_) return;
    const Surrogate::Advanced a = surrogate_->advance(sc[j], C.col(static_cast<Eigen::Index>(j)), seconds);
    out.col(static_cast<Eigen::Index>(j)) = a.c;
    by_fem[j] = !a.in_bounds || !(a.estimate <= options_.tolerance);
  });
  std::vector<size_t> members;
  std::vector<spec::Scenario> scenarios;
  for (size_t j = 0; j < N; ++j)
    if (by_fem[j]) {
      members.push_back(j);
      scenarios.push_back(sc[j]);
    }
  if (surrogate) *surrogate += N - members.size();
  if (fem) *fem += members.size();
  if (members.empty()) return out;
  // FEM from each such member's field (reconstructed from its coordinates), projected back.
  const Eigen::Index n = static_cast<Eigen::Index>(model_.mesh().num_nodes());
  BatchOptions opt = fem_;
  opt.window = BatchOptions::TransientWindow{seconds, [&](size_t s, double* T) {
                                               const Eigen::Index j = static_cast<Eigen::Index>(members[s]);
                                               if (surrogate_)
                                                 Eigen::Map<Eigen::VectorXd>(T, n) =
                                                     surrogate_->temperature(sc[members[s]].parameters, C.col(j).data());
                                               else
                                                 Eigen::Map<Eigen::VectorXd>(T, n) = C.col(j);
                                             }};
  opt.field_sink = [&](size_t s, size_t, const double* T, const double*) {
    const Eigen::Index j = static_cast<Eigen::Index>(members[s]);
    if (surrogate_) out.col(j) = surrogate_->project_temperature(sc[members[s]].parameters, T);
    else out.col(j) = Eigen::Map<const Eigen::VectorXd>(T, n);
  };
  // Thermo-elastic twins: the window's mechanics is not solved here (observe() solves it).
  opt.temperatures_only = true;
  solve_batch(model_, scenarios, opt);
  return out;
}

EnsemblePrediction Estimator::observe(const Eigen::MatrixXd& C, const Eigen::MatrixXd& P, const FieldVisitor& fields,
                                      bool with_sensors) const {
  const size_t N = static_cast<size_t>(C.cols());
  EnsemblePrediction out;
  out.sensors.resize(with_sensors ? static_cast<Eigen::Index>(sensors_.size()) : 0, C.cols());
  out.outputs.resize(static_cast<Eigen::Index>(outputs_.size()), C.cols());
  if (surrogate_) out.surrogate = N;
  else out.fem = N;
  // The members' temperatures: reconstructed from their coordinates, or carried whole.
  Eigen::MatrixXd T;
  if (surrogate_) {
    T.resize(static_cast<Eigen::Index>(model_.mesh().num_nodes()), C.cols());
    parallel_for(N, [&](size_t j) {
      const Eigen::Index c = static_cast<Eigen::Index>(j);
      T.col(c) = surrogate_->temperature(column(P, c), C.col(c).data());
    });
  }
  const Eigen::MatrixXd& temperatures = surrogate_ ? T : C;
  auto store = [&](Eigen::MatrixXd& dst, Eigen::Index j, const std::vector<double>& v) {
    for (size_t k = 0; k < v.size(); ++k) dst(static_cast<Eigen::Index>(k), j) = v[k];
  };
  if (model_.mechanical()) {
    // Thermo-elastic: each member's quasi-static displacement under its temperature's thermal
    // strain, all members in one batch (one factor of the shared elastic operator).
    std::vector<spec::Scenario> scenarios(N);
    for (size_t j = 0; j < N; ++j) {
      scenarios[j].id = std::to_string(j);
      scenarios[j].parameters = column(P, static_cast<Eigen::Index>(j));
    }
    BatchOptions opt = fem_;
    opt.window.reset();
    if (with_sensors || fields)
      opt.field_sink = [&](size_t s, size_t, const double* Ts, const double* u) {
        if (with_sensors) store(out.sensors, static_cast<Eigen::Index>(s), sensors_.evaluate(scenarios[s].parameters, Ts, u));
        if (fields) fields(s, Ts, u);
      };
    const BatchResult r = solve_with_temperatures(model_, scenarios, temperatures, 0.0, opt);
    for (size_t j = 0; j < N; ++j) store(out.outputs, static_cast<Eigen::Index>(j), r.scenarios[j].outputs[0]);
    return out;
  }
  parallel_for(N, [&](size_t j) {
    const Eigen::Index c = static_cast<Eigen::Index>(j);
    const Params p = column(P, c);
    const double* x = temperatures.col(c).data();
    store(out.outputs, c, outputs_.evaluate(p, x, nullptr));
    if (with_sensors) store(out.sensors, c, sensors_.evaluate(p, x, nullptr));
  });
  if (fields)
    for (size_t j = 0; j < N; ++j) fields(j, temperatures.col(static_cast<Eigen::Index>(j)).data(), nullptr);
  return out;
}

EnsemblePrediction Estimator::predict_members(const FieldVisitor& fields) const {
  if (!transient()) return predict(parameters(), fields, true);
  EnsemblePrediction out = observe(c_, parameters(), fields, true);
  if (advanced_surrogate_ + advanced_fem_ > 0) {  // how the members got here
    out.surrogate = advanced_surrogate_;
    out.fem = advanced_fem_;
  }
  return out;
}

EnsemblePrediction Estimator::predict_path(const std::vector<double>& times, const std::vector<Eigen::MatrixXd>& parameters) const {
  DOPPEL_VERIFY(times.size() == parameters.size(), "times", "one parameter matrix per time");
  const Eigen::Index N = z_.cols(), steps = static_cast<Eigen::Index>(times.size());
  if (!transient()) {
    Eigen::MatrixXd all(static_cast<Eigen::Index>(model_.twin().parameters.size()), N * steps);
    for (Eigen::Index k = 0; k < steps; ++k) all.middleCols(k * N, N) = parameters[static_cast<size_t>(k)];
    return predict(all, {}, /*with_sensors=*/false);
  }
  EnsemblePrediction out;
  out.outputs.resize(static_cast<Eigen::Index>(outputs_.size()), N * steps);
  Eigen::MatrixXd C = c_;
  double previous = 0;
  for (Eigen::Index k = 0; k < steps; ++k) {
    const Eigen::MatrixXd& P = parameters[static_cast<size_t>(k)];
    const double seconds = times[static_cast<size_t>(k)] - previous;
    DOPPEL_VERIFY(seconds > 0, "times", "must increase from 0");
    C = propagate(C, P, seconds, &out.surrogate, &out.fem);
    previous = times[static_cast<size_t>(k)];
    out.outputs.middleCols(k * N, N) = observe(C, P, {}, false).outputs;
  }
  return out;
}

Eigen::MatrixXd Estimator::parameters_of(const Eigen::MatrixXd& z) const {
  const auto& t = model_.twin();
  Eigen::MatrixXd p(static_cast<Eigen::Index>(t.parameters.size()), z.cols());
  for (Eigen::Index j = 0; j < z.cols(); ++j) {
    for (size_t k = 0; k < t.parameters.size(); ++k) p(static_cast<Eigen::Index>(k), j) = known_[k];
    for (size_t i = 0; i < estimated_.size(); ++i)
      p(static_cast<Eigen::Index>(estimated_[i]), j) = from_unit(estimated_[i], z(static_cast<Eigen::Index>(i), j));
  }
  return p;
}

Eigen::MatrixXd Estimator::parameters() const { return parameters_of(z_); }

Moments moments_of(const Eigen::Ref<const Eigen::RowVectorXd>& row) {
  if (row.size() == 0) return {};
  const double mean = row.mean();
  const double var = (row.array() - mean).square().sum() / static_cast<double>(std::max<Eigen::Index>(1, row.size() - 1));
  return {mean, std::sqrt(var)};
}

std::vector<Moments> Estimator::parameter_moments() const {
  const Eigen::MatrixXd p = parameters();
  std::vector<Moments> out(static_cast<size_t>(p.rows()));
  for (Eigen::Index k = 0; k < p.rows(); ++k) out[static_cast<size_t>(k)] = moments_of(p.row(k));
  return out;
}

EnsemblePrediction Estimator::predict(const Eigen::MatrixXd& parameters, const FieldVisitor& fields,
                                      bool with_sensors) const {
  const bool need_fields = with_sensors || static_cast<bool>(fields);
  const auto& t = model_.twin();
  const size_t n = static_cast<size_t>(parameters.cols());
  const size_t n_out = t.outputs.size();
  EnsemblePrediction out;
  out.sensors.resize(with_sensors ? static_cast<Eigen::Index>(sensors_.size()) : 0, parameters.cols());
  out.outputs.resize(static_cast<Eigen::Index>(n_out), parameters.cols());
  std::vector<Params> params(n);
  for (size_t j = 0; j < n; ++j) {
    params[j].resize(static_cast<size_t>(parameters.rows()));
    for (Eigen::Index k = 0; k < parameters.rows(); ++k) params[j][static_cast<size_t>(k)] = parameters(k, static_cast<Eigen::Index>(j));
  }
  std::vector<size_t> by_fem;
  if (surrogate_) {
    const SurrogateBatch b = surrogate_->evaluate(params, need_fields);
    const size_t n_nodes = model_.mesh().num_nodes();
    const int dim = model_.mesh().dim;
    for (size_t j = 0; j < n; ++j) {
      if (!b.in_bounds[j] || !(b.estimate[j] <= options_.tolerance)) {
        by_fem.push_back(j);
        continue;
      }
      const double* T = b.T.empty() ? nullptr : b.T.data() + j * n_nodes;
      const double* u = b.u.empty() ? nullptr : b.u.data() + j * n_nodes * static_cast<size_t>(dim);
      if (fields) fields(j, T, u);
      if (with_sensors) {
        const std::vector<double> s = sensors_.evaluate(params[j], T, u);
        for (size_t k = 0; k < s.size(); ++k) out.sensors(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(j)) = s[k];
      }
      for (size_t k = 0; k < n_out; ++k) out.outputs(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(j)) = b.output(j, k);
      ++out.surrogate;
    }
  } else {
    for (size_t j = 0; j < n; ++j) by_fem.push_back(j);
  }
  if (!by_fem.empty()) {
    std::vector<spec::Scenario> scenarios(by_fem.size());
    for (size_t i = 0; i < by_fem.size(); ++i) {
      scenarios[i].id = std::to_string(by_fem[i]);
      scenarios[i].parameters = params[by_fem[i]];
    }
    BatchOptions opt = fem_;
    if (need_fields)
      opt.field_sink = [&](size_t s, size_t, const double* T, const double* u) {
        if (fields) fields(by_fem[s], T, u);
        if (!with_sensors) return;
        const std::vector<double> v = sensors_.evaluate(scenarios[s].parameters, T, u);
        for (size_t k = 0; k < v.size(); ++k)
          out.sensors(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(by_fem[s])) = v[k];
      };
    const BatchResult r = solve_batch(model_, scenarios, opt);
    for (size_t i = 0; i < by_fem.size(); ++i)
      for (size_t k = 0; k < n_out; ++k)
        out.outputs(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(by_fem[i])) = r.scenarios[i].outputs[0][k];
    out.fem = by_fem.size();
  }
  return out;
}

const EnsemblePrediction& Estimator::prediction() const {
  if (!cached_) cached_ = predict_members({});
  return *cached_;
}

std::vector<Innovation> Estimator::assimilate(double time, const std::vector<SensorObservation>& readings) {
  // All or nothing: a failing advance or analysis, or one whose state is not finite (a reading
  // far beyond what the ensemble can explain overflows the filter), leaves the state as it was.
  const Eigen::MatrixXd z0 = z_, c0 = c_;
  const double time0 = time_;
  const bool started0 = started_;
  const long revision0 = revision_;
  const size_t advanced0[2] = {advanced_surrogate_, advanced_fem_};
  const std::mt19937_64 rng0 = rng_;
  std::optional<EnsemblePrediction> cached0 = cached_;  // still the prediction of the state kept
  try {
    auto innovations = assimilate_unchecked(time, readings);
    const bool finite = z_.allFinite() && c_.allFinite() &&
                        std::all_of(innovations.begin(), innovations.end(), [](const Innovation& in) { return std::isfinite(in.z); });
    if (!finite)
      throw SolverDiverged("the analysis of " + std::to_string(readings.size()) + " reading(s) at t = " + std::to_string(time) +
                           " s gave a state that is not finite (a reading far beyond what the twin can explain?); "
                           "the state is unchanged");
    return innovations;
  } catch (...) {
    z_ = z0;
    c_ = c0;
    time_ = time0;
    started_ = started0;
    revision_ = revision0;
    advanced_surrogate_ = advanced0[0];
    advanced_fem_ = advanced0[1];
    rng_ = rng0;
    cached_ = std::move(cached0);
    throw;
  }
}

std::vector<Innovation> Estimator::assimilate_unchecked(double time, const std::vector<SensorObservation>& readings) {
  advance(time);
  if (readings.empty()) return {};
  const auto& t = model_.twin();
  const EnsemblePrediction& pred = prediction();
  const Eigen::Index m = static_cast<Eigen::Index>(readings.size());
  Eigen::MatrixXd hx(m, z_.cols());
  Eigen::VectorXd y(m), noise(m);
  for (Eigen::Index k = 0; k < m; ++k) {
    const auto& r = readings[static_cast<size_t>(k)];
    DOPPEL_VERIFY(r.sensor < t.sensors.size(), "sensor", "no sensor with index " + std::to_string(r.sensor));
    hx.row(k) = pred.sensors.row(static_cast<Eigen::Index>(r.sensor));
    y(k) = r.value;
    // A sensor declared noiseless still gets a floor, or one reading would collapse the ensemble.
    noise(k) = std::max(t.sensors[r.sensor].noise_std, 1e-6 * std::max(1.0, std::abs(r.value)));
  }
  EnkfOptions eo;
  eo.inflation = options_.inflation;
  eo.outlier_gate = options_.outlier_gate;
  std::vector<Innovation> innovations;
  if (transient()) {  // parameters and temperature coordinates updated together
    Eigen::MatrixXd x(z_.rows() + c_.rows(), z_.cols());
    x << z_, c_;
    const Eigen::VectorXd prior_spread = spread(x);
    innovations = enkf_analysis(x, hx, y, noise, eo, rng_);
    relax_to_prior_spread(x, prior_spread, options_.relaxation);
    z_ = x.topRows(z_.rows());
    c_ = x.bottomRows(c_.rows());
  } else {
    innovations = enkf_analysis(z_, hx, y, noise, eo, rng_);
  }
  ++revision_;
  cached_.reset();
  return innovations;
}

std::string Estimator::save() const {
  const auto& t = model_.twin();
  nlohmann::json j;
  j["twin"] = t.name;
  j["content_hash"] = t.content_hash;
  j["time"] = time_;
  j["started"] = started_;
  j["revision"] = revision_;
  j["known"] = known_;
  std::vector<std::string> names;
  for (size_t p : estimated_) names.push_back(t.parameters[p].name);
  j["estimated"] = names;
  std::vector<std::vector<double>> z(static_cast<size_t>(z_.rows()));
  for (Eigen::Index i = 0; i < z_.rows(); ++i)
    for (Eigen::Index k = 0; k < z_.cols(); ++k) z[static_cast<size_t>(i)].push_back(z_(i, k));
  j["z"] = z;
  if (transient()) {
    std::vector<std::vector<double>> c(static_cast<size_t>(c_.rows()));
    for (Eigen::Index i = 0; i < c_.rows(); ++i)
      for (Eigen::Index k = 0; k < c_.cols(); ++k) c[static_cast<size_t>(i)].push_back(c_(i, k));
    j["c"] = c;
    j["advanced"] = {advanced_surrogate_, advanced_fem_};
  }
  return j.dump();
}

void Estimator::restore(const std::string& text) {
  const auto& t = model_.twin();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    throw InvalidInput("state", std::string("the stored state is not JSON: ") + e.what());
  }
  DOPPEL_VERIFY(j.value("content_hash", "") == t.content_hash, "state",
                "the stored state belongs to another version of twin '" + t.name + "'");
  const auto z = j.at("z").get<std::vector<std::vector<double>>>();
  DOPPEL_VERIFY(z.size() == estimated_.size() && (z.empty() || z[0].size() == static_cast<size_t>(z_.cols())), "state",
                "the stored ensemble does not fit (members or estimated parameters differ)");
  std::vector<std::vector<double>> c;
  std::vector<size_t> advanced = {0, 0};
  if (transient()) {
    c = j.at("c").get<std::vector<std::vector<double>>>();
    DOPPEL_VERIFY(c.size() == static_cast<size_t>(c_.rows()) && (c.empty() || c[0].size() == static_cast<size_t>(c_.cols())),
                  "state", "the stored temperature coordinates do not fit (another bundle or ensemble size)");
    advanced = j.at("advanced").get<std::vector<size_t>>();
    DOPPEL_VERIFY(advanced.size() == 2, "state", "bad 'advanced' counts");
  }
  const auto known = j.at("known").get<std::vector<double>>();
  DOPPEL_VERIFY(known.size() == t.parameters.size(), "state", "the stored parameter values do not fit twin '" + t.name + "'");
  const double time = j.at("time").get<double>();
  const bool started = j.at("started").get<bool>();
  const long revision = j.at("revision").get<long>();
  for (size_t i = 0; i < z.size(); ++i)
    for (size_t k = 0; k < z[i].size(); ++k) z_(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(k)) = z[i][k];
  for (size_t i = 0; i < c.size(); ++i)
    for (size_t k = 0; k < c[i].size(); ++k) c_(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(k)) = c[i][k];
  advanced_surrogate_ = advanced[0];
  advanced_fem_ = advanced[1];
  known_ = known;
  time_ = time;
  started_ = started;
  revision_ = revision;
  cached_.reset();
}

}  // namespace doppel::twin
