#include "surrogate/reduced_space.hpp"

namespace doppel {

ReducedSpace::ReducedSpace(const AffineOperator& op, const std::vector<RhsTerm>& terms, int components)
    : op_(&op), terms_(&terms), components_(components), n_(op.size()) {
  // A dof named by several terms takes the sum of their values (FemModel::apply_dirichlet).
  for (size_t m = 0; m < terms.size(); ++m)
    if (!terms[m].dirichlet.empty()) lift_terms_.push_back(m);
}

Eigen::VectorXd ReducedSpace::lift_vector(size_t i) const {
  Eigen::VectorXd g = Eigen::VectorXd::Zero(n_);
  const RhsTerm& t = (*terms_)[lift_terms_[i]];
  for (size_t k = 0; k < t.dirichlet.size(); ++k) g(t.dirichlet[k]) += t.prescribed(k);
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
    const RhsTerm& t = (*terms_)[lift_terms_[i]];
    const double c = t.coef(p);
    for (size_t k = 0; k < t.dirichlet.size(); ++k) x[t.dirichlet[k]] -= c * t.prescribed(k);
  }
}

Eigen::VectorXd ReducedSpace::reconstruct(const Params& p, const double* c) const {
  Eigen::VectorXd x = basis_.mean + basis_.modes * Eigen::Map<const Eigen::VectorXd>(c, basis_.rank());
  for (size_t i = 0; i < lift_terms_.size(); ++i) {
    const RhsTerm& t = (*terms_)[lift_terms_[i]];
    const double v = t.coef(p);
    for (size_t k = 0; k < t.dirichlet.size(); ++k) x(t.dirichlet[k]) += v * t.prescribed(k);
  }
  return x;
}

}  // namespace doppel
