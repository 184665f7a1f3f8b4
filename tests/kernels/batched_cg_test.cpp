// Batched CG (kernels/solvers/batched_cg.hpp), Jacobi or block-preconditioned, and its kernels,
// written once per backend.
// Host instances run everywhere; CUDA instances skip with a message where no GPU is present.
// References: hand-computed small systems, CHOLMOD direct solves (BatchedSolver), and the host
// kernels for the CUDA kernels (random data on batches wider than a warp).
#include <map>
#include <random>
#include <thread>

#include <Eigen/SparseCholesky>

#include "kernels/solvers/batched_cg.hpp"
#include "kernels/solvers/batched_cg_kernels.hpp"
#include "tests/test_util.hpp"

namespace doppel {

void PrintTo(Backend b, std::ostream* os) { *os << backend_name(b); }

namespace {

std::string backend_label(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::cuda ? "cuda" : "host";
}

class OnBackend : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::cuda) DOPPEL_SKIP_WITHOUT_CUDA("the CUDA instance");
    exec_ = Executor::create(GetParam());
  }
  std::shared_ptr<const Executor> exec_;
};

// Thermal operator on a P2 rectangle: conductivity (2 regions split at x = 0.5 by cell
// index parity would not be a region; use one region) + convection on xmax and ymax, with
// temperature held on xmin. Terms: k, h_xmax, h_ymax.
struct ThermalProblem {
  Mesh mesh;
  AffineOperator op;
  std::vector<int> dirichlet;
};

ThermalProblem thermal_problem(int nx, int ny) {
  ThermalProblem t;
  t.mesh = generate_rectangle(1.0, 0.6, nx, ny, 2);
  const CsrPattern p = cell_pattern(t.mesh, 1, 1);
  std::vector<std::vector<double>> terms(3, std::vector<double>(p.nnz(), 0.0));
  add_stiffness(t.mesh, p, -1, 1.0, terms[0].data());
  add_boundary_mass(t.mesh, p, t.mesh.boundary_index("xmax"), 1.0, terms[1].data());
  add_boundary_mass(t.mesh, p, t.mesh.boundary_index("ymax"), 1.0, terms[2].data());
  const int xmin = t.mesh.boundary_index("xmin");
  for (size_t f = 0; f < t.mesh.num_facets(); ++f)
    if (t.mesh.facet_boundary[f] == xmin)
      for (int i = 0; i < t.mesh.nodes_per_facet(); ++i) t.dirichlet.push_back(t.mesh.facet(f)[i]);
  t.op = AffineOperator(p, terms, t.dirichlet);
  return t;
}

std::vector<std::vector<double>> random_theta(int width, unsigned seed, double spread) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(1.0, spread);
  std::vector<std::vector<double>> th(static_cast<size_t>(width));
  for (auto& t : th) t = {u(rng), 10.0 * u(rng), 5.0 * u(rng)};
  return th;
}

Eigen::MatrixXd random_matrix(Eigen::Index rows, Eigen::Index cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  Eigen::MatrixXd m(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j)
    for (Eigen::Index i = 0; i < rows; ++i) m(i, j) = u(rng);
  return m;
}

using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

Array<double> to_device(const std::shared_ptr<const Executor>& exec, const Eigen::MatrixXd& m) {
  const RowMajor r = m;
  return Array<double>(exec, std::vector<double>(r.data(), r.data() + r.size()));
}

Eigen::MatrixXd from_device(const Array<double>& a, Eigen::Index rows, Eigen::Index cols) {
  RowMajor r(rows, cols);
  a.copy_to_host(r.data(), a.size());
  return r;
}

// --- the host reference kernels on a system small enough to check by hand ----------------

// A 3x3 tridiagonal pattern; two terms; row 2 constrained (terms zero there).
AffineOperator tridiagonal_operator() {
  CsrPattern p;
  p.rows = p.cols = 3;
  p.row_ptr = {0, 2, 5, 7};
  p.col = {0, 1, 0, 1, 2, 1, 2};
  std::vector<std::vector<double>> terms = {{2, -1, -1, 2, -1, -1, 2}, {1, 0, 0, 1, 0, 0, 1}};
  return AffineOperator(p, terms, {2});
}

TEST(HostKernels, AffineApplyByHand) {
  const AffineOperator op = tridiagonal_operator();
  const OperatorData data(Executor::host(), op);
  // Two scenarios: theta = (1, 0) and (2, 3); x columns (1, 2, 5) and (-1, 0, 4).
  const std::vector<double> theta = {1, 0, 2, 3};
  const std::vector<int> state = {kActive, kActive};
  const std::vector<double> x = {1, -1, 2, 0, 5, 4};  // [row][scenario]
  std::vector<double> y(6, 0.0), xy(2, 0.0);
  BatchView b;
  b.width = 2;
  b.theta = theta.data();
  b.state = state.data();
  host::affine_apply(*Executor::host(), data.view(), b, x.data(), y.data(), xy.data());
  // Scenario 0: rows [[2,-1,0],[-1,2,0],[0,0,1]] x (1,2,5) = (0, 3, 5).
  EXPECT_DOUBLE_EQ(y[0], 0.0);
  EXPECT_DOUBLE_EQ(y[2], 3.0);
  EXPECT_DOUBLE_EQ(y[4], 5.0);
  // Scenario 1: A = 2*[[2,-1],[-1,2]] + 3 I = [[7,-2],[-2,7]] on the free rows; x = (-1, 0, 4).
  EXPECT_DOUBLE_EQ(y[1], -7.0);
  EXPECT_DOUBLE_EQ(y[3], 2.0);
  EXPECT_DOUBLE_EQ(y[5], 4.0);
  EXPECT_DOUBLE_EQ(xy[0], 0.0 + 6.0 + 25.0);
  EXPECT_DOUBLE_EQ(xy[1], 7.0 + 0.0 + 16.0);
  // Jacobi: diag of scenario 1 is 7 on the free rows, 1 on the constrained row.
  EXPECT_DOUBLE_EQ(jacobi_inverse(data.view(), theta.data() + 2, 0), 1.0 / 7.0);
  EXPECT_DOUBLE_EQ(jacobi_inverse(data.view(), theta.data() + 2, 2), 1.0);
}

