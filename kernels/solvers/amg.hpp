// Smoothed-aggregation algebraic multigrid (Vanek, Mandel and Brezina, Computing 56, 1996) for
// symmetric positive definite scalar operators, as a preconditioner of (batched) CG.
//
// Setup, once per operator:
//   - strength of connection |a_ij| >= eps sqrt(a_ii a_jj) (eps halved on each coarser level);
//   - greedy aggregation of strongly connected nodes (the three passes of Vanek et al.); nodes
//     without strong neighbours (Dirichlet rows, which carry 1 on the diagonal) stay out of the
//     coarse space: the smoother solves them exactly;
//   - tentative prolongator: the constant on each aggregate (the near null space of a scalar
//     diffusion operator), smoothed by one damped-Jacobi step, omega = 4 / (3 rho(D^-1 A));
//   - Galerkin coarse operators P^T A P, down to `coarse_size` rows, factored there (sparse
//     LDL^T).
// Application: one V-cycle with Chebyshev smoothing (polynomial in D^-1 A on
// [rho / smoother_range, 1.1 rho], the same polynomial before and after the coarse
// correction), so the preconditioner is symmetric and fixed: plain CG may use it. Several
// right-hand sides are cycled together, each sparse product reading the level's matrix once.
#pragma once

#include <memory>
#include <vector>

#include "kernels/fem/sparse.hpp"

namespace doppel {

struct AmgOptions {
  double strength = 0.08;      // eps of the strength of connection on the finest level
  int coarse_size = 500;       // rows factored directly on the coarsest level
  int max_levels = 25;
  int smoother_degree = 2;     // Chebyshev degree of each pre- and post-smoothing
  double smoother_range = 30;  // the smoothed part of the spectrum: [rho / range, 1.1 rho]
};

class Amg {
 public:
  // The operator's CSR arrays (symmetric, positive diagonal).
  Amg(const CsrPattern& pattern, const double* values, AmgOptions options = {});
  ~Amg();
  Amg(const Amg&) = delete;
  Amg& operator=(const Amg&) = delete;

  // Z = M^-1 R for m right-hand sides: one V-cycle from a zero guess. R and Z are n x m,
  // column-major (leading dimension n); they may not alias. Calls from several threads
  // take turns.
  void apply(const double* R, double* Z, int m) const;

  int size() const;
  int levels() const;
  // Rows of each level, finest first.
  std::vector<int> level_sizes() const;
  // Nonzeros of all level operators over those of the finest (memory and work per cycle).
  double operator_complexity() const;
  // Bytes of the hierarchy's matrices (operators, prolongations, restrictions).
  size_t bytes() const;

 private:
  struct Level;
  struct Coarse;
  struct Work;  // the cycle's blocks, reused (apply() holds its lock)
  std::vector<std::unique_ptr<Level>> levels_;
  std::unique_ptr<Coarse> coarse_;
  std::unique_ptr<Work> work_;
  AmgOptions options_;
};

}  // namespace doppel
