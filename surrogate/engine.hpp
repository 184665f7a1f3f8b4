// Batched surrogate inference on a LibTorch device (CPU, or CUDA in a CUDA-enabled LibTorch):
// network ensemble -> POD coefficients -> output site components (OutputMap) -> outputs and
// their ensemble spread -> residual features -> error estimate -> (optionally) fields. The
// network runs in float32 (its accuracy is what validation.json measures); everything after
// it in float64. No torch type appears here; surrogate/network.cpp implements it.
#pragma once

#include <Eigen/Dense>
#include <memory>
#include <string>
#include <vector>

#include "kernels/fem/outputs.hpp"
#include "surrogate/mlp.hpp"

namespace doppel {

struct EngineOutput {
  size_t offset = 0;
  int sites = 1;
  int components = 1;
  SiteFunction function = SiteFunction::identity;
  spec::Reduction reduce = spec::Reduction::none;
  std::vector<double> weights;  // mean reductions
};

// Everything the engine needs, in plain arrays.
struct EngineModel {
  MlpWeights net;
  std::vector<double> coef_mean, coef_std;  // per coefficient; c = [c_T | c_u]
  int rank_T = 0, rank_u = 0, lift_T = 0, lift_u = 0;
  bool thermal = false, mechanical = false;
  // Outputs (when linear_outputs): components = z L^T, z = [1 | phi_T | c_T | phi_u | c_u].
  bool linear_outputs = false;
  Eigen::MatrixXd output_map;
  std::vector<EngineOutput> outputs;
  // Error estimate of the primary field (temperature when present, else displacement):
  // psi = [loads | -theta_k phi_i | -theta_k | -theta_k c_j], eta^2 = psi^T G psi,
  // field norm^2 = y^T H y with y = [phi | 1 | c]; estimate = calibration * eta / norm.
  Eigen::MatrixXd gram, norm_gram;
  int est_loads = 0, est_terms = 0;
  double calibration = 1.0;
  // Reconstruction: columns [lift vectors | mean | modes] (n x (lift + 1 + rank)).
  Eigen::MatrixXd field_T, field_u;
};

// Per-scenario host inputs (row-major, S rows).
struct EngineInputs {
  size_t S = 0;
  std::vector<double> x;       // normalized parameters (P)
  std::vector<double> loads;   // coefficients of the primary field's load terms
  std::vector<double> theta;   // the primary field's operator coefficients (K)
  std::vector<double> lift_T;  // lift coefficients
  std::vector<double> lift_u;
};

struct EngineResult {
  size_t S = 0;
  std::vector<double> coefficients;  // S x R (ensemble mean)
  std::vector<double> member_coefficients;  // E x S x R (only when outputs are not linear)
  std::vector<double> outputs, spread;  // S x O (when linear_outputs)
  std::vector<double> eta, estimate;    // S
  std::vector<double> T, u;             // S x n (when fields were requested)
};

class InferenceEngine {
 public:
  // device: "cpu" or "cuda" (throws BackendUnavailable when CUDA is not available to LibTorch).
  InferenceEngine(std::shared_ptr<const EngineModel> model, const std::string& device);
  ~InferenceEngine();
  InferenceEngine(const InferenceEngine&) = delete;
  InferenceEngine& operator=(const InferenceEngine&) = delete;

  EngineResult run(const EngineInputs& in, bool fields) const;
  const std::string& device() const;
  static bool cuda_available();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace doppel