// The free-row operator (a transient history term's): the unconstrained terms on the free rows,
// their couplings to the constrained dof included, and zero on the constrained row.
TEST(HostKernels, FreeRowOperatorByHand) {
  const AffineOperator op = tridiagonal_operator();
  const OperatorData data(Executor::host(), op, true);
  const std::vector<double> theta = {2, 3};
  const std::vector<int> state = {kActive};
  const std::vector<double> x = {1, 2, 5};
  std::vector<double> y(3, -9.0);
  BatchView b;
  b.width = 1;
  b.theta = theta.data();
  b.state = state.data();
  host::affine_apply(*Executor::host(), data.view(), b, x.data(), y.data(), nullptr);
  // A = 2 [[2,-1,0],[-1,2,-1],[0,-1,2]] + 3 I; rows 0 and 1 of A x with x = (1, 2, 5); row 2: 0.
  EXPECT_DOUBLE_EQ(y[0], 7.0 * 1 - 2.0 * 2);
  EXPECT_DOUBLE_EQ(y[1], -2.0 * 1 + 7.0 * 2 - 2.0 * 5);
  EXPECT_DOUBLE_EQ(y[2], 0.0);
  // The same as AffineOperator::apply_free_rows.
  std::vector<double> ref(3);
  op.apply_free_rows(theta.data(), x.data(), ref.data());
  for (int i = 0; i < 3; ++i) EXPECT_DOUBLE_EQ(y[static_cast<size_t>(i)], ref[static_cast<size_t>(i)]);
}

// --- the algorithm, once per backend --------------------------------------------------------

TEST_P(OnBackend, BatchedCgMatchesCholeskyForVaryingOperatorsAndCompacts) {
  const ThermalProblem t = thermal_problem(24, 14);
  const int n = t.op.size();
  const int width = 45;  // more than a warp, not a multiple of 32
  const auto theta = random_theta(width, 7, 20.0);
  Eigen::MatrixXd B = random_matrix(n, width, 8);
  for (int d : t.dirichlet) B.row(d).setConstant(1.5);
  // Reference: one CHOLMOD factor per scenario.
  SolverOptions direct;
  direct.max_factorizations = width;
  direct.factor_cache = static_cast<size_t>(width);
  BatchedSolver reference(t.op, direct);
  Eigen::MatrixXd Xref = Eigen::MatrixXd::Zero(n, width);
  reference.solve(theta, B, Xref);
  // 28 scenarios start from the exact solution: they are done at once and the remaining 17
  // (< half of 45) are compacted at the first look from the host.
  Eigen::MatrixXd X0 = Eigen::MatrixXd::Zero(n, width);
  for (int s = 0; s < 28; ++s) X0.col(s) = Xref.col(s);
  const OperatorData data(exec_, t.op);
  CgOptions options;
  options.rtol = 1e-11;
  BatchedCg cg(data, options);
  const Array<double> Bd = to_device(exec_, B);
  Array<double> Xd = to_device(exec_, X0);
  const std::vector<SolveInfo> info = cg.solve(theta, Bd, Xd, width);
  const Eigen::MatrixXd X = from_device(Xd, n, width);
  for (int s = 0; s < width; ++s) {
    EXPECT_LT((X.col(s) - Xref.col(s)).norm(), 1e-8 * Xref.col(s).norm()) << "scenario " << s;
    EXPECT_LT(info[static_cast<size_t>(s)].residual, 1e-10) << "scenario " << s;
    EXPECT_EQ(info[static_cast<size_t>(s)].method, "cg");
    if (s < 28) EXPECT_EQ(info[static_cast<size_t>(s)].iterations, 0) << "scenario " << s;
    else EXPECT_GT(info[static_cast<size_t>(s)].iterations, 10) << "scenario " << s;
  }
  EXPECT_GE(cg.stats().compactions, 1);
  // Work counts only the columns still iterating: well under width * iterations.
  EXPECT_LT(cg.stats().column_iterations, 0.5 * width * cg.stats().iterations);
}

