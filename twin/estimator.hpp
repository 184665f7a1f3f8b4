// The twin's state estimate: an ensemble of the parameters nobody sets (latent parameters and
// loads), kept in step with sensor readings by the ensemble Kalman filter (twin/enkf). Each
// member's sensor and output predictions come from the surrogate where it is in bounds and its
// error estimate is within tolerance, from FEM otherwise, all members in one batch.
//
// Steady twins respond quasi-statically: the state is the estimated parameters, which drift as
// a random walk between analyses (drift: standard deviation per sqrt(hour) as a fraction of the
// parameter's range). Members live in logit coordinates of each parameter's bounds, so every
// member stays inside the bounds (and inside the surrogate's training box).
//
// Transient twins also carry each member's temperature: with a bundle as reduced coordinates
// c of its temperature space (x = lift(p) + mean + V c), without one as nodal values. Between
// analyses every member is advanced over the elapsed time at its (drifted) parameters: by the
// Galerkin reduced model, or by FEM where its window error estimate exceeds the tolerance, its
// parameters leave the training box, or there is no bundle (from its reconstructed field, then
// projected back). The analysis updates parameters and temperatures together. With a bundle
// the asset's temperature at the first reading is taken as unknown: members start from the
// twin's initial state perturbed along each mode by the mode's standard deviation over the
// training snapshots; without one they start from the twin's initial state. Thermo-elastic
// twins observe each member's quasi-static displacement and stress under its temperature (one
// FE batch of the mechanics, solve_with_temperatures), so stress outputs get bands and alerts.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "kernels/fem/outputs.hpp"
#include "kernels/solvers/scenario_batch.hpp"
#include "surrogate/surrogate.hpp"
#include "twin/enkf.hpp"

namespace doppel::twin {

struct EstimatorOptions {
  int members = 64;
  double inflation = 1.02;
  double outlier_gate = 4.0;
  double drift = 0.02;         // per sqrt(hour), fraction of the range
  double tolerance = 5e-3;     // surrogate error estimate accepted per member
  double prior_width = 0.25;   // initial spread: standard deviation as a fraction of the range
  // Transient twins: relaxation to prior spread after each analysis (Whitaker & Hamill 2012),
  // against the collapse of an ensemble that estimates the temperature coordinates too.
  double relaxation = 0.5;
  unsigned long seed = 1;
};

// Mean and standard deviation of a quantity over the ensemble.
struct Moments {
  double mean = 0, std = 0;
};
// Of the values in a row (sample standard deviation; 0 for fewer than two values).
Moments moments_of(const Eigen::Ref<const Eigen::RowVectorXd>& row);

struct EnsemblePrediction {
  Eigen::MatrixXd sensors;   // sensors x members
  Eigen::MatrixXd outputs;   // outputs x members
  size_t surrogate = 0, fem = 0;  // members answered by each
};

struct SensorObservation {
  size_t sensor = 0;  // index into the twin's sensors
  double value = 0;
};

// The finite-element outputs and sensor values of one parameter set (the virtual plant's
// truth, and tests' hidden truths).
struct SensorResponse {
  std::vector<double> outputs, sensors;
};
SensorResponse solve_with_sensors(const FemModel& model, const Params& parameters);
// Why twin `t` cannot keep a live state ("" when it can): a value written as a function of the
// analysis's t (spec/field.hpp) has no meaning on the asset's clock that a live twin follows.
// The Estimator and advance_with_sensors refuse such twins with it (InvalidInput naming the
// value); the service answers their live routes 409 with it.
std::string live_refusal(const spec::TwinSpec& t);
// Transient twins: the nodal temperature `state` (empty: the twin's initial state at these
// parameters) advanced by FEM over `seconds` (0: not at all) under constant parameters and
// replaced by the result; the outputs and sensor values of the new state.
SensorResponse advance_with_sensors(const FemModel& model, const Params& parameters, std::vector<double>& state,
                                    double seconds);

class Estimator {
 public:
  Estimator(const FemModel& model, const Surrogate* surrogate, EstimatorOptions options, BatchOptions fem);

