#!/usr/bin/env python3
"""Merges `doppel bench fem` JSON, the CuPy peer's JSON and (optionally) `doppel bench
surrogate` JSON into one results file with the ratios the issues ask for (doppel batched vs
CuPy one at a time, vs doppel's host backend; surrogate vs FE in the same run)."""
import json
import re
import sys


def main():
    doppel_path, cupy_path, out_dir = sys.argv[1:4]
    doc = json.load(open(doppel_path))
    if len(sys.argv) > 4:
        try:
            doc["surrogate"] = json.load(open(sys.argv[4]))
        except (OSError, ValueError):
            pass
    try:
        peers = json.load(open(cupy_path))
    except (OSError, ValueError):
        peers = {"results": []}
    doc["peers"] = peers
    peer_rate = {r["problem"]: r["scenario_solves_per_second"] for r in peers.get("results", [])}
    summary = []
    for row in doc.get("linear", []):
        if "scenario_solves_per_second" not in row:
            continue
        item = {k: row[k] for k in ("problem", "regime", "batch", "scenario_solves_per_second") if k in row}
        if row["problem"] in peer_rate:
            item["speedup_over_cupy_one_at_a_time"] = row["scenario_solves_per_second"] / peer_rate[row["problem"]]
        if "speedup_over_host_backend" in row:
            item["speedup_over_host_backend"] = row["speedup_over_host_backend"]
        if "fraction_of_copy_bandwidth" in row:
            item["fraction_of_copy_bandwidth"] = row["fraction_of_copy_bandwidth"]
        summary.append(item)
    doc["summary"] = summary
    gpu = doc.get("machine", {}).get("gpu", {}).get("name", "gpu")
    name = "gpu-" + re.sub(r"[^a-z0-9]+", "-", gpu.lower()).strip("-") + ".json"
    with open(f"{out_dir}/{name}", "w") as f:
        json.dump(doc, f, indent=2)
    print(f"merged into {out_dir}/{name}")
    for s in summary:
        print(f"{s['problem']:<14} {s['regime']:<34} {s['batch']:>5} {s['scenario_solves_per_second']:>12.1f}/s"
              f"  x cupy {s.get('speedup_over_cupy_one_at_a_time', float('nan')):8.1f}"
              f"  x host {s.get('speedup_over_host_backend', float('nan')):8.1f}"
              f"  bw {s.get('fraction_of_copy_bandwidth', float('nan')):5.2f}")


if __name__ == "__main__":
    main()
