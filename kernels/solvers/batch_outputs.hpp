// The twin's outputs for a block of scenarios, evaluated on the executor where the fields live
// (issue 14, item 1). Both steps of kernels/fem/outputs.hpp run as block kernels
// (kernels/fem/output_kernels.hpp): the site components as z = z0 + Z_T T + Z_u u, one sparse
// product per field with the output operator (OutputEvaluator::linearize), or as z = z0 + Z C
// from the site components Z of a superposition's modes (one GEMM); then the site functions
// and the reductions over the sites. Only the outputs (outputs x scenarios numbers) leave the
// executor. Site components are formed in column blocks of bounded size, so a max over every
// node of a large mesh does not hold rows x batch numbers at once.
#pragma once

#include <algorithm>
#include <memory>
#include <vector>

#include <Eigen/Core>

#include "kernels/executor.hpp"
#include "kernels/fem/output_kernels.hpp"
#include "kernels/fem/outputs.hpp"

namespace doppel {

class BatchOutputs {
 public:
  // The outputs of `ev` through its operator `lin` (built for the block's materials).
  BatchOutputs(std::shared_ptr<const Executor> exec, const OutputEvaluator& ev, const LinearOutputs& lin);
  // The outputs of `ev` from the site components of M modes: z0 (rows) and Z (rows x M, each
  // column the site components of one mode less z0), so z(c) = z0 + Z c.
  BatchOutputs(std::shared_ptr<const Executor> exec, const OutputEvaluator& ev, const Eigen::VectorXd& z0,
               const Eigen::MatrixXd& Z);

  size_t outputs() const { return specs_host_.size(); }
  size_t rows() const { return rows_; }
  size_t bytes() const;  // held on the executor
  const std::shared_ptr<const Executor>& executor() const { return exec_; }
  // Site components held at once (values; default about 32 MB on the host, 256 MB on a device).
  void set_block_values(size_t values) { block_values_ = std::max<size_t>(1, values); }

  // Outputs [scenario][output] of `width` scenarios whose fields are T (nT x ld) and u (nU x ld)
  // multi-vectors on the executor, from column `first` (either null without that physics).
  std::vector<std::vector<double>> evaluate(const double* T, const double* u, int ld, int first, int width) const;
  // The same for host fields, column-major (n x S Eigen matrices, columns [first, first + width)):
  // staged in the executor's layout a column block at a time.
  std::vector<std::vector<double>> evaluate(const Eigen::MatrixXd* T, const Eigen::MatrixXd* u, Eigen::Index first,
                                            Eigen::Index width) const;
  // Outputs of the modes' combinations C (M x S, host): built with the modes' constructor.
  std::vector<std::vector<double>> evaluate_modes(const Eigen::MatrixXd& C) const;

  // Site components (rows x width multi-vector, ld = width) of fields as in evaluate().
  void site_components(const double* T, const double* u, int ld, int first, int width, double* z) const;
  // Outputs of site components z (rows x ld multi-vector, columns [0, width)).
  std::vector<std::vector<double>> reduce(const double* z, int ld, int width) const;

 private:
  void set_reductions(const OutputEvaluator& ev);
  int block_width(int width) const;  // columns of site components formed at once

  std::shared_ptr<const Executor> exec_;
  size_t rows_ = 0;
  size_t block_values_ = 0;  // 0: the executor's default
  int max_sites_ = 0;
  // The operator (fields) or the modes.
  Array<int> t_ptr_, t_col_, u_ptr_, u_col_;
  Array<double> t_val_, u_val_, z0_, modes_;
  CsrView ZT_, Zu_;
  int nT_ = 0, nU_ = 0, M_ = 0;
  std::vector<OutputReduction> specs_host_;
  Array<OutputReduction> specs_;
  Array<double> weights_;
  // Working blocks kept between calls (fresh pages cost more than the products on the host):
  // an object serves one caller at a time, like its executor.
  mutable Array<double> z_, values_;
  mutable Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> FT_, FU_;  // host fields, staged
  double* scratch(Array<double>& a, size_t n) const;
};

}  // namespace doppel
