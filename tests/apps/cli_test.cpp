// The doppel executable: exit codes, error messages naming paths, output shape. Starts the
// real binary.
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/bad_twins.hpp"

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
    if (!c.path.empty()) EXPECT_NE(r.out.find(c.path), std::string::npos) << c.name << ": " << r.out;
  }
}

TEST(Cli, SolveOutputHasTheDocumentedShape) {
  const std::string twin = write_temp("good.json", doppel::test::good_twin());
  const CmdResult r = run("solve --quiet " + twin + " --set h=20");
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
  EXPECT_NE(run("solve --quiet " + twin + " --backend cuda").code, 0);
  EXPECT_EQ(run("solve --quiet /nonexistent/twin.json").code, 2);
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
  const auto a = nlohmann::json::parse(run("solve --quiet " + twin + " --set h=20 --solver cg --rtol 1e-12").out);
  const auto b = nlohmann::json::parse(run("solve --quiet " + twin + " --set h=20 --solver direct").out);
  EXPECT_EQ(a["scenarios"][0]["solver"]["method"].get<std::string>().find("cg") != std::string::npos, true);
  EXPECT_NEAR(a["scenarios"][0]["outputs"]["T"].get<double>(), b["scenarios"][0]["outputs"]["T"].get<double>(), 1e-8 * 50);
  EXPECT_EQ(a["backend"], "cpu");
}

// `doppel solve --backend cuda` equals `--backend cpu` to 1e-8 relative on the example twin's
// scenario file (runs where a GPU is present).
TEST(Cli, CudaBackendEqualsCpuOnTheExampleScenarios) {
  if (run("solve --quiet " + write_temp("good.json", doppel::test::good_twin()) + " --backend cuda").code == 3)
    GTEST_SKIP() << "no CUDA device (or no CUDA build): the CUDA end-to-end comparison did not run";
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
