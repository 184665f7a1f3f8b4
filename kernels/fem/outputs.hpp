// Output quantities of a twin: probes at points (interpolated from nodal and recovered nodal
// fields of the cell that contains the point) and max / min / mean reductions over regions
// (max and min over the region's nodes; mean = integral / measure of the interpolated field).
//
// Every output is evaluated in two steps, so that the surrogate can replace the first one:
//   1. site components: at each of the output's sites (its probe point, or each node of its
//      region) the components the quantity needs (1 for a scalar, dim for a displacement
//      magnitude, 6 stress components for von Mises). They are affine in the fields (T, u)
//      for fixed parameters.
//   2. reduction: the quantity at each site from its components (identity, norm, von Mises),
//      then max / min / weighted mean over the sites (a probe has one site).
#pragma once

#include <vector>

#include <Eigen/Core>
#include <Eigen/SparseCore>

#include "kernels/fem/fem_model.hpp"
#include "kernels/fem/recovery.hpp"
#include "kernels/fem/site_functions.hpp"

namespace doppel {

struct OutputRequest {
  spec::Quantity quantity = spec::Quantity::temperature;
  spec::Reduction reduce = spec::Reduction::none;
  std::vector<double> at;  // probes
  int region = -1;         // reductions: mesh region
};

// The site components of every output as one affine map of the fields, for fixed materials:
//     z = z0 + Z_T T + Z_u u
// (rows: OutputEvaluator::total_components(), in site_components() order; Z_T has a column
// per nodal temperature, Z_u one per displacement dof; either is empty without that physics).
// Exact for every output kind: probes interpolate nodal values, recovered values are averages
// of element values, and all of them are linear in (T, u) but for the reference temperature
// of the thermal strain (in z0). Built once per material set (OutputEvaluator::linearize),
// applied to blocks of scenarios as sparse-times-dense products; rows are compressed sparse
// rows, the layout an executor's SpMM takes.
struct LinearOutputs {
  Eigen::SparseMatrix<double, Eigen::RowMajor, int> ZT, Zu;
  Eigen::VectorXd z0;
  size_t rows() const { return static_cast<size_t>(z0.size()); }
  size_t bytes() const;
  // The site components of columns [begin, begin + width) of T (nT x S) and u (nU x S);
  // either may be null when the twin lacks that physics (width < 0: to the last column).
  // Column blocks run on the host threads.
  Eigen::MatrixXd apply(const Eigen::MatrixXd* T, const Eigen::MatrixXd* u, Eigen::Index begin = 0,
                        Eigen::Index width = -1) const;
};

class OutputEvaluator {
 public:
  OutputEvaluator(const FemModel& model, std::vector<OutputRequest> requests);
  // The twin's outputs, or its sensors (as probes).
  static OutputEvaluator for_outputs(const FemModel& model);
  static OutputEvaluator for_sensors(const FemModel& model);

  size_t size() const { return requests_.size(); }
  const OutputRequest& request(size_t k) const { return requests_[k]; }

  // T: nodal temperatures (null without thermal physics); u: nodal displacements
  // (node * dim + component; null without mechanics).
  std::vector<double> evaluate(const Params& p, const double* T, const double* u) const;

  // --- the two steps -----------------------------------------------------------------------
  int components(size_t k) const { return outputs_[k].components; }
  SiteFunction site_function(size_t k) const { return outputs_[k].function; }
  size_t num_sites(size_t k) const { return outputs_[k].sites.size(); }
  // Mesh node of each site of a reduction (empty for a probe).
  std::vector<int> site_nodes(size_t k) const;
  // Weight of each site of a mean reduction (integral of the node's shape function).
  const std::vector<double>& site_weights(size_t k) const { return outputs_[k].weights; }
  // Offset of output k's first component in the concatenated site components.
  size_t offset(size_t k) const { return outputs_[k].offset; }
  size_t total_components() const { return total_; }
  // Keeps only the given sites of a max or min reduction (the surrogate's hot-spot candidates).
  void restrict_sites(size_t k, const std::vector<size_t>& keep);

  // Step 1: all site components, output by output, site by site.
  std::vector<double> site_components(const Params& p, const double* T, const double* u) const;
  // Step 1 as an operator: site_components(p', T, u) = z0 + Z_T T + Z_u u for every p' whose
  // materials equal p's. nT: temperatures (0 without thermal physics); nU: displacement dofs
  // (0 without mechanics).
  LinearOutputs linearize(const Params& p) const;
  // Whether linearize()'s operator depends on the materials: only outputs of recovered
  // quantities (flux, strain, stress) do; temperatures and displacements are interpolated.
  bool depends_on_materials() const { return need_flux_ || need_mech_; }
  // An upper bound on the stored entries of linearize()'s operator, known before building it
  // (for choosing between it and evaluating scenario by scenario).
  size_t linear_entries_bound() const;
  // Step 2: the outputs from the site components.
  std::vector<double> reduce(const double* components) const;
  // The quantity at each site of output k.
  std::vector<double> site_values(size_t k, const double* components) const;

 private:
  struct Site {
    int cell = -1;  // probes: the cell holding the point
    int node = -1;  // reductions: the region node
    int local = -1; // reductions: index among the region's nodes
    double N[kMaxNodes];
  };
  struct Output {
    std::vector<Site> sites;
    std::vector<double> weights;
    int components = 1;
    SiteFunction function = SiteFunction::identity;
    size_t offset = 0;
  };
  void update_offsets();  // also the recovery mask

  const FemModel& model_;
  std::vector<OutputRequest> requests_;
  std::vector<Output> outputs_;
  size_t total_ = 0;
  FieldRecovery recovery_;
  bool need_flux_ = false, need_mech_ = false;
  bool need_T_ = false, need_u_ = false;  // fields some output reads
  std::vector<char> recovery_mask_;  // nodes whose recovered values some output reads
};

}  // namespace doppel
