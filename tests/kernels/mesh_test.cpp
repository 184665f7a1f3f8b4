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

// Meshes that used to give wrong answers with exit 0 (issue 16): each is refused naming the cell
// or node, or (parts) reported.
std::string mesh_error(const Mesh& m) {
  try {
    validate_mesh(m, "mesh.file");
  } catch (const InvalidInput& e) {
    EXPECT_EQ(e.path(), "mesh.file");
    return e.what();
  }
  ADD_FAILURE() << "accepted";
  return "";
}

TEST(MeshChecks, ADuplicatedCellIsNamed) {
  Mesh m = generate_rectangle(1, 1, 2, 2, 1);
  m.cells.insert(m.cells.end(), m.cell(3), m.cell(3) + 3);
  m.cell_region.push_back(0);
  EXPECT_NE(mesh_error(m).find("cells 3 and 8 have the same nodes"), std::string::npos) << mesh_error(m);
  // The same nodes in another order are the same cell.
  Mesh r = generate_rectangle(1, 1, 2, 2, 1);
  r.cells.insert(r.cells.end(), {r.cell(3)[1], r.cell(3)[2], r.cell(3)[0]});
  r.cell_region.push_back(0);
  EXPECT_NE(mesh_error(r).find("have the same nodes"), std::string::npos);
}

// A P2 triangle whose mid-edge node is pulled towards the opposite vertex: its Jacobian is
// positive at the centroid (what was checked) but negative near that edge's ends.
TEST(MeshChecks, ATangledP2CellIsNamedThoughItsCentroidIsFine) {
  Mesh m = generate_rectangle(1, 1, 1, 1, 2);
  const int* c = m.cell(0);
  const int v0 = c[0], v1 = c[1], v2 = c[2], mid = c[3];  // mid: the node of edge (v0, v1)
  for (int d = 0; d < 2; ++d) {
    const double edge_mid = 0.5 * (m.coords[3 * v0 + d] + m.coords[3 * v1 + d]);
    m.coords[3 * mid + d] = edge_mid + 0.6 * (m.coords[3 * v2 + d] - edge_mid);  // det: 1 - 2(0.6) at the ends, 1 - 4(0.6)/3 at the centroid
  }
  double x[kMaxNodes * 3];
  m.cell_coords(0, x);
  PointMap pm;
  const double centroid[2] = {1.0 / 3, 1.0 / 3};
  ASSERT_TRUE(map_point(m.cell_type, 2, x, centroid, pm));
  ASSERT_GT(pm.det * 1.0, 0.0);
  EXPECT_NE(mesh_error(m).find("is tangled"), std::string::npos) << mesh_error(m);
}

TEST(MeshChecks, TwoNodesAtOnePointAndAbsurdCoordinatesAreNamed) {
  Mesh m = generate_rectangle(1, 1, 2, 1, 1);
  // A copy of node 0 taken by one of the cells that used node 0: a crack nobody meant.
  m.coords.insert(m.coords.end(), {m.coords[0], m.coords[1], m.coords[2]});
  const int copy = static_cast<int>(m.num_nodes() - 1);
  for (size_t k = 0; k < m.cells.size(); ++k)
    if (m.cells[k] == 0) {
      m.cells[k] = copy;
      break;
    }
  EXPECT_NE(mesh_error(m).find("nodes 0 and " + std::to_string(copy) + " lie at one point"), std::string::npos) << mesh_error(m);
  Mesh far = generate_rectangle(1, 1, 2, 1, 1);
  far.coords[3] = 1e308;
  EXPECT_NE(mesh_error(far).find("node 1 has a coordinate that is not finite or lies beyond 1e12"), std::string::npos) << mesh_error(far);
}

// A cell is degenerate against its own size, not the mesh's: a sound cell of edge 1e-8 in a
// mesh a metre across (a boundary layer, a fillet) is accepted; one flattened to a line is not.
TEST(MeshChecks, SmallCellsAreJudgedByTheirOwnSize) {
  Mesh m;
  m.dim = 2;
  m.cell_type = CellType::tri3;
  m.coords = {0, 0, 0, 1, 0, 0, 0, 1, 0, 0.5, 0.5, 0, 0.5 + 1e-8, 0.5, 0, 0.5, 0.5 + 1e-8, 0};
  m.cells = {0, 1, 2, 3, 4, 5};
  m.cell_region = {0, 0};
  EXPECT_NO_THROW(validate_mesh(m, "mesh"));
  m.coords[16] = 0.5;  // node 5 onto the line of nodes 3 and 4
  EXPECT_NE(mesh_error(m).find("cell 1 is degenerate"), std::string::npos) << mesh_error(m);
}

TEST(MeshChecks, DisconnectedPartsAreCounted) {
  Mesh m;
  m.dim = 2;
  m.cell_type = CellType::tri3;
  m.coords = {0, 0, 0, 1, 0, 0, 0, 1, 0, 5, 5, 0, 6, 5, 0, 5, 6, 0};
  m.cells = {0, 1, 2, 3, 4, 5};
  m.cell_region = {0, 0};
  EXPECT_EQ(mesh_parts(m), (std::vector<size_t>{0, 1}));
  EXPECT_EQ(mesh_parts(generate_rectangle(1, 1, 3, 3, 2)).size(), 1u);
}

}  // namespace
}  // namespace doppel
