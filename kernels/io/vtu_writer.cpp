#include "kernels/io/vtu_writer.hpp"

#include <fstream>
#include <iomanip>

#include "kernels/fem/recovery.hpp"
#include "spec/errors.hpp"

namespace doppel {
namespace {

int vtk_cell_type(CellType t) {
  switch (t) {
    case CellType::tri3: return 5;
    case CellType::tri6: return 22;
    case CellType::tet4: return 10;
    case CellType::tet10: return 24;
    default: return 0;
  }
}

// Gmsh -> VTK node order. They agree except for the last two tet10 edge nodes:
// Gmsh 8:(3,2) 9:(3,1); VTK 8:(1,3) 9:(2,3).
int vtk_node(CellType t, int i) {
  if (t == CellType::tet10 && (i == 8 || i == 9)) return i == 8 ? 9 : 8;
  return i;
}

}  // namespace

void write_vtu(const FemModel& model, const FieldSnapshot& f, std::ostream& out) {
  const Mesh& m = model.mesh();
  const int dim = m.dim;
  FieldRecovery recovery(model);
  const bool has_T = !f.T.empty(), has_u = !f.u.empty();
  const auto rec = recovery.recover(f.parameters, has_T ? f.T.data() : nullptr,
                                    has_u ? f.u.data() : nullptr, has_T, has_u);
  // Point numbering: region r's nodes follow region r-1's.
  std::vector<size_t> offset(recovery.num_regions() + 1, 0);
  for (size_t r = 0; r < recovery.num_regions(); ++r)
    offset[r + 1] = offset[r] + recovery.region_nodes(static_cast<int>(r)).size();
  const size_t npoints = offset.back();

  out << std::setprecision(10);
  out << "<?xml version=\"1.0\"?>\n"
      << "<VTKFile type=\"UnstructuredGrid\" version=\"1.0\" byte_order=\"LittleEndian\">\n"
      << "<UnstructuredGrid>\n<FieldData>\n"
      << "<DataArray type=\"Float64\" Name=\"TIME\" NumberOfTuples=\"1\" format=\"ascii\">" << f.time
      << "</DataArray>\n</FieldData>\n"
      << "<Piece NumberOfPoints=\"" << npoints << "\" NumberOfCells=\"" << m.num_cells() << "\">\n";
  out << "<Points>\n<DataArray type=\"Float64\" NumberOfComponents=\"3\" format=\"ascii\">\n";
  for (size_t r = 0; r < recovery.num_regions(); ++r)
    for (int node : recovery.region_nodes(static_cast<int>(r)))
      out << m.coords[static_cast<size_t>(node) * 3] << ' ' << m.coords[static_cast<size_t>(node) * 3 + 1]
          << ' ' << m.coords[static_cast<size_t>(node) * 3 + 2] << '\n';
  out << "</DataArray>\n</Points>\n<Cells>\n<DataArray type=\"Int64\" Name=\"connectivity\" format=\"ascii\">\n";
  for (size_t c = 0; c < m.num_cells(); ++c) {
    const int r = m.cell_region[c];
    const int* v = m.cell(c);
    for (int i = 0; i < m.nodes_per_cell(); ++i)
      out << offset[static_cast<size_t>(r)] + static_cast<size_t>(recovery.local_index(r, v[vtk_node(m.cell_type, i)])) << ' ';
    out << '\n';
  }
  out << "</DataArray>\n<DataArray type=\"Int64\" Name=\"offsets\" format=\"ascii\">\n";
  for (size_t c = 1; c <= m.num_cells(); ++c) out << c * static_cast<size_t>(m.nodes_per_cell()) << '\n';
  out << "</DataArray>\n<DataArray type=\"UInt8\" Name=\"types\" format=\"ascii\">\n";
  for (size_t c = 0; c < m.num_cells(); ++c) out << vtk_cell_type(m.cell_type) << '\n';
  out << "</DataArray>\n</Cells>\n<PointData>\n";

  auto point_array = [&](const char* name, int comps, auto&& value) {
    out << "<DataArray type=\"Float64\" Name=\"" << name << "\" NumberOfComponents=\"" << comps
        << "\" format=\"ascii\">\n";
    for (size_t r = 0; r < recovery.num_regions(); ++r) {
      const auto& nodes = recovery.region_nodes(static_cast<int>(r));
      for (size_t l = 0; l < nodes.size(); ++l) {
        for (int c = 0; c < comps; ++c) out << value(r, l, nodes[l], c) << ' ';
        out << '\n';
      }
    }
    out << "</DataArray>\n";
  };
  if (has_T) {
    point_array("temperature", 1, [&](size_t, size_t, int node, int) { return f.T[static_cast<size_t>(node)]; });
    point_array("heat_flux", 3, [&](size_t r, size_t l, int, int c) { return rec[r].flux[l * 3 + static_cast<size_t>(c)]; });
  }
  if (has_u) {
    point_array("displacement", 3, [&](size_t, size_t, int node, int c) {
      return c < dim ? f.u[static_cast<size_t>(node) * static_cast<size_t>(dim) + static_cast<size_t>(c)] : 0.0;
    });
    // ParaView's 6-component symmetric tensor order: xx yy zz xy yz xz (ours).
    point_array("strain", 6, [&](size_t r, size_t l, int, int c) { return rec[r].strain[l * 6 + static_cast<size_t>(c)]; });
    point_array("stress", 6, [&](size_t r, size_t l, int, int c) { return rec[r].stress[l * 6 + static_cast<size_t>(c)]; });
    point_array("von_mises", 1, [&](size_t r, size_t l, int, int) { return von_mises(&rec[r].stress[l * 6]); });
  }
  out << "</PointData>\n<CellData>\n<DataArray type=\"Int32\" Name=\"region\" format=\"ascii\">\n";
  for (size_t c = 0; c < m.num_cells(); ++c) out << m.cell_region[c] << '\n';
  out << "</DataArray>\n";
  if (has_u) {
    out << "<DataArray type=\"Float64\" Name=\"von_mises_cell\" format=\"ascii\">\n";
    std::vector<double> strain(static_cast<size_t>(6 * m.nodes_per_cell())), stress(strain.size());
    for (size_t c = 0; c < m.num_cells(); ++c) {
      recovery.cell_values(c, f.parameters, has_T ? f.T.data() : nullptr, f.u.data(), nullptr,
                           strain.data(), stress.data());
      double avg[6] = {0, 0, 0, 0, 0, 0};
      for (int i = 0; i < m.nodes_per_cell(); ++i)
        for (int a = 0; a < 6; ++a) avg[a] += stress[static_cast<size_t>(i * 6 + a)] / m.nodes_per_cell();
      out << von_mises(avg) << '\n';
    }
    out << "</DataArray>\n";
  }
  out << "</CellData>\n</Piece>\n</UnstructuredGrid>\n</VTKFile>\n";
}

void write_vtu(const FemModel& model, const FieldSnapshot& fields, const std::filesystem::path& file) {
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path());
  std::ofstream out(file);
  DOPPEL_VERIFY(out.good(), "--vtu", "cannot write " + file.string());
  write_vtu(model, fields, out);
  out.flush();
  DOPPEL_VERIFY(out.good(), "--vtu", "failed writing " + file.string());
}

}  // namespace doppel
