// Gmsh MSH 2.2 and 4.1 import: physical groups as regions and boundaries, node renumbering,
// element types, and clear errors.
#include "kernels/io/gmsh_reader.hpp"
#include "tests/test_util.hpp"

#include <unistd.h>

#include <filesystem>

namespace doppel {
namespace {

// Unit square, two triangles, region "plate", boundaries "bottom" (1-2) and "top" (3-4).
const char* kV22 = R"($MeshFormat
2.2 0 8
$EndMeshFormat
$PhysicalNames
3
1 1 "bottom"
1 2 "top"
2 3 "plate"
$EndPhysicalNames
$Nodes
5
10 0 0 0
20 1 0 0
30 1 1 0
40 0 1 0
99 5 5 0
$EndNodes
$Elements
5
1 15 2 0 1 99
2 1 2 1 1 10 20
3 1 2 2 2 30 40
4 2 2 3 5 10 20 30
5 2 2 3 5 10 30 40
$EndElements
)";

const char* kV41 = R"($MeshFormat
4.1 0 8
$EndMeshFormat
$PhysicalNames
3
1 1 "bottom"
1 2 "top"
2 3 "plate"
$EndPhysicalNames
$Entities
0 2 1 0
1 0 0 0 1 0 0 1 1 0
2 0 1 0 1 1 0 1 2 0
5 0 0 0 1 1 0 1 3 0
$EndEntities
$Nodes
3 4 1 4
1 1 0 2
1
2
0 0 0
1 0 0
1 2 0 2
3
4
1 1 0
0 1 0
2 5 0 0
$EndNodes
$Elements
3 4 1 4
1 1 1 1
1 1 2
1 2 1 1
2 3 4
2 5 2 2
3 1 2 3
4 1 3 4
$EndElements
)";

void check_square(const Mesh& m) {
  EXPECT_EQ(m.dim, 2);
  EXPECT_EQ(m.cell_type, CellType::tri3);
  EXPECT_EQ(m.num_nodes(), 4u);  // the unused point node is dropped
  EXPECT_EQ(m.num_cells(), 2u);
  ASSERT_EQ(m.region_names.size(), 1u);
  EXPECT_EQ(m.region_names[0], "plate");
  EXPECT_GE(m.boundary_index("bottom"), 0);
  EXPECT_GE(m.boundary_index("top"), 0);
  EXPECT_NEAR(region_measure(m, 0), 1.0, 1e-14);
}

TEST(Gmsh, ReadsV22WithPhysicalNames) { check_square(parse_gmsh(kV22)); }
TEST(Gmsh, ReadsV41WithEntitiesAndBlocks) { check_square(parse_gmsh(kV41)); }

TEST(Gmsh, RejectsBinaryUnsupportedVersionsAndTypes) {
  std::string bin = kV22;
  bin.replace(bin.find("2.2 0 8"), 7, "2.2 1 8");
  EXPECT_THROW(parse_gmsh(bin), InvalidInput);
  std::string v3 = kV22;
  v3.replace(v3.find("2.2 0 8"), 7, "3.0 0 8");
  EXPECT_THROW(parse_gmsh(v3), InvalidInput);
  try {
    read_gmsh(DOPPEL_SOURCE_DIR "/tests/data/quads.msh");
    FAIL();
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("quadrangle"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_gmsh("$MeshFormat\n2.2 0 8\n$EndMeshFormat\n$Nodes\n1\n1 0 0"), InvalidInput);
}

// Counts that no file of that size can hold (10^9, 4e18, -1 nodes) used to reach reserve():
// std::bad_alloc or "vector::reserve", exit 1. Each is now refused before any allocation,
// naming the line; so are coordinates that are not finite or beyond 1e12, and a file that is a
// directory, a FIFO or a device.
TEST(Gmsh, AbsurdCountsAndValuesAreRefusedByLineBeforeAnyAllocation) {
  auto error = [](const std::string& text) {
    try {
      parse_gmsh(text, "mesh.file");
    } catch (const InvalidInput& e) {
      EXPECT_EQ(e.path(), "mesh.file");
      return std::string(e.what());
    }
    ADD_FAILURE() << "accepted";
    return std::string();
  };
  auto with = [](const char* base, const std::string& from, const std::string& to) {
    std::string s = base;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  const std::string nodes = "$Nodes\n5\n";
  EXPECT_NE(error(with(kV22, nodes, "$Nodes\n1000000000\n")).find("line 11: declares 1000000000 nodes, more than the rest"),
            std::string::npos) << error(with(kV22, nodes, "$Nodes\n1000000000\n"));
  EXPECT_NE(error(with(kV22, nodes, "$Nodes\n-1\n")).find("line 11: a count of nodes cannot be negative"), std::string::npos);
  EXPECT_NE(error(with(kV22, nodes, "$Nodes\n4e18\n")).find("line 11: expected an integer, found \"4e18\""), std::string::npos);
  EXPECT_NE(error(with(kV22, nodes, "$Nodes\n4000000000000000000\n")).find("more than the rest of the file"), std::string::npos);
  EXPECT_NE(error(with(kV22, "$Elements\n5\n", "$Elements\n99999999999\n")).find("line 19: declares 99999999999 elements"),
            std::string::npos);
  EXPECT_NE(error(with(kV22, "30 1 1 0", "30 1 1e308 0")).find("line 14: the coordinate"), std::string::npos);
  EXPECT_NE(error(with(kV22, "30 1 1 0", "30 1 nan 0")).find("line 14: expected a finite number"), std::string::npos);
  EXPECT_NE(error(with(kV41, "$Nodes\n", "$Nodes\n999999999 ")).find("node blocks"), std::string::npos);
  EXPECT_NE(error(with(kV22, "$EndNodes", "$EndNode")).find("line"), std::string::npos);
  // A section that never ends names itself and the line it opened on (the file ends in a newline).
  EXPECT_NE(error(std::string(kV22) + "$Comments\nsome text\n").find("line 26: section $Comments has no $EndComments"),
            std::string::npos) << error(std::string(kV22) + "$Comments\nsome text\n");
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("doppel_gmsh_dir_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (const auto& [file, says] : std::vector<std::pair<fs::path, std::string>>{
           {dir, "is a directory"}, {"/dev/zero", "is not a regular file"}, {dir / "none.msh", "not found"}}) {
    try {
      read_gmsh(file, "mesh.file");
      ADD_FAILURE() << file;
    } catch (const InvalidInput& e) {
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    }
  }
  fs::remove_all(dir);
}

TEST(Gmsh, BladeExampleIsP2WithNamedGroups) {
  const Mesh m = read_gmsh(DOPPEL_SOURCE_DIR "/examples/blade/blade.msh");
  EXPECT_EQ(m.cell_type, CellType::tri6);
  for (const char* b : {"gas", "coolant", "neck", "root"}) EXPECT_GE(m.boundary_index(b), 0) << b;
  EXPECT_EQ(m.region_names, std::vector<std::string>{"blade"});
  // Cross-section area: airfoil + neck - three channels, between 4e-4 and 6e-4 m2.
  const double area = region_measure(m, 0);
  EXPECT_GT(area, 4e-4);
  EXPECT_LT(area, 6e-4);
}

}  // namespace
}  // namespace doppel
