// The scalar values of a twin definition: numbers that may reference a parameter, the
// parameters themselves and the physical ranges values must lie in.
#pragma once

#include <limits>
#include <string>
#include <vector>

namespace doppel::spec {

// A number in twin.json that may be a parameter reference "$name".
struct Value {
  double constant = 0.0;
  int parameter = -1;  // index into TwinSpec::parameters, or -1 for a constant
  bool is_parameter() const { return parameter >= 0; }
  double eval(const std::vector<double>& parameter_values) const {
    return parameter >= 0 ? parameter_values[static_cast<size_t>(parameter)] : constant;
  }
};

enum class ParameterRole { load, control, latent };

// The physical range a value must lie in (conductivity > 0, Poisson ratio in (-1, 0.5), ...),
// each end open or closed. A parameter referenced by a property keeps the ranges of every use.
struct ValueRange {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false;
  bool hi_open = false;
  const char* text = "";  // "must be > 0"
  std::string used_at;    // the twin.json path referencing the parameter
  bool contains(double v) const { return (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi); }
};

struct Parameter {
  std::string name;
  double default_value = 0.0;
  double min = 0.0;
  double max = 0.0;
  std::string unit;
  ParameterRole role = ParameterRole::load;
  std::vector<ValueRange> physical;  // ranges of the properties that reference it
  double cost = 0;                   // controls: cost per unit of the value (recommendations minimize the sum)
};

}  // namespace doppel::spec
