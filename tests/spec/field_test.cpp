// Space-varying values (spec/field.hpp): expressions of x, y, z with parameters as factors, and
// tabulated nodal data. References: the values written out by hand (closed forms).
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "spec/errors.hpp"
#include "spec/field.hpp"
#include "spec/twin_spec.hpp"

namespace doppel::spec {
namespace {

std::vector<Parameter> params() {
  std::vector<Parameter> p(3);
  p[0].name = "q";
  p[0].min = 0;
  p[0].max = 10;
  p[1].name = "h";
  p[1].min = 1;
  p[1].max = 2;
  p[2].name = "T0";
  p[2].min = -5;
  p[2].max = 5;
  return p;
}

Field field(const nlohmann::json& j, bool transient = false, int dim = 3, const std::filesystem::path& dir = ".") {
  static const std::vector<Parameter> p = params();
  FieldContext cx;
  cx.parameters = &p;
  cx.base_dir = dir;
  cx.dim = dim;
  cx.transient = transient;
  return parse_field(j, "boundaries.xmax.thermal.value", cx);
}

double at(const std::string& text, double x, double y, double z) {
  const double pt[3] = {x, y, z};
  return (*parse_space_expression(text, "test"))(pt);
}

std::string error_of(const nlohmann::json& j, bool transient = false) {
  try {
    field(j, transient);
  } catch (const InvalidInput& e) {
    return e.what();
  }
  return "";
}

TEST(Expressions, EvaluateWithTheUsualPrecedence) {
  EXPECT_DOUBLE_EQ(at("sqrt(x^2 + y^2) + z", 3, 4, 1), 6.0);
  EXPECT_DOUBLE_EQ(at("2 + 3 * 4 ^ 2 / 8 - -1", 0, 0, 0), 9.0);
  EXPECT_DOUBLE_EQ(at("-2^2", 0, 0, 0), -4.0);       // unary minus binds looser than ^
  EXPECT_DOUBLE_EQ(at("2^3^2", 0, 0, 0), 512.0);     // ^ is right-associative
  EXPECT_DOUBLE_EQ(at("(1 + x) * (1 - y)", 2, 3, 0), -6.0);
  EXPECT_DOUBLE_EQ(at("1.5e2 * x", 2, 0, 0), 300.0);
  EXPECT_NEAR(at("sin(pi * x / 2) + cos(0) + exp(log(3)) + atan2(1, 1) * 4 / pi", 1, 0, 0), 1 + 1 + 3 + 1, 1e-14);
  EXPECT_DOUBLE_EQ(at("min(x, y) + max(x, y) + abs(-z) + hypot(3, 4)", 1, 2, -3), 1 + 2 + 3 + 5);
  EXPECT_DOUBLE_EQ(at("if(x > 0.5, 10, 20) + (y <= 1) + step(z)", 0.7, 1, -1), 11.0);
  EXPECT_DOUBLE_EQ(at("if(x > 0.5, 10, 20)", 0.2, 0, 0), 20.0);
}

TEST(Fields, AreKeptAffineInTheParameters) {
  const Field f = field("$q * (1 + x) + 3 * $h - 2 + x * $q");
  // Terms by factor: constant -2, h with constant 3, q with the shape 2 (1 + x) - 1 ... summed.
  ASSERT_EQ(f.terms.size(), 3u);
  EXPECT_FALSE(f.uniform());
  const std::vector<double> p = {2.0, 1.5, 0.0};
  for (double x : {0.0, 0.3, 1.7}) {
    const double pt[3] = {x, 0.2, 0.1};
    EXPECT_NEAR(f.eval(p, pt), 2.0 * (1 + x) + 3 * 1.5 - 2 + x * 2.0, 1e-13);
  }
  for (const auto& t : f.terms) {
    if (t.parameter == 1) {
      EXPECT_TRUE(t.uniform() && t.constant == 3.0);
    } else if (t.parameter == -1) {
      EXPECT_TRUE(t.uniform() && t.constant == -2.0);
    } else {
      EXPECT_FALSE(t.uniform());
    }
  }
  // A parameter alone, and a number, are one uniform term.
  const Field h = field("$h");
  ASSERT_EQ(h.terms.size(), 1u);
  EXPECT_EQ(h.terms[0].parameter, 1);
  EXPECT_TRUE(h.uniform());
  EXPECT_DOUBLE_EQ(field(250.0).eval({0, 0, 0}), 250.0);
  EXPECT_TRUE(field(0.0).terms.empty());
  // Bounds over the declared ranges, per point: q in [0, 10], h in [1, 2].
  const Field g = field("$q * (x - 1) + $h");
  const double pt[3] = {3, 0, 0};
  const auto [lo, hi] = g.bounds(params(), pt);
  EXPECT_DOUBLE_EQ(lo, 0 * 2 + 1);
  EXPECT_DOUBLE_EQ(hi, 10 * 2 + 2);
}

TEST(Fields, RefuseWhatIsNotAffineNamingTheField) {
  EXPECT_NE(error_of("$q * $h").find("boundaries.xmax.thermal.value: is not affine"), std::string::npos);
  EXPECT_NE(error_of("sin($q * x)").find("$q appears inside sin()"), std::string::npos);
  EXPECT_NE(error_of("1 / $h").find("denominator"), std::string::npos);
  EXPECT_NE(error_of("$h ^ 2").find("a power"), std::string::npos);
  EXPECT_NE(error_of("if($h > 1, 1, 0)").find("not affine"), std::string::npos);
  EXPECT_NE(error_of("x * t", false).find("steady"), std::string::npos);
  EXPECT_NE(error_of("2 * (x + 1").find("at character 11: expected ')'"), std::string::npos);
  EXPECT_NE(error_of("2 * foo(x)").find("unknown function 'foo'"), std::string::npos);
  EXPECT_NE(error_of("2 * w").find("unknown name 'w'"), std::string::npos);
  EXPECT_NE(error_of("$nope * x").find("undefined parameter 'nope'"), std::string::npos);
  EXPECT_NE(error_of("x +").find("ends too early"), std::string::npos);
  EXPECT_NE(error_of("min(x)").find("min() takes 2 arguments"), std::string::npos);
  EXPECT_NE(error_of("x 2").find("unexpected '2'"), std::string::npos);
  EXPECT_NE(error_of(nlohmann::json::array({1, 2})).find("expected a number"), std::string::npos);
  EXPECT_NE(error_of("1 / 0").find("not finite"), std::string::npos);
  EXPECT_NE(error_of("0x10").find("unexpected 'x'"), std::string::npos);  // no hex numbers
  EXPECT_NE(error_of("1e999 * x").find("too large"), std::string::npos);
  EXPECT_NE(error_of(". + x").find("malformed number"), std::string::npos);
  EXPECT_DOUBLE_EQ(at("2.5e-1 + .5 + 3.", 0, 0, 0), 3.75);
  EXPECT_NE(error_of("2e").find("unexpected 'e'"), std::string::npos);  // no implicit products
}

// Values of a transient analysis that depend on t: kept as sums of products of a time factor
// and a shape (v = sum_j factor_j(p) time_j(t) shape_j(x)), read at the clock that
// Scenario::parameters_at appends. Reference: the expressions evaluated by hand.
TEST(Fields, SeparateTimeFromSpaceExactly) {
  const Field f = field("$q * (1 - exp(-t / 30)) * (1 + x) + 20 + 5 * sin(2 * pi * t / 600) + t / 10 * $h",
                        true);
  EXPECT_TRUE(f.varies_in_time());
  for (const auto& term : f.terms)
    if (term.time) EXPECT_EQ(term.clock, 3);  // after the three parameters
  const double q = 4, h = 1.5;
  for (double t : {0.0, 12.5, 300.0})
    for (double x : {0.0, 0.4}) {
      const double pt[3] = {x, 0.3, 0};
      const double want = q * (1 - std::exp(-t / 30)) * (1 + x) + 20 + 5 * std::sin(2 * M_PI * t / 600) + t / 10 * h;
      EXPECT_NEAR(f.eval({q, h, 0, t}, pt), want, 1e-12 * std::fabs(want)) << "t " << t << " x " << x;
    }
  // Products and quotients distribute; a quotient by a function of t alone is fine.
  const Field g = field("(x + t) * (y - 2 * t) / (1 + t^2) + x / (2 + y) * cos(t)", true);
  for (double t : {0.0, 0.7, 3.0}) {
    const double pt[3] = {0.3, -1.2, 0};
    const double want = (0.3 + t) * (-1.2 - 2 * t) / (1 + t * t) + 0.3 / (2 - 1.2) * std::cos(t);
    EXPECT_NEAR(g.eval({0, 0, 0, t}, pt), want, 1e-13);
  }
  // Without the clock a time factor cannot be read: a programming error, not a silent 0.
  const double origin[3] = {0, 0, 0};
  EXPECT_THROW(f.eval({q, h, 0}, origin), std::logic_error);
  // Bounds over the parameters' ranges and the given times: 20 + 5 sin(2 pi t / 600) + t/10 h
  // at t in {0, 150}: [20, 25 + 15 * 2] (h in [1, 2]).
  const Field b = field("20 + 5 * sin(2 * pi * t / 600) + t / 10 * $h", true);
  const auto [lo, hi] = b.bounds(params(), origin, b.time_factors({0.0, 150.0}));
  EXPECT_NEAR(lo, 20.0, 1e-12);
  EXPECT_NEAR(hi, 25.0 + 30.0, 1e-12);
  EXPECT_THROW(b.bounds(params(), origin), std::logic_error);
  // A time factor that is not finite at a time it is read names the field and the time.
  const Field bad = field("x / (t - 5)", true);
  try {
    bad.time_factors({0.0, 5.0});
    ADD_FAILURE() << "expected an error";
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("boundaries.xmax.thermal.value: is not a finite number at t = 5"), std::string::npos)
        << e.what();
  }
}

TEST(Fields, RefuseShapesThatMoveInTimeNamingWhereTimeAndSpaceMeet) {
  const std::string moving = error_of("$q * exp(-((x - 0.01 * t) / 0.02)^2)", true);
  EXPECT_NE(moving.find("boundaries.xmax.thermal.value: depends on t and on x, y, z together inside exp()"),
            std::string::npos)
      << moving;
  EXPECT_NE(moving.find("a shape that moves in time is not supported"), std::string::npos);
  EXPECT_NE(error_of("x / (1 + x * t)", true).find("inside a denominator"), std::string::npos);
  EXPECT_NE(error_of("if(x > t, 1, 0)", true).find("together inside"), std::string::npos);
  EXPECT_NE(error_of("$q * sin($h * t)", true).find("not affine"), std::string::npos);  // parameters still affine
  // Expanding products is bounded.
  std::string big = "1";
  for (int i = 0; i < 7; ++i) big = "(" + big + ") * (x + t)";
  EXPECT_NE(error_of(big, true).find("more than 64 products"), std::string::npos);
}

// Hostile expressions: nesting deep enough to exhaust the stack, or text long enough to
// build a tree as deep, are refused before anything recurses through them.
TEST(Fields, RefuseDeepNestingAndHugeExpressions) {
  EXPECT_NE(error_of(std::string(2000, '(') + "x" + std::string(2000, ')')).find("nested deeper than"), std::string::npos);
  EXPECT_NE(error_of(std::string(4000, '-') + "x").find("nested deeper than"), std::string::npos);
  EXPECT_NE(error_of(std::string(100000, '(') + "x" + std::string(100000, ')')).find("at most 4096"), std::string::npos);
  std::string sum = "x";
  for (int i = 0; i < 200000; ++i) sum += "+x";
  EXPECT_NE(error_of(sum).find("at most 4096"), std::string::npos);
  std::string ok = "x";
  for (int i = 0; i < 150; ++i) ok = "(" + ok + ")";
  EXPECT_EQ(error_of(ok), "");
}

class Tables : public ::testing::Test {
 protected:
  std::filesystem::path dir_ = std::filesystem::temp_directory_path() / "doppel_field_tables";
  void SetUp() override { std::filesystem::create_directories(dir_); }
  std::filesystem::path write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return dir_ / name;
  }
  std::string error_of(const nlohmann::json& j, int dim = 3) {
    try {
      const Field f = field(j, false, dim, dir_);
      const double far[3] = {50, 50, 50};
      f.eval({1, 1, 1}, far);
    } catch (const InvalidInput& e) {
      return e.what();
    }
    return "";
  }
};

