// The reduced model's parts against their full-order definitions: POD in the mass inner
// product, the residual estimate's Gram form against one explicit operator application, the
// output map against the output evaluator on reconstructed fields, npy round trips.
// Mesh: 8 x 12 P2 rectangle (tests/surrogate_twins.hpp).
#include <Eigen/Dense>
#include <filesystem>
#include <fstream>
#include <random>

#include "kernels/io/npy.hpp"
#include "kernels/solvers/scenario_batch.hpp"
#include "spec/errors.hpp"
#include "kernels/fem/outputs.hpp"
#include "surrogate/galerkin.hpp"
#include "surrogate/output_map.hpp"
#include "surrogate/pod.hpp"
#include "surrogate/reduced_space.hpp"
#include "surrogate/residual_estimator.hpp"
#include "tests/surrogate_twins.hpp"
#include "tests/test_util.hpp"

namespace doppel {
namespace {

struct Snapshots {
  std::vector<Params> p;
  Eigen::MatrixXd T, u;
};

Snapshots solve_snapshots(const FemModel& model, int n, unsigned seed) {
  auto scen = test::random_scenarios(model.twin(), {}, n, seed);
  Snapshots s;
  const Eigen::Index nT = static_cast<Eigen::Index>(model.mesh().num_nodes());
  s.T.resize(nT, n);
  s.u.resize(nT * model.mesh().dim, n);
  BatchOptions o;
  o.field_sink = [&](size_t k, size_t, const double* T, const double* u) {
    std::copy(T, T + nT, s.T.col(static_cast<Eigen::Index>(k)).data());
    std::copy(u, u + s.u.rows(), s.u.col(static_cast<Eigen::Index>(k)).data());
  };
  solve_batch(model, scen, o);
  for (auto& sc : scen) s.p.push_back(sc.parameters);
  return s;
}

class ReducedModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = new FemModel(test::twin_from(test::surrogate_plate_json()));
    snaps_ = new Snapshots(solve_snapshots(*model_, 40, 3));
    M_ = new MassMatrix(model_->mesh());
  }
  static void TearDownTestSuite() {
    delete M_;
    delete snaps_;
    delete model_;
  }
  ReducedSpace thermal_space(int max_rank = 40) const {
    ReducedSpace s(model_->thermal_operator(), model_->thermal_rhs_terms(), 1);
    Eigen::MatrixXd D = snaps_->T;
    for (Eigen::Index j = 0; j < D.cols(); ++j) s.remove_lift(snaps_->p[static_cast<size_t>(j)], D.col(j).data());
    PodOptions o;
    o.max_rank = max_rank;
    s.set_basis(compute_pod(D, *M_, 1, o));
    return s;
  }
  static FemModel* model_;
  static Snapshots* snaps_;
  static MassMatrix* M_;
};
FemModel* ReducedModel::model_ = nullptr;
Snapshots* ReducedModel::snaps_ = nullptr;
MassMatrix* ReducedModel::M_ = nullptr;

TEST_F(ReducedModel, MassMatrixIntegratesTheArea) {
  std::vector<double> one(model_->mesh().num_nodes(), 1.0);
  EXPECT_NEAR(M_->inner(one.data(), one.data(), 1), 0.4 * 0.6, 1e-12);  // closed form: area
}

