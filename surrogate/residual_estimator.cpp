#include "surrogate/residual_estimator.hpp"

#include <cmath>

#include "kernels/host/parallel.hpp"
#include "spec/errors.hpp"

namespace doppel {
namespace {

std::vector<size_t> terms_with_loads(const ReducedSpace& space) {
  std::vector<size_t> out;
  for (size_t m = 0; m < space.terms().size(); ++m)
    if (!space.terms()[m].load.empty()) out.push_back(m);
  return out;
}

}  // namespace

size_t ResidualEstimator::size_for(const ReducedSpace& space) {
  const size_t K = space.op().num_terms();
  return terms_with_loads(space).size() + K * space.lift_terms().size() + K +
         K * static_cast<size_t>(space.rank());
}

ResidualEstimator::ResidualEstimator(const ReducedSpace& space, Params theta0, const MassMatrix& M,
                                     Eigen::MatrixXd gram)
    : space_(space), theta0_(std::move(theta0)), M_(M), q_(size_for(space)), gram_(std::move(gram)),
      load_terms_(terms_with_loads(space)) {
  DOPPEL_VERIFY(gram_.rows() == static_cast<Eigen::Index>(q_) && gram_.cols() == static_cast<Eigen::Index>(q_),
                "estimator", "residual Gram matrix is " + std::to_string(gram_.rows()) + " x " +
                                 std::to_string(gram_.cols()) + ", the model needs " + std::to_string(q_));
}

ResidualEstimator::ResidualEstimator(const ReducedSpace& space, Params theta0, const MassMatrix& M)
    : space_(space), theta0_(std::move(theta0)), M_(M), q_(size_for(space)), load_terms_(terms_with_loads(space)) {
  const AffineOperator& op = space.op();
  const size_t K = op.num_terms();
  const Eigen::Index n = op.size();
  Eigen::MatrixXd R = Eigen::MatrixXd::Zero(n, static_cast<Eigen::Index>(q_));
  std::vector<Eigen::VectorXd> sources;  // fields the operator terms act on
  for (size_t i = 0; i < space.lift_terms().size(); ++i) sources.push_back(space.lift_vector(i));
  sources.push_back(space.basis().mean);
  for (int j = 0; j < space.rank(); ++j) sources.push_back(space.basis().modes.col(j));
  Eigen::Index q = 0;
  for (size_t m : load_terms_) {
    R.col(q++) = Eigen::Map<const Eigen::VectorXd>(space.terms()[m].load.data(), n);
  }
  // Columns in the order of features(): per lift term i, per k; then per k (mean); then per k, j.
  const size_t L = space.lift_terms().size(), r = static_cast<size_t>(space.rank());
  std::vector<std::pair<size_t, size_t>> jobs;  // (k, source)
  for (size_t k = 0; k < K; ++k)
    for (size_t i = 0; i < L; ++i) jobs.emplace_back(k, i);
  for (size_t k = 0; k < K; ++k) jobs.emplace_back(k, L);
  for (size_t k = 0; k < K; ++k)
    for (size_t j = 0; j < r; ++j) jobs.emplace_back(k, L + 1 + j);
  const Eigen::Index first = q;
  parallel_for(jobs.size(), [&](size_t t) {
    Params e(K, 0.0);
    e[jobs[t].first] = 1.0;
    op.apply_free_rows(e.data(), sources[jobs[t].second].data(), R.col(first + static_cast<Eigen::Index>(t)).data());
  });
  nominal_ = std::make_unique<BatchedSolver>(op);
  Eigen::MatrixXd X = Eigen::MatrixXd::Zero(n, R.cols());
  nominal_->solve_shared(theta0_, R, X);
  const Eigen::MatrixXd MX = M.apply(X, space.components());
  gram_ = X.transpose() * MX;
  gram_ = 0.5 * (gram_ + gram_.transpose());
}

ResidualEstimator::~ResidualEstimator() = default;

void ResidualEstimator::features(const Params& theta, const Params& p, const double* c, double* psi) const {
  const size_t K = theta.size();
  size_t q = 0;
  for (size_t m : load_terms_) psi[q++] = space_.terms()[m].coef(p);
  const std::vector<double> phi = space_.lift_coefficients(p);
  for (size_t k = 0; k < K; ++k)
    for (double f : phi) psi[q++] = -theta[k] * f;
  for (size_t k = 0; k < K; ++k) psi[q++] = -theta[k];
  for (size_t k = 0; k < K; ++k)
    for (int j = 0; j < space_.rank(); ++j) psi[q++] = -theta[k] * c[j];
}

void ResidualEstimator::step_features(const std::vector<double>& w, const Params& theta,
                                      const std::vector<double>& phi_new, const double* c_new, const Params& mu,
                                      const std::vector<double>& phi_old, double s_old, const double* c_old,
                                      double* psi) const {
  const size_t K = theta.size();
  size_t q = 0;
  for (double v : w) psi[q++] = v;
  for (size_t k = 0; k < K; ++k)
    for (size_t i = 0; i < phi_new.size(); ++i) psi[q++] = -theta[k] * phi_new[i] + mu[k] * phi_old[i];
  for (size_t k = 0; k < K; ++k) psi[q++] = -theta[k] + mu[k] * s_old;
  for (size_t k = 0; k < K; ++k)
    for (int j = 0; j < space_.rank(); ++j) psi[q++] = -theta[k] * c_new[j] + mu[k] * c_old[j];
}

double ResidualEstimator::norm(const double* psi) const {
  const Eigen::Map<const Eigen::VectorXd> v(psi, static_cast<Eigen::Index>(q_));
  return std::sqrt(std::max(0.0, v.dot(gram_ * v)));
}

Eigen::VectorXd ResidualEstimator::precondition(const Eigen::VectorXd& r) const {
  if (!nominal_) nominal_ = std::make_unique<BatchedSolver>(space_.op());
  Eigen::MatrixXd B = r, X = Eigen::MatrixXd::Zero(r.size(), 1);
  nominal_->solve_shared(theta0_, B, X);
  return X.col(0);
}

double ResidualEstimator::explicit_norm(const Params& theta, const Params& p, const double* x) const {
  const AffineOperator& op = space_.op();
  const Eigen::Index n = op.size();
  Eigen::VectorXd r = Eigen::VectorXd::Zero(n), Ax(n);
  for (size_t m : load_terms_) r += space_.terms()[m].coef(p) * Eigen::Map<const Eigen::VectorXd>(space_.terms()[m].load.data(), n);
  op.apply_free_rows(theta.data(), x, Ax.data());
  r -= Ax;
  const Eigen::VectorXd e = precondition(r);
  return std::sqrt(std::max(0.0, M_.inner(e.data(), e.data(), space_.components())));
}

}  // namespace doppel
