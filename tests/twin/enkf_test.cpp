// The ensemble Kalman filter's analysis step against the exact Kalman filter of a linear
// Gaussian problem (reference: the closed-form update K = P H^T (H P H^T + R)^-1,
// mean + K (y - H mean), (I - K H) P), with its outlier handling and inflation.
#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "twin/enkf.hpp"

namespace {

using doppel::twin::EnkfOptions;
using doppel::twin::enkf_analysis;
using Eigen::MatrixXd;
using Eigen::VectorXd;

struct Problem {
  VectorXd mean;
  MatrixXd cov, h;
  VectorXd noise;
};

Problem problem() {
  Problem p;
  p.mean = VectorXd(3);
  p.mean << 10, -2, 5;
  MatrixXd l(3, 3);
  l << 2, 0, 0, 0.6, 1.5, 0, -0.4, 0.3, 0.8;
  p.cov = l * l.transpose();
  p.h = MatrixXd(2, 3);
  p.h << 1, 0.5, 0, 0, -1, 2;
  p.noise = VectorXd(2);
  p.noise << 0.7, 1.2;
  return p;
}

MatrixXd sample(const Problem& p, int n, std::mt19937_64& rng) {
  const MatrixXd l = p.cov.llt().matrixL();
  std::normal_distribution<double> normal;
  MatrixXd x(3, n);
  for (int j = 0; j < n; ++j) {
    VectorXd z(3);
    for (int i = 0; i < 3; ++i) z(i) = normal(rng);
    x.col(j) = p.mean + l * z;
  }
  return x;
}

MatrixXd covariance(const MatrixXd& x) {
  const MatrixXd a = x.colwise() - x.rowwise().mean();
  return a * a.transpose() / static_cast<double>(x.cols() - 1);
}

TEST(Enkf, MatchesTheKalmanFilterOnALinearGaussianProblem) {
  const Problem p = problem();
  std::mt19937_64 rng(7);
  MatrixXd x = sample(p, 40000, rng);
  VectorXd y(2);
  y << 12.0, 9.0;
  const MatrixXd hx = p.h * x;
  const auto innov = enkf_analysis(x, hx, y, p.noise, EnkfOptions{}, rng);
  // Exact update with the ensemble's own prior moments (isolates the analysis from prior sampling).
  MatrixXd r = p.noise.array().square().matrix().asDiagonal();
  const MatrixXd prior_cov = p.cov;
  const MatrixXd k = prior_cov * p.h.transpose() * (p.h * prior_cov * p.h.transpose() + r).inverse();
  const VectorXd mean = p.mean + k * (y - p.h * p.mean);
  const MatrixXd cov = (MatrixXd::Identity(3, 3) - k * p.h) * prior_cov;
  const VectorXd got_mean = x.rowwise().mean();
  const MatrixXd got_cov = covariance(x);
  for (int i = 0; i < 3; ++i) {
    // Tolerance: five standard errors of a 40 000-member prior mean.
    EXPECT_NEAR(got_mean(i), mean(i), 5 * std::sqrt(prior_cov(i, i) / 40000.0)) << i;
    for (int j = 0; j < 3; ++j) EXPECT_NEAR(got_cov(i, j), cov(i, j), 0.05 * std::sqrt(cov(i, i) * cov(j, j)) + 1e-3) << i << j;
  }
  // Innovation statistics of the forecast.
  const VectorXd hm = p.h * p.mean;
  const MatrixXd s = p.h * p.cov * p.h.transpose() + r;
  for (int k2 = 0; k2 < 2; ++k2) {
    EXPECT_NEAR(innov[static_cast<size_t>(k2)].predicted_mean, hm(k2), 0.05);
    EXPECT_NEAR(innov[static_cast<size_t>(k2)].z, (y(k2) - hm(k2)) / std::sqrt(s(k2, k2)), 0.02);
    EXPECT_FALSE(innov[static_cast<size_t>(k2)].outlier);
  }
}

TEST(Enkf, GrossOutliersAreFlaggedAndDownWeighted) {
  const Problem p = problem();
  std::mt19937_64 rng(11);
  const MatrixXd prior = sample(p, 4000, rng);
  VectorXd y = p.h * p.mean;
  y(1) += 60;  // ~20 predicted standard deviations off
  MatrixXd gated = prior;
  EnkfOptions strict;
  strict.outlier_gate = 4;
  const auto in = enkf_analysis(gated, p.h * prior, y, p.noise, strict, rng);
  EXPECT_TRUE(in[1].outlier);
  EXPECT_GT(in[1].z, 10);
  EXPECT_GT(in[1].noise_std, 5 * p.noise(1));
  EXPECT_FALSE(in[0].outlier);
  MatrixXd trusting = prior;
  EnkfOptions lax;
  lax.outlier_gate = 1e9;
  enkf_analysis(trusting, p.h * prior, y, p.noise, lax, rng);
  const double moved_gated = (gated.rowwise().mean() - prior.rowwise().mean()).norm();
  const double moved_trusting = (trusting.rowwise().mean() - prior.rowwise().mean()).norm();
  EXPECT_LT(moved_gated, 0.3 * moved_trusting);
  // The gated reading still pulls, as if it were gate standard deviations away.
  EXPECT_GT(moved_gated, 0.0);
}

TEST(Enkf, WhenMostReadingsJumpTheEnsembleFollowsInsteadOfFlaggingThem) {
  // Every observation is ~20 predicted standard deviations off: the asset changed. The adaptive
  // inflation lets the analysis reach the readings; no reading is called an outlier.
  const Problem p = problem();
  std::mt19937_64 rng(13);
  const MatrixXd prior = sample(p, 4000, rng);
  const VectorXd shifted = p.mean + VectorXd::Constant(3, 25.0);
  const VectorXd y = p.h * shifted;
  MatrixXd x = prior;
  double lambda = 0;
  const auto in = enkf_analysis(x, p.h * prior, y, p.noise, EnkfOptions{}, rng, &lambda);
  EXPECT_GT(lambda, 3);
  EXPECT_FALSE(in[0].outlier);
  EXPECT_FALSE(in[1].outlier);
  const VectorXd hm = p.h * VectorXd(x.rowwise().mean());
  for (int k = 0; k < 2; ++k) EXPECT_NEAR(hm(k), y(k), 3 * p.noise(k)) << k;
  // Without the adaptive inflation both readings are gross outliers.
  EnkfOptions off;
  off.max_adaptive_inflation = 1;
  MatrixXd stiff = prior;
  const auto gated = enkf_analysis(stiff, p.h * prior, y, p.noise, off, rng, &lambda);
  EXPECT_DOUBLE_EQ(lambda, 1);
  EXPECT_TRUE(gated[0].outlier && gated[1].outlier);
}

TEST(Enkf, InflationScalesAnomaliesAndNoReadingsChangeNothingElse) {
  const Problem p = problem();
  std::mt19937_64 rng(3);
  const MatrixXd prior = sample(p, 500, rng);
  MatrixXd x = prior;
  EnkfOptions o;
  o.inflation = 1.1;
  const auto in = enkf_analysis(x, MatrixXd(0, 500), VectorXd(0), VectorXd(0), o, rng);
  EXPECT_TRUE(in.empty());
  const MatrixXd expected = ((prior.colwise() - prior.rowwise().mean()) * 1.1).colwise() + prior.rowwise().mean();
  EXPECT_LT((x - expected).norm(), 1e-10 * expected.norm());
  MatrixXd bad = prior;
  EXPECT_THROW(enkf_analysis(bad, MatrixXd(2, 499), VectorXd(2), p.noise, o, rng), std::invalid_argument);
  EXPECT_THROW(enkf_analysis(bad, p.h * prior, VectorXd::Zero(2), VectorXd::Zero(2), o, rng), std::invalid_argument);
}

}  // namespace

