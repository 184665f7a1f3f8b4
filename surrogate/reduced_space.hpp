// The reduced space of one field (temperature or displacement):
//     x(p, c) = l(p) + mean + V c,     l(p) = sum_m phi_m(p) g_m,
// where g_m are the boundary values (unit, or a term's shape) of the right-hand-side terms that
// prescribe Dirichlet values. Snapshots have l(p) removed before POD, so the mean and modes vanish on constrained
// dofs and every reconstruction meets the boundary conditions exactly.
#pragma once

#include <Eigen/Dense>
#include <vector>

#include "kernels/fem/fem_model.hpp"
#include "surrogate/pod.hpp"

namespace doppel {

class ReducedSpace {
 public:
  ReducedSpace(const AffineOperator& op, const std::vector<RhsTerm>& terms, int components);

  int size() const { return n_; }
  int components() const { return components_; }
  const std::vector<RhsTerm>& terms() const { return *terms_; }
  const AffineOperator& op() const { return *op_; }
  // Right-hand-side terms that prescribe boundary values (their phi_m enter the lift).
  const std::vector<size_t>& lift_terms() const { return lift_terms_; }
  Eigen::VectorXd lift_vector(size_t i) const;  // g_m of lift_terms()[i]
  std::vector<double> lift_coefficients(const Params& p) const;

  // Snapshot with the lift removed (the field POD sees).
  void remove_lift(const Params& p, double* x) const;

  void set_basis(PodBasis basis) { basis_ = std::move(basis); }
  const PodBasis& basis() const { return basis_; }
  int rank() const { return basis_.rank(); }
  Eigen::VectorXd reconstruct(const Params& p, const double* c) const;

 private:
  const AffineOperator* op_;
  const std::vector<RhsTerm>* terms_;
  int components_;
  int n_;
  std::vector<size_t> lift_terms_;
  PodBasis basis_;
};

}  // namespace doppel
