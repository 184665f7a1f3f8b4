// The twin's outputs from reduced coordinates without reconstructing fields. The site
// components of kernels/fem/outputs.hpp are affine in (T, u), and (T, u) are affine in
//     z = [1 | phi_T | c_T | phi_u | c_u]     (lift coefficients and reduced coordinates),
// so components = L z with L found by probing the evaluator with the reduced space's vectors.
// This holds when the material properties the recovered quantities use (conductivity for
// heat flux; elastic constants, expansion and reference temperature for strain and stress)
// are not parameters; otherwise outputs come from reconstructed fields (linear() is false).
// Max and min reductions keep only the sites that came near the extreme in some training
// snapshot (select_hot_spots), which keeps L small; validation measures what that costs.
#pragma once

#include <Eigen/Dense>
#include <vector>

#include "kernels/fem/outputs.hpp"
#include "surrogate/reduced_space.hpp"

namespace doppel {

// Whether the outputs' site components are parameter-independent affine maps of the fields.
bool outputs_linear_in_fields(const FemModel& model, const OutputEvaluator& evaluator);

// Sites of each max/min output to keep: per snapshot, every site within `margin` of the
// extreme (as a fraction of that snapshot's range over the sites) and at least `top` sites.
// Returns one list per output (empty for outputs that keep all their sites).
std::vector<std::vector<size_t>> select_hot_spots(const OutputEvaluator& evaluator,
                                                  const std::vector<std::vector<double>>& snapshot_components,
                                                  double margin = 0.02, size_t top = 8);

class OutputMap {
 public:
  OutputMap(const FemModel& model, const OutputEvaluator& evaluator, const ReducedSpace* T,
            const ReducedSpace* u);
  explicit OutputMap(Eigen::MatrixXd L) : L_(std::move(L)) {}
  static size_t z_size(const ReducedSpace* T, const ReducedSpace* u);
  // z for one scenario (cT / cu may be null when that field is absent).
  static void z(const ReducedSpace* T, const ReducedSpace* u, const Params& p, const double* cT,
                const double* cu, double* out);
  const Eigen::MatrixXd& matrix() const { return L_; }

 private:
  Eigen::MatrixXd L_;  // total_components x z_size
};

}  // namespace doppel
