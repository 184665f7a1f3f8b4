#include "kernels/fem/assembly.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/fem/element_matrices.hpp"
#include "kernels/fem/quadrature.hpp"
#include "spec/errors.hpp"

namespace doppel {
namespace {

// Calls body(cell, PointMap, weight) at every quadrature point of the cells of `region`
// (all cells when region < 0).
template <class Body>
void for_cell_points(const Mesh& m, int region, int degree, Body&& body) {
  const QuadratureRule& q = quadrature(m.cell_type, degree);
  double x[kMaxNodes * 3];
  PointMap pm;
  for (size_t c = 0; c < m.num_cells(); ++c) {
    if (region >= 0 && m.cell_region[c] != region) continue;
    m.cell_coords(c, x);
    for (int k = 0; k < q.points; ++k) {
      if (!map_point(m.cell_type, m.dim, x, q.xi + k * q.dim, pm))
        throw InvalidInput("mesh", "cell " + std::to_string(c) + " is degenerate");
      body(c, pm, q.w[k] * pm.measure);
    }
  }
}

// Same over the facets of `boundary`, with the normal oriented outward from the owning cell.
template <class Body>
void for_facet_points(const Mesh& m, int boundary, int degree, Body&& body) {
  const CellType ft = m.facet_cell_type();
  const QuadratureRule& q = quadrature(ft, degree);
  double x[kMaxNodes * 3];
  PointMap pm;
  for (size_t f = 0; f < m.num_facets(); ++f) {
    if (m.facet_boundary[f] != boundary) continue;
    m.facet_coords(f, x);
    // Outward: away from the centroid of the owning cell's vertices.
    double cc[3] = {0, 0, 0}, fc[3] = {0, 0, 0};
    const int* cv = m.cell(static_cast<size_t>(m.facet_cell[f]));
    for (int i = 0; i <= m.dim; ++i)
      for (int a = 0; a < 3; ++a) cc[a] += m.coords[static_cast<size_t>(cv[i]) * 3 + a] / (m.dim + 1);
    for (int i = 0; i < m.dim; ++i)
      for (int a = 0; a < 3; ++a) fc[a] += x[i * 3 + a] / m.dim;
    for (int k = 0; k < q.points; ++k) {
      if (!map_point(ft, m.dim, x, q.xi + k * q.dim, pm))
        throw InvalidInput("mesh", "boundary facet " + std::to_string(f) + " is degenerate");
      double dot = 0;
      for (int a = 0; a < 3; ++a) dot += pm.normal[a] * (fc[a] - cc[a]);
      if (dot < 0)
        for (double& v : pm.normal) v = -v;
      body(f, pm, q.w[k] * pm.measure);
    }
  }
}

void scatter(const CsrPattern& p, const int* rows, int nr, const int* cols, int nc,
             const double* local, double* values) {
  for (int i = 0; i < nr; ++i)
    for (int j = 0; j < nc; ++j) {
      const double v = local[i * nc + j];
      if (v == 0.0) continue;
      const long pos = p.find(rows[i], cols[j]);
      DOPPEL_ASSERT(pos >= 0);
      values[pos] += v;
    }
}

bool is_curved(const Mesh& m) {
  if (m.order() == 1) return false;
  // A P2 mesh is straight-sided when every mid-edge node is the midpoint of its edge.
  for (size_t c = 0; c < m.num_cells(); ++c) {
    const int* v = m.cell(c);
    for (int e = 0; e < num_edges(m.cell_type); ++e) {
      int a = 0, b = 0;
      edge_vertices(m.cell_type, e, a, b);
      const int mid = v[m.dim + 1 + e];
      double len2 = 0, off2 = 0;
      for (int d = 0; d < 3; ++d) {
        const double xa = m.coords[static_cast<size_t>(v[a]) * 3 + d];
        const double xb = m.coords[static_cast<size_t>(v[b]) * 3 + d];
        const double xm = m.coords[static_cast<size_t>(mid) * 3 + d];
        len2 += (xb - xa) * (xb - xa);
        off2 += (xm - 0.5 * (xa + xb)) * (xm - 0.5 * (xa + xb));
      }
      if (off2 > 1e-20 * len2) return true;
    }
  }
  return false;
}

}  // namespace

int quadrature_degree(const Mesh& m, int d) {
  // Cached per mesh object would be nicer; curvature detection is O(cells) and runs once per
  // assembled term, negligible next to the assembly itself.
  const int extra = is_curved(m) ? 2 : 0;
  return std::min(4, std::max(1, d + extra));
}

void add_term(const Mesh& m, const CsrPattern& p, TermKind kind, bool on_facets, int index,
              double scale, double* values) {
  const CellType t = on_facets ? m.facet_cell_type() : m.cell_type;
  const int d = kind == TermKind::mass ? 2 * m.order() : 2 * (m.order() - 1);
  const QuadratureRule& q = quadrature(t, quadrature_degree(m, d));
  const int n = cell_nodes(t);
  const int bs = is_vector_term(kind) ? m.dim : 1;
  const int nd = n * bs;
  std::vector<double> local(static_cast<size_t>(nd * nd));
  std::vector<int> dofs(static_cast<size_t>(nd));
  double x[kMaxNodes * 3];
  const size_t count = on_facets ? m.num_facets() : m.num_cells();
  for (size_t e = 0; e < count; ++e) {
    if (on_facets ? m.facet_boundary[e] != index : (index >= 0 && m.cell_region[e] != index)) continue;
    const int* nodes = on_facets ? m.facet(e) : m.cell(e);
    if (on_facets) m.facet_coords(e, x);
    else m.cell_coords(e, x);
    if (!element_matrix(kind, t, m.dim, x, q.points, q.xi, q.w, scale, local.data()))
      throw InvalidInput("mesh", (on_facets ? "boundary facet " : "cell ") + std::to_string(e) + " is degenerate");
    for (int i = 0; i < n; ++i)
      for (int a = 0; a < bs; ++a) dofs[static_cast<size_t>(i * bs + a)] = nodes[i] * bs + a;
    scatter(p, dofs.data(), nd, dofs.data(), nd, local.data(), values);
  }
}

void add_stiffness(const Mesh& m, const CsrPattern& p, int region, double scale, double* values) {
  add_term(m, p, TermKind::stiffness, false, region, scale, values);
}

void add_mass(const Mesh& m, const CsrPattern& p, int region, double scale, double* values) {
  add_term(m, p, TermKind::mass, false, region, scale, values);
}

void add_boundary_mass(const Mesh& m, const CsrPattern& p, int boundary, double scale,
                       double* values) {
  add_term(m, p, TermKind::mass, true, boundary, scale, values);
}

void add_weighted_boundary_mass(const Mesh& m, const CsrPattern& p, int boundary, const PointFunction& wf,
                                double* values) {
  const int n = m.nodes_per_facet();
  std::vector<double> local(static_cast<size_t>(n * n));
  size_t current = static_cast<size_t>(-1);
  auto flush = [&](size_t f) {
    if (f != static_cast<size_t>(-1)) scatter(p, m.facet(f), n, m.facet(f), n, local.data(), values);
    std::fill(local.begin(), local.end(), 0.0);
  };
  for_facet_points(m, boundary, 4, [&](size_t f, const PointMap& pm, double w) {
    if (f != current) {
      flush(current);
      current = f;
    }
    const double v = wf(pm.x) * w;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) local[static_cast<size_t>(i * n + j)] += v * pm.N[i] * pm.N[j];
  });
  flush(current);
}

