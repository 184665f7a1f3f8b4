#!/usr/bin/env python3
"""Writes the summary JSON of a GPU run (benchmarks/gpu_first_run.sh, gpu_full_run.sh) from its
phases, the JUnit files CTest wrote, the benchmark JSON and the machine description, and with
--final prints the one-line verdict. Called after every phase, so the JSON that comes back from
the device says how far the run got even when it was cut short."""
import argparse
import datetime
import json
import os
import re
import xml.etree.ElementTree as ET


def tests_from_junit(path):
    """Counts and names from a CTest JUnit file; failed tests carry the tail of their output."""
    if not os.path.exists(path):
        return None
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        return {"error": f"unreadable JUnit file: {e}"}
    out = {"passed": 0, "failed": [], "skipped": [], "seconds": 0.0}
    for case in root.iter("testcase"):
        name = case.get("name", "?")
        out["seconds"] += float(case.get("time", "0") or 0)
        status = case.get("status", "run")
        if case.find("failure") is not None or status == "fail":
            text = ""
            for tag in ("failure", "system-out"):
                node = case.find(tag)
                if node is not None:
                    text += (node.get("message") or "") + (node.text or "")
            out["failed"].append({"name": name, "output_tail": text[-1500:]})
        elif case.find("skipped") is not None or status in ("notrun", "disabled"):
            node = case.find("skipped")
            out["skipped"].append({"name": name, "why": (node.get("message") if node is not None else "") or ""})
        else:
            out["passed"] += 1
    out["seconds"] = round(out["seconds"], 1)
    return out


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def bench_summary(doc):
    """The rows a reader looks for first: scenario-solves per second per problem, regime, batch."""
    if not doc:
        return None
    rows = []
    for r in doc.get("linear", []) + doc.get("results", []):
        item = {k: r[k] for k in ("problem", "regime", "batch") if k in r}
        for k in ("scenario_solves_per_second", "speedup_over_host_backend", "fraction_of_copy_bandwidth",
                  "blocks", "error", "skipped"):
            if k in r:
                item[k] = r[k]
        rows.append(item)
    return {"complete": doc.get("complete"), "copy_bandwidth_bytes_per_second": doc.get("copy_bandwidth_bytes_per_second"),
            "machine": doc.get("machine"), "rows": rows}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--script", required=True)
    ap.add_argument("--phases", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget", type=int, required=True)
    ap.add_argument("--elapsed", type=int, required=True)
    ap.add_argument("--final", action="store_true")
    a = ap.parse_args()

    phases = []
    with open(a.phases) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 4:
                phases.append({"name": parts[0], "status": parts[1], "seconds": int(parts[2] or 0), "note": parts[3]})
    machine_text = ""
    try:
        machine_text = open(os.path.join(a.work, "machine.txt")).read()
    except OSError:
        pass
    gpu = None
    m = re.search(r"^name, driver_version.*\n(.+)$", machine_text, re.M)
    if m:
        fields = [x.strip() for x in m.group(1).split(",")]
        gpu = {"name": fields[0], "driver": fields[1] if len(fields) > 1 else None,
               "memory": fields[2] if len(fields) > 2 else None}
    doc = {
        "run": a.script,
        "commit": os.environ.get("DOPPEL_COMMIT", "unknown"),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "gpu": gpu,
        "machine": machine_text.strip().splitlines(),
        "budget_seconds": a.budget,
        "elapsed_seconds": a.elapsed,
        "finished": a.final,
        "phases": phases,
        "tests": {},
        "benchmarks": {},
    }
    for name in ("ctest-cuda", "ctest-all"):
        t = tests_from_junit(os.path.join(a.work, name + ".xml"))
        if t is not None:
            doc["tests"][name] = t
    for name in ("doppel-fem", "doppel-fem-large", "doppel-surrogate", "cupy"):
        j = read_json(os.path.join(a.out, name + ".json"))
        if j is not None:
            doc["benchmarks"][name] = bench_summary(j) if name.startswith("doppel-fem") else j

    failed = [p for p in phases if p["status"] != "ok"]
    doc["verdict"] = "pass" if phases and not failed else "fail"
    base = "gpu-first-run" if "first" in a.script else "gpu-full-run"
    with open(os.path.join(a.out, base + ".json"), "w") as f:
        json.dump(doc, f, indent=2)

    if a.final:
        bits = []
        for p in phases:
            bits.append(p["name"] + (" ok" if p["status"] == "ok" else f" {p['status'].upper()}") + f" {p['seconds']}s")
        for name, t in doc["tests"].items():
            if "passed" in t:
                s = f"{name} {t['passed']} passed/{len(t['failed'])} failed/{len(t['skipped'])} skipped"
                if t["failed"]:
                    s += " (" + ", ".join(x["name"] for x in t["failed"][:4]) + (", ..." if len(t["failed"]) > 4 else "") + ")"
                bits.append(s)
        gpu_name = gpu["name"] if gpu else "no GPU"
        print(f"VERDICT {base}: {doc['verdict'].upper()} on {gpu_name}, commit {doc['commit']}, "
              f"{a.elapsed} s of {a.budget}: " + "; ".join(bits))


if __name__ == "__main__":
    main()