TEST_P(OnBackend, ExecutorSolverSharedOperatorAndSuperpositionMatchCholesky) {
  const ThermalProblem t = thermal_problem(16, 10);
  const int n = t.op.size();
  const std::vector<double> theta = {3.0, 40.0, 7.0};
  CgOptions options;
  options.rtol = 1e-11;
  ExecutorSolver solver(exec_, t.op, options);
  BatchedSolver reference(t.op);
  // Superposition: 3 unit right-hand sides, 50 scenarios of coefficients.
  Eigen::MatrixXd U = random_matrix(n, 3, 11);
  for (int d : t.dirichlet) U.row(d) << 1.0, 0.0, 0.0;
  const Eigen::MatrixXd C = random_matrix(3, 50, 12);
  Eigen::MatrixXd X, Xref;
  const auto info = solver.superpose(theta, U, C, X);
  reference.solve_shared(theta, U * C, Xref);
  ASSERT_EQ(info.size(), 50u);
  for (int s = 0; s < 50; ++s) {
    EXPECT_LT((X.col(s) - Xref.col(s)).norm(), 1e-8 * Xref.col(s).norm()) << "scenario " << s;
    EXPECT_EQ(info[static_cast<size_t>(s)].method, "superposition-cg");
    EXPECT_LT(info[static_cast<size_t>(s)].residual, 1e-9);
  }
  // The same operator for every scenario, independent right-hand sides.
  const Eigen::MatrixXd B = U * C + 0.1 * random_matrix(n, 50, 13);
  Eigen::MatrixXd Xs = Eigen::MatrixXd::Zero(n, 50), Xsref;
  solver.solve(std::vector<std::vector<double>>(50, theta), B, Xs);
  reference.solve_shared(theta, B, Xsref);
  EXPECT_LT((Xs - Xsref).norm(), 1e-8 * Xsref.norm());
}

TEST_P(OnBackend, IndefiniteOperatorIsReportedAsBreakdown) {
  const ThermalProblem t = thermal_problem(8, 6);
  const int n = t.op.size();
  const OperatorData data(exec_, t.op);
  BatchedCg cg(data);
  const std::vector<std::vector<double>> theta = {{1.0, 1.0, 1.0}, {-1.0, -1.0, -1.0}};
  const Array<double> B = to_device(exec_, random_matrix(n, 2, 3));
  Array<double> X = to_device(exec_, Eigen::MatrixXd::Zero(n, 2));
  try {
    cg.solve(theta, B, X, 2);
    FAIL() << "expected SolverDiverged";
  } catch (const SolverDiverged& e) {
    EXPECT_NE(std::string(e.what()).find("scenario 1"), std::string::npos) << e.what();
  }
}

TEST_P(OnBackend, NonConvergenceNamesTheScenario) {
  const ThermalProblem t = thermal_problem(12, 8);
  const OperatorData data(exec_, t.op);
  CgOptions options;
  options.max_iterations = 3;
  BatchedCg cg(data, options);
  const int n = t.op.size();
  const Array<double> B = to_device(exec_, random_matrix(n, 1, 4));
  Array<double> X = to_device(exec_, Eigen::MatrixXd::Zero(n, 1));
  EXPECT_THROW(cg.solve({{1.0, 1.0, 1.0}}, B, X, 1), SolverDiverged);
}

// A block preconditioner for the tests: the LDL^T factor of A(theta) for one theta (Eigen's
// simplicial factorization, independent of the CHOLMOD factor BatchedSolver uses), counting
// the columns it is asked to solve.
class CountingFactor : public HostBlockPreconditioner {
 public:
  CountingFactor(const AffineOperator& op, const std::vector<double>& theta) {
    const CsrPattern& p = op.pattern();
    const std::vector<double> v = op.combine(theta.data());
    Eigen::SparseMatrix<double> A(p.rows, p.cols);
    std::vector<Eigen::Triplet<double>> t;
    for (int i = 0; i < p.rows; ++i)
      for (int k = p.row_ptr[static_cast<size_t>(i)]; k < p.row_ptr[static_cast<size_t>(i) + 1]; ++k)
        t.emplace_back(i, p.col[static_cast<size_t>(k)], v[static_cast<size_t>(k)]);
    A.setFromTriplets(t.begin(), t.end());
    ldlt_.compute(A);
  }
  void solve(const Eigen::Ref<const Eigen::MatrixXd>& R, Eigen::Ref<Eigen::MatrixXd> Z) const override {
    columns_ += R.cols();
    Z = ldlt_.solve(R);
  }
  const char* name() const override { return "test-factor"; }
  long columns() const { return columns_; }

 private:
  Eigen::SimplicialLDLT<Eigen::SparseMatrix<double>> ldlt_;
  mutable long columns_ = 0;
};

