#!/usr/bin/env python3
"""doppel against dolfinx on the same problem, in one run: the 10^5-node box of issue 14.

Unit cube, N^3 cells split into 6 P1 tetrahedra along the 000-111 diagonal (the same Kuhn split
in both), conductivity 50, temperature Tb held on x = 0, convection h to Tamb on x = 1, a
volumetric source q. Outputs: the probe T(1, 0.5, 0.5) (a mesh node for even N) and T_max over
the domain. Two regimes, each with its own scenarios:

- `loads` (--scenarios, default 1024): Tb, Tamb and q vary, h = 40: one shared operator.
  dolfinx at its best for this: assemble once, factor once (MUMPS Cholesky), solve the three
  unit load problems, combine them per scenario (superposition) in NumPy blocks of 128.
- `h` (--h-scenarios, default 64): h varies too (20 to 800): every scenario has its own
  operator. dolfinx at its best: the two operator terms (conduction, convection) assembled
  once and combined per scenario (PETSc axpy), CG preconditioned by BoomerAMG (hypre) built
  once for the batch-mean h and reused for every scenario (KSP with Amat = A(h_s), Pmat =
  A(mean h)), one scenario after another, ||b - Ax|| <= rtol ||b|| (unpreconditioned norm).

doppel: `doppel solve TWIN --scenarios FILE --backend cpu` (wall clock of the whole command:
mesh, assembly, solves, answers, JSON written), with the host threads it uses (all cores by
default). dolfinx: one process, timed from mesh creation to the last answer. Both at the same
relative residual (--rtol, default 1e-12) where they iterate.

Both sides' answers are compared (largest difference, relative to the largest |T|), and both
sides' timings of every regime are written to one JSON with the machine named.

    /usr/bin/python3 benchmarks/peers/dolfinx_box.py --doppel build/bin/doppel --cells 46 \
        --output benchmarks/results/cpu-...-dolfinx-box.json
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

K, H = 50.0, 40.0
BOUNDS = {"Tb": (0.0, 300.0), "Tamb": (0.0, 40.0), "q": (0.0, 1e5)}
H_BOUNDS = (20.0, 800.0)


def twin_json(cells, vary_h=False):
    doc = {
        "name": "box",
        "mesh": {"generate": "box", "size": [1, 1, 1], "cells": [cells] * 3, "order": 1},
        "physics": {"thermal": {}},
        "materials": {"steel": {"conductivity": K}},
        "regions": {"domain": "steel"},
        "boundaries": {"xmin": {"thermal": {"type": "temperature", "value": "$Tb"}},
                       "xmax": {"thermal": {"type": "convection", "h": H, "ambient": "$Tamb"}}},
        "sources": {"domain": {"heat": "$q"}},
        "parameters": {k: {"default": lo, "min": lo, "max": hi} for k, (lo, hi) in BOUNDS.items()},
        "outputs": {"T_probe": {"quantity": "temperature", "at": [1, 0.5, 0.5]},
                    "T_max": {"quantity": "temperature", "reduce": "max", "region": "domain"}},
    }
    if vary_h:
        doc["boundaries"]["xmax"]["thermal"]["h"] = "$h"
        doc["parameters"]["h"] = {"default": H_BOUNDS[0], "min": H_BOUNDS[0], "max": H_BOUNDS[1]}
    return doc


def run_doppel(binary, cells, params, workdir, rtol, vary_h, threads=0):
    twin = os.path.join(workdir, "box.json")
    scen = os.path.join(workdir, "scenarios.json")
    out = os.path.join(workdir, "answers.json")
    json.dump(twin_json(cells, vary_h), open(twin, "w"))
    json.dump({"scenarios": [{"parameters": p} for p in params]}, open(scen, "w"))
    cmd = [binary, "solve", twin, "--scenarios", scen, "--backend", "cpu", "--quiet", "--rtol", str(rtol),
           "--output", out]
    env = dict(os.environ)
    if threads > 0:  # doppel's threads and OpenBLAS's (CHOLMOD's dense kernels)
        cmd += ["--threads", str(threads)]
        env["OPENBLAS_NUM_THREADS"] = str(threads)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    seconds = time.perf_counter() - start
    doc = json.load(open(out))
    answers = np.array([[s["outputs"]["T_probe"], s["outputs"]["T_max"]] for s in doc["scenarios"]])
    methods = sorted({s["solver"]["method"] for s in doc["scenarios"]})
    iterations = max(s["solver"]["iterations"] for s in doc["scenarios"])
    return seconds, answers, {"method": "+".join(methods), "iterations": iterations}


def run_dolfinx(cells, params, rtol, vary_h):
    from mpi4py import MPI
    from petsc4py import PETSc
    import dolfinx
    import ufl
    from dolfinx import fem, mesh
    from dolfinx.fem.petsc import apply_lifting, assemble_matrix, assemble_vector, set_bc

    start = time.perf_counter()
    msh = mesh.create_box(MPI.COMM_WORLD, [np.zeros(3), np.ones(3)], [cells] * 3, mesh.CellType.tetrahedron)
    V = fem.FunctionSpace(msh, ("Lagrange", 1))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    fdim = msh.topology.dim - 1
    right = mesh.locate_entities_boundary(msh, fdim, lambda x: np.isclose(x[0], 1.0))
    tags = mesh.meshtags(msh, fdim, np.sort(right), np.ones(len(right), dtype=np.int32))
    ds = ufl.Measure("ds", domain=msh, subdomain_data=tags)
    left_dofs = fem.locate_dofs_geometrical(V, lambda x: np.isclose(x[0], 0.0))
    g = fem.Function(V)
    bc = fem.dirichletbc(g, left_dofs)
    coords = V.tabulate_dof_coordinates()
    probe = int(np.argmin(np.linalg.norm(coords - np.array([1.0, 0.5, 0.5]), axis=1)))
    zero = fem.form(fem.Constant(msh, PETSc.ScalarType(0.0)) * v * ufl.dx)

    def load_vector(L, lift_form, tb):
        # Unit load (L, or Tb = tb on x = 0 lifted through lift_form) with the boundary rows set.
        g.x.array[:] = tb
        b = assemble_vector(L if L is not None else zero)
        apply_lifting(b, [lift_form], bcs=[[bc]])
        b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        set_bc(b, [bc])
        return b

    answers = np.empty((len(params), 2))
    if not vary_h:
        a = fem.form(K * ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx + H * u * v * ds(1))
        A = assemble_matrix(a, bcs=[bc])
        A.assemble()
        solver = PETSc.KSP().create(msh.comm)
        solver.setOperators(A)
        solver.setType("preonly")
        pc = solver.getPC()
        pc.setType("cholesky")
        pc.setFactorSolverType("mumps")
        # The three unit problems: Tb = 1 on x = 0; Tamb = 1 (h v ds); q = 1 (v dx).
        loads = [(None, 1.0), (fem.form(H * v * ds(1)), 0.0), (fem.form(v * ufl.dx), 0.0)]
        basis = []
        for L, tb in loads:
            b = load_vector(L, a, tb)
            x = A.createVecRight()
            solver.solve(b, x)
            basis.append(x.getArray().copy())
        U = np.stack(basis, axis=1)  # n x 3
        C = np.array([[p["Tb"], p["Tamb"], p["q"]] for p in params]).T  # 3 x S
        block = 128
        for b0 in range(0, C.shape[1], block):
            T = U @ C[:, b0:b0 + block]
            answers[b0:b0 + block, 0] = T[probe]
            answers[b0:b0 + block, 1] = T.max(axis=0)
        method = "MUMPS Cholesky once, 3 unit solves, superposition in NumPy blocks of 128"
        iterations = 0
    else:
        # A(h) = A_k + h M: both terms assembled once on one pattern (the convection term is zero
        # on the held rows, whose diagonal 1 comes with A_k).
        a_k = fem.form(K * ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx + fem.Constant(msh, PETSc.ScalarType(0.0)) * u * v * ds(1))
        a_m = fem.form(u * v * ds(1))
        A_k = assemble_matrix(a_k, bcs=[bc])
        A_k.assemble()
        M = assemble_matrix(a_m, bcs=[bc], diagonal=0.0)
        M.assemble()
        hs = np.array([p["h"] for p in params])

        def operator(h):
            A = A_k.copy()
            A.axpy(h, M, structure=PETSc.Mat.Structure.SUBSET_NONZERO_PATTERN)
            return A

        P = operator(float(hs.mean()))
        solver = PETSc.KSP().create(msh.comm)
        solver.setType("cg")
        solver.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED)
        solver.setTolerances(rtol=rtol, atol=0.0, max_it=2000)
        pc = solver.getPC()
        pc.setType("hypre")
        pc.setHYPREType("boomeramg")
        solver.setOperators(P, P)
        solver.setUp()  # the hierarchy, once
        pc.setReusePreconditioner(True)
        # Unit loads: Tb = 1 on x = 0 (lifted through A_k: the convection face is disjoint from
        # the held face), q = 1; the ambient load h Tamb (v ds) scales with h.
        b_tb = load_vector(None, a_k, 1.0)
        b_q = load_vector(fem.form(v * ufl.dx), a_k, 0.0)
        b_amb = load_vector(fem.form(v * ds(1)), a_k, 0.0)
        x = P.createVecRight()
        b = P.createVecRight()
        iterations = 0
        for s, p in enumerate(params):
            A = operator(p["h"])
            solver.setOperators(A, P)
            b.set(0.0)
            b.axpy(p["Tb"], b_tb)
            b.axpy(p["q"], b_q)
            b.axpy(p["h"] * p["Tamb"], b_amb)
            x.set(0.0)
            solver.solve(b, x)
            if solver.getConvergedReason() <= 0:
                raise RuntimeError(f"dolfinx CG did not converge for scenario {s}: {solver.getConvergedReason()}")
            iterations = max(iterations, solver.getIterationNumber())
            T = x.getArray()
            answers[s] = (T[probe], T.max())
            A.destroy()
        method = "CG + BoomerAMG (hypre) built once for the batch-mean h and reused, scenarios one after another"
    seconds = time.perf_counter() - start
    return seconds, answers, {"version": dolfinx.__version__, "nodes": V.dofmap.index_map.size_global,
                              "method": method, "iterations": iterations}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--doppel", required=True)
    ap.add_argument("--cells", type=int, default=46)
    ap.add_argument("--scenarios", type=int, default=1024, help="scenarios of the loads regime")
    ap.add_argument("--h-scenarios", type=int, default=64, help="scenarios of the h regime")
    ap.add_argument("--regimes", default="loads,h", help="loads, h or both (comma-separated)")
    ap.add_argument("--rtol", type=float, default=1e-12, help="relative residual of the iterative solves")
    ap.add_argument("--repeats", type=int, default=2, help="each side's best of this many runs")
    ap.add_argument("--doppel-threads", type=int, default=0,
                    help="host threads of doppel (and its BLAS); 0: all cores. dolfinx runs one process")
    ap.add_argument("--output", required=True)
    args = ap.parse_args()
    if args.cells % 2:
        sys.exit("--cells must be even (the probe must be a mesh node)")
    regimes = [r for r in args.regimes.split(",") if r]
    if not regimes or any(r not in ("loads", "h") for r in regimes):
        sys.exit("--regimes: loads, h or loads,h")
    commit = os.environ.get("DOPPEL_COMMIT") or subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip() or "unknown"
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
    doc = {
        "benchmark": "box of issue 14: doppel solve against dolfinx at its best for each regime",
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "system": platform.platform()},
        "commit": commit, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "problem": {"cells": args.cells, "conductivity": K, "h": H, "bounds": BOUNDS, "h_bounds": H_BOUNDS,
                    "rtol": args.rtol},
        "regimes": {},
    }
    for regime in regimes:
        vary_h = regime == "h"
        count = args.h_scenarios if vary_h else args.scenarios
        rng = np.random.default_rng(11)
        bounds = dict(BOUNDS, **({"h": H_BOUNDS} if vary_h else {}))
        params = [{k: float(rng.uniform(lo, hi)) for k, (lo, hi) in bounds.items()} for _ in range(count)]
        print(f"{regime}: {count} scenarios, doppel ...", flush=True)
        with tempfile.TemporaryDirectory() as work:
            doppel_runs = [run_doppel(args.doppel, args.cells, params, work, args.rtol, vary_h, args.doppel_threads)
                           for _ in range(args.repeats)]
        print(f"{regime}: dolfinx ...", flush=True)
        dolfinx_runs = [run_dolfinx(args.cells, params, args.rtol, vary_h) for _ in range(args.repeats)]
        t_doppel, a_doppel, d_info = min(doppel_runs, key=lambda r: r[0])
        t_dolfinx, a_dolfinx, x_info = min(dolfinx_runs, key=lambda r: r[0])
        scale = float(np.abs(a_dolfinx).max())
        diff = float(np.abs(a_doppel - a_dolfinx).max())
        doc["problem"]["nodes"] = int(x_info["nodes"])
        doc["regimes"][regime] = {
            "scenarios": count,
            "varies": sorted(bounds),
            "doppel": {"seconds": t_doppel, "scenarios_per_second": count / t_doppel,
                       "runs": [r[0] for r in doppel_runs],
                       "threads": args.doppel_threads or f"all cores ({os.cpu_count()})",
                       "solver": d_info},
            "dolfinx": {"version": x_info["version"], "seconds": t_dolfinx, "scenarios_per_second": count / t_dolfinx,
                        "runs": [r[0] for r in dolfinx_runs], "method": x_info["method"],
                        "iterations": x_info["iterations"], "processes": 1},
            "speedup_doppel_over_dolfinx": t_dolfinx / t_doppel,
            "answers": {"max_abs_difference": diff, "relative_to_max_T": diff / scale},
        }
        print(f"{regime}: doppel {t_doppel:.2f} s ({d_info['method']}), dolfinx {t_dolfinx:.2f} s: "
              f"doppel {t_dolfinx / t_doppel:.2f}x; answers differ by {diff:.2e} ({diff / scale:.1e} of max T)",
              flush=True)
        with open(args.output, "w") as f:
            json.dump(doc, f, indent=2)


if __name__ == "__main__":
    main()
