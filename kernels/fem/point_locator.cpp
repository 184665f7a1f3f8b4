#include "kernels/fem/point_locator.hpp"

#include <algorithm>
#include <cmath>

namespace doppel {

double reference_coordinates(CellType t, int dim, const double* X, const double* x, double* xi) {
  // Affine start from the vertices, then Newton (exact in one step for straight cells).
  for (int d = 0; d < 3; ++d) xi[d] = 1.0 / (dim + 1);
  PointMap pm;
  double dN[kMaxNodes * 3];
  const int n = cell_nodes(t);
  for (int iter = 0; iter < 20; ++iter) {
    if (!map_point(t, dim, X, xi, pm)) return 1e300;
    double r[3] = {x[0] - pm.x[0], x[1] - pm.x[1], dim == 3 ? x[2] - pm.x[2] : 0.0};
    shape_functions(t, xi, nullptr, dN);
    double J[3][3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, dim == 2 ? 1.0 : 0.0}};
    for (int i = 0; i < n; ++i)
      for (int a = 0; a < dim; ++a)
        for (int d = 0; d < dim; ++d) J[a][d] += X[i * 3 + a] * dN[i * dim + d];
    double inv[3][3], det = 0;
    if (!invert3(J, inv, det)) return 1e300;
    double step = 0;
    for (int d = 0; d < dim; ++d) {
      double dx = 0;
      for (int a = 0; a < dim; ++a) dx += inv[d][a] * r[a];
      xi[d] += dx;
      step = std::max(step, std::fabs(dx));
    }
    if (step < 1e-14) break;
  }
  double lam[4];
  barycentric(dim, xi, lam);
  double viol = -1e300;
  for (int k = 0; k <= dim; ++k) viol = std::max(viol, -lam[k]);
  return viol;
}

PointLocator::PointLocator(const Mesh& mesh) : mesh_(mesh) {
  const auto box = mesh.bounding_box();
  double d2 = 0;
  for (int a = 0; a < mesh.dim; ++a) d2 += (box[3 + a] - box[a]) * (box[3 + a] - box[a]);
  diag_ = std::sqrt(d2);
  // About two cells per bucket.
  const double target = std::max(1.0, static_cast<double>(mesh.num_cells()) / 2.0);
  double volume = 1.0;
  for (int a = 0; a < mesh.dim; ++a) volume *= std::max(box[3 + a] - box[a], 1e-12 * diag_);
  const double h = std::pow(volume / target, 1.0 / mesh.dim);
  for (int a = 0; a < 3; ++a) {
    lo_[a] = box[a];
    if (a < mesh.dim) {
      dims_[a] = std::clamp(static_cast<int>(std::ceil((box[3 + a] - box[a]) / h)), 1, 2048);
      cell_size_[a] = std::max((box[3 + a] - box[a]) / dims_[a], 1e-300);
    } else {
      dims_[a] = 1;
      cell_size_[a] = 1.0;
    }
  }
  const size_t nb = static_cast<size_t>(dims_[0]) * dims_[1] * dims_[2];
  std::vector<std::array<int, 6>> ranges(mesh.num_cells());
  std::vector<int> count(nb + 1, 0);
  const double pad = 1e-6 * diag_;
  for (size_t c = 0; c < mesh.num_cells(); ++c) {
    double lo[3] = {1e300, 1e300, 1e300}, hi[3] = {-1e300, -1e300, -1e300};
    const int* v = mesh.cell(c);
    for (int i = 0; i < mesh.nodes_per_cell(); ++i)
      for (int a = 0; a < 3; ++a) {
        lo[a] = std::min(lo[a], mesh.coords[static_cast<size_t>(v[i]) * 3 + a]);
        hi[a] = std::max(hi[a], mesh.coords[static_cast<size_t>(v[i]) * 3 + a]);
      }
    auto& r = ranges[c];
    for (int a = 0; a < 3; ++a) {
      r[a] = std::clamp(static_cast<int>(std::floor((lo[a] - pad - lo_[a]) / cell_size_[a])), 0, dims_[a] - 1);
      r[3 + a] = std::clamp(static_cast<int>(std::floor((hi[a] + pad - lo_[a]) / cell_size_[a])), 0, dims_[a] - 1);
    }
    for (int k = r[2]; k <= r[5]; ++k)
      for (int j = r[1]; j <= r[4]; ++j)
        for (int i = r[0]; i <= r[3]; ++i) {
          const int ijk[3] = {i, j, k};
          ++count[bucket_of(ijk) + 1];
        }
  }
  for (size_t b = 0; b < nb; ++b) count[b + 1] += count[b];
  bucket_start_ = count;
  bucket_cells_.resize(static_cast<size_t>(count[nb]));
  std::vector<int> fill(count.begin(), count.end() - 1);
  for (size_t c = 0; c < mesh.num_cells(); ++c) {
    const auto& r = ranges[c];
    for (int k = r[2]; k <= r[5]; ++k)
      for (int j = r[1]; j <= r[4]; ++j)
        for (int i = r[0]; i <= r[3]; ++i) {
          const int ijk[3] = {i, j, k};
          bucket_cells_[static_cast<size_t>(fill[bucket_of(ijk)]++)] = static_cast<int>(c);
        }
  }
}

