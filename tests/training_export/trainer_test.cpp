// The training pipeline on a small twin (tests/surrogate_twins.hpp: 8 x 12 P2 plate, heat and
// plane stress, three parameters). Reference: finite-element solves of held-out scenarios
// that training never saw. Tolerances are stated at each check.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <thread>

#include "kernels/fem/outputs.hpp"
#include "surrogate/engine.hpp"
#include "surrogate/fidelity.hpp"
#include "surrogate/mlp.hpp"
#include "surrogate/surrogate.hpp"
#include "tests/surrogate_twins.hpp"
#include "tests/test_util.hpp"
#include "training_export/trainer.hpp"

namespace doppel {
namespace {

namespace fs = std::filesystem;

TrainOptions small_options() {
  TrainOptions o;
  o.samples = 96;
  o.calibration = 40;
  o.test = 40;
  o.network.hidden = {48, 48};
  o.network.members = 3;
  o.fit.max_epochs = 8000;
  o.fit.patience = 1000;
  return o;
}

class Trained : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = new FemModel(test::twin_from(test::surrogate_plate_json()));
    result_ = new TrainResult(train_surrogate(*model_, small_options()));
    dir_ = (fs::temp_directory_path() / "doppel_trained_bundle").string();
    fs::remove_all(dir_);
    result_->surrogate->save(dir_, result_->training, result_->validation);
  }
  static void TearDownTestSuite() {
    delete result_;
    delete model_;
  }
  static FemModel* model_;
  static TrainResult* result_;
  static std::string dir_;
};
FemModel* Trained::model_ = nullptr;
TrainResult* Trained::result_ = nullptr;
std::string Trained::dir_;

TEST_F(Trained, ReachesTheStatedAccuracyOnHeldOutSolves) {
  const auto& v = result_->validation;
  // Held-out temperature field: relative L2 error <= 1.5 % at p95 (96 training solves; an
  // untrained network is off by tens of percent).
  EXPECT_LT(v["fields"]["temperature"]["relative_l2"]["p95"].get<double>(), 1.5e-2) << v.dump(2);
  // Every output within 3 % at p95.
  for (const auto& [name, o] : v["outputs"].items())
    EXPECT_LT(o["relative"]["p95"].get<double>(), 3e-2) << name << " " << o.dump();
}

TEST_F(Trained, ErrorEstimateBoundsTheTrueErrorOnHeldOutSolves) {
  const auto& e = result_->validation["error_estimate"];
  // Calibrated for 97.5 % coverage on 40 other solves: at least 85 % of the 40 test solves
  // bounded, and not wildly pessimistic (mean effectivity below 10).
  EXPECT_GE(e["bounds_true_error_fraction"].get<double>(), 0.85) << e.dump(2);
  EXPECT_LT(e["effectivity"]["mean"].get<double>(), 10.0) << e.dump(2);
  EXPECT_GE(e["effectivity"]["median"].get<double>(), 0.5) << e.dump(2);
}

// Per-output estimates (factor * RMS field error estimate, each factor the conformal quantile
// of |output error| / field estimate on the 40 calibration solves at 97.5 %): on 60 other
// solves never trained on, every output's estimate bounds its true error in at least 85 %
// of them (validation.json says the same for its 40 test solves), in the output's units.
TEST_F(Trained, OutputEstimatesBoundEachOutputsErrorOnHeldOutSolves) {
  const Surrogate& sur = *result_->surrogate;
  ASSERT_TRUE(sur.has_output_estimates());
  const auto sc = test::random_scenarios(model_->twin(), {}, 60, 99);
  std::vector<Params> p;
  for (const auto& s : sc) p.push_back(s.parameters);
  const BatchResult fe = solve_batch(*model_, sc);
  const SurrogateBatch b = sur.evaluate(p);
  ASSERT_EQ(b.output_estimate.size(), p.size() * b.outputs_per_scenario);
  for (size_t k = 0; k < b.outputs_per_scenario; ++k) {
    size_t bounded = 0;
    double ratio = 0;
    for (size_t s = 0; s < p.size(); ++s) {
      const double err = std::abs(b.output(s, k) - fe.scenarios[s].outputs[0][k]);
      bounded += b.output_estimate[s * b.outputs_per_scenario + k] >= err;
      ratio += b.output_estimate[s * b.outputs_per_scenario + k] / std::max(err, 1e-300) / static_cast<double>(p.size());
    }
    const std::string name = model_->twin().outputs[k].name;
    EXPECT_GE(static_cast<double>(bounded) / static_cast<double>(p.size()), 0.85) << name;
    const auto& v = result_->validation["outputs"][name]["estimate"];
    EXPECT_GE(v["bounds_true_error_fraction"].get<double>(), 0.85) << name << " " << v.dump();
    EXPECT_GT(v["factor"].get<double>(), 0.0) << name;
  }
  EXPECT_GE(result_->validation["summary"]["output_estimate_bounds_fraction_min"].get<double>(), 0.85);
  // They survive the bundle, and answers carry them.
  const auto loaded = Surrogate::load(dir_, *model_);
  const SurrogateBatch c = loaded->evaluate(p);
  for (size_t i = 0; i < b.output_estimate.size(); ++i)
    EXPECT_NEAR(c.output_estimate[i], b.output_estimate[i], 1e-9 * std::abs(b.output_estimate[i]));
}

// auto with a tolerance on one output: every surrogate answer's estimate of that output is
// within it, the others went on to the reduced tier or FEM saying why, and the field
// tolerance alone (set loose) would have taken them all.
TEST_F(Trained, AutoHonoursPerOutputTolerances) {
  const Surrogate& sur = *result_->surrogate;
  const auto sc = test::random_scenarios(model_->twin(), {}, 30, 5);
  std::vector<Params> p;
  for (const auto& s : sc) p.push_back(s.parameters);
  const SurrogateBatch b = sur.evaluate(p);
  const size_t k = 1;  // outputs are kept in name order; any one will do
  std::vector<double> e;
  for (size_t s = 0; s < p.size(); ++s) e.push_back(b.output_estimate[s * b.outputs_per_scenario + k]);
  std::sort(e.begin(), e.end());
  const double tol = e[e.size() / 2];
  AnswerOptions o;
  o.fidelity = Fidelity::automatic;
  o.tolerance = 1.0;
  o.output_tolerances = parse_output_tolerances(model_->twin(), {{model_->twin().outputs[k].name, tol}}, "output_tolerances");
  const AnswerSet set = answer_scenarios(*model_, &sur, sc, o);
  size_t fem = 0;
  for (size_t s = 0; s < sc.size(); ++s) {
    const ScenarioAnswer& a = set.answers[s];
    if (a.surrogate) {
      ASSERT_EQ(a.output_estimates.size(), 1u);
      EXPECT_LE(a.output_estimates[0][k], tol) << s;
    } else {
      ++fem;
      EXPECT_EQ(a.fallback, "output_estimate_above_tolerance") << s;
    }
  }
  EXPECT_GT(fem + std::count_if(set.answers.begin(), set.answers.end(), [](const ScenarioAnswer& a) { return a.tier == "reduced"; }), 0u);
  EXPECT_THROW(parse_output_tolerances(model_->twin(), {{"nope", 1.0}}, "output_tolerances"), InvalidInput);
  EXPECT_THROW(parse_output_tolerances(model_->twin(), {{model_->twin().outputs[0].name, -1.0}}, "output_tolerances"), InvalidInput);
}

