// Batched preconditioned conjugate gradients, written once against an Executor: the same code
// drives the host kernels and the CUDA kernels (kernels/solvers/batched_cg_kernels.hpp), for every
// backend and every preconditioner (Ginkgo's shape: one solver, a preconditioner interface).
// Jacobi is formed on the fly inside the update kernels (no memory, no extra pass); any other
// preconditioner (the nominal operator's Cholesky factor, a multigrid hierarchy: BatchedSolver)
// is applied to the block of still-iterating residuals at once, so one read of the factor or
// the hierarchy serves the block.
//
// A(theta_s) x_s = b_s for s = 1..S with A(theta) = sum_k theta_k A_k: the operator is applied
// from its terms, never formed per scenario, and one read of each matrix entry serves the
// whole batch ([row][scenario] multi-vectors). Scenarios converge on their own: a finished
// scenario stops costing work at once (its lanes skip), and when fewer than half of a block
// still iterate the block is compacted to the active columns. The host only looks at the
// iteration every `check_every` iterations (one integer copied back); everything else stays
// on the executor.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include <Eigen/Core>

#include "kernels/solvers/affine_operator.hpp"
#include "kernels/solvers/batched_cg_math.hpp"
#include "kernels/solvers/batched_solver.hpp"
#include "kernels/executor.hpp"

namespace doppel {

// An AffineOperator's arrays on an executor.
class OperatorData {
 public:
  // free_rows: apply_free_rows' operator instead (AffineOperator::free_row_terms: the
  // unconstrained terms on the free rows, zero on the constrained ones; no identity there), the
  // operator of a transient history term.
  OperatorData(std::shared_ptr<const Executor> exec, const AffineOperator& op, bool free_rows = false);
  // The single-term operator sum_k theta_k A_k (+ I_D): shared-operator batches read one value
  // array instead of `terms`.
  OperatorData combined(const std::vector<double>& theta) const;

  OperatorView view() const;
  int rows() const { return rows_; }
  int terms() const { return terms_; }
  size_t nnz() const { return nnz_; }
  const std::shared_ptr<const Executor>& executor() const { return exec_; }
  // Bytes of operator data one application reads (values, columns, row pointers, diagonals).
  size_t bytes() const;

 private:
  // Pattern and constraint flags, shared by an operator and its combined forms.
  struct Structure {
    Array<int> row_ptr, col, constrained;
  };
  OperatorData(std::shared_ptr<const Executor> exec, int rows, int terms, size_t nnz);
  std::shared_ptr<const Executor> exec_;
  int rows_ = 0, terms_ = 0;
  size_t nnz_ = 0;
  std::shared_ptr<const Structure> structure_;
  Array<double> values_, diagonal_;
};

// Multi-vectors (rows x width) a BatchedCg solve holds at its peak per column of its block:
// x, r, p, q, and the residual check's product, beside the caller's B and X; one more (z) with
// a preconditioner other than Jacobi.
inline constexpr int kCgVectors = 5;

// M^-1 for BatchedCg, when it is not Jacobi.
class CgPreconditioner {
 public:
  virtual ~CgPreconditioner() = default;
  // z(:, s) = M^-1 r(:, s) for every column s with state[s] == kActive (other columns of z are
  // unspecified afterwards). r, z: rows x width multi-vectors ([row][scenario]) and state: width
  // ints, all on `exec`.
  virtual void apply(const Executor& exec, int rows, int width, const int* state, const double* r,
                     double* z) const = 0;
  // The method's name after "pcg-": "cholesky", "amg".
  virtual const char* name() const = 0;
};

// Copies `count` columns of a host matrix into another, each stored column-major (entry (i, c)
// at c * ld + i) or as a multi-vector (by_row: at i * ld + c): column src_cols[j] of src goes
// to column dst_cols[j] of dst (a null list: j). Row blocks over the host threads, so both
// layouts are walked a cache line at a time.
struct HostColumns {
  const double* data;
  int ld;
  bool by_row;
  const int* cols = nullptr;
};
void copy_columns(int rows, int count, const HostColumns& src, double* dst, int dst_ld, bool dst_by_row,
                  const int* dst_cols = nullptr);

// A preconditioner solved on the host with column-major blocks (CHOLMOD's factor, the
// multigrid of kernels/solvers/amg.hpp): apply() gathers the active columns into one block, solves
// them together and scatters the results back (through host copies on a device executor).
class HostBlockPreconditioner : public CgPreconditioner {
 public:
  void apply(const Executor& exec, int rows, int width, const int* state, const double* r,
             double* z) const final;
  // Z = M^-1 R for every column of R (rows x m, column-major, contiguous); Z comes sized.
  virtual void solve(const Eigen::Ref<const Eigen::MatrixXd>& R, Eigen::Ref<Eigen::MatrixXd> Z) const = 0;

