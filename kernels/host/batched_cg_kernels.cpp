// Host (reference) implementation of the batched CG kernels: loops over rows split across
// host threads, the scenarios of a row innermost. Reductions sum per-thread partials in a
// fixed order, so results do not depend on timing.
#include "kernels/solvers/batched_cg_kernels.hpp"

#include <algorithm>
#include <vector>

#include "kernels/host/parallel.hpp"

namespace doppel::host {
namespace {

// Runs body(begin, end, partial) over row ranges; partial has `width` doubles per
// accumulator (count accumulators) and is summed into outs afterwards.
template <class Body>
void reduce_rows(int rows, int width, int count, double* const* outs, Body&& body) {
  const int chunks = std::max(1, std::min(host_threads(), rows / 256 + 1));
  std::vector<std::vector<double>> partial(static_cast<size_t>(chunks),
                                           std::vector<double>(static_cast<size_t>(width * count), 0.0));
  parallel_for(static_cast<size_t>(chunks), [&](size_t c) {
    const int begin = static_cast<int>(static_cast<long>(rows) * static_cast<long>(c) / chunks);
    const int end = static_cast<int>(static_cast<long>(rows) * static_cast<long>(c + 1) / chunks);
    body(begin, end, partial[c].data());
  });
  for (int a = 0; a < count; ++a) {
    if (!outs[a]) continue;
    for (const auto& p : partial)
      for (int s = 0; s < width; ++s) outs[a][s] += p[static_cast<size_t>(a * width + s)];
  }
}

template <class Body>
void rows_parallel(int rows, Body&& body) {
  const int chunks = std::max(1, std::min(host_threads(), rows / 256 + 1));
  parallel_for(static_cast<size_t>(chunks), [&](size_t c) {
    const int begin = static_cast<int>(static_cast<long>(rows) * static_cast<long>(c) / chunks);
    const int end = static_cast<int>(static_cast<long>(rows) * static_cast<long>(c + 1) / chunks);
    for (int i = begin; i < end; ++i) body(i);
  });
}

const double* theta_of(const OperatorView& op, const BatchView& b, int s) {
  return b.theta + static_cast<size_t>(s) * static_cast<size_t>(op.terms);
}

}  // namespace

void fill(const Executor&, double* x, size_t n, double value) { std::fill(x, x + n, value); }
void fill(const Executor&, int* x, size_t n, int value) { std::fill(x, x + n, value); }

void affine_apply(const Executor&, const OperatorView& op, const BatchView& batch,
                  const double* x, double* y, double* xy) {
  // Loop order row -> entry -> term -> scenario, y_s = sum_k theta_sk (A_k x_s): the innermost
  // loop runs over contiguous scenarios and vectorizes. (The CUDA kernel sums in the order of
  // affine_row; the two agree to rounding.)
  const int w = batch.width;
  const int K = op.terms;
  double* outs[1] = {xy};
  reduce_rows(op.rows, w, 1, outs, [&](int begin, int end, double* part) {
    std::vector<double> acc(static_cast<size_t>(K) * static_cast<size_t>(w));
    for (int i = begin; i < end; ++i) {
      const double* xi = x + at(i, 0, w);
      double* yi = y + at(i, 0, w);
      if (op.constrained[i]) {
        for (int s = 0; s < w; ++s)
          if (batch.state[s] == kActive) {
            yi[s] = xi[s];
            part[s] += xi[s] * xi[s];
          }
        continue;
      }
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int j = op.row_ptr[i]; j < op.row_ptr[i + 1]; ++j) {
        const double* xc = x + at(op.col[j], 0, w);
        for (int k = 0; k < K; ++k) {
          const double v = op.values[static_cast<size_t>(k) * op.nnz + static_cast<size_t>(j)];
          if (v == 0.0) continue;
          double* a = acc.data() + static_cast<size_t>(k) * static_cast<size_t>(w);
          for (int s = 0; s < w; ++s) a[s] += v * xc[s];
        }
      }
      for (int s = 0; s < w; ++s) {
        if (batch.state[s] != kActive) continue;
        const double* th = theta_of(op, batch, s);
        double v = 0.0;
        for (int k = 0; k < K; ++k) v += th[k] * acc[static_cast<size_t>(k) * static_cast<size_t>(w) + static_cast<size_t>(s)];
        yi[s] = v;
        part[s] += xi[s] * v;
      }
    }
  });
}

void cg_initialize(const Executor&, const OperatorView& op, const BatchView& batch,
                   const double* b, double* r, double* p, double* rz, double* rr, double* bb) {
  const int w = batch.width;
  double* outs[3] = {rz, rr, bb};
  reduce_rows(op.rows, w, 3, outs, [&](int begin, int end, double* part) {
    for (int i = begin; i < end; ++i)
      for (int s = 0; s < w; ++s) {
        const size_t idx = at(i, s, w);
        const double res = b[idx] - r[idx];
        const double z = res * jacobi_inverse(op, theta_of(op, batch, s), i);
        r[idx] = res;
        p[idx] = z;
        part[s] += res * z;
        part[w + s] += res * res;
        part[2 * w + s] += b[idx] * b[idx];
      }
  });
}

void cg_residual(const Executor&, int rows, int width, const double* b, double* r, double* rr,
                 double* bb) {
  double* outs[2] = {rr, bb};
  reduce_rows(rows, width, 2, outs, [&](int begin, int end, double* part) {
    for (int i = begin; i < end; ++i)
      for (int s = 0; s < width; ++s) {
        const size_t idx = at(i, s, width);
        const double res = b[idx] - r[idx];
        r[idx] = res;
        part[s] += res * res;
        part[width + s] += b[idx] * b[idx];
      }
  });
}

