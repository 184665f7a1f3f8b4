// The surrogate of one twin: parameter normalization, reduced spaces (POD bases) of the
// temperature and displacement fields, the network ensemble, the output map and the residual
// error estimate, evaluated in batches on the CPU or a CUDA device (LibTorch).
//
// A bundle (a directory; docs/bundle.md) stores it: meta.json, the bases and network weights
// as .npy, the estimator's Gram matrix, validation.json. Loading checks that the bundle was
// trained for this twin (name and content hash) and this mesh (mesh hash), by name.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/fem/fem_model.hpp"
#include "kernels/fem/outputs.hpp"
#include "surrogate/mlp.hpp"
#include "surrogate/pod.hpp"

namespace doppel {

class InferenceEngine;
class GalerkinHeat;
struct ReducedOperator;
class ReducedSpace;
class ResidualEstimator;
class OutputMap;
struct EngineModel;

inline constexpr int kBundleFormat = 1;

// What training produces (and a bundle stores).
struct SurrogateParts {
  std::vector<double> lower, upper;           // training bounds per parameter
  std::optional<PodBasis> T, u;               // per physics present
  std::vector<std::vector<size_t>> sites;     // per output: kept sites (empty = all)
  MlpWeights net;                             // empty for transient twins
  std::vector<double> coef_mean, coef_std;    // c = [c_T | c_u]
  Eigen::MatrixXd gram;                       // empty: built from the model
  double calibration = 1.0;
  // Per-output error estimates: output k's estimate is output_calibration[k] times the
  // uncalibrated RMS error estimate of the primary field (field_error below), the factor the
  // conformal quantile of |output error| / field_error over held-out solves. Empty: none (a
  // bundle written before they existed).
  std::vector<double> output_calibration;
  // The steady reduced tier's own factors, calibrated on its answers to the same held-out solves
  // (its errors are the POD space's, not the network's: another ratio to the residual). 0 /
  // empty: a bundle written before them, whose reduced answers use the network's factors.
  double reduced_calibration = 0;
  std::vector<double> reduced_output_calibration;
};

// Transient surrogate answers (the Galerkin reduced model of the temperature; thermo-elastic
// twins add the quasi-static displacement of each reduced temperature, an FE solve).
struct TransientAnswer {
  std::vector<std::vector<double>> outputs;  // [output time][output]
  std::vector<double> estimate;              // calibrated, per output time
  double max_estimate = 0;
  std::vector<double> field_error;           // uncalibrated RMS error estimate of the temperature, per output time
  std::vector<std::vector<double>> output_estimates;  // [output time][output], in the output's units (when calibrated)
  bool in_bounds = true;
  std::vector<Eigen::VectorXd> T;            // fields per output time (when asked for)
  std::vector<Eigen::VectorXd> u;            // thermo-elastic twins: displacements (when asked for)
};

struct SurrogateBatch {
  size_t S = 0, outputs_per_scenario = 0;
  std::vector<double> outputs, spread;  // S x O (ensemble mean answer, ensemble std)
  std::vector<double> estimate;         // S: estimated relative L2 error of the primary field
  std::vector<double> field_error;      // S: uncalibrated RMS error estimate of the primary field (its units)
  std::vector<double> output_estimate;  // S x O: per-output error estimates in the outputs' units (when calibrated)
  std::vector<char> in_bounds;          // S
  std::vector<double> coefficients;     // S x R
  std::vector<double> T, u;             // S x n when fields were asked for
  double output(size_t s, size_t k) const { return outputs[s * outputs_per_scenario + k]; }
  std::vector<double> output_estimates(size_t s) const {
    if (output_estimate.empty()) return {};
    return {output_estimate.begin() + static_cast<long>(s * outputs_per_scenario),
            output_estimate.begin() + static_cast<long>((s + 1) * outputs_per_scenario)};
  }
};

class Surrogate {
 public:
  Surrogate(const FemModel& model, SurrogateParts parts, const std::string& device = "cpu");
  ~Surrogate();
  Surrogate(const Surrogate&) = delete;
  Surrogate& operator=(const Surrogate&) = delete;

  // Loads a bundle for `model`; InvalidInput (path "bundle") when it is malformed or was
  // trained for another twin or mesh.
  static std::unique_ptr<Surrogate> load(const std::string& dir, const FemModel& model,
                                         const std::string& device = "cpu");
  // Writes the bundle (meta.json gets `training` and `validation` summaries merged in).
  void save(const std::string& dir, const nlohmann::json& training, const nlohmann::json& validation) const;

  const FemModel& model() const { return model_; }
  const SurrogateParts& parts() const { return parts_; }
  const std::string& device() const;
  const nlohmann::json& meta() const { return meta_; }  // as loaded (empty when built)
  bool linear_outputs() const;
  bool in_bounds(const Params& p) const;
  void set_calibration(double c);
  // Per-output estimates (SurrogateParts::output_calibration): one factor per output.
  void set_output_calibration(std::vector<double> factors);
  // The reduced tier's field factor and per-output factors (SurrogateParts::reduced_*).
  void set_reduced_calibration(double field, std::vector<double> outputs);
  bool has_output_estimates() const { return !parts_.output_calibration.empty(); }
  // factor_k * field_error for every output (empty when not calibrated).
  std::vector<double> output_estimates(double field_error) const;
  // The RMS field error of an absolute mass-norm estimate eta: eta / sqrt(measure of the domain).
  double rms(double eta) const { return eta * rms_scale_; }
  int rank_T() const { return parts_.T ? parts_.T->rank() : 0; }
  int rank_u() const { return parts_.u ? parts_.u->rank() : 0; }

