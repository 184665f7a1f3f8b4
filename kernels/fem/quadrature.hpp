// Quadrature rules on the reference simplices (weights sum to the reference measure:
// 1 for [0,1], 1/2 for the triangle, 1/6 for the tetrahedron).
//   line: Gauss-Legendre, 1/2/3 points, exact to degree 1/3/5
//   triangle: centroid (1), Strang-Fix 3-point (2), Dunavant 6-point (4)
//   tetrahedron: centroid (1), 4-point (2), Keast 11-point (4; one negative weight)
#pragma once

#include "kernels/fem/element.hpp"

namespace doppel {

struct QuadratureRule {
  int points;
  int dim;
  const double* xi;  // points * dim
  const double* w;
};

// A rule on the reference cell of `t` exact for polynomials of degree `degree` (<= 4).
const QuadratureRule& quadrature(CellType t, int degree);

}  // namespace doppel
