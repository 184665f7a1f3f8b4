#include "kernels/solvers/amg.hpp"

#include <algorithm>
#include <cmath>
#include <mutex>

#include <Eigen/Core>
#include <Eigen/SparseCholesky>
#include <Eigen/SparseCore>

#include "kernels/host/parallel.hpp"
#include "spec/errors.hpp"

namespace doppel {

namespace {

using RowSparse = Eigen::SparseMatrix<double, Eigen::RowMajor, int>;
using ColSparse = Eigen::SparseMatrix<double, Eigen::ColMajor, int>;

// Blocks of rows are spread over the host threads when a level's work is large enough to pay
// for starting them.
constexpr size_t kParallelWork = 1 << 16;
constexpr int kRowBlock = 256;

template <class Body>
void for_rows(int rows, int m, Body&& body) {
  const size_t work = static_cast<size_t>(rows) * static_cast<size_t>(m);
  if (work < kParallelWork || host_threads() <= 1) {
    body(0, rows);
    return;
  }
  const int blocks = (rows + kRowBlock - 1) / kRowBlock;
  parallel_for(static_cast<size_t>(blocks), [&](size_t b) {
    const int begin = static_cast<int>(b) * kRowBlock;
    body(begin, std::min(rows, begin + kRowBlock));
  });
}

// Y = alpha A X + beta Y on row-major blocks of m columns (X is cols x m, Y rows x m).
void spmm(const RowSparse& A, const double* X, double* Y, int m, double alpha, double beta) {
  const int* ptr = A.outerIndexPtr();
  const int* col = A.innerIndexPtr();
  const double* val = A.valuePtr();
  for_rows(static_cast<int>(A.rows()), m, [&](int begin, int end) {
    std::vector<double> acc(static_cast<size_t>(m));
    for (int i = begin; i < end; ++i) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int k = ptr[i]; k < ptr[i + 1]; ++k) {
        const double a = val[k];
        const double* x = X + static_cast<size_t>(col[k]) * static_cast<size_t>(m);
        for (int j = 0; j < m; ++j) acc[static_cast<size_t>(j)] += a * x[j];
      }
      double* y = Y + static_cast<size_t>(i) * static_cast<size_t>(m);
      if (beta == 0.0)
        for (int j = 0; j < m; ++j) y[j] = alpha * acc[static_cast<size_t>(j)];
      else
        for (int j = 0; j < m; ++j) y[j] = alpha * acc[static_cast<size_t>(j)] + beta * y[j];
    }
  });
}

}  // namespace

struct Amg::Level {
  RowSparse A;                // this level's operator
  RowSparse P, R;             // prolongation to this level from the next, and R = P^T
  std::vector<double> dinv;   // 1 / a_ii
  double lambda = 0;          // upper bound of the spectrum of D^-1 A used by the smoother
  int rows() const { return static_cast<int>(A.rows()); }

  // Chebyshev smoothing of A x = b: x += p(D^-1 A) D^-1 (b - A x), with x = 0 on entry when
  // `zero` (Saad, Iterative Methods for Sparse Linear Systems, algorithm 12.1).
  void smooth(const double* b, double* x, int m, bool zero, int degree, double range,
              std::vector<double>& r, std::vector<double>& d) const {
    const size_t n = static_cast<size_t>(rows()) * static_cast<size_t>(m);
    const double hi = lambda, lo = lambda / range;
    const double theta = 0.5 * (hi + lo), delta = 0.5 * (hi - lo), sigma = theta / delta;
    double rho = 1.0 / sigma;
    r.resize(n);
    d.resize(n);
    std::copy(b, b + n, r.begin());
    if (!zero) spmm(A, x, r.data(), m, -1.0, 1.0);
    const size_t mm = static_cast<size_t>(m);
    for_rows(rows(), m, [&](int begin, int end) {
      for (size_t i = static_cast<size_t>(begin); i < static_cast<size_t>(end); ++i)
        for (size_t j = 0; j < mm; ++j) {
          const size_t k = i * mm + j;
          d[k] = dinv[i] * r[k] / theta;
          x[k] = zero ? d[k] : x[k] + d[k];
        }
    });
    for (int it = 1; it < degree; ++it) {
      spmm(A, d.data(), r.data(), m, -1.0, 1.0);  // r -= A d
      const double rho_next = 1.0 / (2.0 * sigma - rho);
      const double c1 = rho_next * rho, c2 = 2.0 * rho_next / delta;
      for_rows(rows(), m, [&](int begin, int end) {
        for (size_t i = static_cast<size_t>(begin); i < static_cast<size_t>(end); ++i)
          for (size_t j = 0; j < mm; ++j) {
            const size_t k = i * mm + j;
            d[k] = c1 * d[k] + c2 * dinv[i] * r[k];
            x[k] += d[k];
          }
      });
      rho = rho_next;
    }
  }
};