// The one CG with a block preconditioner: the nominal operator's factor for a batch whose
// operators vary. Reference: one CHOLMOD factor per scenario, to 1e-8. Scenarios that start at
// their solution never reach the preconditioner, and one that converges at iteration k costs
// exactly k preconditioner solves (the first direction and k - 1 updates): the convergence check
// runs before the solve. Mesh: P2 rectangle 20 x 12 cells.
TEST_P(OnBackend, BlockPreconditionedCgSolvesOnlyIteratingColumns) {
  const ThermalProblem t = thermal_problem(20, 12);
  const int n = t.op.size();
  const int width = 40;
  const auto theta = random_theta(width, 17, 3.0);
  Eigen::MatrixXd B = random_matrix(n, width, 18);
  for (int d : t.dirichlet) B.row(d).setConstant(0.5);
  SolverOptions direct;
  direct.max_factorizations = width;
  direct.factor_cache = static_cast<size_t>(width);
  BatchedSolver reference(t.op, direct);
  Eigen::MatrixXd Xref = Eigen::MatrixXd::Zero(n, width);
  reference.solve(theta, B, Xref);
  Eigen::MatrixXd X0 = Eigen::MatrixXd::Zero(n, width);
  for (int s = 0; s < 6; ++s) X0.col(s) = Xref.col(s);

  std::vector<double> mean(3, 0.0);
  for (const auto& th : theta)
    for (size_t k = 0; k < 3; ++k) mean[k] += th[k] / width;
  const CountingFactor M(t.op, mean);
  const OperatorData data(exec_, t.op);
  CgOptions options;
  options.rtol = 1e-11;
  BatchedCg cg(data, options, &M);
  const Array<double> Bd = to_device(exec_, B);
  Array<double> Xd = to_device(exec_, X0);
  const std::vector<SolveInfo> info = cg.solve(theta, Bd, Xd, width);
  const Eigen::MatrixXd X = from_device(Xd, n, width);
  long iterations = 0;
  for (int s = 0; s < width; ++s) {
    const SolveInfo& i = info[static_cast<size_t>(s)];
    EXPECT_LT((X.col(s) - Xref.col(s)).norm(), 1e-8 * Xref.col(s).norm()) << "scenario " << s;
    EXPECT_LT(i.residual, 1e-10) << "scenario " << s;
    EXPECT_EQ(i.method, "pcg-test-factor");
    if (s < 6) EXPECT_EQ(i.iterations, 0) << "scenario " << s;
    else EXPECT_GT(i.iterations, 0) << "scenario " << s;
    // theta within a factor 3 of the mean: the nominal factor leaves few iterations (Jacobi
    // needs well over 40 on this mesh).
    EXPECT_LT(i.iterations, 40) << "scenario " << s;
    iterations += i.iterations;
  }
  EXPECT_EQ(M.columns(), iterations);
}

// With the exact operator's factor as preconditioner, CG ends after one iteration.
TEST_P(OnBackend, ExactPreconditionerConvergesInOneIteration) {
  const ThermalProblem t = thermal_problem(10, 6);
  const int n = t.op.size();
  const std::vector<double> theta = {2.0, 30.0, 4.0};
  const CountingFactor M(t.op, theta);
  const OperatorData data(exec_, t.op);
  CgOptions options;
  options.rtol = 1e-10;
  BatchedCg cg(data, options, &M);
  const Array<double> Bd = to_device(exec_, random_matrix(n, 5, 21));
  Array<double> Xd = to_device(exec_, Eigen::MatrixXd::Zero(n, 5));
  const auto info = cg.solve(std::vector<std::vector<double>>(5, theta), Bd, Xd, 5);
  for (const auto& i : info) {
    EXPECT_EQ(i.iterations, 1);
    EXPECT_LT(i.residual, 1e-10);
  }
  EXPECT_EQ(M.columns(), 5);
}

// Errors name the scenario's number in the whole batch, not its column in a block: the
// executor solver splits 23 scenarios into blocks of 5, scenario 17 has an indefinite operator.
TEST_P(OnBackend, BreakdownInALaterBlockNamesTheScenarioOfTheBatch) {
  const ThermalProblem t = thermal_problem(8, 6);
  const int n = t.op.size();
  CgOptions options;
  options.memory_limit = 5 * static_cast<size_t>(n) * sizeof(double) * 7;
  ExecutorSolver solver(exec_, t.op, options);
  auto theta = random_theta(23, 61, 4.0);
  theta[17] = {-1.0, -1.0, -1.0};
  const Eigen::MatrixXd B = random_matrix(n, 23, 62);
  Eigen::MatrixXd X = Eigen::MatrixXd::Zero(n, 23);
  try {
    solver.solve(theta, B, X);
    FAIL() << "expected SolverDiverged";
  } catch (const SolverDiverged& e) {
    EXPECT_NE(std::string(e.what()).find("scenario 17:"), std::string::npos) << e.what();
  }
}

// --- end to end: solve_batch through the executor equals the host direct solvers ----------

void expect_outputs_equal(const BatchResult& a, const BatchResult& b, double rel) {
  ASSERT_EQ(a.scenarios.size(), b.scenarios.size());
  for (size_t s = 0; s < a.scenarios.size(); ++s)
    for (size_t t = 0; t < a.scenarios[s].outputs.size(); ++t)
      for (size_t o = 0; o < a.scenarios[s].outputs[t].size(); ++o) {
        const double x = a.scenarios[s].outputs[t][o], y = b.scenarios[s].outputs[t][o];
        EXPECT_NEAR(x, y, rel * std::max(1.0, std::fabs(y))) << "scenario " << s << " time " << t << " output " << o;
      }
}

BatchOptions executor_options(Backend b) {
  BatchOptions o;
  o.backend = b;
  o.linear = LinearSolver::cg;
  o.solver.rtol = 1e-12;
  return o;
}

