// Loop bodies of the batched conjugate-gradient kernels, shared by the host (reference)
// and CUDA implementations of kernels/solvers/batched_cg_kernels.hpp.
//
// Multi-vectors hold one column per scenario in the layout [row][scenario]: entry (i, s) is
// at i * ld + s. One read of a matrix entry then serves every scenario of the batch, and the
// scenarios of one row are contiguous (coalesced on the GPU, vectorizable on the host).
#pragma once

#include <cstddef>

#include "kernels/host_device.hpp"

namespace doppel {

// A(theta) = sum_k theta_k A_k + I_D on one CSR pattern (AffineOperator's layout after
// symmetric Dirichlet elimination: every term is zero on constrained rows and columns).
struct OperatorView {
  int rows = 0;
  int terms = 0;
  size_t nnz = 0;
  const int* row_ptr = nullptr;
  const int* col = nullptr;
  const double* values = nullptr;    // terms * nnz, term-major
  const double* diagonal = nullptr;  // terms * rows, term-major
  const int* constrained = nullptr;  // rows; 1 on Dirichlet rows
};

// The scenarios of one working block.
struct BatchView {
  int width = 0;                 // columns (scenarios) in the block
  const double* theta = nullptr; // width * terms, scenario-major
  const int* state = nullptr;    // width; kActive while the scenario still iterates
};

constexpr int kActive = 1;
constexpr int kConverged = 0;
constexpr int kBreakdown = -1;  // p^T A p <= 0 or a non-finite value: not SPD, or overflow

DOPPEL_HOST_DEVICE inline size_t at(int i, int s, int ld) {
  return static_cast<size_t>(i) * static_cast<size_t>(ld) + static_cast<size_t>(s);
}

// Row i of A(theta_s) x for scenario s.
DOPPEL_HOST_DEVICE inline double affine_row(const OperatorView& op, const double* theta_s,
                                            const double* x, int ld, int s, int i) {
  if (op.constrained[i]) return x[at(i, s, ld)];
  double sum = 0.0;
  const int end = op.row_ptr[i + 1];
  for (int j = op.row_ptr[i]; j < end; ++j) {
    double a = 0.0;
    for (int k = 0; k < op.terms; ++k)
      a += theta_s[k] * op.values[static_cast<size_t>(k) * op.nnz + static_cast<size_t>(j)];
    sum += a * x[at(op.col[j], s, ld)];
  }
  return sum;
}

// 1 / diag(A(theta_s))_i: the Jacobi preconditioner, formed on the fly from the terms'
// diagonals so it costs no memory per scenario.
DOPPEL_HOST_DEVICE inline double jacobi_inverse(const OperatorView& op, const double* theta_s, int i) {
  if (op.constrained[i]) return 1.0;
  double d = 0.0;
  for (int k = 0; k < op.terms; ++k)
    d += theta_s[k] * op.diagonal[static_cast<size_t>(k) * static_cast<size_t>(op.rows) + static_cast<size_t>(i)];
  return d != 0.0 ? 1.0 / d : 1.0;
}

// Partial sums a CG update adds to the per-scenario reductions.
struct CgPartial {
  double rz = 0.0;  // r . z
  double rr = 0.0;  // r . r
};

// x += alpha p; r -= alpha q; returns the new r's contributions to r.r and, with `jacobi`, to
// r.z for z = D^-1 r (another preconditioner forms z after the update).
DOPPEL_HOST_DEVICE inline CgPartial cg_update_solution_at(const OperatorView& op,
                                                          const double* theta_s, double alpha,
                                                          const double* p, const double* q,
                                                          double* x, double* r, size_t idx, int i,
                                                          bool jacobi) {
  x[idx] += alpha * p[idx];
  const double rn = r[idx] - alpha * q[idx];
  r[idx] = rn;
  CgPartial out;
  out.rz = jacobi ? rn * rn * jacobi_inverse(op, theta_s, i) : 0.0;
  out.rr = rn * rn;
  return out;
}

// Convergence and breakdown of one scenario once x and r were updated (rr = r.r, pq = p.A p
// complete): ends it when ||r|| <= tol ||b|| (converged) or p.A p <= 0 or a value is not finite
// (breakdown). Returns whether it still iterates. A preconditioner that is not Jacobi runs after
// this check, so a scenario that has just converged costs no preconditioner solve.
DOPPEL_HOST_DEVICE inline bool cg_check_at(int s, int iteration, double tol2, const double* pq,
                                           const double* bb, const double* rr, int* state,
                                           int* iterations) {
  if (state[s] != kActive) return false;
  const double r2 = rr[s], pqs = pq[s];
  iterations[s] = iteration;
  // NaN fails every comparison, so a non-finite value ends the scenario as a breakdown.
  if (!(pqs > 0.0) || !(r2 == r2) || r2 > 1e300) {
    state[s] = kBreakdown;
    return false;
  }
  if (r2 <= tol2 * bb[s]) {
    state[s] = kConverged;
    return false;
  }
  return true;
}

// Scalar recurrences of one scenario after the reductions of an iteration are complete:
// convergence and breakdown (cg_check_at; a no-op for a scenario it already ended), a
// non-finite r.z, beta = rz_new / rz. Resets the accumulators for the next iteration.
DOPPEL_HOST_DEVICE inline void cg_scalars_at(int s, int iteration, double tol2, double* pq,
                                             const double* bb, double* rr, double* rz,
                                             double* rz_new, double* beta, int* state,
                                             int* iterations) {
  beta[s] = 0.0;
  if (cg_check_at(s, iteration, tol2, pq, bb, rr, state, iterations)) {
    const double rzn = rz_new[s];
    if (!(rzn == rzn)) {
      state[s] = kBreakdown;
    } else {
      beta[s] = rz[s] > 0.0 ? rzn / rz[s] : 0.0;
      rz[s] = rzn;
    }
  }
  pq[s] = 0.0;
  rr[s] = 0.0;
  rz_new[s] = 0.0;
}

}  // namespace doppel

namespace doppel {

// After the initial residual: ||b|| = 0 falls back to an absolute tolerance; scenarios whose
// initial guess already satisfies the tolerance never iterate.
DOPPEL_HOST_DEVICE inline void cg_start_at(int s, double tol2, double* bb, const double* rr,
                                           int* state, int* iterations) {
  if (!(bb[s] > 0.0)) bb[s] = 1.0;
  iterations[s] = 0;
  state[s] = rr[s] <= tol2 * bb[s] ? kConverged : (rr[s] == rr[s] ? kActive : kBreakdown);
}

}  // namespace doppel
