#include "kernels/fem/quadrature.hpp"

#include <cmath>

#include "spec/errors.hpp"

namespace doppel {
namespace {

// Line [0,1]
const double kL1x[] = {0.5};
const double kL1w[] = {1.0};
const double kL2x[] = {0.5 - 0.28867513459481287, 0.5 + 0.28867513459481287};
const double kL2w[] = {0.5, 0.5};
const double kL3x[] = {0.5 - 0.38729833462074170, 0.5, 0.5 + 0.38729833462074170};
const double kL3w[] = {5.0 / 18.0, 8.0 / 18.0, 5.0 / 18.0};

// Triangle
const double kT1x[] = {1.0 / 3.0, 1.0 / 3.0};
const double kT1w[] = {0.5};
const double kT3x[] = {1.0 / 6.0, 1.0 / 6.0, 2.0 / 3.0, 1.0 / 6.0, 1.0 / 6.0, 2.0 / 3.0};
const double kT3w[] = {1.0 / 6.0, 1.0 / 6.0, 1.0 / 6.0};
// Dunavant degree 4: orbits (a, a, 1-2a).
constexpr double kDa = 0.445948490915965, kDb = 1.0 - 2.0 * kDa;
constexpr double kDc = 0.091576213509771, kDd = 1.0 - 2.0 * kDc;
const double kT6x[] = {kDa, kDa, kDb, kDa, kDa, kDb, kDc, kDc, kDd, kDc, kDc, kDd};
constexpr double kDw1 = 0.5 * 0.223381589678011, kDw2 = 0.5 * 0.109951743655322;
const double kT6w[] = {kDw1, kDw1, kDw1, kDw2, kDw2, kDw2};

// Tetrahedron
const double kK1x[] = {0.25, 0.25, 0.25};
const double kK1w[] = {1.0 / 6.0};
constexpr double kTa = 0.1381966011250105, kTb = 0.5854101966249685;
const double kK4x[] = {kTa, kTa, kTa, kTb, kTa, kTa, kTa, kTb, kTa, kTa, kTa, kTb};
const double kK4w[] = {1.0 / 24.0, 1.0 / 24.0, 1.0 / 24.0, 1.0 / 24.0};
// Keast (1986) rule 6, degree 4.
constexpr double kKe1 = 1.0 / 14.0, kKe2 = 11.0 / 14.0;
constexpr double kKs = 0.59761430466719681;  // sqrt(5/14)
constexpr double kKp = (1.0 + kKs) / 4.0, kKq = (1.0 - kKs) / 4.0;
const double kK11x[] = {
    0.25, 0.25, 0.25,
    kKe1, kKe1, kKe1, kKe2, kKe1, kKe1, kKe1, kKe2, kKe1, kKe1, kKe1, kKe2,
    kKp, kKp, kKq, kKp, kKq, kKp, kKq, kKp, kKp, kKq, kKq, kKp, kKq, kKp, kKq, kKp, kKq, kKq};
constexpr double kKw0 = -74.0 / 5625.0, kKw1 = 343.0 / 45000.0, kKw2 = 56.0 / 2250.0;
const double kK11w[] = {kKw0, kKw1, kKw1, kKw1, kKw1, kKw2, kKw2, kKw2, kKw2, kKw2, kKw2};

const QuadratureRule kRules[3][3] = {
    {{1, 1, kL1x, kL1w}, {2, 1, kL2x, kL2w}, {3, 1, kL3x, kL3w}},
    {{1, 2, kT1x, kT1w}, {3, 2, kT3x, kT3w}, {6, 2, kT6x, kT6w}},
    {{1, 3, kK1x, kK1w}, {4, 3, kK4x, kK4w}, {11, 3, kK11x, kK11w}},
};

}  // namespace

const QuadratureRule& quadrature(CellType t, int degree) {
  DOPPEL_ASSERT(degree >= 0);
  if (degree > 4) throw Error("no quadrature rule of degree " + std::to_string(degree));
  const int dim = cell_dim(t);
  if (dim == 1) return kRules[0][degree <= 1 ? 0 : degree <= 3 ? 1 : 2];
  const int k = degree <= 1 ? 0 : degree <= 2 ? 1 : 2;
  return kRules[dim - 1][k];
}

}  // namespace doppel