// Example blade (P2, curved, thermo-elastic plane strain): outputs to 1e-8 relative.
TEST_P(OnBackend, BladeBatchEqualsHostDirectTo1e8) {
  FemModel model(spec::load_twin(DOPPEL_SOURCE_DIR "/examples/blade/twin.json"));
  // Every parameter varies: operator-varying CG. Few scenarios: Jacobi CG needs ~2000
  // iterations on the blade's elasticity, slow on the host reference kernels.
  const auto sc = test::random_scenarios(model.twin(), {}, 6, 21);
  const BatchResult direct = solve_batch(model, sc);
  const BatchResult cg = solve_batch(model, sc, executor_options(GetParam()));
  expect_outputs_equal(cg, direct, 1e-8);
  EXPECT_NE(cg.scenarios[0].method.find("cg"), std::string::npos) << cg.scenarios[0].method;
  // Loads only: superposition through the executor.
  const auto loads = test::random_scenarios(model.twin(), {"T_gas", "T_cool"}, 40, 22);  // loads only
  const BatchResult sup = solve_batch(model, loads, executor_options(GetParam()));
  expect_outputs_equal(sup, solve_batch(model, loads), 1e-8);
  EXPECT_NE(sup.scenarios[0].method.find("superposition"), std::string::npos) << sup.scenarios[0].method;
}

const char* kBox = R"({"name": "box",
  "mesh": {"generate": "box", "size": [0.1, 0.05, 0.04], "cells": [8, 5, 4], "order": 1},
  "physics": {"thermal": {}, "mechanical": {"formulation": "3d"}},
  "materials": {"steel": {"conductivity": "$k", "density": 7800, "specific_heat": 480,
                          "youngs_modulus": 2e11, "poisson_ratio": 0.3, "thermal_expansion": 1.2e-5,
                          "reference_temperature": 20}},
  "regions": {"domain": "steel"},
  "boundaries": {"xmin": {"thermal": {"type": "temperature", "value": "$T0"}, "mechanical": {"type": "fixed"}},
                 "xmax": {"thermal": {"type": "convection", "h": "$h", "ambient": 20}},
                 "zmax": {"thermal": {"type": "flux", "value": "$q"}}},
  "parameters": {"k": {"default": 45, "min": 15, "max": 60},
                 "h": {"default": 100, "min": 10, "max": 1000},
                 "T0": {"default": 200, "min": 50, "max": 400},
                 "q": {"default": 1000, "min": -5000, "max": 5000}},
  "outputs": {"T_tip": {"quantity": "temperature", "at": [0.1, 0.025, 0.02]},
              "vm": {"quantity": "von_mises", "reduce": "max", "region": "domain"},
              "uz": {"quantity": "displacement_z", "at": [0.1, 0.025, 0.04]}}})";

TEST_P(OnBackend, BoxThermoElasticBatchEqualsHostDirectTo1e8) {
  FemModel model(test::twin_from(kBox));
  const auto sc = test::random_scenarios(model.twin(), {}, 36, 5);
  expect_outputs_equal(solve_batch(model, sc, executor_options(GetParam())), solve_batch(model, sc), 1e-8);
}

// Scenario 0's fields (for the VTU) come back from the executor, where the outputs of the
// executor backends are evaluated: the same as the direct solver's to 1e-8.
void expect_first_fields_equal(const BatchResult& a, const BatchResult& b) {
  ASSERT_TRUE(a.first_fields && b.first_fields);
  ASSERT_EQ(a.first_fields->T.size(), b.first_fields->T.size());
  ASSERT_EQ(a.first_fields->u.size(), b.first_fields->u.size());
  double tmax = 1e-300, umax = 1e-300;
  for (double v : b.first_fields->T) tmax = std::max(tmax, std::fabs(v));
  for (double v : b.first_fields->u) umax = std::max(umax, std::fabs(v));
  for (size_t i = 0; i < a.first_fields->T.size(); ++i)
    ASSERT_NEAR(a.first_fields->T[i], b.first_fields->T[i], 1e-8 * tmax) << "T at node " << i;
  for (size_t i = 0; i < a.first_fields->u.size(); ++i)
    ASSERT_NEAR(a.first_fields->u[i], b.first_fields->u[i], 1e-8 * umax) << "u at dof " << i;
}

// Heat alone with the operator varying (h): each block's outputs on the executor from the
// temperatures where they were solved; and the thermo-elastic box, whose displacements stay
// there. Two blocks (a memory limit of a few columns), so a later block's outputs land on
// their own scenarios.
TEST_P(OnBackend, OutputsEvaluatedOnTheExecutorEqualHostDirect) {
  const std::string heat = R"({"name": "heat-box",
    "mesh": {"generate": "box", "size": [0.1, 0.05, 0.04], "cells": [8, 5, 4], "order": 1},
    "physics": {"thermal": {}},
    "materials": {"steel": {"conductivity": "$k"}}, "regions": {"domain": "steel"},
    "boundaries": {"xmin": {"thermal": {"type": "temperature", "value": "$T0"}},
                   "xmax": {"thermal": {"type": "convection", "h": "$h", "ambient": 20}},
                   "zmax": {"thermal": {"type": "flux", "value": "$q"}}},
    "parameters": {"k": {"default": 45, "min": 15, "max": 60}, "h": {"default": 100, "min": 10, "max": 1000},
                   "T0": {"default": 200, "min": 50, "max": 400}, "q": {"default": 1000, "min": -5000, "max": 5000}},
    "outputs": {"T_tip": {"quantity": "temperature", "at": [0.1, 0.025, 0.02]},
                "T_mean": {"quantity": "temperature", "reduce": "mean", "region": "domain"},
                "T_max": {"quantity": "temperature", "reduce": "max", "region": "domain"},
                "qx_min": {"quantity": "heat_flux_x", "reduce": "min", "region": "domain"}}})";
  for (const std::string& json : {heat, std::string(kBox)}) {
    FemModel model(test::twin_from(json));
    // h varies (the operator varies), the materials do not (one output operator serves all).
    const auto sc = test::random_scenarios(model.twin(), {"h", "T0", "q"}, 12, 17);
    BatchOptions o = executor_options(GetParam());
    const size_t rows = static_cast<size_t>(std::max(model.thermal_operator().size(),
                                                     model.mechanical() ? model.mechanical_operator().size() : 0));
    o.memory_limit = rows * sizeof(double) * (kCgVectors + 2) * 8;  // blocks of 8 scenarios
    const BatchResult got = solve_batch(model, sc, o), want = solve_batch(model, sc);
    expect_outputs_equal(got, want, 1e-8);
    expect_first_fields_equal(got, want);
  }
}

