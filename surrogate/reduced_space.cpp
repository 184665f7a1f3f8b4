#include "surrogate/reduced_space.hpp"

namespace doppel {

ReducedSpace::ReducedSpace(const AffineOperator& op, const std::vector<RhsTerm>& terms, int components)
    : op_(&op), terms_(&terms), components_(components), n_(op.size()) {
  // A dof named by several terms takes the last one's value (FemModel::apply_dirichlet).
  std::vector<int> owner(static_cast<size_t>(n_), -1);
  for (size_t m = 0; m < terms.size(); ++m)
    for (int d : terms[m].dirichlet) owner[static_cast<size_t>(d)] = static_cast<int>(m);
  for (size_t m = 0; m < terms.size(); ++m) {
    std::vector<int> dofs;
    for (int d : terms[m].dirichlet)
      if (owner[static_cast<size_t>(d)] == static_cast<int>(m)) dofs.push_back(d);
    if (dofs.empty()) continue;
    lift_terms_.push_back(m);
    lift_dofs_.push_back(std::move(dofs));
  }
}

Eigen::VectorXd ReducedSpace::lift_vector(size_t i) const {
  Eigen::VectorXd g = Eigen::VectorXd::Zero(n_);
  for (int d : lift_dofs_[i]) g(d) = 1.0;
  return g;
}

std::vector<double> ReducedSpace::lift_coefficients(const Params& p) const {
  std::vector<double> phi;
  phi.reserve(lift_terms_.size());
  for (size_t m : lift_terms_) phi.push_back((*terms_)[m].coef(p));
  return phi;
}

void ReducedSpace::remove_lift(const Params& p, double* x) const {
  for (size_t i = 0; i < lift_terms_.size(); ++i) {
    const double c = (*terms_)[lift_terms_[i]].coef(p);
    for (int d : lift_dofs_[i]) x[d] -= c;
  }
}

Eigen::VectorXd ReducedSpace::reconstruct(const Params& p, const double* c) const {
  Eigen::VectorXd x = basis_.mean + basis_.modes * Eigen::Map<const Eigen::VectorXd>(c, basis_.rank());
  for (size_t i = 0; i < lift_terms_.size(); ++i) {
    const double v = (*terms_)[lift_terms_[i]].coef(p);
    for (int d : lift_dofs_[i]) x(d) += v;
  }
  return x;
}

}  // namespace doppel