TEST_F(ReducedModel, PodModesAreMassOrthonormalAndReproduceTheSnapshots) {
  const ReducedSpace s = thermal_space();
  const PodBasis& b = s.basis();
  ASSERT_GE(b.rank(), 2);
  const Eigen::MatrixXd G = b.modes.transpose() * M_->apply(b.modes, 1);
  EXPECT_LT((G - Eigen::MatrixXd::Identity(b.rank(), b.rank())).norm(), 1e-10);
  // Three parameters, the field affine in T0 and q for fixed h: the snapshots span a
  // low-dimensional space, and every snapshot is reconstructed to the captured energy.
  for (size_t k = 0; k < 5; ++k) {
    Eigen::VectorXd x = snaps_->T.col(static_cast<Eigen::Index>(k));
    s.remove_lift(snaps_->p[k], x.data());
    const Eigen::VectorXd c = b.project(*M_, x.data());
    const Eigen::VectorXd rec = s.reconstruct(snaps_->p[k], c.data());
    const Eigen::VectorXd ref = snaps_->T.col(static_cast<Eigen::Index>(k));
    const Eigen::VectorXd e = rec - ref;
    EXPECT_LT(std::sqrt(M_->inner(e.data(), e.data(), 1) / M_->inner(ref.data(), ref.data(), 1)), 1e-4);
  }
  // Dirichlet dofs carry exactly the lift.
  for (size_t i = 0; i < s.lift_terms().size(); ++i) {
    const Eigen::VectorXd g = s.lift_vector(i);
    for (Eigen::Index d = 0; d < g.size(); ++d) {
      if (g(d) != 0) {
        EXPECT_NEAR(b.modes.row(d).norm() + std::abs(b.mean(d)), 0.0, 1e-12);
      }
    }
  }
}

// More snapshots than unknowns (long transient runs on a small mesh) takes the nc x nc
// generalized problem instead of the method of snapshots. Reference: the eigenvalues of
// D^T M D of the centred snapshots (dense, computed here) and its modes D psi / sqrt(lambda);
// snapshots with a known spread of energies on the 8 x 12 P2 mesh, 1 and 2 components;
// tolerance 1e-8 relative (eigenvalues) and on the projector onto the modes.
TEST_F(ReducedModel, PodOfMoreSnapshotsThanUnknownsEqualsTheMethodOfSnapshots) {
  std::mt19937 rng(5);
  std::normal_distribution<double> g;
  for (int components : {1, 2}) {
    const Eigen::Index nc = static_cast<Eigen::Index>(M_->nodes()) * components, N = nc + 150;
    Eigen::MatrixXd D = Eigen::MatrixXd::Zero(nc, N);
    for (int k = 0; k < 8; ++k) {  // 8 directions, energies 10^-k apart
      Eigen::VectorXd f(nc), w(N);
      for (Eigen::Index i = 0; i < nc; ++i) f(i) = g(rng);
      for (Eigen::Index j = 0; j < N; ++j) w(j) = g(rng);
      D += std::pow(10.0, -0.5 * k) * f * w.transpose();
    }
    PodOptions o;
    o.max_rank = 6;
    o.energy = 1.0;
    const PodBasis b = compute_pod(D, *M_, components, o);
    ASSERT_EQ(b.rank(), 6);
    Eigen::MatrixXd Dc = D;
    Dc.colwise() -= Eigen::VectorXd(D.rowwise().mean());
    const Eigen::MatrixXd C = Dc.transpose() * M_->apply(Dc, components);
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(0.5 * (C + C.transpose()));
    const Eigen::VectorXd lam = eig.eigenvalues().reverse();
    for (int j = 0; j < 6; ++j)
      EXPECT_NEAR(b.eigenvalues[static_cast<size_t>(j)], lam(j), 1e-8 * lam(0)) << "components " << components << ", mode " << j;
    const Eigen::MatrixXd psi = eig.eigenvectors().rowwise().reverse();
    Eigen::MatrixXd ref(nc, 6);
    for (int j = 0; j < 6; ++j) ref.col(j) = Dc * psi.col(j) / std::sqrt(lam(j));
    const Eigen::MatrixXd Mb = M_->apply(b.modes, components);
    EXPECT_LT((b.modes * (b.modes.transpose() * Mb) - ref * (ref.transpose() * Mb)).norm(), 1e-8 * b.modes.norm());
    EXPECT_LT((b.modes.transpose() * Mb - Eigen::MatrixXd::Identity(6, 6)).norm(), 1e-10);
  }
}

TEST_F(ReducedModel, PodRankIsCapped) {
  EXPECT_EQ(thermal_space(2).rank(), 2);
}