struct Amg::Work {
  std::mutex mutex;
  std::vector<std::vector<double>> b, x;
  std::vector<double> r, d, res;
};

struct Amg::Coarse {
  Eigen::SimplicialLDLT<ColSparse> ldlt;
  int rows = 0;
};

namespace {

// rho(D^-1 A) from below by power iteration (Rayleigh quotient x'Ax / x'Dx); deterministic.
double spectral_radius(const RowSparse& A, const std::vector<double>& dinv) {
  const int n = static_cast<int>(A.rows());
  std::vector<double> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
  unsigned state = 12345u;
  for (auto& v : x) {
    state = state * 1664525u + 1013904223u;
    v = 0.5 + static_cast<double>(state >> 8) / static_cast<double>(1u << 24);
  }
  double rq = 0;
  for (int it = 0; it < 20; ++it) {
    spmm(A, x.data(), y.data(), 1, 1.0, 0.0);
    double xax = 0, xdx = 0, norm = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      xax += x[i] * y[i];
      xdx += x[i] * x[i] / dinv[i];
    }
    rq = xax / xdx;
    for (size_t i = 0; i < x.size(); ++i) {
      x[i] = dinv[i] * y[i];
      norm = std::max(norm, std::abs(x[i]));
    }
    if (!(norm > 0)) break;
    for (auto& v : x) v /= norm;
  }
  return rq;
}

// Aggregates of strongly connected nodes (Vanek, Mandel, Brezina 1996): -1 for nodes with no
// strong neighbour. Returns the number of aggregates.
int aggregate(const RowSparse& A, const std::vector<double>& diag, double eps, std::vector<int>& agg) {
  const int n = static_cast<int>(A.rows());
  const int* ptr = A.outerIndexPtr();
  const int* col = A.innerIndexPtr();
  const double* val = A.valuePtr();
  auto strong = [&](int i, int k) {
    const int j = col[k];
    return j != i && std::abs(val[k]) >= eps * std::sqrt(diag[static_cast<size_t>(i)] * diag[static_cast<size_t>(j)]);
  };
  agg.assign(static_cast<size_t>(n), -1);
  std::vector<char> has_strong(static_cast<size_t>(n), 0);
  for (int i = 0; i < n; ++i)
    for (int k = ptr[i]; k < ptr[i + 1]; ++k)
      if (strong(i, k)) { has_strong[static_cast<size_t>(i)] = 1; break; }
  int count = 0;
  // Pass 1: a node whose strong neighbours are all free starts an aggregate with them.
  for (int i = 0; i < n; ++i) {
    if (agg[static_cast<size_t>(i)] >= 0 || !has_strong[static_cast<size_t>(i)]) continue;
    bool free = true;
    for (int k = ptr[i]; k < ptr[i + 1] && free; ++k)
      if (strong(i, k) && agg[static_cast<size_t>(col[k])] >= 0) free = false;
    if (!free) continue;
    agg[static_cast<size_t>(i)] = count;
    for (int k = ptr[i]; k < ptr[i + 1]; ++k)
      if (strong(i, k)) agg[static_cast<size_t>(col[k])] = count;
    ++count;
  }
  // Pass 2: the rest join the pass-1 aggregate they are most strongly connected to.
  const std::vector<int> first = agg;
  for (int i = 0; i < n; ++i) {
    if (first[static_cast<size_t>(i)] >= 0 || !has_strong[static_cast<size_t>(i)]) continue;
    double best = 0;
    for (int k = ptr[i]; k < ptr[i + 1]; ++k) {
      const int a = first[static_cast<size_t>(col[k])];
      if (a >= 0 && strong(i, k) && std::abs(val[k]) > best) {
        best = std::abs(val[k]);
        agg[static_cast<size_t>(i)] = a;
      }
    }
  }
  // Pass 3: whatever is left (strong neighbours only in pass-2 nodes) forms new aggregates.
  for (int i = 0; i < n; ++i) {
    if (agg[static_cast<size_t>(i)] >= 0 || !has_strong[static_cast<size_t>(i)]) continue;
    agg[static_cast<size_t>(i)] = count;
    for (int k = ptr[i]; k < ptr[i + 1]; ++k)
      if (strong(i, k) && agg[static_cast<size_t>(col[k])] < 0) agg[static_cast<size_t>(col[k])] = count;
    ++count;
  }
  return count;
}

