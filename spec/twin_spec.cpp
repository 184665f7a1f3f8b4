#include "spec/twin_spec.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <set>
#include <sstream>

#include <unistd.h>

#include "spec/errors.hpp"
#include "spec/hash.hpp"
#include "spec/json_reader.hpp"

namespace doppel::spec {
namespace {

constexpr const char* kQuantityNames[] = {
    "temperature", "heat_flux_x", "heat_flux_y", "heat_flux_z",
    "displacement_x", "displacement_y", "displacement_z", "displacement_magnitude",
    "strain_xx", "strain_yy", "strain_zz", "strain_xy", "strain_yz", "strain_xz",
    "stress_xx", "stress_yy", "stress_zz", "stress_xy", "stress_yz", "stress_xz",
    "von_mises"};

// A number as a person writes it (-273.15, 1e+12), for messages.
std::string number_text(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

using Range = ValueRange;
const Range kAny{};
const Range kPositive{0.0, std::numeric_limits<double>::infinity(), true, false, "must be > 0", ""};
const Range kNonNegative{0.0, std::numeric_limits<double>::infinity(), false, false,
                         "must be >= 0", ""};
const Range kPoisson{-1.0, 0.5, true, true, "must lie in (-1, 0.5)", ""};
const Range kCelsius{-273.15, std::numeric_limits<double>::infinity(), false, false,
                     "must be >= -273.15 (absolute zero in degC)", ""};

class TwinParser {
 public:
  explicit TwinParser(const std::filesystem::path& base_dir) { twin_.base_dir = base_dir; }

  TwinSpec parse(const Json& root) {
    require_known_keys(root, "", {"name", "mesh", "physics", "analysis", "materials", "regions",
                                  "boundaries", "sources", "parameters", "sensors", "outputs",
                                  "limits", "description"});
    twin_.name = read_string(require_key(root, "", "name"), "name");
    check_twin_name(twin_.name);
    if (root.contains("parameters")) parse_parameters(root["parameters"]);
    parse_mesh(require_key(root, "", "mesh"));
    parse_physics(require_key(root, "", "physics"));
    check_generated_mesh_size();
    if (root.contains("analysis")) parse_analysis(root["analysis"]);
    DOPPEL_VERIFY(!twin_.analysis.transient || twin_.thermal, "analysis.type",
                  "a transient analysis needs physics.thermal");
    parse_materials(require_key(root, "", "materials"));
    parse_regions(require_key(root, "", "regions"));
    if (root.contains("boundaries")) parse_boundaries(root["boundaries"]);
    if (root.contains("sources")) parse_sources(root["sources"]);
    if (root.contains("sensors")) parse_sensors(root["sensors"]);
    if (root.contains("outputs")) parse_outputs(root["outputs"]);
    if (root.contains("limits")) parse_limits(root["limits"]);
    check_material_properties();
    return std::move(twin_);
  }

 private:
  TwinSpec twin_;

  int dimension() const { return twin_.declared_dimension(); }

  // The twin's name is its id in every URL (/v1/twins/{id}/...), in metrics labels, bundles and
  // the database: letters, digits, '_', '.' and '-' only, so it never needs escaping.
  static void check_twin_name(const std::string& name) {
    DOPPEL_VERIFY(!name.empty(), "name", "must not be empty");
    DOPPEL_VERIFY(name.size() <= 128, "name", "is " + std::to_string(name.size()) + " characters long; at most 128");
    for (unsigned char c : name)
      DOPPEL_VERIFY(std::isalnum(c) || c == '_' || c == '.' || c == '-', "name",
                    "'" + name + "' may hold only letters, digits, '_', '.' and '-' (it is the twin's id in URLs)");
    DOPPEL_VERIFY(name != "." && name != "..", "name", "'" + name + "' is not a usable id");
  }

  static void check_name(const std::string& name, const std::string& path) {
    DOPPEL_VERIFY(!name.empty(), path, "names must not be empty");
  }

  // A value `scale` * parameter at `path` must keep `range` over the parameter's whole declared
  // range; with scale 1 the parameter also keeps the range itself (scenarios answered by FEM
  // beyond the declared bounds must stay inside it).
  void check_parameter_use(int parameter, double scale, const std::string& path, const Range& range) {
    Parameter& p = twin_.parameters[static_cast<size_t>(parameter)];
    if (scale == 1.0 && (std::isfinite(range.lo) || std::isfinite(range.hi))) {
      Range used = range;
      used.used_at = path;
      p.physical.push_back(used);
    }
    DOPPEL_VERIFY(range.contains(scale * p.min) && range.contains(scale * p.max), path,
                  std::string(range.text) + " over the whole range of parameter '" + p.name + "' ([" +
                      std::to_string(p.min) + ", " + std::to_string(p.max) + "])");
  }

  // A number or "$parameter"; the physical range applies to the constant or to both bounds
  // of the referenced parameter.
  Value read_value(const Json& j, const std::string& path, const Range& range) {
    Value v;
    if (j.is_string()) {
      const std::string s = j.get<std::string>();
      DOPPEL_VERIFY(s.size() > 1 && s[0] == '$', path,
                    "expected a number or a parameter reference \"$name\", got \"" + s + "\"");
      v.parameter = twin_.parameter_index(s.substr(1));
      DOPPEL_VERIFY(v.parameter >= 0, path, "references undefined parameter '" + s.substr(1) + "'");
      check_parameter_use(v.parameter, 1.0, path, range);
      return v;
    }
    v.constant = read_finite(j, path);
    DOPPEL_VERIFY(range.contains(v.constant), path, range.text);
    return v;
  }

  // A boundary or source value (spec/field.hpp). A value uniform in space with one term is
  // checked here like read_value (a parameter factor keeps the range); one that varies in space
  // is checked at the mesh's nodes when the model is built (FemModel), and a parameter scaling
  // it must then stay inside its declared range.
  Field read_field(const Json& j, const std::string& path, const Range& range) {
    FieldContext cx;
    cx.parameters = &twin_.parameters;
    cx.base_dir = twin_.base_dir;
    cx.dim = dimension();
    cx.transient = twin_.analysis.transient;
    cx.files = &twin_.data_files;
    Field f = parse_field(j, path, cx);
    f.range = range;
    const bool bounded = std::isfinite(range.lo) || std::isfinite(range.hi);
    if (f.varies_in_time()) twin_.time_varying.push_back(path);
    if (f.uniform() && f.terms.size() <= 1 && !f.varies_in_time()) {
      FieldTerm one;
      one.constant = 0.0;
      if (!f.terms.empty()) one = f.terms[0];
      if (one.parameter < 0) {
        DOPPEL_VERIFY(range.contains(one.constant), path, range.text);
        return f;
      }
      check_parameter_use(one.parameter, one.constant, path, range);
      if (bounded && one.constant == 1.0) return f;
    }
    if (!bounded) return f;
    for (const auto& t : f.terms) {
      if (t.parameter < 0) continue;
      Parameter& p = twin_.parameters[static_cast<size_t>(t.parameter)];
      Range declared{p.min, p.max, false, false, "must stay inside its declared range: it scales a value checked over that range", path};
      p.physical.push_back(declared);
    }
    return f;
  }

  std::vector<Field> read_field_vector(const Json& j, const std::string& path) {
    require_array(j, path);
    const int dim = dimension();
    if (dim > 0) {
      DOPPEL_VERIFY(j.size() == static_cast<size_t>(dim), path,
                    "expected " + std::to_string(dim) + " components, got " +
                        std::to_string(j.size()));
    } else {
      DOPPEL_VERIFY(j.size() == 2 || j.size() == 3, path, "expected 2 or 3 components");
    }
    std::vector<Field> out;
    for (size_t i = 0; i < j.size(); ++i) out.push_back(read_field(j[i], index_path(path, i), kAny));
    return out;
  }

  std::vector<double> read_point(const Json& j, const std::string& path) {
    const int dim = dimension();
    std::vector<double> p = read_number_array(j, path, dim > 0 ? dim : 2, dim > 0 ? dim : 3);
    return p;
  }

  void parse_parameters(const Json& j) {
    require_object(j, "parameters");
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string path = join_path("parameters", it.key());
      check_name(it.key(), path);
      const Json& p = it.value();
      require_known_keys(p, path, {"default", "min", "max", "unit", "role", "cost", "description"});
      Parameter par;
      par.name = it.key();
      par.default_value = read_finite(require_key(p, path, "default"), join_path(path, "default"));
      par.min = p.contains("min") ? read_finite(p["min"], join_path(path, "min")) : par.default_value;
      par.max = p.contains("max") ? read_finite(p["max"], join_path(path, "max")) : par.default_value;
      DOPPEL_VERIFY(par.min <= par.max, join_path(path, "max"), "must be >= min");
      DOPPEL_VERIFY(par.default_value >= par.min && par.default_value <= par.max,
                    join_path(path, "default"), "must lie within [min, max]");
      if (p.contains("unit")) par.unit = read_string(p["unit"], join_path(path, "unit"));
      if (p.contains("description")) read_string(p["description"], join_path(path, "description"));
      if (p.contains("role")) {
        const std::string role = read_string(p["role"], join_path(path, "role"));
        if (role == "load") par.role = ParameterRole::load;
        else if (role == "control") par.role = ParameterRole::control;
        else if (role == "latent") par.role = ParameterRole::latent;
        else throw InvalidInput(join_path(path, "role"),
                                "must be one of load, control, latent (got \"" + role + "\")");
      }
      if (p.contains("cost")) {
        par.cost = read_finite(p["cost"], join_path(path, "cost"));
        DOPPEL_VERIFY(par.role == ParameterRole::control, join_path(path, "cost"),
                      "only control parameters have a cost (the recommendation minimizes it)");
      }
      twin_.parameters.push_back(par);
    }
  }

  void parse_mesh(const Json& j) {
    const std::string path = "mesh";
    require_object(j, path);
    MeshSpec& m = twin_.mesh;
    if (j.contains("file")) {
      require_known_keys(j, path, {"file"});
      m.kind = MeshSpec::Kind::file;
      const std::string f = read_string(j["file"], "mesh.file");
      DOPPEL_VERIFY(!f.empty(), "mesh.file", "must not be empty");
      std::filesystem::path p(f);
      m.file = p.is_absolute() ? p : (twin_.base_dir / p);
      require_regular_file(m.file, "mesh.file", "mesh file");
      return;
    }
    require_known_keys(j, path, {"generate", "size", "cells", "order", "origin"});
    const std::string g = read_string(require_key(j, path, "generate"), "mesh.generate");
    size_t dim = 0;
    if (g == "rectangle") { m.kind = MeshSpec::Kind::rectangle; dim = 2; }
    else if (g == "box") { m.kind = MeshSpec::Kind::box; dim = 3; }
    else throw InvalidInput("mesh.generate", "must be \"rectangle\" or \"box\" (got \"" + g + "\")");
    m.size = read_number_array(require_key(j, path, "size"), "mesh.size", dim, dim);
    for (size_t i = 0; i < dim; ++i)
      DOPPEL_VERIFY(m.size[i] > 0, index_path("mesh.size", i), "must be > 0");
    const Json& cells = require_key(j, path, "cells");
    require_array(cells, "mesh.cells");
    DOPPEL_VERIFY(cells.size() == dim, "mesh.cells", "expected " + std::to_string(dim) + " integers");
    for (size_t i = 0; i < dim; ++i) {
      int c = read_int(cells[i], index_path("mesh.cells", i));
      DOPPEL_VERIFY(c >= 1 && c <= 100000, index_path("mesh.cells", i), "must lie in [1, 100000]");
      m.cells.push_back(c);
    }
    m.origin = j.contains("origin") ? read_number_array(j["origin"], "mesh.origin", dim, dim)
                                    : std::vector<double>(dim, 0.0);
    m.order = j.contains("order") ? read_int(j["order"], "mesh.order") : 1;
    DOPPEL_VERIFY(m.order == 1 || m.order == 2, "mesh.order", "must be 1 or 2");
  }

  // A generated mesh whose declared cells need more memory than this machine has, counted
  // before anything is allocated: the nodes, the cells and one sparse operator (a lower bound:
  // a factorization or a batch needs several times that).
  void check_generated_mesh_size() const {
    const MeshSpec& m = twin_.mesh;
    if (m.kind == MeshSpec::Kind::file) return;
    const size_t dim = m.cells.size();
    double nodes = 1, cells = dim == 2 ? 2 : 6;  // triangles per square, tetrahedra per cube
    for (int c : m.cells) {
      nodes *= m.order * c + 1.0;
      cells *= c;
    }
    const double per_cell = dim == 2 ? (m.order == 1 ? 3 : 6) : (m.order == 1 ? 4 : 10);
    const double row_nodes = dim == 2 ? (m.order == 1 ? 7 : 19) : (m.order == 1 ? 15 : 65);  // couplings per node
    const double dofs = (twin_.thermal ? 1.0 : 0.0) + (twin_.mechanical ? static_cast<double>(dim) : 0.0);
    const double bytes = nodes * 24 + cells * per_cell * 4 + nodes * dofs * row_nodes * dofs * 12;
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
    const double memory = pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : 0;
    if (memory > 0 && bytes > memory) {
      std::ostringstream msg;
      msg.precision(3);
      msg << "these cells make " << nodes << " nodes and " << cells << " cells, needing at least " << bytes / (1u << 30)
          << " GiB for the mesh and one operator; this machine has " << memory / (1u << 30) << " GiB";
      throw InvalidInput("mesh.cells", msg.str());
    }
  }

  void parse_physics(const Json& j) {
    require_known_keys(j, "physics", {"thermal", "mechanical"});
    DOPPEL_VERIFY(j.contains("thermal") || j.contains("mechanical"), "physics",
                  "needs \"thermal\", \"mechanical\" or both");
    if (j.contains("thermal")) {
      require_known_keys(j["thermal"], "physics.thermal", {});
      twin_.thermal = true;
    }
    if (j.contains("mechanical")) {
      const Json& m = j["mechanical"];
      require_known_keys(m, "physics.mechanical", {"formulation", "thickness"});
      MechanicalSpec mech;
      const std::string f = read_string(require_key(m, "physics.mechanical", "formulation"),
                                        "physics.mechanical.formulation");
      if (f == "plane_stress") mech.formulation = Formulation::plane_stress;
      else if (f == "plane_strain") mech.formulation = Formulation::plane_strain;
      else if (f == "3d") mech.formulation = Formulation::three_d;
      else throw InvalidInput("physics.mechanical.formulation",
                              "must be plane_stress, plane_strain or 3d (got \"" + f + "\")");
      if (m.contains("thickness")) {
        DOPPEL_VERIFY(mech.formulation == Formulation::plane_stress, "physics.mechanical.thickness",
                      "applies to plane_stress only");
        mech.thickness = read_finite(m["thickness"], "physics.mechanical.thickness");
        DOPPEL_VERIFY(mech.thickness > 0, "physics.mechanical.thickness", "must be > 0");
      }
      const bool mesh_3d = twin_.mesh.kind == MeshSpec::Kind::box;
      const bool mesh_2d = twin_.mesh.kind == MeshSpec::Kind::rectangle;
      if (mesh_3d)
        DOPPEL_VERIFY(mech.formulation == Formulation::three_d, "physics.mechanical.formulation",
                      "a box mesh needs the 3d formulation");
      if (mesh_2d)
        DOPPEL_VERIFY(mech.formulation != Formulation::three_d, "physics.mechanical.formulation",
                      "a rectangle mesh needs plane_stress or plane_strain");
      twin_.mechanical = mech;
    }
  }

  void parse_analysis(const Json& j) {
    require_object(j, "analysis");
    const std::string type = read_string(require_key(j, "analysis", "type"), "analysis.type");
    AnalysisSpec& a = twin_.analysis;
    if (type == "steady") {
      require_known_keys(j, "analysis", {"type"});
      a.transient = false;
      return;
    }
    DOPPEL_VERIFY(type == "transient", "analysis.type",
                  "must be \"steady\" or \"transient\" (got \"" + type + "\")");
    require_known_keys(j, "analysis", {"type", "end_time", "time_step", "initial_temperature",
                                       "output_times", "scheme"});
    a.transient = true;
    a.end_time = read_finite(require_key(j, "analysis", "end_time"), "analysis.end_time");
    DOPPEL_VERIFY(a.end_time > 0, "analysis.end_time", "must be > 0");
    a.time_step = read_finite(require_key(j, "analysis", "time_step"), "analysis.time_step");
    DOPPEL_VERIFY(a.time_step > 0, "analysis.time_step", "must be > 0");
    const double steps = a.end_time / a.time_step;
    DOPPEL_VERIFY(steps <= 1e7, "analysis.time_step", "gives more than 10^7 steps");
    DOPPEL_VERIFY(std::fabs(steps - std::round(steps)) <= 1e-9 * std::max(1.0, steps),
                  "analysis.time_step", "must divide end_time into a whole number of steps");
    a.initial_temperature = read_finite(require_key(j, "analysis", "initial_temperature"),
                                        "analysis.initial_temperature");
    DOPPEL_VERIFY(kCelsius.contains(a.initial_temperature), "analysis.initial_temperature",
                  kCelsius.text);
    if (j.contains("output_times")) {
      a.output_times = read_number_array(j["output_times"], "analysis.output_times", 1, 100000);
      for (size_t i = 0; i < a.output_times.size(); ++i) {
        const std::string p = index_path("analysis.output_times", i);
        DOPPEL_VERIFY(a.output_times[i] >= 0 && a.output_times[i] <= a.end_time * (1 + 1e-12), p,
                      "must lie in [0, end_time]");
        DOPPEL_VERIFY(i == 0 || a.output_times[i] > a.output_times[i - 1], p,
                      "output times must increase");
      }
    } else {
      const long n = std::lround(steps);
      for (long s = 1; s <= n; ++s) a.output_times.push_back(a.time_step * static_cast<double>(s));
    }
    if (j.contains("scheme")) {
      const std::string s = read_string(j["scheme"], "analysis.scheme");
      if (s == "backward_euler") a.scheme = TimeScheme::backward_euler;
      else if (s == "bdf2") a.scheme = TimeScheme::bdf2;
      else if (s == "crank_nicolson") a.scheme = TimeScheme::crank_nicolson;
      else throw InvalidInput("analysis.scheme",
                              "must be backward_euler, bdf2 or crank_nicolson (got \"" + s + "\")");
    }
  }

  void parse_materials(const Json& j) {
    require_object(j, "materials");
    DOPPEL_VERIFY(!j.empty(), "materials", "must define at least one material");
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string path = join_path("materials", it.key());
      check_name(it.key(), path);
      const Json& m = it.value();
      require_known_keys(m, path, {"conductivity", "density", "specific_heat", "youngs_modulus",
                                   "poisson_ratio", "thermal_expansion", "reference_temperature",
                                   "description"});
      Material mat;
      mat.name = it.key();
      auto opt = [&](const char* key, const Range& r) -> std::optional<Value> {
        if (!m.contains(key)) return std::nullopt;
        return read_value(m[key], join_path(path, key), r);
      };
      mat.conductivity = opt("conductivity", kPositive);
      mat.density = opt("density", kPositive);
      mat.specific_heat = opt("specific_heat", kPositive);
      mat.youngs_modulus = opt("youngs_modulus", kPositive);
      mat.poisson_ratio = opt("poisson_ratio", kPoisson);
      mat.thermal_expansion = opt("thermal_expansion", kAny);
      mat.reference_temperature = opt("reference_temperature", kCelsius);
      if (m.contains("description")) read_string(m["description"], join_path(path, "description"));
      twin_.materials.push_back(mat);
    }
  }

