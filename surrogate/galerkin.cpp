#include "surrogate/galerkin.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/host/parallel.hpp"
#include "kernels/solvers/scenario_batch.hpp"
#include "spec/errors.hpp"

namespace doppel {

Params GalerkinHeat::nominal_theta(const FemModel& model) {
  const auto& an = model.twin().analysis;
  const double dt = an.time_step;
  spec::Scenario nominal;
  nominal.parameters = model.twin().default_parameters();
  const Params p0 = nominal.parameters_at(0.0);  // values that depend on t: at the start
  if (an.scheme == spec::TimeScheme::crank_nicolson) return model.thermal_theta(p0, 0.5, 1.0 / dt);
  if (an.scheme == spec::TimeScheme::bdf2) return model.thermal_theta(p0, 1.0, 1.5 / dt);
  return model.thermal_theta(p0, 1.0, 1.0 / dt);
}

ReducedOperator::ReducedOperator(const ReducedSpace& space) {
  const AffineOperator& op = space.op();
  const size_t K = op.num_terms(), L = space.lift_terms().size();
  const Eigen::MatrixXd& V = space.basis().modes;
  const Eigen::Index n = op.size(), r = V.cols();
  A.assign(K, Eigen::MatrixXd(r, r));
  Ag.assign(K, std::vector<Eigen::VectorXd>(L));
  Am.assign(K, Eigen::VectorXd(r));
  parallel_for(K, [&](size_t k) {
    Params e(K, 0.0);
    e[k] = 1.0;
    Eigen::VectorXd y(n);
    for (Eigen::Index j = 0; j < r; ++j) {
      op.apply_free_rows(e.data(), V.col(j).data(), y.data());
      A[k].col(j) = V.transpose() * y;
    }
    for (size_t i = 0; i < L; ++i) {
      const Eigen::VectorXd g = space.lift_vector(i);
      op.apply_free_rows(e.data(), g.data(), y.data());
      Ag[k][i] = V.transpose() * y;
    }
    op.apply_free_rows(e.data(), space.basis().mean.data(), y.data());
    Am[k] = V.transpose() * y;
  });
  for (size_t m = 0; m < space.terms().size(); ++m) {
    const auto& t = space.terms()[m];
    if (t.load.empty()) continue;
    b.push_back(V.transpose() * Eigen::Map<const Eigen::VectorXd>(t.load.data(), n));
    load_terms.push_back(m);
  }
}

Eigen::VectorXd ReducedOperator::apply(const Params& theta, const std::vector<double>& phi, double s,
                                       const Eigen::VectorXd* c) const {
  Eigen::VectorXd y = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(Am.empty() ? 0 : Am[0].size()));
  for (size_t k = 0; k < theta.size(); ++k) {
    if (theta[k] == 0.0) continue;
    Eigen::VectorXd t = s * Am[k];
    if (c) t += A[k] * *c;
    for (size_t i = 0; i < phi.size(); ++i) t += phi[i] * Ag[k][i];
    y += theta[k] * t;
  }
  return y;
}

Eigen::MatrixXd ReducedOperator::matrix(const Params& theta) const {
  const Eigen::Index r = Am.empty() ? 0 : Am[0].size();
  Eigen::MatrixXd M = Eigen::MatrixXd::Zero(r, r);
  for (size_t k = 0; k < theta.size(); ++k) M += theta[k] * A[k];
  return M;
}

Eigen::VectorXd ReducedOperator::solve_steady(const ReducedSpace& space, const Params& theta, const Params& p) const {
  Eigen::VectorXd rhs = -apply(theta, space.lift_coefficients(p), 1.0, nullptr);
  for (size_t m = 0; m < b.size(); ++m) rhs += space.terms()[load_terms[m]].coef(p) * b[m];
  return matrix(theta).ldlt().solve(rhs);
}

