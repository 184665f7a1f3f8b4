#include "surrogate/surrogate.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "kernels/fem/assembly.hpp"
#include "kernels/io/npy.hpp"
#include "kernels/solvers/scenario_batch.hpp"
#include "kernels/host/parallel.hpp"
#include "spec/errors.hpp"
#include "spec/hash.hpp"
#include "spec/json_reader.hpp"
#include "surrogate/engine.hpp"
#include "surrogate/galerkin.hpp"
#include "surrogate/output_map.hpp"
#include "surrogate/reduced_space.hpp"
#include "surrogate/residual_estimator.hpp"

namespace doppel {

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

Eigen::MatrixXd rows_to_matrix(const NpyArray& a, const std::string& name) {
  DOPPEL_VERIFY(a.shape.size() == 2, name, "expected a 2-D array");
  Eigen::MatrixXd m(static_cast<Eigen::Index>(a.shape[0]), static_cast<Eigen::Index>(a.shape[1]));
  for (size_t i = 0; i < a.shape[0]; ++i)
    for (size_t j = 0; j < a.shape[1]; ++j) m(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = a.values[i * a.shape[1] + j];
  return m;
}

void write_matrix(const std::string& path, const Eigen::MatrixXd& m) {
  std::vector<double> rows(static_cast<size_t>(m.size()));
  for (Eigen::Index i = 0; i < m.rows(); ++i)
    for (Eigen::Index j = 0; j < m.cols(); ++j) rows[static_cast<size_t>(i * m.cols() + j)] = m(i, j);
  write_npy(path, rows.data(), {static_cast<size_t>(m.rows()), static_cast<size_t>(m.cols())});
}

void write_vector(const std::string& path, const std::vector<double>& v) { write_npy(path, v.data(), {v.size()}); }

const char* field_name(bool thermal) { return thermal ? "temperature" : "displacement"; }

}  // namespace

std::string Surrogate::mesh_hash(const Mesh& m) {
  using spec::fnv1a;
  uint64_t h = fnv1a(&m.dim, sizeof(m.dim));
  h = fnv1a(m.coords.data(), m.coords.size() * sizeof(double), h);
  h = fnv1a(m.cells.data(), m.cells.size() * sizeof(int), h);
  h = fnv1a(m.cell_region.data(), m.cell_region.size() * sizeof(int), h);
  h = fnv1a(m.facets.data(), m.facets.size() * sizeof(int), h);
  h = fnv1a(m.facet_boundary.data(), m.facet_boundary.size() * sizeof(int), h);
  return spec::hex64(h);
}

Surrogate::Surrogate(const FemModel& model, SurrogateParts parts, const std::string& device)
    : model_(model), parts_(std::move(parts)), device_(device) {
  build();
}

Surrogate::~Surrogate() = default;

const std::string& Surrogate::device() const { return device_; }
bool Surrogate::linear_outputs() const { return linear_; }

void Surrogate::build() {
  const size_t P = model_.twin().parameters.size();
  DOPPEL_VERIFY(parts_.lower.size() == P && parts_.upper.size() == P, "bundle",
                "holds bounds for " + std::to_string(parts_.lower.size()) + " parameters, the twin has " + std::to_string(P));
  // Transient thermo-elastic twins reduce the temperature only: the displacement follows from
  // it (quasi-static mechanics, solved for each reduced temperature).
  DOPPEL_VERIFY(model_.thermal() == parts_.T.has_value() &&
                    (model_.transient() ? !parts_.u.has_value() : model_.mechanical() == parts_.u.has_value()),
                "bundle", "its fields do not match the twin's physics");
  M_ = std::make_unique<MassMatrix>(model_.mesh());
  rms_scale_ = 1.0 / std::sqrt(region_measure(model_.mesh(), -1));
  DOPPEL_VERIFY(parts_.output_calibration.empty() || parts_.output_calibration.size() == model_.twin().outputs.size(),
                "bundle", "per-output error factors do not match the twin's outputs");
  const int dim = model_.mesh().dim;
  if (parts_.T) {
    space_T_ = std::make_unique<ReducedSpace>(model_.thermal_operator(), model_.thermal_rhs_terms(), 1);
    DOPPEL_VERIFY(parts_.T->mean.size() == space_T_->size(), "bundle", "temperature basis size does not match the mesh");
    space_T_->set_basis(*parts_.T);
  }
  if (parts_.u) {
    space_u_ = std::make_unique<ReducedSpace>(model_.mechanical_operator(), model_.mechanical_rhs_terms(), dim);
    DOPPEL_VERIFY(parts_.u->mean.size() == space_u_->size(), "bundle", "displacement basis size does not match the mesh");
    space_u_->set_basis(*parts_.u);
  }
  const int R = rank_T() + rank_u();
  const bool steady = !model_.transient();
  DOPPEL_VERIFY(!steady || (parts_.net.shape.outputs == R && static_cast<int>(parts_.coef_mean.size()) == R &&
                    static_cast<int>(parts_.coef_std.size()) == R && parts_.net.shape.inputs == static_cast<int>(P)),
                "bundle", "network shape does not match the bases and parameters");
  evaluator_ = std::make_unique<OutputEvaluator>(OutputEvaluator::for_outputs(model_));
  if (steady) all_sites_ = std::make_unique<OutputEvaluator>(*evaluator_);
  if (parts_.sites.empty()) parts_.sites.resize(evaluator_->size());
  DOPPEL_VERIFY(parts_.sites.size() == evaluator_->size(), "bundle", "output list does not match the twin");
  for (size_t k = 0; k < parts_.sites.size(); ++k) {
    if (parts_.sites[k].empty()) continue;
    for (size_t i : parts_.sites[k])
      DOPPEL_VERIFY(i < evaluator_->num_sites(k), "bundle", "output site index out of range");
    evaluator_->restrict_sites(k, parts_.sites[k]);
  }
  // Transient thermo-elastic outputs read a displacement solved from the reduced temperature.
  linear_ = outputs_linear_in_fields(model_, *evaluator_) && !(model_.transient() && model_.mechanical());
  if (linear_) map_ = std::make_unique<OutputMap>(model_, *evaluator_, space_T_.get(), space_u_.get());
  const bool onT = model_.thermal();
  const ReducedSpace& primary = onT ? *space_T_ : *space_u_;
  const Params p0 = model_.twin().default_parameters();
  const Params theta0 = !steady ? GalerkinHeat::nominal_theta(model_)
                                : onT ? model_.thermal_theta(p0) : model_.mechanical_theta(p0);
  if (parts_.gram.size() == 0) {
    estimator_ = std::make_unique<ResidualEstimator>(primary, theta0, *M_);
    parts_.gram = estimator_->gram();
  } else {
    estimator_ = std::make_unique<ResidualEstimator>(primary, theta0, *M_, parts_.gram);
  }
  if (!steady) {
    galerkin_ = std::make_unique<GalerkinHeat>(model_, *space_T_, *M_);
    galerkin_->set_estimator(estimator_.get());
    return;
  }

  auto em = std::make_shared<EngineModel>();
  em->net = parts_.net;
  em->coef_mean = parts_.coef_mean;
  em->coef_std = parts_.coef_std;
  em->thermal = model_.thermal();
  em->mechanical = model_.mechanical();
  em->rank_T = rank_T();
  em->rank_u = rank_u();
  em->lift_T = space_T_ ? static_cast<int>(space_T_->lift_terms().size()) : 0;
  em->lift_u = space_u_ ? static_cast<int>(space_u_->lift_terms().size()) : 0;
  em->linear_outputs = linear_;
  if (linear_) {
    // The engine's map: a mean of a linear quantity (identity site function) is itself one
    // linear row, so its sites collapse into their weighted average.
    const Eigen::MatrixXd& L = map_->matrix();
    std::vector<Eigen::RowVectorXd> rows;
    for (size_t k = 0; k < evaluator_->size(); ++k) {
      EngineOutput o;
      o.offset = rows.size();
      o.components = evaluator_->components(k);
      o.function = evaluator_->site_function(k);
      o.reduce = evaluator_->request(k).reduce;
      const Eigen::Index first = static_cast<Eigen::Index>(evaluator_->offset(k));
      const auto& w = evaluator_->site_weights(k);
      if (o.reduce == spec::Reduction::mean && o.function == SiteFunction::identity) {
        Eigen::RowVectorXd row = Eigen::RowVectorXd::Zero(L.cols());
        double sw = 0;
        for (size_t l = 0; l < w.size(); ++l) {
          row += w[l] * L.row(first + static_cast<Eigen::Index>(l));
          sw += w[l];
        }
        rows.push_back(row / sw);
        o.sites = 1;
        o.reduce = spec::Reduction::none;
      } else {
        o.sites = static_cast<int>(evaluator_->num_sites(k));
        o.weights = w;
        for (Eigen::Index i = 0; i < o.sites * o.components; ++i) rows.push_back(L.row(first + i));
      }
      em->outputs.push_back(std::move(o));
    }
    em->output_map.resize(static_cast<Eigen::Index>(rows.size()), L.cols());
    for (size_t i = 0; i < rows.size(); ++i) em->output_map.row(static_cast<Eigen::Index>(i)) = rows[i];
  }
  em->gram = parts_.gram;
  em->est_terms = static_cast<int>(primary.op().num_terms());
  em->est_loads = static_cast<int>(estimator_->load_terms().size());
  auto columns = [&](const ReducedSpace& s) {
    Eigen::MatrixXd F(s.size(), static_cast<Eigen::Index>(s.lift_terms().size()) + 1 + s.rank());
    Eigen::Index j = 0;
    for (size_t i = 0; i < s.lift_terms().size(); ++i) F.col(j++) = s.lift_vector(i);
    F.col(j++) = s.basis().mean;
    for (int m = 0; m < s.rank(); ++m) F.col(j++) = s.basis().modes.col(m);
    return F;
  };
  if (space_T_) em->field_T = columns(*space_T_);
  if (space_u_) em->field_u = columns(*space_u_);
  const Eigen::MatrixXd& Fp = onT ? em->field_T : em->field_u;
  em->norm_gram = Fp.transpose() * M_->apply(Fp, primary.components());
  em->calibration = parts_.calibration;
  engine_model_ = em;
  engine_ = std::make_unique<InferenceEngine>(engine_model_, device_);
  // The second tier: the primary field's reduced operator; thermo-elastic twins add the
  // displacement's and the reduced thermal-strain coupling, which is affine in the reduced
  // temperature when no material property is a parameter.
  if (!(space_T_ && space_u_)) {
    reduced_ = std::make_unique<ReducedOperator>(primary);
    return;
  }
  auto param = [](const std::optional<spec::Value>& v) { return v && v->is_parameter(); };
  for (const auto& m : model_.twin().materials)
    if (param(m.youngs_modulus) || param(m.poisson_ratio) || param(m.thermal_expansion) || param(m.reference_temperature) ||
        param(m.conductivity))
      return;
  reduced_ = std::make_unique<ReducedOperator>(*space_T_);
  reduced_u_ = std::make_unique<ReducedOperator>(*space_u_);
  const Eigen::MatrixXd& Vu = space_u_->basis().modes;
  const Eigen::Index nu = space_u_->size(), nT = space_T_->size();
  auto load = [&](const Eigen::VectorXd& T) {  // V_u^T f_th(T)
    Eigen::VectorXd b = Eigen::VectorXd::Zero(nu);
    model_.add_thermal_strain_load(p0, T.data(), b.data());
    return Eigen::VectorXd(Vu.transpose() * b);
  };
  auto c = std::make_unique<ThermalCoupling>();
  c->q0 = load(Eigen::VectorXd::Zero(nT));
  c->Qm = load(space_T_->basis().mean) - c->q0;
  for (size_t i = 0; i < space_T_->lift_terms().size(); ++i) c->Qg.push_back(load(space_T_->lift_vector(i)) - c->q0);
  c->QV.resize(Vu.cols(), space_T_->rank());
  parallel_for(static_cast<size_t>(space_T_->rank()), [&](size_t j) {
    c->QV.col(static_cast<Eigen::Index>(j)) = load(space_T_->basis().modes.col(static_cast<Eigen::Index>(j))) - c->q0;
  });
  coupling_ = std::move(c);
}

std::vector<Surrogate::ReducedAnswer> Surrogate::evaluate_reduced(const std::vector<Params>& params, bool fields) const {
  DOPPEL_VERIFY(reduced_, "bundle", "has no reduced tier (a transient twin, or a thermo-elastic one whose materials depend on parameters)");
  const bool onT = model_.thermal();
  const ReducedSpace& primary = onT ? *space_T_ : *space_u_;
  const Eigen::MatrixXd& H = engine_model_->norm_gram;
  std::vector<ReducedAnswer> out(params.size());
  parallel_for(params.size(), [&](size_t s) {
    const Params& p = params[s];
    const Params theta = onT ? model_.thermal_theta(p) : model_.mechanical_theta(p);
    const Eigen::VectorXd c = reduced_->solve_steady(primary, theta, p);
    Eigen::VectorXd u;  // thermo-elastic: the displacement of the reduced temperature
    if (coupling_) {
      const Params theta_u = model_.mechanical_theta(p);
      const std::vector<double> phi_T = space_T_->lift_coefficients(p);
      Eigen::VectorXd rhs = -reduced_u_->apply(theta_u, space_u_->lift_coefficients(p), 1.0, nullptr);
      for (size_t m = 0; m < reduced_u_->b.size(); ++m) rhs += space_u_->terms()[reduced_u_->load_terms[m]].coef(p) * reduced_u_->b[m];
      rhs += coupling_->q0 + coupling_->Qm + coupling_->QV * c;
      for (size_t i = 0; i < phi_T.size(); ++i) rhs += phi_T[i] * coupling_->Qg[i];
      const Eigen::VectorXd cu = reduced_u_->matrix(theta_u).ldlt().solve(rhs);
      u = space_u_->reconstruct(p, cu.data());
    }
    std::vector<double> psi(estimator_->size());
    estimator_->features(theta, p, c.data(), psi.data());
    const std::vector<double> phi = primary.lift_coefficients(p);
    Eigen::VectorXd y(static_cast<Eigen::Index>(phi.size()) + 1 + c.size());
    for (size_t i = 0; i < phi.size(); ++i) y(static_cast<Eigen::Index>(i)) = phi[i];
    y(static_cast<Eigen::Index>(phi.size())) = 1.0;
    y.tail(c.size()) = c;
    const double norm = std::sqrt(std::max(y.dot(H * y), 1e-300));
    const double eta = estimator_->norm(psi.data());
    const bool own = parts_.reduced_calibration > 0;
    out[s].estimate = (own ? parts_.reduced_calibration : parts_.calibration) * eta / norm;
    out[s].field_error = rms(eta);
    out[s].relative_residual = eta / norm;
    if (own && !parts_.reduced_output_calibration.empty()) {
      for (double f : parts_.reduced_output_calibration) out[s].output_estimates.push_back(f * out[s].field_error);
    } else {
      out[s].output_estimates = output_estimates(out[s].field_error);
    }
    const Eigen::VectorXd x = primary.reconstruct(p, c.data());
    out[s].outputs = all_sites_->evaluate(p, onT ? x.data() : nullptr, coupling_ ? u.data() : onT ? nullptr : x.data());
    if (fields) out[s].field.assign(x.data(), x.data() + x.size());
    if (fields && coupling_) out[s].displacement.assign(u.data(), u.data() + u.size());
  });
  return out;
}

void Surrogate::set_calibration(double c) {
  parts_.calibration = c;
  if (engine_model_) engine_model_->calibration = c;
}

void Surrogate::set_output_calibration(std::vector<double> factors) {
  DOPPEL_ASSERT(factors.empty() || factors.size() == evaluator_->size());
  parts_.output_calibration = std::move(factors);
}

void Surrogate::set_reduced_calibration(double field, std::vector<double> outputs) {
  DOPPEL_ASSERT(outputs.empty() || outputs.size() == evaluator_->size());
  parts_.reduced_calibration = field;
  parts_.reduced_output_calibration = std::move(outputs);
}

std::vector<double> Surrogate::output_estimates(double field_error) const {
  std::vector<double> e;
  e.reserve(parts_.output_calibration.size());
  for (double f : parts_.output_calibration) e.push_back(f * field_error);
  return e;
}

bool Surrogate::in_bounds(const spec::Scenario& sc) const {
  if (!in_bounds(sc.parameters)) return false;
  for (const auto& sched : sc.schedules)
    for (const auto& [t, v] : sched.points) {
      Params p = sc.parameters;
      p[static_cast<size_t>(sched.parameter)] = v;
      if (!in_bounds(p)) return false;
    }
  return true;
}

std::vector<TransientAnswer> Surrogate::evaluate_transient(const std::vector<spec::Scenario>& scenarios, bool fields) const {
  DOPPEL_VERIFY(galerkin_, "bundle", "holds a steady surrogate; this analysis is transient");
  const bool mechanics = model_.mechanical();
  std::vector<TransientAnswer> out(scenarios.size());
  std::vector<std::vector<Params>> at(mechanics ? scenarios.size() : 0);  // parameters at each output time
  parallel_for(scenarios.size(), [&](size_t s) {
    const ReducedTrajectory tr = galerkin_->run(scenarios[s]);
    TransientAnswer& a = out[s];
    a.in_bounds = in_bounds(scenarios[s]);
    for (size_t t = 0; t < tr.c.size(); ++t) {
      if (linear_) {
        std::vector<double> z(OutputMap::z_size(space_T_.get(), nullptr));
        size_t i = 0;
        z[i++] = 1.0;
        for (double f : tr.phi[t]) z[i++] = f;
        for (Eigen::Index j = 0; j < tr.c[t].size(); ++j) z[i++] = tr.c[t](j);
        const Eigen::VectorXd comps = map_->matrix() * Eigen::Map<const Eigen::VectorXd>(z.data(), static_cast<Eigen::Index>(z.size()));
        a.outputs.push_back(evaluator_->reduce(comps.data()));
      }
      if (!linear_ || fields) {
        Eigen::VectorXd T = space_T_->basis().mean + space_T_->basis().modes * tr.c[t];
        for (size_t i = 0; i < space_T_->lift_terms().size(); ++i) T += tr.phi[t][i] * space_T_->lift_vector(i);
        if (!linear_ && !mechanics) a.outputs.push_back(evaluator_->evaluate(tr.p[t], T.data(), nullptr));
        if (fields || mechanics) a.T.push_back(std::move(T));
      }
      a.estimate.push_back(parts_.calibration * tr.estimate[t]);
      a.max_estimate = std::max(a.max_estimate, a.estimate.back());
      a.field_error.push_back(rms(tr.absolute[t]));
      if (has_output_estimates()) a.output_estimates.push_back(output_estimates(a.field_error.back()));
    }
    if (mechanics) at[s] = tr.p;
  });
  if (!mechanics) return out;
  // Thermo-elastic: the quasi-static displacement of every reduced temperature (its thermal
  // strain and the mechanical loads at that time's parameters), then the outputs from both, in
  // groups of a few hundred fields (one factor of the elastic operator serves a group).
  const size_t times = scenarios.empty() ? 0 : out[0].T.size();
  const size_t group = std::max<size_t>(1, 256 / std::max<size_t>(1, times));
  const Eigen::Index n = static_cast<Eigen::Index>(model_.mesh().num_nodes());
  BatchOptions opt;
  opt.keep_first_fields = false;
  for (size_t s0 = 0; s0 < scenarios.size(); s0 += group) {
    const size_t s1 = std::min(scenarios.size(), s0 + group);
    std::vector<spec::Scenario> sc;
    std::vector<double> when;  // each field's time: the clock that parameters_at appended
    Eigen::MatrixXd T(n, static_cast<Eigen::Index>((s1 - s0) * times));
    for (size_t s = s0; s < s1; ++s)
      for (size_t t = 0; t < times; ++t) {
        T.col(static_cast<Eigen::Index>(sc.size())) = out[s].T[t];
        spec::Scenario x;
        x.id = scenarios[s].id;
        x.parameters.assign(at[s][t].begin(), at[s][t].end() - 1);
        when.push_back(at[s][t].back());
        sc.push_back(std::move(x));
      }
    if (fields)
      opt.field_sink = [&](size_t k, size_t, const double*, const double* u) {
        out[s0 + k / times].u.emplace_back(Eigen::Map<const Eigen::VectorXd>(u, n * model_.mesh().dim));
      };
    const BatchResult r = solve_with_temperatures(model_, sc, T, when, opt);
    for (size_t k = 0; k < sc.size(); ++k) out[s0 + k / times].outputs.push_back(r.scenarios[k].outputs[0]);
  }
  if (!fields)
    for (auto& a : out) a.T.clear();
  return out;
}

Eigen::VectorXd Surrogate::initial_coordinates(const Params& p) const {
  DOPPEL_VERIFY(galerkin_, "bundle", "holds a steady surrogate; this analysis is transient");
  return galerkin_->initial(p);
}

Eigen::VectorXd Surrogate::project_temperature(const Params& p, const double* T) const {
  DOPPEL_VERIFY(galerkin_, "bundle", "holds a steady surrogate; this analysis is transient");
  return galerkin_->project(p, T);
}

Surrogate::Advanced Surrogate::advance(const spec::Scenario& scenario, const Eigen::VectorXd& c, double seconds) const {
  DOPPEL_VERIFY(galerkin_, "bundle", "holds a steady surrogate; this analysis is transient");
  const ReducedTrajectory tr = galerkin_->run(scenario, c, seconds);
  Advanced a;
  a.c = tr.c.back();
  a.estimate = parts_.calibration * tr.estimate.back();
  a.in_bounds = in_bounds(scenario);
  return a;
}

bool Surrogate::in_bounds(const Params& p) const {
  for (size_t i = 0; i < p.size(); ++i) {
    const double lo = parts_.lower[i], hi = parts_.upper[i];
    const double tol = 1e-12 * std::max({1.0, std::abs(lo), std::abs(hi)});
    if (!(p[i] >= lo - tol && p[i] <= hi + tol)) return false;
  }
  return true;
}

Eigen::VectorXd Surrogate::temperature(const Params& p, const double* c) const { return space_T_->reconstruct(p, c); }
Eigen::VectorXd Surrogate::displacement(const Params& p, const double* c) const { return space_u_->reconstruct(p, c); }

double Surrogate::relative_l2(const double* ref, const double* approx, bool thermal) const {
  const int comps = thermal ? 1 : model_.mesh().dim;
  const size_t n = model_.mesh().num_nodes() * static_cast<size_t>(comps);
  std::vector<double> e(n);
  for (size_t i = 0; i < n; ++i) e[i] = ref[i] - approx[i];
  const double den = M_->inner(ref, ref, comps);
  return std::sqrt(M_->inner(e.data(), e.data(), comps) / std::max(den, 1e-300));
}

double Surrogate::explicit_eta(const Params& p, const double* field) const {
  const bool onT = model_.thermal();
  return estimator_->explicit_norm(onT ? model_.thermal_theta(p) : model_.mechanical_theta(p), p, field);
}

SurrogateBatch Surrogate::evaluate(const std::vector<Params>& params, bool fields, size_t chunk) const {
  DOPPEL_VERIFY(engine_, "bundle", "holds a transient surrogate: use evaluate_transient");
  // A GPU wants wide launches; the CPU wants the chunk's tensors to stay cache- and heap-sized.
  if (chunk == 0) chunk = device_ == "cuda" ? 65536 : 1024;
  const size_t S = params.size(), P = parts_.lower.size(), O = evaluator_->size();
  const size_t R = static_cast<size_t>(rank_T() + rank_u());
  const bool onT = model_.thermal();
  const ReducedSpace& primary = onT ? *space_T_ : *space_u_;
  SurrogateBatch out;
  out.S = S;
  out.outputs_per_scenario = O;
  out.outputs.resize(S * O);
  out.spread.resize(S * O);
  out.estimate.resize(S);
  out.field_error.resize(S);
  if (has_output_estimates()) out.output_estimate.resize(S * O);
  out.in_bounds.resize(S);
  out.coefficients.resize(S * R);
  const size_t nT = space_T_ ? static_cast<size_t>(space_T_->size()) : 0, nu = space_u_ ? static_cast<size_t>(space_u_->size()) : 0;
  if (fields) {
    out.T.resize(S * nT);
    out.u.resize(S * nu);
  }
  const size_t K = primary.op().num_terms();
  const std::vector<size_t>& load_terms = estimator_->load_terms();
  const size_t LT = space_T_ ? space_T_->lift_terms().size() : 0, LU = space_u_ ? space_u_->lift_terms().size() : 0;
  for (size_t begin = 0; begin < S; begin += std::max<size_t>(1, chunk)) {
    const size_t end = std::min(S, begin + std::max<size_t>(1, chunk)), n = end - begin;
    EngineInputs in;
    in.S = n;
    in.x.resize(n * P);
    in.loads.resize(n * load_terms.size());
    in.theta.resize(n * K);
    in.lift_T.resize(n * LT);
    in.lift_u.resize(n * LU);
    parallel_for(n, [&](size_t i) {
      const Params& p = params[begin + i];
      DOPPEL_VERIFY(p.size() == P, "scenarios[" + std::to_string(begin + i) + "].parameters", "wrong number of parameters");
      out.in_bounds[begin + i] = in_bounds(p);
      for (size_t j = 0; j < P; ++j) {
        const double lo = parts_.lower[j], hi = parts_.upper[j];
        in.x[i * P + j] = hi > lo ? 2.0 * (p[j] - lo) / (hi - lo) - 1.0 : 0.0;
      }
      for (size_t m = 0; m < load_terms.size(); ++m) in.loads[i * load_terms.size() + m] = primary.terms()[load_terms[m]].coef(p);
      const Params theta = onT ? model_.thermal_theta(p) : model_.mechanical_theta(p);
      std::copy(theta.begin(), theta.end(), in.theta.begin() + static_cast<long>(i * K));
      if (space_T_) {
        const auto phi = space_T_->lift_coefficients(p);
        std::copy(phi.begin(), phi.end(), in.lift_T.begin() + static_cast<long>(i * LT));
      }
      if (space_u_) {
        const auto phi = space_u_->lift_coefficients(p);
        std::copy(phi.begin(), phi.end(), in.lift_u.begin() + static_cast<long>(i * LU));
      }
    });
    const EngineResult r = engine_->run(in, fields);
    std::copy(r.coefficients.begin(), r.coefficients.end(), out.coefficients.begin() + static_cast<long>(begin * R));
    std::copy(r.estimate.begin(), r.estimate.end(), out.estimate.begin() + static_cast<long>(begin));
    for (size_t i = 0; i < n; ++i) {
      out.field_error[begin + i] = rms(r.eta[i]);
      if (!parts_.output_calibration.empty())
        for (size_t k = 0; k < O; ++k) out.output_estimate[(begin + i) * O + k] = parts_.output_calibration[k] * out.field_error[begin + i];
    }
    if (fields) {
      std::copy(r.T.begin(), r.T.end(), out.T.begin() + static_cast<long>(begin * nT));
      std::copy(r.u.begin(), r.u.end(), out.u.begin() + static_cast<long>(begin * nu));
    }
    if (linear_) {
      std::copy(r.outputs.begin(), r.outputs.end(), out.outputs.begin() + static_cast<long>(begin * O));
      std::copy(r.spread.begin(), r.spread.end(), out.spread.begin() + static_cast<long>(begin * O));
      continue;
    }
    // Outputs from reconstructed fields (materials depend on parameters).
    const size_t E = static_cast<size_t>(parts_.net.shape.members);
    parallel_for(n, [&](size_t i) {
      const Params& p = params[begin + i];
      auto outputs_of = [&](const double* c) {
        Eigen::VectorXd T, u;
        if (space_T_) T = space_T_->reconstruct(p, c);
        if (space_u_) u = space_u_->reconstruct(p, c + rank_T());
        return evaluator_->evaluate(p, space_T_ ? T.data() : nullptr, space_u_ ? u.data() : nullptr);
      };
      const std::vector<double> mean = outputs_of(&r.coefficients[i * R]);
      std::vector<double> s2(O, 0.0), m2(O, 0.0);
      std::vector<std::vector<double>> members;
      for (size_t e = 0; e < E; ++e) members.push_back(outputs_of(&r.member_coefficients[(e * n + i) * R]));
      for (size_t k = 0; k < O; ++k) {
        double mu = 0;
        for (size_t e = 0; e < E; ++e) mu += members[e][k] / static_cast<double>(E);
        for (size_t e = 0; e < E; ++e) s2[k] += (members[e][k] - mu) * (members[e][k] - mu) / static_cast<double>(E);
        out.outputs[(begin + i) * O + k] = mean[k];
        out.spread[(begin + i) * O + k] = std::sqrt(s2[k]);
      }
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Bundle I/O

void Surrogate::save(const std::string& dir, const Json& training, const Json& validation) const {
  std::error_code ec;
  fs::create_directories(dir, ec);
  DOPPEL_VERIFY(!ec && fs::is_directory(dir), "--out", "cannot create the bundle directory " + dir);
  const auto& twin = model_.twin();
  const Mesh& mesh = model_.mesh();
  Json meta;
  meta["format"] = kBundleFormat;
  meta["kind"] = "doppel-surrogate";
  meta["twin"] = {{"name", twin.name}, {"content_hash", twin.content_hash}, {"physics", twin.physics_hashes}};
  meta["mesh"] = {{"hash", mesh_hash(mesh)}, {"nodes", mesh.num_nodes()}, {"cells", mesh.num_cells()},
                  {"dim", mesh.dim}, {"order", mesh.order()}};
  Json params = Json::array();
  for (size_t i = 0; i < twin.parameters.size(); ++i) {
    const auto& p = twin.parameters[i];
    params.push_back({{"name", p.name}, {"min", parts_.lower[i]}, {"max", parts_.upper[i]}, {"default", p.default_value}});
  }
  meta["parameters"] = params;
  meta["normalization"] = "x = 2 (p - min) / (max - min) - 1; 0 where min == max";
  Json fields = Json::object();
  auto write_field = [&](const PodBasis& b, bool thermal) {
    const std::string name = field_name(thermal);
    write_vector(dir + "/" + name + "_mean.npy", std::vector<double>(b.mean.data(), b.mean.data() + b.mean.size()));
    write_matrix(dir + "/" + name + "_modes.npy", b.modes.transpose());
    write_vector(dir + "/" + name + "_eigenvalues.npy", b.eigenvalues);
    fields[name] = {{"rank", b.rank()}, {"captured_energy", b.captured}, {"components", b.components},
                    {"dofs", b.mean.size()}, {"snapshot_modes", b.eigenvalues.size()},
                    {"inner_product", "mass matrix"},
                    {"files", {name + "_mean.npy", name + "_modes.npy", name + "_eigenvalues.npy"}}};
  };
  if (parts_.T) write_field(*parts_.T, true);
  if (parts_.u) write_field(*parts_.u, false);
  meta["fields"] = fields;
  meta["model"] = model_.transient() ? "galerkin" : "mlp_ensemble";
  if (model_.transient()) {
    const auto& an = model_.twin().analysis;
    meta["transient"] = {{"scheme", an.scheme == spec::TimeScheme::bdf2 ? "bdf2"
                                     : an.scheme == spec::TimeScheme::crank_nicolson ? "crank_nicolson" : "backward_euler"},
                         {"time_step", an.time_step}, {"end_time", an.end_time},
                         {"reduced_model", "Galerkin projection of the FE time step onto the temperature POD space"}};
  }
  const std::vector<int> widths = parts_.net.W.empty() ? std::vector<int>{} : parts_.net.shape.widths();
  Json files = Json::array();
  for (size_t l = 0; l + 1 < widths.size(); ++l) {
    const size_t E = static_cast<size_t>(parts_.net.shape.members), in = static_cast<size_t>(widths[l]), o = static_cast<size_t>(widths[l + 1]);
    write_npy(dir + "/network_W" + std::to_string(l) + ".npy", parts_.net.W[l].data(), {E, in, o});
    write_npy(dir + "/network_b" + std::to_string(l) + ".npy", parts_.net.b[l].data(), {E, o});
    files.push_back("network_W" + std::to_string(l) + ".npy");
    files.push_back("network_b" + std::to_string(l) + ".npy");
  }
  if (!widths.empty()) {
  write_vector(dir + "/coefficients_mean.npy", parts_.coef_mean);
  write_vector(dir + "/coefficients_std.npy", parts_.coef_std);
  meta["network"] = {{"kind", "mlp ensemble"}, {"widths", widths}, {"activation", "tanh"}, {"members", parts_.net.shape.members},
                     {"dtype", "float32"}, {"inputs", "normalized parameters"},
                     {"outputs", "standardized POD coefficients [temperature | displacement]"},
                     {"files", files}, {"standardization", {"coefficients_mean.npy", "coefficients_std.npy"}}};
  }
  write_matrix(dir + "/estimator_gram.npy", parts_.gram);
  meta["error_estimate"] = {{"field", field_name(model_.thermal())},
                            {"kind", "residual ||A0^-1 r||_M / ||x||_M, calibrated"},
                            {"calibration", parts_.calibration}, {"gram", "estimator_gram.npy"}};
  if (has_output_estimates()) {
    Json factors = Json::object();
    for (size_t k = 0; k < twin.outputs.size(); ++k) factors[twin.outputs[k].name] = parts_.output_calibration[k];
    meta["error_estimate"]["outputs"] = {
        {"kind", "factor * RMS field error estimate ||A0^-1 r||_M / sqrt(|domain|), in each output's units"},
        {"factors", factors}};
  }
  if (parts_.reduced_calibration > 0) {
    Json reduced = {{"calibration", parts_.reduced_calibration}};
    if (!parts_.reduced_output_calibration.empty()) {
      Json factors = Json::object();
      for (size_t k = 0; k < twin.outputs.size(); ++k) factors[twin.outputs[k].name] = parts_.reduced_output_calibration[k];
      reduced["outputs"] = {{"factors", factors}};
    }
    meta["error_estimate"]["reduced_tier"] = reduced;
  }
  Json outs = Json::array();
  for (size_t k = 0; k < twin.outputs.size(); ++k) {
    Json o = {{"name", twin.outputs[k].name}, {"definition", twin.outputs[k].definition_hash}};
    if (!parts_.sites[k].empty()) o["sites"] = parts_.sites[k];
    outs.push_back(o);
  }
  meta["outputs"] = outs;
  meta["outputs_from"] = linear_ ? "output map (no field reconstruction)" : "reconstructed fields";
  meta["versions"] = {{"doppel", DOPPEL_VERSION}, {"libtorch", torch_version()},
                      {"eigen", std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) + "." +
                                    std::to_string(EIGEN_MINOR_VERSION)}};
  meta["training"] = training;
  meta["validation"] = validation.contains("summary") ? validation["summary"] : Json::object();
  spec::write_text_file(dir + "/meta.json", meta.dump(2) + "\n", "--out");
  spec::write_text_file(dir + "/validation.json", validation.dump(2) + "\n", "--out");
}

std::unique_ptr<Surrogate> Surrogate::load(const std::string& dir, const FemModel& model, const std::string& device) {
  const std::string meta_path = dir + "/meta.json";
  DOPPEL_VERIFY(fs::is_regular_file(meta_path), "bundle", dir + " is not a doppel bundle (no meta.json)");
  Json meta;
  try {
    std::ifstream in(meta_path);
    meta = Json::parse(in);
  } catch (const std::exception& e) {
    throw InvalidInput("bundle", meta_path + " is not valid JSON: " + e.what());
  }
  auto get = [&](const Json& j, const char* key, const std::string& where) -> const Json& {
    DOPPEL_VERIFY(j.is_object() && j.contains(key), "bundle", "meta.json lacks " + where);
    return j[key];
  };
  try {
    DOPPEL_VERIFY(get(meta, "format", "format").get<int>() == kBundleFormat, "bundle",
                  "format " + meta["format"].dump() + " is not supported (this doppel reads format " + std::to_string(kBundleFormat) + ")");
    const auto& twin = model.twin();
    const std::string name = get(get(meta, "twin", "twin"), "name", "twin.name").get<std::string>();
    DOPPEL_VERIFY(name == twin.name, "bundle", "was trained for twin '" + name + "', not '" + twin.name + "'");
    if (meta["twin"].contains("physics") && meta["twin"]["physics"].is_object()) {
      // Keyed to the physics: edits to descriptions, sensors, limits, units, parameter bounds
      // and defaults or the list of outputs keep the bundle; a changed section is named.
      std::vector<std::string> changed;
      for (const auto& [section, h] : twin.physics_hashes)
        if (meta["twin"]["physics"].value(section, std::string()) != h) changed.push_back(section);
      if (!changed.empty()) {
        std::string list;
        for (size_t i = 0; i < changed.size(); ++i) list += (i ? (i + 1 == changed.size() ? " and " : ", ") : "") + changed[i];
        throw InvalidInput("bundle", "was trained for another version of twin '" + name + "': its " + list +
                                         (changed.size() == 1 ? " differs" : " differ") + " from this twin.json; retrain with doppel train");
      }
    } else {
      const std::string hash = meta["twin"]["content_hash"].get<std::string>();  // an older bundle: the whole file
      DOPPEL_VERIFY(hash == twin.content_hash, "bundle",
                    "was trained for another version of twin '" + name + "' (content hash " + hash + ", this twin.json has " +
                        twin.content_hash + "); retrain with doppel train");
    }
    const std::string mh = get(get(meta, "mesh", "mesh"), "hash", "mesh.hash").get<std::string>();
    DOPPEL_VERIFY(mh == mesh_hash(model.mesh()), "bundle",
                  "was trained on another mesh (mesh hash " + mh + ", this mesh " + mesh_hash(model.mesh()) + ")");
    SurrogateParts parts;
    // Outputs by name: the twin may list fewer, or in another order, than it was trained with.
    const Json& outs = get(meta, "outputs", "outputs");
    DOPPEL_VERIFY(outs.is_array(), "bundle", "meta.json outputs must be an array");
    std::string trained;
    for (const auto& o : outs) trained += (trained.empty() ? "" : ", ") + o.value("name", std::string("?"));
    for (const auto& t : twin.outputs) {
      const Json* found = nullptr;
      for (const auto& o : outs)
        if (o.value("name", std::string()) == t.name) found = &o;
      DOPPEL_VERIFY(found, "bundle",
                    "has no output '" + t.name + "' (trained with " + trained + "): retrain with doppel train to estimate its error");
      DOPPEL_VERIFY(!found->contains("definition") || (*found)["definition"] == t.definition_hash, "bundle",
                    "output '" + t.name + "' is defined differently than when the bundle was trained: retrain with doppel train");
      parts.sites.push_back(found->contains("sites") ? (*found)["sites"].get<std::vector<size_t>>() : std::vector<size_t>());
    }
    const Json& params = get(meta, "parameters", "parameters");
    DOPPEL_VERIFY(params.size() == twin.parameters.size(), "bundle", "parameter list does not match the twin");
    for (size_t i = 0; i < params.size(); ++i) {
      DOPPEL_VERIFY(params[i]["name"] == twin.parameters[i].name, "bundle",
                    "parameter " + std::to_string(i) + " is '" + params[i]["name"].get<std::string>() + "', the twin has '" +
                        twin.parameters[i].name + "'");
      parts.lower.push_back(params[i]["min"].get<double>());
      parts.upper.push_back(params[i]["max"].get<double>());
    }
    auto read_field = [&](bool thermal) {
      const std::string n = field_name(thermal);
      PodBasis b;
      b.components = thermal ? 1 : model.mesh().dim;
      const NpyArray mean = read_npy(dir + "/" + n + "_mean.npy");
      b.mean = Eigen::Map<const Eigen::VectorXd>(mean.values.data(), static_cast<Eigen::Index>(mean.size()));
      b.modes = rows_to_matrix(read_npy(dir + "/" + n + "_modes.npy"), n + "_modes.npy").transpose();
      DOPPEL_VERIFY(b.modes.rows() == b.mean.size(), "bundle", n + "_modes.npy does not match " + n + "_mean.npy");
      b.eigenvalues = read_npy(dir + "/" + n + "_eigenvalues.npy").values;
      b.captured = meta["fields"][n].value("captured_energy", 1.0);
      return b;
    };
    if (model.thermal()) parts.T = read_field(true);
    if (model.mechanical() && !model.transient()) parts.u = read_field(false);  // transient: u follows T
    const std::string kind = meta.value("model", "mlp_ensemble");
    DOPPEL_VERIFY(kind == (model.transient() ? "galerkin" : "mlp_ensemble"), "bundle",
                  "holds a " + kind + " model, this twin's analysis needs " + (model.transient() ? "galerkin" : "mlp_ensemble"));
    if (!model.transient()) {
    const Json& net = get(meta, "network", "network");
    const std::vector<int> widths = net["widths"].get<std::vector<int>>();
    DOPPEL_VERIFY(widths.size() >= 2, "bundle", "network.widths needs at least two entries");
    parts.net.shape.inputs = widths.front();
    parts.net.shape.outputs = widths.back();
    parts.net.shape.hidden.assign(widths.begin() + 1, widths.end() - 1);
    parts.net.shape.members = net["members"].get<int>();
    for (size_t l = 0; l + 1 < widths.size(); ++l) {
      const NpyArray W = read_npy(dir + "/network_W" + std::to_string(l) + ".npy");
      const NpyArray b = read_npy(dir + "/network_b" + std::to_string(l) + ".npy");
      const size_t E = static_cast<size_t>(parts.net.shape.members);
      DOPPEL_VERIFY(W.size() == E * static_cast<size_t>(widths[l] * widths[l + 1]) && b.size() == E * static_cast<size_t>(widths[l + 1]),
                    "bundle", "network layer " + std::to_string(l) + " does not match network.widths");
      parts.net.W.emplace_back(W.values.begin(), W.values.end());
      parts.net.b.emplace_back(b.values.begin(), b.values.end());
    }
    parts.coef_mean = read_npy(dir + "/coefficients_mean.npy").values;
    parts.coef_std = read_npy(dir + "/coefficients_std.npy").values;
    }
    parts.gram = rows_to_matrix(read_npy(dir + "/estimator_gram.npy"), "estimator_gram.npy");
    parts.calibration = get(get(meta, "error_estimate", "error_estimate"), "calibration", "error_estimate.calibration").get<double>();
    if (meta["error_estimate"].contains("outputs")) {
      const Json& factors = get(meta["error_estimate"]["outputs"], "factors", "error_estimate.outputs.factors");
      for (const auto& o : twin.outputs) {
        DOPPEL_VERIFY(factors.contains(o.name) && factors[o.name].is_number(), "bundle",
                      "error_estimate.outputs.factors lacks output '" + o.name + "'");
        parts.output_calibration.push_back(factors[o.name].get<double>());
      }
    }
    if (meta["error_estimate"].contains("reduced_tier")) {
      const Json& r = meta["error_estimate"]["reduced_tier"];
      const Json& c = get(r, "calibration", "error_estimate.reduced_tier.calibration");
      DOPPEL_VERIFY(c.is_number() && c.get<double>() > 0, "bundle", "error_estimate.reduced_tier.calibration must be a positive number");
      parts.reduced_calibration = c.get<double>();
      if (r.contains("outputs")) {
        const Json& factors = get(r["outputs"], "factors", "error_estimate.reduced_tier.outputs.factors");
        for (const auto& o : twin.outputs) {
          DOPPEL_VERIFY(factors.contains(o.name) && factors[o.name].is_number(), "bundle",
                        "error_estimate.reduced_tier.outputs.factors lacks output '" + o.name + "'");
          parts.reduced_output_calibration.push_back(factors[o.name].get<double>());
        }
      }
    }
    auto s = std::make_unique<Surrogate>(model, std::move(parts), device);
    s->meta_ = meta;
    return s;
  } catch (const Json::exception& e) {
    throw InvalidInput("bundle", "meta.json is malformed: " + std::string(e.what()));
  }
}

}  // namespace doppel