// The thermo-elastic second tier: the reduced temperature solve, then the reduced
// displacement under its thermal strain. Twin: the P2 8 x 12 plate of the fixture (96 training
// solves). Reference: FEM of 20 random scenarios; the reduced answers of T_max, T_probe and
// vm_max are within 0.2 % of FE (the POD spaces hold the solutions closely: the error left is
// the truncation, not a network's), closer than the network's worst, and the answer's field
// and output estimates are there.
TEST_F(Trained, ThermoElasticSecondTierSolvesTemperatureThenDisplacement) {
  const Surrogate& sur = *result_->surrogate;
  ASSERT_TRUE(sur.has_reduced_tier());
  const auto sc = test::random_scenarios(model_->twin(), {}, 20, 123);
  std::vector<Params> p;
  for (const auto& s : sc) p.push_back(s.parameters);
  const BatchResult fe = solve_batch(*model_, sc);
  const auto red = sur.evaluate_reduced(p, true);
  const SurrogateBatch net = sur.evaluate(p);
  double worst_red = 0, worst_net = 0;
  for (size_t s = 0; s < p.size(); ++s) {
    ASSERT_EQ(red[s].output_estimates.size(), model_->twin().outputs.size());
    EXPECT_FALSE(red[s].displacement.empty());
    for (size_t k = 0; k < model_->twin().outputs.size(); ++k) {
      const std::string& name = model_->twin().outputs[k].name;
      if (name != "T_max" && name != "T_probe" && name != "vm_max") continue;
      const double ref = fe.scenarios[s].outputs[0][k];
      worst_red = std::max(worst_red, std::abs(red[s].outputs[k] - ref) / std::abs(ref));
      worst_net = std::max(worst_net, std::abs(net.output(s, k) - ref) / std::abs(ref));
    }
  }
  std::printf("thermo-elastic second tier: worst relative error %.3g (network %.3g)\n", worst_red, worst_net);
  EXPECT_LE(worst_red, 2e-3);
  EXPECT_LE(worst_red, worst_net);
}

TEST_F(Trained, BundleRoundTripsToTheSameAnswers) {
  const auto loaded = Surrogate::load(dir_, *model_);
  const auto scen = test::random_scenarios(model_->twin(), {}, 17, 11);
  std::vector<Params> p;
  for (const auto& s : scen) p.push_back(s.parameters);
  const SurrogateBatch a = result_->surrogate->evaluate(p, true), b = loaded->evaluate(p, true);
  ASSERT_EQ(a.outputs.size(), b.outputs.size());
  for (size_t i = 0; i < a.outputs.size(); ++i) EXPECT_NEAR(a.outputs[i], b.outputs[i], 1e-9 * std::max(1.0, std::abs(a.outputs[i])));
  for (size_t i = 0; i < a.T.size(); ++i) EXPECT_NEAR(a.T[i], b.T[i], 1e-9 * std::max(1.0, std::abs(a.T[i])));
  for (size_t s = 0; s < p.size(); ++s) EXPECT_NEAR(a.estimate[s], b.estimate[s], 1e-9 * a.estimate[s]);
  for (const char* f : {"meta.json", "validation.json", "temperature_modes.npy", "displacement_modes.npy",
                        "network_W0.npy", "estimator_gram.npy"})
    EXPECT_TRUE(fs::exists(fs::path(dir_) / f)) << f;
}

TEST_F(Trained, ChunkedEvaluationEqualsOneChunk) {
  const auto scen = test::random_scenarios(model_->twin(), {}, 23, 12);
  std::vector<Params> p;
  for (const auto& s : scen) p.push_back(s.parameters);
  const SurrogateBatch a = result_->surrogate->evaluate(p, false, 5), b = result_->surrogate->evaluate(p, false, 100);
  // The network runs in float32, whose matrix products round differently for other batch
  // widths: equal to float32 precision.
  for (size_t i = 0; i < a.outputs.size(); ++i) EXPECT_NEAR(a.outputs[i], b.outputs[i], 1e-5 * std::max(1.0, std::abs(a.outputs[i])));
}

TEST_F(Trained, EngineNetworkEqualsTheHostReference) {
  const MlpWeights& net = result_->surrogate->parts().net;
  std::vector<float> X = {0.1f, -0.5f, 0.9f, -1.0f, 0.0f, 1.0f};
  const std::vector<float> y = mlp_forward(net, X, 2);
  // The engine's coefficients are the mean over members, de-standardized.
  const auto& parts = result_->surrogate->parts();
  const auto& twin = model_->twin();
  std::vector<Params> p(2, twin.default_parameters());
  for (size_t s = 0; s < 2; ++s)
    for (size_t i = 0; i < 3; ++i)
      p[s][i] = parts.lower[i] + (X[s * 3 + i] + 1.0) / 2.0 * (parts.upper[i] - parts.lower[i]);
  const SurrogateBatch b = result_->surrogate->evaluate(p);
  const size_t R = parts.coef_mean.size(), E = static_cast<size_t>(net.shape.members);
  for (size_t s = 0; s < 2; ++s)
    for (size_t j = 0; j < R; ++j) {
      double mean = 0;
      for (size_t e = 0; e < E; ++e) mean += y[(e * 2 + s) * R + j] / static_cast<double>(E);
      const double c = mean * parts.coef_std[j] + parts.coef_mean[j];
      EXPECT_NEAR(b.coefficients[s * R + j], c, 1e-4 * parts.coef_std[j]) << s << " " << j;
    }
}

std::string torch_cuda_unavailable() {
  return InferenceEngine::cuda_available() ? "" : "LibTorch sees no CUDA device";
}

