// The doppel executable: exit codes, error messages naming paths, output shape. Starts the
// real binary.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/bad_twins.hpp"
#include "tests/surrogate_twins.hpp"
#include "tests/test_util.hpp"

namespace {

struct CmdResult {
  int code;
  std::string out;
};

CmdResult run(const std::string& args) {
  const std::string cmd = std::string(DOPPEL_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128, out};
}

std::string write_temp(const std::string& name, const std::string& text) {
  const auto dir = std::filesystem::temp_directory_path() / "doppel_cli";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(DOPPEL_SOURCE_DIR "/tests/data/quads.msh", dir / "quads.msh",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(DOPPEL_SOURCE_DIR "/tests/data/empty.msh", dir / "empty.msh",
                             std::filesystem::copy_options::overwrite_existing);
  const auto f = dir / name;
  std::ofstream(f) << text;
  return f.string();
}

TEST(Cli, EveryBadTwinExitsNonZeroNamingThePath) {
  for (const auto& c : doppel::test::bad_twins()) {
    const CmdResult r = run("solve --quiet " + write_temp(c.name + ".json", c.json));
    EXPECT_EQ(r.code, 2) << c.name << ": " << r.out;
    EXPECT_NE(r.out.find("error"), std::string::npos) << c.name;
    if (!c.path.empty()) {
      EXPECT_NE(r.out.find(c.path), std::string::npos) << c.name << ": " << r.out;
    }
  }
}

TEST(Cli, SolveOutputHasTheDocumentedShape) {
  const std::string twin = write_temp("good.json", doppel::test::good_twin());
  // The host backend: on a GPU machine `auto` picks CUDA, whose CG answers to its tolerance.
  const CmdResult r = run("solve --quiet " + twin + " --set h=20 --backend cpu");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["twin"], "t");
  ASSERT_EQ(doc["scenarios"].size(), 1u);
  const auto& s = doc["scenarios"][0];
  EXPECT_EQ(s["parameters"]["h"], 20.0);
  EXPECT_NEAR(s["outputs"]["T"].get<double>(), 50.0, 1e-9);
  EXPECT_EQ(s["fidelity"], "fem");
  EXPECT_TRUE(s["solver"].contains("iterations"));
  EXPECT_TRUE(s["solver"].contains("residual"));
  EXPECT_TRUE(doc["times"].is_null());
}

TEST(Cli, BadCommandLineValues) {
  const std::string twin = write_temp("good.json", doppel::test::good_twin());
  EXPECT_EQ(run("solve --quiet " + twin + " --set h=abc").code, 2);
  EXPECT_EQ(run("solve --quiet " + twin + " --set nope=1").code, 2);
  EXPECT_EQ(run("solve --quiet " + twin + " --set h=1e9").code, 2);
  EXPECT_EQ(run("solve --quiet " + twin + " --backend tpu").code, 2);
  // --backend cuda runs where a device is present, and is refused (exit 3) elsewhere.
  EXPECT_EQ(run("solve --quiet " + twin + " --backend cuda").code, doppel::test::cuda_unavailable().empty() ? 0 : 3);
  EXPECT_EQ(run("solve --quiet /nonexistent/twin.json").code, 2);
  // A bad DOPPEL_MEMORY_FRACTION stops any command at once, naming the variable.
  ::setenv("DOPPEL_MEMORY_FRACTION", "2", 1);
  const CmdResult bad_fraction = run("solve --quiet " + twin + " --backend cpu");
  ::unsetenv("DOPPEL_MEMORY_FRACTION");
  EXPECT_EQ(bad_fraction.code, 2) << bad_fraction.out;
  EXPECT_NE(bad_fraction.out.find("DOPPEL_MEMORY_FRACTION"), std::string::npos) << bad_fraction.out;
  EXPECT_NE(run("frobnicate").code, 0);
  const std::string sc = write_temp("sc.json", R"({"scenarios": [{"parameters": {"h": "x"}}]})");
  const CmdResult r = run("solve --quiet " + twin + " --scenarios " + sc);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("scenarios[0].parameters.h"), std::string::npos) << r.out;
}