  const std::vector<size_t>& estimated() const { return estimated_; }  // parameter indices
  // Parameters not estimated (controls): their current values.
  void set_known(size_t parameter, double value);
  double time() const { return time_; }
  long revision() const { return revision_; }

  // Advances the ensemble to `time` (random walk over the elapsed time) and assimilates the
  // readings (several of one sensor allowed). Returns the innovation of each reading. All or
  // nothing: when the advance or the analysis fails, or its state is not finite (SolverDiverged),
  // the state is left as it was.
  std::vector<Innovation> assimilate(double time, const std::vector<SensorObservation>& readings);
  // Advances without readings (the spread grows).
  void advance(double time);

 private:
  std::vector<Innovation> assimilate_unchecked(double time, const std::vector<SensorObservation>& readings);

 public:

  // The members' parameters (parameters x members, physical units).
  Eigen::MatrixXd parameters() const;
  std::vector<Moments> parameter_moments() const;
  bool transient() const { return model_.transient(); }
  // Sensor and output predictions of every member (cached until the ensemble changes). For
  // transient twins `surrogate` and `fem` count how the members were last advanced.
  const EnsemblePrediction& prediction() const;
  bool prediction_ready() const { return cached_.has_value(); }  // prediction() computes nothing
  // The same, computed again; fields, when set, is called (from this thread) with every
  // member's nodal temperature and displacement (either may be null).
  using FieldVisitor = std::function<void(size_t member, const double* T, const double* u)>;
  EnsemblePrediction predict_members(const FieldVisitor& fields) const;
  // Outputs along a path (forecasts, recommendations): parameters[k] (parameters x members)
  // hold from times[k-1] to times[k] (seconds after the state's time, increasing; times[-1] =
  // 0). Steady twins answer each step's parameters at once; transient twins carry every
  // member's temperature forward. outputs: outputs x (members * steps), step after step.
  EnsemblePrediction predict_path(const std::vector<double>& times, const std::vector<Eigen::MatrixXd>& parameters) const;

  // Forecasts: the members' unit (logit) coordinates, the random walk applied to a copy, and
  // the physical parameters of given coordinates.
  const Eigen::MatrixXd& unit_state() const { return z_; }
  void drift(Eigen::MatrixXd& z, double seconds, std::mt19937_64& rng) const;
  Eigen::MatrixXd parameters_of(const Eigen::MatrixXd& z) const;

  // Serialized state (members, time, revision, known values), for the history store.
  std::string save() const;
  void restore(const std::string& text);  // InvalidInput when it does not fit this twin

 private:
  // Steady twins: predictions for parameter sets (columns); with_sensors false: outputs only.
  EnsemblePrediction predict(const Eigen::MatrixXd& parameters, const FieldVisitor& fields, bool with_sensors) const;
  // Transient twins: members' coordinates C advanced over `seconds` at parameters P (counts of
  // members advanced by each model added to *surrogate / *fem), and their predictions.
  Eigen::MatrixXd propagate(const Eigen::MatrixXd& C, const Eigen::MatrixXd& P, double seconds, size_t* surrogate,
                            size_t* fem) const;
  EnsemblePrediction observe(const Eigen::MatrixXd& C, const Eigen::MatrixXd& P, const FieldVisitor& fields,
                             bool with_sensors) const;
  double to_unit(size_t p, double value) const;
  double from_unit(size_t p, double z) const;
  void random_walk(double seconds);

  const FemModel& model_;
  const Surrogate* surrogate_;
  EstimatorOptions options_;
  BatchOptions fem_;
  OutputEvaluator sensors_, outputs_;
  std::vector<size_t> estimated_;
  std::vector<double> known_;    // every parameter's value for members (estimated ones ignored)
  Eigen::MatrixXd z_;            // estimated x members, logit coordinates
  Eigen::MatrixXd c_;            // transient: reduced coordinates (nodal temperatures without a bundle) x members
  size_t advanced_surrogate_ = 0, advanced_fem_ = 0;  // transient: the last advance
  double time_ = 0;
  bool started_ = false;
  long revision_ = 0;
  mutable std::mt19937_64 rng_;
  mutable std::optional<EnsemblePrediction> cached_;
};

}  // namespace doppel::twin
