#include "apps/train_command.hpp"

#include <chrono>
#include <cmath>
#include <iostream>

#include "apps/solve_command.hpp"
#include "kernels/backend.hpp"
#include "kernels/host/parallel.hpp"
#include "spec/errors.hpp"
#include "surrogate/engine.hpp"
#include "training_export/trainer.hpp"

namespace doppel::app {

std::string inference_device(const std::string& choice, bool cuda_backend) {
  if (choice == "auto") return cuda_backend && InferenceEngine::cuda_available() ? "cuda" : "cpu";
  DOPPEL_VERIFY(choice == "cpu" || choice == "cuda", "--device", "must be auto, cpu or cuda (got \"" + choice + "\")");
  return choice;
}

int run_train(const TrainArgs& args) {
  if (args.threads > 0) set_host_threads(args.threads);
  DOPPEL_VERIFY(!args.out.empty(), "--out", "is required");
  DOPPEL_VERIFY(args.epochs >= 1, "--epochs", "must be at least 1");
  DOPPEL_VERIFY(args.members >= 1 && args.members <= 64, "--members", "must lie in [1, 64]");
  DOPPEL_VERIFY(!args.hidden.empty(), "--hidden", "needs at least one layer width");
  for (int w : args.hidden) DOPPEL_VERIFY(w >= 1 && w <= 4096, "--hidden", "layer widths must lie in [1, 4096]");
  DOPPEL_VERIFY(args.max_rank >= 1, "--max-rank", "must be at least 1");
  DOPPEL_VERIFY(args.samples == 0 || args.samples >= 8, "--samples", "must be at least 8");
  DOPPEL_VERIFY(args.calibration == 0 || args.calibration >= 8, "--calibration", "must be at least 8");
  DOPPEL_VERIFY(args.test >= 0, "--test", "must not be negative");
  const Backend backend = select_backend(args.backend);
  TrainOptions opt;
  opt.samples = args.samples;
  opt.calibration = args.calibration;
  opt.test = args.test;
  opt.seed = args.seed;
  opt.batch = batch_options_for(backend, args.solver, 1e-12);
  opt.device = inference_device(args.device, backend == Backend::cuda);
  opt.network.hidden = args.hidden;
  opt.network.members = args.members;
  opt.fit.max_epochs = args.epochs;
  opt.pod.max_rank = args.max_rank;
  DOPPEL_VERIFY(args.adaptive >= 0 && std::isfinite(args.adaptive), "--adaptive", "must be a positive relative error estimate");
  DOPPEL_VERIFY(args.max_samples >= 0, "--max-samples", "must not be negative");
  DOPPEL_VERIFY(args.max_samples == 0 || args.adaptive > 0, "--max-samples", "is the budget of --adaptive; give --adaptive too");
  opt.adaptive_target = args.adaptive;
  opt.max_samples = args.max_samples;
  for (const std::string& r : args.ranges) {
    const size_t eq = r.find('='), colon = r.find(':', eq == std::string::npos ? 0 : eq);
    DOPPEL_VERIFY(eq != std::string::npos && colon != std::string::npos, "--range", "expected NAME=MIN:MAX, got \"" + r + "\"");
    try {
      size_t used = 0;
      const std::string a = r.substr(eq + 1, colon - eq - 1), b = r.substr(colon + 1);
      const double lo = std::stod(a, &used);
      DOPPEL_VERIFY(used == a.size(), "--range", "bad number \"" + a + "\"");
      const double hi = std::stod(b, &used);
      DOPPEL_VERIFY(used == b.size(), "--range", "bad number \"" + b + "\"");
      opt.ranges[r.substr(0, eq)] = {lo, hi};
    } catch (const std::logic_error&) {
      throw InvalidInput("--range", "expected NAME=MIN:MAX with numbers, got \"" + r + "\"");
    }
  }
  if (!args.quiet) opt.log = [](const std::string& line) { std::cerr << "doppel train: " << line << "\n"; };
  const auto t0 = std::chrono::steady_clock::now();
  FemModel model(spec::load_twin(args.twin));
  for (const auto& w : model.warnings()) std::cerr << "doppel: warning: " << w << "\n";
  if (!args.quiet)
    std::cerr << "doppel train: " << model.twin().name << ": " << model.mesh().num_nodes() << " nodes, "
              << (model.transient() ? "transient runs" : "steady solves") << " on " << backend_name(backend) << ", network on " << opt.device << "\n";
  TrainResult r = train_surrogate(model, opt);
  r.surrogate->save(args.out, r.training, r.validation);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto& s = r.validation["summary"];
  std::cerr << "doppel train: wrote " << args.out << " in " << seconds << " s\n"
            << "  held-out " << s["scenarios"] << " scenarios: field relative L2 error p95 "
            << s["field_relative_l2_p95"].get<double>() << ", worst output relative error p95 "
            << s["worst_output_relative_p95"].get<double>() << "\n"
            << "  error estimate >= true error in " << 100.0 * s["estimate_bounds_fraction"].get<double>()
            << " % of them, mean effectivity " << s["estimate_effectivity_mean"].get<double>() << "\n";
  if (s.contains("output_estimate_bounds_fraction_min"))
    std::cerr << "  per-output error estimates >= their outputs' errors in at least "
              << 100.0 * s["output_estimate_bounds_fraction_min"].get<double>() << " % of them (worst output)\n";
  return 0;
}

}  // namespace doppel::app
