// The transient reduced model: the twin's own time-stepping scheme (backward Euler, BDF2 or
// Crank-Nicolson, the same step as kernels/solvers/scenario_batch.cpp) projected by Galerkin onto the
// temperature POD space x = l(p) + mean + V c. Every term of the affine heat operator
// (conductivity, convection, heat capacity) is reduced once, V^T A_k V, V^T A_k g_i, V^T A_k mean,
// V^T load_m, so a step costs O(K r^2 + r^3) whatever the mesh. Parameters may follow schedules.
//
// Each step's full-order residual norm eta_n = ||A0^{-1} r_n||_M comes from the residual
// estimator's Gram form (A0: the step operator at nominal parameters); with the projection
// error of the initial state they accumulate into the error estimate of every output time:
// under backward Euler earlier errors decay by the step's amplification factor (computed in the
// reduced space); under BDF2 and Crank-Nicolson they add up. The estimate is calibrated on
// held-out transient FE runs like the steady one.
#pragma once

#include <Eigen/Dense>
#include <vector>

#include "kernels/fem/fem_model.hpp"
#include "surrogate/reduced_space.hpp"
#include "surrogate/residual_estimator.hpp"

namespace doppel {

struct ReducedTrajectory {
  std::vector<Eigen::VectorXd> c;          // reduced coordinates at each output time
  std::vector<std::vector<double>> phi;    // lift coefficients at each output time
  std::vector<Params> p;                   // parameters at each output time
  std::vector<double> estimate;     // unscaled accumulated eta / ||x||_M at each output time
  std::vector<double> absolute;     // unscaled accumulated eta (the field's units times sqrt(measure))
  int steps = 0;
};

// Every term of an affine operator reduced onto a reduced space x = l(p) + mean + V c once:
// V^T A_k V, V^T A_k g_i, V^T A_k mean (free rows), and V^T load_m of the load terms.
struct ReducedOperator {
  explicit ReducedOperator(const ReducedSpace& space);
  // V^T A(theta) x for x = sum phi_i g_i + s mean + V c (c null: no V c part).
  Eigen::VectorXd apply(const Params& theta, const std::vector<double>& phi, double s, const Eigen::VectorXd* c) const;
  Eigen::MatrixXd matrix(const Params& theta) const;  // V^T A(theta) V
  // The steady Galerkin solve: V^T A(theta) (l(p) + mean + V c) = V^T b(p), an r x r system.
  Eigen::VectorXd solve_steady(const ReducedSpace& space, const Params& theta, const Params& p) const;
  std::vector<Eigen::MatrixXd> A;                // per term
  std::vector<std::vector<Eigen::VectorXd>> Ag;  // per term, per lift vector
  std::vector<Eigen::VectorXd> Am;               // per term
  std::vector<Eigen::VectorXd> b;                // per load term
  std::vector<size_t> load_terms;                // their indices in the space's terms
};

class GalerkinHeat {
 public:
  GalerkinHeat(const FemModel& model, const ReducedSpace& space, const MassMatrix& M);
  // Nominal step operator coefficients (the estimator's A0).
  static Params nominal_theta(const FemModel& model);
  void set_estimator(const ResidualEstimator* estimator) { estimator_ = estimator; }
  ReducedTrajectory run(const spec::Scenario& scenario) const;
  // A window instead of the twin's analysis: from reduced coordinates `c` (lift at the
  // scenario's parameters at time 0) over `duration` seconds, in whole steps of at most the
  // twin's time_step, at most kMaxWindowSteps (kernels' window_steps, as the FE window), one output at the window's end; the
  // estimate covers this window's steps only.
  ReducedTrajectory run(const spec::Scenario& scenario, const Eigen::VectorXd& c, double duration) const;
  // Reduced coordinates of a nodal temperature field (its M-orthogonal projection, lift at p);
  // missed, when given, gets the M-norm of the part the space misses.
  Eigen::VectorXd project(const Params& p, const double* T, double* missed = nullptr) const;
  // Reduced coordinates of the twin's initial state (uniform, boundary values applied) at p,
  // and the M-norm of the part the space misses.
  Eigen::VectorXd initial(const Params& p, double* missed = nullptr) const;

 private:
  // V^T F(theta) x for x = sum phi_i g_i + s mean + V c (c null: no V c part).
  Eigen::VectorXd apply(const Params& theta, const std::vector<double>& phi, double s, const Eigen::VectorXd* c) const;
  Eigen::MatrixXd matrix(const Params& theta) const;
  ReducedTrajectory integrate(const spec::Scenario& sc, Eigen::VectorXd c, double accumulated, long steps, double dt,
                              const std::vector<double>& output_times) const;

  const FemModel& model_;
  const ReducedSpace& space_;
  const MassMatrix& M_;
  const ResidualEstimator* estimator_ = nullptr;
  ReducedOperator op_;
  Eigen::MatrixXd H_;  // Gram of [g_i | mean | V] in M: ||x||_M^2 = y^T H y
};

}  // namespace doppel
