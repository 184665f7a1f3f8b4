#include "kernels/solvers/batched_solver.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include <Eigen/CholmodSupport>
#include <Eigen/Dense>
#include <Eigen/SparseCore>

#include "kernels/solvers/amg.hpp"
#include "kernels/solvers/batched_cg.hpp"
#include "kernels/host/parallel.hpp"
#include "spec/errors.hpp"

namespace doppel {

using SparseMatrix = Eigen::SparseMatrix<double, Eigen::ColMajor, int>;

// A preconditioner of BatchedCg applied on the host to column-major blocks (the factor or
// the multigrid hierarchy), with the bytes it holds.
class BatchedSolver::Precond : public HostBlockPreconditioner {
 public:
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
  // Blocks of right-hand sides are cut into column slices, one per host thread, each solved
  // with its own CHOLMOD workspace and, when there are several, a single-threaded BLAS:
  // CHOLMOD's supernodal solve makes one small BLAS call per supernode, which a threaded BLAS
  // would split and join each time.
  void solve(const Eigen::Ref<const Eigen::MatrixXd>& B, Eigen::Ref<Eigen::MatrixXd> X) const override {
    const Eigen::Index n = B.rows(), m = B.cols();
    DOPPEL_ASSERT(X.rows() == n && X.cols() == m && B.outerStride() == n && X.outerStride() == n);
    if (m == 0) return;
    const size_t slices = std::clamp<size_t>(static_cast<size_t>(m / kMinSliceColumns), 1,
                                             static_cast<size_t>(host_threads()));
    std::optional<SerialBlas> serial;
    if (slices > 1) serial.emplace();
    cholmod_factor* L = chol_.factor();
    parallel_for(slices, [&](size_t k) {
      const Eigen::Index c0 = m * static_cast<Eigen::Index>(k) / static_cast<Eigen::Index>(slices);
      const Eigen::Index c1 = m * static_cast<Eigen::Index>(k + 1) / static_cast<Eigen::Index>(slices);
      Workspace ws;  // CHOLMOD's state of this slice (its statistics are per call)
      cholmod_dense b{};
      b.nrow = static_cast<size_t>(n);
      b.ncol = static_cast<size_t>(c1 - c0);
      b.nzmax = b.nrow * b.ncol;
      b.d = static_cast<size_t>(n);
      b.x = const_cast<double*>(B.data() + c0 * n);  // read only
      b.xtype = CHOLMOD_REAL;
      b.dtype = CHOLMOD_DOUBLE;
      const int ok = cholmod_solve2(CHOLMOD_A, L, &b, nullptr, &ws.x, nullptr, &ws.y, &ws.e, &ws.common);
      if (!ok || !ws.x)
        throw SolverDiverged("the sparse Cholesky solve failed (CHOLMOD status " + std::to_string(ws.common.status) + ")");
      std::copy_n(static_cast<const double*>(ws.x->x), b.nzmax, X.data() + c0 * n);
    });
  }
  const char* name() const override { return "cholesky"; }
  size_t bytes() const override {
    // L's values (CHOLMOD's count after the analysis; the supernodal row indices are per
    // supernode, comparatively few), and the operator copy.
    return static_cast<size_t>(factor_nonzeros_) * sizeof(double) +
           static_cast<size_t>(matrix_.nonZeros()) * (sizeof(double) + sizeof(int));
  }

