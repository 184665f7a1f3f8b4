// Verification against published benchmarks and closed-form solutions through the public
// twin.json path (FemModel + solve_batch).
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include <fstream>

#include "tests/test_util.hpp"

namespace doppel {
namespace {

using test::twin_from;

std::string t4_twin(const std::string& mesh) {
  return R"({"name": "nafems-t4", "mesh": )" + mesh + R"(,
    "physics": {"thermal": {}}, "analysis": {"type": "steady"},
    "materials": {"m": {"conductivity": 52}}, "regions": {"domain": "m"},
    "boundaries": {"ymin": {"thermal": {"type": "temperature", "value": 100}},
                   "xmax": {"thermal": {"type": "convection", "h": 750, "ambient": 0}},
                   "ymax": {"thermal": {"type": "convection", "h": 750, "ambient": 0}}},
    "outputs": {"T_E": {"quantity": "temperature", "at": [0.6, 0.2]}}})";
}

// NAFEMS T4 (NAFEMS "Standard benchmark tests for thermal analysis", test T4): 0.6 x 1.0 m
// plate, k = 52 W/mK, T = 100 degC at y = 0, convection h = 750 W/m2K to 0 degC on x = 0.6
// and y = 1.0, insulated at x = 0. Reference T(0.6, 0.2) = 18.25 degC. Tolerance 0.3 %.
TEST(NafemsT4, FineP1Rectangle60x100Within0_3Percent) {
  FemModel model(twin_from(t4_twin(R"({"generate": "rectangle", "size": [0.6, 1.0], "cells": [60, 100], "order": 1})")));
  EXPECT_NEAR(test::solve_single(model)[0], 18.25, 0.003 * 18.25);
}

TEST(NafemsT4, P2Rectangle24x40Within0_3Percent) {
  FemModel model(twin_from(t4_twin(R"({"generate": "rectangle", "size": [0.6, 1.0], "cells": [24, 40], "order": 2})")));
  EXPECT_NEAR(test::solve_single(model)[0], 18.25, 0.003 * 18.25);
}

// Same benchmark on an unstructured Gmsh mesh (tests/data/t4.geo, meshed at test time).
TEST(NafemsT4, GmshUnstructuredP1AndP2Within0_3Percent) {
  if (std::system("command -v gmsh >/dev/null 2>&1") != 0) GTEST_SKIP() << "gmsh is not installed";
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "doppel_t4";
  std::filesystem::create_directories(dir);
  for (int order : {1, 2}) {
    const std::string msh = (dir / ("t4_p" + std::to_string(order) + ".msh")).string();
    const std::string cmd = "gmsh -2 -order " + std::to_string(order) + " -format msh" +
                            (order == 1 ? "22" : "41") + " " DOPPEL_SOURCE_DIR "/tests/data/t4.geo -o " +
                            msh + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    FemModel model(twin_from(t4_twin(R"({"file": ")" + msh + R"("})")));
    EXPECT_NEAR(test::solve_single(model)[0], 18.25, 0.003 * 18.25) << "order " << order;
  }
}

// Transient conduction in a slab 0 < x < L (insulated faces y = 0, 1), T = 0 at x = 0 and
// x = L from t = 0, initial T0 = 100: T(x,t) = sum_{n odd} 4 T0/(n pi) sin(n pi x/L)
// exp(-a n^2 pi^2 t/L^2), a = k/(rho c). Carslaw & Jaeger (1959), sec. 3.3.
double slab(double x, double t, double L, double a, double T0) {
  const double pi = 3.14159265358979323846;
  double s = 0;
  for (int n = 1; n < 400; n += 2)
    s += 4 * T0 / (n * pi) * std::sin(n * pi * x / L) * std::exp(-a * n * n * pi * pi * t / (L * L));
  return s;
}

double transient_error(const std::string& scheme, double dt) {
  const std::string j = R"({"name": "slab",
    "mesh": {"generate": "rectangle", "size": [1.0, 0.1], "cells": [40, 2], "order": 2},
    "physics": {"thermal": {}},
    "analysis": {"type": "transient", "end_time": 0.1, "time_step": )" + std::to_string(dt) + R"(,
                 "initial_temperature": 100, "output_times": [0.05, 0.1], "scheme": ")" + scheme + R"("},
    "materials": {"m": {"conductivity": 1, "density": 1, "specific_heat": 1}},
    "regions": {"domain": "m"},
    "boundaries": {"xmin": {"thermal": {"type": "temperature", "value": 0}},
                   "xmax": {"thermal": {"type": "temperature", "value": 0}}},
    "outputs": {"T_mid": {"quantity": "temperature", "at": [0.5, 0.05]},
                "T_q": {"quantity": "temperature", "at": [0.25, 0.05]}}})";
  FemModel model(twin_from(j));
  spec::Scenario s;
  const auto r = solve_batch(model, {s});
  double err = 0;
  const double times[2] = {0.05, 0.1};
  for (int k = 0; k < 2; ++k) {
    err = std::max(err, std::fabs(r.scenarios[0].outputs[static_cast<size_t>(k)][0] - slab(0.5, times[k], 1, 1, 100)));
    err = std::max(err, std::fabs(r.scenarios[0].outputs[static_cast<size_t>(k)][1] - slab(0.25, times[k], 1, 1, 100)));
  }
  return err / slab(0.5, 0.1, 1, 1, 100);
}