TEST(Cli, SolverAndToleranceOptions) {
  const std::string twin = write_temp("good.json", doppel::test::good_twin());
  CmdResult r = run("solve --quiet " + twin + " --solver lu");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("--solver"), std::string::npos) << r.out;
  r = run("solve --quiet " + twin + " --rtol 0");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("--rtol"), std::string::npos) << r.out;
  EXPECT_EQ(run("solve --quiet " + twin + " --rtol 0.5").code, 2);
  // The CUDA backend has no direct solver: refused by name on a GPU machine, and the
  // backend itself is refused (exit 3) where no GPU is present.
  r = run("solve --quiet " + twin + " --backend cuda --solver direct");
  EXPECT_TRUE(r.code == 2 || r.code == 3) << r.out;
  // The executor CG on the host equals the direct solve.
  const auto a = nlohmann::json::parse(run("solve --quiet " + twin + " --set h=20 --backend cpu --solver cg --rtol 1e-12").out);
  const auto b = nlohmann::json::parse(run("solve --quiet " + twin + " --set h=20 --backend cpu --solver direct").out);
  EXPECT_EQ(a["scenarios"][0]["solver"]["method"].get<std::string>().find("cg") != std::string::npos, true);
  EXPECT_NEAR(a["scenarios"][0]["outputs"]["T"].get<double>(), b["scenarios"][0]["outputs"]["T"].get<double>(), 1e-8 * 50);
  EXPECT_EQ(a["backend"], "cpu");
}

// `doppel solve --backend cuda` equals `--backend cpu` to 1e-8 relative on the example twin's
// scenario file (runs where a GPU is present).
TEST(Cli, CudaBackendEqualsCpuOnTheExampleScenarios) {
  DOPPEL_SKIP_WITHOUT_CUDA("the CUDA end-to-end comparison");
  const std::string args = "solve --quiet " DOPPEL_SOURCE_DIR "/examples/blade/twin.json --scenarios " DOPPEL_SOURCE_DIR
                           "/examples/blade/scenarios.json --rtol 1e-12";
  const CmdResult gpu = run(args + " --backend cuda"), cpu = run(args + " --backend cpu");
  ASSERT_EQ(gpu.code, 0) << gpu.out;
  ASSERT_EQ(cpu.code, 0) << cpu.out;
  const auto g = nlohmann::json::parse(gpu.out), c = nlohmann::json::parse(cpu.out);
  ASSERT_EQ(g["scenarios"].size(), c["scenarios"].size());
  for (size_t s = 0; s < g["scenarios"].size(); ++s)
    for (const auto& [name, value] : c["scenarios"][s]["outputs"].items()) {
      const double x = g["scenarios"][s]["outputs"][name].get<double>(), y = value.get<double>();
      EXPECT_NEAR(x, y, 1e-8 * std::max(1.0, std::fabs(y))) << "scenario " << s << " " << name;
    }
}

TEST(Cli, VtuIsWrittenAndWellFormed) {
  const std::string twin = write_temp("good.json", doppel::test::good_twin());
  const auto vtu = std::filesystem::temp_directory_path() / "doppel_cli" / "good.vtu";
  ASSERT_EQ(run("solve --quiet " + twin + " --vtu " + vtu.string() + " --output /dev/null").code, 0);
  std::ifstream in(vtu);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("<VTKFile type=\"UnstructuredGrid\""), std::string::npos);
  for (const char* name : {"temperature", "displacement", "stress", "von_mises", "heat_flux"})
    EXPECT_NE(text.find(std::string("Name=\"") + name + "\""), std::string::npos) << name;
  EXPECT_NE(text.find("</VTKFile>"), std::string::npos);
}

}  // namespace

// --- surrogate commands ------------------------------------------------------------------------

