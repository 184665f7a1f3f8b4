#include "kernels/fem/recovery.hpp"

#include <algorithm>
#include <cmath>

namespace doppel {

void LinearForm::add(const LinearForm& f, double scale) {
  for (const auto& [dof, w] : f.terms) terms.emplace_back(dof, scale * w);
  constant += scale * f.constant;
}

void LinearForm::merge() {
  std::sort(terms.begin(), terms.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  size_t out = 0;
  for (size_t i = 0; i < terms.size();) {
    const int dof = terms[i].first;
    double w = 0;
    for (; i < terms.size() && terms[i].first == dof; ++i) w += terms[i].second;
    if (w != 0.0) terms[out++] = {dof, w};
  }
  terms.resize(out);
}

namespace {

// Strain e and stress s (xx yy zz xy yz xz) from the displacement gradient du[b][a] =
// d u_b / d x_a and the thermal strain eth: linear in both (zero at zero).
void strain_stress(const RegionMaterial& mat, spec::Formulation form, const double du[3][3], double eth,
                   double* e, double* s) {
  double ex = du[0][0], ey = du[1][1], ez = du[2][2];
  const double exy = 0.5 * (du[0][1] + du[1][0]);
  const double eyz = 0.5 * (du[1][2] + du[2][1]);
  const double exz = 0.5 * (du[0][2] + du[2][0]);
  const double lam = mat.lambda, mu = mat.mu;
  double sx, sy, sz;
  if (form == spec::Formulation::plane_stress) {
    const double nu = mat.poisson_ratio;
    ez = eth - nu / (1.0 - nu) * (ex + ey - 2.0 * eth);
    const double tr = ex + ey - 2.0 * eth;  // lam is the plane-stress lambda*
    sx = lam * tr + 2.0 * mu * (ex - eth);
    sy = lam * tr + 2.0 * mu * (ey - eth);
    sz = 0.0;
  } else {
    if (form == spec::Formulation::plane_strain) ez = 0.0;
    const double tr = ex + ey + ez - 3.0 * eth;
    sx = lam * tr + 2.0 * mu * (ex - eth);
    sy = lam * tr + 2.0 * mu * (ey - eth);
    sz = lam * tr + 2.0 * mu * (ez - eth);
  }
  e[0] = ex; e[1] = ey; e[2] = ez; e[3] = exy; e[4] = eyz; e[5] = exz;
  s[0] = sx; s[1] = sy; s[2] = sz; s[3] = 2 * mu * exy; s[4] = 2 * mu * eyz; s[5] = 2 * mu * exz;
}

}  // namespace

FieldRecovery::FieldRecovery(const FemModel& model) : model_(model) {
  const Mesh& m = model.mesh();
  const size_t nr = m.region_names.size();
  region_nodes_.resize(nr);
  local_of_node_.assign(nr, std::vector<int>(m.num_nodes(), -1));
  counts_.resize(nr);
  for (size_t c = 0; c < m.num_cells(); ++c) {
    const size_t r = static_cast<size_t>(m.cell_region[c]);
    const int* v = m.cell(c);
    for (int i = 0; i < m.nodes_per_cell(); ++i) {
      int& local = local_of_node_[r][static_cast<size_t>(v[i])];
      if (local < 0) {
        local = static_cast<int>(region_nodes_[r].size());
        region_nodes_[r].push_back(v[i]);
        counts_[r].push_back(0);
      }
      ++counts_[r][static_cast<size_t>(local)];
    }
  }
  cell_offsets_.assign(m.num_nodes() + 1, 0);
  for (int v : m.cells) ++cell_offsets_[static_cast<size_t>(v) + 1];
  for (size_t i = 0; i < m.num_nodes(); ++i) cell_offsets_[i + 1] += cell_offsets_[i];
  node_cells_.resize(m.cells.size());
  std::vector<size_t> next(cell_offsets_.begin(), cell_offsets_.end() - 1);
  for (size_t c = 0; c < m.num_cells(); ++c) {
    const int* v = m.cell(c);
    for (int i = 0; i < m.nodes_per_cell(); ++i)
      node_cells_[next[static_cast<size_t>(v[i])]++] = {static_cast<int>(c), i};
  }
}

int FieldRecovery::local_index(int region, int node) const {
  return local_of_node_[static_cast<size_t>(region)][static_cast<size_t>(node)];
}

void FieldRecovery::node_values(size_t cell, int local, const RegionMaterial& mat, const double* T,
                                const double* u, bool flux, bool mechanics, double* q, double* e,
                                double* s) const {
  const Mesh& m = model_.mesh();
  const int dim = m.dim;
  const int n = m.nodes_per_cell();
  double X[kMaxNodes * 3], xi[3] = {0, 0, 0};
  m.cell_coords(cell, X);
  reference_node(m.cell_type, local, xi);
  PointMap pm;
  map_point(m.cell_type, dim, X, xi, pm);
  const int* v = m.cell(cell);
  if (flux) {
    double g[3] = {0, 0, 0};
    for (int i = 0; i < n; ++i)
      for (int a = 0; a < dim; ++a) g[a] += pm.grad[i * dim + a] * T[v[i]];
    for (int a = 0; a < 3; ++a) q[a] = -mat.conductivity * g[a];
  }
  if (!mechanics) return;
  double du[3][3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}};  // du[b][a] = d u_b / d x_a
  for (int i = 0; i < n; ++i)
    for (int b = 0; b < dim; ++b)
      for (int a = 0; a < dim; ++a) du[b][a] += u[v[i] * dim + b] * pm.grad[i * dim + a];
  const double dT = T ? T[v[local]] - mat.reference_temperature : 0.0;
  const double eth = T ? mat.expansion * dT : 0.0;
  strain_stress(mat, model_.formulation(), du, eth, e, s);
}

void FieldRecovery::linear_node(int region, int node, const RegionMaterial& mat, int nT, bool thermal,
                                bool mechanics, unsigned wanted, LinearForm* out) const {
  const Mesh& m = model_.mesh();
  const int dim = m.dim;
  const int n = m.nodes_per_cell();
  for (int c = 0; c < kRecoveredComponents; ++c) out[c] = LinearForm{};
  const int l = local_index(region, node);
  if (l < 0) return;
  const double inv = 1.0 / counts_[static_cast<size_t>(region)][static_cast<size_t>(l)];
  const bool flux = thermal && (wanted & 0x7u) != 0;
  mechanics = mechanics && (wanted & ~0x7u) != 0;
  // The strain and stress of a unit entry of the displacement gradient, and of a unit thermal
  // strain: the columns of their linear map.
  double unit[3][3][12] = {}, unit_thermal[12] = {};
  if (mechanics) {
    const auto form = model_.formulation();
    double du[3][3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
    for (int b = 0; b < dim; ++b)
      for (int a = 0; a < dim; ++a) {
        du[b][a] = 1.0;
        strain_stress(mat, form, du, 0.0, unit[b][a], unit[b][a] + 6);
        du[b][a] = 0.0;
      }
    strain_stress(mat, form, du, 1.0, unit_thermal, unit_thermal + 6);
  }
  double X[kMaxNodes * 3], xi[3];
  for (size_t k = cell_offsets_[static_cast<size_t>(node)]; k < cell_offsets_[static_cast<size_t>(node) + 1]; ++k) {
    const auto [cell, local] = node_cells_[k];
    if (m.cell_region[static_cast<size_t>(cell)] != region) continue;
    m.cell_coords(static_cast<size_t>(cell), X);
    xi[0] = xi[1] = xi[2] = 0.0;
    reference_node(m.cell_type, local, xi);
    PointMap pm;
    map_point(m.cell_type, dim, X, xi, pm);
    const int* v = m.cell(static_cast<size_t>(cell));
    if (flux)
      for (int a = 0; a < dim; ++a) {
        if (!(wanted & (1u << (kFluxOffset + a)))) continue;
        for (int i = 0; i < n; ++i) out[kFluxOffset + a].terms.emplace_back(v[i], -mat.conductivity * pm.grad[i * dim + a] * inv);
      }
    if (!mechanics) continue;
    for (int c = 0; c < 12; ++c) {
      LinearForm& f = out[kStrainOffset + c];
      if (!(wanted & (1u << (kStrainOffset + c)))) continue;
      for (int i = 0; i < n; ++i)
        for (int b = 0; b < dim; ++b) {
          double w = 0;
          for (int a = 0; a < dim; ++a) w += unit[b][a][c] * pm.grad[i * dim + a];
          if (w != 0.0) f.terms.emplace_back(nT + v[i] * dim + b, w * inv);
        }
      if (thermal && unit_thermal[c] != 0.0) {
        // eth = alpha (T(node) - T_ref)
        f.terms.emplace_back(node, unit_thermal[c] * mat.expansion * inv);
        f.constant -= unit_thermal[c] * mat.expansion * mat.reference_temperature * inv;
      }
    }
  }
}

void FieldRecovery::cell_values(size_t cell, const Params& p, const double* T, const double* u,
                                double* flux, double* strain, double* stress) const {
  const Mesh& m = model_.mesh();
  const RegionMaterial mat = model_.material(m.cell_region[cell], p);
  for (int i = 0; i < m.nodes_per_cell(); ++i)
    node_values(cell, i, mat, T, u, flux != nullptr, u != nullptr, flux ? flux + 3 * i : nullptr,
                strain ? strain + 6 * i : nullptr, stress ? stress + 6 * i : nullptr);
}

std::vector<RegionFields> FieldRecovery::recover(const Params& p, const double* T, const double* u,
                                                 bool flux, bool mechanics,
                                                 const std::vector<char>* node_mask) const {
  const Mesh& m = model_.mesh();
  flux = flux && T != nullptr;
  mechanics = mechanics && u != nullptr;
  std::vector<RegionFields> out(region_nodes_.size());
  std::vector<RegionMaterial> mats;
  for (size_t r = 0; r < region_nodes_.size(); ++r) {
    const size_t nn = region_nodes_[r].size();
    if (flux) out[r].flux.assign(nn * 3, 0.0);
    if (mechanics) {
      out[r].strain.assign(nn * 6, 0.0);
      out[r].stress.assign(nn * 6, 0.0);
    }
    mats.push_back(model_.material(static_cast<int>(r), p));
  }
  if (!flux && !mechanics) return out;
  double q[3] = {0, 0, 0}, e[6], s[6];
  for (size_t c = 0; c < m.num_cells(); ++c) {
    const size_t r = static_cast<size_t>(m.cell_region[c]);
    const int* v = m.cell(c);
    for (int i = 0; i < m.nodes_per_cell(); ++i) {
      if (node_mask && !(*node_mask)[static_cast<size_t>(v[i])]) continue;
      node_values(c, i, mats[r], T, u, flux, mechanics, q, e, s);
      const size_t l = static_cast<size_t>(local_of_node_[r][static_cast<size_t>(v[i])]);
      if (flux) for (int a = 0; a < 3; ++a) out[r].flux[l * 3 + a] += q[a];
      if (mechanics)
        for (int a = 0; a < 6; ++a) {
          out[r].strain[l * 6 + a] += e[a];
          out[r].stress[l * 6 + a] += s[a];
        }
    }
  }
  for (size_t r = 0; r < region_nodes_.size(); ++r)
    for (size_t l = 0; l < region_nodes_[r].size(); ++l) {
      const double inv = 1.0 / counts_[r][l];
      if (flux) for (int a = 0; a < 3; ++a) out[r].flux[l * 3 + a] *= inv;
      if (mechanics)
        for (int a = 0; a < 6; ++a) {
          out[r].strain[l * 6 + a] *= inv;
          out[r].stress[l * 6 + a] *= inv;
        }
    }
  return out;
}

}  // namespace doppel
