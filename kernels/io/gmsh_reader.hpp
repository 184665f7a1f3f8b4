// Gmsh MSH 2.2 and 4.1 ASCII import. The highest-dimensional elements are the cells
// (3/6-node triangles or 4/10-node tetrahedra); elements one dimension lower are boundary
// facets. Physical groups name regions (cells) and boundaries (facets); an unnamed group is
// named by its number. Cells in no physical group form the region "domain"; facets in no
// physical group are dropped (they get the default insulated / free condition).
#pragma once

#include <filesystem>
#include <string>

#include "kernels/fem/mesh.hpp"

namespace doppel {

// `path` names the JSON field that referred to the file, for error messages.
Mesh read_gmsh(const std::filesystem::path& file, const std::string& path = "mesh.file");
Mesh parse_gmsh(const std::string& text, const std::string& path = "mesh.file");

}  // namespace doppel
