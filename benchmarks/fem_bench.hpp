// `doppel bench fem`: assembly, factorization and scenario-solve throughput of the host
// backend on the example twin and on a 3D P1 box, for several batch sizes, in both the
// shared-operator and the operator-varying regimes. Prints a table and writes JSON.
#pragma once

#include <string>
#include <vector>

namespace doppel::bench {

struct FemBenchArgs {
  std::string twin = "examples/blade/twin.json";
  int box_cells = 46;
  std::vector<int> batches{1, 64, 1024};
  double max_seconds = 120;
  std::string backend = "cpu";
  std::string output;
  int threads = 0;
};

int run_fem_bench(const FemBenchArgs& args);

}  // namespace doppel::bench