TEST_F(ReducedModel, ResidualGramFormEqualsOneOperatorApplication) {
  const ReducedSpace s = thermal_space(4);  // truncated: a visible residual
  const Params p0 = model_->twin().default_parameters();
  ResidualEstimator est(s, model_->thermal_theta(p0), *M_);
  std::mt19937 rng(5);
  std::normal_distribution<double> n01;
  for (size_t k = 0; k < 6; ++k) {
    const Params& p = snaps_->p[k];
    std::vector<double> c(static_cast<size_t>(s.rank()));
    for (double& v : c) v = 10 * n01(rng);
    std::vector<double> psi(est.size());
    const Params theta = model_->thermal_theta(p);
    est.features(theta, p, c.data(), psi.data());
    const Eigen::VectorXd x = s.reconstruct(p, c.data());
    const double fast = est.norm(psi.data()), ref = est.explicit_norm(theta, p, x.data());
    EXPECT_NEAR(fast, ref, 1e-8 * ref) << "scenario " << k;
  }
}

TEST_F(ReducedModel, EstimateIsTheExactErrorAtNominalParameters) {
  // With theta = theta0 the preconditioned residual is the error itself: eta = ||T - x||_M.
  const ReducedSpace s = thermal_space(3);
  const Params p0 = model_->twin().default_parameters();
  ResidualEstimator est(s, model_->thermal_theta(p0), *M_);
  spec::Scenario sc;
  sc.parameters = p0;
  Eigen::VectorXd T(static_cast<Eigen::Index>(model_->mesh().num_nodes()));
  BatchOptions o;
  o.field_sink = [&](size_t, size_t, const double* t, const double*) { std::copy(t, t + T.size(), T.data()); };
  solve_batch(*model_, {sc}, o);
  Eigen::VectorXd d = T;
  s.remove_lift(p0, d.data());
  const Eigen::VectorXd c = s.basis().project(*M_, d.data());
  const Eigen::VectorXd x = s.reconstruct(p0, c.data());
  const Eigen::VectorXd e = T - x;
  const double truth = std::sqrt(M_->inner(e.data(), e.data(), 1));
  ASSERT_GT(truth, 0);
  std::vector<double> psi(est.size());
  est.features(model_->thermal_theta(p0), p0, c.data(), psi.data());
  EXPECT_NEAR(est.norm(psi.data()), truth, 1e-6 * truth);
}

TEST_F(ReducedModel, OutputMapEqualsTheEvaluatorOnReconstructedFields) {
  const ReducedSpace sT = thermal_space(6);
  ReducedSpace su(model_->mechanical_operator(), model_->mechanical_rhs_terms(), 2);
  Eigen::MatrixXd D = snaps_->u;
  su.set_basis(compute_pod(D, *M_, 2));
  const OutputEvaluator ev = OutputEvaluator::for_outputs(*model_);
  ASSERT_TRUE(outputs_linear_in_fields(*model_, ev));
  const OutputMap map(*model_, ev, &sT, &su);
  std::mt19937 rng(9);
  std::normal_distribution<double> n01;
  for (size_t k = 0; k < 4; ++k) {
    const Params& p = snaps_->p[k];
    std::vector<double> cT(static_cast<size_t>(sT.rank())), cu(static_cast<size_t>(su.rank()));
    for (double& v : cT) v = n01(rng);
    for (double& v : cu) v = 1e-6 * n01(rng);
    std::vector<double> z(OutputMap::z_size(&sT, &su));
    OutputMap::z(&sT, &su, p, cT.data(), cu.data(), z.data());
    const Eigen::VectorXd comps = map.matrix() * Eigen::Map<const Eigen::VectorXd>(z.data(), static_cast<Eigen::Index>(z.size()));
    const Eigen::VectorXd T = sT.reconstruct(p, cT.data()), u = su.reconstruct(p, cu.data());
    const std::vector<double> want = ev.evaluate(p, T.data(), u.data());
    const std::vector<double> got = ev.reduce(comps.data());
    for (size_t o = 0; o < want.size(); ++o) EXPECT_NEAR(got[o], want[o], 1e-9 * std::max(1.0, std::abs(want[o]))) << "output " << o;
  }
}