// Linear data is interpolated exactly (the moving least-squares fit is linear), scattered
// data is reproduced at its own points, and a scale multiplies it.
TEST_F(Tables, InterpolateLinearDataExactlyAndReproduceTheirPoints) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u(0, 1);
  std::string lin = "# a linear field\nx, y, z, value\n", wavy = "value,z,y,x\n";  // any column order
  std::vector<std::array<double, 4>> rows;
  for (int i = 0; i < 300; ++i) {
    const double x = u(rng), y = u(rng), z = u(rng);
    lin += std::to_string(x) + "," + std::to_string(y) + "," + std::to_string(z) + "," +
           std::to_string(2 + 3 * x - y + 0.5 * z) + "\n";
    const double w = std::sin(6 * x) * std::cos(5 * y) + z;
    char buf[200];
    std::snprintf(buf, sizeof buf, "%.17g,%.17g,%.17g,%.17g\n", w, z, y, x);
    wavy += buf;
    rows.push_back({x, y, z, w});
  }
  write("linear.csv", lin);
  write("wavy.csv", wavy);
  const Field f = field(nlohmann::json{{"file", "linear.csv"}, {"scale", "$h"}}, false, 3, dir_);
  ASSERT_EQ(f.terms.size(), 1u);
  EXPECT_EQ(f.terms[0].parameter, 1);
  for (int i = 0; i < 50; ++i) {
    const double pt[3] = {0.1 + 0.8 * u(rng), 0.1 + 0.8 * u(rng), 0.1 + 0.8 * u(rng)};
    EXPECT_NEAR(f.eval({0, 2.0, 0}, pt), 2.0 * (2 + 3 * pt[0] - pt[1] + 0.5 * pt[2]), 1e-5);  // the CSV's 6 digits
  }
  const Field w = field(nlohmann::json{{"file", "wavy.csv"}}, false, 3, dir_);
  for (const auto& r : rows) EXPECT_DOUBLE_EQ(w.eval({0, 0, 0}, r.data()), r[3]);
}