 private:
  // Columns per slice of a parallel solve: below, one thread's solve is cheaper than two.
  static constexpr Eigen::Index kMinSliceColumns = 8;
  // A slice's CHOLMOD state: its own common and cholmod_solve2's solution and work blocks.
  struct Workspace {
    cholmod_common common;
    cholmod_dense *x = nullptr, *y = nullptr, *e = nullptr;
    Workspace() { cholmod_start(&common); }
    ~Workspace() {
      cholmod_free_dense(&x, &common);
      cholmod_free_dense(&y, &common);
      cholmod_free_dense(&e, &common);
      cholmod_finish(&common);
    }
    Workspace(const Workspace&) = delete;
    Workspace& operator=(const Workspace&) = delete;
  };
  // Eigen's CHOLMOD wrapper, with its factor opened to the sliced solves.
  struct Cholmod : Eigen::CholmodDecomposition<SparseMatrix, Eigen::Lower> {
    cholmod_factor* factor() const { return m_cholmodFactor; }
  };
  SparseMatrix matrix_;
  Cholmod chol_;
  double factor_nonzeros_ = 0;
};

class BatchedSolver::Multigrid : public BatchedSolver::Precond {
 public:
  Multigrid(const AffineOperator& op, const std::vector<double>& theta)
      : theta_(theta), amg_(op.pattern(), op.combine(theta.data()).data()) {}
  void solve(const Eigen::Ref<const Eigen::MatrixXd>& R, Eigen::Ref<Eigen::MatrixXd> Z) const override {
    DOPPEL_ASSERT(R.outerStride() == R.rows() && Z.outerStride() == Z.rows() && Z.cols() == R.cols());
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
  if (host_operator_) total += host_operator_->bytes();
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

Eigen::MatrixXd residuals(const AffineOperator& op, const double* theta, const Eigen::MatrixXd& B,
                          const Eigen::MatrixXd& X) {
  DOPPEL_ASSERT(X.rows() == B.rows() && X.cols() == B.cols() && B.rows() == op.size());
  const size_t m = static_cast<size_t>(B.cols());
  Eigen::MatrixXd R(B.rows(), B.cols());
  std::vector<const double*> th(m, theta), in(m);
  std::vector<double*> out(m);
  for (size_t j = 0; j < m; ++j) {
    in[j] = X.col(static_cast<Eigen::Index>(j)).data();
    out[j] = R.col(static_cast<Eigen::Index>(j)).data();
  }
  op.apply_columns(m, th.data(), in.data(), out.data());
  R = B - R;
  return R;
}

std::vector<double> relative_residuals(const AffineOperator& op, const std::vector<const double*>& theta,
                                       const Eigen::MatrixXd& B, const Eigen::MatrixXd& X) {
  const size_t S = static_cast<size_t>(B.cols());
  DOPPEL_ASSERT(theta.size() == S && X.cols() == B.cols() && X.rows() == B.rows());
  const size_t terms = op.num_terms();
  if (S > 0 && std::all_of(theta.begin(), theta.end(), [&](const double* t) {
        return t == theta[0] || std::equal(t, t + terms, theta[0]);
      }))
    return op.relative_residuals(theta[0], S, B.data(), X.data());
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
    X.resize(B.rows(), B.cols());
    factor_for(theta).solve(B, X);
    summary.method = "cholesky";
  } else {
    if (!shared_multigrid_ || shared_multigrid_->theta() != theta) shared_multigrid_ = std::make_unique<Multigrid>(op_, theta);
    const std::vector<std::vector<double>> th(m, theta);
    std::vector<size_t> columns(m);
    for (size_t j = 0; j < m; ++j) columns[j] = j;
    std::vector<SolveInfo> info(m);
    X.setZero(B.rows(), B.cols());
    pcg(*shared_multigrid_, th, columns, B, X, info, options_.rtol);
    summary.method = "amg";
    for (const auto& i : info) {
      summary.iterations = std::max(summary.iterations, i.iterations);
      summary.residual = std::max(summary.residual, i.residual);  // BatchedCg's true residuals
    }
    return summary;
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
    if (cols.size() == S) {  // one operator for the whole block: no gathering
      X.resize(B.rows(), B.cols());
      f.solve(B, X);
      for (size_t s = 0; s < S; ++s) info[s].method = "cholesky";
      continue;
    }
    Eigen::MatrixXd Bg(B.rows(), static_cast<Eigen::Index>(cols.size()));
    for (size_t i = 0; i < cols.size(); ++i) Bg.col(static_cast<Eigen::Index>(i)) = B.col(static_cast<Eigen::Index>(cols[i]));
    Eigen::MatrixXd Xg(B.rows(), static_cast<Eigen::Index>(cols.size()));
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
    pcg(*preconditioner_, theta, iterative, B, X, info, options_.rtol, true);
  }

  // True residuals of the direct solves (BatchedCg has computed those of its columns).
  std::vector<char> solved_by_cg(S, 0);
  for (size_t s : iterative) solved_by_cg[s] = 1;
  std::vector<size_t> direct;
  for (size_t s = 0; s < S; ++s)
    if (!solved_by_cg[s]) direct.push_back(s);
  if (!direct.empty()) {
    std::vector<const double*> th(direct.size());
    Eigen::MatrixXd Bd(B.rows(), static_cast<Eigen::Index>(direct.size())), Xd(B.rows(), static_cast<Eigen::Index>(direct.size()));
    const bool all = direct.size() == S;  // the common case: no copies
    for (size_t j = 0; j < direct.size(); ++j) {
      th[j] = theta[direct[j]].data();
      if (!all) {
        Bd.col(static_cast<Eigen::Index>(j)) = B.col(static_cast<Eigen::Index>(direct[j]));
        Xd.col(static_cast<Eigen::Index>(j)) = X.col(static_cast<Eigen::Index>(direct[j]));
      }
    }
    const std::vector<double> res = all ? relative_residuals(op_, th, B, X) : relative_residuals(op_, th, Bd, Xd);
    for (size_t j = 0; j < direct.size(); ++j) info[direct[j]].residual = res[j];
  }
  for (size_t s = 0; s < S; ++s) {
    if (!(info[s].residual < 1e-6))
      throw SolverDiverged("scenario " + std::to_string(s) + ": the linear solve reached a relative "
                           "residual of only " + std::to_string(info[s].residual) +
                           " (the operator is singular or badly conditioned: check that the "
                           "body is restrained and every region is connected to a boundary "
                           "condition)");
  }
  return info;
}

// Columns per BatchedCg block on the host: the working multi-vectors of a block (x, r, p, q, z
// and B, X: 7 x rows x 128 doubles, 290 MB at 40,000 rows) stay bounded whatever the batch
// size, while one read of the operator and one pass over the factor serve 128 scenarios.
constexpr size_t kHostCgColumns = 128;

const OperatorData& BatchedSolver::host_operator() {
  if (!host_operator_) host_operator_ = std::make_unique<OperatorData>(Executor::host(), op_);
  return *host_operator_;
}

// Solutions of earlier operator-varying blocks, kept as an orthonormal basis V (n x r) with the
// projections of the operator's terms, H_k = V^T A_k V (A_k without its Dirichlet identity) and
// H_D = V^T I_D V. A new column's initial guess x is corrected over the basis by Galerkin,
//     x += V (V^T A(theta) V)^-1 V^T (b - A(theta) x),   V^T A(theta) V = H_D + sum_k theta_k H_k,
// the best correction within span(V) in the energy norm, so never a worse start. Solutions of
// an affine family lie close to a space of few dimensions: after a few blocks CG starts
// orders of magnitude nearer the answer than from the nominal factor's first step, and needs
// fewer iterations for the same tolerance (the tolerance and the answers' accuracy are
// unchanged). The basis is capped (kMaxVectors, and 64 MB) and grows by at most kAddPerBlock
// vectors per block, picked by pivoted Gram-Schmidt among the block's solutions.
class BatchedSolver::Recycled {
 public:
  explicit Recycled(const AffineOperator& op) : op_(op) {
    const size_t n = static_cast<size_t>(std::max(1, op.size()));
    capacity_ = static_cast<Eigen::Index>(std::min<size_t>(kMaxVectors, kMaxBytes / (n * sizeof(double))));
  }