const char* kTransient = R"({"name": "plate",
  "mesh": {"generate": "rectangle", "size": [0.2, 0.1], "cells": [10, 5], "order": 2},
  "physics": {"thermal": {}},
  "analysis": {"type": "transient", "end_time": 40, "time_step": 2, "initial_temperature": 20,
               "output_times": [10, 31, 40], "scheme": "bdf2"},
  "materials": {"al": {"conductivity": 160, "density": 2700, "specific_heat": 900}},
  "regions": {"domain": "al"},
  "boundaries": {"xmin": {"thermal": {"type": "convection", "h": "$h", "ambient": "$T_hot"}},
                 "xmax": {"thermal": {"type": "flux", "value": "$q"}}},
  "parameters": {"h": {"default": 500, "min": 100, "max": 2000},
                 "T_hot": {"default": 300, "min": 20, "max": 600},
                 "q": {"default": 0, "min": -5e4, "max": 5e4}},
  "outputs": {"T_end": {"quantity": "temperature", "at": [0.2, 0.05]},
              "T_mean": {"quantity": "temperature", "reduce": "mean", "region": "domain"}}})";

// The time loop on the executor against the host's direct loop, for every scheme: a scheduled
// Dirichlet temperature (the lift and the prescribed values of every step through B = W Y), a
// scheduled convection coefficient (the operator varies in time and across scenarios), a
// source, outputs between steps (interpolated there), scenario 0's field, every step's field
// (step_sink), two blocks of scenarios, a window from given temperatures; and a transient
// thermo-elastic plate, whose fields come back for the mechanics at each output time.
TEST_P(OnBackend, TransientLoopOnTheExecutorEqualsHostDirectForEveryScheme) {
  const std::string base = R"({"name": "plate",
    "mesh": {"generate": "rectangle", "size": [0.2, 0.1], "cells": [8, 4], "order": 2},
    "physics": {"thermal": {}MECH},
    "analysis": {"type": "transient", "end_time": 30, "time_step": 2, "initial_temperature": 20,
                 "output_times": [5, 17, 30], "scheme": "SCHEME"},
    "materials": {"al": {"conductivity": 160, "density": 2700, "specific_heat": 900, "youngs_modulus": 7e10,
                         "poisson_ratio": 0.33, "thermal_expansion": 2.3e-5, "reference_temperature": 20}},
    "regions": {"domain": "al"},
    "boundaries": {"xmin": {"thermal": {"type": "temperature", "value": "$T_base"}MECHBC},
                   "xmax": {"thermal": {"type": "convection", "h": "$h", "ambient": 20}}},
    "sources": {"domain": {"heat": "$q"}},
    "parameters": {"h": {"default": 500, "min": 100, "max": 2000},
                   "T_base": {"default": 300, "min": 20, "max": 600},
                   "q": {"default": 0, "min": -5e5, "max": 5e5}},
    "outputs": {"T_end": {"quantity": "temperature", "at": [0.2, 0.05]},
                "T_mean": {"quantity": "temperature", "reduce": "mean", "region": "domain"},
                "qx_max": {"quantity": "heat_flux_x", "reduce": "max", "region": "domain"}OUT}})";
  auto twin_json = [&](const std::string& scheme, bool mech) {
    std::string j = base;
    auto put = [&](const std::string& key, const std::string& value) { j.replace(j.find(key), key.size(), value); };
    put("MECHBC", mech ? R"(, "mechanical": {"type": "fixed"})" : "");
    put("MECH", mech ? R"(, "mechanical": {"formulation": "plane_stress", "thickness": 0.01})" : "");
    put("SCHEME", scheme);
    put("OUT", mech ? R"(, "vm_max": {"quantity": "von_mises", "reduce": "max", "region": "domain"})" : "");
    return j;
  };
  for (const char* scheme : {"backward_euler", "crank_nicolson", "bdf2"}) {
    for (bool mech : {false, true}) {
      SCOPED_TRACE(std::string(scheme) + (mech ? ", thermo-elastic" : ", heat"));
      FemModel model(test::twin_from(twin_json(scheme, mech)));
      auto sc = test::random_scenarios(model.twin(), {"h", "T_base", "q"}, 11, 3);
      for (size_t i = 0; i < sc.size(); i += 3) {
        spec::Schedule base_t, h;
        base_t.parameter = model.twin().parameter_index("T_base");
        base_t.points = {{0, 100.0}, {12, 450.0 + 10.0 * static_cast<double>(i)}, {30, 250}};
        h.parameter = model.twin().parameter_index("h");
        h.points = {{0, 300.0}, {20, 1500.0}};
        sc[i].schedules = {base_t, h};
      }
      BatchOptions o = executor_options(GetParam());
      o.memory_limit = static_cast<size_t>(model.thermal_operator().size()) * sizeof(double) * (kCgVectors + 6) * 6;
      std::map<std::pair<size_t, long>, double> got_steps, want_steps;  // T at node 0 per scenario and step
      o.step_sink = [&](size_t s, long step, const double* T) { got_steps[{s, step}] = T[0]; };
      BatchOptions d;
      d.step_sink = [&](size_t s, long step, const double* T) { want_steps[{s, step}] = T[0]; };
      const BatchResult got = solve_batch(model, sc, o), want = solve_batch(model, sc, d);
      expect_outputs_equal(got, want, 1e-8);
      expect_first_fields_equal(got, want);
      EXPECT_DOUBLE_EQ(got.first_fields->time, want.first_fields->time);
      ASSERT_EQ(got_steps.size(), want_steps.size());
      ASSERT_EQ(got_steps.size(), 15u * sc.size());
      for (const auto& [key, v] : want_steps) EXPECT_NEAR(got_steps[key], v, 1e-8 * std::max(1.0, std::fabs(v)));
      EXPECT_NE(got.scenarios[0].method.find("cg"), std::string::npos) << got.scenarios[0].method;
    }
  }
  // A window of 7 s (whole steps of at most 2 s) from given temperatures.
  FemModel model(test::twin_from(twin_json("bdf2", false)));
  const auto sc = test::random_scenarios(model.twin(), {"h", "T_base", "q"}, 4, 8);
  const int n = model.thermal_operator().size();
  auto window = [n](BatchOptions o) {
    o.window = BatchOptions::TransientWindow{7.0, [n](size_t s, double* T) {
                                               for (int i = 0; i < n; ++i) T[i] = 40.0 + static_cast<double>(s) + 0.01 * i;
                                             }};
    return o;
  };
  expect_outputs_equal(solve_batch(model, sc, window(executor_options(GetParam()))), solve_batch(model, sc, window({})), 1e-8);
}

