// Finds the cell containing a point: a uniform grid of cell bounding boxes narrows the search
// to a few candidates; each candidate inverts its (isoparametric) map by Newton's method.
// Points on the boundary or on an edge are found within a small geometric tolerance.
#pragma once

#include <array>
#include <optional>
#include <vector>

#include "kernels/fem/mesh.hpp"

namespace doppel {

struct PointLocation {
  int cell = -1;
  double xi[3] = {0, 0, 0};  // reference coordinates inside the cell
};

class PointLocator {
 public:
  explicit PointLocator(const Mesh& mesh);
  // Tolerance: relative to the mesh's bounding-box diagonal.
  std::optional<PointLocation> locate(const double* x, double rel_tol = 1e-6) const;

 private:
  const Mesh& mesh_;
  std::array<double, 3> lo_{}, cell_size_{};
  std::array<int, 3> dims_{1, 1, 1};
  double diag_ = 1.0;
  std::vector<int> bucket_start_;
  std::vector<int> bucket_cells_;
  size_t bucket_of(const int* ijk) const;
};

// Reference coordinates of x in a cell (Newton on the isoparametric map). Returns the
// largest barycentric violation (<= 0 inside).
double reference_coordinates(CellType t, int dim, const double* X, const double* x, double* xi);

}  // namespace doppel