TEST_F(Trained, CudaInferenceEqualsCpu) {
  DOPPEL_SKIP_FOR_WANT_OF_GPU(torch_cuda_unavailable(), "GPU inference against the CPU");
  const auto gpu = Surrogate::load(dir_, *model_, "cuda");
  const auto scen = test::random_scenarios(model_->twin(), {}, 31, 13);
  std::vector<Params> p;
  for (const auto& s : scen) p.push_back(s.parameters);
  const SurrogateBatch a = result_->surrogate->evaluate(p, true), b = gpu->evaluate(p, true);
  for (size_t i = 0; i < a.outputs.size(); ++i) EXPECT_NEAR(a.outputs[i], b.outputs[i], 1e-5 * std::max(1.0, std::abs(a.outputs[i])));
  for (size_t s = 0; s < p.size(); ++s) EXPECT_NEAR(a.estimate[s], b.estimate[s], 1e-4 * a.estimate[s]);
}

// The serving case: surrogate inference (LibTorch, on its CUDA device where there is one) and
// finite-element solves (the CUDA backend where there is one, else the host executor CG) in one
// process at the same time, from two threads, several rounds. Each must answer exactly what it
// answers alone: LibTorch's stream and allocator and doppel's own streams, pool and budget
// share the device. Reference: the same calls one after the other; tolerances 1e-12 relative
// for the surrogate (same device, same kernels) and 1e-9 for FE (device reductions accumulate
// in varying order; CG to 1e-12).
TEST_F(Trained, SurrogateAndFemShareTheDeviceInOneProcess) {
  const bool gpu = torch_cuda_unavailable().empty() && test::cuda_unavailable().empty();
  if (!gpu) {
    const std::string why = !torch_cuda_unavailable().empty() ? torch_cuda_unavailable() : test::cuda_unavailable();
    if (test::gpu_required()) FAIL() << "DOPPEL_REQUIRE_GPU=1, but " << why << ": GPU sharing not tested";
    std::cerr << why << ": surrogate and FE share the CPU instead\n";
  }
  const auto sur = Surrogate::load(dir_, *model_, gpu ? "cuda" : "cpu");
  const auto scen = test::random_scenarios(model_->twin(), {}, 300, 61);
  std::vector<Params> p;
  for (const auto& s : scen) p.push_back(s.parameters);
  BatchOptions fe;
  fe.backend = gpu ? Backend::cuda : Backend::host;
  fe.linear = LinearSolver::cg;
  fe.solver.rtol = 1e-12;
  fe.allow_superposition = false;
  const std::vector<spec::Scenario> fe_scen(scen.begin(), scen.begin() + 24);
  const SurrogateBatch s_alone = sur->evaluate(p, true);
  const BatchResult f_alone = solve_batch(*model_, fe_scen, fe);
  for (int round = 0; round < 3; ++round) {
    SurrogateBatch s_both;
    std::thread inference([&] { s_both = sur->evaluate(p, true); });
    const BatchResult f_both = solve_batch(*model_, fe_scen, fe);
    inference.join();
    ASSERT_EQ(s_both.outputs.size(), s_alone.outputs.size());
    for (size_t i = 0; i < s_alone.outputs.size(); ++i)
      ASSERT_NEAR(s_both.outputs[i], s_alone.outputs[i], 1e-12 * std::max(1.0, std::abs(s_alone.outputs[i]))) << "round " << round << " " << i;
    for (size_t i = 0; i < s_alone.T.size(); ++i)
      ASSERT_NEAR(s_both.T[i], s_alone.T[i], 1e-12 * std::max(1.0, std::abs(s_alone.T[i]))) << "round " << round << " T " << i;
    for (size_t s = 0; s < fe_scen.size(); ++s)
      for (size_t o = 0; o < f_alone.scenarios[s].outputs[0].size(); ++o) {
        const double x = f_both.scenarios[s].outputs[0][o], y = f_alone.scenarios[s].outputs[0][o];
        ASSERT_NEAR(x, y, 1e-9 * std::max(1.0, std::abs(y))) << "round " << round << " scenario " << s << " output " << o;
      }
  }
}

TEST_F(Trained, BundleForAnotherTwinOrMeshIsRefusedByName) {
  // Another twin (name).
  FemModel other(test::twin_from(test::surrogate_plate_json(8, 12, "another")));
  try {
    Surrogate::load(dir_, other);
    FAIL() << "loaded a bundle for another twin";
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("trained for twin 'splate'"), std::string::npos) << e.what();
  }
  // The same twin name, another mesh: the section that differs is named.
  FemModel finer(test::twin_from(test::surrogate_plate_json(10, 12)));
  try {
    Surrogate::load(dir_, finer);
    FAIL() << "loaded a bundle for another version of the twin";
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("its mesh differs"), std::string::npos) << e.what();
  }
  // Same twin hash, another mesh hash (a tampered bundle): named as a mesh mismatch.
  const std::string copy = dir_ + "_mesh";
  fs::remove_all(copy);
  fs::copy(dir_, copy);
  nlohmann::json meta = nlohmann::json::parse(std::ifstream(copy + "/meta.json"));
  meta["mesh"]["hash"] = "0000000000000000";
  std::ofstream(copy + "/meta.json") << meta.dump();
  try {
    Surrogate::load(copy, *model_);
    FAIL() << "loaded a bundle for another mesh";
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("another mesh"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Surrogate::load(dir_ + "_missing", *model_), InvalidInput);
}