TEST(Transient, SlabCoolingClosedFormBackwardEulerWithin1Percent) {
  EXPECT_LT(transient_error("backward_euler", 0.0005), 0.01);
}

TEST(Transient, SlabCoolingSecondOrderSchemesWithin0_2PercentAndBeatBackwardEuler) {
  const double be = transient_error("backward_euler", 0.002);
  const double bdf2 = transient_error("bdf2", 0.002);
  const double cn = transient_error("crank_nicolson", 0.002);
  EXPECT_LT(bdf2, 0.002);
  EXPECT_LT(cn, 0.002);
  EXPECT_LT(bdf2, be);
  EXPECT_LT(cn, be);
}

// Uniform heating of a restrained body (closed form): with eps_xx = 0 and the other normal
// stresses free, sigma_xx = -E alpha dT (plane stress, 3D); plane strain with eps_zz = 0 gives
// sigma_xx = sigma_zz = -E alpha dT / (1 - nu). Free expansion gives zero stress and
// u_x = alpha dT x.
std::string restrained(const std::string& mesh, const std::string& form, bool restrain_x) {
  const bool three = form == "3d";
  return R"({"name": "bar", "mesh": )" + mesh + R"(,
    "physics": {"thermal": {}, "mechanical": {"formulation": ")" + form + R"("}},
    "materials": {"m": {"conductivity": 10, "youngs_modulus": 2e11, "poisson_ratio": 0.3,
                        "thermal_expansion": 1.2e-5, "reference_temperature": 20}},
    "regions": {"domain": "m"},
    "boundaries": {
      "xmin": {"thermal": {"type": "temperature", "value": 120}, "mechanical": {"type": "fixed", "components": ["x"]}},
      "xmax": {"thermal": {"type": "temperature", "value": 120})" +
         (restrain_x ? R"(, "mechanical": {"type": "fixed", "components": ["x"]})" : "") + R"(},
      "ymin": {"mechanical": {"type": "fixed", "components": ["y"]}})" +
         (three ? R"(, "zmin": {"mechanical": {"type": "fixed", "components": ["z"]}})" : "") + R"(},
    "outputs": {"sxx": {"quantity": "stress_xx", "at": [0.7, 0.3)" + (three ? ", 0.2" : "") + R"(]},
                "syy": {"quantity": "stress_yy", "reduce": "max", "region": "domain"},
                "szz": {"quantity": "stress_zz", "at": [0.7, 0.3)" + (three ? ", 0.2" : "") + R"(]},
                "ux":  {"quantity": "displacement_x", "at": [1.0, 0.3)" + (three ? ", 0.2" : "") + R"(]},
                "vm":  {"quantity": "von_mises", "reduce": "mean", "region": "domain"}}})";
}

TEST(ThermoElastic, RestrainedBarClosedFormPlaneStressPlaneStrain3D) {
  const double E = 2e11, nu = 0.3, a = 1.2e-5, dT = 100;
  for (int order : {1, 2}) {
    const std::string rect = R"({"generate": "rectangle", "size": [1, 0.5], "cells": [6, 4], "order": )" + std::to_string(order) + "}";
    const std::string box = R"({"generate": "box", "size": [1, 0.5, 0.4], "cells": [3, 2, 2], "order": )" + std::to_string(order) + "}";
    {
      FemModel m(twin_from(restrained(rect, "plane_stress", true)));
      const auto o = test::solve_single(m);
      EXPECT_NEAR(o[0], -E * a * dT, 1e-6 * E * a * dT);
      EXPECT_NEAR(o[1], 0.0, 1e-6 * E * a * dT);
      EXPECT_NEAR(o[2], 0.0, 1e-9);
    }
    {
      FemModel m(twin_from(restrained(rect, "plane_strain", true)));
      const auto o = test::solve_single(m);
      EXPECT_NEAR(o[0], -E * a * dT / (1 - nu), 1e-6 * E * a * dT);
      EXPECT_NEAR(o[2], -E * a * dT / (1 - nu), 1e-6 * E * a * dT);
      EXPECT_NEAR(o[4], E * a * dT / (1 - nu), 1e-6 * E * a * dT);  // von Mises of (s, 0, s)
    }
    {
      FemModel m(twin_from(restrained(box, "3d", true)));
      const auto o = test::solve_single(m);
      EXPECT_NEAR(o[0], -E * a * dT, 1e-6 * E * a * dT);
      EXPECT_NEAR(o[2], 0.0, 1e-6 * E * a * dT);
    }
    {
      FemModel m(twin_from(restrained(rect, "plane_stress", false)));
      const auto o = test::solve_single(m);
      EXPECT_NEAR(o[0], 0.0, 1e-6 * E * a * dT);
      EXPECT_NEAR(o[3], a * dT * 1.0, 1e-9);
    }
  }
}