  bool empty() const { return V_.cols() == 0; }

  // Corrects the initial guesses X (n x w, columns of thetas th) for right-hand sides B.
  void correct(const std::vector<std::vector<double>>& th, const Eigen::MatrixXd& B, Eigen::MatrixXd& X) const {
    const Eigen::Index r = V_.cols(), w = X.cols();
    if (r == 0 || w == 0) return;
    Eigen::MatrixXd R(X.rows(), w);
    std::vector<const double*> t(static_cast<size_t>(w)), x(static_cast<size_t>(w));
    std::vector<double*> y(static_cast<size_t>(w));
    for (Eigen::Index j = 0; j < w; ++j) {
      t[static_cast<size_t>(j)] = th[static_cast<size_t>(j)].data();
      x[static_cast<size_t>(j)] = X.col(j).data();
      y[static_cast<size_t>(j)] = R.col(j).data();
    }
    op_.apply_columns(static_cast<size_t>(w), t.data(), x.data(), y.data());
    R = B - R;
    const Eigen::MatrixXd C = V_.transpose() * R;  // r x w
    Eigen::MatrixXd Y(r, w);
    parallel_for(static_cast<size_t>(w), [&](size_t j) {
      Eigen::MatrixXd G = HD_;
      for (size_t k = 0; k < H_.size(); ++k) G += th[j][k] * H_[k];
      Eigen::VectorXd y = G.ldlt().solve(C.col(static_cast<Eigen::Index>(j)));
      if (!y.allFinite()) y.setZero();  // a degenerate projection: keep the given guess
      Y.col(static_cast<Eigen::Index>(j)) = y;
    });
    X.noalias() += V_ * Y;
  }

