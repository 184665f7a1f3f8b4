// The LibTorch code of the surrogate: ensemble training (mlp.hpp) and batched inference
// (engine.hpp). The only translation unit that includes torch headers, so the rest of the
// build stays fast. Stable C++ frontend only (LibTorch 1.13 and 2.x).
#include <torch/cuda.h>
#include <torch/optim/adam.h>
#include <torch/types.h>
#include <torch/utils.h>
#include <torch/version.h>

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <thread>

#include "kernels/host/parallel.hpp"
#include "spec/errors.hpp"
#include "surrogate/engine.hpp"
#include "surrogate/mlp.hpp"

namespace doppel {
namespace {

torch::Tensor host_tensor(const std::vector<float>& v, std::vector<int64_t> shape) {
  return torch::from_blob(const_cast<float*>(v.data()), shape, torch::kFloat32).clone();
}

torch::Tensor host_tensor(const double* v, std::vector<int64_t> shape) {
  return torch::from_blob(const_cast<double*>(v), shape, torch::kFloat64).clone();
}

std::vector<double> to_host(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kCPU, torch::kFloat64).contiguous();
  std::vector<double> out(static_cast<size_t>(c.numel()));
  if (!out.empty()) std::memcpy(out.data(), c.data_ptr<double>(), out.size() * sizeof(double));
  return out;
}

void use_all_cores() {
  static const bool once = [] {
    torch::set_num_threads(std::max(1, host_threads()));
    // Batched inference allocates and frees tensors of a few MB per chunk: keep them in the
    // heap instead of fresh zero-filled pages from mmap on every call (glibc).
    mallopt(M_MMAP_THRESHOLD, 32 << 20);  // the largest glibc accepts
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    return true;
  }();
  (void)once;
}

// Forward pass of all members: h [E, N, in] -> [E, N, out].
torch::Tensor forward(const std::vector<torch::Tensor>& W, const std::vector<torch::Tensor>& b, torch::Tensor h) {
  for (size_t l = 0; l < W.size(); ++l) {
    h = torch::baddbmm(b[l], h, W[l]);
    if (l + 1 < W.size()) h = torch::tanh(h);
  }
  return h;
}

}  // namespace

std::vector<int> MlpShape::widths() const {
  std::vector<int> w{inputs};
  w.insert(w.end(), hidden.begin(), hidden.end());
  w.push_back(outputs);
  return w;
}

std::string torch_version() { return TORCH_VERSION; }

