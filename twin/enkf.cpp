#include "twin/enkf.hpp"

#include <cmath>
#include <stdexcept>

namespace doppel::twin {

std::vector<Innovation> enkf_analysis(Eigen::MatrixXd& ensemble, const Eigen::MatrixXd& predicted,
                                      const Eigen::VectorXd& observed, const Eigen::VectorXd& noise_std,
                                      const EnkfOptions& options, std::mt19937_64& rng, double* adaptive_inflation) {
  const Eigen::Index n_members = ensemble.cols(), m = predicted.rows();
  if (n_members < 2 || predicted.cols() != n_members || observed.size() != m || noise_std.size() != m)
    throw std::invalid_argument("enkf_analysis: inconsistent ensemble, prediction or observation sizes");
  const double nm1 = static_cast<double>(n_members - 1);
  // Forecast anomalies, inflated about the mean (the predictions with them, to first order).
  const Eigen::VectorXd x_mean = ensemble.rowwise().mean();
  const Eigen::VectorXd y_mean = predicted.rowwise().mean();
  Eigen::MatrixXd a = (ensemble.colwise() - x_mean) * options.inflation;
  Eigen::MatrixXd ha = (predicted.colwise() - y_mean) * options.inflation;
  // Most readings far outside the predicted spread: inflate the anomalies until they fit.
  double lambda = 1;
  if (m >= 2 && options.max_adaptive_inflation > 1) {
    Eigen::Index beyond = 0;
    double excess = 0, predicted = 0;
    for (Eigen::Index k = 0; k < m; ++k) {
      const double var_pred = ha.row(k).squaredNorm() / nm1, var_obs = noise_std(k) * noise_std(k);
      const double d = observed(k) - y_mean(k);
      if (std::abs(d) > options.outlier_gate * std::sqrt(var_pred + var_obs)) ++beyond;
      excess += std::max(0.0, d * d - var_obs);
      predicted += var_pred;
    }
    if (2 * beyond > m && predicted > 0)
      lambda = std::sqrt(std::clamp(excess / predicted, 1.0, options.max_adaptive_inflation * options.max_adaptive_inflation));
  }
  a *= lambda;
  ha *= lambda;
  if (adaptive_inflation) *adaptive_inflation = lambda;
  ensemble = a.colwise() + x_mean;
  const Eigen::MatrixXd hx = ha.colwise() + y_mean;

  std::vector<Innovation> out(static_cast<size_t>(m));
  Eigen::VectorXd r(m);  // noise variances used
  for (Eigen::Index k = 0; k < m; ++k) {
    Innovation& in = out[static_cast<size_t>(k)];
    const double var_pred = ha.row(k).squaredNorm() / nm1;
    const double var_obs = noise_std(k) * noise_std(k);
    if (!(var_obs > 0)) throw std::invalid_argument("enkf_analysis: noise_std must be positive");
    const double d = observed(k) - y_mean(k);
    in.observed = observed(k);
    in.predicted_mean = y_mean(k);
    in.predicted_std = std::sqrt(var_pred);
    in.z = d / std::sqrt(var_pred + var_obs);
    r(k) = var_obs;
    if (std::abs(in.z) > options.outlier_gate) {
      in.outlier = true;
      r(k) = std::max(var_obs, d * d / (options.outlier_gate * options.outlier_gate) - var_pred);
    }
    in.noise_std = std::sqrt(r(k));
  }
  // Perturbed observations, centred so that their mean is the observation itself.
  Eigen::MatrixXd eps(m, n_members);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (Eigen::Index j = 0; j < n_members; ++j)
    for (Eigen::Index k = 0; k < m; ++k) eps(k, j) = normal(rng) * std::sqrt(r(k));
  eps = eps.colwise() - eps.rowwise().mean();
  // K = C_xy (C_yy + R)^-1, applied to each member's innovation.
  const Eigen::MatrixXd innovations = (eps.colwise() + observed) - hx;
  if (m <= n_members) {
    const Eigen::MatrixXd c_xy = a * ha.transpose() / nm1;
    Eigen::MatrixXd s = ha * ha.transpose() / nm1;
    s.diagonal() += r;
    ensemble += c_xy * s.ldlt().solve(innovations);
    return out;
  }
  // More readings than members: C_yy + R = R + HA HA^T / (N - 1) has rank N above the diagonal
  // R, so (Woodbury) its inverse is R^-1 - R^-1 HA G^-1 HA^T R^-1 with the N x N matrix
  // G = (N - 1) I + HA^T R^-1 HA: the same analysis in O(m N^2) time and O(m N) memory instead of
  // O(m^3) and O(m^2) (10,000 readings in one request took 99 s and 1.9 GB).
  const Eigen::VectorXd r_inv = r.cwiseInverse();
  const Eigen::MatrixXd w = r_inv.asDiagonal() * innovations;  // R^-1 innovations
  const Eigen::MatrixXd rha = r_inv.asDiagonal() * ha;           // R^-1 HA
  Eigen::MatrixXd g = ha.transpose() * rha;
  g.diagonal().array() += nm1;
  const Eigen::MatrixXd x = w - rha * g.ldlt().solve(ha.transpose() * w);  // (C_yy + R)^-1 innovations
  ensemble += a * (ha.transpose() * x) / nm1;
  return out;
}

}  // namespace doppel::twin