TEST_P(OnBackend, TransientBatchEqualsHostDirectTo1e8) {
  FemModel model(test::twin_from(kTransient));
  const auto sc = test::random_scenarios(model.twin(), {}, 34, 9);
  expect_outputs_equal(solve_batch(model, sc, executor_options(GetParam())), solve_batch(model, sc), 1e-8);
}

// A heat-only twin whose loads vary: superposition with the basis solved on the executor and
// the outputs combined from it (BatchOptions::batched_outputs), against host CHOLMOD solves of
// each scenario's own field: 1e-8 relative.
TEST_P(OnBackend, SuperposedOutputsFromTheExecutorBasisEqualHostDirect) {
  FemModel model(test::twin_from(R"({"name": "plate", "mesh": {"generate": "rectangle", "size": [0.2, 0.1], "cells": [12, 6], "order": 2},
    "physics": {"thermal": {}},
    "materials": {"al": {"conductivity": 160}}, "regions": {"domain": "al"},
    "boundaries": {"xmin": {"thermal": {"type": "temperature", "value": "$T0"}},
                   "xmax": {"thermal": {"type": "convection", "h": 300, "ambient": "$Ta"}},
                   "ymax": {"thermal": {"type": "flux", "value": "$q"}}},
    "parameters": {"T0": {"default": 100, "min": 20, "max": 300}, "Ta": {"default": 20, "min": 0, "max": 50},
                   "q": {"default": 0, "min": -5e4, "max": 5e4}},
    "outputs": {"T_max": {"quantity": "temperature", "reduce": "max", "region": "domain"},
                "T_mean": {"quantity": "temperature", "reduce": "mean", "region": "domain"},
                "qx": {"quantity": "heat_flux_x", "at": [0.1, 0.05]}}})"));
  const auto sc = test::random_scenarios(model.twin(), {}, 60, 71);
  BatchOptions reference;
  reference.batched_outputs = false;
  const BatchResult fast = solve_batch(model, sc, executor_options(GetParam()));
  expect_outputs_equal(fast, solve_batch(model, sc, reference), 1e-8);
  for (const auto& s : fast.scenarios) {
    EXPECT_EQ(s.method, "superposition-cg");
    EXPECT_LT(s.residual, 1e-9);
  }
}

// --- concurrency and memory ------------------------------------------------------------------

