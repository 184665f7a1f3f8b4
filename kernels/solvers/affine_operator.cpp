#include "kernels/solvers/affine_operator.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/host/parallel.hpp"
#include "spec/errors.hpp"

namespace doppel {

AffineOperator::AffineOperator(CsrPattern pattern, std::vector<std::vector<double>> terms,
                               const std::vector<int>& dirichlet_dofs)
    : pattern_(std::move(pattern)), terms_(std::move(terms)), dirichlet_(dirichlet_dofs) {
  std::sort(dirichlet_.begin(), dirichlet_.end());
  dirichlet_.erase(std::unique(dirichlet_.begin(), dirichlet_.end()), dirichlet_.end());
  constrained_.assign(static_cast<size_t>(pattern_.rows), 0);
  for (int d : dirichlet_) constrained_[static_cast<size_t>(d)] = 1;
  for (int d : dirichlet_) {
    const long pos = pattern_.find(d, d);
    DOPPEL_ASSERT(pos >= 0);
    diagonal_.push_back(pos);
  }
  coupling_values_.resize(terms_.size());
  for (int r = 0; r < pattern_.rows; ++r) {
    const bool row_c = constrained_[static_cast<size_t>(r)] != 0;
    for (int k = pattern_.row_ptr[static_cast<size_t>(r)]; k < pattern_.row_ptr[static_cast<size_t>(r) + 1]; ++k) {
      const int c = pattern_.col[static_cast<size_t>(k)];
      const bool col_c = constrained_[static_cast<size_t>(c)] != 0;
      if (!row_c && col_c) {
        couplings_.push_back({r, c});
        for (size_t t = 0; t < terms_.size(); ++t) coupling_values_[t].push_back(terms_[t][static_cast<size_t>(k)]);
      }
      if (row_c || col_c)
        for (auto& t : terms_) t[static_cast<size_t>(k)] = 0.0;
    }
  }
}

size_t AffineOperator::bytes() const {
  size_t b = (pattern_.row_ptr.size() + pattern_.col.size()) * sizeof(int) + constrained_.size() +
             couplings_.size() * sizeof(Coupling) + diagonal_.size() * sizeof(long);
  for (const auto& t : terms_) b += t.size() * sizeof(double);
  for (const auto& c : coupling_values_) b += c.size() * sizeof(double);
  return b;
}

std::vector<double> AffineOperator::combine(const double* theta) const {
  std::vector<double> v(pattern_.nnz(), 0.0);
  for (size_t t = 0; t < terms_.size(); ++t) {
    const double th = theta[t];
    if (th == 0.0) continue;
    const double* a = terms_[t].data();
    for (size_t k = 0; k < v.size(); ++k) v[k] += th * a[k];
  }
  for (long pos : diagonal_) v[static_cast<size_t>(pos)] = 1.0;
  return v;
}

void AffineOperator::apply(const double* theta, const double* x, double* y) const {
  apply_columns(1, &theta, &x, &y);
}

void AffineOperator::apply_columns(size_t m, const double* const* theta, const double* const* x,
                                   double* const* y) const {
  constexpr size_t kGroup = 8;     // columns per pass over the operator (one AVX-512 vector)
  constexpr int kRowBlock = 2048;  // rows per task
  // Columns that all share one theta (a shared-operator batch, superposition modes) read one
  // combined value array: one multiply-add per entry and column instead of one per term.
  bool shared = m > 1 && terms_.size() > 1;
  for (size_t j = 1; shared && j < m; ++j)
    shared = theta[j] == theta[0] || std::equal(theta[0], theta[0] + terms_.size(), theta[j]);
  std::vector<double> combined;
  std::vector<const double*> values(terms_.size());
  for (size_t t = 0; t < terms_.size(); ++t) values[t] = terms_[t].data();
  if (shared) {
    combined = combine(theta[0]);  // its Dirichlet diagonal is never read: constrained rows copy x
    values.assign(1, combined.data());
  }
  const size_t nt = values.size();
  const double one = 1.0;
  const int rows = pattern_.rows;
  // Small products in one task (starting threads would cost more than they save).
  const int block = m * static_cast<size_t>(rows) < (size_t{1} << 15) ? std::max(rows, 1) : kRowBlock;
  parallel_for(static_cast<size_t>((rows + block - 1) / block), [&](size_t b) {
    const int r0 = static_cast<int>(b) * block, r1 = std::min(rows, r0 + block);
    // Theta by term, columns contiguous; a partial group pads with zero coefficients.
    std::vector<double> th(nt * kGroup);
    const double* xs[kGroup];
    for (size_t g0 = 0; g0 < m; g0 += kGroup) {
      const size_t w = std::min(kGroup, m - g0);
      for (size_t j = 0; j < kGroup; ++j) {
        xs[j] = x[g0 + (j < w ? j : 0)];
        for (size_t t = 0; t < nt; ++t) th[t * kGroup + j] = j < w ? (shared ? one : theta[g0 + j][t]) : 0.0;
      }
      for (int r = r0; r < r1; ++r) {
        if (constrained_[static_cast<size_t>(r)]) {
          for (size_t j = 0; j < w; ++j) y[g0 + j][r] = x[g0 + j][r];
          continue;
        }
        double acc[kGroup] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int k = pattern_.row_ptr[static_cast<size_t>(r)]; k < pattern_.row_ptr[static_cast<size_t>(r) + 1]; ++k) {
          const int c = pattern_.col[static_cast<size_t>(k)];
          double a[kGroup] = {0, 0, 0, 0, 0, 0, 0, 0};
          for (size_t t = 0; t < nt; ++t) {
            const double v = values[t][static_cast<size_t>(k)];
            const double* tt = &th[t * kGroup];
            for (size_t j = 0; j < kGroup; ++j) a[j] += tt[j] * v;
          }
          for (size_t j = 0; j < kGroup; ++j) acc[j] += a[j] * xs[j][c];
        }
        for (size_t j = 0; j < w; ++j) y[g0 + j][r] = acc[j];
      }
    }
  });
}

