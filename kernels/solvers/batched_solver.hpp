// Host backend of the batched linear solves A(theta_s) x_s = b_s, s = 1..S.
//   - scenarios that share theta share one sparse Cholesky factor (CHOLMOD, supernodal),
//     applied to all their right-hand sides at once;
//   - when theta varies across more scenarios than `max_factorizations`, a batched
//     preconditioned CG runs all of them in lock step; the preconditioner is built once for
//     the operator at the batch-mean theta and reused: its Cholesky factor, or a
//     smoothed-aggregation multigrid hierarchy (kernels/solvers/amg.hpp) where that is cheaper (see
//     Preconditioner); finished scenarios drop out of the active block;
//   - a few right-hand sides against one operator (the superposition basis): the factor, or
//     multigrid-preconditioned CG, chosen the same way.
// Factors are cached by theta, so transient steps and repeated batches reuse them.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "kernels/solvers/affine_operator.hpp"

namespace doppel {

class OperatorData;

// How CG is preconditioned, and how a few right-hand sides sharing one operator are solved.
// automatic: multigrid for large scalar operators (one dof per node: heat) of 3D meshes (from
// 40,000 rows; for few right-hand sides: up to ~32 per 10^5 rows), whose sparse Cholesky
// factors fill in as n^(4/3) and cost up to n^2 to compute; the factor otherwise (2D meshes
// factor cheaply; vector operators need the rigid-body modes in the multigrid's coarse space,
// which kernels/solvers/amg.hpp does not build). The crossover was measured with `doppel bench fem`
// (its "preconditioners" rows; docs/benchmarks.md).
enum class Preconditioner { automatic, cholesky, amg };

struct SolverOptions {
  double rtol = 1e-10;         // relative residual for CG
  int max_iterations = 5000;
  int max_factorizations = 4;  // distinct operators per batch factored directly
  size_t factor_cache = 8;
  Preconditioner preconditioner = Preconditioner::automatic;
  // What `automatic` needs to know about the operator: dofs per mesh node and the mesh's
  // dimension (0: unknown, the factor is used).
  int dofs_per_node = 1;
  int dimension = 0;
};

struct SolveInfo {
  // "cholesky" (the factor of this operator), "pcg-cholesky" or "pcg-amg" (CG preconditioned
  // by the nominal operator's factor or multigrid hierarchy), "amg" (multigrid-preconditioned
  // CG against this very operator)
  std::string method;
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

  // Solve several right-hand sides against one operator (the superposition basis): the
  // factor, or multigrid-preconditioned CG when cheaper. Returns the method, the iterations
  // and the largest relative residual.
  SolveInfo solve_shared(const std::vector<double>& theta, const Eigen::MatrixXd& B,
                         Eigen::MatrixXd& X);

  // Whether `columns` right-hand sides against one operator (shared = true), or CG
  // preconditioning (shared = false), would use multigrid rather than the Cholesky factor.
  bool uses_multigrid(bool shared, size_t columns) const;

  const AffineOperator& op() const { return op_; }
  int factorizations() const { return factorizations_; }
  // Bytes of the factors (nonzeros of L), multigrid hierarchies and the CG's copy of the
  // operator held now.
  size_t preconditioner_bytes() const;

 private:
  class Precond;  // a preconditioner: the factor or the multigrid hierarchy
  class Factor;
  class Multigrid;
  Factor& factor_for(const std::vector<double>& theta);
  // The batched CG of kernels/solvers/batched_cg.hpp on the host executor, for the given columns in
  // blocks, preconditioned by M (built for some nominal operator); X holds the initial guesses.
  // Sets info (method, iterations, true residual) of those columns.
  // recycle: operator-varying columns, whose initial guesses are first corrected over the
  // solutions of earlier blocks (Recycled), which then take the block's own.
  void pcg(const Precond& M, const std::vector<std::vector<double>>& theta,
           const std::vector<size_t>& columns, const Eigen::MatrixXd& B, Eigen::MatrixXd& X,
           std::vector<SolveInfo>& info, double rtol, bool recycle = false);
  class Recycled;  // a basis of earlier solutions (see batched_solver.cpp)
  // The operator's arrays for BatchedCg on the host executor, made on first use.
  const OperatorData& host_operator();

  const AffineOperator& op_;
  SolverOptions options_;
  std::map<std::vector<double>, std::unique_ptr<Factor>> cache_;
  std::vector<std::vector<double>> cache_order_;
  std::unique_ptr<Precond> preconditioner_;  // of operator-varying batches
  std::unique_ptr<Recycled> recycled_;       // their solutions so far, for initial guesses
  std::unique_ptr<Multigrid> shared_multigrid_;     // of solve_shared, kept while theta repeats
  std::unique_ptr<OperatorData> host_operator_;
  int factorizations_ = 0;
};

// ||b - A(theta) x|| / ||b|| (||b - A x|| when b = 0).
double relative_residual(const AffineOperator& op, const double* theta, const double* b,
                         const double* x);
// B - A(theta) X for every column, in one pass over the operator (apply_columns).
Eigen::MatrixXd residuals(const AffineOperator& op, const double* theta, const Eigen::MatrixXd& B,
                          const Eigen::MatrixXd& X);
// The same for every column s of (B, X), against A(theta[s]), in passes over the operator that
// serve many columns at once.
std::vector<double> relative_residuals(const AffineOperator& op, const std::vector<const double*>& theta,
                                       const Eigen::MatrixXd& B, const Eigen::MatrixXd& X);

}  // namespace doppel