// A small twin trained once through the command line (shared by the tests below). CTest runs
// each test in its own process, in parallel: every process works in its own directory.
std::filesystem::path process_dir() {
  const auto dir = std::filesystem::temp_directory_path() / ("doppel_cli_surrogate_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

class CliSurrogate : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto dir = process_dir();
    std::ofstream(dir / "splate.json") << doppel::test::surrogate_plate_json(6, 8);
    twin_ = new std::string((dir / "splate.json").string());
    bundle_ = new std::string((dir / "splate-bundle").string());
    std::filesystem::remove_all(*bundle_);
    // Trained over h in [200, 1500] only: the twin allows [100, 2000].
    const CmdResult r = run("train " + *twin_ + " --out " + *bundle_ +
                            " --samples 48 --calibration 16 --test 8 --epochs 800 --members 2 --hidden 24,24"
                            " --range h=200:1500 --quiet");
    ASSERT_EQ(r.code, 0) << r.out;
  }
  static void TearDownTestSuite() {
    delete twin_;
    delete bundle_;
    std::error_code ec;
    std::filesystem::remove_all(process_dir(), ec);
  }
  static nlohmann::json solve(const std::string& extra) {
    const std::string out = (process_dir() / "surrogate_out.json").string();
    const CmdResult r = run("solve " + *twin_ + " --bundle " + *bundle_ + " --quiet --output " + out + " " + extra);
    EXPECT_EQ(r.code, 0) << r.out;
    return nlohmann::json::parse(std::ifstream(out));
  }
  static std::string* twin_;
  static std::string* bundle_;
};
std::string* CliSurrogate::twin_ = nullptr;
std::string* CliSurrogate::bundle_ = nullptr;

std::string scenario_file(const std::vector<std::array<double, 3>>& values) {
  nlohmann::json doc;
  for (const auto& v : values) doc["scenarios"].push_back({{"parameters", {{"T0", v[0]}, {"h", v[1]}, {"q", v[2]}}}});
  const auto f = process_dir() / "splate_scenarios.json";
  std::ofstream(f) << doc.dump();
  return f.string();
}

// A tolerance between the two middle values of an even-sized list (half above, half below),
// and a number printed so that it reads back exactly.
double midpoint_of_middle(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}
std::string exact(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

TEST_F(CliSurrogate, TrainWritesABundleWithValidation) {
  for (const char* f : {"meta.json", "validation.json", "temperature_modes.npy", "estimator_gram.npy"})
    EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(*bundle_) / f)) << f;
  const auto meta = nlohmann::json::parse(std::ifstream(*bundle_ + "/meta.json"));
  EXPECT_EQ(meta["twin"]["name"], "splate");
  EXPECT_EQ(meta["parameters"][1]["min"], 200.0);
  EXPECT_TRUE(meta["validation"].contains("field_relative_l2_p95"));
}

