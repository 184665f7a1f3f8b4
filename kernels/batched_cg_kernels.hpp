// The kernels of the batched solvers (kernels/batched_cg.hpp), declared once and implemented
// per backend: host:: in batched_cg_kernels.cpp (plain loops over rows, the reference the
// device kernels are tested against) and cuda:: in cuda/batched_cg_kernels.cu. A host-only
// build links cuda:: stubs that throw NotCompiled. Multi-vectors are [row][scenario]
// (kernels/batched_cg_math.hpp); reductions *accumulate* into their outputs.
#pragma once

#include "kernels/batched_cg_math.hpp"
#include "kernels/executor.hpp"

#define DOPPEL_DECLARE_BATCHED_CG_KERNELS                                                      \
  /* x[0..n) = value */                                                                        \
  void fill(const Executor& exec, double* x, size_t n, double value);                          \
  void fill(const Executor& exec, int* x, size_t n, int value);                                \
  /* y = A(theta_s) x for active columns; xy[s] += x.y when xy is not null */                   \
  void affine_apply(const Executor& exec, const OperatorView& op, const BatchView& batch,      \
                    const double* x, double* y, double* xy);                                   \
  /* r holds A x on entry: r = b - A x, p = M^-1 r; rz += r.p, rr += r.r, bb += b.b */          \
  void cg_initialize(const Executor& exec, const OperatorView& op, const BatchView& batch,     \
                     const double* b, double* r, double* p, double* rz, double* rr, double* bb); \
  /* per column: bb = 1 when 0, state = active unless rr <= tol2 bb */                          \
  void cg_start(const Executor& exec, int width, double tol2, double* bb, const double* rr,    \
                int* state, int* iterations);                                                  \
  /* alpha = rz / pq; x += alpha p; r -= alpha q; rz_new += r.M^-1 r; rr += r.r */              \
  void cg_update_solution(const Executor& exec, const OperatorView& op, const BatchView& batch, \
                          const double* pq, const double* rz, const double* p, const double* q, \
                          double* x, double* r, double* rz_new, double* rr);                   \
  /* convergence, breakdown, beta; resets pq, rr, rz_new (cg_scalars_at) */                     \
  void cg_update_scalars(const Executor& exec, int width, int iteration, double tol2,          \
                         double* pq, const double* bb, double* rr, double* rz, double* rz_new, \
                         double* beta, int* state, int* iterations);                           \
  /* p = M^-1 r + beta p for active columns */                                                 \
  void cg_update_directions(const Executor& exec, const OperatorView& op,                      \
                            const BatchView& batch, const double* beta, const double* r,       \
                            double* p);                                                        \
  /* columns still iterating; `count` is one int of the caller's on the executor (no state */  \
  /* shared between solves) */                                                                 \
  int count_active(const Executor& exec, const int* state, int width, int* count);             \
  /* dst(i, j) = src(i, cols[j]), dst has ld = count */                                         \
  void gather_columns(const Executor& exec, int rows, const double* src, int ld_src,           \
                      const int* cols, int count, double* dst);                                \
  /* dst(i, cols[j]) = src(i, j), src has ld = count */                                         \
  void scatter_columns(const Executor& exec, int rows, const double* src, int count,           \
                       const int* cols, double* dst, int ld_dst);                              \
  /* dd[s] += |a(:,s) - b(:,s)|^2, aa[s] += |a(:,s)|^2 */                                       \
  void difference_norms(const Executor& exec, int rows, int width, const double* a,            \
                        const double* b, double* dd, double* aa);                              \
  /* X = U C: U rows x r, C r x width, X rows x width (all row-major) */                        \
  void multiply_basis(const Executor& exec, int rows, int r, int width, const double* U,       \
                      const double* C, double* X);                                             \
  /* values = sum_k theta_k A_k, diagonal likewise (one combined term) */                       \
  void combine_terms(const Executor& exec, const OperatorView& op, const double* theta,        \
                     double* values, double* diagonal);

namespace doppel {
namespace host {
DOPPEL_DECLARE_BATCHED_CG_KERNELS
}
namespace cuda {
DOPPEL_DECLARE_BATCHED_CG_KERNELS
}
}  // namespace doppel