void cg_check(const Executor&, int width, int iteration, double tol2, const double* pq,
              const double* bb, const double* rr, int* state, int* iterations) {
  for (int s = 0; s < width; ++s) cg_check_at(s, iteration, tol2, pq, bb, rr, state, iterations);
}

void dot_columns(const Executor&, int rows, const BatchView& batch, const double* a,
                 const double* b, double* out) {
  const int w = batch.width;
  double* outs[1] = {out};
  reduce_rows(rows, w, 1, outs, [&](int begin, int end, double* part) {
    for (int i = begin; i < end; ++i)
      for (int s = 0; s < w; ++s)
        if (batch.state[s] == kActive) part[s] += a[at(i, s, w)] * b[at(i, s, w)];
  });
}

void cg_start(const Executor&, int width, double tol2, double* bb, const double* rr, int* state,
              int* iterations) {
  for (int s = 0; s < width; ++s) cg_start_at(s, tol2, bb, rr, state, iterations);
}

void cg_update_solution(const Executor&, const OperatorView& op, const BatchView& batch,
                        const double* pq, const double* rz, const double* p, const double* q,
                        double* x, double* r, double* rz_new, double* rr) {
  const int w = batch.width;
  double* outs[2] = {rz_new, rr};
  reduce_rows(op.rows, w, 2, outs, [&](int begin, int end, double* part) {
    for (int i = begin; i < end; ++i)
      for (int s = 0; s < w; ++s) {
        if (batch.state[s] != kActive) continue;
        const CgPartial c = cg_update_solution_at(op, theta_of(op, batch, s), rz[s] / pq[s], p, q,
                                                  x, r, at(i, s, w), i, rz_new != nullptr);
        part[s] += c.rz;
        part[w + s] += c.rr;
      }
  });
}

void cg_update_scalars(const Executor&, int width, int iteration, double tol2, double* pq,
                       const double* bb, double* rr, double* rz, double* rz_new, double* beta,
                       int* state, int* iterations) {
  for (int s = 0; s < width; ++s)
    cg_scalars_at(s, iteration, tol2, pq, bb, rr, rz, rz_new, beta, state, iterations);
}

void cg_update_directions(const Executor&, const OperatorView& op, const BatchView& batch,
                          const double* beta, const double* r, const double* z, double* p) {
  const int w = batch.width;
  rows_parallel(op.rows, [&](int i) {
    for (int s = 0; s < w; ++s) {
      if (batch.state[s] != kActive) continue;
      const size_t idx = at(i, s, w);
      const double zi = z ? z[idx] : r[idx] * jacobi_inverse(op, theta_of(op, batch, s), i);
      p[idx] = zi + beta[s] * p[idx];
    }
  });
}

int count_active(const Executor&, const int* state, int width, int* count) {
  *count = static_cast<int>(std::count(state, state + width, kActive));
  return *count;
}

void gather_columns(const Executor&, int rows, const double* src, int ld_src, const int* cols,
                    int count, double* dst) {
  rows_parallel(rows, [&](int i) {
    for (int j = 0; j < count; ++j) dst[at(i, j, count)] = src[at(i, cols[j], ld_src)];
  });
}

void scatter_columns(const Executor&, int rows, const double* src, int count, const int* cols,
                     double* dst, int ld_dst) {
  rows_parallel(rows, [&](int i) {
    for (int j = 0; j < count; ++j) dst[at(i, cols[j], ld_dst)] = src[at(i, j, count)];
  });
}

void difference_norms(const Executor&, int rows, int width, const double* a, const double* b,
                      double* dd, double* aa) {
  double* outs[2] = {dd, aa};
  reduce_rows(rows, width, 2, outs, [&](int begin, int end, double* part) {
    for (int i = begin; i < end; ++i)
      for (int s = 0; s < width; ++s) {
        const size_t idx = at(i, s, width);
        const double d = a[idx] - b[idx];
        part[s] += d * d;
        part[width + s] += a[idx] * a[idx];
      }
  });
}

void multiply_basis(const Executor&, int rows, int r, int width, const double* U,
                    const double* C, double* X) {
  rows_parallel(rows, [&](int i) {
    double* xi = X + at(i, 0, width);
    std::fill(xi, xi + width, 0.0);
    for (int k = 0; k < r; ++k) {
      const double u = U[at(i, k, r)];
      const double* ck = C + at(k, 0, width);
      for (int s = 0; s < width; ++s) xi[s] += u * ck[s];
    }
  });
}

void axpby(const Executor&, size_t n, double a, const double* x, double b, const double* y, double* z) {
  const size_t chunks = std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(host_threads()), n / 65536 + 1));
  parallel_for(chunks, [&](size_t c) {
    for (size_t i = n * c / chunks; i < n * (c + 1) / chunks; ++i) z[i] = a * x[i] + b * y[i];
  });
}

void combine_terms(const Executor&, const OperatorView& op, const double* theta, double* values,
                   double* diagonal) {
  std::fill(values, values + op.nnz, 0.0);
  std::fill(diagonal, diagonal + op.rows, 0.0);
  for (int k = 0; k < op.terms; ++k) {
    const double* a = op.values + static_cast<size_t>(k) * op.nnz;
    const double* d = op.diagonal + static_cast<size_t>(k) * static_cast<size_t>(op.rows);
    for (size_t j = 0; j < op.nnz; ++j) values[j] += theta[k] * a[j];
    for (int i = 0; i < op.rows; ++i) diagonal[i] += theta[k] * d[i];
  }
}

}  // namespace doppel::host
