#!/usr/bin/env python3
"""Blade end to end, batch 1024: one doppel build against another, runs alternating.

Issue 14's target for the blade is a ratio against the issue's own commit in each regime.
This VM's run-to-run spread is large (neighbours, OpenBLAS threads), so both builds run in
the same session, alternately, and each regime is reported as the best of N runs per side
(with every run kept). Build the base in a worktree, for instance:

    git worktree add /tmp/base 9153c8c
    cmake --preset cpu -S /tmp/base && cmake --build /tmp/base/build-cpu --target doppel
    benchmarks/blade_against_base.py --base /tmp/base/build-cpu/bin/doppel \\
        --base-commit 9153c8c --new build/bin/doppel --runs 5 \\
        --output benchmarks/results/cpu-dev-vm-2core-blade-pipeline.json
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile


def bench_command(binary):
    """The end-to-end blade bench of this build (older builds lack the skip flags)."""
    cmd = [binary, "bench", "fem", "--box-cells", "0", "--batches", "1024"]
    help_text = subprocess.run([binary, "bench", "fem", "--help"], capture_output=True, text=True).stdout
    for flag in ("--no-preconditioners", "--no-linear"):
        if flag in help_text:
            cmd.append(flag)
    return cmd


def run_once(cmd):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "bench.json")
        subprocess.run(cmd + ["--output", out], check=True, capture_output=True, text=True)
        with open(out) as f:
            doc = json.load(f)
    rates = {}
    for row in doc.get("results", []):
        if row.get("batch") == 1024 and "scenario_solves_per_second" in row:
            rates[row["regime"]] = row["scenario_solves_per_second"]
    return rates


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="doppel binary of the base commit")
    ap.add_argument("--base-commit", required=True, help="the base binary's commit (recorded)")
    ap.add_argument("--new", required=True, help="doppel binary of this tree")
    ap.add_argument("--runs", type=int, default=3, help="runs per side (default 3)")
    ap.add_argument("--output", help="JSON file to write")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    commands = {"base": bench_command(args.base), "new": bench_command(args.new)}
    runs = {"base": [], "new": []}
    for i in range(args.runs):
        for side in ("base", "new"):
            print(f"run {i + 1}/{args.runs}: {side}", file=sys.stderr, flush=True)
            runs[side].append(run_once(commands[side]))
    regimes = []
    names = [r for r in runs["new"][0]]
    for name in names:
        new = [r.get(name) for r in runs["new"] if name in r]
        base = [r.get(name) for r in runs["base"] if name in r]
        entry = {"regime": name, "solves_per_second": {"new": [round(v, 1) for v in new]}}
        if base:
            entry["solves_per_second"]["base"] = [round(v, 1) for v in base]
            entry["ratio_best"] = round(max(new) / max(base), 2)
        regimes.append(entry)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    doc = {
        "benchmark": "blade (examples/blade, thermo-elastic plane strain, 7 outputs), batch 1024, end to end: "
                     "the base build against this tree's, alternating runs in one session, best of each side",
        "command": {side: " ".join(["doppel"] + cmd[1:]) for side, cmd in commands.items()},
        "machine": {"cpu": cpu_name(), "hardware_threads": os.cpu_count(), "system": platform.platform()},
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commits": {"base": args.base_commit, "new": commit},
        "runs_per_side": args.runs,
        "regimes": regimes,
    }
    text = json.dumps(doc, indent=1)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