  // Adds the new directions of the solutions S (n x w) to the basis.
  void add(const Eigen::MatrixXd& S) {
    const Eigen::Index room = std::min<Eigen::Index>(kAddPerBlock, capacity_ - V_.cols());
    if (room <= 0 || S.cols() == 0) return;
    Eigen::MatrixXd W = S;
    if (V_.cols() > 0) W -= V_ * (V_.transpose() * W);
    Eigen::VectorXd norms = S.colwise().norm().transpose();
    const double scale = norms.maxCoeff();
    if (!(scale > 0)) return;
    std::vector<Eigen::VectorXd> picked;
    for (Eigen::Index a = 0; a < room; ++a) {
      Eigen::Index best = 0;
      const double largest = W.colwise().norm().maxCoeff(&best);
      if (!(largest > kNewDirection * scale)) break;
      Eigen::VectorXd v = W.col(best) / largest;
      for (const auto& u : picked) v -= u * u.dot(v);  // re-orthogonalize against this round's picks
      if (V_.cols() > 0) v -= V_ * (V_.transpose() * v);
      v.normalize();
      W -= v * (v.transpose() * W);
      picked.push_back(std::move(v));
    }
    if (picked.empty()) return;
    const Eigen::Index r0 = V_.cols(), r = r0 + static_cast<Eigen::Index>(picked.size());
    V_.conservativeResize(S.rows(), r);
    for (size_t a = 0; a < picked.size(); ++a) V_.col(r0 + static_cast<Eigen::Index>(a)) = picked[a];
    project();
  }

 private:
  // H_k and H_D for the current basis: one product of each term's constrained operator with V.
  void project() {
    const Eigen::Index r = V_.cols();
    HD_ = Eigen::MatrixXd::Zero(r, r);
    for (int d : op_.dirichlet_dofs()) HD_ += V_.row(d).transpose() * V_.row(d);
    H_.assign(op_.num_terms(), Eigen::MatrixXd());
    Eigen::MatrixXd AV(V_.rows(), r);
    std::vector<const double*> x(static_cast<size_t>(r));
    std::vector<double*> y(static_cast<size_t>(r));
    for (Eigen::Index j = 0; j < r; ++j) {
      x[static_cast<size_t>(j)] = V_.col(j).data();
      y[static_cast<size_t>(j)] = AV.col(j).data();
    }
    for (size_t k = 0; k < op_.num_terms(); ++k) {
      std::vector<double> e(op_.num_terms(), 0.0);
      e[k] = 1.0;
      const std::vector<const double*> t(static_cast<size_t>(r), e.data());
      op_.apply_columns(static_cast<size_t>(r), t.data(), x.data(), y.data());  // A_k V + I_D V
      H_[k] = V_.transpose() * AV - HD_;
      H_[k] = 0.5 * (H_[k] + H_[k].transpose());
    }
  }

