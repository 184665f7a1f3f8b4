#!/usr/bin/env python3
"""The peer a user would reach for without doppel: CuPy's sparse CG, one scenario at a time.

Reads the systems `doppel bench fem --export DIR` wrote (the nominal operator as CSR with
Dirichlet rows as identity, and the unit right-hand sides), solves `--count` right-hand sides
b = U c (random c, as doppel's benchmark draws them) one after another with
cupyx.scipy.sparse.linalg.cg and a Jacobi preconditioner at the same relative tolerance, and
writes scenario-solves per second as JSON.

    python3 benchmarks/peers/cupy_cg.py DIR --rtol 1e-8 --count 32 --output peers.json
"""
import argparse
import glob
import json
import os
import sys
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--rtol", type=float, default=1e-8)
    ap.add_argument("--count", type=int, default=32)
    ap.add_argument("--max-seconds", type=float, default=120.0)
    ap.add_argument("--output", required=True)
    args = ap.parse_args()

    import cupy as cp
    import cupyx.scipy.sparse as cps
    import cupyx.scipy.sparse.linalg as cpl

    results = []
    for indptr_path in sorted(glob.glob(os.path.join(args.dir, "*_indptr.npy"))):
        name = os.path.basename(indptr_path)[: -len("_indptr.npy")]
        base = os.path.join(args.dir, name)
        indptr = np.load(base + "_indptr.npy")
        indices = np.load(base + "_indices.npy")
        data = np.load(base + "_data.npy")
        U = np.load(base + "_rhs.npy")  # R x n
        n = indptr.size - 1
        A = cps.csr_matrix((cp.asarray(data), cp.asarray(indices), cp.asarray(indptr)), shape=(n, n))
        dinv = 1.0 / A.diagonal()
        M = cpl.LinearOperator((n, n), matvec=lambda x: dinv * x, dtype=cp.float64)
        rng = np.random.default_rng(7)
        Ud = cp.asarray(U)

        def solve(c):
            b = Ud.T @ cp.asarray(c)
            try:
                x, info = cpl.cg(A, b, tol=args.rtol, maxiter=20 * n, M=M, atol=0.0)
            except TypeError:  # newer CuPy spells it rtol
                x, info = cpl.cg(A, b, rtol=args.rtol, maxiter=20 * n, M=M, atol=0.0)
            return b, x, info

        solve(rng.uniform(0.5, 1.5, U.shape[0]))  # warm-up: kernels compiled and cached
        cp.cuda.Device().synchronize()
        start = time.perf_counter()
        done, worst = 0, 0.0
        while done < args.count and time.perf_counter() - start < args.max_seconds:
            b, x, info = solve(rng.uniform(0.5, 1.5, U.shape[0]))
            if info != 0:
                print(f"cupy_cg: {name}: cg returned info={info}", file=sys.stderr)
            worst = max(worst, float(cp.linalg.norm(b - A @ x) / cp.linalg.norm(b)))
            done += 1
        cp.cuda.Device().synchronize()
        seconds = time.perf_counter() - start
        row = {"problem": name, "peer": "cupyx.scipy.sparse.linalg.cg + Jacobi, one scenario at a time",
               "cupy": cp.__version__, "solves": done, "seconds": seconds,
               "scenario_solves_per_second": done / seconds, "max_relative_residual": worst}
        print(f"cupy_cg: {name}: {done} solves in {seconds:.3f} s = {done / seconds:.1f} solves/s "
              f"(max residual {worst:.2e})", file=sys.stderr)
        results.append(row)
    with open(args.output, "w") as f:
        json.dump({"peer": "cupy", "rtol": args.rtol, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
