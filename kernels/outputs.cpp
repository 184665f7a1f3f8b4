#include "kernels/outputs.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/assembly.hpp"
#include "spec/errors.hpp"

namespace doppel {

using spec::Quantity;

namespace {

bool is_flux(Quantity q) { return q >= Quantity::heat_flux_x && q <= Quantity::heat_flux_z; }
bool is_recovered_mech(Quantity q) { return q >= Quantity::strain_xx && q <= Quantity::von_mises; }

// Value of a recovered quantity from flux (3) / strain (6) / stress (6) at one point.
double recovered_value(Quantity q, const double* flux, const double* strain, const double* stress) {
  if (is_flux(q)) return flux[static_cast<int>(q) - static_cast<int>(Quantity::heat_flux_x)];
  if (q >= Quantity::strain_xx && q <= Quantity::strain_xz)
    return strain[static_cast<int>(q) - static_cast<int>(Quantity::strain_xx)];
  if (q >= Quantity::stress_xx && q <= Quantity::stress_xz)
    return stress[static_cast<int>(q) - static_cast<int>(Quantity::stress_xx)];
  return von_mises(stress);
}

double nodal_value(Quantity q, int node, int dim, const double* T, const double* u) {
  if (q == Quantity::temperature) return T[node];
  if (q == Quantity::displacement_magnitude) {
    double s = 0;
    for (int a = 0; a < dim; ++a) s += u[node * dim + a] * u[node * dim + a];
    return std::sqrt(s);
  }
  const int a = static_cast<int>(q) - static_cast<int>(Quantity::displacement_x);
  return a < dim ? u[node * dim + a] : 0.0;
}

}  // namespace

OutputEvaluator::OutputEvaluator(const FemModel& model, std::vector<OutputRequest> requests)
    : model_(model), requests_(std::move(requests)), recovery_(model) {
  const Mesh& m = model.mesh();
  region_weights_.resize(m.region_names.size());
  for (const auto& r : requests_) {
    need_flux_ = need_flux_ || is_flux(r.quantity);
    need_mech_ = need_mech_ || is_recovered_mech(r.quantity);
    Probe probe;
    if (r.reduce == spec::Reduction::none) {
      double x[3] = {r.at[0], r.at[1], r.at.size() > 2 ? r.at[2] : 0.0};
      auto loc = model.locator().locate(x);
      if (!loc) throw InvalidInput("", "probe point lies outside the mesh");
      probe.cell = loc->cell;
      shape_functions(m.cell_type, loc->xi, probe.N, nullptr);
    } else if (r.reduce == spec::Reduction::mean && region_weights_[static_cast<size_t>(r.region)].empty()) {
      const std::vector<double> w = node_weights(m, r.region);
      const auto& nodes = recovery_.region_nodes(r.region);
      auto& rw = region_weights_[static_cast<size_t>(r.region)];
      for (int node : nodes) rw.push_back(w[static_cast<size_t>(node)]);
    }
    probes_.push_back(probe);
  }
}

namespace {
std::vector<OutputRequest> requests_from(const FemModel& model, bool sensors) {
  std::vector<OutputRequest> out;
  if (sensors) {
    for (const auto& s : model.twin().sensors) {
      OutputRequest r;
      r.quantity = s.quantity;
      r.at = s.at;
      out.push_back(r);
    }
    return out;
  }
  for (const auto& o : model.twin().outputs) {
    OutputRequest r;
    r.quantity = o.quantity;
    r.reduce = o.reduce;
    r.at = o.at;
    if (o.reduce != spec::Reduction::none) r.region = model.mesh().region_index(o.region);
    out.push_back(r);
  }
  return out;
}
}  // namespace

OutputEvaluator OutputEvaluator::for_outputs(const FemModel& model) {
  return OutputEvaluator(model, requests_from(model, false));
}

OutputEvaluator OutputEvaluator::for_sensors(const FemModel& model) {
  return OutputEvaluator(model, requests_from(model, true));
}

std::vector<double> OutputEvaluator::evaluate(const Params& p, const double* T,
                                              const double* u) const {
  const Mesh& m = model_.mesh();
  const int dim = m.dim;
  std::vector<RegionFields> rec;
  if (need_flux_ || need_mech_) rec = recovery_.recover(p, T, u, need_flux_, need_mech_);
  std::vector<double> values;
  values.reserve(requests_.size());
  double flux[3], strain[6], stress[6];
  for (size_t k = 0; k < requests_.size(); ++k) {
    const OutputRequest& r = requests_[k];
    const bool recovered = is_flux(r.quantity) || is_recovered_mech(r.quantity);
    if (r.reduce == spec::Reduction::none) {
      const Probe& pr = probes_[k];
      const int* v = m.cell(static_cast<size_t>(pr.cell));
      const int region = m.cell_region[static_cast<size_t>(pr.cell)];
      if (!recovered) {
        if (r.quantity == Quantity::displacement_magnitude) {
          double s = 0;
          for (int a = 0; a < dim; ++a) {
            double ua = 0;
            for (int i = 0; i < m.nodes_per_cell(); ++i) ua += pr.N[i] * u[v[i] * dim + a];
            s += ua * ua;
          }
          values.push_back(std::sqrt(s));
        } else {
          double s = 0;
          for (int i = 0; i < m.nodes_per_cell(); ++i) s += pr.N[i] * nodal_value(r.quantity, v[i], dim, T, u);
          values.push_back(s);
        }
        continue;
      }
      std::fill(flux, flux + 3, 0.0);
      std::fill(strain, strain + 6, 0.0);
      std::fill(stress, stress + 6, 0.0);
      const RegionFields& f = rec[static_cast<size_t>(region)];
      for (int i = 0; i < m.nodes_per_cell(); ++i) {
        const size_t l = static_cast<size_t>(recovery_.local_index(region, v[i]));
        for (int a = 0; a < 3 && !f.flux.empty(); ++a) flux[a] += pr.N[i] * f.flux[l * 3 + a];
        for (int a = 0; a < 6 && !f.stress.empty(); ++a) {
          strain[a] += pr.N[i] * f.strain[l * 6 + a];
          stress[a] += pr.N[i] * f.stress[l * 6 + a];
        }
      }
      values.push_back(recovered_value(r.quantity, flux, strain, stress));
      continue;
    }
    const auto& nodes = recovery_.region_nodes(r.region);
    const RegionFields* f = recovered ? &rec[static_cast<size_t>(r.region)] : nullptr;
    auto value_at = [&](size_t l) {
      if (!recovered) return nodal_value(r.quantity, nodes[l], dim, T, u);
      return recovered_value(r.quantity, f->flux.empty() ? nullptr : &f->flux[l * 3],
                             f->strain.empty() ? nullptr : &f->strain[l * 6],
                             f->stress.empty() ? nullptr : &f->stress[l * 6]);
    };
    double result = 0;
    if (r.reduce == spec::Reduction::max) {
      result = -INFINITY;
      for (size_t l = 0; l < nodes.size(); ++l) result = std::max(result, value_at(l));
    } else if (r.reduce == spec::Reduction::min) {
      result = INFINITY;
      for (size_t l = 0; l < nodes.size(); ++l) result = std::min(result, value_at(l));
    } else {
      const auto& w = region_weights_[static_cast<size_t>(r.region)];
      double sw = 0, s = 0;
      for (size_t l = 0; l < nodes.size(); ++l) {
        s += w[l] * value_at(l);
        sw += w[l];
      }
      result = s / sw;
    }
    values.push_back(result);
  }
  return values;
}

}  // namespace doppel
