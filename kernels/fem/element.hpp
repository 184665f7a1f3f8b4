// Lagrange P1/P2 shape functions on the reference simplices, in Gmsh node order.
//   triangle (0,0) (1,0) (0,1); P2 mid-edge nodes 3:(0,1) 4:(1,2) 5:(2,0)
//   tetrahedron (0,0,0) (1,0,0) (0,1,0) (0,0,1);
//     P2 mid-edge nodes 4:(0,1) 5:(1,2) 6:(2,0) 7:(3,0) 8:(3,2) 9:(3,1)
//   line [0,1]; P2 mid node 2
// All functions are DOPPEL_HOST_DEVICE and allocation-free: the CUDA backend uses them too.
#pragma once

#include <cmath>

#include "kernels/host_device.hpp"

namespace doppel {

enum class CellType : int { line2 = 0, line3, tri3, tri6, tet4, tet10 };

DOPPEL_HOST_DEVICE constexpr int cell_dim(CellType t) {
  return t == CellType::line2 || t == CellType::line3 ? 1
         : t == CellType::tri3 || t == CellType::tri6 ? 2
                                                      : 3;
}
DOPPEL_HOST_DEVICE constexpr int cell_nodes(CellType t) {
  return t == CellType::line2 ? 2 : t == CellType::line3 ? 3 : t == CellType::tri3 ? 3
         : t == CellType::tri6 ? 6 : t == CellType::tet4 ? 4 : 10;
}
DOPPEL_HOST_DEVICE constexpr int cell_order(CellType t) {
  return t == CellType::line2 || t == CellType::tri3 || t == CellType::tet4 ? 1 : 2;
}
DOPPEL_HOST_DEVICE constexpr int cell_vertices(CellType t) { return cell_dim(t) + 1; }
constexpr CellType simplex_type(int dim, int order) {
  return dim == 1 ? (order == 1 ? CellType::line2 : CellType::line3)
         : dim == 2 ? (order == 1 ? CellType::tri3 : CellType::tri6)
                    : (order == 1 ? CellType::tet4 : CellType::tet10);
}
// The facet (boundary element) type of a cell type.
constexpr CellType facet_type(CellType t) {
  return simplex_type(cell_dim(t) - 1, cell_order(t));
}
constexpr int kMaxNodes = 10;

// Pairs of vertices joined by the P2 mid-edge nodes, in node order (node = nv + edge index).
DOPPEL_HOST_DEVICE inline void edge_vertices(CellType t, int edge, int& a, int& b) {
  constexpr int tri[3][2] = {{0, 1}, {1, 2}, {2, 0}};
  constexpr int tet[6][2] = {{0, 1}, {1, 2}, {2, 0}, {3, 0}, {3, 2}, {3, 1}};
  if (cell_dim(t) == 1) { a = 0; b = 1; }
  else if (cell_dim(t) == 2) { a = tri[edge][0]; b = tri[edge][1]; }
  else { a = tet[edge][0]; b = tet[edge][1]; }
}
DOPPEL_HOST_DEVICE constexpr int num_edges(CellType t) {
  return cell_dim(t) == 1 ? 1 : cell_dim(t) == 2 ? 3 : 6;
}

// Barycentric coordinates of a reference point (lambda_0 = 1 - sum xi).
DOPPEL_HOST_DEVICE inline void barycentric(int dim, const double* xi, double* lam) {
  double s = 0.0;
  for (int d = 0; d < dim; ++d) { lam[d + 1] = xi[d]; s += xi[d]; }
  lam[0] = 1.0 - s;
}

// Shape function values N[i] and reference gradients dN[i*dim + d] at reference point xi.
// Either output may be null.
DOPPEL_HOST_DEVICE inline void shape_functions(CellType t, const double* xi, double* N, double* dN) {
  const int dim = cell_dim(t);
  const int nv = dim + 1;
  double lam[4];
  barycentric(dim, xi, lam);
  // d lambda_k / d xi_d: lambda_0 -> -1 for all d, lambda_{d+1} -> delta.
  auto dlam = [](int k, int d) -> double { return k == 0 ? -1.0 : (k - 1 == d ? 1.0 : 0.0); };
  if (cell_order(t) == 1) {
    for (int k = 0; k < nv; ++k) {
      if (N) N[k] = lam[k];
      if (dN) for (int d = 0; d < dim; ++d) dN[k * dim + d] = dlam(k, d);
    }
    return;
  }
  for (int k = 0; k < nv; ++k) {
    if (N) N[k] = lam[k] * (2.0 * lam[k] - 1.0);
    if (dN) for (int d = 0; d < dim; ++d) dN[k * dim + d] = (4.0 * lam[k] - 1.0) * dlam(k, d);
  }
  for (int e = 0; e < num_edges(t); ++e) {
    int a = 0, b = 0;
    edge_vertices(t, e, a, b);
    const int node = nv + e;
    if (N) N[node] = 4.0 * lam[a] * lam[b];
    if (dN)
      for (int d = 0; d < dim; ++d)
        dN[node * dim + d] = 4.0 * (dlam(a, d) * lam[b] + lam[a] * dlam(b, d));
  }
}

// Reference coordinates of node i.
DOPPEL_HOST_DEVICE inline void reference_node(CellType t, int i, double* xi) {
  const int dim = cell_dim(t);
  const int nv = dim + 1;
  auto vertex = [dim](int v, double* x) {
    for (int d = 0; d < dim; ++d) x[d] = (v > 0 && v - 1 == d) ? 1.0 : 0.0;
  };
  if (i < nv) { vertex(i, xi); return; }
  int a = 0, b = 0;
  edge_vertices(t, i - nv, a, b);
  double xa[3], xb[3];
  vertex(a, xa);
  vertex(b, xb);
  for (int d = 0; d < dim; ++d) xi[d] = 0.5 * (xa[d] + xb[d]);
}

// Isoparametric map at one point. x: node coordinates, 3 per node (z = 0 in 2D); sdim: the
// spatial dimension. For a cell (cell_dim == sdim) fills the physical gradients
// grad[i*sdim + a] and returns |det J|. For a facet (cell_dim == sdim - 1) returns the surface
// measure |dx/dxi| (a length or an area) and, when normal is given, the unit normal
// (orientation follows the node order; callers orient it outward).
struct PointMap {
  double N[kMaxNodes];
  double grad[kMaxNodes * 3];
  double x[3];
  double measure;
  double normal[3];
  double det;  // the signed Jacobian determinant (cells of the space's dimension; measure = |det|)
};

DOPPEL_HOST_DEVICE inline bool invert3(const double J[3][3], double inv[3][3], double& det) {
  det = J[0][0] * (J[1][1] * J[2][2] - J[1][2] * J[2][1]) -
        J[0][1] * (J[1][0] * J[2][2] - J[1][2] * J[2][0]) +
        J[0][2] * (J[1][0] * J[2][1] - J[1][1] * J[2][0]);
  if (det == 0.0) return false;
  const double r = 1.0 / det;
  inv[0][0] = (J[1][1] * J[2][2] - J[1][2] * J[2][1]) * r;
  inv[0][1] = (J[0][2] * J[2][1] - J[0][1] * J[2][2]) * r;
  inv[0][2] = (J[0][1] * J[1][2] - J[0][2] * J[1][1]) * r;
  inv[1][0] = (J[1][2] * J[2][0] - J[1][0] * J[2][2]) * r;
  inv[1][1] = (J[0][0] * J[2][2] - J[0][2] * J[2][0]) * r;
  inv[1][2] = (J[0][2] * J[1][0] - J[0][0] * J[1][2]) * r;
  inv[2][0] = (J[1][0] * J[2][1] - J[1][1] * J[2][0]) * r;
  inv[2][1] = (J[0][1] * J[2][0] - J[0][0] * J[2][1]) * r;
  inv[2][2] = (J[0][0] * J[1][1] - J[0][1] * J[1][0]) * r;
  return true;
}

// Returns false for a degenerate (zero-measure) element.
DOPPEL_HOST_DEVICE inline bool map_point(CellType t, int sdim, const double* X, const double* xi,
                                         PointMap& m) {
  const int dim = cell_dim(t);
  const int n = cell_nodes(t);
  double dN[kMaxNodes * 3];
  shape_functions(t, xi, m.N, dN);
  // J[a][d] = d x_a / d xi_d
  double J[3][3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
  m.x[0] = m.x[1] = m.x[2] = 0.0;
  for (int i = 0; i < n; ++i) {
    for (int a = 0; a < 3; ++a) {
      m.x[a] += m.N[i] * X[i * 3 + a];
      for (int d = 0; d < dim; ++d) J[a][d] += X[i * 3 + a] * dN[i * dim + d];
    }
  }
  m.normal[0] = m.normal[1] = m.normal[2] = 0.0;
  if (dim == sdim) {
    if (dim == 1) {
      m.measure = std::fabs(J[0][0]);
      m.det = J[0][0];
      if (m.measure == 0.0) return false;
      for (int i = 0; i < n; ++i) m.grad[i] = dN[i] / J[0][0];
      return true;
    }
    if (dim == 2) {
      const double det = J[0][0] * J[1][1] - J[0][1] * J[1][0];
      m.det = det;
      if (det == 0.0) return false;
      const double inv[2][2] = {{J[1][1] / det, -J[0][1] / det}, {-J[1][0] / det, J[0][0] / det}};
      for (int i = 0; i < n; ++i)
        for (int a = 0; a < 2; ++a)
          m.grad[i * 2 + a] = dN[i * 2 + 0] * inv[0][a] + dN[i * 2 + 1] * inv[1][a];
      m.measure = std::fabs(det);
      return true;
    }
    double inv[3][3], det = 0.0;
    const bool invertible = invert3(J, inv, det);
    m.det = det;
    if (!invertible) return false;
    for (int i = 0; i < n; ++i)
      for (int a = 0; a < 3; ++a)
        m.grad[i * 3 + a] = dN[i * 3 + 0] * inv[0][a] + dN[i * 3 + 1] * inv[1][a] +
                            dN[i * 3 + 2] * inv[2][a];
    m.measure = std::fabs(det);
    return true;
  }
  // Facet embedded in sdim = dim + 1.
  if (dim == 1) {
    const double tx = J[0][0], ty = J[1][0];
    m.measure = std::sqrt(tx * tx + ty * ty);
    if (m.measure == 0.0) return false;
    m.normal[0] = ty / m.measure;
    m.normal[1] = -tx / m.measure;
    return true;
  }
  const double cx = J[1][0] * J[2][1] - J[2][0] * J[1][1];
  const double cy = J[2][0] * J[0][1] - J[0][0] * J[2][1];
  const double cz = J[0][0] * J[1][1] - J[1][0] * J[0][1];
  m.measure = std::sqrt(cx * cx + cy * cy + cz * cz);
  if (m.measure == 0.0) return false;
  m.normal[0] = cx / m.measure;
  m.normal[1] = cy / m.measure;
  m.normal[2] = cz / m.measure;
  return true;
}

}  // namespace doppel
