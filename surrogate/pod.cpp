#include "surrogate/pod.hpp"

#include <algorithm>
#include <cmath>
#include <iostream>

#include "kernels/fem/assembly.hpp"
#include "spec/errors.hpp"

namespace doppel {

MassMatrix::MassMatrix(const Mesh& mesh) : pattern_(cell_pattern(mesh, 1, 1)) {
  values_.assign(pattern_.nnz(), 0.0);
  for (size_t r = 0; r < mesh.region_names.size(); ++r)
    add_mass(mesh, pattern_, static_cast<int>(r), 1.0, values_.data());
}

void MassMatrix::apply(const double* x, double* y, int components) const {
  const int n = pattern_.rows;
  for (int i = 0; i < n; ++i) {
    for (int a = 0; a < components; ++a) {
      double s = 0;
      for (int k = pattern_.row_ptr[static_cast<size_t>(i)]; k < pattern_.row_ptr[static_cast<size_t>(i) + 1]; ++k)
        s += values_[static_cast<size_t>(k)] * x[static_cast<size_t>(pattern_.col[static_cast<size_t>(k)]) * static_cast<size_t>(components) + static_cast<size_t>(a)];
      y[static_cast<size_t>(i) * static_cast<size_t>(components) + static_cast<size_t>(a)] = s;
    }
  }
}

double MassMatrix::inner(const double* x, const double* y, int components) const {
  std::vector<double> My(static_cast<size_t>(pattern_.rows) * static_cast<size_t>(components));
  apply(y, My.data(), components);
  double s = 0;
  for (size_t i = 0; i < My.size(); ++i) s += x[i] * My[i];
  return s;
}

Eigen::MatrixXd MassMatrix::apply(const Eigen::MatrixXd& X, int components) const {
  Eigen::MatrixXd Y(X.rows(), X.cols());
  for (Eigen::Index j = 0; j < X.cols(); ++j) apply(X.col(j).data(), Y.col(j).data(), components);
  return Y;
}

Eigen::VectorXd PodBasis::project(const MassMatrix& M, const double* x) const {
  Eigen::VectorXd d = Eigen::Map<const Eigen::VectorXd>(x, mean.size()) - mean;
  Eigen::VectorXd Md(d.size());
  M.apply(d.data(), Md.data(), components);
  return modes.transpose() * Md;
}

PodBasis compute_pod(Eigen::MatrixXd snapshots, const MassMatrix& M, int components,
                     const PodOptions& options) {
  DOPPEL_VERIFY(snapshots.cols() >= 2, "samples", "POD needs at least 2 snapshots");
  DOPPEL_VERIFY(snapshots.rows() == static_cast<Eigen::Index>(M.nodes()) * components, "snapshots",
                "field size does not match the mesh");
  PodBasis b;
  b.components = components;
  b.mean = snapshots.rowwise().mean();
  Eigen::MatrixXd& D = snapshots;  // centred in place
  D.colwise() -= b.mean;
  const Eigen::Index N = D.cols(), nc = D.rows();
  Eigen::VectorXd lam;
  Eigen::MatrixXd psi;  // snapshot coefficients of the modes (method of snapshots), or
  Eigen::MatrixXd phi;  // the modes themselves (fewer unknowns than snapshots)
  if (nc < N) {
    // Fewer unknowns than snapshots (long transient runs on small meshes): the nc x nc problem
    // (M D D^T M) v = lambda M v with v^T M v = 1 has the nonzero eigenvalues of D^T M D and
    // the modes themselves, at O(nc^2 N) instead of O(N^3).
    const Eigen::MatrixXd Md = M.apply(Eigen::MatrixXd::Identity(nc, nc), components);
    const Eigen::MatrixXd MD = Md * D;
    Eigen::MatrixXd A = MD * MD.transpose();
    A = 0.5 * (A + A.transpose()).eval();
    Eigen::GeneralizedSelfAdjointEigenSolver<Eigen::MatrixXd> eig(A, Md);
    lam = eig.eigenvalues().reverse();
    phi = eig.eigenvectors().rowwise().reverse();
  } else {
    // Method of snapshots: D^T M D by blocks of columns, no full copy of the snapshots.
    const Eigen::Index block = 64;
    Eigen::MatrixXd C(N, N);
    for (Eigen::Index j = 0; j < N; j += block) {
      const Eigen::Index w = std::min(block, N - j);
      const Eigen::MatrixXd MDj = M.apply(Eigen::MatrixXd(D.middleCols(j, w)), components);
      C.middleCols(j, w) = D.transpose() * MDj;
    }
    C = 0.5 * (C + C.transpose()).eval();
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(C);
    lam = eig.eigenvalues().reverse();
    psi = eig.eigenvectors().rowwise().reverse();
  }
  const double total = std::max(0.0, lam.sum());
  const double floor = std::max(1e-13 * std::max(lam(0), 0.0), 1e-300);
  int rank = 0;
  double acc = 0;
  for (Eigen::Index i = 0; i < lam.size() && lam(i) > floor; ++i) b.eigenvalues.push_back(lam(i));
  for (double l : b.eigenvalues) {
    if (rank >= options.max_rank) break;
    if (total > 0 && acc >= options.energy * total) break;
    acc += l;
    ++rank;
  }
  rank = std::max(rank, std::min<int>(1, static_cast<int>(b.eigenvalues.size())));
  b.captured = total > 0 ? acc / total : 1.0;
  b.modes.resize(snapshots.rows(), rank);
  for (int j = 0; j < rank; ++j)
    b.modes.col(j) = phi.size() ? Eigen::VectorXd(phi.col(j))
                                : Eigen::VectorXd(D * psi.col(j) / std::sqrt(b.eigenvalues[static_cast<size_t>(j)]));
  // Re-orthonormalise in the M inner product (two passes of modified Gram-Schmidt).
  for (int pass = 0; pass < 2; ++pass) {
    for (int j = 0; j < rank; ++j) {
      Eigen::VectorXd Mv(b.modes.rows());
      for (int i = 0; i < j; ++i) {
        M.apply(b.modes.col(i).data(), Mv.data(), components);
        b.modes.col(j) -= Mv.dot(b.modes.col(j)) * b.modes.col(i);
      }
      M.apply(b.modes.col(j).data(), Mv.data(), components);
      b.modes.col(j) /= std::sqrt(Mv.dot(b.modes.col(j)));
    }
  }
  return b;
}

}  // namespace doppel
