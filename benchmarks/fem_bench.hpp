// `doppel bench fem`: assembly, factorization and scenario-solve throughput on the example
// twin and on 3D P1 boxes, for several batch sizes, in the shared-operator and the
// operator-varying regimes, on the chosen backend, with the host backend as the baseline
// measured in the same run. Prints tables and writes JSON.
#pragma once

#include <string>
#include <vector>

namespace doppel::bench {

struct FemBenchArgs {
  std::string twin = "examples/blade/twin.json";
  std::vector<int> box_cells{46};  // 46: ~10^5 nodes, 99: ~10^6 nodes
  std::vector<int> batches{1, 64, 1024};
  double max_seconds = 120;
  std::string backend = "cpu";
  double rtol = 1e-8;
  std::string export_dir;       // write the linear systems for benchmarks/peers
  bool end_to_end = true;       // also time solve_batch (outputs included)
  bool preconditioners = true;  // also time the factor against multigrid CG (host)
  bool linear = true;           // time the linear solves alone
  // End-to-end regimes to time (each a substring of the regime's name; empty: all).
  std::vector<std::string> regimes;
  std::string output;
  int threads = 0;
  // Working memory of one batched solve in MiB (0: the executor's budget): smaller values
  // make large batches run in more blocks.
  double memory_limit_mb = 0;
};

int run_fem_bench(const FemBenchArgs& args);

}  // namespace doppel::bench
