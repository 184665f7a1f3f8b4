// The kernels of the batched solvers (kernels/solvers/batched_cg.hpp), declared once and implemented
// per backend: host:: in batched_cg_kernels.cpp (plain loops over rows, the reference the
// device kernels are tested against) and cuda:: in cuda/batched_cg_kernels.cu. A host-only
// build links cuda:: stubs that throw NotCompiled. Multi-vectors are [row][scenario]
// (kernels/solvers/batched_cg_math.hpp); reductions *accumulate* into their outputs.
#pragma once

#include "kernels/solvers/batched_cg_math.hpp"
#include "kernels/executor.hpp"

// The kernel set, once: DOPPEL_KERNEL(return type, name, (parameters)) per kernel. Declared
// below for both backends, and expanded by kernels/cuda/device_stub.cpp into stubs that throw
// NotCompiled in a build without CUDA (so a new kernel cannot be forgotten there).
#define DOPPEL_BATCHED_CG_KERNELS(DOPPEL_KERNEL)                                                \
  /* x[0..n) = value */                                                                        \
  DOPPEL_KERNEL(void, fill, (const Executor& exec, double* x, size_t n, double value))         \
  DOPPEL_KERNEL(void, fill, (const Executor& exec, int* x, size_t n, int value))               \
  /* y = A(theta_s) x for active columns; xy[s] += x.y when xy is not null */                   \
  DOPPEL_KERNEL(void, affine_apply, (const Executor& exec, const OperatorView& op,              \
                                     const BatchView& batch, const double* x, double* y,        \
                                     double* xy))                                               \
  /* r holds A x on entry: r = b - A x, p = M^-1 r; rz += r.p, rr += r.r, bb += b.b */          \
  DOPPEL_KERNEL(void, cg_initialize, (const Executor& exec, const OperatorView& op,             \
                                      const BatchView& batch, const double* b, double* r,       \
                                      double* p, double* rz, double* rr, double* bb))           \
  /* r holds A x on entry: r = b - A x; rr += r.r, bb += b.b (a preconditioner other than */   \
  /* Jacobi then forms z = M^-1 r and r.z) */                                                  \
  DOPPEL_KERNEL(void, cg_residual, (const Executor& exec, int rows, int width, const double* b, \
                                    double* r, double* rr, double* bb))                         \
  /* per column: bb = 1 when 0, state = active unless rr <= tol2 bb */                          \
  DOPPEL_KERNEL(void, cg_start, (const Executor& exec, int width, double tol2, double* bb,      \
                                 const double* rr, int* state, int* iterations))                \
  /* alpha = rz / pq; x += alpha p; r -= alpha q; rr += r.r; rz_new += r.D^-1 r (Jacobi) */    \
  /* unless rz_new is null */                                                                  \
  DOPPEL_KERNEL(void, cg_update_solution, (const Executor& exec, const OperatorView& op,        \
                                           const BatchView& batch, const double* pq,            \
                                           const double* rz, const double* p, const double* q,  \
                                           double* x, double* r, double* rz_new, double* rr))   \
  /* convergence, breakdown, beta; resets pq, rr, rz_new (cg_scalars_at) */                     \
  DOPPEL_KERNEL(void, cg_update_scalars, (const Executor& exec, int width, int iteration,       \
                                          double tol2, double* pq, const double* bb, double* rr, \
                                          double* rz, double* rz_new, double* beta, int* state, \
                                          int* iterations))                                     \
  /* convergence and breakdown only (cg_check_at), before a preconditioner solve */           \
  DOPPEL_KERNEL(void, cg_check, (const Executor& exec, int width, int iteration, double tol2,   \
                                 const double* pq, const double* bb, const double* rr,          \
                                 int* state, int* iterations))                                  \
  /* out[s] += a(:,s).b(:,s) for active columns */                                              \
  DOPPEL_KERNEL(void, dot_columns, (const Executor& exec, int rows, const BatchView& batch,     \
                                    const double* a, const double* b, double* out))             \
  /* p = z + beta p for active columns; z = M^-1 r, or Jacobi on the fly when z is null */      \
  DOPPEL_KERNEL(void, cg_update_directions, (const Executor& exec, const OperatorView& op,      \
                                             const BatchView& batch, const double* beta,        \
                                             const double* r, const double* z, double* p))      \
  /* columns still iterating; `count` is one int of the caller's on the executor (no state */  \
  /* shared between solves) */                                                                 \
  DOPPEL_KERNEL(int, count_active, (const Executor& exec, const int* state, int width,          \
                                    int* count))                                                \
  /* dst(i, j) = src(i, cols[j]), dst has ld = count */                                         \
  DOPPEL_KERNEL(void, gather_columns, (const Executor& exec, int rows, const double* src,       \
                                       int ld_src, const int* cols, int count, double* dst))    \
  /* dst(i, cols[j]) = src(i, j), src has ld = count */                                         \
  DOPPEL_KERNEL(void, scatter_columns, (const Executor& exec, int rows, const double* src,      \
                                        int count, const int* cols, double* dst, int ld_dst))   \
  /* dd[s] += |a(:,s) - b(:,s)|^2, aa[s] += |a(:,s)|^2 */                                       \
  DOPPEL_KERNEL(void, difference_norms, (const Executor& exec, int rows, int width,             \
                                         const double* a, const double* b, double* dd,          \
                                         double* aa))                                           \
  /* X = U C: U rows x r, C r x width, X rows x width (all row-major) */                        \
  DOPPEL_KERNEL(void, multiply_basis, (const Executor& exec, int rows, int r, int width,        \
                                       const double* U, const double* C, double* X))            \
  /* z = a x + b y over n values (z may be x or y) */                                          \
  DOPPEL_KERNEL(void, axpby, (const Executor& exec, size_t n, double a, const double* x,        \
                              double b, const double* y, double* z))                            \
  /* values = sum_k theta_k A_k, diagonal likewise (one combined term) */                       \
  DOPPEL_KERNEL(void, combine_terms, (const Executor& exec, const OperatorView& op,             \
                                      const double* theta, double* values, double* diagonal))

#define DOPPEL_DECLARE_KERNEL(ret, name, params) ret name params;

namespace doppel {
namespace host {
DOPPEL_BATCHED_CG_KERNELS(DOPPEL_DECLARE_KERNEL)
}
namespace cuda {
DOPPEL_BATCHED_CG_KERNELS(DOPPEL_DECLARE_KERNEL)
}
}  // namespace doppel
