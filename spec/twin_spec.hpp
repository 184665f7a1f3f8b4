// The twin definition (twin.json) and scenario files as native structs. Parsing validates
// everything that can be checked without the mesh and names the JSON path of every error;
// checks that need the mesh (region and boundary names, probe points) happen when the
// finite-element model is built (kernels/fem/fem_model.hpp), with the same kind of path.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "spec/field.hpp"
#include "spec/values.hpp"

namespace doppel::spec {

struct MeshSpec {
  enum class Kind { file, rectangle, box };
  Kind kind = Kind::rectangle;
  std::filesystem::path file;  // absolute, resolved against the twin file's folder
  std::vector<double> size;    // rectangle: [lx, ly]; box: [lx, ly, lz]
  std::vector<double> origin;  // defaults to zeros
  std::vector<int> cells;
  int order = 1;
};

enum class Formulation { plane_stress, plane_strain, three_d };

struct MechanicalSpec {
  Formulation formulation = Formulation::three_d;
  double thickness = 1.0;  // plane stress only (m)
};

enum class TimeScheme { backward_euler, bdf2, crank_nicolson };

struct AnalysisSpec {
  bool transient = false;
  double end_time = 0.0;
  double time_step = 0.0;
  double initial_temperature = 0.0;
  std::vector<double> output_times;  // sorted, in (0, end_time]
  TimeScheme scheme = TimeScheme::backward_euler;
};

struct Material {
  std::string name;
  std::optional<Value> conductivity;           // W/(m K)
  std::optional<Value> density;                // kg/m3
  std::optional<Value> specific_heat;          // J/(kg K)
  std::optional<Value> youngs_modulus;         // Pa
  std::optional<Value> poisson_ratio;          // -
  std::optional<Value> thermal_expansion;      // 1/K
  std::optional<Value> reference_temperature;  // degC
};

struct RegionAssignment {
  std::string region;
  int material = -1;
};

enum class ThermalBcType { temperature, flux, convection, insulated };

struct ThermalBc {
  ThermalBcType type = ThermalBcType::insulated;
  Field value;    // temperature (degC) or flux (W/m2, positive into the body)
  Field h;        // convection coefficient W/(m2 K)
  Field ambient;  // degC
};

enum class MechanicalBcType { fixed, displacement, traction, pressure, free };

struct MechanicalBc {
  MechanicalBcType type = MechanicalBcType::free;
  std::array<bool, 3> components{true, true, true};  // fixed / displacement: constrained axes
  std::vector<Field> vector;  // displacement (m) or traction (Pa), one per axis
  Field pressure;             // Pa, positive pushes into the body
};

struct BoundarySpec {
  std::string name;
  std::optional<ThermalBc> thermal;
  std::optional<MechanicalBc> mechanical;
};

struct SourceSpec {
  std::string region;
  std::optional<Field> heat;               // W/m3
  std::vector<Field> body_force;           // N/m3, one per axis (empty when absent)
};

enum class Quantity {
  temperature,
  heat_flux_x, heat_flux_y, heat_flux_z,
  displacement_x, displacement_y, displacement_z, displacement_magnitude,
  strain_xx, strain_yy, strain_zz, strain_xy, strain_yz, strain_xz,
  stress_xx, stress_yy, stress_zz, stress_xy, stress_yz, stress_xz,
  von_mises,
};

const char* quantity_name(Quantity q);
std::optional<Quantity> quantity_from_name(const std::string& name);
bool quantity_is_mechanical(Quantity q);
bool quantity_is_thermal(Quantity q);
// What a quantity can physically be in a twin whose body spans `length` metres (its mesh's
// bounding-box diagonal; infinity when not known), in doppel's units (degC, SI): a reading
// outside is no measurement of the asset. Temperature from absolute zero to 1e5 degC; heat flux
// within 1e10 W/m2; displacement within 10 body lengths; strain within 1 (linear elasticity);
// stress within 1e12 Pa; displacement_magnitude and von_mises from 0.
std::pair<double, double> plausible_range(Quantity q, double length);

struct Sensor {
  std::string name;
  Quantity quantity = Quantity::temperature;
  std::vector<double> at;
  double noise_std = 0.0;
  // The instrument's measuring range ("range": [min, max]); readings outside it are refused.
  std::optional<std::pair<double, double>> range;
};

enum class Reduction { none, max, min, mean };

struct OutputSpec {
  std::string name;
  Quantity quantity = Quantity::temperature;
  std::vector<double> at;          // a probe when reduce == none
  Reduction reduce = Reduction::none;
  std::string region;              // a reduction's region
  std::string definition_hash;     // over its definition (not its description or unit)
};

enum class Severity { info, warning, critical };

struct LimitSpec {
  std::string output;
  std::optional<double> max;
  std::optional<double> min;
  Severity severity = Severity::warning;
};

struct TwinSpec {
  std::string name;
  std::filesystem::path base_dir;
  MeshSpec mesh;
  bool thermal = false;
  std::optional<MechanicalSpec> mechanical;
  AnalysisSpec analysis;
  std::vector<Material> materials;
  std::vector<RegionAssignment> regions;
  std::vector<BoundarySpec> boundaries;
  std::vector<SourceSpec> sources;
  std::vector<Parameter> parameters;
  std::vector<Sensor> sensors;
  std::vector<OutputSpec> outputs;
  std::vector<LimitSpec> limits;
  std::vector<std::filesystem::path> data_files;  // tables of space-varying values (spec/field.hpp)
  std::vector<std::string> time_varying;  // the values that depend on t (their paths; spec/field.hpp)
  std::string content_hash;  // 16 hex digits over the canonical JSON, the mesh file and the data files
  // What a surrogate bundle is keyed to, by section ("mesh", "physics", "analysis", "materials",
  // "regions", "boundaries", "sources", "parameters" without bounds and defaults, "data_files").
  std::map<std::string, std::string> physics_hashes;