TEST_F(CliSurrogate, AutoFallsBackExactlyWhereTheEstimateExceedsTheTolerance) {
  std::vector<std::array<double, 3>> values;
  for (int i = 0; i < 24; ++i) values.push_back({50.0 + 4 * i, 200.0 + 50 * i, 1e3 * (i % 7)});
  const std::string file = scenario_file(values);
  // First the network's own estimates (fidelity surrogate with a tolerance above them keeps
  // the network), then a tolerance between them.
  const auto all = solve("--fidelity surrogate --tolerance 1 --scenarios " + file);
  std::vector<double> est;
  for (const auto& s : all["scenarios"]) {
    ASSERT_EQ(s["fidelity"], "surrogate");
    est.push_back(s["error_estimate"].get<double>());
  }
  const double tol = midpoint_of_middle(est);
  const std::string buf = exact(tol);
  const auto mixed = solve("--fidelity auto --tolerance " + std::string(buf) + " --scenarios " + file);
  // Above the tolerance: the second tier (the reduced thermo-elastic solve) where its own
  // estimate is within it, keeping the network's as surrogate_estimate; FEM for the rest.
  size_t passed_on = 0, fem = 0;
  for (size_t i = 0; i < est.size(); ++i) {
    const auto& s = mixed["scenarios"][i];
    if (est[i] <= tol) {
      EXPECT_EQ(s["tier"], "network") << i;
      EXPECT_EQ(s["error_estimate"].get<double>(), est[i]);
      continue;
    }
    ++passed_on;
    EXPECT_EQ(s["surrogate_estimate"].get<double>(), est[i]) << i;
    if (s["tier"] == "reduced") {
      EXPECT_EQ(s["fidelity"], "surrogate") << i;
      EXPECT_LE(s["error_estimate"].get<double>(), tol) << i;
    } else {
      ++fem;
      EXPECT_EQ(s["fidelity"], "fem") << i;
      EXPECT_EQ(s["fallback"], "estimate_above_tolerance");
      EXPECT_TRUE(s.contains("solver"));
    }
  }
  EXPECT_EQ(passed_on, 12u);
  EXPECT_EQ(mixed["surrogate"]["fem"], fem);
  // FEM alone past both tiers: a tolerance no surrogate estimate meets.
  const auto strict = solve("--fidelity auto --tolerance 1e-14 --scenarios " + file);
  for (const auto& s : strict["scenarios"]) EXPECT_EQ(s["fallback"], "estimate_above_tolerance");
  // --one-fidelity: the batch is answered by one tier, the highest any scenario needs; when it
  // is FEM, each scenario says why, with the FE answers of a plain FE solve (1e-12).
  const auto one = solve("--fidelity auto --one-fidelity --tolerance " + std::string(buf) + " --scenarios " + file);
  const std::string tier = one["scenarios"][0]["tier"];
  EXPECT_NE(tier, "network");  // half the batch was above the network's tolerance
  EXPECT_EQ(one["surrogate"]["fem"], tier == "fem" ? 24 : 0);
  const auto plain = solve("--fidelity fem --scenarios " + file);
  for (size_t i = 0; i < est.size(); ++i) {
    const auto& s = one["scenarios"][i];
    EXPECT_EQ(s["tier"], tier) << i;
    if (tier == "fem") {
      EXPECT_TRUE(s["fallback"] == "one_fidelity" || s["fallback"] == "estimate_above_tolerance") << i;
      for (const auto& [name, v] : s["outputs"].items())
        EXPECT_NEAR(v.get<double>(), plain["scenarios"][i]["outputs"][name].get<double>(), 1e-12 * std::abs(v.get<double>())) << name;
    } else {
      EXPECT_LE(s["error_estimate"].get<double>(), tol) << i;
    }
  }
  // Every scenario within the tolerance: the whole batch stays with the surrogate.
  const auto lax = solve("--fidelity auto --one-fidelity --tolerance 1e9 --scenarios " + file);
  EXPECT_EQ(lax["surrogate"]["fem"], 0);
}

// Answers carry an error estimate per output, in the output's units, and --output-tolerance
// sends exactly the scenarios whose network estimate of that output exceeds it on, to the
// reduced tier (the thermo-elastic Galerkin solve) where its own estimate is within it, else FEM.
TEST_F(CliSurrogate, PerOutputEstimatesAndTolerances) {
  std::vector<std::array<double, 3>> values;
  for (int i = 0; i < 16; ++i) values.push_back({60.0 + 5 * i, 250.0 + 70 * i, 2.5e3 * (i % 5)});
  const std::string file = scenario_file(values);
  const auto all = solve("--fidelity surrogate --tolerance 1 --scenarios " + file);
  std::vector<double> est;
  for (const auto& s : all["scenarios"]) {
    ASSERT_TRUE(s.contains("output_estimates")) << s.dump();
    EXPECT_EQ(s["output_estimates"].size(), s["outputs"].size());
    est.push_back(s["output_estimates"]["vm_max"].get<double>());
  }
  const double tol = midpoint_of_middle(est);
  const std::string buf = exact(tol);
  const auto mixed = solve("--fidelity auto --tolerance 1 --output-tolerance vm_max=" + std::string(buf) + " --scenarios " + file);
  size_t passed_on = 0;
  for (size_t i = 0; i < est.size(); ++i) {
    const auto& s = mixed["scenarios"][i];
    if (est[i] <= tol) {
      EXPECT_EQ(s["tier"], "network") << i;
      continue;
    }
    ++passed_on;
    if (s["tier"] == "reduced") {
      EXPECT_LE(s["output_estimates"]["vm_max"].get<double>(), tol) << i;
    } else {
      EXPECT_EQ(s["tier"], "fem") << i;
      EXPECT_EQ(s["fallback"], "output_estimate_above_tolerance") << i;
    }
  }
  EXPECT_EQ(passed_on, 8u);
}