TEST_F(Tables, BadFilesAreErrorsNamingTheFileAndLine) {
  write("bad_number.csv", "x,y,z,value\n0,0,0,1\n1,0,0,abc\n");
  EXPECT_NE(error_of({{"file", "bad_number.csv"}}).find("bad_number.csv:3: 'abc' is not a number"), std::string::npos);
  write("bad_columns.csv", "0,0,0,1\n1,0,0\n");
  EXPECT_NE(error_of({{"file", "bad_columns.csv"}}).find("bad_columns.csv:2: expected 4 columns, got 3"), std::string::npos);
  write("no_value.csv", "x,y,z,T\n0,0,0,1\n");
  EXPECT_NE(error_of({{"file", "no_value.csv"}}).find("no_value.csv:1: the header must name"), std::string::npos);
  write("empty.csv", "# nothing\n\n");
  EXPECT_NE(error_of({{"file", "empty.csv"}}).find("holds no data rows"), std::string::npos);
  write("twice.csv", "0,0,0,1\n1,0,0,2\n0,0,0,3\n");
  EXPECT_NE(error_of({{"file", "twice.csv"}}).find("two different values at one point (lines 1 and 3)"), std::string::npos);
  write("flat.csv", "0,0,1\n1,0,2\n0,1,3\n");
  EXPECT_NE(error_of({{"file", "flat.csv"}}, 3).find("has no z column, but the mesh is 3D"), std::string::npos);
  EXPECT_NE(error_of({{"file", "missing.csv"}}).find("file not found"), std::string::npos);
  EXPECT_NE(error_of({{"file", "flat.csv"}, {"scale", "$q * $h"}}, 2).find("not affine"), std::string::npos);
  EXPECT_NE(error_of({{"file", "flat.csv"}, {"weight", 1}}).find("weight"), std::string::npos);
  // Points outside the data (beyond 1 % of its extent) are refused, not extrapolated.
  write("unit.csv", "0,0,0,1\n1,0,0,1\n0,1,0,1\n0,0,1,1\n1,1,1,1\n");
  EXPECT_NE(error_of({{"file", "unit.csv"}}).find("does not cover the point (50, 50, 50)"), std::string::npos);
}

