// Proper orthogonal decomposition of snapshot fields in the mass-matrix (L2) inner product,
// by the method of snapshots: the N x N correlation matrix D^T M D of the centred snapshots
// is diagonalised and the modes V = D Psi Lambda^{-1/2} are M-orthonormal. The rank is the
// smallest that captures the requested energy fraction, capped.
#pragma once

#include <Eigen/Dense>
#include <vector>

#include "kernels/fem/mesh.hpp"
#include "kernels/fem/sparse.hpp"

namespace doppel {

// The consistent mass matrix of the whole mesh, applied to fields with `components` values per
// node (node * components + a).
class MassMatrix {
 public:
  explicit MassMatrix(const Mesh& mesh);
  void apply(const double* x, double* y, int components) const;
  double inner(const double* x, const double* y, int components) const;
  Eigen::MatrixXd apply(const Eigen::MatrixXd& X, int components) const;  // column by column
  int nodes() const { return pattern_.rows; }

 private:
  CsrPattern pattern_;
  std::vector<double> values_;
};

struct PodOptions {
  double energy = 1.0 - 1e-8;  // fraction of the snapshot energy (about the mean) to capture
  int max_rank = 40;
};

struct PodBasis {
  int components = 1;                // values per node
  Eigen::VectorXd mean;              // n
  Eigen::MatrixXd modes;             // n x r, M-orthonormal
  std::vector<double> eigenvalues;   // all positive eigenvalues, descending (energy per mode)
  double captured = 1.0;             // energy fraction of the retained modes
  int rank() const { return static_cast<int>(modes.cols()); }
  // c = V^T M (x - mean)
  Eigen::VectorXd project(const MassMatrix& M, const double* x) const;
};

// snapshots: n x N, one field per column (taken by value: move it in to avoid a copy).
// Throws InvalidInput when there are fewer than 2.
PodBasis compute_pod(Eigen::MatrixXd snapshots, const MassMatrix& M, int components,
                     const PodOptions& options = {});

}  // namespace doppel