  static constexpr Eigen::Index kMaxVectors = 64;
  static constexpr size_t kMaxBytes = size_t{64} << 20;
  static constexpr Eigen::Index kAddPerBlock = 16;
  static constexpr double kNewDirection = 1e-10;  // of the largest solution's norm
  const AffineOperator& op_;
  Eigen::Index capacity_ = 0;
  Eigen::MatrixXd V_, HD_;
  std::vector<Eigen::MatrixXd> H_;
};

void BatchedSolver::pcg(const Precond& M, const std::vector<std::vector<double>>& theta,
                        const std::vector<size_t>& columns, const Eigen::MatrixXd& B,
                        Eigen::MatrixXd& X, std::vector<SolveInfo>& info, double rtol, bool recycle) {
  if (recycle && !recycled_) recycled_ = std::make_unique<Recycled>(op_);
  const OperatorData& data = host_operator();
  const auto& exec = data.executor();
  CgOptions o;
  o.rtol = rtol;
  o.max_iterations = options_.max_iterations;
  o.check_every = 1;  // looking costs nothing on the host: finished columns leave at once
  const int n = static_cast<int>(B.rows());
  for (size_t c0 = 0; c0 < columns.size(); c0 += kHostCgColumns) {
    const int w = static_cast<int>(std::min(kHostCgColumns, columns.size() - c0));
    std::vector<int> cols(static_cast<size_t>(w));
    std::vector<size_t> labels(static_cast<size_t>(w));
    std::vector<std::vector<double>> th(static_cast<size_t>(w));
    for (int j = 0; j < w; ++j) {
      labels[static_cast<size_t>(j)] = columns[c0 + static_cast<size_t>(j)];
      cols[static_cast<size_t>(j)] = static_cast<int>(labels[static_cast<size_t>(j)]);
      th[static_cast<size_t>(j)] = theta[labels[static_cast<size_t>(j)]];
    }
    const size_t size = static_cast<size_t>(n) * static_cast<size_t>(w);
    Array<double> Bd(exec, size), Xd(exec, size);
    copy_columns(n, w, {B.data(), n, false, cols.data()}, Bd.data(), w, true);
    Eigen::MatrixXd Xb;  // the block's initial guesses, corrected over the recycled basis
    if (recycle && !recycled_->empty()) {
      Eigen::MatrixXd Bb(n, w);
      Xb.resize(n, w);
      for (int j = 0; j < w; ++j) {
        Bb.col(j) = B.col(cols[static_cast<size_t>(j)]);
        Xb.col(j) = X.col(cols[static_cast<size_t>(j)]);
      }
      recycled_->correct(th, Bb, Xb);
      copy_columns(n, w, {Xb.data(), n, false}, Xd.data(), w, true);
    } else {
      copy_columns(n, w, {X.data(), n, false, cols.data()}, Xd.data(), w, true);
    }
    BatchedCg cg(data, o, &M);
    const std::vector<SolveInfo> part = cg.solve(th, Bd, Xd, w, labels);
    copy_columns(n, w, {Xd.data(), w, true}, X.data(), n, false, cols.data());
    if (recycle) {
      Xb.resize(n, w);
      for (int j = 0; j < w; ++j) Xb.col(j) = X.col(cols[static_cast<size_t>(j)]);
      recycled_->add(Xb);
    }
    for (int j = 0; j < w; ++j) info[labels[static_cast<size_t>(j)]] = part[static_cast<size_t>(j)];
  }
}

}  // namespace doppel
