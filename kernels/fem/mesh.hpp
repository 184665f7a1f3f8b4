// A simplicial mesh of one element type (P1 or P2 triangles or tetrahedra) with named
// regions (cells) and named boundaries (facets).
#pragma once

#include <array>
#include <filesystem>
#include <string>
#include <vector>

#include "kernels/fem/element.hpp"

namespace doppel {

struct Mesh {
  int dim = 2;
  CellType cell_type = CellType::tri3;
  std::vector<double> coords;     // 3 per node (z = 0 in 2D)
  std::vector<int> cells;         // cell_nodes(cell_type) per cell, Gmsh order
  std::vector<int> cell_region;   // region index per cell
  std::vector<std::string> region_names;
  std::vector<int> facets;        // cell_nodes(facet_type(cell_type)) per facet
  std::vector<int> facet_boundary;
  std::vector<int> facet_cell;    // a cell owning each facet (orients normals outward)
  std::vector<std::string> boundary_names;

  int order() const { return cell_order(cell_type); }
  int nodes_per_cell() const { return cell_nodes(cell_type); }
  CellType facet_cell_type() const { return facet_type(cell_type); }
  int nodes_per_facet() const { return cell_nodes(facet_cell_type()); }
  size_t num_nodes() const { return coords.size() / 3; }
  size_t num_cells() const { return cell_region.size(); }
  size_t num_facets() const { return facet_boundary.size(); }
  const int* cell(size_t c) const { return &cells[c * static_cast<size_t>(nodes_per_cell())]; }
  const int* facet(size_t f) const { return &facets[f * static_cast<size_t>(nodes_per_facet())]; }
  int region_index(const std::string& name) const;    // -1 when absent
  int boundary_index(const std::string& name) const;  // -1 when absent
  // Node coordinates of a cell / facet gathered into x (3 per node).
  void cell_coords(size_t c, double* x) const;
  void facet_coords(size_t f, double* x) const;
  std::array<double, 6> bounding_box() const;  // xmin ymin zmin xmax ymax zmax
};

// Structured meshes: a rectangle split into 2 triangles per cell, a box into 6 tetrahedra
// per cell (Kuhn subdivision, conforming). Region "domain"; boundaries xmin xmax ymin ymax
// (zmin zmax). order 2 adds mid-edge nodes.
Mesh generate_rectangle(double lx, double ly, int nx, int ny, int order, double x0 = 0,
                        double y0 = 0);
Mesh generate_box(double lx, double ly, double lz, int nx, int ny, int nz, int order,
                  double x0 = 0, double y0 = 0, double z0 = 0);

// Adds mid-edge nodes to a P1 mesh (straight edges), making it P2.
Mesh elevate_to_p2(const Mesh& p1);

// Finds a cell owning each facet and fills facet_cell; throws InvalidInput (path `path`)
// if a facet is not a face of any cell.
void attach_facets(Mesh& mesh, const std::string& path);

// Checks the mesh is usable (InvalidInput naming `path` and the cell or node): non-empty, finite
// coordinates within 1e12, every cell's Jacobian of one sign and not vanishing at every
// quadrature point and vertex (no degenerate or tangled cells), no cell twice, no two nodes at
// one point.
void validate_mesh(const Mesh& mesh, const std::string& path);
// The mesh's connected parts (cells sharing nodes): the first cell of each, in cell order.
std::vector<size_t> mesh_parts(const Mesh& mesh);

}  // namespace doppel