// P = (I - omega D^-1 A) P0, P0 the aggregates' indicator (n x count).
RowSparse smoothed_prolongator(const RowSparse& A, const std::vector<double>& dinv, double omega,
                               const std::vector<int>& agg, int count) {
  const int n = static_cast<int>(A.rows());
  const int* ptr = A.outerIndexPtr();
  const int* col = A.innerIndexPtr();
  const double* val = A.valuePtr();
  std::vector<Eigen::Triplet<double, int>> entries;
  entries.reserve(static_cast<size_t>(A.nonZeros()) / 2);
  std::vector<double> acc(static_cast<size_t>(count), 0.0);
  std::vector<int> touched;
  for (int i = 0; i < n; ++i) {
    touched.clear();
    auto add = [&](int a, double v) {
      if (acc[static_cast<size_t>(a)] == 0.0) touched.push_back(a);
      acc[static_cast<size_t>(a)] += v;
      if (acc[static_cast<size_t>(a)] == 0.0) acc[static_cast<size_t>(a)] = 1e-300;  // keep it marked
    };
    if (agg[static_cast<size_t>(i)] >= 0) add(agg[static_cast<size_t>(i)], 1.0);
    const double w = omega * dinv[static_cast<size_t>(i)];
    for (int k = ptr[i]; k < ptr[i + 1]; ++k) {
      const int a = agg[static_cast<size_t>(col[k])];
      if (a >= 0) add(a, -w * val[k]);
    }
    for (int a : touched) {
      const double v = acc[static_cast<size_t>(a)];
      if (std::abs(v) > 1e-290) entries.emplace_back(i, a, v);
      acc[static_cast<size_t>(a)] = 0.0;
    }
  }
  RowSparse P(n, count);
  P.setFromTriplets(entries.begin(), entries.end());
  return P;
}

}  // namespace

Amg::Amg(const CsrPattern& pattern, const double* values, AmgOptions options)
    : work_(std::make_unique<Work>()), options_(options) {
  DOPPEL_ASSERT(pattern.rows == pattern.cols);
  RowSparse A = Eigen::Map<const RowSparse>(pattern.rows, pattern.cols, static_cast<int>(pattern.nnz()),
                                            pattern.row_ptr.data(), pattern.col.data(), values);
  double eps = options.strength;
  for (int l = 0;; ++l) {
    auto level = std::make_unique<Level>();
    level->A = std::move(A);
    const int n = level->rows();
    std::vector<double> diag(static_cast<size_t>(n));
    level->dinv.resize(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      diag[static_cast<size_t>(i)] = level->A.coeff(i, i);
      if (!(diag[static_cast<size_t>(i)] > 0))
        throw SolverDiverged("the operator has a non-positive diagonal entry in row " + std::to_string(i) +
                             ": it is not positive definite (the problem is not well posed)");
      level->dinv[static_cast<size_t>(i)] = 1.0 / diag[static_cast<size_t>(i)];
    }
    level->lambda = 1.1 * spectral_radius(level->A, level->dinv);
    std::vector<int> agg;
    const int count = (n <= options.coarse_size || l + 1 >= options.max_levels) ? 0
                                                                                : aggregate(level->A, diag, eps, agg);
    // The coarsest level: small enough, or coarsening stalls (too few strong couplings).
    if (count == 0 || count > n * 9 / 10) {
      coarse_ = std::make_unique<Coarse>();
      coarse_->rows = n;
      coarse_->ldlt.compute(ColSparse(level->A));
      if (coarse_->ldlt.info() != Eigen::Success)
        throw SolverDiverged("the coarsest multigrid operator is singular: the operator is not positive definite");
      levels_.push_back(std::move(level));
      break;
    }
    level->P = smoothed_prolongator(level->A, level->dinv, 4.0 / (3.0 * level->lambda / 1.1), agg, count);
    level->R = level->P.transpose();
    const RowSparse AP = level->A * level->P;
    A = (level->R * AP).pruned();
    levels_.push_back(std::move(level));
    eps *= 0.5;
  }
}

