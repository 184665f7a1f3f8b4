// Derived fields (heat flux, strain, stress) recovered at nodes by averaging the element
// values at each node over the cells of one region. Stress jumps across material interfaces,
// so a node on an interface has one value per region.
// Component order: flux x y z; strain and stress xx yy zz xy yz xz (tensor components; the
// plane-strain stress_zz and plane-stress strain_zz follow from the formulation).
#pragma once

#include <vector>

#include "kernels/fem_model.hpp"

namespace doppel {

struct RegionFields {
  std::vector<double> flux;    // 3 per region node (empty when not requested)
  std::vector<double> strain;  // 6 per region node
  std::vector<double> stress;  // 6 per region node
};

double von_mises(const double* s);  // s: xx yy zz xy yz xz

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
};

}  // namespace doppel
