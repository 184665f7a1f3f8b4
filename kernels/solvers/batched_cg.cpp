#include "kernels/solvers/batched_cg.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/solvers/batched_cg_kernels.hpp"
#include "kernels/host/parallel.hpp"
#include "spec/errors.hpp"

namespace doppel {
namespace {

using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

std::vector<double> flatten(const std::vector<std::vector<double>>& theta, size_t terms) {
  std::vector<double> out;
  out.reserve(theta.size() * terms);
  for (const auto& t : theta) {
    DOPPEL_ASSERT(t.size() == terms);
    out.insert(out.end(), t.begin(), t.end());
  }
  return out;
}

}  // namespace

// --- OperatorData ----------------------------------------------------------------------

OperatorData::OperatorData(std::shared_ptr<const Executor> exec, int rows, int terms, size_t nnz)
    : exec_(std::move(exec)), rows_(rows), terms_(terms), nnz_(nnz) {}

OperatorData::OperatorData(std::shared_ptr<const Executor> exec, const AffineOperator& op, bool free_rows)
    : OperatorData(std::move(exec), op.size(), static_cast<int>(op.num_terms()), op.pattern().nnz()) {
  const CsrPattern& p = op.pattern();
  std::vector<int> constrained(static_cast<size_t>(rows_), 0);
  if (!free_rows)
    for (int d : op.dirichlet_dofs()) constrained[static_cast<size_t>(d)] = 1;
  const std::vector<std::vector<double>> free_terms = free_rows ? op.free_row_terms() : std::vector<std::vector<double>>{};
  std::vector<double> values(static_cast<size_t>(terms_) * nnz_);
  std::vector<double> diagonal(static_cast<size_t>(terms_) * static_cast<size_t>(rows_), 0.0);
  for (int k = 0; k < terms_; ++k) {
    const auto& t = free_rows ? free_terms[static_cast<size_t>(k)] : op.terms()[static_cast<size_t>(k)];
    std::copy(t.begin(), t.end(), values.begin() + static_cast<long>(static_cast<size_t>(k) * nnz_));
    for (int i = 0; i < rows_; ++i) {
      const long pos = p.find(i, i);
      if (pos >= 0) diagonal[static_cast<size_t>(k) * static_cast<size_t>(rows_) + static_cast<size_t>(i)] = t[static_cast<size_t>(pos)];
    }
  }
  structure_ = std::make_shared<const Structure>(
      Structure{Array<int>(exec_, p.row_ptr), Array<int>(exec_, p.col), Array<int>(exec_, constrained)});
  values_ = Array<double>(exec_, values);
  diagonal_ = Array<double>(exec_, diagonal);
}

OperatorData OperatorData::combined(const std::vector<double>& theta) const {
  DOPPEL_ASSERT(theta.size() == static_cast<size_t>(terms_));
  OperatorData out(exec_, rows_, 1, nnz_);
  out.values_ = Array<double>(exec_, nnz_);
  out.diagonal_ = Array<double>(exec_, static_cast<size_t>(rows_));
  const Array<double> th(exec_, theta);
  out.structure_ = structure_;
  DOPPEL_RUN(*exec_, combine_terms, view(), th.data(), out.values_.data(), out.diagonal_.data());
  return out;
}

OperatorView OperatorData::view() const {
  OperatorView v;
  v.rows = rows_;
  v.terms = terms_;
  v.nnz = nnz_;
  v.row_ptr = structure_->row_ptr.data();
  v.col = structure_->col.data();
  v.values = values_.data();
  v.diagonal = diagonal_.data();
  v.constrained = structure_->constrained.data();
  return v;
}

size_t OperatorData::bytes() const {
  return nnz_ * (static_cast<size_t>(terms_) * sizeof(double) + sizeof(int)) +
         static_cast<size_t>(rows_) * (sizeof(int) * 2 + static_cast<size_t>(terms_) * sizeof(double));
}

// --- Preconditioners ------------------------------------------------------------------

void copy_columns(int rows, int count, const HostColumns& src, double* dst, int dst_ld, bool dst_by_row,
                  const int* dst_cols) {
  constexpr int kRows = 64;
  auto offset = [](int i, int c, int ld, bool by_row) {
    return by_row ? static_cast<size_t>(i) * static_cast<size_t>(ld) + static_cast<size_t>(c)
                  : static_cast<size_t>(c) * static_cast<size_t>(ld) + static_cast<size_t>(i);
  };
  parallel_for(static_cast<size_t>((rows + kRows - 1) / kRows), [&](size_t b) {
    const int i0 = static_cast<int>(b) * kRows, i1 = std::min(rows, i0 + kRows);
    for (int j = 0; j < count; ++j) {
      const int cs = src.cols ? src.cols[j] : j, cd = dst_cols ? dst_cols[j] : j;
      for (int i = i0; i < i1; ++i) dst[offset(i, cd, dst_ld, dst_by_row)] = src.data[offset(i, cs, src.ld, src.by_row)];
    }
  });
}

void HostBlockPreconditioner::apply(const Executor& exec, int rows, int width, const int* state,
                                    const double* r, double* z) const {
  const bool on_host = exec.backend() == Backend::host;
  const size_t size = static_cast<size_t>(rows) * static_cast<size_t>(width);
  std::vector<int> state_host;
  std::vector<double> r_host, z_host;
  if (!on_host) {
    state_host.resize(static_cast<size_t>(width));
    exec.copy_to_host(state_host.data(), state, state_host.size() * sizeof(int));
    r_host.resize(size);
    exec.copy_to_host(r_host.data(), r, size * sizeof(double));
    z_host.assign(size, 0.0);
    state = state_host.data();
    r = r_host.data();
  }
  double* zh = on_host ? z : z_host.data();
  std::vector<int> active;
  for (int s = 0; s < width; ++s)
    if (state[s] == kActive) active.push_back(s);
  if (active.empty()) return;
  const int m = static_cast<int>(active.size());
  std::lock_guard<std::mutex> lock(mutex_);
  const size_t block = static_cast<size_t>(rows) * static_cast<size_t>(m);
  if (r_.size() < block) r_.resize(block), z_.resize(block);
  Eigen::Map<Eigen::MatrixXd> R(r_.data(), rows, m), Z(z_.data(), rows, m);
  copy_columns(rows, m, {r, width, true, active.data()}, R.data(), rows, false);
  solve(R, Z);
  copy_columns(rows, m, {Z.data(), rows, false}, zh, width, true, active.data());
  if (!on_host) exec.copy_from_host(z, z_host.data(), size * sizeof(double));
}

// --- BatchedCg -------------------------------------------------------------------------

BatchedCg::BatchedCg(const OperatorData& op, CgOptions options, const CgPreconditioner* M)
    : op_(op), options_(options), M_(M) {
  DOPPEL_VERIFY(options_.rtol > 0 && options_.rtol < 1, "rtol", "must lie in (0, 1)");
  DOPPEL_VERIFY(options_.max_iterations > 0, "max_iterations", "must be positive");
  options_.check_every = std::max(1, options_.check_every);
}

std::vector<SolveInfo> BatchedCg::solve(const std::vector<std::vector<double>>& theta,
                                        const Array<double>& B, Array<double>& X, int width,
                                        const std::vector<size_t>& scenarios) {
  stats_ = CgStats{};
  std::vector<SolveInfo> info(static_cast<size_t>(width));
  if (width == 0) return info;
  const auto& exec_ptr = op_.executor();
  const Executor& exec = *exec_ptr;
  const int n = op_.rows();
  const size_t K = static_cast<size_t>(op_.terms());
  DOPPEL_ASSERT(theta.size() == static_cast<size_t>(width));
  DOPPEL_ASSERT(B.size() == static_cast<size_t>(n) * static_cast<size_t>(width) && X.size() == B.size());
  // One executor per solve: arrays of another executor are work on another stream.
  DOPPEL_ASSERT(B.executor() == exec_ptr && X.executor() == exec_ptr);
  const OperatorView opv = op_.view();
  const double tol2 = options_.rtol * options_.rtol;

  // Working block: columns `cols` of the batch.
  std::vector<int> cols(static_cast<size_t>(width));
  for (int j = 0; j < width; ++j) cols[static_cast<size_t>(j)] = j;
  std::vector<double> theta_host = flatten(theta, K);
  int w = width;
  auto vec = [&](int width_) { return Array<double>(exec_ptr, static_cast<size_t>(n) * static_cast<size_t>(width_)); };
  Array<double> x = vec(w), r = vec(w), p = vec(w), q = vec(w);
  Array<double> z = M_ ? vec(w) : Array<double>();  // M^-1 r, when M is not Jacobi
  exec.copy(x.data(), X.data(), x.size() * sizeof(double));
  Array<double> th(exec_ptr, theta_host);
  Array<double> pq(exec_ptr, static_cast<size_t>(w)), rz(exec_ptr, static_cast<size_t>(w)),
      rz_new(exec_ptr, static_cast<size_t>(w)), rr(exec_ptr, static_cast<size_t>(w)),
      bb(exec_ptr, static_cast<size_t>(w)), beta(exec_ptr, static_cast<size_t>(w));
  Array<int> state(exec_ptr, static_cast<size_t>(w)), iterations(exec_ptr, static_cast<size_t>(w));
  for (Array<double>* a : {&pq, &rz, &rz_new, &rr, &bb, &beta}) DOPPEL_RUN(exec, fill, a->data(), a->size(), 0.0);
  DOPPEL_RUN(exec, fill, state.data(), state.size(), kActive);
  DOPPEL_RUN(exec, fill, iterations.data(), iterations.size(), 0);

  auto batch = [&]() {
    BatchView b;
    b.width = w;
    b.theta = th.data();
    b.state = state.data();
    return b;
  };
  DOPPEL_RUN(exec, affine_apply, opv, batch(), x.data(), r.data(), static_cast<double*>(nullptr));
  if (!M_) {
    DOPPEL_RUN(exec, cg_initialize, opv, batch(), B.data(), r.data(), p.data(), rz.data(), rr.data(), bb.data());
    DOPPEL_RUN(exec, cg_start, w, tol2, bb.data(), rr.data(), state.data(), iterations.data());
  } else {
    // Scenarios whose initial guess already satisfies the tolerance cost no solve with M.
    DOPPEL_RUN(exec, cg_residual, n, w, B.data(), r.data(), rr.data(), bb.data());
    DOPPEL_RUN(exec, cg_start, w, tol2, bb.data(), rr.data(), state.data(), iterations.data());
    M_->apply(exec, n, w, state.data(), r.data(), z.data());
    DOPPEL_RUN(exec, dot_columns, n, batch(), r.data(), z.data(), rz.data());
    exec.copy(p.data(), z.data(), z.size() * sizeof(double));
  }
  DOPPEL_RUN(exec, fill, rr.data(), rr.size(), 0.0);

  std::vector<int> final_state(static_cast<size_t>(width), kActive), final_iterations(static_cast<size_t>(width), 0);
  // Records finished columns and writes every working column's x back into X.
  auto retire = [&](const std::vector<int>& st, const std::vector<int>& its) {
    for (int j = 0; j < w; ++j) {
      const size_t c = static_cast<size_t>(cols[static_cast<size_t>(j)]);
      final_state[c] = st[static_cast<size_t>(j)];
      final_iterations[c] = its[static_cast<size_t>(j)];
    }
    const Array<int> idx(exec_ptr, cols);
    DOPPEL_RUN(exec, scatter_columns, n, x.data(), w, idx.data(), X.data(), width);
  };

  Array<int> counter(exec_ptr, 1);  // this solve's own: executors may serve several threads
  int active = DOPPEL_RUN(exec, count_active, state.data(), w, counter.data());
  for (int it = 1; it <= options_.max_iterations && active > 0; ++it) {
    const BatchView bv = batch();
    DOPPEL_RUN(exec, affine_apply, opv, bv, p.data(), q.data(), pq.data());
    DOPPEL_RUN(exec, cg_update_solution, opv, bv, pq.data(), rz.data(), p.data(), q.data(), x.data(),
               r.data(), M_ ? nullptr : rz_new.data(), rr.data());
    if (M_) {
      // End the scenarios that converged before paying for their preconditioner solves.
      DOPPEL_RUN(exec, cg_check, w, it, tol2, pq.data(), bb.data(), rr.data(), state.data(), iterations.data());
      M_->apply(exec, n, w, state.data(), r.data(), z.data());
      DOPPEL_RUN(exec, dot_columns, n, bv, r.data(), z.data(), rz_new.data());
    }
    DOPPEL_RUN(exec, cg_update_scalars, w, it, tol2, pq.data(), bb.data(), rr.data(), rz.data(),
               rz_new.data(), beta.data(), state.data(), iterations.data());
    DOPPEL_RUN(exec, cg_update_directions, opv, bv, beta.data(), r.data(), M_ ? z.data() : nullptr, p.data());
    stats_.column_iterations += w;
    stats_.iterations = it;
    if (it % options_.check_every != 0 && it != options_.max_iterations) continue;
    active = DOPPEL_RUN(exec, count_active, state.data(), w, counter.data());
    if (active == 0 || active >= options_.compact_below * w || w <= 32) continue;

    // Compact to the active columns: gather x, r, p and the per-column scalars.
    const std::vector<int> st = state.to_host(), its = iterations.to_host();
    retire(st, its);
    std::vector<int> keep, new_cols;
    for (int j = 0; j < w; ++j)
      if (st[static_cast<size_t>(j)] == kActive) {
        keep.push_back(j);
        new_cols.push_back(cols[static_cast<size_t>(j)]);
      }
    const int nw = static_cast<int>(keep.size());
    const Array<int> keep_d(exec_ptr, keep);
    for (Array<double>* a : {&x, &r, &p}) {
      Array<double> b2 = vec(nw);
      DOPPEL_RUN(exec, gather_columns, n, a->data(), w, keep_d.data(), nw, b2.data());
      *a = std::move(b2);
    }
    q = vec(nw);
    if (M_) z = vec(nw);
    auto pick = [&](const auto& host_values) {
      std::decay_t<decltype(host_values)> out;
      for (int j : keep) out.push_back(host_values[static_cast<size_t>(j)]);
      return out;
    };
    std::vector<double> th_new;
    for (int j : keep)
      th_new.insert(th_new.end(), theta_host.begin() + static_cast<long>(static_cast<size_t>(j) * K),
                    theta_host.begin() + static_cast<long>(static_cast<size_t>(j + 1) * K));
    theta_host = std::move(th_new);
    th = Array<double>(exec_ptr, theta_host);
    rz = Array<double>(exec_ptr, pick(rz.to_host()));
    bb = Array<double>(exec_ptr, pick(bb.to_host()));
    iterations = Array<int>(exec_ptr, pick(its));
    state = Array<int>(exec_ptr, std::vector<int>(static_cast<size_t>(nw), kActive));
    for (Array<double>* a : {&pq, &rz_new, &rr, &beta}) {
      *a = Array<double>(exec_ptr, static_cast<size_t>(nw));
      DOPPEL_RUN(exec, fill, a->data(), a->size(), 0.0);
    }
    cols = std::move(new_cols);
    w = nw;
    ++stats_.compactions;
  }
  retire(state.to_host(), iterations.to_host());

  const std::vector<double> res = batch_residuals(op_, theta, B, X, width);
  const std::string method = M_ ? std::string("pcg-") + M_->name() : std::string("cg");
  DOPPEL_ASSERT(scenarios.empty() || scenarios.size() == static_cast<size_t>(width));
  for (int c = 0; c < width; ++c) {
    const size_t cs = static_cast<size_t>(c);
    const std::string scenario = std::to_string(scenarios.empty() ? cs : scenarios[cs]);
    info[cs].method = method;
    info[cs].iterations = final_iterations[cs];
    info[cs].residual = res[cs];
    if (final_state[cs] == kBreakdown)
      throw SolverDiverged("scenario " + scenario + ": conjugate gradients broke down after " +
                           std::to_string(final_iterations[cs]) + " iterations (the operator is "
                           "not positive definite for these parameters, or the values overflowed)");
    if (final_state[cs] == kActive)
      throw SolverDiverged("scenario " + scenario + ": conjugate gradients did not reach the "
                           "relative tolerance " + std::to_string(options_.rtol) + " in " +
                           std::to_string(options_.max_iterations) + " iterations (residual " +
                           std::to_string(res[cs]) + ")");
  }
  return info;
}

std::vector<double> batch_residuals(const OperatorData& op, const std::vector<std::vector<double>>& theta,
                                    const Array<double>& B, const Array<double>& X, int width) {
  const auto& exec_ptr = op.executor();
  const Executor& exec = *exec_ptr;
  const int n = op.rows();
  const Array<double> th(exec_ptr, flatten(theta, static_cast<size_t>(op.terms())));
  const Array<int> state(exec_ptr, std::vector<int>(static_cast<size_t>(width), kActive));
  Array<double> q(exec_ptr, static_cast<size_t>(n) * static_cast<size_t>(width));
  Array<double> dd(exec_ptr, std::vector<double>(static_cast<size_t>(width), 0.0));
  Array<double> bb(exec_ptr, std::vector<double>(static_cast<size_t>(width), 0.0));
  BatchView bv;
  bv.width = width;
  bv.theta = th.data();
  bv.state = state.data();
  DOPPEL_RUN(exec, affine_apply, op.view(), bv, X.data(), q.data(), static_cast<double*>(nullptr));
  DOPPEL_RUN(exec, difference_norms, n, width, B.data(), q.data(), dd.data(), bb.data());
  const std::vector<double> d = dd.to_host(), b = bb.to_host();
  std::vector<double> out(static_cast<size_t>(width));
  for (size_t s = 0; s < out.size(); ++s) out[s] = b[s] > 0 ? std::sqrt(d[s] / b[s]) : std::sqrt(d[s]);
  return out;
}

ColumnBlocks claim_columns(const Executor& exec, int rows, int vectors, int width, size_t memory_limit) {
  const size_t per_column = std::max<size_t>(1, static_cast<size_t>(rows) * sizeof(double) * static_cast<size_t>(vectors));
  size_t wanted = per_column * static_cast<size_t>(std::max(width, 1));
  if (memory_limit > 0) wanted = std::max(per_column, std::min(wanted, memory_limit));
  MemoryClaim claim = exec.claim_memory(per_column, wanted);
  const int w = static_cast<int>(std::clamp<size_t>(claim.bytes() / per_column, 1, 65536));
  return {std::move(claim), std::min(w, std::max(width, 1))};
}

// --- ExecutorSolver ---------------------------------------------------------------------

ExecutorSolver::ExecutorSolver(std::shared_ptr<const Executor> exec, const AffineOperator& op,
                               CgOptions options)
    : exec_(std::move(exec)), op_(exec_, op), options_(options) {}

namespace {
void check_residuals(const std::vector<SolveInfo>& info, size_t first) {
  for (size_t s = 0; s < info.size(); ++s)
    if (!(info[s].residual < 1e-6))
      throw SolverDiverged("scenario " + std::to_string(first + s) + ": the linear solve reached a "
                           "relative residual of only " + std::to_string(info[s].residual));
}
}  // namespace

std::vector<SolveInfo> ExecutorSolver::solve(const std::vector<std::vector<double>>& theta,
                                             const Eigen::MatrixXd& B, Eigen::MatrixXd& X, const BlockSink& sink,
                                             bool download) {
  const int S = static_cast<int>(B.cols());
  std::vector<SolveInfo> info(static_cast<size_t>(S));
  stats_ = CgStats{};
  // The solver's own multi-vectors plus B and X.
  const ColumnBlocks blocks = claim_columns(*exec_, op_.rows(), kCgVectors + 2, S, options_.memory_limit);
  const int block = blocks.width;
  for (int first = 0; first < S; first += block) {
    ++stats_.blocks;
    const int w = std::min(block, S - first);
    RowMajor staged = B.middleCols(first, w);  // host staging in the executor's layout
    const Array<double> Bd(exec_, staged.data(), static_cast<size_t>(staged.size()));
    staged = X.middleCols(first, w);
    Array<double> Xd(exec_, staged.data(), static_cast<size_t>(staged.size()));
    const std::vector<std::vector<double>> th(theta.begin() + first, theta.begin() + first + w);
    std::vector<size_t> labels(static_cast<size_t>(w));  // the scenarios' numbers in the batch
    for (int j = 0; j < w; ++j) labels[static_cast<size_t>(j)] = static_cast<size_t>(first + j);
    // A batch whose scenarios share one operator reads a single combined value array.
    const bool shared = std::all_of(th.begin(), th.end(), [&](const auto& t) { return t == th[0]; });
    std::vector<SolveInfo> part;
    if (shared && op_.terms() > 1) {
      BatchedCg cg(combined_for(th[0]), options_);
      part = cg.solve(std::vector<std::vector<double>>(static_cast<size_t>(w), {1.0}), Bd, Xd, w, labels);
      stats_.column_iterations += cg.stats().column_iterations;
      stats_.iterations = std::max(stats_.iterations, cg.stats().iterations);
    } else {
      BatchedCg cg(op_, options_);
      part = cg.solve(th, Bd, Xd, w, labels);
      stats_.column_iterations += cg.stats().column_iterations;
      stats_.iterations = std::max(stats_.iterations, cg.stats().iterations);
    }
    if (sink) sink(first, w, Xd);
    if (download) {
      Xd.copy_to_host(staged.data(), Xd.size());
      X.middleCols(first, w) = staged;
    }
    std::copy(part.begin(), part.end(), info.begin() + first);
  }
  check_residuals(info, 0);
  return info;
}

std::vector<SolveInfo> ExecutorSolver::solve_resident(const std::vector<std::vector<double>>& theta,
                                                      const Array<double>& B, Array<double>& X, int width,
                                                      size_t first) {
  DOPPEL_ASSERT(theta.size() == static_cast<size_t>(width));
  stats_ = CgStats{};
  stats_.blocks = 1;
  std::vector<size_t> labels(static_cast<size_t>(width));
  for (int j = 0; j < width; ++j) labels[static_cast<size_t>(j)] = first + static_cast<size_t>(j);
  const bool shared = std::all_of(theta.begin(), theta.end(), [&](const auto& t) { return t == theta[0]; });
  std::vector<SolveInfo> info;
  if (shared && op_.terms() > 1) {
    BatchedCg cg(combined_for(theta[0]), options_);
    info = cg.solve(std::vector<std::vector<double>>(static_cast<size_t>(width), {1.0}), B, X, width, labels);
    stats_.column_iterations = cg.stats().column_iterations;
    stats_.iterations = cg.stats().iterations;
  } else {
    BatchedCg cg(op_, options_);
    info = cg.solve(theta, B, X, width, labels);
    stats_.column_iterations = cg.stats().column_iterations;
    stats_.iterations = cg.stats().iterations;
  }
  check_residuals(info, first);
  return info;
}

struct ExecutorSolver::Basis {
  std::vector<double> theta;
  Eigen::MatrixXd unit_rhs;  // host copy, to recognize a repeat
  Array<double> Ub, U;       // unit right-hand sides and their solutions, rows x R
  int iterations = 0;
};

ExecutorSolver::~ExecutorSolver() = default;

const OperatorData& ExecutorSolver::combined_for(const std::vector<double>& theta) {
  if (!combined_ || combined_theta_ != theta) {
    combined_ = std::make_unique<OperatorData>(op_.combined(theta));
    combined_theta_ = theta;
  }
  return *combined_;
}

const ExecutorSolver::Basis& ExecutorSolver::basis_for(const std::vector<double>& theta,
                                                       const Eigen::MatrixXd& unit_rhs) {
  if (basis_ && basis_->theta == theta && basis_->unit_rhs.rows() == unit_rhs.rows() &&
      basis_->unit_rhs.cols() == unit_rhs.cols() && basis_->unit_rhs == unit_rhs)
    return *basis_;
  basis_.reset();
  const int R = static_cast<int>(unit_rhs.cols());
  const RowMajor ub = unit_rhs;
  auto b = std::unique_ptr<Basis>(new Basis{theta, unit_rhs,
                                            Array<double>(exec_, std::vector<double>(ub.data(), ub.data() + ub.size())),
                                            Array<double>(exec_, std::vector<double>(ub.size(), 0.0)), 0});
  // Basis columns are combined with arbitrary coefficients: solve them tighter than the
  // scenarios need so that the combinations keep the scenario tolerance.
  CgOptions basis_options = options_;
  basis_options.rtol = std::min(options_.rtol, 1e-12);
  BatchedCg cg(combined_for(theta), basis_options);
  const std::vector<SolveInfo> info = cg.solve(std::vector<std::vector<double>>(static_cast<size_t>(R), {1.0}), b->Ub, b->U, R);
  stats_ = cg.stats();
  for (const auto& i : info) b->iterations = std::max(b->iterations, i.iterations);
  basis_ = std::move(b);
  return *basis_;
}

std::vector<SolveInfo> ExecutorSolver::superpose(const std::vector<double>& theta,
                                                 const Eigen::MatrixXd& unit_rhs,
                                                 const Eigen::MatrixXd& coefficients,
                                                 Eigen::MatrixXd& X) {
  const Eigen::Index n = unit_rhs.rows();
  const int R = static_cast<int>(unit_rhs.cols());
  const int S = static_cast<int>(coefficients.cols());
  DOPPEL_ASSERT(coefficients.rows() == R);
  stats_ = CgStats{};
  const Basis& basis = basis_for(theta, unit_rhs);
  const OperatorData& one = combined_for(theta);
  const Array<double>& Ub = basis.Ub;
  const Array<double>& U = basis.U;
  const int basis_iterations = basis.iterations;

  X.resize(n, S);
  std::vector<SolveInfo> info(static_cast<size_t>(S));
  // X, B and the residual's product in each block.
  const ColumnBlocks blocks = claim_columns(*exec_, op_.rows(), 4, S, options_.memory_limit);
  const int block = blocks.width;
  const std::vector<std::vector<double>> ones(static_cast<size_t>(block), {1.0});
  for (int first = 0; first < S; first += block) {
    ++stats_.blocks;
    const int w = std::min(block, S - first);
    const RowMajor c = coefficients.middleCols(first, w);
    const Array<double> Cd(exec_, c.data(), static_cast<size_t>(c.size()));
    Array<double> Xd(exec_, static_cast<size_t>(n) * static_cast<size_t>(w));
    Array<double> Bd(exec_, static_cast<size_t>(n) * static_cast<size_t>(w));
    DOPPEL_RUN(*exec_, multiply_basis, static_cast<int>(n), R, w, U.data(), Cd.data(), Xd.data());
    DOPPEL_RUN(*exec_, multiply_basis, static_cast<int>(n), R, w, Ub.data(), Cd.data(), Bd.data());
    const std::vector<double> res = batch_residuals(one, std::vector<std::vector<double>>(ones.begin(), ones.begin() + w), Bd, Xd, w);
    RowMajor xs(n, w);
    Xd.copy_to_host(xs.data(), Xd.size());
    X.middleCols(first, w) = xs;
    for (int s = 0; s < w; ++s) {
      SolveInfo& si = info[static_cast<size_t>(first + s)];
      si.method = "superposition-cg";
      si.iterations = basis_iterations;
      si.residual = res[static_cast<size_t>(s)];
    }
  }
  check_residuals(info, 0);
  return info;
}

}  // namespace doppel
