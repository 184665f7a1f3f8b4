#!/usr/bin/env python3
"""Soak: doppel serve with the blade and its bundle, fed by `doppel plant`, under mixed traffic
(state, forecasts, sync scenario batches, a job now and then) paced at a fraction of the
capacity measured at the start (default 80 %), for a set time. Every minute it records errors
(5xx, refused or failed connections), latency percentiles per kind of request, and the
server's RSS and open descriptors, so that drift and growth show. Results as JSON.

Usage: benchmarks/soak/soak.py [--minutes 30] [--load 0.8] [--output benchmarks/results/cpu-HOST-soak.json]
Needs build/bin/doppel (scripts/build)."""
import argparse, datetime, json, os, platform, random, socket, subprocess, sys, tempfile, threading, time
import http.client

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOPPEL = os.path.join(ROOT, "build", "bin", "doppel")
TWIN = os.path.join(ROOT, "examples", "blade", "twin.json")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Client:
    def __init__(self, port):
        self.port = port
        self.conn = None

    def call(self, method, path, body=None):
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                data = json.dumps(body).encode() if body is not None else None
                self.conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
                r = self.conn.getresponse()
                payload = r.read()
                return r.status, payload
            except (OSError, http.client.HTTPException):
                self.conn = None
                if attempt == 1:
                    return -1, b""


def proc_stats(pid):
    rss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return rss, len(os.listdir("/proc/%d/fd" % pid))


def percentile(v, q):
    if not v:
        return None
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


