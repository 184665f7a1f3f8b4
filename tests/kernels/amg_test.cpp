// Smoothed-aggregation multigrid (kernels/solvers/amg.hpp) and its use by the host batched solver.
// Reference: CHOLMOD's direct solve of the same system (BatchedSolver with the Cholesky
// preconditioner), on P1/P2, 2D/3D structured meshes and the curved P2 Gmsh blade. Tolerances:
// CG to a relative residual of 1e-12, so solutions agree with the direct solve to ~1e-9 of
// their norm (the condition numbers here are below 1e4).
#include <random>

#include <Eigen/SparseCore>

#include "kernels/host/parallel.hpp"
#include "kernels/solvers/amg.hpp"
#include "kernels/io/gmsh_reader.hpp"
#include "tests/test_util.hpp"

namespace doppel {
namespace {

// Conductivity (term 0) + convection on one boundary (term 1), temperature held on another.
AffineOperator heat_operator(const Mesh& m, const std::string& held, const std::string& cooled) {
  const CsrPattern p = cell_pattern(m, 1, 1);
  std::vector<std::vector<double>> terms(2, std::vector<double>(p.nnz(), 0.0));
  add_stiffness(m, p, -1, 1.0, terms[0].data());
  add_boundary_mass(m, p, m.boundary_index(cooled), 1.0, terms[1].data());
  std::vector<int> dirichlet;
  const int b = m.boundary_index(held);
  for (size_t f = 0; f < m.num_facets(); ++f)
    if (m.facet_boundary[f] == b)
      for (int i = 0; i < m.nodes_per_facet(); ++i) dirichlet.push_back(m.facet(f)[i]);
  return AffineOperator(p, terms, dirichlet);
}

Eigen::MatrixXd random_rhs(const AffineOperator& op, int m, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> g;
  Eigen::MatrixXd B(op.size(), m);
  for (Eigen::Index j = 0; j < B.cols(); ++j)
    for (Eigen::Index i = 0; i < B.rows(); ++i) B(i, j) = g(rng);
  return B;
}

SolverOptions forced(Preconditioner p) {
  SolverOptions o;
  o.rtol = 1e-12;
  o.preconditioner = p;
  return o;
}

struct Case {
  const char* name;
  Mesh (*mesh)();
  const char* held;
  const char* cooled;
  int max_iterations;  // V-cycles CG may need (the hierarchy is working, not a timing)
};

const Case kCases[] = {
    {"box_p1", [] { return generate_box(1, 1, 1, 20, 20, 20, 1); }, "xmin", "xmax", 30},
    {"box_p2", [] { return generate_box(1, 0.5, 0.5, 10, 6, 6, 2); }, "xmin", "xmax", 40},
    {"rectangle_p1", [] { return generate_rectangle(1, 0.6, 80, 50, 1); }, "xmin", "ymax", 30},
    {"rectangle_p2", [] { return generate_rectangle(1, 0.6, 40, 24, 2); }, "xmin", "ymax", 40},
    {"blade_gmsh_p2", [] { return read_gmsh(DOPPEL_SOURCE_DIR "/examples/blade/blade.msh"); }, "root", "gas", 40},
};

class AmgOn : public ::testing::TestWithParam<Case> {};

TEST_P(AmgOn, CgMatchesTheDirectSolve) {
  const Mesh m = GetParam().mesh();
  const AffineOperator op = heat_operator(m, GetParam().held, GetParam().cooled);
  const std::vector<double> theta = {50.0, 400.0};
  const Eigen::MatrixXd B = random_rhs(op, 3, 7);
  BatchedSolver direct(op, forced(Preconditioner::cholesky)), amg(op, forced(Preconditioner::amg));
  Eigen::MatrixXd Xd, Xa;
  const SolveInfo di = direct.solve_shared(theta, B, Xd);
  const SolveInfo ai = amg.solve_shared(theta, B, Xa);
  EXPECT_EQ(di.method, "cholesky");
  EXPECT_EQ(ai.method, "amg");
  RecordProperty("iterations", ai.iterations);
  EXPECT_GT(ai.iterations, 0);
  EXPECT_LE(ai.iterations, GetParam().max_iterations) << "nodes " << m.num_nodes();
  EXPECT_LT(ai.residual, 1e-11);
  for (Eigen::Index j = 0; j < B.cols(); ++j)
    EXPECT_LT((Xa.col(j) - Xd.col(j)).norm(), 1e-8 * Xd.col(j).norm()) << "column " << j;
}

// The preconditioner of CG must be a fixed symmetric positive definite operator: one V-cycle
// with the same smoothing before and after the coarse correction.
TEST_P(AmgOn, VCycleIsSymmetricPositiveDefiniteAndColumnwise) {
  const Mesh m = GetParam().mesh();
  const AffineOperator op = heat_operator(m, GetParam().held, GetParam().cooled);
  const std::vector<double> theta = {50.0, 400.0};
  const std::vector<double> values = op.combine(theta.data());
  AmgOptions small;
  small.coarse_size = 50;  // several levels even on the small meshes
  const Amg amg(op.pattern(), values.data(), small);
  EXPECT_GE(amg.levels(), 2);
  EXPECT_GE(amg.operator_complexity(), 1.0);
  EXPECT_LT(amg.operator_complexity(), 3.0);
  const Eigen::MatrixXd R = random_rhs(op, 5, 3);
  Eigen::MatrixXd Z(R.rows(), R.cols());
  amg.apply(R.data(), Z.data(), static_cast<int>(R.cols()));
  for (Eigen::Index j = 0; j < R.cols(); ++j) {
    Eigen::VectorXd z(R.rows());
    amg.apply(R.col(j).data(), z.data(), 1);
    EXPECT_LT((z - Z.col(j)).norm(), 1e-13 * z.norm()) << "column " << j << " cycled alone";
    EXPECT_GT(R.col(j).dot(z), 0.0);
  }
  for (Eigen::Index i = 0; i < R.cols(); ++i)
    for (Eigen::Index j = i + 1; j < R.cols(); ++j) {
      const double a = R.col(i).dot(Z.col(j)), b = R.col(j).dot(Z.col(i));
      EXPECT_NEAR(a, b, 1e-11 * (std::abs(a) + std::abs(b) + Z.norm() * R.norm() * 1e-3)) << i << "," << j;
    }
}

INSTANTIATE_TEST_SUITE_P(Meshes, AmgOn, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

TEST(Amg, DiagonalOperatorIsOneExactLevel) {
  CsrPattern p;
  p.rows = p.cols = 1000;
  std::vector<double> v;
  for (int i = 0; i < p.rows; ++i) {
    p.row_ptr.push_back(i);
    p.col.push_back(i);
    v.push_back(1.0 + i);
  }
  p.row_ptr.push_back(p.rows);
  const Amg amg(p, v.data());
  EXPECT_EQ(amg.levels(), 1);
  std::vector<double> r(1000, 1.0), z(1000);
  amg.apply(r.data(), z.data(), 1);
  for (int i = 0; i < 1000; ++i) EXPECT_NEAR(z[static_cast<size_t>(i)], 1.0 / (1.0 + i), 1e-14);
}

TEST(Amg, NonPositiveDiagonalIsRefused) {
  const Mesh m = generate_rectangle(1, 1, 4, 4, 1);
  const CsrPattern p = cell_pattern(m, 1, 1);
  std::vector<double> values(p.nnz(), 0.0);
  add_stiffness(m, p, -1, -1.0, values.data());  // negative definite
  EXPECT_THROW(Amg(p, values.data()), SolverDiverged);
}

// Operator-varying batch (h differs per scenario): CG preconditioned by the hierarchy of the
// batch-mean operator, against the factor of each scenario's own operator.
// BatchedSolver's CG runs in blocks of columns (kernels/solvers/batched_solver.cpp, 128): an error names
// the scenario's number in the batch. 200 scenarios, the lexicographically smallest theta (the
// first CG column) is scenario 150; one iteration cannot reach the tolerance.
TEST(BatchedSolverCg, NonConvergenceNamesTheScenarioOfTheBatch) {
  const Mesh m = generate_box(1, 1, 1, 5, 5, 5, 1);
  const AffineOperator op = heat_operator(m, "xmin", "xmax");
  std::vector<std::vector<double>> theta;
  for (int s = 0; s < 200; ++s) theta.push_back({50.0 + s, 20.0 + 3.0 * s});
  theta[150] = {10.0, 5.0};
  const Eigen::MatrixXd B = random_rhs(op, 200, 6);
  SolverOptions o = forced(Preconditioner::cholesky);
  o.max_factorizations = 0;
  o.max_iterations = 1;
  BatchedSolver solver(op, o);
  Eigen::MatrixXd X = Eigen::MatrixXd::Zero(B.rows(), B.cols());
  try {
    solver.solve(theta, B, X);
    FAIL() << "expected SolverDiverged";
  } catch (const SolverDiverged& e) {
    EXPECT_NE(std::string(e.what()).find("scenario 150:"), std::string::npos) << e.what();
  }
}

// The shared-operator residual kernel (AffineOperator::relative_residuals: columns in panels
// of 8, gathered by row) against the residual formed column by column with apply(), on the
// curved P2 blade with a held boundary: 13 columns (a partial panel), one of them with b = 0
// (then the absolute residual). Reference: the same sums in another order, so 1e-12.
TEST(AffineOperatorResiduals, PanelsEqualTheColumnByColumnResidual) {
  const Mesh m = read_gmsh(DOPPEL_SOURCE_DIR "/examples/blade/blade.msh");
  const AffineOperator op = heat_operator(m, "root", "gas");
  const std::vector<double> theta = {23.0, 1500.0};
  Eigen::MatrixXd B = random_rhs(op, 13, 11), X = random_rhs(op, 13, 12);
  B.col(5).setZero();
  const std::vector<double> got = op.relative_residuals(theta.data(), 13, B.data(), X.data());
  ASSERT_EQ(got.size(), 13u);
  Eigen::VectorXd ax(op.size());
  for (Eigen::Index j = 0; j < 13; ++j) {
    op.apply(theta.data(), X.col(j).data(), ax.data());
    const double r = (B.col(j) - ax).norm(), b = B.col(j).norm();
    const double want = b > 0 ? r / b : r;
    EXPECT_NEAR(got[static_cast<size_t>(j)], want, 1e-12 * want) << "column " << j;
  }
  // Through the batched solver's entry point: one theta shared, or given per column.
  const std::vector<const double*> th(13, theta.data());
  const std::vector<double> via = relative_residuals(op, th, B, X);
  for (size_t j = 0; j < 13; ++j) EXPECT_DOUBLE_EQ(via[j], got[j]);
}

// A block of right-hand sides against one factor is solved in column slices on the host's
// threads with a single-threaded BLAS (kernels/solvers/batched_solver.cpp): the slices must give
// what one column at a time gives. 4 threads, 45 columns (slices of 11 and 12), the blade and
// a 3D P2 box. Reference: the same factor, one column per call (one slice); 1e-12.
TEST(BatchedSolverCholesky, ColumnSlicesEqualOneColumnAtATime) {
  struct Restore { int t = host_threads(); ~Restore() { set_host_threads(t); } } restore;
  set_host_threads(4);
  for (const Case& c : {kCases[1], kCases[4]}) {
    const Mesh m = c.mesh();
    const AffineOperator op = heat_operator(m, c.held, c.cooled);
    const std::vector<double> theta = {40.0, 900.0};
    const Eigen::MatrixXd B = random_rhs(op, 45, 21);
    BatchedSolver solver(op, forced(Preconditioner::cholesky));
    Eigen::MatrixXd X;
    const SolveInfo info = solver.solve_shared(theta, B, X);
    EXPECT_EQ(info.method, "cholesky");
    EXPECT_LT(info.residual, 1e-12) << c.name;
    for (Eigen::Index j = 0; j < B.cols(); ++j) {
      Eigen::MatrixXd x;
      solver.solve_shared(theta, B.col(j), x);
      EXPECT_LT((X.col(j) - x.col(0)).norm(), 1e-12 * x.norm()) << c.name << " column " << j;
    }
    // The batch entry point (every scenario on this operator) solves the same block.
    Eigen::MatrixXd Y = Eigen::MatrixXd::Zero(B.rows(), B.cols());
    const auto infos = solver.solve(std::vector<std::vector<double>>(45, theta), B, Y);
    EXPECT_LT((Y - X).norm(), 1e-14 * X.norm()) << c.name;
    for (const auto& i : infos) EXPECT_LT(i.residual, 1e-12);
  }
}

// Operator-varying CG blocks start from the Galerkin correction over earlier blocks'
// solutions (BatchedSolver's recycled basis). Right-hand sides from a family of three loads
// (as a twin's are), 300 scenarios with h varying over 20-920, so three CG blocks of 128.
// Reference: each scenario's own CHOLMOD factor, to 1e-9 of the solution at rtol 1e-11; the
// later blocks must need fewer iterations than the first (counts, not times).
TEST(BatchedSolverCg, LaterBlocksStartFromTheEarlierSolutions) {
  const Mesh m = generate_box(1, 1, 1, 8, 8, 8, 1);
  const AffineOperator op = heat_operator(m, "xmin", "xmax");
  constexpr int S = 300;
  std::vector<std::vector<double>> theta;
  for (int s = 0; s < S; ++s) theta.push_back({50.0, 20.0 + 3.0 * s});
  const Eigen::MatrixXd W = random_rhs(op, 3, 31);
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  Eigen::MatrixXd C(3, S);
  for (Eigen::Index j = 0; j < S; ++j)
    for (Eigen::Index i = 0; i < 3; ++i) C(i, j) = u(rng);
  const Eigen::MatrixXd B = W * C;
  SolverOptions o = forced(Preconditioner::cholesky);
  o.rtol = 1e-11;
  o.max_factorizations = 0;  // every scenario through CG
  BatchedSolver solver(op, o);
  Eigen::MatrixXd X = Eigen::MatrixXd::Zero(B.rows(), S);
  const auto info = solver.solve(theta, B, X);
  double first = 0, last = 0;
  for (int s = 0; s < S; ++s) {
    EXPECT_EQ(info[static_cast<size_t>(s)].method, "pcg-cholesky");
    EXPECT_LT(info[static_cast<size_t>(s)].residual, 1e-11) << s;
    if (s < 128) first += info[static_cast<size_t>(s)].iterations / 128.0;
    if (s >= 256) last += info[static_cast<size_t>(s)].iterations / 44.0;
  }
  RecordProperty("first_block_iterations", std::to_string(first));
  RecordProperty("last_block_iterations", std::to_string(last));
  EXPECT_LT(last, 0.5 * first) << "first block " << first << ", last " << last;
  for (int s : {0, 130, 299}) {
    BatchedSolver direct(op, forced(Preconditioner::cholesky));
    Eigen::MatrixXd x;
    direct.solve_shared(theta[static_cast<size_t>(s)], B.col(s), x);
    EXPECT_LT((X.col(s) - x.col(0)).norm(), 1e-9 * x.norm()) << "scenario " << s;
  }
}

TEST(Amg, PreconditionsAnOperatorVaryingBatch) {
  const Mesh m = generate_box(1, 1, 1, 14, 14, 14, 1);
  const AffineOperator op = heat_operator(m, "xmin", "xmax");
  std::vector<std::vector<double>> theta;
  for (int s = 0; s < 9; ++s) theta.push_back({50.0, 20.0 + 100.0 * s});
  const Eigen::MatrixXd B = random_rhs(op, 9, 5);
  SolverOptions o = forced(Preconditioner::amg);
  o.max_factorizations = 0;  // the iterative path for all nine
  BatchedSolver amg(op, o);
  Eigen::MatrixXd X = Eigen::MatrixXd::Zero(B.rows(), B.cols());
  const auto info = amg.solve(theta, B, X);
  EXPECT_EQ(amg.factorizations(), 0);
  BatchedSolver direct(op, forced(Preconditioner::cholesky));
  for (size_t s = 0; s < theta.size(); ++s) {
    EXPECT_EQ(info[s].method, "pcg-amg");
    EXPECT_LT(info[s].residual, 1e-11);
    Eigen::MatrixXd x;
    direct.solve_shared(theta[s], B.col(static_cast<Eigen::Index>(s)), x);
    EXPECT_LT((X.col(static_cast<Eigen::Index>(s)) - x).norm(), 1e-8 * x.norm()) << "scenario " << s;
  }
}

// The automatic choice: multigrid for large scalar operators of 3D meshes and few right-hand
// sides, the factor otherwise.
TEST(Amg, AutomaticChoiceFollowsTheMeasuredCrossover) {
  const Mesh m = generate_box(1, 1, 1, 36, 36, 36, 1);  // 50,653 nodes
  const AffineOperator op = heat_operator(m, "xmin", "xmax");
  SolverOptions o;
  o.dimension = 3;
  EXPECT_TRUE(BatchedSolver(op, o).uses_multigrid(true, 3));
  EXPECT_FALSE(BatchedSolver(op, o).uses_multigrid(true, 1000));  // many columns: the factor
  EXPECT_TRUE(BatchedSolver(op, o).uses_multigrid(false, 1000));  // CG preconditioning
  o.dimension = 2;
  EXPECT_FALSE(BatchedSolver(op, o).uses_multigrid(true, 3));
  o.dimension = 3;
  o.dofs_per_node = 3;
  EXPECT_FALSE(BatchedSolver(op, o).uses_multigrid(true, 3));
  o.dofs_per_node = 1;
  const Mesh small = generate_box(1, 1, 1, 28, 28, 28, 1);  // 24,389 nodes: the factor
  const AffineOperator small_op = heat_operator(small, "xmin", "xmax");
  EXPECT_FALSE(BatchedSolver(small_op, o).uses_multigrid(true, 3));
}

// A 3D thermal twin past the crossover: superposition's basis is solved by multigrid CG and
// the answers equal those of the factor.
TEST(Amg, ThreeDimensionalTwinSuperposesWithTheMultigridBasis) {
  const auto twin = test::heat_box_twin(36, 36, 36, 20, 0);
  const FemModel model(twin);
  const auto sc = test::random_scenarios(twin, {}, 16, 3);
  BatchOptions automatic;
  automatic.solver.rtol = 1e-12;
  BatchOptions direct = automatic;
  direct.solver.preconditioner = Preconditioner::cholesky;
  const BatchResult a = solve_batch(model, sc, automatic), d = solve_batch(model, sc, direct);
  EXPECT_EQ(a.factorizations, 0);
  for (size_t s = 0; s < sc.size(); ++s) {
    EXPECT_EQ(a.scenarios[s].method, "superposition-amg");
    EXPECT_EQ(d.scenarios[s].method, "superposition-cholesky");
    EXPECT_GT(a.scenarios[s].iterations, 0);
    for (size_t o = 0; o < a.scenarios[s].outputs[0].size(); ++o)
      EXPECT_NEAR(a.scenarios[s].outputs[0][o], d.scenarios[s].outputs[0][o],
                  1e-9 * std::max(1.0, std::abs(d.scenarios[s].outputs[0][o])));
  }
}

// The multi-column product of the residual checks: each column against its own theta, in
// groups of columns (11: a full group of 8 and a partial one), Dirichlet rows as identity, above
// and below the size from which row blocks go to the host threads; and every column against one
// theta (the combined-values path). Reference: Eigen's sparse product with the combined
// operator (combine(): terms summed, 1 on the Dirichlet diagonal), to 1e-14.
TEST(AffineOperator, ApplyColumnsEqualsTheCombinedOperatorsProduct) {
  for (int cells : {4, 24})
    for (bool shared : {false, true}) {
      const Mesh m = generate_box(1, 1, 1, cells, cells, cells, 1);
      const AffineOperator op = heat_operator(m, "xmin", "xmax");
      const Eigen::MatrixXd X = random_rhs(op, 11, 9);
      std::vector<std::vector<double>> theta;
      std::vector<const double*> th, x;
      Eigen::MatrixXd Y(X.rows(), X.cols());
      std::vector<double*> y;
      for (Eigen::Index j = 0; j < X.cols(); ++j)
        theta.push_back(shared ? std::vector<double>{3.0, 40.0}
                               : std::vector<double>{1.0 + static_cast<double>(j), 10.0 * static_cast<double>(j)});
      for (Eigen::Index j = 0; j < X.cols(); ++j) {
        th.push_back(theta[static_cast<size_t>(j)].data());
        x.push_back(X.col(j).data());
        y.push_back(Y.col(j).data());
      }
      op.apply_columns(th.size(), th.data(), x.data(), y.data());
      const CsrPattern& p = op.pattern();
      for (Eigen::Index j = 0; j < X.cols(); ++j) {
        const std::vector<double> v = op.combine(th[static_cast<size_t>(j)]);
        const Eigen::Map<const Eigen::SparseMatrix<double, Eigen::RowMajor, int>> A(
            p.rows, p.cols, static_cast<Eigen::Index>(p.nnz()), p.row_ptr.data(), p.col.data(), v.data());
        const Eigen::VectorXd ref = A * X.col(j);
        EXPECT_LT((Y.col(j) - ref).norm(), 1e-14 * ref.norm()) << cells << " cells, column " << j << (shared ? ", shared" : "");
      }
    }
}

// The history and lifting product: the free rows of the operator before elimination,
// y_f = A_ff x_f + A_fD x_D, y_D = 0, for 11 columns with their own theta or one shared theta.
// Reference: the same terms assembled without Dirichlet rows (AffineOperator with none), its
// rows restricted to the free ones; 1e-14.
TEST(AffineOperator, FreeRowsColumnsEqualTheUneliminatedOperatorsFreeRows) {
  const Mesh m = generate_box(1, 1, 1, 6, 6, 6, 1);
  const AffineOperator op = heat_operator(m, "xmin", "xmax");
  const AffineOperator full(op.pattern(), [&] {
    std::vector<std::vector<double>> terms(2, std::vector<double>(op.pattern().nnz(), 0.0));
    add_stiffness(m, op.pattern(), -1, 1.0, terms[0].data());
    add_boundary_mass(m, op.pattern(), m.boundary_index("xmax"), 1.0, terms[1].data());
    return terms;
  }(), {});
  for (bool shared : {false, true}) {
    const Eigen::MatrixXd X = random_rhs(op, 11, 19);
    std::vector<std::vector<double>> theta;
    for (int j = 0; j < 11; ++j) theta.push_back(shared ? std::vector<double>{2.0, 7.0} : std::vector<double>{1.0 + j, 3.0 * j});
    std::vector<const double*> th, x;
    std::vector<double*> y;
    Eigen::MatrixXd Y(X.rows(), X.cols());
    for (Eigen::Index j = 0; j < 11; ++j) {
      th.push_back(theta[static_cast<size_t>(j)].data());
      x.push_back(X.col(j).data());
      y.push_back(Y.col(j).data());
    }
    op.apply_free_rows_columns(11, th.data(), x.data(), y.data());
    for (Eigen::Index j = 0; j < 11; ++j) {
      Eigen::VectorXd ref(X.rows());
      full.apply(th[static_cast<size_t>(j)], X.col(j).data(), ref.data());
      for (int d : op.dirichlet_dofs()) ref[d] = 0.0;
      EXPECT_LT((Y.col(j) - ref).norm(), 1e-14 * ref.norm()) << "column " << j << (shared ? ", shared" : "");
    }
  }
}

}  // namespace
}  // namespace doppel