// A bundle was refused after any edit of twin.json (a description, a limit, a sensor's noise),
// and the message did not say what changed. Bundles are now keyed to the physics: edits that
// leave the solution alone - descriptions, parameter bounds and defaults, fewer outputs - keep
// the bundle, and its answers for the outputs left are the same; a changed section, a changed
// output and a new output are refused by name.
TEST_F(Trained, EditsThatLeaveThePhysicsKeepTheBundle) {
  auto edit = [](std::string s, const std::string& from, const std::string& to) {
    const auto at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) s.replace(at, from.size(), to);
    return s;
  };
  const std::string base = test::surrogate_plate_json();
  std::string j = edit(base, R"("name": "splate",)", R"("name": "splate", "description": "edited after training",)");
  j = edit(j, R"("h":  {"default": 500, "min": 100, "max": 2000})",
           R"("h":  {"default": 700, "min": 150, "max": 1800, "description": "film coefficient", "unit": "W/m2/K"})");
  j = edit(j, R"("T_mean":  {"quantity": "temperature", "reduce": "mean", "region": "domain"},)", "");
  FemModel edited(test::twin_from(j));
  ASSERT_NE(edited.twin().content_hash, model_->twin().content_hash);
  const auto loaded = Surrogate::load(dir_, edited);
  const std::vector<Params> p = {model_->twin().default_parameters()};
  const SurrogateBatch a = result_->surrogate->evaluate(p), b = loaded->evaluate(p);
  const auto& before = model_->twin().outputs;
  const auto& after = edited.twin().outputs;
  ASSERT_EQ(after.size() + 1, before.size());
  for (size_t k = 0; k < after.size(); ++k) {
    size_t o = 0;
    while (before[o].name != after[k].name) ++o;
    EXPECT_NEAR(b.output(0, k), a.output(0, o), 1e-9 * std::max(1.0, std::abs(a.output(0, o)))) << after[k].name;
    if (!a.output_estimate.empty()) {
      EXPECT_NEAR(b.output_estimates(0)[k], a.output_estimates(0)[o], 1e-9 * std::abs(a.output_estimates(0)[o])) << after[k].name;
    }
  }
  auto refused = [&](const std::string& json, const std::string& says) {
    FemModel m(test::twin_from(json));
    try {
      Surrogate::load(dir_, m);
      ADD_FAILURE() << "loaded, expected: " << says;
    } catch (const InvalidInput& e) {
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    }
  };
  refused(edit(base, R"("conductivity": 40)", R"("conductivity": 45)"), "its materials differs");
  refused(edit(edit(base, R"("conductivity": 40)", R"("conductivity": 45)"), R"("value": 2000)", R"("value": 2500)"),
          "its boundaries and materials differ");
  refused(edit(base, R"("at": [0.3, 0.45])", R"("at": [0.3, 0.4])"), "output 'T_probe' is defined differently");
  refused(edit(base, R"("T_mean":)", R"("T_extra": {"quantity": "temperature", "at": [0.1, 0.1]}, "T_mean":)"), "has no output 'T_extra'");
}

TEST_F(Trained, OutOfBoundsIsFlagged) {
  Params p = model_->twin().default_parameters();
  EXPECT_TRUE(result_->surrogate->in_bounds(p));
  p[1] = 2000.0 + 1e-3;
  EXPECT_FALSE(result_->surrogate->in_bounds(p));
  EXPECT_FALSE(result_->surrogate->evaluate({p}).in_bounds[0]);
}

TEST(Training, NarrowerRangeBecomesTheTrainingBounds) {
  FemModel model(test::twin_from(test::surrogate_plate_json(4, 6)));
  TrainOptions o = small_options();
  o.samples = 24;
  o.calibration = 8;
  o.test = 4;
  o.fit.max_epochs = 50;
  o.ranges["h"] = {200, 800};
  const TrainResult r = train_surrogate(model, o);
  EXPECT_DOUBLE_EQ(r.surrogate->parts().lower[1], 200);
  EXPECT_DOUBLE_EQ(r.surrogate->parts().upper[1], 800);
  Params p = model.twin().default_parameters();
  p[1] = 1000;
  EXPECT_FALSE(r.surrogate->in_bounds(p));
  o.ranges["h"] = {50, 800};
  EXPECT_THROW(train_surrogate(model, o), InvalidInput);
  o.ranges.clear();
  o.ranges["nope"] = {0, 1};
  EXPECT_THROW(train_surrogate(model, o), InvalidInput);
}

TEST(Training, HaltonPointsStratifyEachCoordinate) {
  // Base 2 and 3 van der Corput sequences, shifted mod 1: the first 2^k (3^k) points put one
  // point in each interval of width 2^-k (3^-k).
  const auto pts = halton(81, 2, 7);
  std::vector<int> bins2(64, 0), bins3(81, 0);
  for (size_t i = 0; i < 81; ++i) {
    ASSERT_GE(pts[i][0], 0.0);
    ASSERT_LT(pts[i][0], 1.0);
    if (i < 64) ++bins2[static_cast<size_t>(pts[i][0] * 64)];
    ++bins3[static_cast<size_t>(pts[i][1] * 81)];
  }
  for (int c : bins2) EXPECT_EQ(c, 1);
  for (int c : bins3) EXPECT_EQ(c, 1);
}

TEST(Training, RefusesTwinsItCannotTrain) {
  auto json = test::surrogate_plate_json(4, 6);
  FemModel fixed(test::twin_from(nlohmann::json::parse(json).dump()));
  TrainOptions o = small_options();
  o.samples = 4;
  EXPECT_THROW(train_surrogate(fixed, o), InvalidInput);  // --samples below 8
}

}  // namespace
}  // namespace doppel

namespace doppel {
namespace {

// Trains the transient heat surrogate (16 runs, 12 to calibrate, 12 held out) and checks its
// stated accuracy on the held-out FE runs: worst-time temperature relative L2 error <= 0.5 % at
// p95; every output within 1 %; the estimate bounds the error in >= 85 % with mean effectivity < 10.
TrainResult train_transient_checked(const FemModel& model) {
  TrainOptions o;
  o.samples = 16;
  o.calibration = 12;
  o.test = 12;
  TrainResult r = train_surrogate(model, o);
  const auto& v = r.validation;
  EXPECT_LT(v["fields"]["temperature"]["relative_l2_worst_time"]["p95"].get<double>(), 5e-3) << v.dump(2);
  for (const auto& [name, out] : v["outputs"].items()) EXPECT_LT(out["relative"]["p95"].get<double>(), 1e-2) << name;
  EXPECT_GE(v["error_estimate"]["bounds_true_error_fraction"].get<double>(), 0.85) << v["error_estimate"].dump(2);
  EXPECT_LT(v["error_estimate"]["effectivity"]["mean"].get<double>(), 10.0) << v["error_estimate"].dump(2);
  return r;
}

TEST(TrainingTransient, GalerkinModelMeetsTheStatedAccuracyAndRoundTrips) {
  FemModel model(test::twin_from(test::surrogate_transient_json()));
  const TrainResult r = train_transient_checked(model);
  const std::string dir = (fs::temp_directory_path() / "doppel_transient_bundle").string();
  fs::remove_all(dir);
  r.surrogate->save(dir, r.training, r.validation);
  const auto loaded = Surrogate::load(dir, model);
  auto sc = test::random_scenarios(model.twin(), {}, 3, 4);
  spec::Schedule s;
  s.parameter = model.twin().parameter_index("T_gas");
  s.points = {{0, 400}, {200, 800}};
  sc[0].schedules.push_back(s);
  const auto a = r.surrogate->evaluate_transient(sc), b = loaded->evaluate_transient(sc);
  for (size_t i = 0; i < sc.size(); ++i)
    for (size_t t = 0; t < a[i].outputs.size(); ++t)
      for (size_t k = 0; k < a[i].outputs[t].size(); ++k) EXPECT_NEAR(a[i].outputs[t][k], b[i].outputs[t][k], 1e-9 * std::max(1.0, std::abs(a[i].outputs[t][k])));
  // The schedule's values are checked against the training bounds too.
  sc[1].schedules.push_back(s);
  sc[1].schedules.back().points = {{0, 400}, {200, 950}};
  EXPECT_FALSE(loaded->in_bounds(sc[1]));
  // A steady bundle cannot answer a transient twin (and the reverse): refused by name.
  EXPECT_THROW(loaded->evaluate({sc[0].parameters}), InvalidInput);
}

// Every value depending on t as well (a wall temperature, h, the gas temperature and the source:
// tests/surrogate_twins.hpp): the snapshots' lifts are removed at their own times, so the POD
// space and the reduced model hold the same stated accuracy as with constant loads.
TEST(TrainingTransient, ValuesDependingOnTimeKeepTheStatedAccuracy) {
  FemModel model(test::twin_from(test::surrogate_transient_in_time_json()));
  ASSERT_EQ(model.twin().time_varying.size(), 4u);
  train_transient_checked(model);
}

}  // namespace
}  // namespace doppel