KINDS = {
    "state": lambda c, rng: c.call("GET", "/v1/twins/blade/state"),
    "forecast": lambda c, rng: c.call("POST", "/v1/twins/blade/forecast", {"horizon": 1800, "step": 600}),
    "scenarios": lambda c, rng: c.call("POST", "/v1/twins/blade/scenarios", {
        "scenarios": [{"parameters": {"T_gas": rng.uniform(1100, 1400)}} for _ in range(16)], "fidelity": "surrogate"}),
    "healthz": lambda c, rng: c.call("GET", "/healthz"),
}
MIX = ["state"] * 4 + ["scenarios"] * 3 + ["forecast"] + ["healthz"] * 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--load", type=float, default=0.8)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "results", "cpu-%s-soak.json" % socket.gethostname().split(".")[0]))
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="doppel-soak-")
    bundle = os.path.join(work, "bundle")
    print("training the blade's bundle", file=sys.stderr, flush=True)
    subprocess.run([DOPPEL, "train", TWIN, "--out", bundle, "--quiet"], check=True)
    port = free_port()
    server = subprocess.Popen([DOPPEL, "serve", "--twin", TWIN, "--bundle", bundle, "--port", str(port),
                               "--db", os.path.join(work, "soak.sqlite"), "--quiet"],
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "serve.log"), "w"))
    c = Client(port)
    for _ in range(120):
        if c.call("GET", "/readyz")[0] == 200:
            break
        time.sleep(0.5)
    total_s = a.minutes * 60
    plant = subprocess.Popen([DOPPEL, "plant", "--twin", TWIN, "--server", "http://127.0.0.1:%d" % port, "--speed", "20",
                              "--duration", str(int(total_s * 20 + 3600)), "--step", "60", "--quiet"],
                             stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "plant.log"), "w"))
    # Capacity: closed loop with the mix for 15 s.
    done = [0]
    stop = time.time() + 15

    def closed(seed):
        rng, cl = random.Random(seed), Client(port)
        while time.time() < stop:
            KINDS[rng.choice(MIX)](cl, rng)
            done[0] += 1
    ts = [threading.Thread(target=closed, args=(i,)) for i in range(a.threads)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    capacity = done[0] / 15.0
    rate = a.load * capacity
    print("capacity %.1f req/s; soaking at %.1f req/s for %.0f min" % (capacity, rate, a.minutes), file=sys.stderr, flush=True)
    lock = threading.Lock()
    minute = {"lat": {k: [] for k in KINDS}, "errors": 0, "status": {}}
    minutes = []
    end = time.time() + total_s
    t0 = time.time()

    def paced(seed):
        rng, cl = random.Random(seed), Client(port)
        interval = a.threads / rate
        nxt = time.time()
        while time.time() < end:
            nxt += rng.expovariate(1.0 / interval)
            delay = nxt - time.time()
            if delay > 0:
                time.sleep(delay)
            kind = rng.choice(MIX)
            s = time.time()
            status, _ = KINDS[kind](cl, rng)
            ms = (time.time() - s) * 1e3
            with lock:
                minute["lat"][kind].append(ms)
                minute["status"][str(status)] = minute["status"].get(str(status), 0) + 1
                if status < 0 or status >= 500:
                    minute["errors"] += 1

    def job_loop():
        cl = Client(port)
        while time.time() < end:
            st, body = cl.call("POST", "/v1/twins/blade/scenarios", {"mode": "async", "fidelity": "surrogate",
                               "scenarios": [{"parameters": {"T_gas": 1100 + i % 300}} for i in range(2000)]})
            with lock:
                minute["status"]["job:" + str(st)] = minute["status"].get("job:" + str(st), 0) + 1
                if st < 0 or st >= 500:
                    minute["errors"] += 1
            time.sleep(30)
    ts = [threading.Thread(target=paced, args=(100 + i,)) for i in range(a.threads)] + [threading.Thread(target=job_loop)]
    [t.start() for t in ts]
    while time.time() < end:
        time.sleep(min(60, max(0.1, end - time.time())))
        rss, fds = proc_stats(server.pid)
        with lock:
            m = {"minute": len(minutes) + 1, "t_s": round(time.time() - t0, 1), "rss_mb": round(rss / 2**20, 1), "fds": fds,
                 "errors": minute["errors"], "status": minute["status"],
                 "latency_ms": {k: {"n": len(v), "p50": percentile(v, 0.5), "p99": percentile(v, 0.99)} for k, v in minute["lat"].items()}}
            minute["lat"] = {k: [] for k in KINDS}
            minute["errors"] = 0
            minute["status"] = {}
        minutes.append(m)
        print(json.dumps(m), file=sys.stderr, flush=True)
    [t.join() for t in ts]
    plant.terminate()
    server.terminate()
    server.wait(timeout=30)
    first, last = minutes[0], minutes[-1]
    result = {"benchmark": "soak: doppel serve (blade + bundle) with doppel plant and mixed traffic",
              "machine": {"host": socket.gethostname(), "cpus": os.cpu_count(), "platform": platform.platform()},
              "commit": os.environ.get("DOPPEL_COMMIT") or subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                                                          capture_output=True, text=True).stdout.strip(),
              "date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
              "minutes": a.minutes, "load": a.load, "capacity_req_s": round(capacity, 1), "rate_req_s": round(rate, 1),
              "mix": {k: MIX.count(k) / len(MIX) for k in KINDS}, "jobs": "2,000 surrogate scenarios every 30 s",
              "errors_total": sum(m["errors"] for m in minutes),
              "rss_mb": {"first_minute": first["rss_mb"], "last_minute": last["rss_mb"], "max": max(m["rss_mb"] for m in minutes)},
              "fds": {"first_minute": first["fds"], "last_minute": last["fds"], "max": max(m["fds"] for m in minutes)},
              "exit": {"server": server.returncode, "plant_log_tail": open(os.path.join(work, "plant.log")).read()[-300:]},
              "per_minute": minutes}
    os.makedirs(os.path.dirname(a.output), exist_ok=True)
    json.dump(result, open(a.output, "w"), indent=1)
    print("wrote %s: %d errors, RSS %.0f -> %.0f MB, fds %d -> %d" % (a.output, result["errors_total"], first["rss_mb"], last["rss_mb"],
                                                                     first["fds"], last["fds"]), file=sys.stderr)


if __name__ == "__main__":
    main()
