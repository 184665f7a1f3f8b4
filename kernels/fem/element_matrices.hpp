// Element matrices of the operator terms, as host-device functions: the host assembly
// (assembly.cpp) and the CUDA assembly (cuda/assembly_kernels.cu) both call these, so the
// element math has one definition.
//   stiffness:       int grad N_i . grad N_j
//   mass:            int N_i N_j            (also the boundary mass of convection, on facets)
//   elastic_lambda:  int div(v) div(u)      -> d_a N_i d_b N_j
//   elastic_mu:      int 2 eps(v) : eps(u)  -> delta_ab grad N_i . grad N_j + d_b N_i d_a N_j
// Vector dofs are ordered node-major (i * dim + a) within the element.
#pragma once

#include "kernels/fem/element.hpp"

namespace doppel {

enum class TermKind : int { stiffness = 0, mass = 1, elastic_lambda = 2, elastic_mu = 3 };

DOPPEL_HOST_DEVICE constexpr bool is_vector_term(TermKind k) {
  return k == TermKind::elastic_lambda || k == TermKind::elastic_mu;
}

// Dofs per element row: nodes, or nodes * sdim for vector terms.
DOPPEL_HOST_DEVICE inline int element_dofs(TermKind kind, CellType t, int sdim) {
  return cell_nodes(t) * (is_vector_term(kind) ? sdim : 1);
}

// local (element_dofs^2, row-major) = scale * sum_q w_q |J| integrand. `points` quadrature
// points with reference coordinates xi (cell_dim(t) each) and weights w. X: node coordinates,
// 3 per node. Returns false for a degenerate element.
DOPPEL_HOST_DEVICE inline bool element_matrix(TermKind kind, CellType t, int sdim, const double* X,
                                              int points, const double* xi, const double* w,
                                              double scale, double* local) {
  const int n = cell_nodes(t);
  const int bs = is_vector_term(kind) ? sdim : 1;
  const int nd = n * bs;
  for (int i = 0; i < nd * nd; ++i) local[i] = 0.0;
  PointMap pm;
  const int rdim = cell_dim(t);
  for (int q = 0; q < points; ++q) {
    if (!map_point(t, sdim, X, xi + q * rdim, pm)) return false;
    const double f = scale * w[q] * pm.measure;
    switch (kind) {
      case TermKind::stiffness:
        for (int i = 0; i < n; ++i)
          for (int j = 0; j < n; ++j) {
            double g = 0.0;
            for (int a = 0; a < sdim; ++a) g += pm.grad[i * sdim + a] * pm.grad[j * sdim + a];
            local[i * n + j] += f * g;
          }
        break;
      case TermKind::mass:
        for (int i = 0; i < n; ++i)
          for (int j = 0; j < n; ++j) local[i * n + j] += f * pm.N[i] * pm.N[j];
        break;
      case TermKind::elastic_lambda:
      case TermKind::elastic_mu:
        for (int i = 0; i < n; ++i)
          for (int a = 0; a < sdim; ++a)
            for (int j = 0; j < n; ++j)
              for (int b = 0; b < sdim; ++b) {
                const double* gi = pm.grad + i * sdim;
                const double* gj = pm.grad + j * sdim;
                double v;
                if (kind == TermKind::elastic_lambda) {
                  v = gi[a] * gj[b];
                } else {
                  double dot = 0.0;
                  if (a == b)
                    for (int d = 0; d < sdim; ++d) dot += gi[d] * gj[d];
                  v = dot + gi[b] * gj[a];
                }
                local[(i * sdim + a) * nd + j * sdim + b] += f * v;
              }
        break;
    }
  }
  return true;
}

// Position of (r, c) in a CSR pattern (columns sorted within rows), or -1.
DOPPEL_HOST_DEVICE inline long csr_find(const int* row_ptr, const int* col, int r, int c) {
  int lo = row_ptr[r], hi = row_ptr[r + 1];
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (col[mid] < c) lo = mid + 1;
    else hi = mid;
  }
  return (lo < row_ptr[r + 1] && col[lo] == c) ? lo : -1;
}

}  // namespace doppel
