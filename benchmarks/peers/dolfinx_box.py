#!/usr/bin/env python3
"""doppel against dolfinx on the same problem, in one run: the 10^5-node box of issue 14.

Unit cube, N^3 cells split into 6 P1 tetrahedra along the 000-111 diagonal (the same Kuhn split
in both), conductivity 50, temperature Tb held on x = 0, convection h (fixed) to Tamb on x = 1,
a volumetric source q. Outputs: the probe T(1, 0.5, 0.5) (a mesh node for even N) and T_max
over the domain. S scenarios draw Tb, Tamb and q (loads only: one shared operator).

- doppel: `doppel solve TWIN --scenarios FILE` (wall clock of the whole command: mesh, assembly,
  factorization, answers, JSON written), with the host threads it uses (all cores by default).
- dolfinx (Debian's python3-dolfinx, PETSc; one process): its best for this regime, as a
  user would write it: assemble once, factor once (MUMPS Cholesky), solve the three unit load
  problems, then combine them for each scenario (superposition) and evaluate the two outputs,
  scenarios in blocks with NumPy. Timed from mesh creation to the last answer.

Both sides' answers are compared (largest difference, relative to the largest |T|), and both
timings are written to one JSON with the machine named.

    python3 benchmarks/peers/dolfinx_box.py --doppel build/bin/doppel --cells 46 --scenarios 1024 \
        --output benchmarks/results/cpu-...-dolfinx.json
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


def twin_json(cells):
    return {
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


def run_doppel(binary, cells, params, workdir):
    twin = os.path.join(workdir, "box.json")
    scen = os.path.join(workdir, "scenarios.json")
    out = os.path.join(workdir, "answers.json")
    json.dump(twin_json(cells), open(twin, "w"))
    json.dump({"scenarios": [{"parameters": p} for p in params]}, open(scen, "w"))
    start = time.perf_counter()
    subprocess.run([binary, "solve", twin, "--scenarios", scen, "--backend", "cpu", "--quiet", "--output", out],
                   check=True)
    seconds = time.perf_counter() - start
    doc = json.load(open(out))
    answers = np.array([[s["outputs"]["T_probe"], s["outputs"]["T_max"]] for s in doc["scenarios"]])
    return seconds, answers


def run_dolfinx(cells, params):
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
    loads = [None, fem.form(H * v * ds(1)), fem.form(v * ufl.dx)]
    zero = fem.form(fem.Constant(msh, PETSc.ScalarType(0.0)) * v * ufl.dx)
    basis = []
    for i, L in enumerate(loads):
        g.x.array[:] = 1.0 if i == 0 else 0.0
        b = assemble_vector(L if L is not None else zero)
        apply_lifting(b, [a], bcs=[[bc]])
        b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        set_bc(b, [bc])
        x = A.createVecRight()
        solver.solve(b, x)
        basis.append(x.getArray().copy())
    U = np.stack(basis, axis=1)  # n x 3
    coords = V.tabulate_dof_coordinates()
    probe = int(np.argmin(np.linalg.norm(coords - np.array([1.0, 0.5, 0.5]), axis=1)))
    C = np.array([[p["Tb"], p["Tamb"], p["q"]] for p in params]).T  # 3 x S
    answers = np.empty((C.shape[1], 2))
    block = 128
    for b0 in range(0, C.shape[1], block):
        T = U @ C[:, b0:b0 + block]
        answers[b0:b0 + block, 0] = T[probe]
        answers[b0:b0 + block, 1] = T.max(axis=0)
    seconds = time.perf_counter() - start
    return seconds, answers, dolfinx.__version__, V.dofmap.index_map.size_global


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--doppel", required=True)
    ap.add_argument("--cells", type=int, default=46)
    ap.add_argument("--scenarios", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=2, help="each side's best of this many runs")
    ap.add_argument("--output", required=True)
    args = ap.parse_args()
    if args.cells % 2:
        sys.exit("--cells must be even (the probe must be a mesh node)")
    rng = np.random.default_rng(11)
    params = [{k: float(rng.uniform(lo, hi)) for k, (lo, hi) in BOUNDS.items()} for _ in range(args.scenarios)]
    with tempfile.TemporaryDirectory() as work:
        doppel_runs = [run_doppel(args.doppel, args.cells, params, work) for _ in range(args.repeats)]
    dolfinx_runs = [run_dolfinx(args.cells, params) for _ in range(args.repeats)]
    t_doppel, a_doppel = min(doppel_runs, key=lambda r: r[0])
    t_dolfinx, a_dolfinx, version, dofs = min(dolfinx_runs, key=lambda r: r[0])
    scale = float(np.abs(a_dolfinx).max())
    diff = float(np.abs(a_doppel - a_dolfinx).max())
    commit = os.environ.get("DOPPEL_COMMIT") or subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip() or "unknown"
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
    doc = {
        "benchmark": "box, loads only (issue 14): doppel solve against dolfinx superposition",
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "system": platform.platform()},
        "commit": commit, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "problem": {"cells": args.cells, "nodes": int(dofs), "scenarios": args.scenarios,
                    "conductivity": K, "h": H, "bounds": BOUNDS},
        "doppel": {"seconds": t_doppel, "scenarios_per_second": args.scenarios / t_doppel,
                   "runs": [r[0] for r in doppel_runs], "threads": "all cores (host_threads)"},
        "dolfinx": {"version": version, "seconds": t_dolfinx, "scenarios_per_second": args.scenarios / t_dolfinx,
                    "runs": [r[0] for r in dolfinx_runs], "method": "MUMPS Cholesky once, 3 unit solves, "
                    "superposition in NumPy blocks of 128", "processes": 1},
        "speedup_doppel_over_dolfinx": t_dolfinx / t_doppel,
        "answers": {"max_abs_difference": diff, "relative_to_max_T": diff / scale},
    }
    with open(args.output, "w") as f:
        json.dump(doc, f, indent=2)
    print(f"doppel {t_doppel:.2f} s, dolfinx {t_dolfinx:.2f} s: doppel {t_dolfinx / t_doppel:.2f}x; "
          f"answers differ by {diff:.2e} ({diff / scale:.1e} of max T)")


if __name__ == "__main__":
    main()