GalerkinHeat::GalerkinHeat(const FemModel& model, const ReducedSpace& space, const MassMatrix& M)
    : model_(model), space_(space), M_(M), op_(space) {
  const Eigen::Index n = space.op().size(), r = space.basis().modes.cols();
  const size_t L = space.lift_terms().size();
  Eigen::MatrixXd F(n, static_cast<Eigen::Index>(L) + 1 + r);
  for (size_t i = 0; i < L; ++i) F.col(static_cast<Eigen::Index>(i)) = space.lift_vector(i);
  F.col(static_cast<Eigen::Index>(L)) = space.basis().mean;
  F.rightCols(r) = space.basis().modes;
  H_ = F.transpose() * M.apply(F, 1);
}

Eigen::VectorXd GalerkinHeat::apply(const Params& theta, const std::vector<double>& phi, double s,
                                    const Eigen::VectorXd* c) const {
  return op_.apply(theta, phi, s, c);
}

Eigen::MatrixXd GalerkinHeat::matrix(const Params& theta) const { return op_.matrix(theta); }

Eigen::VectorXd GalerkinHeat::project(const Params& p, const double* T, double* missed) const {
  Eigen::VectorXd d = Eigen::Map<const Eigen::VectorXd>(T, space_.size());
  space_.remove_lift(p, d.data());
  d -= space_.basis().mean;
  Eigen::VectorXd Md(d.size());
  M_.apply(d.data(), Md.data(), 1);
  Eigen::VectorXd c = space_.basis().modes.transpose() * Md;
  if (missed) *missed = std::sqrt(std::max(0.0, d.dot(Md) - c.squaredNorm()));
  return c;
}

Eigen::VectorXd GalerkinHeat::initial(const Params& p, double* missed) const {
  Eigen::VectorXd d = Eigen::VectorXd::Constant(space_.size(), model_.twin().analysis.initial_temperature);
  FemModel::apply_dirichlet(space_.terms(), p, d.data());
  return project(p, d.data(), missed);
}

ReducedTrajectory GalerkinHeat::run(const spec::Scenario& sc) const {
  const auto& an = model_.twin().analysis;
  // Initial state: the FE initial field (uniform, boundary values applied), projected; what the
  // space misses starts the error estimate.
  double missed = 0;
  Eigen::VectorXd c = initial(sc.parameters_at(0.0), &missed);
  return integrate(sc, std::move(c), missed, std::lround(an.end_time / an.time_step), an.time_step, an.output_times);
}

ReducedTrajectory GalerkinHeat::run(const spec::Scenario& sc, const Eigen::VectorXd& c, double duration) const {
  const long steps = window_steps(duration, model_.twin().analysis.time_step);
  return integrate(sc, c, 0.0, steps, duration / static_cast<double>(steps), {duration});
}