void add_region_load(const Mesh& m, int region, const PointFunction& f, double* b) {
  const int n = m.nodes_per_cell();
  for_cell_points(m, region, 4, [&](size_t c, const PointMap& pm, double w) {
    const double v = f(pm.x) * w;
    const int* nodes = m.cell(c);
    for (int i = 0; i < n; ++i) b[nodes[i]] += v * pm.N[i];
  });
}

void add_boundary_load(const Mesh& m, int boundary, const BoundaryFunction& g, double* b) {
  const int n = m.nodes_per_facet();
  for_facet_points(m, boundary, 4, [&](size_t f, const PointMap& pm, double w) {
    const double v = g(pm.x, pm.normal) * w;
    const int* nodes = m.facet(f);
    for (int i = 0; i < n; ++i) b[nodes[i]] += v * pm.N[i];
  });
}

void add_elastic_lambda(const Mesh& m, const CsrPattern& p, int region, double scale,
                        double* values) {
  add_term(m, p, TermKind::elastic_lambda, false, region, scale, values);
}

void add_elastic_mu(const Mesh& m, const CsrPattern& p, int region, double scale, double* values) {
  add_term(m, p, TermKind::elastic_mu, false, region, scale, values);
}

void add_thermal_coupling(const Mesh& m, const CsrPattern& p, int region, double scale,
                          double* values) {
  const int n = m.nodes_per_cell();
  const int dim = m.dim;
  std::vector<double> local(static_cast<size_t>(n * dim * n));
  std::vector<int> rows(static_cast<size_t>(n * dim));
  size_t current = static_cast<size_t>(-1);
  auto flush = [&](size_t c) {
    if (c != static_cast<size_t>(-1)) {
      const int* v = m.cell(c);
      for (int i = 0; i < n; ++i)
        for (int a = 0; a < dim; ++a) rows[static_cast<size_t>(i * dim + a)] = v[i] * dim + a;
      scatter(p, rows.data(), n * dim, v, n, local.data(), values);
    }
    std::fill(local.begin(), local.end(), 0.0);
  };
  for_cell_points(m, region, quadrature_degree(m, 2 * m.order() - 1),
                  [&](size_t c, const PointMap& pm, double w) {
                    if (c != current) { flush(current); current = c; }
                    for (int i = 0; i < n; ++i)
                      for (int a = 0; a < dim; ++a)
                        for (int j = 0; j < n; ++j)
                          local[static_cast<size_t>((i * dim + a) * n + j)] +=
                              scale * w * pm.grad[i * dim + a] * pm.N[j];
                  });
  flush(current);
}

void add_body_force(const Mesh& m, int region, int component, const PointFunction& f, double* b) {
  const int n = m.nodes_per_cell();
  for_cell_points(m, region, 4, [&](size_t c, const PointMap& pm, double w) {
    const double v = f(pm.x) * w;
    const int* nodes = m.cell(c);
    for (int i = 0; i < n; ++i) b[nodes[i] * m.dim + component] += v * pm.N[i];
  });
}

void add_boundary_vector_load(const Mesh& m, int boundary, int component,
                              const BoundaryFunction& g, double* b) {
  const int n = m.nodes_per_facet();
  for_facet_points(m, boundary, 4, [&](size_t f, const PointMap& pm, double w) {
    const double v = g(pm.x, pm.normal) * w;
    const int* nodes = m.facet(f);
    for (int i = 0; i < n; ++i) b[nodes[i] * m.dim + component] += v * pm.N[i];
  });
}

std::vector<double> node_weights(const Mesh& m, int region) {
  std::vector<double> w(m.num_nodes(), 0.0);
  add_region_load(m, region, [](const double*) { return 1.0; }, w.data());
  return w;
}

double region_measure(const Mesh& m, int region) {
  double s = 0;
  for_cell_points(m, region, 1, [&](size_t, const PointMap&, double w) { s += w; });
  return s;
}

}  // namespace doppel
