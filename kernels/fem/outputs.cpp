#include "kernels/fem/outputs.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/fem/assembly.hpp"
#include "kernels/fem/output_kernels.hpp"
#include "kernels/host/parallel.hpp"
#include "spec/errors.hpp"

namespace doppel {

using spec::Quantity;

static_assert(static_cast<int>(SiteReduction::mean) == static_cast<int>(spec::Reduction::mean) &&
                  static_cast<int>(SiteReduction::min) == static_cast<int>(spec::Reduction::min) &&
                  static_cast<int>(SiteReduction::max) == static_cast<int>(spec::Reduction::max),
              "SiteReduction follows spec::Reduction");

namespace {

bool is_flux(Quantity q) { return q >= Quantity::heat_flux_x && q <= Quantity::heat_flux_z; }
bool is_recovered_mech(Quantity q) { return q >= Quantity::strain_xx && q <= Quantity::von_mises; }
bool is_recovered(Quantity q) { return is_flux(q) || is_recovered_mech(q); }

// Components of quantity q at one node: from the nodal fields, or from the recovered flux (3),
// strain (6) and stress (6) at that node (any may be null when not recovered).
void node_components(Quantity q, int node, int dim, const double* T, const double* u,
                     const double* flux, const double* strain, const double* stress, double* out) {
  if (q == Quantity::temperature) {
    out[0] = T[node];
  } else if (q == Quantity::displacement_magnitude) {
    for (int a = 0; a < dim; ++a) out[a] = u[node * dim + a];
  } else if (q >= Quantity::displacement_x && q <= Quantity::displacement_z) {
    const int a = static_cast<int>(q) - static_cast<int>(Quantity::displacement_x);
    out[0] = a < dim ? u[node * dim + a] : 0.0;
  } else if (is_flux(q)) {
    out[0] = flux[static_cast<int>(q) - static_cast<int>(Quantity::heat_flux_x)];
  } else if (q >= Quantity::strain_xx && q <= Quantity::strain_xz) {
    out[0] = strain[static_cast<int>(q) - static_cast<int>(Quantity::strain_xx)];
  } else if (q >= Quantity::stress_xx && q <= Quantity::stress_xz) {
    out[0] = stress[static_cast<int>(q) - static_cast<int>(Quantity::stress_xx)];
  } else {
    std::copy(stress, stress + 6, out);  // von Mises
  }
}

}  // namespace

OutputEvaluator::OutputEvaluator(const FemModel& model, std::vector<OutputRequest> requests)
    : model_(model), requests_(std::move(requests)), recovery_(model) {
  const Mesh& m = model.mesh();
  for (const auto& r : requests_) {
    need_flux_ = need_flux_ || is_flux(r.quantity);
    need_mech_ = need_mech_ || is_recovered_mech(r.quantity);
    // Stresses of a thermo-elastic twin read the temperature (its thermal strain).
    need_T_ = need_T_ || spec::quantity_is_thermal(r.quantity) || (is_recovered_mech(r.quantity) && model.thermal());
    need_u_ = need_u_ || spec::quantity_is_mechanical(r.quantity);
    Output out;
    if (r.quantity == Quantity::von_mises) {
      out.components = 6;
      out.function = SiteFunction::von_mises;
    } else if (r.quantity == Quantity::displacement_magnitude) {
      out.components = m.dim;
      out.function = SiteFunction::norm;
    }
    if (r.reduce == spec::Reduction::none) {
      double x[3] = {r.at[0], r.at[1], r.at.size() > 2 ? r.at[2] : 0.0};
      auto loc = model.locator().locate(x);
      if (!loc) throw InvalidInput("", "probe point lies outside the mesh");
      Site site;
      site.cell = loc->cell;
      shape_functions(m.cell_type, loc->xi, site.N, nullptr);
      out.sites.push_back(site);
    } else {
      const auto& nodes = recovery_.region_nodes(r.region);
      for (size_t l = 0; l < nodes.size(); ++l) {
        Site site;
        site.node = nodes[l];
        site.local = static_cast<int>(l);
        out.sites.push_back(site);
      }
      if (r.reduce == spec::Reduction::mean) {
        const std::vector<double> w = node_weights(m, r.region);
        for (int node : nodes) out.weights.push_back(w[static_cast<size_t>(node)]);
      }
    }
    outputs_.push_back(std::move(out));
  }
  update_offsets();
}

void OutputEvaluator::update_offsets() {
  total_ = 0;
  for (auto& o : outputs_) {
    o.offset = total_;
    total_ += o.sites.size() * static_cast<size_t>(o.components);
  }
  // Recovery (averaging element values at nodes) is the expensive part of evaluating: do it
  // only at the nodes recovered outputs read (probe cells' nodes, reduction sites).
  const Mesh& m = model_.mesh();
  recovery_mask_.assign(m.num_nodes(), 0);
  for (size_t k = 0; k < outputs_.size(); ++k) {
    if (!is_recovered(requests_[k].quantity)) continue;
    for (const Site& s : outputs_[k].sites) {
      if (s.node >= 0) {
        recovery_mask_[static_cast<size_t>(s.node)] = 1;
      } else {
        const int* v = m.cell(static_cast<size_t>(s.cell));
        for (int i = 0; i < m.nodes_per_cell(); ++i) recovery_mask_[static_cast<size_t>(v[i])] = 1;
      }
    }
  }
}

std::vector<int> OutputEvaluator::site_nodes(size_t k) const {
  std::vector<int> nodes;
  for (const Site& s : outputs_[k].sites)
    if (s.node >= 0) nodes.push_back(s.node);
  return nodes;
}

void OutputEvaluator::restrict_sites(size_t k, const std::vector<size_t>& keep) {
  Output& o = outputs_[k];
  const auto reduce = requests_[k].reduce;
  if (reduce != spec::Reduction::max && reduce != spec::Reduction::min)
    throw std::logic_error("restrict_sites: only max and min reductions may drop sites");
  if (keep.empty()) throw std::logic_error("restrict_sites: at least one site must remain");
  std::vector<Site> sites;
  for (size_t i : keep) sites.push_back(o.sites.at(i));
  o.sites = std::move(sites);
  update_offsets();
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

std::vector<double> OutputEvaluator::site_components(const Params& p, const double* T,
                                                     const double* u) const {
  // A caller without a field some output reads is a bug of doppel's, not of the user's: an
  // error naming the field instead of reading through a null pointer.
  if ((need_T_ && !T) || (need_u_ && !u))
    throw Error(std::string("internal error: outputs evaluated without the ") + (need_T_ && !T ? "temperature" : "displacement") +
                " field they read");
  const Mesh& m = model_.mesh();
  const int dim = m.dim;
  std::vector<RegionFields> rec;
  if (need_flux_ || need_mech_) rec = recovery_.recover(p, T, u, need_flux_, need_mech_, &recovery_mask_);
  std::vector<double> out(total_, 0.0);
  double flux[3], strain[6], stress[6], c[6];
  for (size_t k = 0; k < requests_.size(); ++k) {
    const Quantity q = requests_[k].quantity;
    const Output& o = outputs_[k];
    const bool recovered = is_recovered(q);
    double* dst = out.data() + o.offset;
    for (const Site& site : o.sites) {
      if (site.cell < 0) {  // a region node
        const RegionFields* f = recovered ? &rec[static_cast<size_t>(requests_[k].region)] : nullptr;
        const size_t l = static_cast<size_t>(site.local);
        node_components(q, site.node, dim, T, u,
                        f && !f->flux.empty() ? &f->flux[l * 3] : nullptr,
                        f && !f->strain.empty() ? &f->strain[l * 6] : nullptr,
                        f && !f->stress.empty() ? &f->stress[l * 6] : nullptr, dst);
      } else {  // a probe: interpolate the components over the cell's nodes
        const int* v = m.cell(static_cast<size_t>(site.cell));
        const int region = m.cell_region[static_cast<size_t>(site.cell)];
        std::fill(dst, dst + o.components, 0.0);
        for (int i = 0; i < m.nodes_per_cell(); ++i) {
          const double* fl = nullptr;
          const double* st = nullptr;
          const double* ss = nullptr;
          if (recovered) {
            const RegionFields& f = rec[static_cast<size_t>(region)];
            const size_t l = static_cast<size_t>(recovery_.local_index(region, v[i]));
            if (!f.flux.empty()) fl = &f.flux[l * 3];
            if (!f.strain.empty()) st = &f.strain[l * 6];
            if (!f.stress.empty()) ss = &f.stress[l * 6];
          }
          std::fill(flux, flux + 3, 0.0);
          std::fill(strain, strain + 6, 0.0);
          std::fill(stress, stress + 6, 0.0);
          node_components(q, v[i], dim, T, u, fl ? fl : flux, st ? st : strain, ss ? ss : stress, c);
          for (int a = 0; a < o.components; ++a) dst[a] += site.N[i] * c[a];
        }
      }
      dst += o.components;
    }
  }
  return out;
}

size_t LinearOutputs::bytes() const {
  auto csr = [](const Eigen::SparseMatrix<double, Eigen::RowMajor, int>& A) {
    return static_cast<size_t>(A.nonZeros()) * (sizeof(double) + sizeof(int)) +
           static_cast<size_t>(A.outerSize() + 1) * sizeof(int);
  };
  return csr(ZT) + csr(Zu) + rows() * sizeof(double);
}

Eigen::MatrixXd LinearOutputs::apply(const Eigen::MatrixXd* T, const Eigen::MatrixXd* u, Eigen::Index first,
                                     Eigen::Index width) const {
  using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::Index S = width >= 0 ? width : (T ? T->cols() : u ? u->cols() : 0) - first;
  const Eigen::Index N = z0.size();
  Eigen::MatrixXd Z(N, S);
  // Panels of columns in the executor's layout (by row), through the host output kernels: one
  // read of the operator serves a panel.
  constexpr Eigen::Index kPanel = 64;
  const Executor& host = *Executor::host();
  auto view = [](const Eigen::SparseMatrix<double, Eigen::RowMajor, int>& A) {
    return CsrView{static_cast<int>(A.rows()), static_cast<int>(A.cols()), A.outerIndexPtr(), A.innerIndexPtr(),
                   A.valuePtr()};
  };
  const bool useT = T && ZT.cols() > 0, useU = u && Zu.cols() > 0;
  RowMajor F, P;
  for (Eigen::Index c0 = 0; c0 < S; c0 += kPanel) {
    const Eigen::Index w = std::min(kPanel, S - c0);
    const int wi = static_cast<int>(w);
    P.resize(N, w);
    host::broadcast_rows(host, static_cast<int>(N), wi, z0.data(), P.data(), wi);
    if (useT) {
      F = T->middleCols(first + c0, w);
      host::csr_multiply_add(host, view(ZT), wi, F.data(), wi, P.data(), wi);
    }
    if (useU) {
      F = u->middleCols(first + c0, w);
      host::csr_multiply_add(host, view(Zu), wi, F.data(), wi, P.data(), wi);
    }
    Z.middleCols(c0, w) = P;
  }
  return Z;
}

namespace {
// Index of a recovered quantity's component among the recovered node components.
int recovered_component(Quantity q, int a) {
  if (is_flux(q)) return kFluxOffset + static_cast<int>(q) - static_cast<int>(Quantity::heat_flux_x);
  if (q >= Quantity::strain_xx && q <= Quantity::strain_xz)
    return kStrainOffset + static_cast<int>(q) - static_cast<int>(Quantity::strain_xx);
  if (q >= Quantity::stress_xx && q <= Quantity::stress_xz)
    return kStressOffset + static_cast<int>(q) - static_cast<int>(Quantity::stress_xx);
  return kStressOffset + a;  // von Mises: the six stress components
}
}  // namespace

size_t OutputEvaluator::linear_entries_bound() const {
  const Mesh& m = model_.mesh();
  const size_t stencil = static_cast<size_t>(m.nodes_per_cell()) * static_cast<size_t>(m.dim + 1);
  size_t total = 0;
  for (size_t k = 0; k < outputs_.size(); ++k) {
    const bool recovered = is_recovered(requests_[k].quantity);
    for (const Site& site : outputs_[k].sites) {
      size_t per = 1;
      if (site.cell >= 0) {
        per = static_cast<size_t>(m.nodes_per_cell());
        if (recovered) {
          const int* v = m.cell(static_cast<size_t>(site.cell));
          per = 0;
          for (int i = 0; i < m.nodes_per_cell(); ++i) per += recovery_.cells_at(v[i]) * stencil;
        }
      } else if (recovered) {
        per = recovery_.cells_at(site.node) * stencil;
      }
      total += per * static_cast<size_t>(outputs_[k].components);
    }
  }
  return total;
}

LinearOutputs OutputEvaluator::linearize(const Params& p) const {
  const Mesh& m = model_.mesh();
  const int dim = m.dim;
  const bool thermal = model_.thermal(), mech = model_.mechanical();
  const int nT = thermal ? static_cast<int>(m.num_nodes()) : 0;
  const int nU = mech ? static_cast<int>(m.num_nodes()) * dim : 0;
  std::vector<RegionMaterial> mats;
  for (size_t r = 0; r < m.region_names.size(); ++r) mats.push_back(model_.material(static_cast<int>(r), p));
  // Every site's components as linear forms, site by site over the host threads.
  struct SiteRef { size_t output, site; };
  std::vector<SiteRef> refs;
  for (size_t k = 0; k < outputs_.size(); ++k)
    for (size_t s = 0; s < outputs_[k].sites.size(); ++s) refs.push_back({k, s});
  std::vector<LinearForm> rows(total_);
  parallel_for(refs.size(), [&](size_t i) {
    const size_t k = refs[i].output;
    const Quantity q = requests_[k].quantity;
    const Output& o = outputs_[k];
    const Site& site = o.sites[refs[i].site];
    const bool recovered = is_recovered(q);
    unsigned wanted = 0;
    if (recovered)
      for (int a = 0; a < o.components; ++a) wanted |= 1u << recovered_component(q, a);
    LinearForm* dst = &rows[o.offset + refs[i].site * static_cast<size_t>(o.components)];
    LinearForm rec[kRecoveredComponents];
    // The components at one node, scaled by w, added to dst.
    auto add_node = [&](int region, int node, double w) {
      if (recovered) {
        recovery_.linear_node(region, node, mats[static_cast<size_t>(region)], nT, thermal, mech, wanted, rec);
        for (int a = 0; a < o.components; ++a) dst[a].add(rec[recovered_component(q, a)], w);
      } else if (q == Quantity::temperature) {
        dst[0].terms.emplace_back(node, w);
      } else if (q == Quantity::displacement_magnitude) {
        for (int a = 0; a < dim; ++a) dst[a].terms.emplace_back(nT + node * dim + a, w);
      } else {
        const int a = static_cast<int>(q) - static_cast<int>(Quantity::displacement_x);
        if (a < dim) dst[0].terms.emplace_back(nT + node * dim + a, w);
      }
    };
    if (site.cell < 0) {
      add_node(requests_[k].region, site.node, 1.0);
    } else {
      const int* v = m.cell(static_cast<size_t>(site.cell));
      const int region = m.cell_region[static_cast<size_t>(site.cell)];
      for (int j = 0; j < m.nodes_per_cell(); ++j) add_node(region, v[j], site.N[j]);
    }
    for (int a = 0; a < o.components; ++a) dst[a].merge();
  });
  LinearOutputs lin;
  lin.z0.resize(static_cast<Eigen::Index>(total_));
  using Triplet = Eigen::Triplet<double, int>;
  std::vector<Triplet> tT, tU;
  for (size_t r = 0; r < total_; ++r) {
    lin.z0[static_cast<Eigen::Index>(r)] = rows[r].constant;
    for (const auto& [dof, w] : rows[r].terms) {
      if (dof < nT) tT.emplace_back(static_cast<int>(r), dof, w);
      else tU.emplace_back(static_cast<int>(r), dof - nT, w);
    }
    rows[r] = LinearForm{};
  }
  lin.ZT.resize(static_cast<Eigen::Index>(total_), nT);
  lin.Zu.resize(static_cast<Eigen::Index>(total_), nU);
  lin.ZT.setFromTriplets(tT.begin(), tT.end());
  lin.Zu.setFromTriplets(tU.begin(), tU.end());
  return lin;
}

std::vector<double> OutputEvaluator::site_values(size_t k, const double* components) const {
  const Output& o = outputs_[k];
  std::vector<double> v(o.sites.size());
  const double* c = components + o.offset;
  for (size_t s = 0; s < o.sites.size(); ++s)
    v[s] = site_function_value(o.function, c + s * static_cast<size_t>(o.components), o.components);
  return v;
}

std::vector<double> OutputEvaluator::reduce(const double* components) const {
  std::vector<double> values(requests_.size());
  for (size_t k = 0; k < requests_.size(); ++k) {
    const Output& o = outputs_[k];
    const auto r = static_cast<SiteReduction>(requests_[k].reduce);
    const double* c = components + o.offset;
    double acc = reduction_start(r), weight_sum = 0;
    for (size_t l = 0; l < o.sites.size(); ++l) {
      const double w = o.weights.empty() ? 1.0 : o.weights[l];
      acc = reduction_fold(r, acc, site_function_value(o.function, c + l * static_cast<size_t>(o.components), o.components), w);
      weight_sum += w;
    }
    values[k] = reduction_finish(r, acc, weight_sum);
  }
  return values;
}

std::vector<double> OutputEvaluator::evaluate(const Params& p, const double* T,
                                              const double* u) const {
  return reduce(site_components(p, T, u).data());
}

}  // namespace doppel
