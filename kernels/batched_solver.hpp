// Host backend of the batched linear solves A(theta_s) x_s = b_s, s = 1..S.
//   - scenarios that share theta share one sparse Cholesky factor (CHOLMOD, supernodal),
//     applied to all their right-hand sides at once;
//   - when theta varies across more scenarios than `max_factorizations`, a batched
//     preconditioned CG runs all of them in lock step; the preconditioner is the Cholesky
//     factor of the operator at the batch-mean theta (built once, reused), and finished
//     scenarios drop out of the active block.
// Factors are cached by theta, so transient steps and repeated batches reuse them.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "kernels/affine_operator.hpp"

namespace doppel {

struct SolverOptions {
  double rtol = 1e-10;         // relative residual for CG
  int max_iterations = 5000;
  int max_factorizations = 4;  // distinct operators per batch factored directly
  size_t factor_cache = 8;
};

struct SolveInfo {
  std::string method;    // "cholesky" or "pcg"
  int iterations = 0;    // CG iterations (0 for a direct solve)
  double residual = 0;   // final ||b - A x|| / ||b||
};

class BatchedSolver {
 public:
  BatchedSolver(const AffineOperator& op, SolverOptions options = {});
  ~BatchedSolver();
  BatchedSolver(const BatchedSolver&) = delete;
  BatchedSolver& operator=(const BatchedSolver&) = delete;

  // theta: one vector per scenario (column of B). X: initial guesses on entry, solutions on
  // exit. B and X are n x S, column-major.
  std::vector<SolveInfo> solve(const std::vector<std::vector<double>>& theta,
                               const Eigen::MatrixXd& B, Eigen::MatrixXd& X);

  // Solve many right-hand sides against one operator (used by superposition).
  void solve_shared(const std::vector<double>& theta, const Eigen::MatrixXd& B,
                    Eigen::MatrixXd& X);

  const AffineOperator& op() const { return op_; }
  int factorizations() const { return factorizations_; }

 private:
  class Factor;
  Factor& factor_for(const std::vector<double>& theta);
  void pcg(const std::vector<std::vector<double>>& theta, const std::vector<size_t>& columns,
           const Eigen::MatrixXd& B, Eigen::MatrixXd& X, std::vector<SolveInfo>& info);

  const AffineOperator& op_;
  SolverOptions options_;
  std::map<std::vector<double>, std::unique_ptr<Factor>> cache_;
  std::vector<std::vector<double>> cache_order_;
  std::unique_ptr<Factor> preconditioner_;
  int factorizations_ = 0;
};

// ||b - A(theta) x|| / ||b|| (||b - A x|| when b = 0).
double relative_residual(const AffineOperator& op, const double* theta, const double* b,
                         const double* x);

}  // namespace doppel
