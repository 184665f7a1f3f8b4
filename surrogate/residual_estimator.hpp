// Error estimate of a reconstructed field from its finite-element residual.
//
// For x(p, c) = l(p) + mean + V c the residual of the free rows is affine in a few products of
// the parameters' coefficients and the reduced coordinates:
//     r(p, c) = b(p) - A(theta) x = sum_q psi_q(p, c) R_q,
//     psi = [ phi_m  |  -theta_k phi_i  |  -theta_k  |  -theta_k c_j ],
//     R   = [ load_m |  A_k g_i         |  A_k mean  |  A_k v_j      ]   (free rows).
// The estimate is eta = || A0^{-1} r ||_M, the residual mapped back to a field by the operator
// at nominal parameters (exact, eta = ||error||_M, when theta = theta0), in the mass norm.
// Its square is psi^T G psi with G = (A0^{-1} R)^T M (A0^{-1} R) computed once offline, so a
// scenario costs O(Q^2) online; explicit_norm() is the reference implementation (one operator
// application and one nominal solve) the fast form is tested against. The quadratic form
// cancels large terms, so eta carries an absolute round-off floor of about sqrt(machine
// epsilon) times the field's norm (relative estimates below ~1e-7 are round-off).
#pragma once

#include <Eigen/Dense>
#include <memory>
#include <vector>

#include "kernels/solvers/batched_solver.hpp"
#include "surrogate/reduced_space.hpp"

namespace doppel {

class ResidualEstimator {
 public:
  // Offline: builds G (Q operator applications and Q nominal solves).
  ResidualEstimator(const ReducedSpace& space, Params theta0, const MassMatrix& M);
  // From a stored G (a bundle).
  ResidualEstimator(const ReducedSpace& space, Params theta0, const MassMatrix& M, Eigen::MatrixXd gram);
  ~ResidualEstimator();

  size_t size() const { return q_; }
  static size_t size_for(const ReducedSpace& space);
  const Eigen::MatrixXd& gram() const { return gram_; }

  // psi for one scenario (theta: operator coefficients of p; c: reduced coordinates).
  void features(const Params& theta, const Params& p, const double* c, double* psi) const;
  // psi of a time step's residual r = sum_m w_m load_m - A(theta) x_new + A(mu) x_old, where
  // x = sum_i phi_i g_i + s mean + V c (s = 1 for a state; histories combine states).
  void step_features(const std::vector<double>& load_weights, const Params& theta,
                     const std::vector<double>& phi_new, const double* c_new, const Params& mu,
                     const std::vector<double>& phi_old, double s_old, const double* c_old,
                     double* psi) const;
  const std::vector<size_t>& load_terms() const { return load_terms_; }
  double norm(const double* psi) const;

  // The same eta from the full field x: r = b(p) - A(theta) x, then ||A0^{-1} r||_M.
  double explicit_norm(const Params& theta, const Params& p, const double* x) const;

 private:
  Eigen::VectorXd precondition(const Eigen::VectorXd& r) const;
  const ReducedSpace& space_;
  Params theta0_;
  const MassMatrix& M_;
  size_t q_;
  Eigen::MatrixXd gram_;
  std::vector<size_t> load_terms_;
  mutable std::unique_ptr<BatchedSolver> nominal_;
};

}  // namespace doppel
