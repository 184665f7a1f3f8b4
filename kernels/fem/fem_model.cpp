#include "kernels/fem/fem_model.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <Eigen/SparseCore>

#include "kernels/fem/assembly.hpp"
#include "kernels/io/gmsh_reader.hpp"
#include "kernels/host/parallel.hpp"
#include "spec/errors.hpp"

namespace doppel {

using spec::Formulation;

namespace {

std::string list_names(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s.empty() ? "none" : s;
}

Coefficient factor_fn(const spec::FieldTerm& t) {
  if (t.time) return [t](const Params& p) { return t.factor(p); };
  const int k = t.parameter;
  if (k < 0) return [](const Params&) { return 1.0; };
  return [k](const Params& p) { return p[static_cast<size_t>(k)]; };
}

std::string point_text(const double* x, int dim) {
  std::string s = "(" + std::to_string(x[0]) + ", " + std::to_string(x[1]);
  if (dim == 3) s += ", " + std::to_string(x[2]);
  return s + ")";
}

// Suffix of the name of a field's term j of n ("boundaries.xmax.thermal.h[term 2]").
std::string term_suffix(size_t j, size_t n) { return n > 1 ? "[term " + std::to_string(j + 1) + "]" : ""; }

std::vector<int> boundary_nodes(const Mesh& m, int boundary) {
  std::vector<int> nodes;
  for (size_t f = 0; f < m.num_facets(); ++f) {
    if (m.facet_boundary[f] != boundary) continue;
    const int* v = m.facet(f);
    nodes.insert(nodes.end(), v, v + m.nodes_per_facet());
  }
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  return nodes;
}

std::vector<int> region_nodes(const Mesh& m, int region) {
  std::vector<int> nodes;
  for (size_t c = 0; c < m.num_cells(); ++c) {
    if (region >= 0 && m.cell_region[c] != region) continue;
    const int* v = m.cell(c);
    nodes.insert(nodes.end(), v, v + m.nodes_per_cell());
  }
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  return nodes;
}

void zero_rows(const AffineOperator& op, std::vector<double>& v) {
  for (int d : op.dirichlet_dofs()) v[static_cast<size_t>(d)] = 0.0;
}

}  // namespace

Mesh build_mesh(const spec::TwinSpec& twin) {
  const auto& ms = twin.mesh;
  Mesh m;
  switch (ms.kind) {
    case spec::MeshSpec::Kind::file: m = read_gmsh(ms.file, "mesh.file"); break;
    case spec::MeshSpec::Kind::rectangle:
      m = generate_rectangle(ms.size[0], ms.size[1], ms.cells[0], ms.cells[1], ms.order,
                             ms.origin[0], ms.origin[1]);
      break;
    case spec::MeshSpec::Kind::box:
      m = generate_box(ms.size[0], ms.size[1], ms.size[2], ms.cells[0], ms.cells[1], ms.cells[2],
                       ms.order, ms.origin[0], ms.origin[1], ms.origin[2]);
      break;
  }
  validate_mesh(m, "mesh");
  return m;
}

FemModel::FemModel(spec::TwinSpec twin) : twin_(std::move(twin)) {
  mesh_ = build_mesh(twin_);
  build();
}

FemModel::FemModel(spec::TwinSpec twin, Mesh mesh) : twin_(std::move(twin)), mesh_(std::move(mesh)) {
  validate_mesh(mesh_, "mesh");
  build();
}

FemModel::~FemModel() = default;

spec::Formulation FemModel::formulation() const {
  return twin_.mechanical ? twin_.mechanical->formulation : Formulation::three_d;
}

void FemModel::build() {
  if (const auto parts = mesh_parts(mesh_); parts.size() > 1) {
    std::string firsts;
    for (size_t i = 0; i < std::min<size_t>(parts.size(), 5); ++i) firsts += (i ? ", " : "") + std::to_string(parts[i]);
    warnings_.push_back("mesh: the mesh has " + std::to_string(parts.size()) + " disconnected parts (their first cells: " + firsts +
                        (parts.size() > 5 ? ", ..." : "") + "); nothing passes between them, and each needs its own boundary conditions");
  }
  check_against_mesh();
  locator_ = std::make_unique<PointLocator>(mesh_);
  auto check_point = [&](const std::vector<double>& at, const std::string& path, const std::string& what) {
    DOPPEL_VERIFY(at.size() == static_cast<size_t>(mesh_.dim), path,
                  "expected " + std::to_string(mesh_.dim) + " coordinates for this mesh");
    double x[3] = {at[0], at[1], mesh_.dim == 3 ? at[2] : 0.0};
    DOPPEL_VERIFY(locator_->locate(x).has_value(), path,
                  "point of " + what + " lies outside the mesh");
  };
  for (const auto& s : twin_.sensors) check_point(s.at, "sensors." + s.name + ".at", "sensor '" + s.name + "'");
  for (const auto& o : twin_.outputs)
    if (o.reduce == spec::Reduction::none)
      check_point(o.at, "outputs." + o.name + ".at", "output '" + o.name + "'");
  if (thermal()) build_thermal();
  if (mechanical()) build_mechanical();
}

void FemModel::check_against_mesh() {
  const int dim = mesh_.dim;
  if (twin_.mechanical) {
    const bool three = twin_.mechanical->formulation == Formulation::three_d;
    DOPPEL_VERIFY(three == (dim == 3), "physics.mechanical.formulation",
                  three ? "the 3d formulation needs a 3D (tetrahedral) mesh"
                        : "plane_stress and plane_strain need a 2D (triangle) mesh");
  }
  material_of_region_.assign(mesh_.region_names.size(), -1);
  for (const auto& r : twin_.regions) {
    const int idx = mesh_.region_index(r.region);
    DOPPEL_VERIFY(idx >= 0, "regions." + r.region,
                  "the mesh has no region '" + r.region + "' (mesh regions: " +
                      list_names(mesh_.region_names) + ")");
    material_of_region_[static_cast<size_t>(idx)] = r.material;
  }
  for (size_t i = 0; i < mesh_.region_names.size(); ++i)
    DOPPEL_VERIFY(material_of_region_[i] >= 0, "regions",
                  "mesh region '" + mesh_.region_names[i] + "' has no material; add it to regions");
  for (const auto& b : twin_.boundaries)
    DOPPEL_VERIFY(mesh_.boundary_index(b.name) >= 0, "boundaries." + b.name,
                  "the mesh has no boundary '" + b.name + "' (mesh boundaries: " +
                      list_names(mesh_.boundary_names) + ")");
  auto check_quantity = [&](spec::Quantity q, const std::string& path) {
    using Q = spec::Quantity;
    const bool z = q == Q::heat_flux_z || q == Q::displacement_z || q == Q::strain_yz ||
                   q == Q::strain_xz || q == Q::stress_yz || q == Q::stress_xz;
    DOPPEL_VERIFY(!(z && dim == 2), path,
                  std::string("\"") + spec::quantity_name(q) + "\" does not exist in a 2D problem");
  };
  for (const auto& o : twin_.outputs) check_quantity(o.quantity, "outputs." + o.name + ".quantity");
  for (const auto& s : twin_.sensors) check_quantity(s.quantity, "sensors." + s.name + ".quantity");
}

RegionMaterial FemModel::material(int mesh_region, const Params& p) const {
  const spec::Material& m = twin_.materials[static_cast<size_t>(material_of_region_[static_cast<size_t>(mesh_region)])];
  RegionMaterial r;
  if (m.conductivity) r.conductivity = m.conductivity->eval(p);
  if (m.density && m.specific_heat) r.heat_capacity = m.density->eval(p) * m.specific_heat->eval(p);
  if (m.youngs_modulus && m.poisson_ratio) {
    const double E = m.youngs_modulus->eval(p), nu = m.poisson_ratio->eval(p);
    r.youngs_modulus = E;
    r.poisson_ratio = nu;
    r.mu = E / (2.0 * (1.0 + nu));
    if (formulation() == Formulation::plane_stress) {
      r.lambda = E * nu / (1.0 - nu * nu);
      r.thermal_stress_modulus = E / (1.0 - nu);
    } else {
      r.lambda = E * nu / ((1.0 + nu) * (1.0 - 2.0 * nu));
      r.thermal_stress_modulus = E / (1.0 - 2.0 * nu);
    }
  }
  if (m.thermal_expansion) r.expansion = m.thermal_expansion->eval(p);
  if (m.reference_temperature) r.reference_temperature = m.reference_temperature->eval(p);
  return r;
}

void FemModel::build_thermal() {
  const CsrPattern pattern = cell_pattern(mesh_, 1, 1);
  const size_t n = mesh_.num_nodes();
  const size_t nregions = mesh_.region_names.size();
  std::vector<std::vector<double>> terms;
  for (size_t r = 0; r < nregions; ++r) {
    std::vector<double> v(pattern.nnz(), 0.0);
    add_stiffness(mesh_, pattern, static_cast<int>(r), 1.0, v.data());
    terms.push_back(std::move(v));
    thermal_k_.push_back([this, r](const Params& p) { return material(static_cast<int>(r), p).conductivity; });
  }
  bool has_sink = false;  // a temperature or convection boundary makes the steady problem definite
  for (const auto& b : twin_.boundaries) {
    if (!b.thermal || b.thermal->type != spec::ThermalBcType::convection) continue;
    const int bi = mesh_.boundary_index(b.name);
    // One operator term per term of h: int h_j(x) N_i N_j over the boundary, times its factor.
    for (const auto& hj : b.thermal->h.terms) {
      std::vector<double> v(pattern.nnz(), 0.0);
      if (hj.uniform()) add_boundary_mass(mesh_, pattern, bi, hj.constant, v.data());
      else add_weighted_boundary_mass(mesh_, pattern, bi, [&](const double* x) { return hj.shape_at(x); }, v.data());
      terms.push_back(std::move(v));
      thermal_h_.push_back(factor_fn(hj));
    }
    // Some node keeps h > 0 whatever the parameters: the steady problem is definite.
    const auto g = b.thermal->h.varies_in_time() ? b.thermal->h.time_factors(check_times())
                                                 : std::vector<std::vector<double>>{};
    for (int node : boundary_nodes(mesh_, bi))
      has_sink = has_sink || b.thermal->h.bounds(twin_.parameters, &mesh_.coords[static_cast<size_t>(node) * 3], g).first > 0;
  }
  if (transient()) {
    for (size_t r = 0; r < nregions; ++r) {
      std::vector<double> v(pattern.nnz(), 0.0);
      add_mass(mesh_, pattern, static_cast<int>(r), 1.0, v.data());
      terms.push_back(std::move(v));
      thermal_c_.push_back([this, r](const Params& p) { return material(static_cast<int>(r), p).heat_capacity; });
    }
  }
  // Prescribed temperatures: a node on several temperature boundaries takes the value of the
  // last one in name order.
  std::map<int, size_t> owner;  // node -> boundary position
  std::vector<const spec::BoundarySpec*> temp_bcs;
  for (const auto& b : twin_.boundaries) {
    if (!b.thermal || b.thermal->type != spec::ThermalBcType::temperature) continue;
    for (int node : boundary_nodes(mesh_, mesh_.boundary_index(b.name))) owner[node] = temp_bcs.size();
    temp_bcs.push_back(&b);
  }
  has_sink = has_sink || !temp_bcs.empty();
  DOPPEL_VERIFY(has_sink || transient(), "boundaries",
                "a steady thermal problem needs at least one temperature boundary or a convection "
                "boundary with h > 0 (otherwise the temperature is not determined)");
  std::vector<int> dirichlet;
  for (const auto& [node, b] : owner) dirichlet.push_back(node);
  thermal_op_ = std::make_unique<AffineOperator>(pattern, std::move(terms), dirichlet);

  for (size_t i = 0; i < temp_bcs.size(); ++i) {
    std::vector<int> nodes;
    for (const auto& [node, b] : owner)
      if (b == i) nodes.push_back(node);
    add_prescribed_terms(temp_bcs[i]->thermal->value, nodes, nodes, thermal_rhs_);
  }
  for (const auto& s : twin_.sources) {
    if (!s.heat) continue;
    check_range(*s.heat, region_nodes(mesh_, mesh_.region_index(s.region)));
    const size_t nt = s.heat->terms.size();
    for (size_t j = 0; j < nt; ++j) {
      const spec::FieldTerm& f = s.heat->terms[j];
      RhsTerm t;
      t.name = s.heat->path + term_suffix(j, nt);
      t.load.assign(n, 0.0);
      add_region_load(mesh_, mesh_.region_index(s.region), [&](const double* x) { return f.shape_at(x); }, t.load.data());
      zero_rows(*thermal_op_, t.load);
      t.coef = factor_fn(f);
      thermal_rhs_.push_back(std::move(t));
    }
  }
  for (const auto& b : twin_.boundaries) {
    if (!b.thermal) continue;
    const auto type = b.thermal->type;
    if (type != spec::ThermalBcType::flux && type != spec::ThermalBcType::convection) continue;
    const int bi = mesh_.boundary_index(b.name);
    const std::vector<int> nodes = boundary_nodes(mesh_, bi);
    if (type == spec::ThermalBcType::flux) {
      const spec::Field& q = b.thermal->value;
      check_range(q, nodes);
      for (size_t j = 0; j < q.terms.size(); ++j) {
        const spec::FieldTerm& f = q.terms[j];
        RhsTerm t;
        t.name = q.path + term_suffix(j, q.terms.size());
        t.load.assign(n, 0.0);
        add_boundary_load(mesh_, bi, [&](const double* x, const double*) { return f.shape_at(x); }, t.load.data());
        zero_rows(*thermal_op_, t.load);
        t.coef = factor_fn(f);
        thermal_rhs_.push_back(std::move(t));
      }
      continue;
    }
    // Convection: int h(x) T_amb(x) N_i, one term per pair of terms of h and of the ambient.
    const spec::Field &h = b.thermal->h, &amb = b.thermal->ambient;
    check_range(h, nodes);
    check_range(amb, nodes);
    for (size_t j = 0; j < h.terms.size(); ++j)
      for (size_t l = 0; l < amb.terms.size(); ++l) {
        const spec::FieldTerm &fh = h.terms[j], &fa = amb.terms[l];
        RhsTerm t;
        t.name = amb.path + term_suffix(j * amb.terms.size() + l, h.terms.size() * amb.terms.size());
        t.load.assign(n, 0.0);
        add_boundary_load(mesh_, bi, [&](const double* x, const double*) { return fh.shape_at(x) * fa.shape_at(x); },
                          t.load.data());
        zero_rows(*thermal_op_, t.load);
        const Coefficient a = factor_fn(fh), c = factor_fn(fa);
        t.coef = [a, c](const Params& p) { return a(p) * c(p); };
        thermal_rhs_.push_back(std::move(t));
      }
  }
}

void FemModel::check_range(const spec::Field& f, const std::vector<int>& nodes) const {
  DOPPEL_VERIFY(!(f.table_dim == 2 && mesh_.dim == 3), f.path,
                "its data file has no z column, but the mesh is 3D");
  const spec::ValueRange& r = f.range;
  if (f.uniform() && f.terms.size() <= 1 && !f.varies_in_time()) return;  // checked when the twin was read
  const bool bounded = std::isfinite(r.lo) || std::isfinite(r.hi);
  const std::vector<std::vector<double>> g = f.varies_in_time() ? f.time_factors(check_times()) : std::vector<std::vector<double>>{};
  for (int node : nodes) {
    const double* x = &mesh_.coords[static_cast<size_t>(node) * 3];
    const auto [lo, hi] = f.bounds(twin_.parameters, x, g);
    DOPPEL_VERIFY(std::isfinite(lo) && std::isfinite(hi), f.path, "is not a finite number at " + point_text(x, mesh_.dim));
    if (!bounded || (r.contains(lo) && r.contains(hi))) continue;
    throw InvalidInput(f.path, std::string(r.text) + " at every node, but at " + point_text(x, mesh_.dim) + " it reaches " +
                                   std::to_string(r.contains(lo) ? hi : lo) +
                                   (f.varies_in_time() ? " over the declared ranges of its parameters and the analysis's time steps"
                                                       : " over the declared ranges of its parameters"));
  }
}

std::vector<double> FemModel::check_times() const {
  // The times the steps read values at (every step up to kMaxChecked, evenly spread beyond),
  // and the output times.
  constexpr long kMaxChecked = 20000;
  const auto& an = twin_.analysis;
  if (!an.transient) return {0.0};
  const long steps = std::max<long>(1, std::lround(an.end_time / an.time_step));
  const long count = std::min(steps, kMaxChecked);
  std::vector<double> t;
  for (long k = 0; k <= count; ++k) t.push_back(an.end_time * static_cast<double>(k) / static_cast<double>(count));
  t.insert(t.end(), an.output_times.begin(), an.output_times.end());
  return t;
}

void FemModel::add_prescribed_terms(const spec::Field& g, const std::vector<int>& dofs, const std::vector<int>& nodes,
                                    std::vector<RhsTerm>& out) const {
  check_range(g, nodes);
  for (size_t j = 0; j < g.terms.size(); ++j) {
    const spec::FieldTerm& f = g.terms[j];
    RhsTerm t;
    t.name = g.path + term_suffix(j, g.terms.size());
    t.dirichlet = dofs;
    if (!(f.uniform() && f.constant == 1.0)) {
      t.dirichlet_value.resize(dofs.size());
      for (size_t i = 0; i < dofs.size(); ++i)
        t.dirichlet_value[i] = f.shape_at(&mesh_.coords[static_cast<size_t>(nodes[i]) * 3]);
    }
    t.coef = factor_fn(f);
    out.push_back(std::move(t));
  }
  if (g.terms.empty()) {  // a prescribed zero still constrains (and names) the dofs
    RhsTerm t;
    t.name = g.path;
    t.dirichlet = dofs;
    t.coef = [](const Params&) { return 0.0; };
    out.push_back(std::move(t));
  }
}

Params FemModel::thermal_theta(const Params& p, double a, double c) const {
  Params theta;
  theta.reserve(thermal_op_->num_terms());
  for (const auto& k : thermal_k_) theta.push_back(a * k(p));
  for (const auto& h : thermal_h_) theta.push_back(a * h(p));
  for (const auto& m : thermal_c_) theta.push_back(c * m(p));
  return theta;
}

void FemModel::build_mechanical() {
  const int dim = mesh_.dim;
  const CsrPattern pattern = cell_pattern(mesh_, dim, dim);
  const size_t ndof = mesh_.num_nodes() * static_cast<size_t>(dim);
  const size_t nregions = mesh_.region_names.size();
  std::vector<std::vector<double>> terms;
  for (size_t r = 0; r < nregions; ++r) {
    std::vector<double> l(pattern.nnz(), 0.0), m(pattern.nnz(), 0.0);
    add_elastic_lambda(mesh_, pattern, static_cast<int>(r), 1.0, l.data());
    add_elastic_mu(mesh_, pattern, static_cast<int>(r), 1.0, m.data());
    terms.push_back(std::move(l));
    terms.push_back(std::move(m));
  }
  // Constrained components: the last boundary in name order wins at shared nodes.
  std::map<int, std::pair<size_t, int>> owner;  // dof -> (boundary position, component)
  std::vector<const spec::BoundarySpec*> constrained;
  for (const auto& b : twin_.boundaries) {
    if (!b.mechanical) continue;
    const auto type = b.mechanical->type;
    if (type != spec::MechanicalBcType::fixed && type != spec::MechanicalBcType::displacement) continue;
    for (int node : boundary_nodes(mesh_, mesh_.boundary_index(b.name)))
      for (int a = 0; a < dim; ++a)
        if (b.mechanical->components[static_cast<size_t>(a)]) owner[node * dim + a] = {constrained.size(), a};
    constrained.push_back(&b);
  }
  DOPPEL_VERIFY(!constrained.empty(), "boundaries",
                "a mechanical problem needs at least one fixed or displacement boundary "
                "(otherwise rigid-body motion is not restrained)");
  std::vector<int> dirichlet;
  for (const auto& [dof, who] : owner) dirichlet.push_back(dof);
  mech_op_ = std::make_unique<AffineOperator>(pattern, std::move(terms), dirichlet);

  for (size_t i = 0; i < constrained.size(); ++i) {
    const auto& bc = *constrained[i]->mechanical;
    if (bc.type != spec::MechanicalBcType::displacement) continue;
    for (int a = 0; a < dim; ++a) {
      if (!bc.components[static_cast<size_t>(a)]) continue;
      std::vector<int> dofs, nodes;
      for (const auto& [dof, who] : owner)
        if (who.first == i && who.second == a) {
          dofs.push_back(dof);
          nodes.push_back(dof / dim);
        }
      add_prescribed_terms(bc.vector[static_cast<size_t>(a)], dofs, nodes, mech_rhs_);
    }
  }
  for (const auto& s : twin_.sources) {
    for (size_t a = 0; a < s.body_force.size(); ++a) {
      const spec::Field& fa = s.body_force[a];
      check_range(fa, region_nodes(mesh_, mesh_.region_index(s.region)));
      for (size_t j = 0; j < fa.terms.size(); ++j) {
        const spec::FieldTerm& f = fa.terms[j];
        RhsTerm t;
        t.name = fa.path + term_suffix(j, fa.terms.size());
        t.load.assign(ndof, 0.0);
        add_body_force(mesh_, mesh_.region_index(s.region), static_cast<int>(a),
                       [&](const double* x) { return f.shape_at(x); }, t.load.data());
        zero_rows(*mech_op_, t.load);
        t.coef = factor_fn(f);
        mech_rhs_.push_back(std::move(t));
      }
    }
  }
  for (const auto& b : twin_.boundaries) {
    if (!b.mechanical) continue;
    const auto& bc = *b.mechanical;
    const int bi = mesh_.boundary_index(b.name);
    if (bc.type == spec::MechanicalBcType::traction) {
      for (int a = 0; a < dim; ++a) {
        const spec::Field& fa = bc.vector[static_cast<size_t>(a)];
        check_range(fa, boundary_nodes(mesh_, bi));
        for (size_t j = 0; j < fa.terms.size(); ++j) {
          const spec::FieldTerm& f = fa.terms[j];
          RhsTerm t;
          t.name = fa.path + term_suffix(j, fa.terms.size());
          t.load.assign(ndof, 0.0);
          add_boundary_vector_load(mesh_, bi, a, [&](const double* x, const double*) { return f.shape_at(x); },
                                   t.load.data());
          zero_rows(*mech_op_, t.load);
          t.coef = factor_fn(f);
          mech_rhs_.push_back(std::move(t));
        }
      }
    } else if (bc.type == spec::MechanicalBcType::pressure) {
      check_range(bc.pressure, boundary_nodes(mesh_, bi));
      for (size_t j = 0; j < bc.pressure.terms.size(); ++j) {
        const spec::FieldTerm& f = bc.pressure.terms[j];
        RhsTerm t;
        t.name = bc.pressure.path + term_suffix(j, bc.pressure.terms.size());
        t.load.assign(ndof, 0.0);
        // Positive pressure pushes into the body: traction = -p n (n outward).
        for (int a = 0; a < dim; ++a)
          add_boundary_vector_load(mesh_, bi, a,
                                   [&, a](const double* x, const double* nrm) { return -nrm[a] * f.shape_at(x); },
                                   t.load.data());
        zero_rows(*mech_op_, t.load);
        t.coef = factor_fn(f);
        mech_rhs_.push_back(std::move(t));
      }
    }
  }
  if (thermal()) {
    coupling_pattern_ = cell_pattern(mesh_, dim, 1);
    for (size_t r = 0; r < nregions; ++r) {
      std::vector<double> c(coupling_pattern_.nnz(), 0.0);
      add_thermal_coupling(mesh_, coupling_pattern_, static_cast<int>(r), 1.0, c.data());
      std::vector<double> ones(mesh_.num_nodes(), 1.0), c1(ndof, 0.0);
      spmv(coupling_pattern_, c.data(), ones.data(), c1.data());
      coupling_.push_back(std::move(c));
      coupling_ones_.push_back(std::move(c1));
    }
  }
}

Params FemModel::mechanical_theta(const Params& p) const {
  Params theta;
  for (size_t r = 0; r < mesh_.region_names.size(); ++r) {
    const RegionMaterial m = material(static_cast<int>(r), p);
    theta.push_back(m.lambda);
    theta.push_back(m.mu);
  }
  return theta;
}

void FemModel::add_thermal_strain_load(const Params& p, const double* T, double* b) const {
  if (coupling_.empty()) return;
  const size_t ndof = static_cast<size_t>(mech_op_->size());
  std::vector<double> tmp(ndof);
  for (size_t r = 0; r < coupling_.size(); ++r) {
    const RegionMaterial m = material(static_cast<int>(r), p);
    const double s = m.thermal_stress_modulus * m.expansion;
    if (s == 0.0) continue;
    spmv(coupling_pattern_, coupling_[r].data(), T, tmp.data());
    for (size_t i = 0; i < ndof; ++i) {
      if (mech_op_->is_dirichlet(static_cast<int>(i))) continue;
      b[i] += s * (tmp[i] - m.reference_temperature * coupling_ones_[r][i]);
    }
  }
}

void FemModel::add_thermal_strain_loads(const std::vector<Params>& p, const Eigen::MatrixXd& T,
                                        Eigen::MatrixXd& B) const {
  if (coupling_.empty() || p.empty()) return;
  const Eigen::Index S = static_cast<Eigen::Index>(p.size());
  DOPPEL_ASSERT(T.cols() >= S && B.cols() >= S && B.rows() == mech_op_->size());
  const CsrPattern& cp = coupling_pattern_;
  constexpr Eigen::Index kColumns = 16;  // columns per task: one read of a region's matrix serves them
  for (size_t r = 0; r < coupling_.size(); ++r) {
    std::vector<double> s(p.size()), tref(p.size());
    bool any = false;
    for (size_t j = 0; j < p.size(); ++j) {
      const RegionMaterial m = material(static_cast<int>(r), p[j]);
      s[j] = m.thermal_stress_modulus * m.expansion;
      tref[j] = m.reference_temperature;
      any = any || s[j] != 0.0;
    }
    if (!any) continue;
    const Eigen::Map<const Eigen::SparseMatrix<double, Eigen::RowMajor, int>> C(
        cp.rows, cp.cols, static_cast<Eigen::Index>(cp.nnz()), cp.row_ptr.data(), cp.col.data(), coupling_[r].data());
    const Eigen::Map<const Eigen::VectorXd> ones(coupling_ones_[r].data(), cp.rows);
    parallel_for(static_cast<size_t>((S + kColumns - 1) / kColumns), [&](size_t b) {
      const Eigen::Index c0 = static_cast<Eigen::Index>(b) * kColumns, w = std::min(kColumns, S - c0);
      Eigen::MatrixXd CT = C * T.middleCols(c0, w);
      for (Eigen::Index j = 0; j < w; ++j) {
        const size_t sj = static_cast<size_t>(c0 + j);
        if (s[sj] == 0.0) continue;
        auto col = B.col(c0 + j);
        for (Eigen::Index i = 0; i < cp.rows; ++i)
          if (!mech_op_->is_dirichlet(static_cast<int>(i))) col[i] += s[sj] * (CT(i, j) - tref[sj] * ones[i]);
      }
    });
  }
}

void FemModel::assemble_rhs(const AffineOperator& op, const std::vector<RhsTerm>& terms,
                            const Params& theta, const Params& p, double* out) {
  const size_t n = static_cast<size_t>(op.size());
  std::vector<double> g(n, 0.0), lift(n, 0.0);
  std::fill(out, out + n, 0.0);
  bool any_g = false;
  for (const auto& t : terms) {
    const double c = t.coef(p);
    if (c == 0.0) continue;
    if (!t.load.empty())
      for (size_t i = 0; i < n; ++i) out[i] += c * t.load[i];
    for (size_t i = 0; i < t.dirichlet.size(); ++i) g[static_cast<size_t>(t.dirichlet[i])] += c * t.prescribed(i);
    any_g = any_g || !t.dirichlet.empty();
  }
  if (any_g) {
    op.apply_free_rows(theta.data(), g.data(), lift.data());
    for (size_t i = 0; i < n; ++i) out[i] -= lift[i];
  }
  for (int d : op.dirichlet_dofs()) out[d] = g[static_cast<size_t>(d)];
}

void FemModel::assemble_unit_rhs(const AffineOperator& op, const RhsTerm& term, const Params& theta,
                                 double* out) {
  const size_t n = static_cast<size_t>(op.size());
  std::fill(out, out + n, 0.0);
  if (!term.load.empty()) std::copy(term.load.begin(), term.load.end(), out);
  if (!term.dirichlet.empty()) {
    std::vector<double> g(n, 0.0), lift(n, 0.0);
    for (size_t i = 0; i < term.dirichlet.size(); ++i) g[static_cast<size_t>(term.dirichlet[i])] = term.prescribed(i);
    op.apply_free_rows(theta.data(), g.data(), lift.data());
    for (size_t i = 0; i < n; ++i) out[i] -= lift[i];
    for (size_t i = 0; i < term.dirichlet.size(); ++i) out[term.dirichlet[i]] = term.prescribed(i);
  }
}

void FemModel::apply_dirichlet(const std::vector<RhsTerm>& terms, const Params& p, double* x) {
  for (const auto& t : terms)
    for (int d : t.dirichlet) x[d] = 0.0;
  for (const auto& t : terms) {
    if (t.dirichlet.empty()) continue;
    const double c = t.coef(p);
    for (size_t i = 0; i < t.dirichlet.size(); ++i) x[t.dirichlet[i]] += c * t.prescribed(i);
  }
}

}  // namespace doppel

