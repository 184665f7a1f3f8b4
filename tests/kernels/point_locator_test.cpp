// Point location: interior points map back exactly, boundary / edge points are found, outside
// points are not.
#include <random>

#include "kernels/fem/point_locator.hpp"
#include "tests/test_util.hpp"

namespace doppel {
namespace {

TEST(PointLocator, InteriorBoundaryAndOutsidePoints) {
  for (const Mesh& m : {generate_rectangle(2, 1, 7, 5, 2), generate_box(1, 1, 2, 3, 4, 5, 1)}) {
    PointLocator loc(m);
    std::mt19937 rng(9);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    const auto box = m.bounding_box();
    for (int k = 0; k < 200; ++k) {
      double x[3];
      for (int a = 0; a < 3; ++a) x[a] = box[a] + u(rng) * (box[3 + a] - box[a]);
      const auto p = loc.locate(x);
      ASSERT_TRUE(p.has_value());
      double X[kMaxNodes * 3];
      m.cell_coords(static_cast<size_t>(p->cell), X);
      PointMap pm;
      map_point(m.cell_type, m.dim, X, p->xi, pm);
      for (int a = 0; a < m.dim; ++a) EXPECT_NEAR(pm.x[a], x[a], 1e-12);
    }
    const double corner[3] = {box[3], box[4], box[5]};
    EXPECT_TRUE(loc.locate(corner).has_value());
    const double edge[3] = {box[0], 0.5 * (box[1] + box[4]), box[2]};
    EXPECT_TRUE(loc.locate(edge).has_value());
    const double outside[3] = {box[3] + 0.01, box[4], box[5]};
    EXPECT_FALSE(loc.locate(outside).has_value());
  }
}

TEST(PointLocator, CurvedP2CellsInvertedByNewton) {
  // One P2 triangle with a curved edge: the mid node of edge (1,2) pushed outward.
  Mesh m = generate_rectangle(1, 1, 1, 1, 2);
  PointLocator plain(m);
  const double x[3] = {0.3, 0.2, 0};
  auto p = plain.locate(x);
  ASSERT_TRUE(p.has_value());
  double X[kMaxNodes * 3];
  m.cell_coords(static_cast<size_t>(p->cell), X);
  X[4 * 3 + 0] += 0.05;  // curve the edge of node 4
  double xi[3];
  const double viol = reference_coordinates(m.cell_type, 2, X, x, xi);
  PointMap pm;
  map_point(m.cell_type, 2, X, xi, pm);
  EXPECT_LE(viol, 1e-12);
  EXPECT_NEAR(pm.x[0], x[0], 1e-12);
  EXPECT_NEAR(pm.x[1], x[1], 1e-12);
}

}  // namespace
}  // namespace doppel
