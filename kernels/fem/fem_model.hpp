// The finite-element model of a twin: the mesh, checked against the twin definition, and the
// affine decomposition of its operators and loads in the parameters,
//     A(p) = sum_k theta_k(p) A_k,    b(p) = sum_m phi_m(p) (b_m + lift of g_m).
// Built once per twin; solving is done by scenario_batch.hpp.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "kernels/solvers/affine_operator.hpp"
#include "kernels/fem/mesh.hpp"
#include "kernels/fem/point_locator.hpp"
#include "spec/twin_spec.hpp"

namespace doppel {

using Params = std::vector<double>;
using Coefficient = std::function<double(const Params&)>;

// One right-hand-side term: a load vector (zero on constrained dofs) and/or unit boundary
// values on a set of constrained dofs, times a parameter-dependent coefficient.
// A prescribed dof's value is the sum over the terms naming it of coef(p) * its value there
// (1 unless dirichlet_value gives it): a boundary value that varies in space is one term per
// term of its field (spec/field.hpp), all on the same dofs.
struct RhsTerm {
  std::string name;                   // for diagnostics ("sources.domain.heat")
  std::vector<double> load;           // empty when the term only sets boundary values
  std::vector<int> dirichlet;         // dofs whose prescribed value is coef(p) * prescribed(i)
  std::vector<double> dirichlet_value;  // per entry of dirichlet; empty: 1 on each
  Coefficient coef;
  double prescribed(size_t i) const { return dirichlet_value.empty() ? 1.0 : dirichlet_value[i]; }
};

// Material properties of a region evaluated for one parameter vector.
struct RegionMaterial {
  double conductivity = 0, heat_capacity = 0;  // rho * c_p
  double youngs_modulus = 0, poisson_ratio = 0, lambda = 0, mu = 0;
  double expansion = 0, reference_temperature = 0;
  double thermal_stress_modulus = 0;  // beta: sigma_th = -beta * alpha * dT (per normal axis)
};

class FemModel {
 public:
  explicit FemModel(spec::TwinSpec twin);
  // For tests and benchmarks: a model on an already-built mesh (twin.mesh is ignored).
  FemModel(spec::TwinSpec twin, Mesh mesh);
  ~FemModel();

  const spec::TwinSpec& twin() const { return twin_; }
  const Mesh& mesh() const { return mesh_; }
  // What is legal but likely not meant (a mesh in disconnected parts), for the user to read.
  const std::vector<std::string>& warnings() const { return warnings_; }
  const PointLocator& locator() const { return *locator_; }
  bool thermal() const { return twin_.thermal; }
  bool mechanical() const { return twin_.mechanical.has_value(); }
  bool transient() const { return twin_.analysis.transient; }
  spec::Formulation formulation() const;

  // Twin region index for each mesh region, and material per mesh region.
  RegionMaterial material(int mesh_region, const Params& p) const;

  // --- heat -----------------------------------------------------------------------------
  // Terms: conductivity per region, convection per boundary, heat capacity per region
  // (transient only). theta = (a * k_r, a * h_b, c * rho c_r).
  const AffineOperator& thermal_operator() const { return *thermal_op_; }
  Params thermal_theta(const Params& p, double stiffness_scale = 1.0, double mass_scale = 0.0) const;
  const std::vector<RhsTerm>& thermal_rhs_terms() const { return thermal_rhs_; }

  // --- mechanics ------------------------------------------------------------------------
  // Terms: lambda and mu per region. Dofs: node * dim + component.
  const AffineOperator& mechanical_operator() const { return *mech_op_; }
  Params mechanical_theta(const Params& p) const;
  const std::vector<RhsTerm>& mechanical_rhs_terms() const { return mech_rhs_; }
  // Adds the thermal-strain load for temperature field T to b (constrained rows untouched).
  void add_thermal_strain_load(const Params& p, const double* T, double* b) const;
  // The same for a block: column s of B gets the load of column s of T at parameters p[s]
  // (B: mechanical dofs x S, T: nodes x S). One sparse product per region serves the block.
  void add_thermal_strain_loads(const std::vector<Params>& p, const Eigen::MatrixXd& T, Eigen::MatrixXd& B) const;

