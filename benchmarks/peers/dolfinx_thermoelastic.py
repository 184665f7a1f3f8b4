#!/usr/bin/env python3
"""doppel against dolfinx on a 3D P2 thermo-elastic solve, in one run (issue 14).

A 0.2 x 0.1 x 0.1 m aluminium block, N x N x N cells split into 6 tetrahedra along the 000-111
diagonal (the same Kuhn split in both), quadratic (P2) temperature and displacement on
straight-sided cells. Heat: conductivity 160, temperature T_base held on x = 0, convection
(h = 50, ambient 20) on x = L, a volumetric source q. Elasticity (3D, E = 70 GPa, nu = 0.33),
fixed on x = 0, loaded by the thermal strain alpha (T - 20), alpha = 2.3e-5. One scenario.
Outputs compared: T_max (over the nodes) and |u| at (L, 0.05, 0.05) (a mesh node for even N).

- doppel: `doppel solve TWIN --backend cpu` (wall clock of the whole command: mesh, assembly,
  both factorizations and solves, outputs incl. the von Mises recovery, JSON written); its
  stderr summary gives the bytes of its operators and factors.
- dolfinx (Debian's python3-dolfinx, PETSc; one process): assemble, MUMPS Cholesky for the
  heat problem, then for the elastic problem with the thermal-strain load, as a user would
  write it. Timed from mesh creation to the two outputs.

Peak resident memory of each side is measured on its own process (wait4), together with the
baseline of that process before any work (doppel --version; the Python interpreter with
dolfinx imported), so the memory of the solve itself can be told apart.

    /usr/bin/python3 benchmarks/peers/dolfinx_thermoelastic.py --doppel build/bin/doppel --cells 18 \
        --output benchmarks/results/cpu-...-dolfinx-thermoelastic.json
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

L, W = 0.2, 0.1
K, H, T_AMB, Q, T_BASE = 160.0, 50.0, 20.0, 1e5, 80.0
E, NU, ALPHA, T_REF = 7e10, 0.33, 2.3e-5, 20.0
TIP = (L, 0.05, 0.05)


def twin_json(cells):
    return {
        "name": "block_p2",
        "mesh": {"generate": "box", "size": [L, W, W], "cells": [cells] * 3, "order": 2},
        "physics": {"thermal": {}, "mechanical": {"formulation": "3d"}},
        "materials": {"al": {"conductivity": K, "youngs_modulus": E, "poisson_ratio": NU,
                             "thermal_expansion": ALPHA, "reference_temperature": T_REF}},
        "regions": {"domain": "al"},
        "boundaries": {"xmin": {"thermal": {"type": "temperature", "value": T_BASE}, "mechanical": {"type": "fixed"}},
                       "xmax": {"thermal": {"type": "convection", "h": H, "ambient": T_AMB}}},
        "sources": {"domain": {"heat": Q}},
        "outputs": {"T_max": {"quantity": "temperature", "reduce": "max", "region": "domain"},
                    "vm_max": {"quantity": "von_mises", "reduce": "max", "region": "domain"},
                    "u_tip": {"quantity": "displacement_magnitude", "at": list(TIP)}},
    }


def peak_mib(cmd):
    """Peak RSS of a command, from GNU time's %M (KiB)."""
    r = subprocess.run(["/usr/bin/time", "-f", "PEAK_KB %M"] + cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({r.returncode}): {r.stderr[-2000:]}")
    kb = int(re.findall(r"PEAK_KB (\d+)", r.stderr)[-1])
    return kb / 1024.0, r


def run_doppel(binary, cells, workdir):
    twin = os.path.join(workdir, "block.json")
    out = os.path.join(workdir, "answers.json")
    json.dump(twin_json(cells), open(twin, "w"))
    start = time.perf_counter()
    peak, r = peak_mib([binary, "solve", twin, "--backend", "cpu", "--output", out])
    seconds = time.perf_counter() - start
    doc = json.load(open(out))
    outputs = doc["scenarios"][0]["outputs"]
    summary = {}
    m = re.search(r"operators (\d+) MiB, factors and multigrid (\d+) MiB", r.stderr)
    if m:
        summary = {"operators_mib": int(m.group(1)), "factors_mib": int(m.group(2))}
    return seconds, peak, outputs, summary, doc["scenarios"][0]["solver"]


def dolfinx_solve(cells):
    from mpi4py import MPI
    from petsc4py import PETSc
    import numpy as np
    import dolfinx
    import ufl
    from dolfinx import fem, mesh
    from dolfinx.fem.petsc import LinearProblem

    start = time.perf_counter()
    msh = mesh.create_box(MPI.COMM_WORLD, [np.zeros(3), np.array([L, W, W])], [cells] * 3, mesh.CellType.tetrahedron)
    fdim = msh.topology.dim - 1
    right = mesh.locate_entities_boundary(msh, fdim, lambda x: np.isclose(x[0], L))
    tags = mesh.meshtags(msh, fdim, np.sort(right), np.ones(len(right), dtype=np.int32))
    ds = ufl.Measure("ds", domain=msh, subdomain_data=tags)
    mumps = {"ksp_type": "preonly", "pc_type": "cholesky", "pc_factor_mat_solver_type": "mumps"}

    V = fem.FunctionSpace(msh, ("Lagrange", 2))
    T, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    held = fem.locate_dofs_geometrical(V, lambda x: np.isclose(x[0], 0.0))
    bc_t = fem.dirichletbc(PETSc.ScalarType(T_BASE), held, V)
    a = K * ufl.inner(ufl.grad(T), ufl.grad(v)) * ufl.dx + H * T * v * ds(1)
    rhs = Q * v * ufl.dx + H * T_AMB * v * ds(1)
    Th = LinearProblem(a, rhs, bcs=[bc_t], petsc_options=mumps).solve()

    U = fem.VectorFunctionSpace(msh, ("Lagrange", 2))
    u, w = ufl.TrialFunction(U), ufl.TestFunction(U)
    mu = E / (2 * (1 + NU))
    lam = E * NU / ((1 + NU) * (1 - 2 * NU))
    eps = lambda z: ufl.sym(ufl.grad(z))
    sigma = lambda z: lam * ufl.tr(eps(z)) * ufl.Identity(3) + 2 * mu * eps(z)
    fixed = fem.locate_dofs_geometrical(U, lambda x: np.isclose(x[0], 0.0))
    bc_u = fem.dirichletbc(np.zeros(3, dtype=PETSc.ScalarType), fixed, U)
    a_u = ufl.inner(sigma(u), eps(w)) * ufl.dx
    l_u = (3 * lam + 2 * mu) * ALPHA * (Th - T_REF) * ufl.div(w) * ufl.dx
    uh = LinearProblem(a_u, l_u, bcs=[bc_u], petsc_options=mumps).solve()

    t_max = float(Th.x.array.max())
    coords = U.tabulate_dof_coordinates()
    tip = int(np.argmin(np.linalg.norm(coords - np.array(TIP), axis=1)))
    u_tip = float(np.linalg.norm(uh.x.array.reshape(-1, 3)[tip]))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "T_max": t_max, "u_tip": u_tip, "version": dolfinx.__version__,
            "temperature_dofs": V.dofmap.index_map.size_global,
            "displacement_dofs": 3 * U.dofmap.index_map.size_global}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--doppel", required=True)
    ap.add_argument("--cells", type=int, default=18)
    ap.add_argument("--repeats", type=int, default=2, help="each side's best of this many runs")
    ap.add_argument("--output", help="JSON result file")
    ap.add_argument("--peer-only", action="store_true", help=argparse.SUPPRESS)  # the dolfinx child
    ap.add_argument("--baseline-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.baseline_only:
        import dolfinx  # noqa: F401  (the interpreter with dolfinx loaded, nothing solved)
        return
    if args.peer_only:
        print(json.dumps(dolfinx_solve(args.cells)))
        return
    if not args.output:
        sys.exit("--output is required")
    if args.cells % 2:
        sys.exit("--cells must be even (the tip must be a mesh node)")
    me = [sys.executable, os.path.abspath(__file__), "--doppel", args.doppel, "--cells", str(args.cells)]
    with tempfile.TemporaryDirectory() as work:
        doppel_runs = [run_doppel(args.doppel, args.cells, work) for _ in range(args.repeats)]
    doppel_base, _ = peak_mib([args.doppel, "--version"])
    dolfinx_runs = []
    for _ in range(args.repeats):
        peak, r = peak_mib(me + ["--peer-only"])
        res = json.loads(r.stdout.strip().splitlines()[-1])
        res["peak_mib"] = peak
        dolfinx_runs.append(res)
    dolfinx_base, _ = peak_mib(me + ["--baseline-only"])
    best_d = min(doppel_runs, key=lambda r: r[0])
    best_x = min(dolfinx_runs, key=lambda r: r["seconds"])
    t_d, peak_d, out_d, mem_d, solver_d = best_d
    commit = os.environ.get("DOPPEL_COMMIT") or subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip() or "unknown"
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
    held = (mem_d.get("operators_mib", 0) + mem_d.get("factors_mib", 0)) or None
    doc = {
        "benchmark": "3D P2 thermo-elastic block (issue 14): doppel solve against dolfinx with MUMPS",
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "system": platform.platform()},
        "commit": commit, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "problem": {"cells": args.cells, "tetrahedra": 6 * args.cells ** 3, "order": 2,
                    "temperature_dofs": best_x["temperature_dofs"], "displacement_dofs": best_x["displacement_dofs"]},
        "doppel": {"seconds": t_d, "runs": [r[0] for r in doppel_runs], "peak_rss_mib": peak_d,
                   "baseline_rss_mib": doppel_base, "solver": solver_d, **mem_d,
                   "peak_over_operators_and_factors": peak_d / held if held else None,
                   "peak_less_baseline_over_operators_and_factors": (peak_d - doppel_base) / held if held else None,
                   "threads": "all cores (host_threads)"},
        "dolfinx": {"version": best_x["version"], "seconds": best_x["seconds"],
                    "runs": [r["seconds"] for r in dolfinx_runs], "peak_rss_mib": best_x["peak_mib"],
                    "baseline_rss_mib": dolfinx_base, "method": "MUMPS Cholesky for heat, then for elasticity",
                    "processes": 1},
        "doppel_time_over_dolfinx": t_d / best_x["seconds"],
        "answers": {"doppel": {"T_max": out_d["T_max"], "u_tip": out_d["u_tip"], "vm_max": out_d["vm_max"]},
                    "dolfinx": {"T_max": best_x["T_max"], "u_tip": best_x["u_tip"]},
                    "relative_difference": {
                        "T_max": abs(out_d["T_max"] - best_x["T_max"]) / abs(best_x["T_max"]),
                        "u_tip": abs(out_d["u_tip"] - best_x["u_tip"]) / abs(best_x["u_tip"])}},
    }
    with open(args.output, "w") as f:
        json.dump(doc, f, indent=2)
    print(f"doppel {t_d:.2f} s (peak {peak_d:.0f} MiB, baseline {doppel_base:.0f}; operators+factors {held} MiB), "
          f"dolfinx {best_x['seconds']:.2f} s (peak {best_x['peak_mib']:.0f} MiB, baseline {dolfinx_base:.0f}): "
          f"doppel time {t_d / best_x['seconds']:.2f}x dolfinx; T_max differ by "
          f"{doc['answers']['relative_difference']['T_max']:.1e}, u_tip by {doc['answers']['relative_difference']['u_tip']:.1e}")


if __name__ == "__main__":
    main()
