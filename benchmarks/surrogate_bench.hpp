// `doppel bench surrogate`: surrogate scenarios per second for growing batches (outputs and
// error estimate only, and with full fields), against finite-element solves of the same
// scenarios in the same run.
#pragma once

#include <string>
#include <vector>

namespace doppel::bench {

struct SurrogateBenchArgs {
  std::string twin = "examples/blade/twin.json";
  std::string bundle;
  std::vector<int> batches{1, 10, 100, 1000, 10000, 100000};
  int fem_max = 256;             // FE solves per batch size at most (throughput from these)
  int fields_max = 10000;        // largest batch also timed with full fields
  std::string backend = "cpu";   // FE solves
  std::string device = "auto";   // surrogate inference
  int repeats = 3;               // best of
  std::string output;
  int threads = 0;
};

int run_surrogate_bench(const SurrogateBenchArgs& args);

}  // namespace doppel::bench