namespace doppel {
namespace {

// Per-output estimates of transient answers are calibrated on the held-out runs, not on their
// answers: a run's answers at its output times are correlated, so each run scores its largest
// ratio (|output error| / residual estimate) and the factor is the conformal quantile of those.
// Twin: examples/hotplate (transient thermo-elastic plate), default training (48 runs, 40 to
// calibrate), 240 held-out runs x 4 output times; reference: their FE runs. Each output's
// estimate bounds its true error in >= 95 % of the 960 answers (issue 15's target). Pooling the
// 4 answers of each run as independent samples gave 94.1 % for T_max with this seed.
TEST(TrainingTransient, PerOutputEstimatesBoundTheErrorsOfHeldOutRuns) {
  const FemModel model(spec::load_twin(std::string(DOPPEL_SOURCE_DIR) + "/examples/hotplate/twin.json"));
  TrainOptions o;
  o.test = 240;
  o.seed = 2;
  const TrainResult r = train_surrogate(model, o);
  EXPECT_EQ(r.validation["samples"]["calibration"].get<size_t>(), 40u);
  for (const auto& [name, out] : r.validation["outputs"].items())
    EXPECT_GE(out["estimate"]["bounds_true_error_fraction"].get<double>(), 0.95) << name << " " << out["estimate"].dump();
  EXPECT_GE(r.validation["error_estimate"]["bounds_true_error_fraction"].get<double>(), 0.95);
}

// Transient thermo-elasticity: the Galerkin model of the temperature, and the quasi-static
// displacement and stress of each reduced temperature (an FE solve of the mechanics). Twin:
// examples/hotplate (P1, 20 x 10 cells, plane stress, backward Euler). Reference: transient FE
// runs of held-out scenarios, one with a T_base schedule. Tolerances (issue 15's target): T_max
// and vm_max p95 error <= 1 % of their rise above the scenario's reference (T: the initial 20
// degC; stress: 0), every scenario within 3 %; the bundle round-trips without displacement files.
TEST(TrainingTransient, ThermoElasticOutputsFollowTheReducedTemperature) {
  const FemModel model(spec::load_twin(std::string(DOPPEL_SOURCE_DIR) + "/examples/hotplate/twin.json"));
  const auto& t = model.twin();
  TrainOptions o;
  o.samples = 16;
  o.calibration = 12;
  o.test = 8;
  const TrainResult r = train_surrogate(model, o);
  EXPECT_FALSE(r.surrogate->parts().u.has_value());
  EXPECT_GE(r.validation["error_estimate"]["bounds_true_error_fraction"].get<double>(), 0.85) << r.validation["error_estimate"].dump(2);
  auto sc = test::random_scenarios(t, {}, 12, 21);
  spec::Schedule ramp;
  ramp.parameter = t.parameter_index("T_base");
  ramp.points = {{0, 15}, {300, 38}};
  sc[0].schedules.push_back(ramp);
  const auto got = r.surrogate->evaluate_transient(sc, /*fields=*/true);
  const BatchResult fe = solve_batch(model, sc);
  size_t T_max = 0, vm_max = 0;
  for (size_t k = 0; k < t.outputs.size(); ++k) {
    if (t.outputs[k].name == "T_max") T_max = k;
    if (t.outputs[k].name == "vm_max") vm_max = k;
  }
  std::vector<double> eT, evm;
  size_t pairs = 0, bounded_T = 0, bounded_vm = 0;  // per-output estimates against the true errors
  for (size_t s = 0; s < sc.size(); ++s) {
    ASSERT_EQ(got[s].output_estimates.size(), t.analysis.output_times.size());
    for (size_t k = 0; k < got[s].outputs.size(); ++k) {
      ++pairs;
      bounded_T += got[s].output_estimates[k][T_max] >= std::abs(got[s].outputs[k][T_max] - fe.scenarios[s].outputs[k][T_max]);
      bounded_vm += got[s].output_estimates[k][vm_max] >= std::abs(got[s].outputs[k][vm_max] - fe.scenarios[s].outputs[k][vm_max]);
    }
    ASSERT_EQ(got[s].outputs.size(), t.analysis.output_times.size());
    ASSERT_EQ(got[s].u.size(), t.analysis.output_times.size());
    EXPECT_EQ(got[s].u[0].size(), static_cast<Eigen::Index>(2 * model.mesh().num_nodes()));
    for (size_t k = 0; k < got[s].outputs.size(); ++k) {
      const auto& ref = fe.scenarios[s].outputs[k];
      eT.push_back(std::abs(got[s].outputs[k][T_max] - ref[T_max]) / std::abs(ref[T_max] - t.analysis.initial_temperature));
      evm.push_back(std::abs(got[s].outputs[k][vm_max] - ref[vm_max]) / std::abs(ref[vm_max]));
    }
  }
  auto p95 = [](std::vector<double> e) {
    std::sort(e.begin(), e.end());
    return e[static_cast<size_t>(std::ceil(0.95 * static_cast<double>(e.size()))) - 1];
  };
  std::printf("T_max error / rise: p95 %.3g, max %.3g; vm_max relative error: p95 %.3g, max %.3g\n", p95(eT),
              *std::max_element(eT.begin(), eT.end()), p95(evm), *std::max_element(evm.begin(), evm.end()));
  EXPECT_LE(p95(eT), 0.01);
  EXPECT_LE(p95(evm), 0.01);
  EXPECT_LE(*std::max_element(eT.begin(), eT.end()), 0.03);
  EXPECT_LE(*std::max_element(evm.begin(), evm.end()), 0.03);
  // Per-output estimates (calibrated at 97.5 % on only 12 calibration runs, one score per run)
  // bound the T_max and vm_max errors of these 12 x 4 answers in at least 80 % of them
  // (measured 48/48 and 43/48).
  std::printf("per-output estimates bound T_max in %zu/%zu, vm_max in %zu/%zu\n", bounded_T, pairs, bounded_vm, pairs);
  EXPECT_GE(static_cast<double>(bounded_T), 0.8 * static_cast<double>(pairs));
  EXPECT_GE(static_cast<double>(bounded_vm), 0.8 * static_cast<double>(pairs));
  EXPECT_GE(r.validation["summary"]["output_estimate_bounds_fraction_min"].get<double>(), 0.8);
  // The bundle holds the temperature space only and answers the same after a round trip.
  const std::string dir = (fs::temp_directory_path() / "doppel_hotplate_bundle").string();
  fs::remove_all(dir);
  r.surrogate->save(dir, r.training, r.validation);
  EXPECT_FALSE(fs::exists(fs::path(dir) / "displacement_mean.npy"));
  const auto loaded = Surrogate::load(dir, model);
  const auto again = loaded->evaluate_transient({sc[1]});
  for (size_t k = 0; k < again[0].outputs.size(); ++k)
    for (size_t j = 0; j < again[0].outputs[k].size(); ++j)
      EXPECT_NEAR(again[0].outputs[k][j], got[1].outputs[k][j], 1e-9 * std::abs(got[1].outputs[k][j]));
}

// The steady second tier: the Galerkin solve of the twin's own affine operator in the POD
// space. Twin: the live heat plate (6 x 8 P1 cells, h from 100 to 2000, q and T0 loads), a
// deliberately small network. Reference: FEM of 24 random scenarios. The reduced solve's T_max
// is within 1e-4 of the rise above the coldest boundary temperature for every scenario (the
// POD space holds the solutions to ~1e-8 energy), and answer_scenarios(auto) with a tolerance
// below every network estimate answers from the reduced tier wherever its own estimate allows,
// saying so (tier "reduced"), with the network's estimate kept as surrogate_estimate.
// The live plate's T_max rise above its coldest prescribed temperature: T0 or the 20 degC air.
double live_plate_rise(const FemModel& model, const Params& p, double T_max) {
  const double T0 = p[static_cast<size_t>(model.twin().parameter_index("T0"))];
  return std::max(std::abs(T_max - std::min(T0, 20.0)), 1e-9);
}

TEST(Training, SecondTierGalerkinSolveAnswersWhereTheNetworkIsTooCoarse) {
  const FemModel model(test::twin_from(test::live_plate_json()));
  TrainOptions o = small_options();
  o.samples = 48;
  o.calibration = 16;
  o.test = 8;
  o.network.hidden = {8};
  o.network.members = 2;
  o.fit.max_epochs = 300;
  const TrainResult r = train_surrogate(model, o);
  ASSERT_TRUE(r.surrogate->has_reduced_tier());
  const auto sc = test::random_scenarios(model.twin(), {}, 24, 8);
  std::vector<Params> p;
  for (const auto& s : sc) p.push_back(s.parameters);
  const BatchResult fe = solve_batch(model, sc);
  const auto red = r.surrogate->evaluate_reduced(p);
  const SurrogateBatch net = r.surrogate->evaluate(p);
  double worst_net = 0, worst_red = 0, min_net_estimate = 1e300;
  for (size_t s = 0; s < sc.size(); ++s) {
    const double rise = live_plate_rise(model, p[s], fe.scenarios[s].outputs[0][0]);
    worst_red = std::max(worst_red, std::abs(red[s].outputs[0] - fe.scenarios[s].outputs[0][0]) / rise);
    worst_net = std::max(worst_net, std::abs(net.output(s, 0) - fe.scenarios[s].outputs[0][0]) / rise);
    min_net_estimate = std::min(min_net_estimate, net.estimate[s]);
    EXPECT_GE(red[s].estimate, 0.0);
  }
  std::printf("T_max error / rise: network worst %.3g, reduced worst %.3g\n", worst_net, worst_red);
  EXPECT_LE(worst_red, 1e-4);
  // The tier's estimates have factors of their own, calibrated on its answers to the
  // calibration solves (its errors are the POD space's, not the network's), reported on the
  // test solves and kept by the bundle; its per-output estimates bound its T_max errors on
  // these 24 scenarios in at least 80 % of them (T_max read at every node, not at hot spots).
  EXPECT_GT(r.surrogate->parts().reduced_calibration, 0.0);
  ASSERT_EQ(r.surrogate->parts().reduced_output_calibration.size(), model.twin().outputs.size());
  ASSERT_TRUE(r.validation.contains("reduced_tier")) << r.validation.dump(2);
  EXPECT_GE(r.validation["reduced_tier"]["error_estimate"]["bounds_true_error_fraction"].get<double>(), 0.8)
      << r.validation["reduced_tier"].dump(2);
  size_t bounded = 0;
  for (size_t s = 0; s < sc.size(); ++s)
    bounded += red[s].output_estimates[0] >= std::abs(red[s].outputs[0] - fe.scenarios[s].outputs[0][0]);
  std::printf("reduced tier: per-output estimate bounds T_max in %zu/%zu\n", bounded, sc.size());
  EXPECT_GE(static_cast<double>(bounded), 0.8 * static_cast<double>(sc.size()));
  {
    const std::string dir = (fs::temp_directory_path() / "doppel_reduced_tier_bundle").string();
    fs::remove_all(dir);
    r.surrogate->save(dir, r.training, r.validation);
    const auto loaded = Surrogate::load(dir, model);
    EXPECT_EQ(loaded->parts().reduced_calibration, r.surrogate->parts().reduced_calibration);
    const auto again = loaded->evaluate_reduced({p[0]});
    EXPECT_DOUBLE_EQ(again[0].estimate, red[0].estimate);
    EXPECT_EQ(again[0].output_estimates, red[0].output_estimates);
  }
  AnswerOptions ao;
  ao.fidelity = Fidelity::automatic;
  ao.tolerance = 0.999 * min_net_estimate;
  const AnswerSet set = answer_scenarios(model, r.surrogate.get(), sc, ao);
  size_t reduced = 0;
  for (size_t s = 0; s < sc.size(); ++s) {
    const ScenarioAnswer& a = set.answers[s];
    if (red[s].estimate <= ao.tolerance) {
      ++reduced;
      EXPECT_EQ(a.tier, "reduced") << s;
      EXPECT_TRUE(a.surrogate);
      EXPECT_EQ(a.outputs[0], red[s].outputs);
      ASSERT_TRUE(a.surrogate_estimate.has_value());
      EXPECT_EQ(*a.surrogate_estimate, net.estimate[s]);
    } else {
      EXPECT_EQ(a.tier, "fem") << s;
    }
  }
  EXPECT_GT(reduced, sc.size() / 2) << "the reduced tier should answer most of them";
  EXPECT_EQ(set.surrogate_answers, reduced);
  // fidelity surrogate never runs FEM in bounds: with the same tolerance every scenario gets the
  // tier with the smaller estimate (here always the reduced one), not the network's coarse answer.
  ao.fidelity = Fidelity::surrogate;
  const AnswerSet only = answer_scenarios(model, r.surrogate.get(), sc, ao);
  EXPECT_EQ(only.fem_answers, 0u);
  for (size_t s = 0; s < sc.size(); ++s) {
    const ScenarioAnswer& a = only.answers[s];
    EXPECT_TRUE(a.surrogate) << s;
    EXPECT_EQ(a.tier, red[s].estimate < net.estimate[s] ? "reduced" : "network") << s;
    if (a.tier == "reduced") {
      EXPECT_EQ(a.outputs[0], red[s].outputs);
    }
  }
  // A tolerance above every network estimate leaves every answer to the network.
  ao.tolerance = 0.5;
  for (const ScenarioAnswer& a : answer_scenarios(model, r.surrogate.get(), sc, ao).answers) EXPECT_EQ(a.tier, "network");
  // A tolerance between the network's estimates mixes the tiers; one_fidelity answers the whole
  // batch from the reduced tier instead (and still never from FEM).
  std::vector<double> sorted = net.estimate;
  std::sort(sorted.begin(), sorted.end());
  ao.tolerance = sorted[sorted.size() / 2];
  const AnswerSet mixed = answer_scenarios(model, r.surrogate.get(), sc, ao);
  EXPECT_GT(std::count_if(mixed.answers.begin(), mixed.answers.end(), [](const ScenarioAnswer& a) { return a.tier == "network"; }), 0);
  EXPECT_GT(std::count_if(mixed.answers.begin(), mixed.answers.end(), [](const ScenarioAnswer& a) { return a.tier == "reduced"; }), 0);
  ao.one_fidelity = true;
  const AnswerSet one = answer_scenarios(model, r.surrogate.get(), sc, ao);
  EXPECT_EQ(one.fem_answers, 0u);
  for (size_t s = 0; s < sc.size(); ++s) {
    EXPECT_EQ(one.answers[s].tier, "reduced") << s;
    EXPECT_EQ(one.answers[s].outputs[0], red[s].outputs) << s;
  }
  // A scenario outside the training bounds is an FEM answer under surrogate; the others are
  // still unified into the reduced tier.
  auto with_outside = sc;
  with_outside.push_back(sc[0]);
  const size_t h = static_cast<size_t>(model.twin().parameter_index("h"));
  with_outside.back().parameters[h] = 1.5 * model.twin().parameters[h].max;
  const AnswerSet beyond = answer_scenarios(model, r.surrogate.get(), with_outside, ao);
  EXPECT_EQ(beyond.answers.back().tier, "fem");
  EXPECT_EQ(beyond.answers.back().fallback, "outside_training_bounds");
  for (size_t s = 0; s < sc.size(); ++s) EXPECT_EQ(beyond.answers[s].tier, "reduced") << s;
}

// A twin whose loads vary in space (a wall temperature, a convection coefficient from a CSV
// table, a gas temperature and a source that are expressions) trains like any other: the
// reduced tier, the Galerkin solve of the twin's own affine operator, stays within 1e-4 of
// the rise on held-out FE solves.
TEST(Training, TwinsWithLoadsVaryingInSpaceTrainAndAnswer) {
  const fs::path dir = fs::temp_directory_path() / "doppel_varying_training";
  fs::create_directories(dir);
  {
    std::ofstream csv(dir / "htc.csv");
    csv << "x,y,value  # a film coefficient profile along the cooled edge\n";
    for (int j = 0; j <= 12; ++j) csv << "0.4," << 0.05 * j << "," << 1.5 + std::sin(5.0 * j / 12) << "\n";
  }
  std::string json = test::live_plate_json();
  test::replace_once(json, R"("value": "$T0")", R"~("value": "(1 + 0.5 * x) * $T0")~");
  test::replace_once(json, R"("h": "$h")", R"~("h": {"file": "htc.csv", "scale": "$h"})~");
  test::replace_once(json, R"("ambient": 20)", R"~("ambient": "20 + 30 * y")~");
  test::replace_once(json, R"("heat": "$q")", R"~("heat": "(1 + 4 * y) * $q")~");
  const FemModel model(test::twin_from(json, dir.string()));
  TrainOptions o = small_options();
  o.samples = 48;
  o.calibration = 16;
  o.test = 8;
  o.network.hidden = {16};
  o.network.members = 2;
  o.fit.max_epochs = 1500;
  const TrainResult r = train_surrogate(model, o);
  ASSERT_TRUE(r.surrogate->has_reduced_tier());
  const auto sc = test::random_scenarios(model.twin(), {}, 16, 21);
  std::vector<Params> p;
  for (const auto& s : sc) p.push_back(s.parameters);
  const BatchResult fe = solve_batch(model, sc);
  const auto red = r.surrogate->evaluate_reduced(p);
  double worst = 0;
  for (size_t s = 0; s < sc.size(); ++s) {
    const double rise = live_plate_rise(model, p[s], fe.scenarios[s].outputs[0][0]);
    worst = std::max(worst, std::abs(red[s].outputs[0] - fe.scenarios[s].outputs[0][0]) / rise);
  }
  std::printf("space-varying twin: T_max error / rise of the reduced tier, worst %.3g\n", worst);
  EXPECT_LE(worst, 1e-4);
}

// Adaptive training: rounds add samples where a pool's calibrated estimate is largest. Twin:
// the live heat plate, a deliberately small start (16 samples) and network, target 0.2 %. The
// record names every round; samples grow; the kept round has no more pool points above the
// target than the first, and earlier rounds' FE solves are not repeated (the log counts the
// snapshots solved per round: the later rounds solve only the new samples plus nothing of the
// calibration and test sets).
TEST(Training, AdaptiveRoundsAddSamplesWhereTheEstimateIsLargest) {
  const FemModel model(test::twin_from(test::live_plate_json()));
  TrainOptions o = small_options();
  o.samples = 16;
  o.calibration = 16;
  o.test = 8;
  o.network.hidden = {12};
  o.network.members = 2;
  o.fit.max_epochs = 400;
  o.adaptive_target = 2e-3;
  o.max_samples = 48;
  o.adaptive_rounds = 4;
  std::vector<std::string> solved;
  o.log = [&](const std::string& line) {
    if (line.rfind("solved ", 0) == 0) solved.push_back(line);
  };
  const TrainResult r = train_surrogate(model, o);
  const auto& a = r.training["adaptive"];
  ASSERT_TRUE(a.is_object()) << r.training.dump(2);
  const auto& rounds = a["rounds"];
  ASSERT_GE(rounds.size(), 2u) << a.dump(2);
  EXPECT_EQ(rounds[0]["training_samples"], 16);
  EXPECT_GT(rounds[1]["training_samples"].get<int>(), 16);
  EXPECT_LE(rounds.back()["training_samples"].get<int>(), 48);
  const int kept = a["kept_round"].get<int>();
  EXPECT_LE(rounds[static_cast<size_t>(kept - 1)]["pool_above_target"].get<size_t>(), rounds[0]["pool_above_target"].get<size_t>());
  EXPECT_TRUE(a.contains("stopped"));
  // Round 1 solves 16 + 16 + 8 snapshots; round 2 only its new training samples.
  ASSERT_FALSE(solved.empty());
  EXPECT_NE(solved.front().find("/40 "), std::string::npos) << solved.front();
  bool later_small = false;
  for (const auto& line : solved) later_small = later_small || line.find("/40 ") == std::string::npos;
  EXPECT_TRUE(later_small);
  EXPECT_THROW(
      [&] {
        TrainOptions bad = o;
        bad.max_samples = 8;
        train_surrogate(model, bad);
      }(),
      InvalidInput);
}

TEST(Training, MechanicsOnlyTwinWithoutOutputsEstimatesTheDisplacement) {
  // A cantilever loaded by a parametric end traction: displacement linear in (Fx, Fy), so the
  // POD space is exact and the network only has to learn a linear map. (Loads bounded away
  // from zero: a relative error of a vanishing field says nothing.)
  const std::string json = R"({
    "name": "sbeam",
    "mesh": {"generate": "rectangle", "size": [1.0, 0.2], "cells": [10, 4], "order": 2},
    "physics": {"mechanical": {"formulation": "plane_stress", "thickness": 0.01}},
    "materials": {"steel": {"youngs_modulus": 2e11, "poisson_ratio": 0.3}},
    "regions": {"domain": "steel"},
    "boundaries": {"xmin": {"mechanical": {"type": "fixed"}},
                   "xmax": {"mechanical": {"type": "traction", "value": ["$Fx", "$Fy"]}}},
    "parameters": {"Fx": {"default": 2e5, "min": 0, "max": 5e5},
                   "Fy": {"default": -5e5, "min": -1e6, "max": -2e5}}
  })";
  FemModel model(test::twin_from(json));
  TrainOptions o;
  o.samples = 32;
  o.calibration = 12;
  o.test = 12;
  o.network.hidden = {32};
  o.network.members = 2;
  o.fit.max_epochs = 3000;
  const TrainResult r = train_surrogate(model, o);
  const auto& v = r.validation;
  EXPECT_EQ(v["error_estimate"]["field"], "displacement");
  // A linear map learned by a small network: displacement within 2 % (L2) at p95.
  EXPECT_LT(v["fields"]["displacement"]["relative_l2"]["p95"].get<double>(), 2e-2) << v.dump(2);
  EXPECT_TRUE(v["outputs"].empty());
  const SurrogateBatch b = r.surrogate->evaluate({model.twin().default_parameters()}, true);
  EXPECT_EQ(b.outputs_per_scenario, 0u);
  EXPECT_EQ(b.u.size(), model.mesh().num_nodes() * 2);
  EXPECT_GT(b.estimate[0], 0.0);
}

}  // namespace
}  // namespace doppel

