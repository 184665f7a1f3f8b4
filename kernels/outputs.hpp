// Output quantities of a twin: probes at points (interpolated from nodal and recovered nodal
// fields of the cell that contains the point) and max / min / mean reductions over regions
// (max and min over the region's nodes; mean = integral / measure of the interpolated field).
#pragma once

#include <vector>

#include "kernels/fem_model.hpp"
#include "kernels/recovery.hpp"

namespace doppel {

struct OutputRequest {
  spec::Quantity quantity = spec::Quantity::temperature;
  spec::Reduction reduce = spec::Reduction::none;
  std::vector<double> at;  // probes
  int region = -1;         // reductions: mesh region
};

class OutputEvaluator {
 public:
  OutputEvaluator(const FemModel& model, std::vector<OutputRequest> requests);
  // The twin's outputs, or its sensors (as probes).
  static OutputEvaluator for_outputs(const FemModel& model);
  static OutputEvaluator for_sensors(const FemModel& model);

  size_t size() const { return requests_.size(); }
  // T: nodal temperatures (null without thermal physics); u: nodal displacements
  // (node * dim + component; null without mechanics).
  std::vector<double> evaluate(const Params& p, const double* T, const double* u) const;

 private:
  struct Probe {
    int cell = -1;
    double N[kMaxNodes];
  };
  const FemModel& model_;
  std::vector<OutputRequest> requests_;
  std::vector<Probe> probes_;
  std::vector<std::vector<double>> region_weights_;  // per mesh region: int N_i (region nodes)
  FieldRecovery recovery_;
  bool need_flux_ = false, need_mech_ = false;
};

}  // namespace doppel
