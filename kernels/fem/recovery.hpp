// Derived fields (heat flux, strain, stress) recovered at nodes by averaging the element
// values at each node over the cells of one region. Stress jumps across material interfaces,
// so a node on an interface has one value per region.
// Component order: flux x y z; strain and stress xx yy zz xy yz xz (tensor components; the
// plane-strain stress_zz and plane-stress strain_zz follow from the formulation).
#pragma once

#include <utility>
#include <vector>

#include "kernels/fem/fem_model.hpp"
#include "kernels/fem/site_functions.hpp"  // von_mises

namespace doppel {

struct RegionFields {
  std::vector<double> flux;    // 3 per region node (empty when not requested)
  std::vector<double> strain;  // 6 per region node
  std::vector<double> stress;  // 6 per region node
};


// Components of a recovered node in the order linear_node() uses: flux 0-2, strain 3-8,
// stress 9-14.
inline constexpr int kRecoveredComponents = 15;
inline constexpr int kFluxOffset = 0, kStrainOffset = 3, kStressOffset = 9;

// A value as an affine form of the fields: sum of weight * field[dof] plus a constant. Dofs
// index the concatenation [T; u]: dof < nT a nodal temperature, nT + j displacement dof j.
// Terms may repeat a dof until merge() sorts them and sums repeats.
struct LinearForm {
  std::vector<std::pair<int, double>> terms;
  double constant = 0;
  void add(const LinearForm& f, double scale);
  void merge();
};

class FieldRecovery {
 public:
  explicit FieldRecovery(const FemModel& model);
  size_t num_regions() const { return region_nodes_.size(); }
  const std::vector<int>& region_nodes(int r) const { return region_nodes_[static_cast<size_t>(r)]; }
  // Index of a node among its region's nodes, or -1 when the node is not in that region.
  int local_index(int region, int node) const;
  // T may be null (no thermal physics: zero thermal strain), u null (no mechanics).
  // node_mask (one flag per mesh node) limits the work to the flagged nodes; the values of
  // the others are left at zero.
  std::vector<RegionFields> recover(const Params& p, const double* T, const double* u,
                                    bool flux, bool mechanics,
                                    const std::vector<char>* node_mask = nullptr) const;
  // The recovered components of one region node as affine forms of [T; u] (nT temperatures
  // first, then the displacements; thermal: the twin has a temperature field, so the thermal
  // strain enters; mechanics: displacements exist) for the region material `mat`. Only the
  // components flagged in `wanted` (bit c for component c) are formed; out has
  // kRecoveredComponents entries. recover() at that node equals these forms applied to the
  // fields.
  void linear_node(int region, int node, const RegionMaterial& mat, int nT, bool thermal, bool mechanics,
                   unsigned wanted, LinearForm* out) const;
  // Cells (and the node's local index in each) that hold a node.
  size_t cells_at(int node) const { return cell_offsets_[static_cast<size_t>(node) + 1] - cell_offsets_[static_cast<size_t>(node)]; }
  // Element-wise values at the cell's own nodes (before averaging), for cell data output.
  void cell_values(size_t cell, const Params& p, const double* T, const double* u, double* flux,
                   double* strain, double* stress) const;

 private:
  void node_values(size_t cell, int local, const RegionMaterial& mat, const double* T,
                   const double* u, bool flux, bool mechanics, double* q, double* e, double* s) const;
  const FemModel& model_;
  std::vector<std::vector<int>> region_nodes_;
  std::vector<std::vector<int>> local_of_node_;  // per region, size num_nodes
  std::vector<std::vector<int>> counts_;         // cells sharing each region node
  std::vector<size_t> cell_offsets_;             // node -> its (cell, local) pairs (CSR)
  std::vector<std::pair<int, int>> node_cells_;
};

}  // namespace doppel
