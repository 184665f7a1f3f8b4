#include "benchmarks/surrogate_bench.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "apps/solve_command.hpp"
#include "apps/train_command.hpp"
#include "benchmarks/bench_util.hpp"
#include "kernels/backend.hpp"
#include "kernels/host/parallel.hpp"
#include "spec/errors.hpp"
#include "spec/json_reader.hpp"
#include "surrogate/mlp.hpp"
#include "surrogate/surrogate.hpp"

namespace doppel::bench {

int run_surrogate_bench(const SurrogateBenchArgs& args) {
  if (args.threads > 0) set_host_threads(args.threads);
  DOPPEL_VERIFY(!args.bundle.empty(), "--bundle", "is required (train one with doppel train)");
  for (int b : args.batches) DOPPEL_VERIFY(b >= 1 && b <= 10000000, "--batches", "each batch size must lie in [1, 10^7]");
  DOPPEL_VERIFY(args.fem_max >= 1, "--fem-max", "must be at least 1");
  DOPPEL_VERIFY(args.repeats >= 1, "--repeats", "must be at least 1");
  const Backend backend = select_backend(args.backend);
  FemModel model(spec::load_twin(args.twin));
  const std::string device = app::inference_device(args.device, backend == Backend::cuda);
  const auto sur = Surrogate::load(args.bundle, model, device);
  const auto& twin = model.twin();
  BatchOptions fe_options = app::batch_options_for(backend, "auto", 1e-10);
  fe_options.keep_first_fields = false;

  nlohmann::ordered_json doc;
  doc["benchmark"] = "surrogate";
  doc["twin"] = twin.name;
  doc["machine"] = {{"cpu", cpu_model()}, {"hardware_threads", std::thread::hardware_concurrency()},
                    {"threads_used", host_threads()}};
  if (device == "cuda" || backend == Backend::cuda)
    doc["machine"]["gpu"] = {{"name", cuda::device_name(0)}, {"driver", cuda::driver_version()}};
  doc["surrogate_device"] = device;
  doc["fem_backend"] = backend_name(backend);
  doc["libtorch"] = torch_version();
  doc["ranks"] = {{"temperature", sur->rank_T()}, {"displacement", sur->rank_u()}};
  doc["outputs_from"] = sur->linear_outputs() ? "output map" : "reconstructed fields";
  const char* commit = std::getenv("DOPPEL_COMMIT");
  doc["commit"] = commit ? commit : "unknown";
  doc["date"] = utc_now();
  doc["method"] = "best of --repeats per batch; FE throughput from min(batch, --fem-max) of the same scenarios "
                  "solved with doppel's batched FE path; ratio = surrogate / FE scenarios per second";
  doc["results"] = nlohmann::ordered_json::array();
  doc["complete"] = false;
  write_results(args.output, doc);

  std::vector<std::string> names;
  for (const auto& p : twin.parameters) names.push_back(p.name);
  unsigned seed = 7;
  auto draw = [&](size_t n) {
    std::vector<Params> ps;
    for (auto& s : spec::random_scenarios(twin, names, static_cast<int>(n), seed++)) ps.push_back(std::move(s.parameters));
    return ps;
  };
  sur->evaluate(draw(16));  // warm up (allocations, device context)
  std::fprintf(stderr, "%8s %16s %16s %12s %10s %10s\n", "batch", "outputs/s", "fields/s", "FE/s", "ratio", "ratio(f)");
  for (int batch : args.batches) {
    try {
      const std::vector<Params> ps = draw(static_cast<size_t>(batch));
      auto time_eval = [&](bool fields) {
        double best = 1e300;
        for (int r = 0; r < args.repeats; ++r) {
          const auto t = Clock::now();
          const SurrogateBatch b = sur->evaluate(ps, fields);
          best = std::min(best, seconds_since(t));
          if (b.S != ps.size()) throw std::logic_error("surrogate returned a short batch");
        }
        return best;
      };
      const double t_out = time_eval(false);
      const bool with_fields = batch <= args.fields_max;
      const double t_fields = with_fields ? time_eval(true) : 0.0;
      const size_t nf = std::min<size_t>(ps.size(), static_cast<size_t>(args.fem_max));
      std::vector<spec::Scenario> scen(nf);
      for (size_t s = 0; s < nf; ++s) scen[s].parameters = ps[s];
      const auto t = Clock::now();
      solve_batch(model, scen, fe_options);
      const double t_fe = seconds_since(t);
      const double fe_rate = static_cast<double>(nf) / t_fe;
      const double out_rate = batch / t_out, field_rate = with_fields ? batch / t_fields : 0.0;
      nlohmann::ordered_json row = {{"batch", batch},
                                    {"surrogate_outputs_seconds", t_out},
                                    {"surrogate_outputs_per_second", out_rate},
                                    {"fem_scenarios", nf},
                                    {"fem_seconds", t_fe},
                                    {"fem_per_second", fe_rate},
                                    {"ratio_outputs_vs_fem", out_rate / fe_rate}};
      if (with_fields) {
        row["surrogate_fields_seconds"] = t_fields;
        row["surrogate_fields_per_second"] = field_rate;
        row["ratio_fields_vs_fem"] = field_rate / fe_rate;
      }
      doc["results"].push_back(row);
      std::fprintf(stderr, "%8d %16.1f %16.1f %12.1f %10.1f %10.1f\n", batch, out_rate, field_rate, fe_rate,
                   out_rate / fe_rate, with_fields ? field_rate / fe_rate : 0.0);
    } catch (const std::exception& e) {
      // A device or solver failure at this batch (memory, most likely) ends the sweep: larger
      // batches would fail the same way. The rows measured so far are kept.
      doc["results"].push_back({{"batch", batch}, {"error", e.what()}});
      std::fprintf(stderr, "%8d error: %s\n", batch, e.what());
      write_results(args.output, doc);
      break;
    }
    write_results(args.output, doc);
  }
  doc["complete"] = true;
  if (args.output.empty()) std::cout << doc.dump(2) << "\n";
  else write_results(args.output, doc);
  return 0;
}

}  // namespace doppel::bench
