#include "benchmarks/linear_bench.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

#include "benchmarks/bench_util.hpp"
#include "kernels/solvers/batched_cg.hpp"
#include "kernels/solvers/batched_solver.hpp"
#include "kernels/io/npy.hpp"
#include "kernels/host/parallel.hpp"
#include "spec/errors.hpp"

namespace doppel::bench {
namespace {

using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Right-hand sides b = U c for random coefficients c: the loads a twin's parameters span.
Eigen::MatrixXd coefficients(int R, int batch, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0.5, 1.5);
  Eigen::MatrixXd C(R, batch);
  for (Eigen::Index j = 0; j < C.cols(); ++j)
    for (Eigen::Index i = 0; i < C.rows(); ++i) C(i, j) = u(rng);
  return C;
}

struct Row {
  std::string regime;
  int batch = 0;
  double seconds = 0;
  double host_seconds = -1;
  int iterations = 0;
  double bytes = 0;  // bytes the CG iterations must move (0 when no CG ran in the timed part)
  double bytes_per_iteration = 0;
  double max_residual = 0;
  int blocks = 1;  // blocks of columns the batch was solved in (the executor's memory budget)
};

}  // namespace

double copy_bandwidth(const std::shared_ptr<const Executor>& exec, size_t bytes, int repeats) {
  Array<char> a(exec, bytes), b(exec, bytes);
  exec->copy(b.data(), a.data(), bytes);  // warm up (first touch)
  exec->synchronize();
  const auto t = Clock::now();
  for (int r = 0; r < repeats; ++r) exec->copy(r % 2 ? a.data() : b.data(), r % 2 ? b.data() : a.data(), bytes);
  exec->synchronize();
  return 2.0 * static_cast<double>(bytes) * repeats / seconds_since(t);
}