  int material_index(const std::string& name) const {
    for (size_t i = 0; i < twin_.materials.size(); ++i)
      if (twin_.materials[i].name == name) return static_cast<int>(i);
    return -1;
  }

  void parse_regions(const Json& j) {
    require_object(j, "regions");
    DOPPEL_VERIFY(!j.empty(), "regions", "must assign a material to at least one region");
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string path = join_path("regions", it.key());
      check_name(it.key(), path);
      const std::string mat = read_string(it.value(), path);
      RegionAssignment r;
      r.region = it.key();
      r.material = material_index(mat);
      DOPPEL_VERIFY(r.material >= 0, path, "references undefined material '" + mat + "'");
      twin_.regions.push_back(r);
    }
  }

  ThermalBc parse_thermal_bc(const Json& j, const std::string& path) {
    require_object(j, path);
    const std::string type = read_string(require_key(j, path, "type"), join_path(path, "type"));
    ThermalBc bc;
    if (type == "temperature") {
      require_known_keys(j, path, {"type", "value"});
      bc.type = ThermalBcType::temperature;
      bc.value = read_field(require_key(j, path, "value"), join_path(path, "value"), kCelsius);
    } else if (type == "flux") {
      require_known_keys(j, path, {"type", "value"});
      bc.type = ThermalBcType::flux;
      bc.value = read_field(require_key(j, path, "value"), join_path(path, "value"), kAny);
    } else if (type == "convection") {
      require_known_keys(j, path, {"type", "h", "ambient"});
      bc.type = ThermalBcType::convection;
      bc.h = read_field(require_key(j, path, "h"), join_path(path, "h"), kNonNegative);
      bc.ambient = read_field(require_key(j, path, "ambient"), join_path(path, "ambient"), kCelsius);
    } else if (type == "insulated") {
      require_known_keys(j, path, {"type"});
      bc.type = ThermalBcType::insulated;
    } else {
      throw InvalidInput(join_path(path, "type"),
                         "must be temperature, flux, convection or insulated (got \"" + type + "\")");
    }
    return bc;
  }

