#!/usr/bin/env python3
"""HTTP load test of `doppel serve` on loopback (issue 5).

Single-scenario surrogate requests (wrk, scripts/single.lua) at 1, 16 and 64 connections,
against one server with request batching on and one with it off, in the same run; then the
throughput of one 10^4-scenario job (submitted, followed to the end, results streamed back).
Writes a JSON file (machine, commit, date, every measurement, batching on/off ratios).

Usage: benchmarks/http/run.py --bundle DIR [--twin examples/blade/twin.json] [--seconds 10]
                              [--connections 1,16,64] [--job-scenarios 10000] [--device cpu|cuda]
                              [--output FILE]
"""
import argparse
import datetime
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def log(msg):
    print(f"[bench http] {msg}", file=sys.stderr, flush=True)


def http(method, url, body=None, timeout=600):
    data = None if body is None else body.encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read().decode()


class Server:
    def __init__(self, binary, twin, bundle, device, extra, workdir, name):
        self.log_path = os.path.join(workdir, f"{name}.log")
        args = [binary, "serve", "--twin", twin, "--port", "0", "--quiet", "--device", device,
                "--db", os.path.join(workdir, f"{name}.sqlite")] + (["--bundle", bundle] if bundle else []) + extra
        self.proc = subprocess.Popen(args, stderr=open(self.log_path, "w"), stdout=subprocess.DEVNULL)
        self.port = None
        for _ in range(600):
            text = open(self.log_path).read()
            m = re.search(r'"event":"listening".*?"port":(\d+)', text)
            if m:
                self.port = int(m.group(1))
            if self.port and '"event":"ready"' in text:
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"doppel serve exited: {text}")
            time.sleep(0.1)
        else:
            raise RuntimeError("doppel serve did not become ready")
        self.url = f"http://127.0.0.1:{self.port}"

    def metrics(self):
        return http("GET", self.url + "/metrics")[1]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)


def histogram_mean(metrics, name):
    s = re.search(rf"^{name}_sum (\S+)$", metrics, re.M)
    c = re.search(rf"^{name}_count (\S+)$", metrics, re.M)
    return float(s.group(1)) / max(1.0, float(c.group(1))) if s and c else None


def run_wrk(url, connections, seconds):
    threads = max(1, min(connections, os.cpu_count() or 1))
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "30s",
                          "-s", os.path.join(HERE, "single.lua"), url + "/v1/twins/blade/scenarios"],
                         capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("JSON "))
    result = json.loads(line[5:])
    result["connections"] = connections
    result["wrk_threads"] = threads
    return result


def run_job(server, n, seed=1):
    rng = random.Random(seed)
    scenarios = [{"parameters": {"T_gas": 900 + 500 * rng.random(), "h_gas": 500 + 2500 * rng.random(),
                                 "T_cool": 400 + 300 * rng.random(), "h_cool": 1000 + 5000 * rng.random()}}
                 for _ in range(n)]
    body = json.dumps({"scenarios": scenarios, "fidelity": "surrogate", "outputs": ["T_max", "vm_max"]})
    t0 = time.perf_counter()
    status, text = http("POST", server.url + "/v1/twins/blade/scenarios", body)
    accepted = time.perf_counter() - t0
    if status != 202:
        raise RuntimeError(f"expected 202 for a {n}-scenario batch, got {status}: {text[:300]}")
    job = json.loads(text)
    # Follow the results stream to its end: the job is done when the last line arrives.
    lines = 0
    with urllib.request.urlopen(server.url + job["results"], timeout=3600) as r:
        for raw in r:
            if raw.strip():
                lines += 1
            if lines and lines % 2000 == 0:
                log(f"job: {lines}/{n} results streamed")
    wall = time.perf_counter() - t0
    state = json.loads(http("GET", server.url + "/v1/jobs/" + job["id"])[1])
    if state["state"] != "done" or lines != n:
        raise RuntimeError(f"job ended {state['state']} with {lines} of {n} results")
    return {"scenarios": n, "request_bytes": len(body), "accepted_seconds": accepted, "wall_seconds": wall,
            "scenarios_per_second": n / wall, "results_streamed": lines, "state": state["state"]}


def machine():
    cpu = platform.processor() or ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count(), "os": platform.platform()}
    if shutil.which("nvidia-smi"):
        q = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                           capture_output=True, text=True)
        if q.returncode == 0 and q.stdout.strip():
            name, driver = [x.strip() for x in q.stdout.strip().splitlines()[0].split(",")]
            info["gpu"] = name
            info["driver"] = driver
    return info


def common_arguments(description):
    """The options every service benchmark takes (binary, twin, bundle, device, output)."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "bin", "doppel"))
    ap.add_argument("--twin", default=os.path.join(ROOT, "examples", "blade", "twin.json"))
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--output", default=None)
    return ap


def commit():
    return os.environ.get("DOPPEL_COMMIT") or subprocess.run(
        ["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()


def main():
    ap = common_arguments(__doc__)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", default="1,16,64")
    ap.add_argument("--job-scenarios", type=int, default=10000)
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    conns = [int(c) for c in a.connections.split(",")]
    workdir = tempfile.mkdtemp(prefix="doppel-bench-http-")
    results = {"benchmark": "http", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "commit": commit(),
               "machine": machine(), "twin": os.path.relpath(a.twin, ROOT), "device": a.device,
               "request": "one scenario, fidelity surrogate, all outputs",
               "seconds_per_point": a.seconds, "single_scenario": {}, "job": None}
    try:
        for mode in ("on", "off"):
            log(f"batching {mode}: starting the server")
            s = Server(a.binary, a.twin, a.bundle, a.device, ["--batching", mode], workdir, f"batching-{mode}")
            try:
                rows = []
                for c in conns:
                    log(f"batching {mode}: wrk, {c} connection(s), {a.seconds} s")
                    r = run_wrk(s.url, c, a.seconds)
                    log(f"  {r['requests_per_second']:.0f} req/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms")
                    rows.append(r)
                m = s.metrics()
                results["single_scenario"][f"batching_{mode}"] = {
                    "points": rows,
                    "mean_requests_per_batch": histogram_mean(m, "doppel_batch_requests"),
                    "mean_scenarios_per_batch": histogram_mean(m, "doppel_scenario_batch_size"),
                }
                if mode == "on":
                    log(f"job: {a.job_scenarios} scenarios")
                    results["job"] = run_job(s, a.job_scenarios)
                    log(f"  {results['job']['scenarios_per_second']:.0f} scenarios/s")
            finally:
                s.stop()
        on = results["single_scenario"]["batching_on"]["points"]
        off = results["single_scenario"]["batching_off"]["points"]
        results["batching_ratio"] = [{"connections": x["connections"],
                                      "requests_per_second": x["requests_per_second"] / max(1e-9, y["requests_per_second"]),
                                      "p99_latency": x["p99_ms"] / max(1e-9, y["p99_ms"])} for x, y in zip(on, off)]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(results, indent=2)
    if a.output:
        with open(a.output, "w") as f:
            f.write(text + "\n")
        log(f"wrote {a.output}")
    print(text)


if __name__ == "__main__":
    main()