Amg::~Amg() = default;

int Amg::size() const { return levels_.front()->rows(); }
int Amg::levels() const { return static_cast<int>(levels_.size()); }

std::vector<int> Amg::level_sizes() const {
  std::vector<int> s;
  for (const auto& l : levels_) s.push_back(l->rows());
  return s;
}

double Amg::operator_complexity() const {
  double total = 0;
  for (const auto& l : levels_) total += static_cast<double>(l->A.nonZeros());
  return total / static_cast<double>(levels_.front()->A.nonZeros());
}

size_t Amg::bytes() const {
  auto of = [](const RowSparse& M) {
    return static_cast<size_t>(M.nonZeros()) * (sizeof(double) + sizeof(int)) + static_cast<size_t>(M.outerSize() + 1) * sizeof(int);
  };
  size_t total = 0;
  for (const auto& l : levels_) total += of(l->A) + of(l->P) + of(l->R) + l->dinv.size() * sizeof(double);
  return total;
}

void Amg::apply(const double* R, double* Z, int m) const {
  const size_t L = levels_.size();
  const size_t mm = static_cast<size_t>(m);
  // Row-major blocks per level (right-hand side b, solution x) and work vectors, kept between
  // calls: CG applies the cycle every iteration to blocks of the same width.
  std::lock_guard<std::mutex> lock(work_->mutex);
  auto& b = work_->b;
  auto& x = work_->x;
  auto& r = work_->r;
  auto& d = work_->d;
  auto& res = work_->res;
  b.resize(L);
  x.resize(L);
  const int n = size();
  const size_t nn = static_cast<size_t>(n);
  b[0].resize(nn * mm);
  for_rows(n, m, [&](int begin, int end) {
    for (size_t i = static_cast<size_t>(begin); i < static_cast<size_t>(end); ++i)
      for (size_t j = 0; j < mm; ++j) b[0][i * mm + j] = R[j * nn + i];
  });
  for (size_t l = 0; l < L; ++l) x[l].resize(static_cast<size_t>(levels_[l]->rows()) * mm);
  // Down: pre-smooth, restrict the residual.
  for (size_t l = 0; l + 1 < L; ++l) {
    const Level& lv = *levels_[l];
    lv.smooth(b[l].data(), x[l].data(), m, true, options_.smoother_degree, options_.smoother_range, r, d);
    res.assign(b[l].begin(), b[l].end());
    spmm(lv.A, x[l].data(), res.data(), m, -1.0, 1.0);
    b[l + 1].resize(static_cast<size_t>(lv.R.rows()) * mm);
    spmm(lv.R, res.data(), b[l + 1].data(), m, 1.0, 0.0);
  }
  // Coarsest: direct solve (column-major for the factor).
  {
    const int nc = coarse_->rows;
    Eigen::MatrixXd bc(nc, m);
    for (int i = 0; i < nc; ++i)
      for (int j = 0; j < m; ++j) bc(i, j) = b[L - 1][static_cast<size_t>(i) * mm + static_cast<size_t>(j)];
    const Eigen::MatrixXd xc = coarse_->ldlt.solve(bc);
    for (int i = 0; i < nc; ++i)
      for (int j = 0; j < m; ++j) x[L - 1][static_cast<size_t>(i) * mm + static_cast<size_t>(j)] = xc(i, j);
  }
  // Up: prolong the correction, post-smooth.
  for (size_t l = L - 1; l-- > 0;) {
    const Level& lv = *levels_[l];
    spmm(lv.P, x[l + 1].data(), x[l].data(), m, 1.0, 1.0);
    lv.smooth(b[l].data(), x[l].data(), m, false, options_.smoother_degree, options_.smoother_range, r, d);
  }
  for_rows(n, m, [&](int begin, int end) {
    for (size_t j = 0; j < mm; ++j)
      for (size_t i = static_cast<size_t>(begin); i < static_cast<size_t>(end); ++i) Z[j * nn + i] = x[0][i * mm + j];
  });
}

}  // namespace doppel