  MechanicalBc parse_mechanical_bc(const Json& j, const std::string& path) {
    require_object(j, path);
    const std::string type = read_string(require_key(j, path, "type"), join_path(path, "type"));
    MechanicalBc bc;
    auto read_components = [&](const Json& c, const std::string& p) {
      require_array(c, p);
      DOPPEL_VERIFY(!c.empty(), p, "must name at least one component");
      bc.components = {false, false, false};
      for (size_t i = 0; i < c.size(); ++i) {
        const std::string s = read_string(c[i], index_path(p, i));
        int axis = s == "x" ? 0 : s == "y" ? 1 : s == "z" ? 2 : -1;
        DOPPEL_VERIFY(axis >= 0, index_path(p, i), "must be \"x\", \"y\" or \"z\"");
        DOPPEL_VERIFY(axis < 2 || dimension() != 2, index_path(p, i),
                      "\"z\" is not a component of a 2D problem");
        bc.components[static_cast<size_t>(axis)] = true;
      }
    };
    if (type == "fixed") {
      require_known_keys(j, path, {"type", "components"});
      bc.type = MechanicalBcType::fixed;
      if (j.contains("components")) read_components(j["components"], join_path(path, "components"));
    } else if (type == "displacement") {
      require_known_keys(j, path, {"type", "value", "components"});
      bc.type = MechanicalBcType::displacement;
      bc.vector = read_field_vector(require_key(j, path, "value"), join_path(path, "value"));
      if (j.contains("components")) read_components(j["components"], join_path(path, "components"));
    } else if (type == "traction") {
      require_known_keys(j, path, {"type", "value"});
      bc.type = MechanicalBcType::traction;
      bc.vector = read_field_vector(require_key(j, path, "value"), join_path(path, "value"));
    } else if (type == "pressure") {
      require_known_keys(j, path, {"type", "value"});
      bc.type = MechanicalBcType::pressure;
      bc.pressure = read_field(require_key(j, path, "value"), join_path(path, "value"), kAny);
    } else if (type == "free") {
      require_known_keys(j, path, {"type"});
      bc.type = MechanicalBcType::free;
    } else {
      throw InvalidInput(join_path(path, "type"),
                         "must be fixed, displacement, traction, pressure or free (got \"" + type +
                             "\")");
    }
    return bc;
  }

