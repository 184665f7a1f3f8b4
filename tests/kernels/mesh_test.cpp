// Generated meshes: counts, measures, boundaries, P2 elevation.
#include "tests/test_util.hpp"

namespace doppel {
namespace {

TEST(GeneratedMesh, RectangleCountsAreaAndBoundaries) {
  for (int order : {1, 2}) {
    const Mesh m = generate_rectangle(2.0, 1.0, 4, 3, order);
    EXPECT_EQ(m.num_cells(), 24u);
    EXPECT_EQ(m.num_nodes(), order == 1 ? 20u : static_cast<size_t>(9 * 7));
    EXPECT_NEAR(region_measure(m, 0), 2.0, 1e-12);
    EXPECT_EQ(m.boundary_names.size(), 4u);
    EXPECT_EQ(m.num_facets(), 14u);
    // Boundary lengths: integral of 1 over each boundary.
    for (int b = 0; b < 4; ++b) {
      std::vector<double> v(m.num_nodes(), 0.0);
      add_boundary_load(m, b, [](const double*, const double*) { return 1.0; }, v.data());
      double s = 0;
      for (double x : v) s += x;
      EXPECT_NEAR(s, b < 2 ? 1.0 : 2.0, 1e-12);
    }
  }
}

TEST(GeneratedMesh, BoxVolumeOutwardNormalsConformingP2) {
  for (int order : {1, 2}) {
    const Mesh m = generate_box(1.0, 2.0, 3.0, 2, 3, 2, order);
    EXPECT_EQ(m.num_cells(), 6u * 12u);
    EXPECT_NEAR(region_measure(m, 0), 6.0, 1e-12);
    // int_boundary n_x over xmax = +area (outward normal), xmin = -area.
    for (int b : {0, 1}) {
      std::vector<double> v(m.num_nodes(), 0.0);
      add_boundary_load(m, b, [](const double*, const double* n) { return n[0]; }, v.data());
      double s = 0;
      for (double x : v) s += x;
      EXPECT_NEAR(s, b == 0 ? -6.0 : 6.0, 1e-12);
    }
    if (order == 2) {
      EXPECT_EQ(m.num_nodes(), static_cast<size_t>(5 * 7 * 5));
    }
  }
}

TEST(GeneratedMesh, DegenerateCellIsRejected) {
  Mesh m = generate_rectangle(1, 1, 1, 1, 1);
  for (size_t i = 0; i < m.num_nodes(); ++i) m.coords[i * 3 + 1] = 0.0;  // flatten
  EXPECT_THROW(validate_mesh(m, "mesh"), InvalidInput);
}

}  // namespace
}  // namespace doppel
