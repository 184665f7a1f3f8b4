#!/usr/bin/env python3
"""Checks a `doppel bench fem --memory-limit-mb ...` result: the run is complete, every linear
row was measured (none failed), and the batch of 40 on the 9^3-node box ran in several blocks
(a 0.3 MiB limit holds ~5 columns of 6 multi-vectors of 729 doubles) with residuals below the
tolerance. Usage: check_bench_json.py RESULT.json"""
import json
import sys

doc = json.load(open(sys.argv[1]))
assert doc["complete"] is True, "the run did not complete"
rows = [r for r in doc["linear"] if r["batch"] == 40]
assert rows, "no batch-40 rows"
for r in doc["linear"]:
    assert "error" not in r, r
    assert "skipped" not in r, r
    assert r["max_relative_residual"] < 1e-6, r
for r in rows:
    assert r.get("blocks", 1) > 1, f"batch 40 ran in one block under a 0.3 MiB limit: {r}"
print(f"ok: {len(doc['linear'])} rows, batch 40 in {[r['blocks'] for r in rows]} blocks")
