#include "kernels/fem/mesh.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <unordered_map>

#include "kernels/fem/quadrature.hpp"
#include "spec/errors.hpp"

namespace doppel {

int Mesh::region_index(const std::string& name) const {
  for (size_t i = 0; i < region_names.size(); ++i)
    if (region_names[i] == name) return static_cast<int>(i);
  return -1;
}

int Mesh::boundary_index(const std::string& name) const {
  for (size_t i = 0; i < boundary_names.size(); ++i)
    if (boundary_names[i] == name) return static_cast<int>(i);
  return -1;
}

void Mesh::cell_coords(size_t c, double* x) const {
  const int* n = cell(c);
  for (int i = 0; i < nodes_per_cell(); ++i)
    for (int a = 0; a < 3; ++a) x[i * 3 + a] = coords[static_cast<size_t>(n[i]) * 3 + a];
}

void Mesh::facet_coords(size_t f, double* x) const {
  const int* n = facet(f);
  for (int i = 0; i < nodes_per_facet(); ++i)
    for (int a = 0; a < 3; ++a) x[i * 3 + a] = coords[static_cast<size_t>(n[i]) * 3 + a];
}

std::array<double, 6> Mesh::bounding_box() const {
  std::array<double, 6> b{1e300, 1e300, 1e300, -1e300, -1e300, -1e300};
  for (size_t i = 0; i < num_nodes(); ++i)
    for (int a = 0; a < 3; ++a) {
      b[a] = std::min(b[a], coords[i * 3 + a]);
      b[3 + a] = std::max(b[3 + a], coords[i * 3 + a]);
    }
  return b;
}

Mesh generate_rectangle(double lx, double ly, int nx, int ny, int order, double x0, double y0) {
  Mesh m;
  m.dim = 2;
  m.cell_type = CellType::tri3;
  auto id = [nx](int i, int j) { return j * (nx + 1) + i; };
  for (int j = 0; j <= ny; ++j)
    for (int i = 0; i <= nx; ++i) {
      m.coords.push_back(x0 + lx * i / nx);
      m.coords.push_back(y0 + ly * j / ny);
      m.coords.push_back(0.0);
    }
  m.region_names = {"domain"};
  for (int j = 0; j < ny; ++j)
    for (int i = 0; i < nx; ++i) {
      const int a = id(i, j), b = id(i + 1, j), c = id(i + 1, j + 1), d = id(i, j + 1);
      for (int v : {a, b, c}) m.cells.push_back(v);
      for (int v : {a, c, d}) m.cells.push_back(v);
      m.cell_region.push_back(0);
      m.cell_region.push_back(0);
    }
  m.boundary_names = {"xmin", "xmax", "ymin", "ymax"};
  auto facet = [&](int a, int b, int boundary) {
    m.facets.push_back(a);
    m.facets.push_back(b);
    m.facet_boundary.push_back(boundary);
  };
  for (int j = 0; j < ny; ++j) {
    facet(id(0, j + 1), id(0, j), 0);
    facet(id(nx, j), id(nx, j + 1), 1);
  }
  for (int i = 0; i < nx; ++i) {
    facet(id(i, 0), id(i + 1, 0), 2);
    facet(id(i + 1, ny), id(i, ny), 3);
  }
  attach_facets(m, "mesh");
  return order == 2 ? elevate_to_p2(m) : m;
}

Mesh generate_box(double lx, double ly, double lz, int nx, int ny, int nz, int order, double x0,
                  double y0, double z0) {
  Mesh m;
  m.dim = 3;
  m.cell_type = CellType::tet4;
  auto id = [nx, ny](int i, int j, int k) { return (k * (ny + 1) + j) * (nx + 1) + i; };
  for (int k = 0; k <= nz; ++k)
    for (int j = 0; j <= ny; ++j)
      for (int i = 0; i <= nx; ++i) {
        m.coords.push_back(x0 + lx * i / nx);
        m.coords.push_back(y0 + ly * j / ny);
        m.coords.push_back(z0 + lz * k / nz);
      }
  m.region_names = {"domain"};
  // Kuhn subdivision: 6 tetrahedra along the diagonal 000 -> 111, one per axis permutation.
  const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  for (int k = 0; k < nz; ++k)
    for (int j = 0; j < ny; ++j)
      for (int i = 0; i < nx; ++i)
        for (const auto& p : perms) {
          int c[3] = {0, 0, 0};
          m.cells.push_back(id(i, j, k));
          for (int s = 0; s < 3; ++s) {
            c[p[s]] = 1;
            m.cells.push_back(id(i + c[0], j + c[1], k + c[2]));
          }
          m.cell_region.push_back(0);
        }
  m.boundary_names = {"xmin", "xmax", "ymin", "ymax", "zmin", "zmax"};
  // Each boundary quad splits along its diagonal from the low to the high corner, matching
  // the Kuhn tetrahedra faces.
  auto quad = [&](int a, int b, int c, int d, int boundary) {  // a low corner, c high corner
    for (int v : {a, b, c}) m.facets.push_back(v);
    for (int v : {a, c, d}) m.facets.push_back(v);
    m.facet_boundary.push_back(boundary);
    m.facet_boundary.push_back(boundary);
  };
  for (int k = 0; k < nz; ++k)
    for (int j = 0; j < ny; ++j) {
      quad(id(0, j, k), id(0, j + 1, k), id(0, j + 1, k + 1), id(0, j, k + 1), 0);
      quad(id(nx, j, k), id(nx, j + 1, k), id(nx, j + 1, k + 1), id(nx, j, k + 1), 1);
    }
  for (int k = 0; k < nz; ++k)
    for (int i = 0; i < nx; ++i) {
      quad(id(i, 0, k), id(i + 1, 0, k), id(i + 1, 0, k + 1), id(i, 0, k + 1), 2);
      quad(id(i, ny, k), id(i + 1, ny, k), id(i + 1, ny, k + 1), id(i, ny, k + 1), 3);
    }
  for (int j = 0; j < ny; ++j)
    for (int i = 0; i < nx; ++i) {
      quad(id(i, j, 0), id(i + 1, j, 0), id(i + 1, j + 1, 0), id(i, j + 1, 0), 4);
      quad(id(i, j, nz), id(i + 1, j, nz), id(i + 1, j + 1, nz), id(i, j + 1, nz), 5);
    }
  attach_facets(m, "mesh");
  return order == 2 ? elevate_to_p2(m) : m;
}

Mesh elevate_to_p2(const Mesh& p1) {
  DOPPEL_ASSERT(p1.order() == 1);
  Mesh m = p1;
  m.cell_type = simplex_type(p1.dim, 2);
  std::map<std::pair<int, int>, int> edge_node;
  auto mid = [&](int a, int b) {
    const auto key = std::minmax(a, b);
    auto it = edge_node.find(key);
    if (it != edge_node.end()) return it->second;
    const int n = static_cast<int>(m.coords.size() / 3);
    for (int d = 0; d < 3; ++d)
      m.coords.push_back(0.5 * (p1.coords[static_cast<size_t>(a) * 3 + d] +
                                p1.coords[static_cast<size_t>(b) * 3 + d]));
    edge_node.emplace(key, n);
    return n;
  };
  auto elevate = [&](CellType t1, const std::vector<int>& conn, std::vector<int>& out) {
    const CellType t2 = simplex_type(cell_dim(t1), 2);
    const int n1 = cell_nodes(t1);
    out.clear();
    for (size_t c = 0; c < conn.size() / static_cast<size_t>(n1); ++c) {
      const int* v = &conn[c * static_cast<size_t>(n1)];
      for (int i = 0; i < n1; ++i) out.push_back(v[i]);
      for (int e = 0; e < num_edges(t2); ++e) {
        int a = 0, b = 0;
        edge_vertices(t2, e, a, b);
        out.push_back(mid(v[a], v[b]));
      }
    }
  };
  elevate(p1.cell_type, p1.cells, m.cells);
  elevate(p1.facet_cell_type(), p1.facets, m.facets);
  return m;
}

namespace {
struct FaceKey {
  std::array<int, 3> v;
  bool operator==(const FaceKey& o) const { return v == o.v; }
};
struct FaceKeyHash {
  size_t operator()(const FaceKey& k) const {
    return (static_cast<size_t>(k.v[0]) * 73856093u) ^ (static_cast<size_t>(k.v[1]) * 19349663u) ^
           (static_cast<size_t>(k.v[2]) * 83492791u);
  }
};
FaceKey make_key(const int* v, int n) {
  FaceKey k{{-1, -1, -1}};
  for (int i = 0; i < n; ++i) k.v[static_cast<size_t>(i)] = v[i];
  std::sort(k.v.begin(), k.v.begin() + n);
  return k;
}
}  // namespace

void attach_facets(Mesh& m, const std::string& path) {
  const int nvf = m.dim;  // vertices per facet
  // The boundary facets are few next to the cells' faces: hash them, then scan the faces of
  // every cell in order (a facet belongs to the first cell that has it).
  const size_t nf = m.num_facets();
  std::unordered_map<FaceKey, int, FaceKeyHash> first;  // key -> first facet with it
  std::vector<int> next(nf, -1);                        // further facets with the same key
  first.reserve(nf);
  for (size_t f = nf; f-- > 0;) {
    auto [it, inserted] = first.emplace(make_key(m.facet(f), nvf), static_cast<int>(f));
    if (!inserted) {
      next[f] = it->second;
      it->second = static_cast<int>(f);
    }
  }
  m.facet_cell.assign(nf, -1);
  size_t found = 0;
  for (size_t c = 0; c < m.num_cells() && found < nf; ++c) {
    const int* v = m.cell(c);
    for (int skip = 0; skip <= m.dim; ++skip) {
      int f[3], k = 0;
      for (int i = 0; i <= m.dim; ++i)
        if (i != skip) f[k++] = v[i];
      auto it = first.find(make_key(f, nvf));
      if (it == first.end()) continue;
      for (int g = it->second; g >= 0; g = next[static_cast<size_t>(g)])
        if (m.facet_cell[static_cast<size_t>(g)] < 0) {
          m.facet_cell[static_cast<size_t>(g)] = static_cast<int>(c);
          ++found;
        }
    }
  }
  for (size_t f = 0; f < nf; ++f)
    DOPPEL_VERIFY(m.facet_cell[f] >= 0, path,
                  "boundary facet " + std::to_string(f) + " of boundary '" +
                      m.boundary_names[static_cast<size_t>(m.facet_boundary[f])] +
                      "' is not a face of any cell");
}

void validate_mesh(const Mesh& m, const std::string& path) {
  DOPPEL_VERIFY(m.num_cells() > 0, path, "the mesh has no cells");
  DOPPEL_VERIFY(m.num_nodes() > 0, path, "the mesh has no nodes");
  for (int v : m.cells)
    DOPPEL_VERIFY(v >= 0 && static_cast<size_t>(v) < m.num_nodes(), path,
                  "a cell refers to a node that does not exist");
  for (size_t i = 0; i < m.coords.size(); ++i)
    DOPPEL_VERIFY(std::isfinite(m.coords[i]) && std::fabs(m.coords[i]) <= 1e12, path,
                  "node " + std::to_string(i / 3) + " has a coordinate that is not finite or lies beyond 1e12");
  const auto box = m.bounding_box();
  double diag2 = 0;
  for (int d = 0; d < 3; ++d) diag2 += (box[3 + d] - box[d]) * (box[3 + d] - box[d]);
  const double diag = std::sqrt(diag2);
  DOPPEL_VERIFY(diag > 0, path, "every node lies at one point");
  // Every cell's map at the points the assembly integrates at (degree 2 x order) and at its
  // vertices: not zero, and one sign throughout. A tangled P2 cell folds over itself: its
  // Jacobian changes sign inside though it is positive at the centroid, and its integrals are
  // silently wrong.
  const int dim = cell_dim(m.cell_type);
  const QuadratureRule& rule = quadrature(m.cell_type, std::min(4, 2 * m.order()));
  std::vector<double> points(rule.xi, rule.xi + rule.points * rule.dim);
  for (int v = 0; v <= dim; ++v)
    for (int d = 0; d < dim; ++d) points.push_back(v == d + 1 ? 1.0 : 0.0);
  const size_t npoints = points.size() / static_cast<size_t>(dim);
  double x[kMaxNodes * 3];
  PointMap pm;
  for (size_t c = 0; c < m.num_cells(); ++c) {
    m.cell_coords(c, x);
    // The cell's own size: its longest vertex-to-vertex distance, to the dimension's power.
    double edge2 = 0;
    for (int a = 0; a <= dim; ++a)
      for (int b = a + 1; b <= dim; ++b) {
        double d2 = 0;
        for (int k = 0; k < 3; ++k) d2 += (x[3 * a + k] - x[3 * b + k]) * (x[3 * a + k] - x[3 * b + k]);
        edge2 = std::max(edge2, d2);
      }
    const double scale = std::pow(std::sqrt(edge2), dim);
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (size_t q = 0; q < npoints; ++q) {
      pm.det = 0;
      map_point(m.cell_type, m.dim, x, &points[q * static_cast<size_t>(dim)], pm);
      DOPPEL_VERIFY(std::isfinite(pm.det), path, "cell " + std::to_string(c) + "'s element map is not finite");
      lo = std::min(lo, pm.det);
      hi = std::max(hi, pm.det);
    }
    DOPPEL_VERIFY(std::max(std::fabs(lo), std::fabs(hi)) > 1e-14 * scale, path,
                  "cell " + std::to_string(c) + " is degenerate (zero area or volume)");
    DOPPEL_VERIFY(lo * hi > 0 && std::min(std::fabs(lo), std::fabs(hi)) > 1e-10 * std::max(std::fabs(lo), std::fabs(hi)), path,
                  "cell " + std::to_string(c) + " is tangled: its Jacobian " +
                      (lo * hi <= 0 ? std::string("changes sign inside it") : std::string("almost vanishes at a point")) +
                      " (a curved cell folded over itself, or mid-edge nodes out of place)");
  }
  // The same cell twice (its nodes as a set): its stiffness would be counted twice.
  const int nv = dim + 1;
  std::map<std::vector<int>, size_t> seen;
  for (size_t c = 0; c < m.num_cells(); ++c) {
    std::vector<int> key(m.cell(c), m.cell(c) + nv);
    std::sort(key.begin(), key.end());
    const auto [it, fresh] = seen.emplace(std::move(key), c);
    DOPPEL_VERIFY(fresh, path, "cells " + std::to_string(it->second) + " and " + std::to_string(c) + " have the same nodes (a duplicated cell)");
  }
  // Two nodes at one point: the cells on either side are not connected (a crack nobody meant).
  // A hash grid of cells of the tolerance's size; each node is compared with the nodes of the
  // 27 neighbouring grid cells (linear in the nodes, whatever the mesh's structure).
  const double tol = 1e-10 * diag;
  auto key = [&](long i, long j, long k) {
    return (static_cast<uint64_t>(i) * 73856093u) ^ (static_cast<uint64_t>(j) * 19349663u) ^ (static_cast<uint64_t>(k) * 83492791u);
  };
  auto cell_of = [&](size_t n, int d) { return static_cast<long>(std::floor((m.coords[3 * n + d] - box[d]) / tol)); };
  std::unordered_multimap<uint64_t, size_t> grid;
  grid.reserve(m.num_nodes());
  for (size_t n = 0; n < m.num_nodes(); ++n) {
    const long ci = cell_of(n, 0), cj = cell_of(n, 1), ck = cell_of(n, 2);
    for (long di = -1; di <= 1; ++di)
      for (long dj = -1; dj <= 1; ++dj)
        for (long dk = -1; dk <= 1; ++dk) {
          const auto range = grid.equal_range(key(ci + di, cj + dj, ck + dk));
          for (auto it = range.first; it != range.second; ++it) {
            const size_t o = it->second;
            double d2 = 0;
            for (int d = 0; d < 3; ++d) d2 += (m.coords[3 * n + d] - m.coords[3 * o + d]) * (m.coords[3 * n + d] - m.coords[3 * o + d]);
            DOPPEL_VERIFY(std::sqrt(d2) > tol, path,
                          "nodes " + std::to_string(std::min(n, o)) + " and " + std::to_string(std::max(n, o)) +
                              " lie at one point: the cells on either side are not connected (merge the duplicate nodes)");
          }
        }
    grid.emplace(key(ci, cj, ck), n);
  }
}

std::vector<size_t> mesh_parts(const Mesh& m) {
  std::vector<size_t> parent(m.num_nodes());
  for (size_t i = 0; i < parent.size(); ++i) parent[i] = i;
  auto find = [&](size_t i) {
    while (parent[i] != i) i = parent[i] = parent[parent[i]];
    return i;
  };
  for (size_t c = 0; c < m.num_cells(); ++c) {
    const int* n = m.cell(c);
    for (int k = 1; k < m.nodes_per_cell(); ++k) {
      const size_t a = find(static_cast<size_t>(n[0])), b = find(static_cast<size_t>(n[k]));
      if (a != b) parent[std::max(a, b)] = std::min(a, b);
    }
  }
  std::vector<size_t> first;
  std::vector<char> listed(m.num_nodes(), 0);
  for (size_t c = 0; c < m.num_cells(); ++c) {
    const size_t r = find(static_cast<size_t>(m.cell(c)[0]));
    if (!listed[r]) {
      listed[r] = 1;
      first.push_back(c);
    }
  }
  return first;
}

}  // namespace doppel