namespace {

constexpr size_t kResidualPanel = 8;  // columns per pass over the operator

// Sums of (b - A x)^2 and b^2 for the kResidualPanel columns of a panel, rows [0, rows): xt
// holds the panel's x row-major (kResidualPanel values per row), b points at the panel's first
// column (column-major, leading dimension ld), w <= kResidualPanel of its columns are real.
void residual_panel(const CsrPattern& p, const double* values, const double* xt, const double* b, size_t ld,
                    size_t w, double* rr, double* bb) {
  double r2[kResidualPanel] = {}, b2[kResidualPanel] = {};
  for (int r = 0; r < p.rows; ++r) {
    double acc[kResidualPanel] = {};
    for (int k = p.row_ptr[static_cast<size_t>(r)]; k < p.row_ptr[static_cast<size_t>(r) + 1]; ++k) {
      const double v = values[static_cast<size_t>(k)];
      const double* xk = xt + static_cast<size_t>(p.col[static_cast<size_t>(k)]) * kResidualPanel;
      for (size_t j = 0; j < kResidualPanel; ++j) acc[j] += v * xk[j];
    }
    for (size_t j = 0; j < w; ++j) {
      const double bj = b[j * ld + static_cast<size_t>(r)], d = bj - acc[j];
      r2[j] += d * d;
      b2[j] += bj * bj;
    }
  }
  for (size_t j = 0; j < w; ++j) rr[j] = r2[j], bb[j] = b2[j];
}

}  // namespace

std::vector<double> AffineOperator::relative_residuals(const double* theta, size_t m, const double* B,
                                                       const double* X) const {
  std::vector<double> out(m);
  if (m == 0) return out;
  // Constrained rows of the combined values hold 1 on the diagonal alone: they act as identity.
  const std::vector<double> values = combine(theta);
  const size_t n = static_cast<size_t>(pattern_.rows);
  const size_t panels = (m + kResidualPanel - 1) / kResidualPanel;
  const size_t threads = std::min<size_t>(panels, static_cast<size_t>(host_threads()));
  parallel_for(threads, [&](size_t t) {
    std::vector<double> xt(n * kResidualPanel);
    for (size_t q = panels * t / threads; q < panels * (t + 1) / threads; ++q) {
      const size_t c0 = q * kResidualPanel, w = std::min(kResidualPanel, m - c0);
      for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < kResidualPanel; ++j) xt[i * kResidualPanel + j] = j < w ? X[(c0 + j) * n + i] : 0.0;
      double rr[kResidualPanel], bb[kResidualPanel];
      residual_panel(pattern_, values.data(), xt.data(), B + c0 * n, n, w, rr, bb);
      for (size_t j = 0; j < w; ++j) out[c0 + j] = bb[j] > 0 ? std::sqrt(rr[j] / bb[j]) : std::sqrt(rr[j]);
    }
  });
  return out;
}

void AffineOperator::apply_free_rows(const double* theta, const double* x, double* y) const {
  apply_free_rows_columns(1, &theta, &x, &y);
}

void AffineOperator::apply_free_rows_columns(size_t m, const double* const* theta, const double* const* x,
                                             double* const* y) const {
  apply_columns(m, theta, x, y);
  auto couple = [&](size_t j) {
    for (int d : dirichlet_) y[j][d] = 0.0;
    for (size_t t = 0; t < terms_.size(); ++t) {
      const double th = theta[j][t];
      if (th == 0.0) continue;
      const auto& cv = coupling_values_[t];
      for (size_t i = 0; i < couplings_.size(); ++i) y[j][couplings_[i].row] += th * cv[i] * x[j][couplings_[i].col];
    }
  };
  if (m == 1) couple(0);
  else parallel_for(m, couple);
}

std::vector<std::vector<double>> AffineOperator::free_row_terms() const {
  std::vector<std::vector<double>> out = terms_;
  size_t i = 0;  // couplings are in pattern order
  for (int r = 0; r < pattern_.rows && i < couplings_.size(); ++r)
    for (int k = pattern_.row_ptr[static_cast<size_t>(r)]; k < pattern_.row_ptr[static_cast<size_t>(r) + 1]; ++k)
      if (i < couplings_.size() && couplings_[i].row == r && couplings_[i].col == pattern_.col[static_cast<size_t>(k)]) {
        for (size_t t = 0; t < out.size(); ++t) out[t][static_cast<size_t>(k)] = coupling_values_[t][i];
        ++i;
      }
  DOPPEL_ASSERT(i == couplings_.size());
  return out;
}

}  // namespace doppel
