// A(theta) = sum_k theta_k A_k on one sparsity pattern, with Dirichlet dofs eliminated
// symmetrically: constrained rows and columns are removed from every term (the constrained
// operator carries 1 on their diagonal) and the removed column entries are kept as
// "couplings" so the lifting term A_fD(theta) g can be formed for any boundary values g.
#pragma once

#include <vector>

#include "kernels/fem/sparse.hpp"

namespace doppel {

class AffineOperator {
 public:
  AffineOperator() = default;
  AffineOperator(CsrPattern pattern, std::vector<std::vector<double>> terms,
                 const std::vector<int>& dirichlet_dofs);

  int size() const { return pattern_.rows; }
  size_t num_terms() const { return terms_.size(); }
  const CsrPattern& pattern() const { return pattern_; }
  const std::vector<std::vector<double>>& terms() const { return terms_; }
  const std::vector<int>& dirichlet_dofs() const { return dirichlet_; }
  bool is_dirichlet(int dof) const { return constrained_[static_cast<size_t>(dof)] != 0; }

  // Bytes held: pattern, term values, Dirichlet couplings.
  size_t bytes() const;

  // Values of the constrained operator sum_k theta_k A_k^free + I_D on pattern().
  std::vector<double> combine(const double* theta) const;
  // y = A_c(theta) x (constrained operator: Dirichlet rows act as identity).
  void apply(const double* theta, const double* x, double* y) const;
  // y_j = A_c(theta_j) x_j for m columns at once, each with its own theta: one read of the
  // pattern and the terms serves a group of columns (row blocks over the host threads).
  void apply_columns(size_t m, const double* const* theta, const double* const* x, double* const* y) const;
  // Relative residuals ||b_j - A_c(theta) x_j|| / ||b_j|| (||b_j - A_c x_j|| where b_j = 0) of
  // m columns sharing one theta; B and X column-major n x m. The columns go in panels gathered
  // row-major, so one read of the combined values serves a panel with contiguous multiply-adds,
  // and the norms are summed as the rows go (A X is never stored); panels over the host threads.
  std::vector<double> relative_residuals(const double* theta, size_t m, const double* B, const double* X) const;
  // Free rows of the unconstrained operator: y_f = A_ff x_f + A_fD x_D; y_D = 0.
  void apply_free_rows(const double* theta, const double* x, double* y) const;
  // The same for m columns, each with its own theta, in one pass over the operator.
  void apply_free_rows_columns(size_t m, const double* const* theta, const double* const* x, double* const* y) const;
  // The terms of apply_free_rows' operator on pattern(): the unconstrained terms on the free
  // rows (A_ff and A_fD), zero on the constrained rows.
  std::vector<std::vector<double>> free_row_terms() const;

 private:
  CsrPattern pattern_;
  std::vector<std::vector<double>> terms_;  // constrained rows/cols zeroed
  std::vector<int> dirichlet_;
  std::vector<char> constrained_;
  std::vector<long> diagonal_;               // position of each Dirichlet diagonal entry
  struct Coupling { int row; int col; };
  std::vector<Coupling> couplings_;          // (free row, Dirichlet col)
  std::vector<std::vector<double>> coupling_values_;  // per term
};

}  // namespace doppel