  void parse_boundaries(const Json& j) {
    require_object(j, "boundaries");
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string path = join_path("boundaries", it.key());
      check_name(it.key(), path);
      require_known_keys(it.value(), path, {"thermal", "mechanical"});
      BoundarySpec b;
      b.name = it.key();
      if (it.value().contains("thermal")) {
        DOPPEL_VERIFY(twin_.thermal, join_path(path, "thermal"),
                      "a thermal boundary condition needs physics.thermal");
        b.thermal = parse_thermal_bc(it.value()["thermal"], join_path(path, "thermal"));
      }
      if (it.value().contains("mechanical")) {
        DOPPEL_VERIFY(twin_.mechanical.has_value(), join_path(path, "mechanical"),
                      "a mechanical boundary condition needs physics.mechanical");
        b.mechanical = parse_mechanical_bc(it.value()["mechanical"], join_path(path, "mechanical"));
      }
      twin_.boundaries.push_back(std::move(b));
    }
  }

  void parse_sources(const Json& j) {
    require_object(j, "sources");
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string path = join_path("sources", it.key());
      check_name(it.key(), path);
      require_known_keys(it.value(), path, {"heat", "body_force"});
      SourceSpec s;
      s.region = it.key();
      bool assigned = false;
      for (const auto& r : twin_.regions) assigned = assigned || r.region == s.region;
      DOPPEL_VERIFY(assigned, path, "region '" + s.region + "' has no entry in regions");
      if (it.value().contains("heat")) {
        DOPPEL_VERIFY(twin_.thermal, join_path(path, "heat"), "a heat source needs physics.thermal");
        s.heat = read_field(it.value()["heat"], join_path(path, "heat"), kAny);
      }
      if (it.value().contains("body_force")) {
        DOPPEL_VERIFY(twin_.mechanical.has_value(), join_path(path, "body_force"),
                      "a body force needs physics.mechanical");
        s.body_force = read_field_vector(it.value()["body_force"], join_path(path, "body_force"));
      }
      twin_.sources.push_back(std::move(s));
    }
  }

  Quantity read_quantity(const Json& j, const std::string& path) {
    const std::string q = read_string(j, path);
    auto quantity = quantity_from_name(q);
    DOPPEL_VERIFY(quantity.has_value(), path, "unknown quantity \"" + q + "\"");
    DOPPEL_VERIFY(!quantity_is_mechanical(*quantity) || twin_.mechanical, path,
                  "\"" + q + "\" needs physics.mechanical");
    DOPPEL_VERIFY(!quantity_is_thermal(*quantity) || twin_.thermal, path,
                  "\"" + q + "\" needs physics.thermal");
    if (dimension() == 2) {
      const bool z = *quantity == Quantity::heat_flux_z || *quantity == Quantity::displacement_z ||
                     *quantity == Quantity::strain_yz || *quantity == Quantity::strain_xz ||
                     *quantity == Quantity::stress_yz || *quantity == Quantity::stress_xz;
      DOPPEL_VERIFY(!z, path, "\"" + q + "\" does not exist in a 2D problem");
    }
    return *quantity;
  }

  void parse_sensors(const Json& j) {
    require_object(j, "sensors");
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string path = join_path("sensors", it.key());
      check_name(it.key(), path);
      require_known_keys(it.value(), path, {"quantity", "at", "noise_std", "unit", "description", "range"});
      Sensor s;
      s.name = it.key();
      s.quantity = read_quantity(require_key(it.value(), path, "quantity"), join_path(path, "quantity"));
      s.at = read_point(require_key(it.value(), path, "at"), join_path(path, "at"));
      s.noise_std = read_finite(require_key(it.value(), path, "noise_std"), join_path(path, "noise_std"));
      DOPPEL_VERIFY(s.noise_std > 0, join_path(path, "noise_std"), "must be > 0");
      if (it.value().contains("range")) {
        const std::string rp = join_path(path, "range");
        const Json& r = it.value()["range"];
        DOPPEL_VERIFY(r.is_array() && r.size() == 2, rp, "must be [min, max], the instrument's measuring range");
        const double lo = read_finite(r[0], rp + "[0]"), hi = read_finite(r[1], rp + "[1]");
        DOPPEL_VERIFY(lo < hi, rp, "min must be below max");
        // Within what the quantity can physically be (the body's size is not known yet here).
        const auto [plo, phi] = plausible_range(s.quantity, std::numeric_limits<double>::infinity());
        DOPPEL_VERIFY(lo >= plo, rp + "[0]", std::string("lies below what ") + quantity_name(s.quantity) + " can be (" + number_text(plo) + ")");
        DOPPEL_VERIFY(hi <= phi, rp + "[1]", std::string("lies above what ") + quantity_name(s.quantity) + " can be (" + number_text(phi) + ")");
        s.range = std::make_pair(lo, hi);
      }
      twin_.sensors.push_back(std::move(s));
    }
  }

  void parse_outputs(const Json& j) {
    require_object(j, "outputs");
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string path = join_path("outputs", it.key());
      check_name(it.key(), path);
      const Json& o = it.value();
      require_known_keys(o, path, {"quantity", "at", "reduce", "region", "unit", "description"});
      OutputSpec out;
      out.name = it.key();
      out.quantity = read_quantity(require_key(o, path, "quantity"), join_path(path, "quantity"));
      const bool probe = o.contains("at");
      const bool reduction = o.contains("reduce");
      DOPPEL_VERIFY(probe != reduction, path, "needs exactly one of \"at\" (a probe) or \"reduce\"");
      if (probe) {
        DOPPEL_VERIFY(!o.contains("region"), join_path(path, "region"),
                      "applies to reductions only");
        out.at = read_point(o["at"], join_path(path, "at"));
      } else {
        const std::string r = read_string(o["reduce"], join_path(path, "reduce"));
        if (r == "max") out.reduce = Reduction::max;
        else if (r == "min") out.reduce = Reduction::min;
        else if (r == "mean") out.reduce = Reduction::mean;
        else throw InvalidInput(join_path(path, "reduce"), "must be max, min or mean (got \"" + r + "\")");
        out.region = read_string(require_key(o, path, "region"), join_path(path, "region"));
        bool assigned = false;
        for (const auto& reg : twin_.regions) assigned = assigned || reg.region == out.region;
        DOPPEL_VERIFY(assigned, join_path(path, "region"),
                      "region '" + out.region + "' has no entry in regions");
      }
      twin_.outputs.push_back(std::move(out));
    }
  }

  void parse_limits(const Json& j) {
    require_object(j, "limits");
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string path = join_path("limits", it.key());
      require_known_keys(it.value(), path, {"max", "min", "severity"});
      LimitSpec l;
      l.output = it.key();
      bool known = false;
      for (const auto& o : twin_.outputs) known = known || o.name == l.output;
      DOPPEL_VERIFY(known, path, "names no output");
      if (it.value().contains("max")) l.max = read_finite(it.value()["max"], join_path(path, "max"));
      if (it.value().contains("min")) l.min = read_finite(it.value()["min"], join_path(path, "min"));
      DOPPEL_VERIFY(l.max || l.min, path, "needs \"max\", \"min\" or both");
      DOPPEL_VERIFY(!(l.max && l.min) || *l.min <= *l.max, join_path(path, "min"), "must be <= max");
      if (it.value().contains("severity")) {
        const std::string s = read_string(it.value()["severity"], join_path(path, "severity"));
        if (s == "info") l.severity = Severity::info;
        else if (s == "warning") l.severity = Severity::warning;
        else if (s == "critical") l.severity = Severity::critical;
        else throw InvalidInput(join_path(path, "severity"),
                                "must be info, warning or critical (got \"" + s + "\")");
      }
      twin_.limits.push_back(l);
    }
  }

  void check_material_properties() {
    for (const auto& r : twin_.regions) {
      const Material& m = twin_.materials[static_cast<size_t>(r.material)];
      const std::string path = join_path("materials", m.name);
      auto need = [&](const std::optional<Value>& v, const char* key, const char* why) {
        DOPPEL_VERIFY(v.has_value(), join_path(path, key),
                      std::string("is required ") + why + " (material '" + m.name +
                          "', used by region '" + r.region + "')");
      };
      if (twin_.thermal) need(m.conductivity, "conductivity", "for heat conduction");
      if (twin_.thermal && twin_.analysis.transient) {
        need(m.density, "density", "for transient heat conduction");
        need(m.specific_heat, "specific_heat", "for transient heat conduction");
      }
      if (twin_.mechanical) {
        need(m.youngs_modulus, "youngs_modulus", "for mechanics");
        need(m.poisson_ratio, "poisson_ratio", "for mechanics");
      }
      if (twin_.mechanical && twin_.thermal) {
        need(m.thermal_expansion, "thermal_expansion", "for thermal strain");
        need(m.reference_temperature, "reference_temperature", "for thermal strain");
      }
    }
  }
};