namespace doppel {

RhsBlock::RhsBlock(const AffineOperator& op, const std::vector<RhsTerm>& terms) : op_(op), terms_(terms) {
  const int n = op.size();
  const size_t K = op.num_terms();
  for (size_t m = 0; m < terms.size(); ++m) {
    if (!terms[m].load.empty()) columns_.push_back({m, kLoad});
    if (!terms[m].dirichlet.empty()) {
      for (size_t k = 0; k < K; ++k) columns_.push_back({m, static_cast<int>(k)});
      columns_.push_back({m, kValue});
    }
  }
  W_.setZero(n, static_cast<Eigen::Index>(columns_.size()));
  parallel_for(columns_.size(), [&](size_t c) {
    const RhsTerm& t = terms[columns_[c].term];
    double* w = W_.col(static_cast<Eigen::Index>(c)).data();
    if (columns_[c].op_term == kValue) {
      for (size_t i = 0; i < t.dirichlet.size(); ++i) w[t.dirichlet[i]] = t.prescribed(i);
      return;
    }
    if (columns_[c].op_term == kLoad) {
      std::copy(t.load.begin(), t.load.end(), w);
    } else {
      std::vector<double> g(static_cast<size_t>(n), 0.0), unit(K, 0.0);
      for (size_t i = 0; i < t.dirichlet.size(); ++i) g[static_cast<size_t>(t.dirichlet[i])] = t.prescribed(i);
      unit[static_cast<size_t>(columns_[c].op_term)] = 1.0;
      op.apply_free_rows(unit.data(), g.data(), w);  // A_k,fD 1_m on the free rows, 0 on the prescribed
      for (int i = 0; i < n; ++i) w[i] = -w[i];
    }
    // Constrained rows carry the prescribed values alone (assemble_rhs: 0 where no term sets them).
    for (int d : op.dirichlet_dofs()) w[d] = 0.0;
  });
}

Eigen::MatrixXd RhsBlock::coefficients(const std::vector<Params>& theta, const std::vector<Params>& p) const {
  const size_t S = p.size();
  DOPPEL_ASSERT(theta.size() == S);
  std::vector<double> phi(terms_.size() * S);  // phi_m(p_s), term-major
  parallel_for(S, [&](size_t s) {
    for (size_t m = 0; m < terms_.size(); ++m) phi[m * S + s] = terms_[m].coef(p[s]);
  });
  Eigen::MatrixXd Y(static_cast<Eigen::Index>(columns_.size()), static_cast<Eigen::Index>(S));
  for (size_t c = 0; c < columns_.size(); ++c)
    for (size_t s = 0; s < S; ++s) {
      const double f = phi[columns_[c].term * S + s];
      Y(static_cast<Eigen::Index>(c), static_cast<Eigen::Index>(s)) =
          columns_[c].op_term < 0 ? f : theta[s][static_cast<size_t>(columns_[c].op_term)] * f;
    }
  return Y;
}

void RhsBlock::add_load_coefficients(const std::vector<Params>& p, double scale, Eigen::MatrixXd& Y) const {
  DOPPEL_ASSERT(Y.rows() == columns() && static_cast<size_t>(Y.cols()) == p.size());
  for (size_t c = 0; c < columns_.size(); ++c) {
    if (columns_[c].op_term != kLoad) continue;
    const RhsTerm& t = terms_[columns_[c].term];
    for (size_t s = 0; s < p.size(); ++s) Y(static_cast<Eigen::Index>(c), static_cast<Eigen::Index>(s)) += scale * t.coef(p[s]);
  }
}

void RhsBlock::assemble(const std::vector<Params>& theta, const std::vector<Params>& p, Eigen::MatrixXd& B) const {
  const size_t S = p.size();
  DOPPEL_ASSERT(theta.size() == S);
  const Eigen::Index n = op_.size();
  B.resize(n, static_cast<Eigen::Index>(S));
  if (columns_.empty()) B.setZero();
  else B.noalias() = W_ * coefficients(theta, p);
}

}  // namespace doppel
