// Boundary and source values that may vary in space: a number, a parameter "$name", an
// expression of x, y, z with parameters as factors ("$q * (1 + 0.5 * sin(pi * x / 0.2))",
// "sqrt(x^2 + y^2) + z"), or tabulated nodal data read from a CSV file (x, y, z, value) and
// interpolated at any point, optionally scaled ({"file": "htc.csv", "scale": "$h_scale"}).
//
// Every such value is kept in the form  v(p, x) = sum_j factor_j(p) shape_j(x)  with each
// factor a parameter or 1: the affine structure in the parameters that superposition and the
// reduced models rely on. An expression that is not affine in the parameters ($h * $q,
// sin($w * x)) is refused by name. In a transient analysis a value may also depend on the time
// t, as a sum of products of a function of t and a function of x, y, z
// ("$q * (1 - exp(-t / 30)) * x", "20 + 5 * sin(2 * pi * t / 600)"): each term then carries a
// time factor as well, v(p, x, t) = sum_j factor_j(p) time_j(t) shape_j(x), which keeps the
// loads affine at every instant (a shape that moves in time, exp(-(x - v t)^2), is refused by
// name). Time factors read the clock that Scenario::parameters_at appends to the parameters, so
// every consumer of the coefficients sees them without knowing about time. Schedules of the
// parameter factors vary values in time as well.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <utility>

#include "spec/values.hpp"

namespace doppel::spec {

// A function of position; x always has three entries (z = 0 on a 2D mesh).
class SpaceFunction {
 public:
  virtual ~SpaceFunction() = default;
  virtual double operator()(const double* x) const = 0;
};

// A function of time (seconds on the scenario's clock).
class TimeFunction {
 public:
  virtual ~TimeFunction() = default;
  virtual double operator()(double t) const = 0;
};

struct FieldTerm {
  int parameter = -1;                          // the factor: index into TwinSpec::parameters, -1 for 1
  std::shared_ptr<const SpaceFunction> shape;  // null: the same value `constant` everywhere
  double constant = 1.0;
  std::shared_ptr<const TimeFunction> time;    // null: constant in time
  // Where the clock sits in a parameter vector (the number of the twin's parameters:
  // Scenario::parameters_at appends the time); used only with `time`.
  int clock = -1;
  bool uniform() const { return !shape; }
  double shape_at(const double* x) const { return shape ? (*shape)(x) : constant; }
  // The factor at parameters p (and, for a term with a time factor, at the clock p[clock]).
  double factor(const std::vector<double>& p) const {
    const double f = parameter >= 0 ? p[static_cast<size_t>(parameter)] : 1.0;
    return time ? f * time_at(p) : f;
  }
  double time_at(const std::vector<double>& p) const;  // (*time)(p[clock]); logic_error without a clock
};

struct Field {
  std::vector<FieldTerm> terms;  // empty: zero everywhere
  std::string path;              // where twin.json gives it ("boundaries.xmax.thermal.h")
  ValueRange range;              // the physical range the value must keep at every point
  int table_dim = 0;             // the coordinates its data file gives (2 or 3; 0: no file)

  bool uniform() const;
  bool varies_in_time() const;  // some term has a time factor
  double eval(const std::vector<double>& p, const double* x) const;
  // The value of a uniform field (InvalidInput naming the path when it varies in space).
  double eval(const std::vector<double>& p) const;
  // The smallest and largest value at x over the declared ranges of the factor parameters
  // (exact: the value is affine in each of them).
  // With `time_factors` ([time][term], from time_factors()): the extremes over those times too.
  std::pair<double, double> bounds(const std::vector<Parameter>& parameters, const double* x,
                                   const std::vector<std::vector<double>>& time_factors = {}) const;
  // Each term's time factor (1 for a term constant in time) at each of `times`: [time][term].
  // InvalidInput naming the path where one is not a finite number.
  std::vector<std::vector<double>> time_factors(const std::vector<double>& times) const;
};

// Reads a field. `parameter_index` maps a name to its index (-1 when undefined); relative
// file names resolve against `base_dir`; `dim` is the mesh dimension where known (0 when only
// the mesh file tells), which decides the columns a table file may have.
struct FieldContext {
  const std::vector<Parameter>* parameters = nullptr;
  std::filesystem::path base_dir;
  int dim = 0;
  bool transient = false;
  std::vector<std::filesystem::path>* files = nullptr;  // table files read (the twin's content hash covers them)
};
Field parse_field(const nlohmann::json& j, const std::string& path, const FieldContext& context);

// An expression of x, y, z alone (tests, and the "scale" of a table): InvalidInput naming
// `path` for a syntax error, with the position in the text.
std::shared_ptr<const SpaceFunction> parse_space_expression(const std::string& text, const std::string& path);

// Tabulated nodal data, interpolated by a moving least-squares linear fit over the nearest
// points (exact for data that is linear in space, and at the data points themselves). A point
// farther outside the data's bounding box than 1 % of its diagonal is an error naming `path`
// (the data does not cover the mesh). Lines: "x,y,z,value" (or "x,y,value" for a 2D mesh);
// an optional header row names the columns; '#' starts a comment.
std::shared_ptr<const SpaceFunction> load_nodal_table(const std::filesystem::path& file, const std::string& path,
                                                      int dim, int* table_dim = nullptr);

}  // namespace doppel::spec
