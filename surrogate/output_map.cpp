#include "surrogate/output_map.hpp"

#include <algorithm>
#include <set>

#include "kernels/host/parallel.hpp"

namespace doppel {

using spec::Quantity;

bool outputs_linear_in_fields(const FemModel& model, const OutputEvaluator& evaluator) {
  bool flux = false, mech = false;
  for (size_t k = 0; k < evaluator.size(); ++k) {
    const Quantity q = evaluator.request(k).quantity;
    flux = flux || (q >= Quantity::heat_flux_x && q <= Quantity::heat_flux_z);
    mech = mech || (q >= Quantity::strain_xx && q <= Quantity::von_mises);
  }
  auto param = [](const std::optional<spec::Value>& v) { return v && v->is_parameter(); };
  for (const auto& m : model.twin().materials) {
    if (flux && param(m.conductivity)) return false;
    if (mech && (param(m.youngs_modulus) || param(m.poisson_ratio) || param(m.thermal_expansion) ||
                 param(m.reference_temperature)))
      return false;
  }
  return true;
}

std::vector<std::vector<size_t>> select_hot_spots(const OutputEvaluator& ev,
                                                  const std::vector<std::vector<double>>& snaps,
                                                  double margin, size_t top) {
  std::vector<std::vector<size_t>> keep(ev.size());
  for (size_t k = 0; k < ev.size(); ++k) {
    const auto reduce = ev.request(k).reduce;
    if (reduce != spec::Reduction::max && reduce != spec::Reduction::min) continue;
    const double sign = reduce == spec::Reduction::max ? 1.0 : -1.0;
    std::set<size_t> chosen;
    for (const auto& comps : snaps) {
      std::vector<double> v = ev.site_values(k, comps.data());
      for (double& x : v) x *= sign;
      std::vector<size_t> order(v.size());
      for (size_t i = 0; i < v.size(); ++i) order[i] = i;
      std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] > v[b]; });
      const double hi = v[order.front()], lo = v[order.back()];
      for (size_t r = 0; r < order.size(); ++r) {
        if (r >= top && v[order[r]] < hi - margin * (hi - lo)) break;
        chosen.insert(order[r]);
      }
    }
    keep[k].assign(chosen.begin(), chosen.end());
  }
  return keep;
}

size_t OutputMap::z_size(const ReducedSpace* T, const ReducedSpace* u) {
  size_t z = 1;
  if (T) z += T->lift_terms().size() + static_cast<size_t>(T->rank());
  if (u) z += u->lift_terms().size() + static_cast<size_t>(u->rank());
  return z;
}

void OutputMap::z(const ReducedSpace* T, const ReducedSpace* u, const Params& p, const double* cT,
                  const double* cu, double* out) {
  size_t i = 0;
  out[i++] = 1.0;
  for (const ReducedSpace* s : {T, u}) {
    if (!s) continue;
    for (double f : s->lift_coefficients(p)) out[i++] = f;
    const double* c = s == T ? cT : cu;
    for (int j = 0; j < s->rank(); ++j) out[i++] = c[j];
  }
}

OutputMap::OutputMap(const FemModel& model, const OutputEvaluator& ev, const ReducedSpace* T,
                     const ReducedSpace* u) {
  const Params p0 = model.twin().default_parameters();
  const size_t Z = z_size(T, u);
  L_.resize(static_cast<Eigen::Index>(ev.total_components()), static_cast<Eigen::Index>(Z));
  // The outputs' site components as one affine operator of the fields, z = z0 + Z_T T + Z_u u
  // (valid for every parameter vector here: outputs_linear_in_fields). Column 0: the
  // components of the mean fields; then one column per lift vector and mode, its image
  // under the linear part.
  const LinearOutputs lin = ev.linearize(p0);
  L_.col(0) = lin.z0;
  if (T && lin.ZT.cols() > 0) L_.col(0) += lin.ZT * T->basis().mean;
  if (u && lin.Zu.cols() > 0) L_.col(0) += lin.Zu * u->basis().mean;
  struct Probe { bool thermal; Eigen::VectorXd v; };
  std::vector<Probe> probes;
  for (const ReducedSpace* s : {T, u}) {
    if (!s) continue;
    for (size_t i = 0; i < s->lift_terms().size(); ++i) probes.push_back({s == T, s->lift_vector(i)});
    for (int j = 0; j < s->rank(); ++j) probes.push_back({s == T, s->basis().modes.col(j)});
  }
  parallel_for(probes.size(), [&](size_t i) {
    const auto& Z = probes[i].thermal ? lin.ZT : lin.Zu;
    auto col = L_.col(static_cast<Eigen::Index>(i + 1));
    if (Z.cols() > 0) col = Z * probes[i].v;
    else col.setZero();
  });
}

}  // namespace doppel
