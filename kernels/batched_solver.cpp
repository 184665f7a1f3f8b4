#include "kernels/batched_solver.hpp"

#include <cmath>
#include <limits>

#include <Eigen/CholmodSupport>
#include <Eigen/SparseCore>

#include "kernels/amg.hpp"
#include "kernels/parallel.hpp"
#include "spec/errors.hpp"

namespace doppel {

using SparseMatrix = Eigen::SparseMatrix<double, Eigen::ColMajor, int>;

class BatchedSolver::Precond {
 public:
  virtual ~Precond() = default;
  // Z = M^-1 R, column by column.
  virtual void solve(const Eigen::MatrixXd& R, Eigen::MatrixXd& Z) const = 0;
  virtual const char* name() const = 0;
  virtual size_t bytes() const = 0;
};

class BatchedSolver::Factor : public BatchedSolver::Precond {
 public:
  Factor(const AffineOperator& op, const std::vector<double>& theta) {
    const CsrPattern& p = op.pattern();
    const std::vector<double> values = op.combine(theta.data());
    // The operator is symmetric, so its CSR arrays are also its CSC arrays.
    Eigen::Map<const SparseMatrix> map(p.rows, p.cols, static_cast<int>(p.nnz()), p.row_ptr.data(),
                                       p.col.data(), values.data());
    matrix_ = map;
    chol_.compute(matrix_);
    factor_nonzeros_ = chol_.cholmod().lnz;
    if (chol_.info() != Eigen::Success)
      throw SolverDiverged(
          "the operator is not positive definite: the problem is not well posed (a thermal "
          "problem needs a temperature or convection boundary; a mechanical one must be "
          "restrained against rigid-body motion)");
  }
  void solve(const Eigen::MatrixXd& B, Eigen::MatrixXd& X) const override { X = chol_.solve(B); }
  const char* name() const override { return "cholesky"; }
  size_t bytes() const override {
    // L's values (CHOLMOD's count after the analysis; the supernodal row indices are per
    // supernode, comparatively few), and the operator copy.
    return static_cast<size_t>(factor_nonzeros_) * sizeof(double) +
           static_cast<size_t>(matrix_.nonZeros()) * (sizeof(double) + sizeof(int));
  }

 private:
  SparseMatrix matrix_;
  Eigen::CholmodDecomposition<SparseMatrix, Eigen::Lower> chol_;
  double factor_nonzeros_ = 0;
};

class BatchedSolver::Multigrid : public BatchedSolver::Precond {
 public:
  Multigrid(const AffineOperator& op, const std::vector<double>& theta)
      : theta_(theta), amg_(op.pattern(), op.combine(theta.data()).data()) {}
  void solve(const Eigen::MatrixXd& R, Eigen::MatrixXd& Z) const override {
    Z.resize(R.rows(), R.cols());
    amg_.apply(R.data(), Z.data(), static_cast<int>(R.cols()));
  }
  const char* name() const override { return "amg"; }
  size_t bytes() const override { return amg_.bytes(); }
  const std::vector<double>& theta() const { return theta_; }