namespace doppel {
namespace {

TEST(Training, ParameterValuedMaterialsTakeOutputsFromReconstructedFields) {
  // Conductivity is a parameter and an output is a heat flux (q = -k grad T): not an affine map
  // of the reduced coordinates, so outputs come from reconstructed fields.
  const std::string json = R"({
    "name": "kplate",
    "mesh": {"generate": "rectangle", "size": [0.2, 0.1], "cells": [8, 4], "order": 2},
    "physics": {"thermal": {}},
    "materials": {"m": {"conductivity": "$k"}},
    "regions": {"domain": "m"},
    "boundaries": {"xmin": {"thermal": {"type": "temperature", "value": 20}},
                   "xmax": {"thermal": {"type": "flux", "value": "$q"}}},
    "parameters": {"k": {"default": 50, "min": 20, "max": 100}, "q": {"default": 1e4, "min": 2e3, "max": 5e4}},
    "outputs": {"T_max": {"quantity": "temperature", "reduce": "max", "region": "domain"},
                "qx": {"quantity": "heat_flux_x", "at": [0.1, 0.05]}}
  })";
  FemModel model(test::twin_from(json));
  TrainOptions o;
  o.samples = 48;
  o.calibration = 12;
  o.test = 12;
  o.network.hidden = {32, 32};
  o.network.members = 2;
  o.fit.max_epochs = 3000;
  const TrainResult r = train_surrogate(model, o);
  ASSERT_FALSE(r.surrogate->linear_outputs());
  // Closed form (1D conduction): T = 20 + q x / k, q_x = -q; the answers are within 5 %.
  Params p = {40, 2e4};
  const SurrogateBatch b = r.surrogate->evaluate({p}, true);
  EXPECT_NEAR(b.output(0, 0), 20 + 2e4 * 0.2 / 40, 0.05 * (2e4 * 0.2 / 40));
  EXPECT_NEAR(b.output(0, 1), -2e4, 0.05 * 2e4);  // heat enters at xmax and flows towards -x
  EXPECT_GT(b.spread[1], 0.0);
  // And the outputs are the FE evaluator's on the returned field.
  const OutputEvaluator ev = OutputEvaluator::for_outputs(model);
  const std::vector<double> want = ev.evaluate(p, b.T.data(), nullptr);
  EXPECT_NEAR(b.output(0, 0), want[0], 1e-9 * std::abs(want[0]));
  EXPECT_NEAR(b.output(0, 1), want[1], 1e-9 * std::abs(want[1]));
}

}  // namespace
}  // namespace doppel
