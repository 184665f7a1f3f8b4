#!/usr/bin/env python3
"""Latency of the live-twin routes of `doppel serve` on loopback (issue 6).

For the example twin, against a server whose 64 members are answered by the surrogate bundle
and, as the baseline measured in the same run, one without a bundle (every member a
finite-element solve): one analysis (POST observations?wait=true with one reading per sensor,
a minute after the previous ones), a one-hour forecast in six steps, and (surrogate only) a
recommendation. Forecast alerts are switched off (twins.alert_horizon_s 0) so an analysis is
the filter step alone; one more surrogate server with the default alerts shows what they add.
Writes a JSON file (machine, commit, date, every timing, FEM / surrogate ratios).

Usage: benchmarks/live/run.py --bundle DIR [--twin examples/blade/twin.json] [--analyses 30]
                              [--fem-analyses 4] [--device cpu|cuda|auto] [--output FILE]
"""
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(HERE, "..", "http"))
from run import Server, common_arguments, commit, http, machine  # noqa: E402  (the HTTP benchmark's helpers)


def log(msg):
    print(f"[bench live] {msg}", file=sys.stderr, flush=True)


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def timed(fn, repeats, label):
    times = []
    for k in range(repeats):
        t0 = time.perf_counter()
        fn(k)
        times.append(time.perf_counter() - t0)
        log(f"  {label} {k + 1}/{repeats}: {1000 * times[-1]:.1f} ms")
    return {"repeats": repeats, "median_ms": 1000 * statistics.median(times), "min_ms": 1000 * min(times),
            "max_ms": 1000 * max(times)}


def plant_readings(binary, twin_path, url, steps, start, workdir):
    """Realistic readings: the virtual plant's noise-free sensors over `steps` minutes (its own
    readings go to the server at `url`, a day before the measured ones)."""
    truth = os.path.join(workdir, "truth.ndjson")
    subprocess.run([binary, "plant", "--twin", twin_path, "--server", url, "--speed", "1e9", "--duration",
                    str(60 * (steps - 1)), "--step", "60", "--start", iso(start - 86400), "--fault", "none", "--dropout",
                    "none", "--truth", truth, "--quiet"], check=True)
    with open(truth) as f:
        return [json.loads(line)["sensors"] for line in f]


def measure(server, twin, readings, analyses, forecasts, recommend, start):
    base = f"{server.url}/v1/twins/{twin['id']}"

    def analysis(k):
        t = start + 60 * (k + 1)
        values = readings[(k + 1) % len(readings)]
        body = json.dumps({"readings": [{"sensor": s, "time": iso(t), "value": v} for s, v in values.items()]})
        status, text = http("POST", base + "/observations?wait=true", body)
        answer = json.loads(text)
        if status != 200 or "revision" not in answer.get("analysis", {}):
            raise RuntimeError(f"no analysis: {status} {text[:300]}")

    analysis(-1)  # the first analysis starts the ensemble: not timed
    out = {"analysis": timed(lambda k: analysis(k), analyses, "analysis")}
    state = json.loads(http("GET", base + "/state")[1])
    out["answered"] = state["answered"]
    if forecasts:
        fc = json.dumps({"horizon": 3600, "step": 600})
        out["forecast"] = timed(lambda k: http("POST", base + "/forecast", fc), forecasts, "forecast (1 h, 6 steps)")
    if recommend:
        rec = json.dumps({"horizon": 3600, "step": 600})
        answer = {}
        out["recommend"] = timed(lambda k: answer.update(json.loads(http("POST", base + "/recommend", rec)[1])), 1,
                                 "recommendation")
        out["recommend"]["candidates_evaluated"] = answer["evaluated"]
    return out


def main():
    ap = common_arguments(__doc__)
    ap.add_argument("--analyses", type=int, default=30)
    ap.add_argument("--fem-analyses", type=int, default=4)
    a = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="doppel-bench-live-")
    quiet = os.path.join(workdir, "no-alerts.json")
    with open(quiet, "w") as f:
        json.dump({"twins": {"alert_horizon_s": 0}}, f)
    results = {"benchmark": "live", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "commit": commit(),
               "machine": machine(), "twin": os.path.relpath(a.twin, ROOT), "device": a.device, "members": 64,
               "runs": {}}
    start = time.time() - 86400  # measured readings a day in the past, one minute apart
    readings = None
    runs = [("surrogate", a.bundle, ["--config", quiet], a.analyses, 5, True),
            ("fem", None, ["--config", quiet], a.fem_analyses, 1, False),
            ("surrogate_with_forecast_alerts", a.bundle, [], a.analyses, 0, False)]
    for name, bundle, extra, analyses, forecasts, recommend in runs:
        log(f"{name}: starting the server")
        s = Server(a.binary, a.twin, bundle, a.device, extra, workdir, name)
        try:
            twin = json.loads(http("GET", s.url + "/v1/twins")[1])["twins"][0]
            if readings is None:
                log("the virtual plant's readings (not timed)")
                readings = plant_readings(a.binary, a.twin, s.url, a.analyses + 1, start, workdir)
                results["readings"] = "the virtual plant's noise-free sensors (doppel plant --seed 1 --drift 0.02), one per minute"
            results["runs"][name] = measure(s, twin, readings, analyses, forecasts, recommend, start)
        finally:
            s.stop()
    sur, fem = results["runs"]["surrogate"], results["runs"]["fem"]
    results["fem_over_surrogate"] = {"analysis": fem["analysis"]["median_ms"] / sur["analysis"]["median_ms"],
                                     "forecast": fem["forecast"]["median_ms"] / sur["forecast"]["median_ms"]}
    text = json.dumps(results, indent=2)
    if a.output:
        with open(a.output, "w") as f:
            f.write(text + "\n")
        log(f"wrote {a.output}")
    print(text)


if __name__ == "__main__":
    main()
