#include "twin/estimator.hpp"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "spec/errors.hpp"

namespace doppel::twin {

namespace {
constexpr double kEdge = 1e-6;  // unit coordinates stay in [kEdge, 1 - kEdge]
double logit(double u) { return std::log(u / (1 - u)); }
double logistic(double z) { return 1 / (1 + std::exp(-z)); }
}  // namespace

SensorResponse solve_with_sensors(const FemModel& model, const Params& parameters) {
  spec::Scenario s;
  s.id = "truth";
  s.parameters = parameters;
  const OutputEvaluator sensors = OutputEvaluator::for_sensors(model);
  SensorResponse out;
  BatchOptions o;
  o.keep_first_fields = false;
  o.field_sink = [&](size_t, size_t, const double* T, const double* u) { out.sensors = sensors.evaluate(parameters, T, u); };
  out.outputs = solve_batch(model, {s}, o).scenarios[0].outputs[0];
  return out;
}

Estimator::Estimator(const FemModel& model, const Surrogate* surrogate, EstimatorOptions options, BatchOptions fem)
    : model_(model), surrogate_(surrogate), options_(options), fem_(std::move(fem)),
      sensors_(OutputEvaluator::for_sensors(model)), rng_(options.seed) {
  const auto& t = model.twin();
  DOPPEL_VERIFY(!t.analysis.transient, "analysis.type",
                "state estimation of transient twins is not built yet (twin '" + t.name + "')");
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
  if (started_ && time > time_) random_walk(time - time_);
  if (!started_ || time > time_) time_ = time;
  started_ = true;
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

std::vector<Moments> Estimator::parameter_moments() const {
  const Eigen::MatrixXd p = parameters();
  std::vector<Moments> out(static_cast<size_t>(p.rows()));
  for (Eigen::Index k = 0; k < p.rows(); ++k) {
    const double mean = p.row(k).mean();
    const double var = (p.row(k).array() - mean).square().sum() / static_cast<double>(std::max<Eigen::Index>(1, p.cols() - 1));
    out[static_cast<size_t>(k)] = {mean, std::sqrt(var)};
  }
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
  if (!cached_) cached_ = predict(parameters());
  return *cached_;
}

std::vector<Innovation> Estimator::assimilate(double time, const std::vector<SensorObservation>& readings) {
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
  const auto innovations = enkf_analysis(z_, hx, y, noise, eo, rng_);
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
  for (size_t i = 0; i < z.size(); ++i)
    for (size_t k = 0; k < z[i].size(); ++k) z_(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(k)) = z[i][k];
  const auto known = j.at("known").get<std::vector<double>>();
  DOPPEL_VERIFY(known.size() == t.parameters.size(), "state", "the stored parameter values do not fit twin '" + t.name + "'");
  known_ = known;
  time_ = j.at("time").get<double>();
  started_ = j.at("started").get<bool>();
  revision_ = j.at("revision").get<long>();
  cached_.reset();
}

}  // namespace doppel::twin