// Spreadsheet exports: a UTF-8 byte-order mark, quoted header cells with blanks, CRLF lines;
// a first cell "nan" is data (and refused as not finite), not a header.
TEST_F(Tables, ReadSpreadsheetExports) {
  write("excel.csv", "\xEF\xBB\xBF\" x\",\"y\",\"value\"\r\n0,0,1\r\n1,0,3\r\n0,1,5\r\n1,1,7\r\n");
  const Field f = field(nlohmann::json{{"file", "excel.csv"}}, false, 2, dir_);
  const double pt[3] = {0.5, 0.5, 0};
  EXPECT_NEAR(f.eval({}, pt), 4.0, 1e-6);
  write("nan.csv", "nan,0,0,1\n");
  EXPECT_NE(error_of({{"file", "nan.csv"}}).find("nan.csv:1: 'nan' is not a finite number"), std::string::npos);
}

// The interpolant is continuous: the weights fall to zero at the edge of each point's
// neighbourhood, so walking along a line through scattered data of a smooth field, no step
// jumps by more than the field's own change (|grad| <= 5 here, steps of 1e-4: 5e-4; a switch
// of neighbour set without the taper jumps by ~1e-2).
TEST_F(Tables, InterpolationIsContinuousAcrossNeighbourhoodChanges) {
  std::mt19937 rng(17);
  std::uniform_real_distribution<double> u(0, 1);
  std::string s = "x,y,value\n";
  for (int i = 0; i < 400; ++i) {
    const double x = u(rng), y = u(rng);
    char buf[128];
    std::snprintf(buf, sizeof buf, "%.17g,%.17g,%.17g\n", x, y, std::sin(3 * x) * std::cos(2 * y));
    s += buf;
  }
  write("smooth.csv", s);
  const Field f = field(nlohmann::json{{"file", "smooth.csv"}}, false, 2, dir_);
  double worst = 0, prev = 0;
  for (int i = 0; i <= 8000; ++i) {
    const double pt[3] = {0.1 + 1e-4 * i, 0.3 + 0.5e-4 * i, 0};
    const double v = f.eval({}, pt);
    if (i > 0) worst = std::max(worst, std::abs(v - prev));
    prev = v;
  }
  EXPECT_LT(worst, 2e-3) << "largest step " << worst;
}