TEST_F(ReducedModel, HotSpotSitesKeepTheExtremeOfEverySnapshot) {
  OutputEvaluator ev = OutputEvaluator::for_outputs(*model_);
  std::vector<std::vector<double>> comps;
  std::vector<std::vector<double>> want;
  for (size_t k = 0; k < snaps_->p.size(); ++k) {
    comps.push_back(ev.site_components(snaps_->p[k], snaps_->T.col(static_cast<Eigen::Index>(k)).data(),
                                       snaps_->u.col(static_cast<Eigen::Index>(k)).data()));
    want.push_back(ev.reduce(comps.back().data()));
  }
  const auto keep = select_hot_spots(ev, comps);
  size_t restricted = 0;
  for (size_t o = 0; o < keep.size(); ++o) {
    if (keep[o].empty()) continue;
    EXPECT_LT(keep[o].size(), ev.num_sites(o));
    ev.restrict_sites(o, keep[o]);
    ++restricted;
  }
  EXPECT_EQ(restricted, 2u);  // T_max and vm_max
  for (size_t k = 0; k < snaps_->p.size(); ++k) {
    const std::vector<double> got = ev.evaluate(snaps_->p[k], snaps_->T.col(static_cast<Eigen::Index>(k)).data(),
                                                snaps_->u.col(static_cast<Eigen::Index>(k)).data());
    for (size_t o = 0; o < got.size(); ++o) EXPECT_DOUBLE_EQ(got[o], want[k][o]);
  }
}

TEST(Npy, RoundTripsEveryType) {
  const auto dir = std::filesystem::temp_directory_path() / "doppel_npy";
  std::filesystem::create_directories(dir);
  const std::vector<double> d{1.5, -2.25, 3e300, 0.0, 7, 8};
  const std::vector<float> f{1.5f, -2.25f};
  const std::vector<int> i{1, -2, 3};
  write_npy((dir / "d.npy").string(), d.data(), {2, 3});
  write_npy((dir / "f.npy").string(), f.data(), {2});
  write_npy((dir / "i.npy").string(), i.data(), {3});
  const NpyArray a = read_npy((dir / "d.npy").string());
  EXPECT_EQ(a.shape, (std::vector<size_t>{2, 3}));
  EXPECT_EQ(a.values, d);
  EXPECT_EQ(read_npy((dir / "f.npy").string()).values, (std::vector<double>{1.5, -2.25}));
  EXPECT_EQ(read_npy((dir / "i.npy").string()).values, (std::vector<double>{1, -2, 3}));
  std::ofstream(dir / "bad.npy") << "not numpy";
  EXPECT_THROW(read_npy((dir / "bad.npy").string()), InvalidInput);
  EXPECT_THROW(read_npy((dir / "missing.npy").string()), InvalidInput);
}

}  // namespace
}  // namespace doppel