 private:
  std::vector<double> theta_;
  Amg amg_;
};

BatchedSolver::BatchedSolver(const AffineOperator& op, SolverOptions options)
    : op_(op), options_(options) {}

BatchedSolver::~BatchedSolver() = default;

size_t BatchedSolver::preconditioner_bytes() const {
  size_t total = 0;
  for (const auto& [theta, f] : cache_) total += f->bytes();
  if (preconditioner_) total += preconditioner_->bytes();
  if (shared_multigrid_) total += shared_multigrid_->bytes();
  return total;
}

BatchedSolver::Factor& BatchedSolver::factor_for(const std::vector<double>& theta) {
  auto it = cache_.find(theta);
  if (it != cache_.end()) return *it->second;
  if (cache_.size() >= options_.factor_cache && !cache_order_.empty()) {
    cache_.erase(cache_order_.front());
    cache_order_.erase(cache_order_.begin());
  }
  auto f = std::make_unique<Factor>(op_, theta);
  ++factorizations_;
  cache_order_.push_back(theta);
  return *cache_.emplace(theta, std::move(f)).first->second;
}

double relative_residual(const AffineOperator& op, const double* theta, const double* b,
                         const double* x) {
  const int n = op.size();
  std::vector<double> r(static_cast<size_t>(n));
  op.apply(theta, x, r.data());
  double rr = 0, bb = 0;
  for (int i = 0; i < n; ++i) {
    rr += (b[i] - r[static_cast<size_t>(i)]) * (b[i] - r[static_cast<size_t>(i)]);
    bb += b[i] * b[i];
  }
  return bb > 0 ? std::sqrt(rr / bb) : std::sqrt(rr);
}

// Measured crossovers of `automatic` (`doppel bench fem`, "preconditioners" rows; 2-core host,
// docs/benchmarks.md): for scalar operators of 3D meshes the factor costs about n^1.3 (2.6 s at
// 10^5 nodes) against multigrid's setup linear in n (0.4 s), but a column solved with the factor
// costs ~7 ms against ~80 ms for ~23 V-cycles at rtol 1e-12. Multigrid wins from about 40,000
// rows (at 24,000 the two tie for 4 columns), for up to about 32 columns per 10^5 rows; as the
// CG preconditioner of operator-varying batches it won at 10^5 rows (64 scenarios: 8.6 s
// against 10.9 s, a tenth of the memory).
constexpr int kMultigridRows = 40000;
constexpr double kMultigridColumnsPerRow = 32e-5;

bool BatchedSolver::uses_multigrid(bool shared, size_t columns) const {
  switch (options_.preconditioner) {
    case Preconditioner::cholesky: return false;
    case Preconditioner::amg: return true;
    case Preconditioner::automatic: break;
  }
  if (options_.dofs_per_node != 1 || options_.dimension != 3 || op_.size() < kMultigridRows) return false;
  if (shared && static_cast<double>(columns) > kMultigridColumnsPerRow * op_.size()) return false;
  return true;
}

std::vector<double> relative_residuals(const AffineOperator& op, const std::vector<const double*>& theta,
                                       const Eigen::MatrixXd& B, const Eigen::MatrixXd& X) {
  const size_t S = static_cast<size_t>(B.cols());
  DOPPEL_ASSERT(theta.size() == S && X.cols() == B.cols() && X.rows() == B.rows());
  constexpr size_t kColumns = 64;  // columns per pass (bounds the work block)
  std::vector<double> out(S);
  Eigen::MatrixXd AX(B.rows(), static_cast<Eigen::Index>(std::min(S, kColumns)));
  for (size_t c0 = 0; c0 < S; c0 += kColumns) {
    const size_t w = std::min(kColumns, S - c0);
    std::vector<const double*> x(w);
    std::vector<double*> y(w);
    for (size_t j = 0; j < w; ++j) {
      x[j] = X.col(static_cast<Eigen::Index>(c0 + j)).data();
      y[j] = AX.col(static_cast<Eigen::Index>(j)).data();
    }
    op.apply_columns(w, theta.data() + c0, x.data(), y.data());
    parallel_for(w, [&](size_t j) {
      const auto b = B.col(static_cast<Eigen::Index>(c0 + j));
      const double rr = (b - AX.col(static_cast<Eigen::Index>(j))).squaredNorm(), bb = b.squaredNorm();
      out[c0 + j] = bb > 0 ? std::sqrt(rr / bb) : std::sqrt(rr);
    });
  }
  return out;
}

SolveInfo BatchedSolver::solve_shared(const std::vector<double>& theta, const Eigen::MatrixXd& B,
                                      Eigen::MatrixXd& X) {
  SolveInfo summary;
  const size_t m = static_cast<size_t>(B.cols());
  if (cache_.count(theta) || !uses_multigrid(true, m)) {
    factor_for(theta).solve(B, X);
    summary.method = "cholesky";
  } else {
    if (!shared_multigrid_ || shared_multigrid_->theta() != theta) shared_multigrid_ = std::make_unique<Multigrid>(op_, theta);
    const std::vector<std::vector<double>> th(m, theta);
    std::vector<size_t> columns(m);
    for (size_t j = 0; j < m; ++j) columns[j] = j;
    std::vector<SolveInfo> info(m);
    X.setZero(B.rows(), B.cols());
    pcg(*shared_multigrid_, th, columns, B, X, info);
    summary.method = "amg";
    for (const auto& i : info) summary.iterations = std::max(summary.iterations, i.iterations);
  }
  for (double r : relative_residuals(op_, std::vector<const double*>(m, theta.data()), B, X))
    summary.residual = std::max(summary.residual, r);
  return summary;
}

std::vector<SolveInfo> BatchedSolver::solve(const std::vector<std::vector<double>>& theta,
                                            const Eigen::MatrixXd& B, Eigen::MatrixXd& X) {
  const size_t S = static_cast<size_t>(B.cols());
  DOPPEL_ASSERT(theta.size() == S);
  std::vector<SolveInfo> info(S);
  std::map<std::vector<double>, std::vector<size_t>> groups;
  for (size_t s = 0; s < S; ++s) groups[theta[s]].push_back(s);

  size_t uncached = 0;
  for (const auto& g : groups) uncached += cache_.count(g.first) ? 0 : 1;
  // Forced multigrid: CG for every group, not only past max_factorizations operators.
  const bool direct_all = options_.preconditioner != Preconditioner::amg &&
                          uncached <= static_cast<size_t>(options_.max_factorizations);

  std::vector<size_t> iterative;
  for (const auto& [th, cols] : groups) {
    if (!direct_all && !cache_.count(th)) {
      iterative.insert(iterative.end(), cols.begin(), cols.end());
      continue;
    }
    Factor& f = factor_for(th);
    Eigen::MatrixXd Bg(B.rows(), static_cast<Eigen::Index>(cols.size()));
    for (size_t i = 0; i < cols.size(); ++i) Bg.col(static_cast<Eigen::Index>(i)) = B.col(static_cast<Eigen::Index>(cols[i]));
    Eigen::MatrixXd Xg;
    f.solve(Bg, Xg);
    for (size_t i = 0; i < cols.size(); ++i) {
      X.col(static_cast<Eigen::Index>(cols[i])) = Xg.col(static_cast<Eigen::Index>(i));
      info[cols[i]].method = "cholesky";
    }
  }
  if (!iterative.empty()) {
    if (!preconditioner_) {
      // Nominal operator: the batch-mean theta. A(mean theta) is SPD when each A(theta_s) is.
      std::vector<double> mean(op_.num_terms(), 0.0);
      for (size_t s : iterative)
        for (size_t k = 0; k < mean.size(); ++k) mean[k] += theta[s][k] / static_cast<double>(iterative.size());
      if (uses_multigrid(false, iterative.size())) {
        preconditioner_ = std::make_unique<Multigrid>(op_, mean);
      } else {
        preconditioner_ = std::make_unique<Factor>(op_, mean);
        ++factorizations_;
      }
    }
    pcg(*preconditioner_, theta, iterative, B, X, info);
  }

  std::vector<const double*> th(S);
  for (size_t s = 0; s < S; ++s) th[s] = theta[s].data();
  const std::vector<double> res = relative_residuals(op_, th, B, X);
  for (size_t s = 0; s < S; ++s) {
    info[s].residual = res[s];
    if (!(info[s].residual < 1e-6))
      throw SolverDiverged("scenario " + std::to_string(s) + ": the linear solve reached a relative "
                           "residual of only " + std::to_string(info[s].residual) +
                           " (the operator is singular or badly conditioned: check that the "
                           "body is restrained and every region is connected to a boundary "
                           "condition)");
  }
  return info;
}

void BatchedSolver::pcg(const Precond& M, const std::vector<std::vector<double>>& theta,
                        const std::vector<size_t>& columns, const Eigen::MatrixXd& B,
                        Eigen::MatrixXd& X, std::vector<SolveInfo>& info) {
  const std::string method = std::string("pcg-") + M.name();
  const Eigen::Index n = B.rows();
  const size_t m = columns.size();
  auto col_of = [&](size_t j) { return static_cast<Eigen::Index>(columns[j]); };
  Eigen::MatrixXd R(n, static_cast<Eigen::Index>(m)), Z, P, Q(n, static_cast<Eigen::Index>(m));
  std::vector<double> bnorm(m), rz(m);
  std::vector<char> done(m, 0);
  // Q_j = A(theta_j) Y_j for the listed columns j of Y, in one pass over the operator.
  auto apply = [&](const std::vector<size_t>& js, const Eigen::MatrixXd& Y, bool y_is_x) {
    std::vector<const double*> th(js.size()), in(js.size());
    std::vector<double*> out(js.size());
    for (size_t a = 0; a < js.size(); ++a) {
      th[a] = theta[columns[js[a]]].data();
      in[a] = y_is_x ? X.col(col_of(js[a])).data() : Y.col(static_cast<Eigen::Index>(js[a])).data();
      out[a] = Q.col(static_cast<Eigen::Index>(js[a])).data();
    }
    op_.apply_columns(js.size(), th.data(), in.data(), out.data());
  };
  std::vector<size_t> all(m);
  for (size_t j = 0; j < m; ++j) all[j] = j;
  apply(all, X, true);
  parallel_for(m, [&](size_t j) {
    const auto s = col_of(j);
    R.col(static_cast<Eigen::Index>(j)) = B.col(s) - Q.col(static_cast<Eigen::Index>(j));
    bnorm[j] = B.col(s).norm();
    if (bnorm[j] == 0) bnorm[j] = 1.0;
    info[columns[j]].method = method;
  });
  M.solve(R, Z);
  P = Z;
  for (size_t j = 0; j < m; ++j) {
    rz[j] = R.col(static_cast<Eigen::Index>(j)).dot(Z.col(static_cast<Eigen::Index>(j)));
    if (R.col(static_cast<Eigen::Index>(j)).norm() <= options_.rtol * bnorm[j]) done[j] = 1;
  }
  std::vector<size_t> active;
  for (int it = 1; it <= options_.max_iterations; ++it) {
    active.clear();
    for (size_t j = 0; j < m; ++j)
      if (!done[j]) active.push_back(j);
    if (active.empty()) break;
    apply(active, P, false);
    parallel_for(active.size(), [&](size_t a) {
      const size_t j = active[a];
      const auto jj = static_cast<Eigen::Index>(j);
      const double pq = P.col(jj).dot(Q.col(jj));
      const double alpha = rz[j] / pq;
      X.col(col_of(j)) += alpha * P.col(jj);
      R.col(jj) -= alpha * Q.col(jj);
      info[columns[j]].iterations = it;
      if (R.col(jj).norm() <= options_.rtol * bnorm[j]) done[j] = 1;
    });
    // Precondition the still-active residuals as one block.
    std::vector<size_t> still;
    for (size_t j : active)
      if (!done[j]) still.push_back(j);
    if (still.empty()) break;
    Eigen::MatrixXd Ra(n, static_cast<Eigen::Index>(still.size())), Za;
    for (size_t a = 0; a < still.size(); ++a) Ra.col(static_cast<Eigen::Index>(a)) = R.col(static_cast<Eigen::Index>(still[a]));
    M.solve(Ra, Za);
    for (size_t a = 0; a < still.size(); ++a) {
      const auto jj = static_cast<Eigen::Index>(still[a]);
      const double rz_new = R.col(jj).dot(Za.col(static_cast<Eigen::Index>(a)));
      const double beta = rz_new / rz[still[a]];
      rz[still[a]] = rz_new;
      P.col(jj) = Za.col(static_cast<Eigen::Index>(a)) + beta * P.col(jj);
    }
  }
  for (size_t j = 0; j < m; ++j)
    if (!done[j])
      throw SolverDiverged("scenario " + std::to_string(columns[j]) + ": preconditioned CG did not "
                           "reach the relative tolerance " + std::to_string(options_.rtol) +
                           " in " + std::to_string(options_.max_iterations) + " iterations");
}

}  // namespace doppel