TEST_F(Tables, TwoColumnsOfCoordinatesOnA2DMeshAndDataOnAPlane) {
  write("plane.csv", "x,y,value\n0,0,1\n1,0,3\n0,1,5\n1,1,7\n0.5,0.5,4\n");
  const Field f = field(nlohmann::json{{"file", "plane.csv"}}, false, 2, dir_);
  const double pt[3] = {0.25, 0.75, 0};
  EXPECT_NEAR(f.eval({}, pt), 1 + 2 * 0.25 + 4 * 0.75, 1e-6);  // the fit's ridge biases it by ~1e-8
  // Surface data in 3D (all points on z = 0.3): the fit stays exact in the plane.
  std::string s = "x,y,z,value\n";
  for (int i = 0; i <= 4; ++i)
    for (int j = 0; j <= 4; ++j) s += std::to_string(i / 4.0) + "," + std::to_string(j / 4.0) + ",0.3," + std::to_string(10 + i / 4.0 - 2 * j / 4.0) + "\n";
  write("surface.csv", s);
  const Field g = field(nlohmann::json{{"file", "surface.csv"}}, false, 3, dir_);
  const double q[3] = {0.4, 0.6, 0.3};
  EXPECT_NEAR(g.eval({}, q), 10 + 0.4 - 1.2, 1e-6);
}

// The twin's content hash covers its data files: a bundle trained on other data is refused.
TEST_F(Tables, TheTwinsContentHashCoversTheDataFile) {
  write("ambient.csv", "x,y,value\n0,0,20\n1,0,20\n0,1,30\n1,1,30\n");
  const std::string twin = R"({"name": "t", "mesh": {"generate": "rectangle", "size": [1, 1], "cells": [4, 4]},
    "physics": {"thermal": {}}, "materials": {"m": {"conductivity": 1}}, "regions": {"domain": "m"},
    "boundaries": {"xmax": {"thermal": {"type": "convection", "h": "(1 + y) * 10", "ambient": {"file": "ambient.csv"}}}}})";
  const TwinSpec a = parse_twin(twin, dir_);
  ASSERT_EQ(a.data_files.size(), 1u);
  write("ambient.csv", "x,y,value\n0,0,20\n1,0,20\n0,1,31\n1,1,31\n");
  const TwinSpec b = parse_twin(twin, dir_);
  EXPECT_NE(a.content_hash, b.content_hash);
  EXPECT_NE(a.physics_hashes.at("data_files"), b.physics_hashes.at("data_files"));  // what bundles are keyed to
  EXPECT_EQ(a.physics_hashes.at("boundaries"), b.physics_hashes.at("boundaries"));
  // Space-varying values whose range is physical keep their parameters inside the declared bounds.
  const std::string neg = R"({"name": "t", "mesh": {"generate": "rectangle", "size": [1, 1], "cells": [4, 4]},
    "physics": {"thermal": {}}, "materials": {"m": {"conductivity": 1}}, "regions": {"domain": "m"},
    "parameters": {"h": {"default": 10, "min": 5, "max": 20}},
    "boundaries": {"xmax": {"thermal": {"type": "convection", "h": "(1 + y) * $h", "ambient": 0}}}})";
  const TwinSpec c = parse_twin(neg, dir_);
  ASSERT_FALSE(c.parameters[0].physical.empty());
  EXPECT_FALSE(c.parameters[0].physical.back().contains(25));
  EXPECT_TRUE(c.parameters[0].physical.back().contains(20));
}

}  // namespace
}  // namespace doppel::spec