// Two threads solve different systems at once through ONE executor (the GPU case: the live
// twins of one server share a device). Each must get exactly what it gets alone: a counter or
// buffer shared between solves would hand one solve the other's convergence state. Reference:
// the same solves run one after the other; tolerance 1e-10 relative (device reductions
// accumulate in varying order).
TEST_P(OnBackend, TwoThreadsSolvingAtOnceOnOneExecutorGetTheirOwnAnswers) {
  const ThermalProblem a = thermal_problem(30, 18), b = thermal_problem(22, 26);
  const OperatorData da(exec_, a.op), db(exec_, b.op);
  CgOptions options;
  options.rtol = 1e-11;
  options.check_every = 1;  // look (count active columns) after every iteration
  struct Job {
    const OperatorData* data;
    std::vector<std::vector<double>> theta;
    Eigen::MatrixXd B;
    Eigen::MatrixXd X;
  };
  std::vector<Job> jobs;
  jobs.push_back({&da, random_theta(40, 31, 30.0), random_matrix(a.op.size(), 40, 32), {}});
  jobs.push_back({&db, random_theta(7, 33, 5.0), random_matrix(b.op.size(), 7, 34), {}});
  auto run = [&](Job& j) {
    BatchedCg cg(*j.data, options);
    const int w = static_cast<int>(j.theta.size());
    const Array<double> Bd = to_device(exec_, j.B);
    Array<double> Xd = to_device(exec_, Eigen::MatrixXd::Zero(j.B.rows(), w));
    const auto info = cg.solve(j.theta, Bd, Xd, w);
    for (const auto& i : info) EXPECT_LT(i.residual, 1e-10);
    exec_->synchronize();
    return from_device(Xd, j.B.rows(), w);
  };
  std::vector<Eigen::MatrixXd> alone;
  for (Job& j : jobs) alone.push_back(run(j));
  for (int round = 0; round < 3; ++round) {
    std::thread other([&] { jobs[1].X = run(jobs[1]); });
    jobs[0].X = run(jobs[0]);
    other.join();
    for (size_t k = 0; k < jobs.size(); ++k)
      EXPECT_LT((jobs[k].X - alone[k]).norm(), 1e-10 * alone[k].norm()) << "round " << round << " job " << k;
  }
}

// Two twins solved by solve_batch in two threads at once, each through its own executor:
// outputs equal the host direct solves to 1e-8 relative.
TEST_P(OnBackend, TwoTwinsSolvingAtOnceEqualHostDirect) {
  FemModel box(test::twin_from(kBox)), plate(test::twin_from(kTransient));
  const auto box_sc = test::random_scenarios(box.twin(), {}, 24, 41);
  const auto plate_sc = test::random_scenarios(plate.twin(), {}, 20, 42);
  const BatchResult box_ref = solve_batch(box, box_sc), plate_ref = solve_batch(plate, plate_sc);
  BatchResult box_out, plate_out;
  std::thread other([&] { plate_out = solve_batch(plate, plate_sc, executor_options(GetParam())); });
  box_out = solve_batch(box, box_sc, executor_options(GetParam()));
  other.join();
  expect_outputs_equal(box_out, box_ref, 1e-8);
  expect_outputs_equal(plate_out, plate_ref, 1e-8);
}

// A memory limit of a few scenarios' working memory splits a batch into many blocks, for
// operator-varying CG and for superposition; answers equal the host direct solves (1e-8
// relative), whatever the block boundaries.
TEST_P(OnBackend, SmallMemoryBudgetSplitsTheBatchIntoBlocksWithEqualAnswers) {
  const ThermalProblem t = thermal_problem(16, 10);
  const int n = t.op.size();
  const size_t per_scenario = static_cast<size_t>(n) * sizeof(double) * 7;  // CG: 7 multi-vectors
  CgOptions options;
  options.rtol = 1e-11;
  options.memory_limit = 5 * per_scenario;
  ExecutorSolver solver(exec_, t.op, options);
  BatchedSolver reference(t.op, [] {
    SolverOptions o;
    o.max_factorizations = 50;
    o.factor_cache = 50;
    return o;
  }());
  const auto theta = random_theta(23, 51, 10.0);
  const Eigen::MatrixXd B = random_matrix(n, 23, 52);
  Eigen::MatrixXd X = Eigen::MatrixXd::Zero(n, 23), Xref = X;
  solver.solve(theta, B, X);
  EXPECT_EQ(solver.stats().blocks, 5);  // 23 scenarios in blocks of 5
  reference.solve(theta, B, Xref);
  for (int s = 0; s < 23; ++s) EXPECT_LT((X.col(s) - Xref.col(s)).norm(), 1e-8 * Xref.col(s).norm()) << s;
  // Superposition: 4 multi-vectors per scenario, so the same limit holds 8 per block.
  Eigen::MatrixXd U = random_matrix(n, 3, 53);
  for (int d : t.dirichlet) U.row(d) << 1.0, 0.0, 0.0;
  const Eigen::MatrixXd C = random_matrix(3, 30, 54);
  Eigen::MatrixXd Xs, Xsref;
  solver.superpose(theta[0], U, C, Xs);
  EXPECT_EQ(solver.stats().blocks, 4);  // 30 scenarios in blocks of 8
  reference.solve_shared(theta[0], U * C, Xsref);
  EXPECT_LT((Xs - Xsref).norm(), 1e-8 * Xsref.norm());
  // End to end: a thermo-elastic batch under the same kind of limit.
  FemModel box(test::twin_from(kBox));
  const auto sc = test::random_scenarios(box.twin(), {}, 12, 55);
  BatchOptions o = executor_options(GetParam());
  o.memory_limit = 3 * static_cast<size_t>(box.mechanical_operator().size()) * sizeof(double) * 7;
  expect_outputs_equal(solve_batch(box, sc, o), solve_batch(box, sc), 1e-8);
}

INSTANTIATE_TEST_SUITE_P(Backends, OnBackend, ::testing::Values(Backend::host, Backend::cuda), backend_label);

}  // namespace
}  // namespace doppel