std::string read_file(const std::filesystem::path& file, const std::string& path) {
  std::ifstream in(file, std::ios::binary);
  DOPPEL_VERIFY(in.good(), path, "cannot open " + file.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Json parse_json_text(const std::string& text, const std::string& what) { return parse_json_document(text, what); }

}  // namespace

const char* quantity_name(Quantity q) { return kQuantityNames[static_cast<int>(q)]; }

std::optional<Quantity> quantity_from_name(const std::string& name) {
  for (int i = 0; i <= static_cast<int>(Quantity::von_mises); ++i)
    if (name == kQuantityNames[i]) return static_cast<Quantity>(i);
  return std::nullopt;
}

bool quantity_is_mechanical(Quantity q) {
  return q >= Quantity::displacement_x && q <= Quantity::von_mises;
}
bool quantity_is_thermal(Quantity q) { return q <= Quantity::heat_flux_z; }

std::pair<double, double> plausible_range(Quantity q, double length) {
  const double inf = std::numeric_limits<double>::infinity();
  switch (q) {
    case Quantity::temperature: return {-273.15, 1e5};
    case Quantity::heat_flux_x: case Quantity::heat_flux_y: case Quantity::heat_flux_z: return {-1e10, 1e10};
    case Quantity::displacement_x: case Quantity::displacement_y: case Quantity::displacement_z:
      return {-10 * length, 10 * length};
    case Quantity::displacement_magnitude: return {0.0, 10 * length};
    case Quantity::von_mises: return {0.0, 1e12};
    default: break;
  }
  if (q >= Quantity::strain_xx && q <= Quantity::strain_xz) return {-1.0, 1.0};
  if (q >= Quantity::stress_xx && q <= Quantity::stress_xz) return {-1e12, 1e12};
  return {-inf, inf};
}

int TwinSpec::parameter_index(const std::string& n) const {
  for (size_t i = 0; i < parameters.size(); ++i)
    if (parameters[i].name == n) return static_cast<int>(i);
  return -1;
}

std::vector<double> TwinSpec::default_parameters() const {
  std::vector<double> v;
  for (const auto& p : parameters) v.push_back(p.default_value);
  return v;
}

int TwinSpec::declared_dimension() const {
  if (mesh.kind == MeshSpec::Kind::rectangle) return 2;
  if (mesh.kind == MeshSpec::Kind::box) return 3;
  if (mechanical) return mechanical->formulation == Formulation::three_d ? 3 : 2;
  return 0;
}

TwinSpec parse_twin(const std::string& json_text, const std::filesystem::path& base_dir) {
  const Json root = parse_json_text(json_text, "twin definition");
  require_object(root, "");
  TwinSpec twin = TwinParser(base_dir).parse(root);
  const std::string mesh_file = twin.mesh.kind == MeshSpec::Kind::file ? read_file(twin.mesh.file, "mesh.file") : std::string();
  std::string data;
  for (const auto& f : twin.data_files) data += read_file(f, f.filename().string());
  twin.content_hash = hex64(fnv1a(data, fnv1a(mesh_file, fnv1a(root.dump()))));
  // What a trained bundle depends on, section by section (so a changed one can be named): not
  // the name, descriptions, sensors, limits, units or parameter bounds and defaults (a bundle
  // keeps its own training bounds), nor the list of outputs (each output has its own hash).
  auto section = [&](const char* key) { return root.contains(key) ? root[key].dump() : std::string("-"); };
  for (const char* key : {"physics", "analysis", "materials", "regions", "boundaries", "sources"})
    twin.physics_hashes[key] = hex64(fnv1a(section(key)));
  twin.physics_hashes["mesh"] = hex64(fnv1a(mesh_file, fnv1a(section("mesh"))));
  Json params = root.contains("parameters") ? root["parameters"] : Json::object();
  for (auto& [name, p] : params.items())
    if (p.is_object())
      for (const char* k : {"description", "min", "max", "default", "unit", "role", "cost"}) p.erase(k);
  twin.physics_hashes["parameters"] = hex64(fnv1a(params.dump()));
  twin.physics_hashes["data_files"] = hex64(fnv1a(data));
  for (auto& o : twin.outputs) {
    Json d = root.at("outputs").at(o.name);
    for (const char* k : {"description", "unit"}) d.erase(k);
    o.definition_hash = hex64(fnv1a(d.dump()));
  }
  return twin;
}

TwinSpec load_twin(const std::filesystem::path& twin_file) {
  require_regular_file(twin_file, "", "twin file");
  return parse_twin(read_file(twin_file, ""), twin_file.parent_path());
}

double Schedule::at(double t) const {
  if (t <= points.front().first) return points.front().second;
  if (t >= points.back().first) return points.back().second;
  auto hi = std::upper_bound(points.begin(), points.end(), t,
                             [](double v, const std::pair<double, double>& p) { return v < p.first; });
  auto lo = hi - 1;
  const double span = hi->first - lo->first;
  if (span <= 0) return hi->second;
  const double w = (t - lo->first) / span;
  return (1 - w) * lo->second + w * hi->second;
}

std::vector<double> Scenario::parameters_at(double t) const {
  std::vector<double> p = parameters;
  for (const auto& s : schedules) p[static_cast<size_t>(s.parameter)] = s.at(t);
  p.push_back(t);  // the clock (spec::FieldTerm::clock)
  return p;
}

namespace {
void check_in_bounds(const Parameter& p, double v, const std::string& path,
                     ScenarioBounds bounds = ScenarioBounds::declared) {
  if (bounds == ScenarioBounds::physical) {
    for (const auto& r : p.physical)
      DOPPEL_VERIFY(r.contains(v), path,
                    "value " + std::to_string(v) + " of parameter '" + p.name + "' is not physical: " + r.used_at +
                        " references it and " + r.text);
    return;
  }
  DOPPEL_VERIFY(v >= p.min && v <= p.max, path,
                "value " + std::to_string(v) + " lies outside the bounds of parameter '" + p.name +
                    "' [" + std::to_string(p.min) + ", " + std::to_string(p.max) + "]");
}
}  // namespace

std::vector<Scenario> parse_scenarios(const TwinSpec& twin, const std::string& json_text, ScenarioBounds bounds) {
  const Json root = parse_json_text(json_text, "scenario file");
  require_known_keys(root, "", {"scenarios"});
  return parse_scenario_list(twin, require_key(root, "", "scenarios"), bounds);
}

std::vector<Scenario> parse_scenario_list(const TwinSpec& twin, const nlohmann::json& list, ScenarioBounds bounds) {
  require_array(list, "scenarios");
  DOPPEL_VERIFY(!list.empty(), "scenarios", "must hold at least one scenario");
  std::vector<Scenario> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string path = index_path("scenarios", i);
    require_known_keys(list[i], path, {"id", "parameters", "schedules"});
    Scenario s;
    s.parameters = twin.default_parameters();
    s.id = list[i].contains("id") ? read_string(list[i]["id"], join_path(path, "id"))
                                  : std::to_string(i);
    if (list[i].contains("parameters")) {
      const Json& p = list[i]["parameters"];
      const std::string pp = join_path(path, "parameters");
      require_object(p, pp);
      for (auto it = p.begin(); it != p.end(); ++it) {
        const std::string kp = join_path(pp, it.key());
        const int idx = twin.parameter_index(it.key());
        DOPPEL_VERIFY(idx >= 0, kp, "the twin has no parameter '" + it.key() + "'");
        const double v = read_finite(it.value(), kp);
        check_in_bounds(twin.parameters[static_cast<size_t>(idx)], v, kp, bounds);
        s.parameters[static_cast<size_t>(idx)] = v;
      }
    }
    if (list[i].contains("schedules")) {
      const Json& sch = list[i]["schedules"];
      const std::string sp = join_path(path, "schedules");
      require_object(sch, sp);
      DOPPEL_VERIFY(sch.empty() || twin.analysis.transient, sp,
                    "schedules need a transient analysis");
      for (auto it = sch.begin(); it != sch.end(); ++it) {
        const std::string kp = join_path(sp, it.key());
        const int idx = twin.parameter_index(it.key());
        DOPPEL_VERIFY(idx >= 0, kp, "the twin has no parameter '" + it.key() + "'");
        require_array(it.value(), kp);
        DOPPEL_VERIFY(!it.value().empty(), kp, "needs at least one [time, value] point");
        Schedule schedule;
        schedule.parameter = idx;
        for (size_t k = 0; k < it.value().size(); ++k) {
          const std::string ip = index_path(kp, k);
          std::vector<double> tv = read_number_array(it.value()[k], ip, 2, 2);
          DOPPEL_VERIFY(k == 0 || tv[0] >= schedule.points.back().first, ip,
                        "schedule times must not decrease");
          check_in_bounds(twin.parameters[static_cast<size_t>(idx)], tv[1], index_path(ip, 1), bounds);
          schedule.points.emplace_back(tv[0], tv[1]);
        }
        s.schedules.push_back(std::move(schedule));
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<Scenario> load_scenarios(const TwinSpec& twin, const std::filesystem::path& file, ScenarioBounds bounds) {
  require_regular_file(file, "--scenarios", "scenario file");
  return parse_scenarios(twin, read_file(file, "--scenarios"), bounds);
}

Scenario scenario_from_assignments(const TwinSpec& twin, const std::vector<std::string>& sets) {
  Scenario s;
  s.id = "0";
  s.parameters = twin.default_parameters();
  for (const auto& a : sets) {
    const auto eq = a.find('=');
    DOPPEL_VERIFY(eq != std::string::npos && eq > 0, "--set " + a, "expected NAME=VALUE");
    const std::string name = a.substr(0, eq);
    const std::string text = a.substr(eq + 1);
    const std::string path = "--set " + name;
    const int idx = twin.parameter_index(name);
    DOPPEL_VERIFY(idx >= 0, path, "the twin has no parameter '" + name + "'");
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    DOPPEL_VERIFY(used == text.size() && !text.empty() && std::isfinite(v), path,
                  "expected a finite number, got \"" + text + "\"");
    check_in_bounds(twin.parameters[static_cast<size_t>(idx)], v, path);
    s.parameters[static_cast<size_t>(idx)] = v;
  }
  return s;
}

std::vector<Scenario> random_scenarios(const TwinSpec& twin, const std::vector<std::string>& vary, int count,
                                       unsigned seed) {
  std::vector<size_t> index;
  for (const auto& name : vary) {
    const int k = twin.parameter_index(name);
    DOPPEL_VERIFY(k >= 0, name, "the twin has no parameter '" + name + "'");
    index.push_back(static_cast<size_t>(k));
  }
  std::mt19937 rng(seed);
  std::vector<Scenario> out;
  for (int i = 0; i < count; ++i) {
    Scenario s;
    s.id = std::to_string(i);
    s.parameters = twin.default_parameters();
    for (size_t k : index)
      s.parameters[k] = std::uniform_real_distribution<double>(twin.parameters[k].min, twin.parameters[k].max)(rng);
    out.push_back(std::move(s));
  }
  return out;
}

std::string hex64(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace doppel::spec