  // Transient twins: the Galerkin reduced model, scenario by scenario (schedules honoured).
  bool transient() const { return model_.transient(); }
  std::vector<TransientAnswer> evaluate_transient(const std::vector<spec::Scenario>& scenarios,
                                                  bool fields = false) const;
  // Whether the scenario's parameters stay inside the training bounds at all times.
  bool in_bounds(const spec::Scenario& scenario) const;
  // Transient twins, the live state (twin/estimator): reduced temperature coordinates of the
  // twin's initial state and of a nodal field at parameters p, the field of coordinates c
  // (temperature(p, c) below), and a window of `seconds` from coordinates c under the
  // scenario's parameters (schedules on the window's clock). The answer's estimate is this
  // window's calibrated error estimate.
  Eigen::VectorXd initial_coordinates(const Params& p) const;
  Eigen::VectorXd project_temperature(const Params& p, const double* T) const;
  struct Advanced {
    Eigen::VectorXd c;
    double estimate = 0;
    bool in_bounds = true;
  };
  Advanced advance(const spec::Scenario& scenario, const Eigen::VectorXd& c, double seconds) const;

  // Steady twins: evaluates scenarios in chunks (0: 1024 on the CPU, 65536 on a GPU); fields adds the
  // reconstructed T and u.
  SurrogateBatch evaluate(const std::vector<Params>& p, bool fields = false, size_t chunk = 0) const;
  // The second tier (steady twins): the Galerkin-projected solve of the twin's own affine
  // operator in the reduced space, an r x r system per scenario (exact in that space, so no
  // starting guess is needed), with the same calibrated residual estimate as the network's
  // answers. Thermo-elastic twins solve the reduced temperature, then the reduced displacement
  // under the thermal strain of that temperature (materials without parameters; otherwise no
  // second tier). Used for scenarios the network answers above tolerance.
  bool has_reduced_tier() const { return reduced_ != nullptr; }
  struct ReducedAnswer {
    std::vector<double> outputs;
    double estimate = 0;
    double field_error = 0;                 // uncalibrated RMS error estimate of the field
    double relative_residual = 0;           // uncalibrated eta / ||x||_M (estimate / its factor)
    std::vector<double> output_estimates;   // per output (when calibrated)
    std::vector<double> field;  // the primary field, when asked for
    std::vector<double> displacement;  // thermo-elastic twins: the displacement, when asked for
  };
  std::vector<ReducedAnswer> evaluate_reduced(const std::vector<Params>& p, bool fields = false) const;
  // Reconstructions from coefficients (host).
  Eigen::VectorXd temperature(const Params& p, const double* c) const;
  Eigen::VectorXd displacement(const Params& p, const double* c) const;
  // Relative L2 (mass-norm) difference of two fields of the primary physics / of either.
  double relative_l2(const double* reference, const double* approx, bool thermal) const;
  // Reference implementation of the unscaled estimate (one operator application).
  double explicit_eta(const Params& p, const double* field) const;
  const ResidualEstimator& estimator() const { return *estimator_; }
  const OutputEvaluator& evaluator() const { return *evaluator_; }

  static std::string mesh_hash(const Mesh& mesh);

 private:
  void build();
  const FemModel& model_;
  SurrogateParts parts_;
  std::string device_;
  nlohmann::json meta_;
  std::unique_ptr<MassMatrix> M_;
  std::unique_ptr<ReducedSpace> space_T_, space_u_;
  std::unique_ptr<OutputEvaluator> evaluator_;
  // Every site of every output (steady twins): the reduced tier reconstructs the whole field,
  // so it reads its outputs everywhere, not only at the hot spots kept for the network.
  std::unique_ptr<OutputEvaluator> all_sites_;
  std::unique_ptr<OutputMap> map_;
  std::unique_ptr<ResidualEstimator> estimator_;
  std::shared_ptr<EngineModel> engine_model_;
  std::unique_ptr<InferenceEngine> engine_;
  std::unique_ptr<GalerkinHeat> galerkin_;
  std::unique_ptr<ReducedOperator> reduced_;  // the steady second tier (of the primary field)
  // Thermo-elastic second tier: the displacement's reduced operator and the thermal-strain load
  // reduced onto V_u as an affine map of the reduced temperature (fixed materials only):
  //     V_u^T f_th(T) = q0 + sum_i phi_i Qg_i + Qm + QV c_T   for T = sum phi_i g_i + mean + V_T c_T.
  struct ThermalCoupling {
    Eigen::MatrixXd QV;
    std::vector<Eigen::VectorXd> Qg;
    Eigen::VectorXd Qm, q0;
  };
  std::unique_ptr<ReducedOperator> reduced_u_;
  std::unique_ptr<ThermalCoupling> coupling_;
  bool linear_ = false;
  double rms_scale_ = 1.0;  // 1 / sqrt(measure of the domain)
};

}  // namespace doppel