// Uniaxial tension (closed form): traction t on xmax, rollers on xmin / ymin:
// sigma_xx = t, u_x(L) = t L / E (plane stress); a pressure p gives sigma_xx = -p.
TEST(Elasticity, UniaxialTractionAndPressurePlaneStress) {
  for (const std::string load : {R"({"type": "traction", "value": [1e6, 0]})", R"({"type": "pressure", "value": -1e6})"}) {
    const std::string j = R"({"name": "bar",
      "mesh": {"generate": "rectangle", "size": [2, 0.5], "cells": [8, 3], "order": 2},
      "physics": {"mechanical": {"formulation": "plane_stress", "thickness": 0.01}},
      "materials": {"m": {"youngs_modulus": 7e10, "poisson_ratio": 0.33}},
      "regions": {"domain": "m"},
      "boundaries": {"xmin": {"mechanical": {"type": "fixed", "components": ["x"]}},
                     "ymin": {"mechanical": {"type": "fixed", "components": ["y"]}},
                     "xmax": {"mechanical": )" + load + R"(}},
      "outputs": {"sxx": {"quantity": "stress_xx", "reduce": "mean", "region": "domain"},
                  "ux": {"quantity": "displacement_x", "at": [2, 0.25]},
                  "uy": {"quantity": "displacement_y", "at": [1, 0.5]}}})";
    FemModel m(twin_from(j));
    const auto o = test::solve_single(m);
    EXPECT_NEAR(o[0], 1e6, 1e-3);
    EXPECT_NEAR(o[1], 1e6 * 2 / 7e10, 1e-15);
    EXPECT_NEAR(o[2], -0.33 * 1e6 / 7e10 * 0.5, 1e-15);
  }
}

// Steady conduction through two layers in series (closed form): the interface temperature
// of a composite wall, T_i = (k1/L1 T0 + k2/L2 T1) / (k1/L1 + k2/L2); the heat flux is
// continuous while the recovered flux is reported per region.
TEST(Heat, CompositeWallInterfaceTemperatureGmshTwoRegions) {
  // Two regions from a Gmsh 2.2 file written here: [0,1] (k = 1) and [1,2] (k = 4), height 1.
  const std::filesystem::path file = std::filesystem::temp_directory_path() / "doppel_wall.msh";
  {
    std::ofstream out(file);
    out << "$MeshFormat\n2.2 0 8\n$EndMeshFormat\n$PhysicalNames\n5\n1 11 \"left\"\n1 12 \"right\"\n"
           "2 21 \"a\"\n2 22 \"b\"\n1 13 \"outer\"\n$EndPhysicalNames\n$Nodes\n6\n"
           "1 0 0 0\n2 1 0 0\n3 2 0 0\n4 0 1 0\n5 1 1 0\n6 2 1 0\n$EndNodes\n$Elements\n8\n"
           "1 1 2 11 1 4 1\n2 1 2 12 2 3 6\n3 2 2 21 1 1 2 5\n4 2 2 21 1 1 5 4\n"
           "5 2 2 22 2 2 3 6\n6 2 2 22 2 2 6 5\n7 1 2 13 3 1 2\n8 1 2 13 3 5 4\n$EndElements\n";
  }
  const std::string j = R"({"name": "wall", "mesh": {"file": ")" + file.string() + R"("},
    "physics": {"thermal": {}},
    "materials": {"soft": {"conductivity": 1}, "hard": {"conductivity": 4}},
    "regions": {"a": "soft", "b": "hard"},
    "boundaries": {"left": {"thermal": {"type": "temperature", "value": 100}},
                   "right": {"thermal": {"type": "temperature", "value": 0}}},
    "outputs": {"Ti": {"quantity": "temperature", "at": [1, 0.5]},
                "qa": {"quantity": "heat_flux_x", "reduce": "mean", "region": "a"},
                "qb": {"quantity": "heat_flux_x", "reduce": "mean", "region": "b"}}})";
  FemModel m(twin_from(j));
  const auto o = test::solve_single(m);
  EXPECT_NEAR(o[0], 20.0, 1e-9);
  EXPECT_NEAR(o[1], 80.0, 1e-9);
  EXPECT_NEAR(o[2], 80.0, 1e-9);
}

}  // namespace
}  // namespace doppel
