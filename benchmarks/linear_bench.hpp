// The linear-solve section of `doppel bench fem`: scenario-solves per second of the batched
// solvers on one executor, operator and right-hand sides resident where they are solved,
// against the host backend's own solvers on the same systems, with the bytes each CG
// iteration must move and the fraction of the measured copy bandwidth achieved.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/executor.hpp"
#include "kernels/fem/fem_model.hpp"

namespace doppel::bench {

struct LinearBenchOptions {
  std::vector<int> batches;
  double rtol = 1e-8;
  double max_seconds = 120;     // skip a case predicted to take longer
  std::string export_dir;       // write the systems for benchmarks/peers (numpy .npy)
  bool host_baseline = true;
  size_t memory_limit = 0;      // bytes of working blocks per solve (0: the executor's budget)
  // Called after every row (the results so far are in the document): `doppel bench fem` writes
  // them out, so a run cut short keeps what it measured.
  std::function<void()> checkpoint;
};

// Device-to-device copy bandwidth of the executor in bytes per second (read + write counted).
double copy_bandwidth(const std::shared_ptr<const Executor>& exec, size_t bytes, int repeats);

// Runs every regime and batch size on `model`'s thermal operator (mechanical when there is no
// thermal physics); appends rows to doc["linear"] and prints a table.
void run_linear_bench(const std::string& name, const FemModel& model,
                      const std::vector<std::string>& operator_parameters,
                      const std::shared_ptr<const Executor>& exec, double bandwidth,
                      const LinearBenchOptions& options, nlohmann::ordered_json& doc);

}  // namespace doppel::bench