  // Right-hand side for one scenario: sum_m phi_m (load_m + g_m) - A_fD(theta) g.
  static void assemble_rhs(const AffineOperator& op, const std::vector<RhsTerm>& terms,
                           const Params& theta, const Params& p, double* out);
  // Right-hand side of a single term with unit coefficient (superposition basis).
  static void assemble_unit_rhs(const AffineOperator& op, const RhsTerm& term,
                                const Params& theta, double* out);
  // Prescribed boundary values g(p) written into x (other entries untouched).
  static void apply_dirichlet(const std::vector<RhsTerm>& terms, const Params& p, double* x);

 private:
  void build();
  void check_against_mesh();
  void build_thermal();
  void build_mechanical();
  // InvalidInput naming the field where its value leaves its physical range at one of `nodes`
  // for some parameters inside their declared ranges.
  // (At the times check_times() gives, for a value that depends on t.)
  void check_range(const spec::Field& f, const std::vector<int>& nodes) const;
  std::vector<double> check_times() const;
  // The terms prescribing field g on `dofs` (at `nodes`, one per dof).
  void add_prescribed_terms(const spec::Field& g, const std::vector<int>& dofs, const std::vector<int>& nodes,
                            std::vector<RhsTerm>& out) const;

  spec::TwinSpec twin_;
  Mesh mesh_;
  std::vector<std::string> warnings_;
  std::unique_ptr<PointLocator> locator_;
  std::vector<int> material_of_region_;  // per mesh region
  std::unique_ptr<AffineOperator> thermal_op_;
  std::vector<Coefficient> thermal_k_, thermal_h_, thermal_c_;
  std::vector<RhsTerm> thermal_rhs_;
  std::unique_ptr<AffineOperator> mech_op_;
  std::vector<RhsTerm> mech_rhs_;
  std::vector<std::vector<double>> coupling_;  // per mesh region (values on coupling_pattern_)
  CsrPattern coupling_pattern_;
  std::vector<std::vector<double>> coupling_ones_;  // C_r 1 per region
};

// The right-hand sides of a block of scenarios as one product, B = W Y: W holds each term's
// load vector; for a term that prescribes boundary values g_m, its lifting columns
// -A_k,fD 1_m for every operator term k and its value column (1 on its prescribed dofs); Y the
// coefficients phi_m(p_s), theta_sk phi_m(p_s) and phi_m(p_s). The lift of a scenario,
// A_fD(theta) g = sum_k,m theta_k phi_m A_k,fD 1_m, is linear in those products, so column s
// equals FemModel::assemble_rhs(theta_s, p_s) up to rounding, for operators that vary across
// the block as well (a dof prescribed by several terms takes the sum of their values, which is
// linear too).
class RhsBlock {
 public:
  RhsBlock(const AffineOperator& op, const std::vector<RhsTerm>& terms);
  // B (resized to n x S): column s = assemble_rhs(op, terms, theta[s], p[s]).
  void assemble(const std::vector<Params>& theta, const std::vector<Params>& p, Eigen::MatrixXd& B) const;
  // W (n x columns()), and the coefficients Y (columns() x S) of scenarios (theta_s, p_s).
  const Eigen::MatrixXd& W() const { return W_; }
  Eigen::Index columns() const { return W_.cols(); }
  Eigen::MatrixXd coefficients(const std::vector<Params>& theta, const std::vector<Params>& p) const;
  // Y's load rows += scale * phi_m(p_s): the loads at another time (Crank-Nicolson's midpoint).
  void add_load_coefficients(const std::vector<Params>& p, double scale, Eigen::MatrixXd& Y) const;

 private:
  const AffineOperator& op_;
  const std::vector<RhsTerm>& terms_;
  enum : int { kLoad = -1, kValue = -2 };
  struct Column {
    size_t term;
    int op_term;  // kLoad: the term's load; kValue: its prescribed values; k: its lift through operator term k
  };
  std::vector<Column> columns_;
  Eigen::MatrixXd W_;
};

// Load the mesh a twin names (generated or Gmsh).
Mesh build_mesh(const spec::TwinSpec& twin);

}  // namespace doppel