namespace {

// More readings than members (30 against 8): the analysis goes through the N x N (Woodbury) form
// of (C_yy + R)^-1, linear in the readings instead of cubic. Reference: the dense m x m update
// K = C_xy (C_yy + R)^-1 on the same perturbed observations (the generator's draws replayed);
// equal to 1e-9 relative.
TEST(Enkf, ManyReadingsGiveTheDenseAnalysisInEnsembleSpace) {
  const Eigen::Index n = 3, N = 8, m = 30;
  std::mt19937_64 setup(11);
  std::normal_distribution<double> normal;
  MatrixXd x(n, N), hmat(m, n);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = 5 + normal(setup);
  for (Eigen::Index i = 0; i < hmat.size(); ++i) hmat.data()[i] = normal(setup);
  const MatrixXd hx = hmat * x;
  VectorXd noise(m), y(m);
  for (Eigen::Index k = 0; k < m; ++k) {
    noise(k) = 0.5 + 0.05 * static_cast<double>(k);
    y(k) = hx.row(k).mean() + 0.3 * normal(setup);
  }
  EnkfOptions o;
  o.inflation = 1.0;
  o.outlier_gate = 1e9;
  o.max_adaptive_inflation = 1.0;
  MatrixXd got = x;
  std::mt19937_64 rng(5);
  enkf_analysis(got, hx, y, noise, o, rng);
  // The dense reference on the same draws.
  std::mt19937_64 replay(5);
  MatrixXd eps(m, N);
  for (Eigen::Index j = 0; j < N; ++j)
    for (Eigen::Index k = 0; k < m; ++k) eps(k, j) = normal(replay) * noise(k);
  eps = eps.colwise() - eps.rowwise().mean();
  const MatrixXd a = x.colwise() - x.rowwise().mean(), ha = hx.colwise() - hx.rowwise().mean();
  MatrixXd s = ha * ha.transpose() / (N - 1.0);
  s.diagonal() += noise.cwiseProduct(noise);
  const MatrixXd want = x + (a * ha.transpose() / (N - 1.0)) * s.ldlt().solve((eps.colwise() + y) - hx);
  EXPECT_LT((got - want).norm(), 1e-9 * want.norm()) << (got - want).norm();
}

}  // namespace