void run_linear_bench(const std::string& name, const FemModel& model,
                      const std::vector<std::string>& operator_parameters,
                      const std::shared_ptr<const Executor>& exec, double bandwidth,
                      const LinearBenchOptions& options, nlohmann::ordered_json& doc) {
  const bool thermal = model.thermal();
  const AffineOperator& op = thermal ? model.thermal_operator() : model.mechanical_operator();
  const auto& rhs_terms = thermal ? model.thermal_rhs_terms() : model.mechanical_rhs_terms();
  const auto& twin = model.twin();
  const Params p0 = twin.default_parameters();
  const Params theta0 = thermal ? model.thermal_theta(p0) : model.mechanical_theta(p0);
  const int n = op.size();
  const int R = static_cast<int>(rhs_terms.size());
  Eigen::MatrixXd U(n, R);
  for (int r = 0; r < R; ++r) FemModel::assemble_unit_rhs(op, rhs_terms[static_cast<size_t>(r)], theta0, U.col(r).data());

  // Operators of the operator-varying regime: the named parameters drawn inside their bounds.
  auto thetas = [&](int batch, unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<std::vector<double>> out;
    for (int s = 0; s < batch; ++s) {
      Params p = p0;
      for (const auto& pn : operator_parameters) {
        const int k = twin.parameter_index(pn);
        const auto& spec = twin.parameters[static_cast<size_t>(k)];
        p[static_cast<size_t>(k)] = std::uniform_real_distribution<double>(spec.min, spec.max)(rng);
      }
      out.push_back(thermal ? model.thermal_theta(p) : model.mechanical_theta(p));
    }
    return out;
  };

  const OperatorData data(exec, op);
  const OperatorData nominal = data.combined(theta0);
  CgOptions cg_options;
  cg_options.rtol = options.rtol;
  cg_options.max_iterations = std::max(20000, 4 * n);
  cg_options.memory_limit = options.memory_limit;
  ExecutorSolver solver(exec, op, cg_options);
  SolverOptions host_options;
  host_options.rtol = options.rtol;
  BatchedSolver host(op, host_options);

  if (!options.export_dir.empty()) {
    // The nominal operator with Dirichlet rows as identity, and R right-hand sides.
    std::filesystem::create_directories(options.export_dir);
    const std::string base = options.export_dir + "/" + name;
    const std::vector<double> values = op.combine(theta0.data());
    write_npy(base + "_indptr.npy", op.pattern().row_ptr.data(), {op.pattern().row_ptr.size()});
    write_npy(base + "_indices.npy", op.pattern().col.data(), {op.pattern().col.size()});
    write_npy(base + "_data.npy", values.data(), {values.size()});
    const RowMajor ur = U.transpose();
    write_npy(base + "_rhs.npy", ur.data(), {static_cast<size_t>(R), static_cast<size_t>(n)});
    std::cerr << "bench: exported " << base << "_{indptr,indices,data,rhs}.npy\n";
  }

  // The superposition basis is solved once per operator and reused by every batch (as in
  // production); its time is reported on its own.
  {
    const auto t = Clock::now();
    Eigen::MatrixXd X;
    solver.superpose(theta0, U, coefficients(R, 1, 1), X);
    exec->synchronize();
    doc["problems"][name]["superposition_basis_seconds"] = seconds_since(t);
    doc["problems"][name]["rhs_terms"] = R;
  }

  std::printf("%-16s %-34s %6s %10s %12s %7s %9s %8s\n", "problem", "regime (linear solves)", "batch",
              "seconds", "solves/s", "iters", "GB/s", "x host");
  const std::vector<std::string> regimes = {"shared operator, superposition",
                                            "shared operator, batched CG",
                                            "operator varies, batched CG"};
  for (const auto& regime : regimes) {
    if (regime.rfind("operator varies", 0) == 0 && operator_parameters.empty()) continue;
    double last_seconds = 0, last_host = 0;
    int last_batch = 0;
    std::string failed;  // the error that ended this regime's batches
    for (int batch : options.batches) {
      const double scale = last_batch > 0 ? static_cast<double>(batch) / last_batch : 0.0;
      nlohmann::ordered_json row = {{"problem", name}, {"regime", regime}, {"batch", batch},
                                    {"backend", backend_name(exec->backend())}};
      // Host memory the row needs: C, and for superposition the fields brought back (n x batch).
      const double host_bytes = 8.0 * n * batch * (regime == regimes[0] ? 2.0 : 0.0);
      if (!failed.empty()) {
        row["skipped"] = "after an error at a smaller batch: " + failed;
      } else if (last_seconds * scale > options.max_seconds) {
        row["skipped"] = "predicted over --max-seconds";
      } else if (host_bytes > 0.5 * static_cast<double>(Executor::host()->free_memory())) {
        row["skipped"] = "needs " + std::to_string(static_cast<long>(host_bytes / 1e9)) + " GB of host memory";
      }
      if (row.contains("skipped")) {
        doc["linear"].push_back(row);
        if (options.checkpoint) options.checkpoint();
        continue;
      }
      try {
      const Eigen::MatrixXd C = coefficients(R, batch, 7u + static_cast<unsigned>(batch));
      const std::vector<std::vector<double>> th =
          regime.rfind("operator varies", 0) == 0 ? thetas(batch, 11u + static_cast<unsigned>(batch))
                                                  : std::vector<std::vector<double>>(static_cast<size_t>(batch), {1.0});
      Row out;
      out.regime = regime;
      out.batch = batch;
      if (regime == regimes[0]) {
        Eigen::MatrixXd X;
        const auto t = Clock::now();
        const auto info = solver.superpose(theta0, U, C, X);
        exec->synchronize();
        out.seconds = seconds_since(t);
        out.blocks = solver.stats().blocks;
        for (const auto& i : info) out.max_residual = std::max(out.max_residual, i.residual);
      } else {
        // Right-hand sides and solutions stay on the executor, in blocks of the columns that fit
        // its memory budget (B, X and the solver's own multi-vectors per column); the copies of
        // B in are not timed, the solves of every block are.
        const bool shared = regime == regimes[1];
        const OperatorData& A = shared ? nominal : data;
        const ColumnBlocks blocks = claim_columns(*exec, n, kCgVectors + 2, batch, options.memory_limit);
        const int block = blocks.width;
        out.blocks = (batch + block - 1) / block;
        for (int first = 0; first < batch; first += block) {
          const int w = std::min(block, batch - first);
          RowMajor staged = U * C.middleCols(first, w);
          const Array<double> B(exec, staged.data(), static_cast<size_t>(staged.size()));
          staged.setZero();
          Array<double> X(exec, staged.data(), static_cast<size_t>(staged.size()));
          const std::vector<std::vector<double>> th_w(th.begin() + first, th.begin() + first + w);
          BatchedCg cg(A, cg_options);
          exec->synchronize();
          const auto t = Clock::now();
          const auto info = cg.solve(th_w, B, X, w);
          exec->synchronize();
          out.seconds += seconds_since(t);
          for (const auto& i : info) out.max_residual = std::max(out.max_residual, i.residual);
          out.iterations = std::max(out.iterations, cg.stats().iterations);
          out.bytes += static_cast<double>(A.bytes()) * cg.stats().iterations + 88.0 * n * cg.stats().column_iterations;
        }
        out.bytes_per_iteration = static_cast<double>(A.bytes()) + 88.0 * n * std::min(block, batch);
      }
      // The host backend's own solvers on the same systems: superposition with its CHOLMOD
      // basis, one factor for all right-hand sides, factor-preconditioned PCG (B and X on the
      // host: skipped where they would not fit beside everything else).
      const bool host_fits = 8.0 * n * batch * 3 < 0.5 * static_cast<double>(Executor::host()->free_memory());
      if (options.host_baseline && host_fits && !(last_host * scale > options.max_seconds)) {
        const Eigen::MatrixXd Bh = U * C;
        Eigen::MatrixXd Xh = Eigen::MatrixXd::Zero(n, batch), warm;
        host.solve_shared(theta0, U, warm);  // factor cached before timing, like the GPU basis
        const auto t = Clock::now();
        if (regime == regimes[0]) {
          Eigen::MatrixXd basis;
          host.solve_shared(theta0, U, basis);
          Xh.noalias() = basis * C;
          parallel_for(static_cast<size_t>(batch), [&](size_t s) {
            relative_residual(op, theta0.data(), Bh.col(static_cast<Eigen::Index>(s)).data(), Xh.col(static_cast<Eigen::Index>(s)).data());
          });
        } else if (regime == regimes[1]) {
          host.solve_shared(theta0, Bh, Xh);
        } else {
          Xh.setZero();
          host.solve(th, Bh, Xh);
        }
        out.host_seconds = seconds_since(t);
        last_host = out.host_seconds;
      }
      last_seconds = out.seconds;
      last_batch = batch;
      const double rate = batch / out.seconds;
      row["seconds"] = out.seconds;
      row["scenario_solves_per_second"] = rate;
      row["max_relative_residual"] = out.max_residual;
      if (out.bytes > 0) {
        row["cg_iterations"] = out.iterations;
        row["bytes_per_cg_iteration"] = out.bytes_per_iteration;
        row["achieved_bytes_per_second"] = out.bytes / out.seconds;
        row["fraction_of_copy_bandwidth"] = out.bytes / out.seconds / bandwidth;
      }
      if (out.host_seconds > 0) {
        row["host_backend_seconds"] = out.host_seconds;
        row["speedup_over_host_backend"] = out.host_seconds / out.seconds;
      }
      if (out.blocks > 1) row["blocks"] = out.blocks;
      std::printf("%-16s %-34s %6d %10.4f %12.1f %7d %9.1f %8s\n", name.c_str(), regime.c_str(), batch,
                  out.seconds, rate, out.iterations, out.bytes > 0 ? out.bytes / out.seconds / 1e9 : 0.0,
                  out.host_seconds > 0 ? std::to_string(out.host_seconds / out.seconds).substr(0, 6).c_str() : "-");
      } catch (const std::exception& e) {
        // A device or solver failure ends this regime (larger batches would fail the same way)
        // but not the benchmark: the row says what failed, the other regimes still run.
        failed = e.what();
        row["error"] = failed;
        std::printf("%-16s %-34s %6d error: %s\n", name.c_str(), regime.c_str(), batch, e.what());
      }
      std::fflush(stdout);
      doc["linear"].push_back(row);
      if (options.checkpoint) options.checkpoint();
    }
  }
}

}  // namespace doppel::bench