MlpWeights train_mlp_ensemble(const std::vector<float>& Xv, const std::vector<float>& Yv, size_t N,
                              const MlpShape& shape, const MlpTrainOptions& opt, MlpTrainReport* report) {
  use_all_cores();
  // Small networks train fastest on one thread: the per-epoch tensors are too small for
  // intra-op threads to pay for their synchronisation (measured on the blade bundle).
  struct ThreadScope {
    int saved = torch::get_num_threads();
    ThreadScope() { torch::set_num_threads(1); }
    ~ThreadScope() { torch::set_num_threads(saved); }
  } one_thread;
  const auto start = std::chrono::steady_clock::now();
  const int E = shape.members;
  const std::vector<int> w = shape.widths();
  DOPPEL_VERIFY(E >= 1, "network.members", "must be at least 1");
  DOPPEL_VERIFY(N >= 4, "samples", "training needs at least 4 samples");
  DOPPEL_VERIFY(Xv.size() == N * static_cast<size_t>(shape.inputs) && Yv.size() == N * static_cast<size_t>(shape.outputs),
                "samples", "inputs and targets do not match the network shape");
  torch::manual_seed(opt.seed);
  const torch::Tensor X = host_tensor(Xv, {static_cast<int64_t>(N), shape.inputs});
  const torch::Tensor Y = host_tensor(Yv, {static_cast<int64_t>(N), shape.outputs});

  // Each member: its own validation split.
  const int64_t n_val = std::max<int64_t>(1, std::llround(opt.validation_fraction * static_cast<double>(N)));
  const int64_t n_tr = static_cast<int64_t>(N) - n_val;
  DOPPEL_VERIFY(n_tr >= 2, "samples", "too few samples for a training/validation split");
  std::vector<torch::Tensor> xt, yt, xv, yv;
  std::mt19937_64 rng(opt.seed);
  for (int e = 0; e < E; ++e) {
    std::vector<int64_t> perm(N);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    const torch::Tensor idx = torch::from_blob(perm.data(), {static_cast<int64_t>(N)}, torch::kInt64).clone();
    const torch::Tensor tr = idx.slice(0, 0, n_tr), va = idx.slice(0, n_tr);
    xt.push_back(X.index_select(0, tr));
    yt.push_back(Y.index_select(0, tr));
    xv.push_back(X.index_select(0, va));
    yv.push_back(Y.index_select(0, va));
  }
  const torch::Tensor Xt = torch::stack(xt), Yt = torch::stack(yt), Xva = torch::stack(xv), Yva = torch::stack(yv);

  torch::Tensor weight = torch::ones({1, 1, shape.outputs}, torch::kFloat32);
  if (!opt.output_weights.empty()) {
    DOPPEL_VERIFY(opt.output_weights.size() == static_cast<size_t>(shape.outputs), "output_weights",
                  "needs one weight per network output");
    weight = host_tensor(opt.output_weights, {1, 1, shape.outputs});
    weight = weight * (static_cast<double>(shape.outputs) / weight.sum().item<float>());
  }
  std::vector<torch::Tensor> W, b;
  for (size_t l = 0; l + 1 < w.size(); ++l) {
    const double a = std::sqrt(6.0 / (w[l] + w[l + 1]));
    W.push_back((torch::rand({E, w[l], w[l + 1]}, torch::kFloat32) * 2 - 1).mul_(a).set_requires_grad(true));
    b.push_back(torch::zeros({E, 1, w[l + 1]}, torch::kFloat32).set_requires_grad(true));
  }
  std::vector<torch::Tensor> params = W;
  params.insert(params.end(), b.begin(), b.end());
  torch::optim::Adam adam(params, torch::optim::AdamOptions(opt.learning_rate).weight_decay(opt.weight_decay));

  std::vector<torch::Tensor> bestW, bestb;
  for (auto& t : W) bestW.push_back(t.detach().clone());
  for (auto& t : b) bestb.push_back(t.detach().clone());
  std::vector<double> best(E, std::numeric_limits<double>::infinity()), best_train(E, 0.0);
  std::vector<int> best_epoch(E, 0);
  int epoch = 0;
  for (; epoch < opt.max_epochs; ++epoch) {
    const double frac = static_cast<double>(epoch) / std::max(1, opt.max_epochs);
    const double lr = opt.final_learning_rate + 0.5 * (opt.learning_rate - opt.final_learning_rate) * (1 + std::cos(M_PI * frac));
    for (auto& group : adam.param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
    adam.zero_grad();
    const torch::Tensor per_member = ((forward(W, b, Xt) - Yt).pow(2) * weight).mean({1, 2});
    per_member.sum().backward();
    adam.step();
    torch::NoGradGuard no_grad;
    const torch::Tensor val = ((forward(W, b, Xva) - Yva).pow(2) * weight).mean({1, 2});
    const std::vector<float> v(val.data_ptr<float>(), val.data_ptr<float>() + E);
    const std::vector<float> t(per_member.data_ptr<float>(), per_member.data_ptr<float>() + E);
    bool any_active = false;
    for (int e = 0; e < E; ++e) {
      if (v[static_cast<size_t>(e)] < best[static_cast<size_t>(e)]) {
        best[static_cast<size_t>(e)] = v[static_cast<size_t>(e)];
        best_train[static_cast<size_t>(e)] = t[static_cast<size_t>(e)];
        best_epoch[static_cast<size_t>(e)] = epoch;
        for (size_t l = 0; l < W.size(); ++l) {
          bestW[l][e].copy_(W[l][e]);
          bestb[l][e].copy_(b[l][e]);
        }
      }
      if (epoch - best_epoch[static_cast<size_t>(e)] < opt.patience) any_active = true;
    }
    if (opt.progress && (epoch % std::max(1, opt.report_every) == 0))
      opt.progress(epoch, std::accumulate(t.begin(), t.end(), 0.0) / E, std::accumulate(v.begin(), v.end(), 0.0) / E);
    if (!any_active) {
      ++epoch;
      break;
    }
  }
  if (opt.progress)
    opt.progress(epoch, std::accumulate(best_train.begin(), best_train.end(), 0.0) / E,
                 std::accumulate(best.begin(), best.end(), 0.0) / E);
  MlpWeights out;
  out.shape = shape;
  for (size_t l = 0; l < W.size(); ++l) {
    const torch::Tensor wl = bestW[l].contiguous(), bl = bestb[l].contiguous();
    out.W.emplace_back(wl.data_ptr<float>(), wl.data_ptr<float>() + wl.numel());
    out.b.emplace_back(bl.data_ptr<float>(), bl.data_ptr<float>() + bl.numel());
  }
  if (report) {
    report->epochs = epoch;
    report->best_epoch = best_epoch;
    report->validation = best;
    report->train = best_train;
    report->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return out;
}

std::vector<float> mlp_forward(const MlpWeights& net, const std::vector<float>& X, size_t N) {
  const std::vector<int> w = net.shape.widths();
  const int E = net.shape.members;
  std::vector<float> out(static_cast<size_t>(E) * N * static_cast<size_t>(w.back()));
  std::vector<float> h, next;
  for (int e = 0; e < E; ++e) {
    for (size_t s = 0; s < N; ++s) {
      h.assign(X.begin() + static_cast<long>(s * static_cast<size_t>(w[0])), X.begin() + static_cast<long>((s + 1) * static_cast<size_t>(w[0])));
      for (size_t l = 0; l + 1 < w.size(); ++l) {
        const size_t in = static_cast<size_t>(w[l]), o = static_cast<size_t>(w[l + 1]);
        const float* Wl = net.W[l].data() + static_cast<size_t>(e) * in * o;
        const float* bl = net.b[l].data() + static_cast<size_t>(e) * o;
        next.assign(bl, bl + o);
        for (size_t i = 0; i < in; ++i)
          for (size_t j = 0; j < o; ++j) next[j] += h[i] * Wl[i * o + j];
        if (l + 2 < w.size())
          for (float& v : next) v = std::tanh(v);
        h.swap(next);
      }
      std::copy(h.begin(), h.end(), out.begin() + static_cast<long>((static_cast<size_t>(e) * N + s) * static_cast<size_t>(w.back())));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Inference

struct InferenceEngine::Impl {
  std::shared_ptr<const EngineModel> m;
  std::string name;
  torch::Device device{torch::kCPU};
  std::vector<torch::Tensor> W, b;
  torch::Tensor coef_mean, coef_std, Lt, G, H, FT, Fu;
  std::vector<torch::Tensor> weights;  // per output (mean reductions)

  torch::Tensor dev(const Eigen::MatrixXd& a) const {
    // Eigen is column-major: the transpose of a row-major [cols, rows] block.
    return host_tensor(a.data(), {a.cols(), a.rows()}).t().contiguous().to(device);
  }
  torch::Tensor dev(const std::vector<double>& v, int64_t rows, int64_t cols) const {
    if (rows * cols == 0) return torch::zeros({rows, cols}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
    return host_tensor(v.data(), {rows, cols}).to(device);
  }

  torch::Tensor reduce(const torch::Tensor& comps) const {
    const int64_t S = comps.size(0);
    if (m->outputs.empty()) return torch::zeros({S, 0}, comps.options());
    std::vector<torch::Tensor> cols;
    for (size_t k = 0; k < m->outputs.size(); ++k) {
      const EngineOutput& o = m->outputs[k];
      const torch::Tensor c = comps.slice(1, static_cast<int64_t>(o.offset), static_cast<int64_t>(o.offset) + o.sites * o.components)
                                  .reshape({S, o.sites, o.components});
      torch::Tensor v;
      if (o.function == SiteFunction::identity) {
        v = c.select(2, 0);
      } else if (o.function == SiteFunction::norm) {
        v = c.pow(2).sum(2).sqrt();
      } else {
        const auto s = [&](int i) { return c.select(2, i); };
        v = (0.5 * ((s(0) - s(1)).pow(2) + (s(1) - s(2)).pow(2) + (s(2) - s(0)).pow(2)) +
             3.0 * (s(3).pow(2) + s(4).pow(2) + s(5).pow(2))).sqrt();
      }
      switch (o.reduce) {
        case spec::Reduction::none: cols.push_back(v.select(1, 0)); break;
        case spec::Reduction::max: cols.push_back(std::get<0>(v.max(1))); break;
        case spec::Reduction::min: cols.push_back(std::get<0>(v.min(1))); break;
        case spec::Reduction::mean: cols.push_back((v * weights[k]).sum(1) / weights[k].sum()); break;
      }
    }
    return torch::stack(cols, 1);
  }

  torch::Tensor z_of(const torch::Tensor& c, const torch::Tensor& liftT, const torch::Tensor& liftU) const {
    const int64_t S = c.size(0);
    std::vector<torch::Tensor> parts{torch::ones({S, 1}, c.options())};
    if (m->thermal) {
      parts.push_back(liftT);
      parts.push_back(c.slice(1, 0, m->rank_T));
    }
    if (m->mechanical) {
      parts.push_back(liftU);
      parts.push_back(c.slice(1, m->rank_T, m->rank_T + m->rank_u));
    }
    return torch::cat(parts, 1);
  }
};

InferenceEngine::InferenceEngine(std::shared_ptr<const EngineModel> model, const std::string& device)
    : impl_(std::make_unique<Impl>()) {
  use_all_cores();
  Impl& d = *impl_;
  d.m = std::move(model);
  d.name = device;
  if (device == "cuda") {
    if (!torch::cuda::is_available())
      throw Unavailable("the LibTorch this doppel is built with has no CUDA device available");
    d.device = torch::Device(torch::kCUDA, 0);
  } else if (device != "cpu") {
    throw InvalidInput("--device", "must be cpu or cuda, not '" + device + "'");
  }
  const EngineModel& m = *d.m;
  const std::vector<int> w = m.net.shape.widths();
  const int64_t E = m.net.shape.members;
  for (size_t l = 0; l + 1 < w.size(); ++l) {
    d.W.push_back(host_tensor(m.net.W[l], {E, w[l], w[l + 1]}).to(d.device));
    d.b.push_back(host_tensor(m.net.b[l], {E, 1, w[l + 1]}).to(d.device));
  }
  const int64_t R = static_cast<int64_t>(m.coef_mean.size());
  d.coef_mean = d.dev(m.coef_mean, 1, R);
  d.coef_std = d.dev(m.coef_std, 1, R);
  if (m.linear_outputs) d.Lt = d.dev(m.output_map).t().contiguous();
  d.G = d.dev(m.gram);
  d.H = d.dev(m.norm_gram);
  if (m.field_T.size()) d.FT = d.dev(m.field_T).t().contiguous();
  if (m.field_u.size()) d.Fu = d.dev(m.field_u).t().contiguous();
  for (const auto& o : m.outputs)
    d.weights.push_back(o.weights.empty() ? torch::Tensor() : d.dev(o.weights, 1, static_cast<int64_t>(o.weights.size())));
}

InferenceEngine::~InferenceEngine() = default;

const std::string& InferenceEngine::device() const { return impl_->name; }

bool InferenceEngine::cuda_available() { return torch::cuda::is_available(); }

EngineResult InferenceEngine::run(const EngineInputs& in, bool fields) const {
  const Impl& d = *impl_;
  const EngineModel& m = *d.m;
  torch::NoGradGuard no_grad;
  const int64_t S = static_cast<int64_t>(in.S);
  const int64_t P = m.net.shape.inputs, E = m.net.shape.members;
  const int64_t K = m.est_terms;
  EngineResult res;
  res.S = in.S;
  if (S == 0) return res;
  const torch::Tensor x = d.dev(in.x, S, P).to(torch::kFloat32);
  const torch::Tensor liftT = d.dev(in.lift_T, S, m.lift_T), liftU = d.dev(in.lift_u, S, m.lift_u);
  // Network ensemble -> coefficients.
  const torch::Tensor y = forward(d.W, d.b, x.unsqueeze(0).expand({E, S, P}).contiguous()).to(torch::kFloat64);
  const torch::Tensor ce = y * d.coef_std + d.coef_mean;  // [E, S, R]
  const torch::Tensor c = ce.mean(0);
  res.coefficients = to_host(c);
  if (m.linear_outputs) {
    res.outputs = to_host(d.reduce(d.z_of(c, liftT, liftU).matmul(d.Lt)));
    const int64_t R = c.size(1);
    const torch::Tensor zE = d.z_of(ce.reshape({E * S, R}), liftT.repeat({E, 1}), liftU.repeat({E, 1}));
    const torch::Tensor oe = d.reduce(zE.matmul(d.Lt)).reshape({E, S, -1});
    res.spread = to_host((oe - oe.mean(0, true)).pow(2).mean(0).sqrt());
  } else {
    res.member_coefficients = to_host(ce);
  }
  // Error estimate of the primary field.
  const bool onT = m.thermal;
  const torch::Tensor cp = onT ? c.slice(1, 0, m.rank_T) : c.slice(1, m.rank_T, m.rank_T + m.rank_u);
  const torch::Tensor lift = onT ? liftT : liftU;
  const torch::Tensor theta = d.dev(in.theta, S, K);
  const torch::Tensor psi = torch::cat({d.dev(in.loads, S, m.est_loads),
                                        -(theta.unsqueeze(2) * lift.unsqueeze(1)).reshape({S, -1}), -theta,
                                        -(theta.unsqueeze(2) * cp.unsqueeze(1)).reshape({S, -1})}, 1);
  const torch::Tensor eta = (psi.matmul(d.G) * psi).sum(1).clamp_min(0).sqrt();
  const torch::Tensor yv = torch::cat({lift, torch::ones({S, 1}, c.options()), cp}, 1);
  const torch::Tensor norm = (yv.matmul(d.H) * yv).sum(1).clamp_min(1e-300).sqrt();
  res.eta = to_host(eta);
  res.estimate = to_host(m.calibration * eta / norm);
  if (fields) {
    if (m.thermal) res.T = to_host(torch::cat({liftT, torch::ones({S, 1}, c.options()), c.slice(1, 0, m.rank_T)}, 1).matmul(d.FT));
    if (m.mechanical)
      res.u = to_host(torch::cat({liftU, torch::ones({S, 1}, c.options()), c.slice(1, m.rank_T, m.rank_T + m.rank_u)}, 1).matmul(d.Fu));
  }
  return res;
}

}  // namespace doppel