size_t PointLocator::bucket_of(const int* ijk) const {
  return (static_cast<size_t>(ijk[2]) * dims_[1] + ijk[1]) * dims_[0] + ijk[0];
}

std::optional<PointLocation> PointLocator::locate(const double* x, double rel_tol) const {
  const double tol = rel_tol * diag_;
  int ijk[3];
  for (int a = 0; a < 3; ++a) {
    const double p = a < mesh_.dim ? x[a] : 0.0;
    const double f = (p - lo_[a]) / cell_size_[a];
    if (f < -tol / cell_size_[a] - 1e-12 || f > dims_[a] + tol / cell_size_[a] + 1e-12) return std::nullopt;
    ijk[a] = std::clamp(static_cast<int>(std::floor(f)), 0, dims_[a] - 1);
  }
  const size_t b = bucket_of(ijk);
  double X[kMaxNodes * 3];
  PointLocation best;
  double best_dist = 1e300;
  for (int k = bucket_start_[b]; k < bucket_start_[b + 1]; ++k) {
    const int c = bucket_cells_[static_cast<size_t>(k)];
    mesh_.cell_coords(static_cast<size_t>(c), X);
    double xi[3];
    const double viol = reference_coordinates(mesh_.cell_type, mesh_.dim, X, x, xi);
    if (viol <= 1e-12) {
      PointLocation loc;
      loc.cell = c;
      for (int d = 0; d < 3; ++d) loc.xi[d] = xi[d];
      return loc;
    }
    // Geometric distance estimate: violation in reference units times the cell's size.
    double h = 0;
    for (int i = 1; i <= mesh_.dim; ++i) {
      double l2 = 0;
      for (int a = 0; a < 3; ++a) l2 += (X[i * 3 + a] - X[a]) * (X[i * 3 + a] - X[a]);
      h = std::max(h, std::sqrt(l2));
    }
    const double dist = viol * h;
    if (dist < best_dist) {
      best_dist = dist;
      best.cell = c;
      // Project onto the cell: clamp the barycentric coordinates and renormalize.
      double lam[4];
      barycentric(mesh_.dim, xi, lam);
      double s = 0;
      for (int i = 0; i <= mesh_.dim; ++i) { lam[i] = std::max(lam[i], 0.0); s += lam[i]; }
      for (int d = 0; d < mesh_.dim; ++d) best.xi[d] = lam[d + 1] / s;
    }
  }
  if (best.cell >= 0 && best_dist <= tol) return best;
  return std::nullopt;
}

}  // namespace doppel