TEST_F(CliSurrogate, OutOfBoundsScenariosAreSolvedWithFem) {
  // h = 1800 lies inside the twin's bounds but outside the training range [200, 1500].
  const std::string file = scenario_file({{100, 800, 1e4}, {100, 1800, 1e4}, {100, 150, 1e4}});
  for (const char* fidelity : {"surrogate", "auto"}) {
    const auto doc = solve(std::string("--fidelity ") + fidelity + " --tolerance 1 --scenarios " + file);
    EXPECT_EQ(doc["scenarios"][0]["fidelity"], "surrogate") << fidelity;
    for (int i : {1, 2}) {
      EXPECT_EQ(doc["scenarios"][i]["fidelity"], "fem") << fidelity;
      EXPECT_EQ(doc["scenarios"][i]["fallback"], "outside_training_bounds");
    }
  }
  // And FEM answers equal a plain FEM solve of the same scenario.
  const auto fem = solve("--fidelity fem --scenarios " + file);
  EXPECT_NEAR(fem["scenarios"][1]["outputs"]["T_max"].get<double>(),
              solve("--scenarios " + file)["scenarios"][1]["outputs"]["T_max"].get<double>(), 1e-9);
}

TEST_F(CliSurrogate, SurrogateAnswersAreCloseToFem) {
  const std::string file = scenario_file({{80, 600, 2e4}, {120, 1000, 4e4}});
  const auto sur = solve("--fidelity surrogate --tolerance 1 --scenarios " + file);  // the network
  const auto fem = solve("--fidelity fem --scenarios " + file);
  for (int i : {0, 1}) {
    const double a = sur["scenarios"][i]["outputs"]["T_max"].get<double>(), b = fem["scenarios"][i]["outputs"]["T_max"].get<double>();
    EXPECT_EQ(sur["scenarios"][i]["tier"], "network");
    EXPECT_NEAR(a, b, 0.05 * std::abs(b)) << i;  // a 48-sample, 800-epoch network: within 5 %
    EXPECT_TRUE(sur["scenarios"][i]["spread"].contains("vm_max"));
  }
  // Below the network's estimates, fidelity surrogate answers from the reduced tier where its
  // estimate is smaller (the thermo-elastic Galerkin solve): within 0.1 % of FEM, never FEM.
  const auto tier2 = solve("--fidelity surrogate --tolerance 1e-12 --scenarios " + file);
  EXPECT_EQ(tier2["surrogate"]["fem"], 0);
  int reduced = 0;
  for (int i : {0, 1}) {
    const auto& s = tier2["scenarios"][i];
    EXPECT_EQ(s["fidelity"], "surrogate");
    if (s["tier"] != "reduced") continue;
    ++reduced;
    EXPECT_LT(s["error_estimate"].get<double>(), sur["scenarios"][i]["error_estimate"].get<double>());
    for (const char* o : {"T_max", "vm_max"})
      EXPECT_NEAR(s["outputs"][o].get<double>(), fem["scenarios"][i]["outputs"][o].get<double>(),
                  1e-3 * std::abs(fem["scenarios"][i]["outputs"][o].get<double>())) << o;
  }
  EXPECT_GT(reduced, 0);
}

