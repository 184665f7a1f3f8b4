// The analysis step of the stochastic ensemble Kalman filter (Burgers, van Leeuwen & Evensen
// 1998; Evensen 2003): perturbed observations, multiplicative inflation of the forecast
// anomalies, per-sensor noise, and robust down-weighting of gross outliers (adaptive
// observation-error inflation: a reading whose normalized innovation exceeds the gate counts as
// if its noise made it exactly gate standard deviations away). When most readings (at least
// two) are beyond the gate at once, the asset has changed rather than its sensors failed: the
// forecast anomalies are inflated adaptively until the innovations fit them (the innovation
// statistic of Li, Kalnay & Miyoshi 2009), and then gated. Generic over the state: the caller
// supplies the ensemble and the ensemble's predicted observations.
#pragma once

#include <random>
#include <vector>

#include <Eigen/Dense>

namespace doppel::twin {

struct EnkfOptions {
  double inflation = 1.0;     // multiplies the forecast anomalies (>= 1)
  double outlier_gate = 4.0;  // normalized innovations beyond this are down-weighted
  double max_adaptive_inflation = 100;  // cap of the adaptive inflation factor (1: none)
};

struct Innovation {
  double observed = 0;
  double predicted_mean = 0, predicted_std = 0;  // of the forecast ensemble's predictions
  double z = 0;             // (observed - predicted_mean) / sqrt(predicted_var + noise_var)
  bool outlier = false;     // |z| > gate: its noise was inflated
  double noise_std = 0;     // the noise the analysis used
};

// ensemble: n x N (one member per column), updated in place. predicted: m x N, the members'
// predicted observations. observed, noise_std: m. Needs N >= 2 and noise_std > 0.
std::vector<Innovation> enkf_analysis(Eigen::MatrixXd& ensemble, const Eigen::MatrixXd& predicted,
                                      const Eigen::VectorXd& observed, const Eigen::VectorXd& noise_std,
                                      const EnkfOptions& options, std::mt19937_64& rng,
                                      double* adaptive_inflation = nullptr);

}  // namespace doppel::twin