namespace doppel {
namespace {

// A temperature basis spanning every free dof; returns their number.
size_t set_complete_basis(const FemModel& model, const MassMatrix& M, ReducedSpace& space) {
  const Eigen::Index n = static_cast<Eigen::Index>(model.mesh().num_nodes());
  std::vector<int> free;
  for (int d = 0; d < n; ++d)
    if (!model.thermal_operator().is_dirichlet(d)) free.push_back(d);
  Eigen::MatrixXd D = Eigen::MatrixXd::Zero(n, static_cast<Eigen::Index>(free.size()) + 1);
  for (size_t j = 0; j < free.size(); ++j) D(free[j], static_cast<Eigen::Index>(j)) = 1.0;
  PodOptions o;
  o.energy = 1.0;
  o.max_rank = 1000;
  space.set_basis(compute_pod(D, M, 1, o));
  return free.size();
}

// With a basis spanning every free dof the Galerkin model is the FE time step itself: same
// outputs to round-off for each scheme, with a schedule, and a zero residual estimate.
class GalerkinScheme : public ::testing::TestWithParam<std::string> {};

// The same holds with every boundary value and the source varying in space (the lifts carry
// the prescribed values per dof, convection one term per pair of h and ambient terms), and in
// time as well (time factors read at each step's clock).
TEST_P(GalerkinScheme, CompleteBasisReproducesTheFiniteElementRun) {
  for (int variant : {0, 1, 2}) {
  SCOPED_TRACE(variant == 0 ? "uniform loads" : variant == 1 ? "loads varying in space" : "loads varying in space and time");
  FemModel model(test::twin_from(variant == 2 ? test::surrogate_transient_in_time_json(GetParam())
                                              : test::surrogate_transient_json(GetParam(), variant == 1)));
  if (variant == 2) ASSERT_EQ(model.twin().time_varying.size(), 4u);
  MassMatrix M(model.mesh());
  ReducedSpace space(model.thermal_operator(), model.thermal_rhs_terms(), 1);
  const size_t free = set_complete_basis(model, M, space);
  ASSERT_EQ(space.rank(), static_cast<int>(free));
  ResidualEstimator est(space, GalerkinHeat::nominal_theta(model), M);
  GalerkinHeat rom(model, space, M);
  rom.set_estimator(&est);
  spec::Scenario sc;
  sc.parameters = model.twin().default_parameters();
  spec::Schedule sched;
  sched.parameter = model.twin().parameter_index("h");
  sched.points = {{0, 300}, {100, 1500}, {200, 800}};
  sc.schedules.push_back(sched);
  spec::Schedule wall;
  wall.parameter = model.twin().parameter_index("T0");
  wall.points = {{0, 20}, {150, 35}};
  sc.schedules.push_back(wall);
  const BatchResult fe = solve_batch(model, {sc});
  const ReducedTrajectory tr = rom.run(sc);
  const OutputEvaluator ev = OutputEvaluator::for_outputs(model);
  ASSERT_EQ(tr.c.size(), fe.times.size());
  for (size_t t = 0; t < tr.c.size(); ++t) {
    Eigen::VectorXd T = space.basis().mean + space.basis().modes * tr.c[t];
    for (size_t i = 0; i < space.lift_terms().size(); ++i) T += tr.phi[t][i] * space.lift_vector(i);
    const std::vector<double> got = ev.evaluate(tr.p[t], T.data(), nullptr);
    for (size_t k = 0; k < got.size(); ++k)
      EXPECT_NEAR(got[k], fe.scenarios[0].outputs[t][k], 1e-8 * std::max(1.0, std::abs(fe.scenarios[0].outputs[t][k])))
          << GetParam() << " time " << t << " output " << k;
    // Zero up to the Gram form's round-off floor (about sqrt(machine epsilon) of the field per
    // step, accumulated over 60 steps).
    EXPECT_LT(tr.estimate[t], 1e-6) << GetParam() << " time " << t;
  }
  }
}

// Windows (the live twin's steps): from any state, over a duration that is not a multiple of
// the time step, the complete-basis Galerkin window equals the FE window (kernels'
// BatchOptions::window) to round-off, for each scheme; and projecting a field then
// reconstructing it is the identity on the free dofs.
TEST_P(GalerkinScheme, AWindowFromAnyStateReproducesTheFiniteElementWindow) {
  FemModel model(test::twin_from(test::surrogate_transient_json(GetParam())));
  MassMatrix M(model.mesh());
  ReducedSpace space(model.thermal_operator(), model.thermal_rhs_terms(), 1);
  const Eigen::Index n = static_cast<Eigen::Index>(model.mesh().num_nodes());
  ASSERT_GT(set_complete_basis(model, M, space), 0u);
  GalerkinHeat rom(model, space, M);
  spec::Scenario sc;
  sc.parameters = model.twin().default_parameters();
  sc.parameters[static_cast<size_t>(model.twin().parameter_index("h"))] = 1300;
  sc.parameters[static_cast<size_t>(model.twin().parameter_index("T0"))] = 30;
  // A start that no run from the initial state passes through: smooth, with the wall value of T0.
  std::vector<double> start(static_cast<size_t>(n));
  for (Eigen::Index i = 0; i < n; ++i) {
    const double x = model.mesh().coords[3 * static_cast<size_t>(i)], y = model.mesh().coords[3 * static_cast<size_t>(i) + 1];
    start[static_cast<size_t>(i)] = 200 + 300 * x / 0.1 + 50 * std::sin(31 * y);
  }
  FemModel::apply_dirichlet(model.thermal_rhs_terms(), sc.parameters, start.data());
  const Eigen::VectorXd c = rom.project(sc.parameters, start.data());
  const Eigen::VectorXd back = space.reconstruct(sc.parameters, c.data());
  for (Eigen::Index i = 0; i < n; ++i) EXPECT_NEAR(back(i), start[static_cast<size_t>(i)], 1e-9 * 500);
  const double duration = 37;  // 8 steps of 4.625 s (time_step 5)
  BatchOptions opt;
  opt.window = BatchOptions::TransientWindow{duration, [&](size_t, double* T) { std::copy(start.begin(), start.end(), T); }};
  std::vector<double> fe_end;
  opt.field_sink = [&](size_t, size_t, const double* T, const double*) { fe_end.assign(T, T + n); };
  const BatchResult fe = solve_batch(model, {sc}, opt);
  ASSERT_EQ(fe.times, std::vector<double>{duration});
  ASSERT_EQ(fe_end.size(), static_cast<size_t>(n));
  const ReducedTrajectory tr = rom.run(sc, c, duration);
  ASSERT_EQ(tr.c.size(), 1u);
  const Eigen::VectorXd T = space.reconstruct(sc.parameters, tr.c[0].data());
  double diff = 0, scale = 0;
  for (Eigen::Index i = 0; i < n; ++i) {
    diff = std::max(diff, std::abs(T(i) - fe_end[static_cast<size_t>(i)]));
    scale = std::max(scale, std::abs(fe_end[static_cast<size_t>(i)] - start[static_cast<size_t>(i)]));
  }
  EXPECT_GT(scale, 1.0) << "the window must change the field";
  EXPECT_LT(diff, 1e-8 * 500) << GetParam();
}

// Window step counts, and a long gap: a window of 10^6 s (far beyond the time scale of about
// 60 s) takes kMaxWindowSteps implicit steps and ends at the steady solution (reference: the
// steady FE solve of the same twin), for the L-stable schemes.
TEST(TransientWindow, StepsAreCappedAndALongGapEndsAtTheSteadyState) {
  EXPECT_EQ(window_steps(37, 5), 8);
  EXPECT_EQ(window_steps(50, 5), 10);
  EXPECT_EQ(window_steps(0.1, 5), 1);
  EXPECT_EQ(window_steps(1e9, 5), kMaxWindowSteps);
  EXPECT_THROW(window_steps(0, 5), InvalidInput);
  for (const std::string scheme : {"backward_euler", "bdf2"}) {
    FemModel model(test::twin_from(test::surrogate_transient_json(scheme)));
    std::string steady_json = test::surrogate_transient_json(scheme);
    const size_t a = steady_json.find("\"analysis\"");
    steady_json.replace(a, steady_json.find('}', a) + 1 - a, R"("analysis": {"type": "steady"})");
    FemModel steady(test::twin_from(steady_json));
    spec::Scenario sc;
    sc.parameters = model.twin().default_parameters();
    sc.parameters[static_cast<size_t>(model.twin().parameter_index("q"))] = 3e5;
    BatchOptions opt;
    opt.window = BatchOptions::TransientWindow{1e6, {}};
    const auto gap = solve_batch(model, {sc}, opt).scenarios[0].outputs[0];
    const auto reference = solve_batch(steady, {sc}).scenarios[0].outputs[0];
    ASSERT_EQ(gap.size(), reference.size());
    for (size_t k = 0; k < gap.size(); ++k)
      EXPECT_NEAR(gap[k], reference[k], 1e-6 * std::max(1.0, std::abs(reference[k]))) << scheme << " output " << k;
  }
}

INSTANTIATE_TEST_SUITE_P(Schemes, GalerkinScheme, ::testing::Values("backward_euler", "bdf2", "crank_nicolson"));

}  // namespace
}  // namespace doppel