 private:
  // The gathered blocks, kept from one iteration to the next at the largest size asked for
  // (fresh pages of a few MB cost about as much as the copies into them); apply() holds the
  // mutex while it uses them.
  mutable std::mutex mutex_;
  mutable std::vector<double> r_, z_;
};

struct CgOptions {
  double rtol = 1e-10;         // ||b - A x|| <= rtol ||b|| per scenario
  int max_iterations = 20000;
  int check_every = 8;         // iterations between looks from the host
  double compact_below = 0.5;  // compact a block when fewer than this fraction iterate
  // ExecutorSolver: bytes of working blocks one solve may hold (0: as much as the executor's
  // MemoryBudget grants). A smaller value makes a batch span more blocks.
  size_t memory_limit = 0;
};

struct CgStats {
  int iterations = 0;            // iterations of the longest-running scenario
  double column_iterations = 0;  // sum over iterations of the block width (work done)
  int compactions = 0;
  int blocks = 0;                // blocks of scenarios an ExecutorSolver call was split into
};

// Memory for blocks of up to `width` columns of `vectors` multi-vectors of `rows` each, claimed
// from the executor's MemoryBudget (capped by memory_limit when not 0), with the block width it
// allows (at least one column, at most `width` and 65536).
struct ColumnBlocks {
  MemoryClaim claim;
  int width;
};
ColumnBlocks claim_columns(const Executor& exec, int rows, int vectors, int width, size_t memory_limit);

class BatchedCg {
 public:
  // M: the preconditioner (null: Jacobi on the fly), kept alive by the caller.
  BatchedCg(const OperatorData& op, CgOptions options = {}, const CgPreconditioner* M = nullptr);

  // B and X: rows x width multi-vectors on the operator's executor; X holds the initial
  // guesses and receives the solutions. theta: one vector of `terms` per column. Returns, per
  // column, the method ("cg", or "pcg-" and the preconditioner's name), the iterations and the
  // true relative residual ||b - A x|| / ||b||; throws SolverDiverged for a breakdown or when
  // max_iterations is reached, naming the scenario: scenarios[column] when given, else the
  // column.
  std::vector<SolveInfo> solve(const std::vector<std::vector<double>>& theta,
                               const Array<double>& B, Array<double>& X, int width,
                               const std::vector<size_t>& scenarios = {});
  const CgStats& stats() const { return stats_; }

 private:
  const OperatorData& op_;
  CgOptions options_;
  const CgPreconditioner* M_;
  CgStats stats_;
};

// True relative residuals ||b_s - A(theta_s) x_s|| / ||b_s|| (||b - A x|| when b = 0) of a
// block, computed on the executor.
std::vector<double> batch_residuals(const OperatorData& op, const std::vector<std::vector<double>>& theta,
                                    const Array<double>& B, const Array<double>& X, int width);

// The batched solver behind scenario_batch for the executor backends: host Eigen matrices in,
// blocks of scenarios sized to the executor's memory, solved by BatchedCg.
class ExecutorSolver {
 public:
  ExecutorSolver(std::shared_ptr<const Executor> exec, const AffineOperator& op, CgOptions options);
  ~ExecutorSolver();

  // Each block's solutions where they live (rows x width multi-vector on the executor, ld =
  // width): columns [first, first + width) of the batch, handed over before they are copied
  // back, so that the outputs can be evaluated there (kernels/solvers/batch_outputs.hpp).
  using BlockSink = std::function<void(int first, int width, const Array<double>& X)>;

  // Same contract as BatchedSolver::solve (B, X: n x S column-major; X initial guesses). With a
  // sink, every block goes to it once solved; with download false, X keeps its initial guesses
  // (the solutions stay on the executor: the sink is their only reader).
  std::vector<SolveInfo> solve(const std::vector<std::vector<double>>& theta,
                               const Eigen::MatrixXd& B, Eigen::MatrixXd& X, const BlockSink& sink = {},
                               bool download = true);
  const std::shared_ptr<const Executor>& executor() const { return exec_; }
  // Superposition for one operator: solves A(theta) U = unit right-hand sides (n x R), then
  // X = U C and B = R C (C: R x S coefficients) on the executor, with the residual of every
  // scenario checked there.
  std::vector<SolveInfo> superpose(const std::vector<double>& theta, const Eigen::MatrixXd& unit_rhs,
                                   const Eigen::MatrixXd& coefficients, Eigen::MatrixXd& X);


  // Solves one block that already lives on the executor (B, X: rows x width multi-vectors;
  // X initial guesses), sized by the caller: the time steps of a transient batch, whose fields
  // stay there. Scenario labels are first + column.
  std::vector<SolveInfo> solve_resident(const std::vector<std::vector<double>>& theta, const Array<double>& B,
                                        Array<double>& X, int width, size_t first = 0);

  const CgStats& stats() const { return stats_; }

 private:
  struct Basis;
  const Basis& basis_for(const std::vector<double>& theta, const Eigen::MatrixXd& unit_rhs);
  // A(theta) as one term, kept while theta repeats (transient steps, superposition batches).
  const OperatorData& combined_for(const std::vector<double>& theta);

  std::shared_ptr<const Executor> exec_;
  OperatorData op_;
  CgOptions options_;
  CgStats stats_;
  std::unique_ptr<Basis> basis_;  // reused while theta and the unit right-hand sides repeat
  std::vector<double> combined_theta_;
  std::unique_ptr<OperatorData> combined_;
};

}  // namespace doppel
