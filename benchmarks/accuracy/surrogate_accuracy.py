#!/usr/bin/env python3
"""Surrogate accuracy where it is hardest: a steady twin with h spanning 40x
(examples/hotplate-steady). Trains a plain bundle and an adaptive one, answers the same random
scenarios with FEM and with each bundle (fidelity surrogate: no FEM stand-ins), and reports
temperature output errors relative to the rise above the coldest prescribed temperature
(min(T_base, T_air)), von Mises errors relative to the FE value, and how often each answer's
per-output estimate bounded its error.

Each bundle answers the same scenarios with the network alone and with the surrogate tiers at
each of --tolerances (--fidelity surrogate: the reduced Galerkin tier where the network's field
estimate is above the tolerance). FEM never answers.

Usage: benchmarks/accuracy/surrogate_accuracy.py [--scenarios 300] [--adaptive 0.004]
       [--max-samples 1536] [--tolerances 0.005,0.001] [--output benchmarks/results/cpu-HOST-accuracy.json]
Needs build/bin/doppel (scripts/build)."""
import argparse, datetime, json, os, platform, random, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOPPEL = os.path.join(ROOT, "build", "bin", "doppel")
TWIN = os.path.join(ROOT, "examples", "hotplate-steady", "twin.json")


def run(args):
    print("+ doppel " + " ".join(args), file=sys.stderr, flush=True)
    t0 = time.time()
    subprocess.run([DOPPEL] + args, check=True)
    return time.time() - t0


def percentile(values, q):
    v = sorted(values)
    return v[max(0, min(len(v) - 1, int(-(-q * len(v) // 1)) - 1))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenarios", type=int, default=300)
    ap.add_argument("--adaptive", type=float, default=0.004)
    ap.add_argument("--max-samples", type=int, default=1536)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--tolerances", default="0.005,0.001",
                    help="comma-separated --tolerance values for the surrogate tiers (0.005 is the default)")
    ap.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "results",
                                                     "cpu-%s-accuracy.json" % socket.gethostname().split(".")[0]))
    a = ap.parse_args()
    twin = json.load(open(TWIN))
    rng = random.Random(a.seed)
    scen = [{"parameters": {n: rng.uniform(p["min"], p["max"]) for n, p in twin["parameters"].items()}}
            for _ in range(a.scenarios)]
    work = tempfile.mkdtemp(prefix="doppel-accuracy-")
    sfile = os.path.join(work, "scenarios.json")
    json.dump({"scenarios": scen}, open(sfile, "w"))
    run(["solve", TWIN, "--scenarios", sfile, "--quiet", "--output", os.path.join(work, "fem.json")])
    fem = json.load(open(os.path.join(work, "fem.json")))["scenarios"]
    result = {"twin": "examples/hotplate-steady", "scenarios": a.scenarios, "seed": a.seed,
              "reference": "FEM of the same scenarios; temperature errors / (output - min(T_base, T_air))",
              "machine": {"host": socket.gethostname(), "cpus": os.cpu_count(), "platform": platform.platform()},
              "commit": os.environ.get("DOPPEL_COMMIT") or subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                                                          capture_output=True, text=True).stdout.strip(),
              "date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"), "bundles": {}}
    for name, extra in [("plain", []), ("adaptive", ["--adaptive", str(a.adaptive), "--max-samples", str(a.max_samples)])]:
        bundle = os.path.join(work, name)
        seconds = run(["train", TWIN, "--out", bundle, "--quiet"] + extra)
        meta = json.load(open(os.path.join(bundle, "meta.json")))
        entry = {"train_seconds": round(seconds, 1), "training_samples": meta["training"].get("samples")}
        if "adaptive" in meta["training"]:
            ad = meta["training"]["adaptive"]
            entry["adaptive"] = {k: ad[k] for k in ("target", "max_samples", "met", "stopped", "kept_round")}
            entry["training_samples"] = ad["rounds"][ad["kept_round"] - 1]["training_samples"]
        # The network alone (a tolerance above every estimate keeps it), then the surrogate tiers
        # at each tolerance (--fidelity surrogate: the reduced tier where the network's estimate
        # is above it and the reduced one's is smaller). Never FEM.
        modes = [("network", "1e9")] + [("tiers at " + t, t) for t in a.tolerances.split(",")]
        for mode, tol in modes:
            out = os.path.join(work, name + "-" + tol + ".json")
            run(["solve", TWIN, "--bundle", bundle, "--fidelity", "surrogate", "--tolerance", tol, "--scenarios", sfile,
                 "--quiet", "--output", out])
            sur = json.load(open(out))["scenarios"]
            tiers = {}
            for s in sur:
                tiers[s["tier"]] = tiers.get(s["tier"], 0) + 1
            m = {"tolerance": float(tol), "tiers": tiers, "outputs": {}}
            for o in ("T_max", "T_mid", "vm_max"):
                rel, covered = [], 0
                for f, s in zip(fem, sur):
                    p = f["parameters"]
                    ref = f["outputs"][o]
                    scale = abs(ref - min(p["T_base"], p["T_air"])) if o.startswith("T_") else abs(ref)
                    err = abs(s["outputs"][o] - ref)
                    rel.append(err / max(scale, 1e-12))
                    covered += s["output_estimates"][o] >= err
                m["outputs"][o] = {"relative_to": "rise" if o.startswith("T_") else "value",
                                   "p95": percentile(rel, 0.95), "max": max(rel),
                                   "above_3_percent": sum(r > 0.03 for r in rel),
                                   "estimate_bounds_fraction": covered / len(rel)}
            entry[mode] = m
        result["bundles"][name] = entry
        print(name, json.dumps(entry), file=sys.stderr)
    os.makedirs(os.path.dirname(a.output), exist_ok=True)
    json.dump(result, open(a.output, "w"), indent=2)
    print("wrote " + a.output, file=sys.stderr)


if __name__ == "__main__":
    main()