  int parameter_index(const std::string& name) const;  // -1 when absent
  std::vector<double> default_parameters() const;
  // Spatial dimension implied by the definition alone, 0 when only the mesh file tells.
  int declared_dimension() const;
};

// Parse and validate a twin definition. `base_dir` resolves a relative mesh file.
TwinSpec parse_twin(const std::string& json_text, const std::filesystem::path& base_dir);
TwinSpec load_twin(const std::filesystem::path& twin_file);

// A scenario: one value per parameter (defaults filled in), plus optional schedules.
struct Schedule {
  int parameter = -1;
  std::vector<std::pair<double, double>> points;  // (time s, value), times non-decreasing
  double at(double t) const;                      // piecewise linear, held outside
};

struct Scenario {
  std::string id;
  std::vector<double> parameters;   // indexed like TwinSpec::parameters
  std::vector<Schedule> schedules;  // transient analyses only
  // Parameter values at time t (schedules applied), followed by t itself: the clock that the
  // time factors of values depending on t read (spec::FieldTerm::clock).
  std::vector<double> parameters_at(double t) const;
};

// How scenario values are checked: inside the parameters' declared bounds (the default, and
// what a surrogate needs), or only inside their physical ranges (finite-element answers may
// explore beyond the declared bounds).
enum class ScenarioBounds { declared, physical };
std::vector<Scenario> parse_scenarios(const TwinSpec& twin, const std::string& json_text,
                                      ScenarioBounds bounds = ScenarioBounds::declared);
// The "scenarios" array itself, already parsed (the HTTP service's request bodies); paths as
// in a scenario file ("scenarios[3].parameters.h").
std::vector<Scenario> parse_scenario_list(const TwinSpec& twin, const nlohmann::json& scenarios,
                                          ScenarioBounds bounds = ScenarioBounds::declared);
std::vector<Scenario> load_scenarios(const TwinSpec& twin, const std::filesystem::path& file,
                                     ScenarioBounds bounds = ScenarioBounds::declared);
// `count` scenarios at the default parameters with the named ones drawn uniformly inside their
// bounds (std::mt19937 seeded with `seed`, names in order, scenario by scenario): the what-if
// batches of benchmarks and tests. An unknown name is InvalidInput.
std::vector<Scenario> random_scenarios(const TwinSpec& twin, const std::vector<std::string>& vary, int count,
                                       unsigned seed);
// "NAME=VALUE" assignments from the command line applied over the defaults.
Scenario scenario_from_assignments(const TwinSpec& twin, const std::vector<std::string>& sets);

}  // namespace doppel::spec