ReducedTrajectory GalerkinHeat::integrate(const spec::Scenario& sc, Eigen::VectorXd c, double accumulated, long steps,
                                          double dt, const std::vector<double>& output_times) const {
  const auto& an = model_.twin().analysis;
  const Eigen::Index r = space_.rank();
  const size_t L = space_.lift_terms().size();
  std::vector<double> loadw;
  auto load_weights = [&](const Params& p1, const Params* p0) {
    loadw.clear();
    for (const auto& t : space_.terms())
      if (!t.load.empty()) loadw.push_back(p0 ? 0.5 * t.coef(p1) + 0.5 * t.coef(*p0) : t.coef(p1));
    return loadw;
  };
  auto norm = [&](const std::vector<double>& phi, const Eigen::VectorXd& c) {
    Eigen::VectorXd y(static_cast<Eigen::Index>(L) + 1 + r);
    for (size_t i = 0; i < L; ++i) y(static_cast<Eigen::Index>(i)) = phi[i];
    y(static_cast<Eigen::Index>(L)) = 1.0;
    y.tail(r) = c;
    return std::sqrt(std::max(y.dot(H_ * y), 1e-300));
  };
  std::vector<double> phi = space_.lift_coefficients(sc.parameters_at(0.0)), phi_prev;
  Eigen::VectorXd c_prev;
  ReducedTrajectory out;
  out.steps = static_cast<int>(steps);
  size_t next = 0;
  std::vector<double> psi(estimator_ ? estimator_->size() : 0);
  Params rho_theta, rho_mu;
  double rho = 1.0;
  Params A_theta;
  Eigen::MatrixXd A;
  Eigen::LDLT<Eigen::MatrixXd> A_ldlt;
  for (long step = 0; step < steps; ++step) {
    const double t0 = dt * static_cast<double>(step), t1 = dt * static_cast<double>(step + 1);
    const Params p0 = sc.parameters_at(t0), p1 = sc.parameters_at(t1);
    const bool bdf2 = an.scheme == spec::TimeScheme::bdf2 && step > 0;
    const bool cn = an.scheme == spec::TimeScheme::crank_nicolson;
    Params theta, mu;
    std::vector<double> phi_hist = phi;
    double s_hist = 1.0;
    Eigen::VectorXd c_hist = c;
    if (cn) {
      theta = model_.thermal_theta(p1, 0.5, 1.0 / dt);
      mu = model_.thermal_theta(p0, -0.5, 1.0 / dt);
      load_weights(p1, &p0);
    } else if (bdf2) {
      theta = model_.thermal_theta(p1, 1.0, 1.5 / dt);
      mu = model_.thermal_theta(p1, 0.0, 0.5 / dt);
      for (size_t i = 0; i < L; ++i) phi_hist[i] = 4.0 * phi[i] - phi_prev[i];
      s_hist = 3.0;
      c_hist = 4.0 * c - c_prev;
      load_weights(p1, nullptr);
    } else {
      theta = model_.thermal_theta(p1, 1.0, 1.0 / dt);
      mu = model_.thermal_theta(p1, 0.0, 1.0 / dt);
      load_weights(p1, nullptr);
    }
    const std::vector<double> phi1 = space_.lift_coefficients(p1);
    Eigen::VectorXd rhs = Eigen::VectorXd::Zero(r);
    for (size_t m = 0; m < op_.b.size(); ++m) rhs += loadw[m] * op_.b[m];
    rhs += apply(mu, phi_hist, s_hist, &c_hist);
    // Known part of A(theta) x_new: the lift and the mean.
    rhs -= apply(theta, phi1, 1.0, nullptr);
    if (theta != A_theta) {  // parameters without schedules: one factorization per run
      A = matrix(theta);
      A_ldlt.compute(A);
      A_theta = theta;
    }
    const Eigen::VectorXd c1 = A_ldlt.solve(rhs);
    if (estimator_) {
      // Errors carried over from earlier steps decay by the step's amplification factor
      // (largest eigenvalue of A^{-1} B with B the history operator, in the reduced space,
      // where the slowest modes live) under backward Euler; Crank-Nicolson (which barely damps
      // high frequencies) and two-step BDF2 simply add them up.
      if (!cn && !bdf2 && an.scheme == spec::TimeScheme::backward_euler && (theta != rho_theta || mu != rho_mu)) {
        Eigen::GeneralizedSelfAdjointEigenSolver<Eigen::MatrixXd> eig(matrix(mu), A, Eigen::EigenvaluesOnly);
        rho = eig.info() == Eigen::Success ? std::clamp(eig.eigenvalues().cwiseAbs().maxCoeff(), 0.0, 1.0) : 1.0;
        rho_theta = theta;
        rho_mu = mu;
      }
      estimator_->step_features(loadw, theta, phi1, c1.data(), mu, phi_hist, s_hist, c_hist.data(), psi.data());
      accumulated = (an.scheme == spec::TimeScheme::backward_euler ? rho : 1.0) * accumulated + estimator_->norm(psi.data());
    }
    while (next < output_times.size() && output_times[next] <= t1 + 1e-9 * dt) {
      const double tau = output_times[next];
      const double w = std::clamp((tau - t0) / (t1 - t0), 0.0, 1.0);
      std::vector<double> phit(L);
      for (size_t i = 0; i < L; ++i) phit[i] = (1 - w) * phi[i] + w * phi1[i];
      const Eigen::VectorXd ct = (1 - w) * c + w * c1;
      out.c.push_back(ct);
      out.phi.push_back(phit);
      out.p.push_back(sc.parameters_at(tau));
      out.estimate.push_back(accumulated / norm(phit, ct));
      out.absolute.push_back(accumulated);
      ++next;
    }
    phi_prev = phi;
    c_prev = c;
    phi = phi1;
    c = c1;
  }
  return out;
}

}  // namespace doppel