TEST_F(CliSurrogate, BadSurrogateArgumentsAreRefusedByName) {
  auto expect = [](const std::string& args, int code, const std::string& text) {
    const CmdResult r = run(args);
    EXPECT_EQ(r.code, code) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(text), std::string::npos) << args << "\n" << r.out;
  };
  expect("solve " + *twin_ + " --fidelity surrogate", 2, "--fidelity");
  expect("solve " + *twin_ + " --bundle " + *bundle_ + " --fidelity best", 2, "--fidelity");
  expect("solve " + *twin_ + " --bundle " + *bundle_ + " --tolerance -1", 2, "--tolerance");
  expect("solve " + *twin_ + " --bundle /nonexistent", 2, "bundle");
  expect("solve " + *twin_ + " --bundle " + *bundle_ + " --device tpu", 2, "--device");
  expect("solve " + *twin_ + " --bundle " + *bundle_ + " --fidelity fem --one-fidelity", 2, "--one-fidelity");
  expect("solve " + *twin_ + " --one-fidelity", 2, "--one-fidelity");
  expect("solve " + *twin_ + " --bundle " + *bundle_ + " --output-tolerance T_nope=1", 2, "--output-tolerance.T_nope: twin 'splate' has no output");
  expect("solve " + *twin_ + " --bundle " + *bundle_ + " --output-tolerance T_max=-2", 2, "--output-tolerance.T_max: must be a positive");
  expect("solve " + *twin_ + " --bundle " + *bundle_ + " --output-tolerance T_max=abc", 2, "is not a number");
  expect("solve " + *twin_ + " --bundle " + *bundle_ + " --output-tolerance T_max", 2, "expected NAME=VALUE");
  expect("solve " + *twin_ + " --bundle " + *bundle_ + " --fidelity surrogate --output-tolerance T_max=1", 2, "auto only");
  const std::string blade = std::string(DOPPEL_SOURCE_DIR) + "/examples/blade/twin.json";
  expect("solve " + blade + " --bundle " + *bundle_, 2, "trained for twin 'splate'");
  expect("train " + *twin_ + " --out " + (process_dir() / "x").string() + " --range h=1:5000", 2, "--range h");
  expect("train " + *twin_ + " --out " + (process_dir() / "x").string() + " --range h", 2, "--range");
  expect("train " + *twin_ + " --out " + (process_dir() / "x").string() + " --members 0", 2, "--members");
  expect("train " + *twin_ + " --out " + (process_dir() / "x").string() + " --samples 2", 2, "--samples");
  expect("train " + *twin_ + " --out " + (process_dir() / "x").string() + " --max-samples 100", 2, "--max-samples: is the budget of --adaptive");
  expect("train " + *twin_ + " --out " + (process_dir() / "x").string() + " --adaptive -1", 2, "--adaptive");
  expect("train " + *twin_ + " --out " + (process_dir() / "x").string() + " --samples 48 --adaptive 0.01 --max-samples 20", 2, "--max-samples");
}

TEST(CliSurrogateTransient, TrainAndAnswerATransientTwinWithSchedules) {
  const auto dir = process_dir();
  const std::string twin = (dir / "transient.json").string();
  std::ofstream(twin) << doppel::test::surrogate_transient_json();
  const std::string bundle = (dir / "transient-bundle").string();
  const CmdResult t = run("train " + twin + " --out " + bundle + " --samples 12 --calibration 8 --test 4 --quiet");
  ASSERT_EQ(t.code, 0) << t.out;
  const auto scen = dir / "transient_scenarios.json";
  std::ofstream(scen) << R"({"scenarios": [{"parameters": {"h": 800},
                                             "schedules": {"T_gas": [[0, 400], [150, 850]]}}]})";
  const std::string out = (dir / "transient_out.json").string();
  const CmdResult r = run("solve " + twin + " --bundle " + bundle + " --fidelity surrogate --quiet --scenarios " +
                          scen.string() + " --output " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  const auto doc = nlohmann::json::parse(std::ifstream(out));
  ASSERT_EQ(doc["times"].size(), 4u);
  const auto& s = doc["scenarios"][0];
  EXPECT_EQ(s["fidelity"], "surrogate");
  EXPECT_EQ(s["outputs"]["T_max"].size(), 4u);
  EXPECT_EQ(s["error_estimates"].size(), 4u);
  // Against FEM on the same schedule: within 1 % at every output time.
  const CmdResult f = run("solve " + twin + " --quiet --scenarios " + scen.string() + " --output " + out);
  ASSERT_EQ(f.code, 0) << f.out;
  const auto fem = nlohmann::json::parse(std::ifstream(out));
  for (size_t t = 0; t < 4; ++t) {
    const double a = s["outputs"]["T_max"][t].get<double>(), b = fem["scenarios"][0]["outputs"]["T_max"][t].get<double>();
    EXPECT_NEAR(a, b, 0.01 * std::abs(b)) << t;
  }
}
