#include "kernels/solvers/batch_outputs.hpp"

#include <algorithm>
#include <limits>

#include "kernels/solvers/batched_cg_kernels.hpp"  // multiply_basis
#include "spec/errors.hpp"

namespace doppel {
namespace {

using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Csr = Eigen::SparseMatrix<double, Eigen::RowMajor, int>;

// Site components formed at once: about 32 MB on the host, 256 MB on a device.
size_t block_values(const Executor& exec) {
  return exec.backend() == Backend::cuda ? size_t{32} << 20 : size_t{4} << 20;
}

}  // namespace

BatchOutputs::BatchOutputs(std::shared_ptr<const Executor> exec, const OutputEvaluator& ev, const LinearOutputs& lin)
    : exec_(std::move(exec)), rows_(lin.rows()) {
  DOPPEL_ASSERT(lin.rows() == ev.total_components());
  auto upload = [&](const Csr& A, Array<int>& ptr, Array<int>& col, Array<double>& val, CsrView& view) {
    DOPPEL_ASSERT(A.isCompressed());
    ptr = Array<int>(exec_, A.outerIndexPtr(), static_cast<size_t>(A.outerSize()) + 1);
    col = Array<int>(exec_, A.innerIndexPtr(), static_cast<size_t>(A.nonZeros()));
    val = Array<double>(exec_, A.valuePtr(), static_cast<size_t>(A.nonZeros()));
    view = CsrView{static_cast<int>(A.rows()), static_cast<int>(A.cols()), ptr.data(), col.data(), val.data()};
  };
  nT_ = static_cast<int>(lin.ZT.cols());
  nU_ = static_cast<int>(lin.Zu.cols());
  if (nT_ > 0) upload(lin.ZT, t_ptr_, t_col_, t_val_, ZT_);
  if (nU_ > 0) upload(lin.Zu, u_ptr_, u_col_, u_val_, Zu_);
  z0_ = Array<double>(exec_, lin.z0.data(), rows_);
  set_reductions(ev);
}

BatchOutputs::BatchOutputs(std::shared_ptr<const Executor> exec, const OutputEvaluator& ev, const Eigen::VectorXd& z0,
                           const Eigen::MatrixXd& Z)
    : exec_(std::move(exec)), rows_(static_cast<size_t>(z0.size())), M_(static_cast<int>(Z.cols())) {
  DOPPEL_ASSERT(rows_ == ev.total_components() && static_cast<size_t>(Z.rows()) == rows_);
  // [Z z0], row-major: the combinations are one product with [C; 1].
  RowMajor Zz(Z.rows(), Z.cols() + 1);
  Zz.leftCols(Z.cols()) = Z;
  Zz.col(Z.cols()) = z0;
  modes_ = Array<double>(exec_, Zz.data(), static_cast<size_t>(Zz.size()));
  set_reductions(ev);
}

void BatchOutputs::set_reductions(const OutputEvaluator& ev) {
  std::vector<double> weights;
  for (size_t k = 0; k < ev.size(); ++k) {
    OutputReduction o;
    o.function = static_cast<int>(ev.site_function(k));
    o.reduce = static_cast<int>(ev.request(k).reduce);
    o.components = ev.components(k);
    DOPPEL_VERIFY(ev.num_sites(k) > 0 && ev.num_sites(k) <= static_cast<size_t>(std::numeric_limits<int>::max()),
                  "outputs[" + std::to_string(k) + "]", "has no sites, or too many");
    o.sites = static_cast<int>(ev.num_sites(k));
    o.offset = ev.offset(k);
    o.weights = weights.size();
    o.weight_sum = 0;
    if (o.reduce == static_cast<int>(SiteReduction::mean)) {
      const std::vector<double>& w = ev.site_weights(k);
      DOPPEL_ASSERT(w.size() == ev.num_sites(k));
      for (double x : w) o.weight_sum += x;  // in the order OutputEvaluator::reduce sums them
      weights.insert(weights.end(), w.begin(), w.end());
    }
    max_sites_ = std::max(max_sites_, o.sites);
    specs_host_.push_back(o);
  }
  specs_ = Array<OutputReduction>(exec_, specs_host_);
  weights_ = Array<double>(exec_, weights);
}

size_t BatchOutputs::bytes() const {
  return (t_ptr_.size() + t_col_.size() + u_ptr_.size() + u_col_.size()) * sizeof(int) +
         (t_val_.size() + u_val_.size() + z0_.size() + modes_.size() + weights_.size() + z_.size() + values_.size()) *
             sizeof(double) +
         specs_.size() * sizeof(OutputReduction);
}

int BatchOutputs::block_width(int width) const {
  const size_t cols = (block_values_ ? block_values_ : block_values(*exec_)) / std::max<size_t>(1, rows_);
  return static_cast<int>(std::clamp<size_t>(cols, 1, static_cast<size_t>(std::max(1, width))));
}

void BatchOutputs::site_components(const double* T, const double* u, int ld, int first, int width, double* z) const {
  DOPPEL_ASSERT(M_ == 0);
  const int rows = static_cast<int>(rows_);
  DOPPEL_RUN(*exec_, broadcast_rows, rows, width, z0_.data(), z, width);
  if (T && nT_ > 0) DOPPEL_RUN(*exec_, csr_multiply_add, ZT_, width, T + first, ld, z, width);
  if (u && nU_ > 0) DOPPEL_RUN(*exec_, csr_multiply_add, Zu_, width, u + first, ld, z, width);
}

double* BatchOutputs::scratch(Array<double>& a, size_t n) const {
  if (a.size() < n) a = Array<double>(exec_, n);
  return a.data();
}

std::vector<std::vector<double>> BatchOutputs::reduce(const double* z, int ld, int width) const {
  const size_t K = outputs();
  std::vector<std::vector<double>> out(static_cast<size_t>(width), std::vector<double>(K));
  if (K == 0 || width == 0) return out;
  double* values = scratch(values_, K * static_cast<size_t>(width));
  DOPPEL_RUN(*exec_, reduce_outputs, specs_.data(), static_cast<int>(K), max_sites_, weights_.data(), z, ld, width,
             values);
  std::vector<double> v(K * static_cast<size_t>(width));
  exec_->copy_to_host(v.data(), values, v.size() * sizeof(double));
  for (size_t k = 0; k < K; ++k)
    for (int s = 0; s < width; ++s) out[static_cast<size_t>(s)][k] = v[k * static_cast<size_t>(width) + static_cast<size_t>(s)];
  return out;
}

std::vector<std::vector<double>> BatchOutputs::evaluate(const double* T, const double* u, int ld, int first,
                                                        int width) const {
  std::vector<std::vector<double>> out;
  out.reserve(static_cast<size_t>(width));
  const int block = block_width(width);
  double* z = scratch(z_, rows_ * static_cast<size_t>(block));
  for (int c0 = 0; c0 < width; c0 += block) {
    const int w = std::min(block, width - c0);
    site_components(T, u, ld, first + c0, w, z);
    for (auto& v : reduce(z, w, w)) out.push_back(std::move(v));
  }
  return out;
}

std::vector<std::vector<double>> BatchOutputs::evaluate(const Eigen::MatrixXd* T, const Eigen::MatrixXd* u,
                                                        Eigen::Index first, Eigen::Index width) const {
  std::vector<std::vector<double>> out;
  out.reserve(static_cast<size_t>(width));
  const bool host = exec_->backend() == Backend::host;
  const int block = block_width(static_cast<int>(width));
  RowMajor& FT = FT_;
  RowMajor& FU = FU_;
  for (Eigen::Index c0 = 0; c0 < width; c0 += block) {
    const Eigen::Index w = std::min<Eigen::Index>(block, width - c0);
    // The block's fields in the executor's layout: used in place on the host, copied to a device.
    Array<double> dT, dU;
    const double* pT = nullptr;
    const double* pU = nullptr;
    if (T && nT_ > 0) {
      FT = T->middleCols(first + c0, w);
      if (host) pT = FT.data();
      else dT = Array<double>(exec_, FT.data(), static_cast<size_t>(FT.size())), pT = dT.data();
    }
    if (u && nU_ > 0) {
      FU = u->middleCols(first + c0, w);
      if (host) pU = FU.data();
      else dU = Array<double>(exec_, FU.data(), static_cast<size_t>(FU.size())), pU = dU.data();
    }
    for (auto& v : evaluate(pT, pU, static_cast<int>(w), 0, static_cast<int>(w))) out.push_back(std::move(v));
  }
  return out;
}

std::vector<std::vector<double>> BatchOutputs::evaluate_modes(const Eigen::MatrixXd& C) const {
  DOPPEL_ASSERT(M_ > 0 && C.rows() == M_);
  const int width = static_cast<int>(C.cols());
  std::vector<std::vector<double>> out;
  out.reserve(static_cast<size_t>(width));
  const int block = block_width(width);
  double* z = scratch(z_, rows_ * static_cast<size_t>(block));
  RowMajor Cb(M_ + 1, block);
  for (int c0 = 0; c0 < width; c0 += block) {
    const int w = std::min(block, width - c0);
    Cb.resize(M_ + 1, w);
    Cb.topRows(M_) = C.middleCols(c0, w);
    Cb.row(M_).setOnes();
    const Array<double> Cd(exec_, Cb.data(), static_cast<size_t>(Cb.size()));
    DOPPEL_RUN(*exec_, multiply_basis, static_cast<int>(rows_), M_ + 1, w, modes_.data(), Cd.data(), z);
    for (auto& v : reduce(z, w, w)) out.push_back(std::move(v));
  }
  return out;
}

}  // namespace doppel
