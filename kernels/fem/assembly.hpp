// Finite-element integrals on P1/P2 simplices. Each function assembles one affine term
// (a matrix on a shared CsrPattern, or a load vector) for one region or one boundary; the
// model multiplies terms by their parameter-dependent coefficients.
//
// Scalar (thermal) dofs: one per node. Vector (mechanical) dofs: node * dim + component.
#pragma once

#include <functional>
#include <vector>

#include "kernels/fem/element_matrices.hpp"
#include "kernels/fem/mesh.hpp"
#include "kernels/fem/sparse.hpp"

namespace doppel {

using PointFunction = std::function<double(const double* x)>;
// Boundary integrand: x (point), n (unit outward normal).
using BoundaryFunction = std::function<double(const double* x, const double* n)>;

// One operator term (element_matrices.hpp) over the cells of region `index` (all cells when
// index < 0) or over the facets of boundary `index` (on_facets), times `scale`, added into
// `values`. The functions below are the named cases.
void add_term(const Mesh& m, const CsrPattern& p, TermKind kind, bool on_facets, int index,
              double scale, double* values);

// Scalar problems.
//   conductivity:  int_region grad N_i . grad N_j
//   mass:          int_region N_i N_j
//   boundary mass: int_boundary N_i N_j     (convection)
// Values are added into `values` (size pattern.nnz()).
void add_stiffness(const Mesh& m, const CsrPattern& p, int region, double scale, double* values);
void add_mass(const Mesh& m, const CsrPattern& p, int region, double scale, double* values);
void add_boundary_mass(const Mesh& m, const CsrPattern& p, int boundary, double scale,
                       double* values);
// int_boundary w(x) N_i N_j     (convection with a coefficient that varies along the boundary)
void add_weighted_boundary_mass(const Mesh& m, const CsrPattern& p, int boundary, const PointFunction& w,
                                double* values);
// int_region f N_i  (region < 0: all cells)
void add_region_load(const Mesh& m, int region, const PointFunction& f, double* b);
// int_boundary g N_i
void add_boundary_load(const Mesh& m, int boundary, const BoundaryFunction& g, double* b);

// Linear elasticity with D = lambda * m m^T + mu * diag(2.., 1..):
//   lambda term: int div(v) div(u); mu term: int 2 eps(v) : eps(u).
// Plane problems integrate per unit thickness times `scale`.
void add_elastic_lambda(const Mesh& m, const CsrPattern& p, int region, double scale,
                        double* values);
void add_elastic_mu(const Mesh& m, const CsrPattern& p, int region, double scale, double* values);
// Thermal coupling C[(i,a), j] = int d_a N_i N_j  (rows: vector dofs, columns: nodes), so the
// thermal-strain load is beta * alpha * (C T - T_ref * C 1).
void add_thermal_coupling(const Mesh& m, const CsrPattern& p, int region, double scale,
                          double* values);
// int_region f_a N_i for component a (vector dofs).
void add_body_force(const Mesh& m, int region, int component, const PointFunction& f, double* b);
// int_boundary g_a N_i for component a (vector dofs); g sees the outward normal.
void add_boundary_vector_load(const Mesh& m, int boundary, int component,
                              const BoundaryFunction& g, double* b);

// Integrals of shape functions over a region: w_i = int_region N_i (sum = region measure).
std::vector<double> node_weights(const Mesh& m, int region);
double region_measure(const Mesh& m, int region);

// The quadrature degree used for an integrand of polynomial degree `d` on this mesh (curved
// P2 cells get two more degrees, capped at the highest rule).
int quadrature_degree(const Mesh& m, int d);

}  // namespace doppel
