#!/usr/bin/env python3
"""Slow and idle clients against doppel serve: does /healthz still answer, and are ordinary
requests still served?

doppel serve runs the blade with its bundle. In three phases of --seconds each it probes
GET /healthz every 20 ms on a connection of its own (latency p50/p99/max, failures) while:
  1. nothing else runs (baseline);
  2. wrk at --connections (256) sends single-scenario surrogate requests (the ordinary load);
  3. the same wrk, plus --slow (500) abusive connections held open all along: a third idle
     (connected, sending nothing), a third sending a request head a byte per second
     (slowloris), a third sending a body a byte per second; each reconnects when the server
     closes it, as an attacker would.
It records wrk's throughput and errors, how many abusive connections the server closed, the
server's connection counters from /metrics, and its RSS and descriptors. Results as JSON.

Usage: benchmarks/abuse/slow_clients.py [--seconds 30] [--slow 500] [--connections 256]
       [--output benchmarks/results/cpu-HOST-slow-clients.json]
Needs build/bin/doppel (scripts/build) and wrk."""
import argparse, datetime, json, os, platform, re, selectors, socket, subprocess, sys, tempfile, threading, time
import http.client

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOPPEL = os.path.join(ROOT, "build", "bin", "doppel")
TWIN = os.path.join(ROOT, "examples", "blade", "twin.json")
LUA = os.path.join(ROOT, "benchmarks", "http", "single.lua")
sys.path.insert(0, os.path.join(ROOT, "benchmarks", "soak"))
from soak import percentile, proc_stats  # noqa: E402  (one copy of the helpers)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Prober(threading.Thread):
    """GET /healthz every 20 ms; a failure is no 200 within 5 s (then a new connection)."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.running, self.lat, self.failures = port, True, [], 0
        self.lock = threading.Lock()

    def take(self):
        with self.lock:
            lat, fail = self.lat, self.failures
            self.lat, self.failures = [], 0
        return lat, fail

    def run(self):
        conn = None
        while self.running:
            t0 = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz")
                r = conn.getresponse()
                r.read()
                ok = r.status == 200
            except (OSError, http.client.HTTPException):
                conn, ok = None, False
            dt = time.perf_counter() - t0
            with self.lock:
                if ok:
                    self.lat.append(dt * 1e3)
                else:
                    self.failures += 1
            time.sleep(max(0.0, 0.02 - dt))


class Abusers(threading.Thread):
    """n connections in one selector loop: idle, slowloris heads, slow bodies; a byte a second."""

    def __init__(self, port, n):
        super().__init__(daemon=True)
        self.port, self.n, self.running = port, n, True
        self.closed_by_server, self.connects, self.answers = 0, 0, {}
        self.sel = selectors.DefaultSelector()

    def open(self, kind):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", self.port))
        except BlockingIOError:
            pass
        self.connects += 1
        first = {"idle": b"",
                 "loris": b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
                 "body": b"POST /v1/twins/blade/scenarios HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100000\r\n\r\n"}[kind]
        self.sel.register(s, selectors.EVENT_READ, {"kind": kind, "pending": first, "next": time.time()})

    def run(self):
        kinds = ["idle", "loris", "body"]
        for i in range(self.n):
            self.open(kinds[i % 3])
        while self.running:
            now = time.time()
            for key, _ in self.sel.select(timeout=0.1):
                s, d = key.fileobj, key.data
                try:
                    data = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if data:
                    code = data[9:12].decode(errors="replace")
                    self.answers[code] = self.answers.get(code, 0) + 1
                    continue
                self.sel.unregister(s)
                s.close()
                self.closed_by_server += 1
                self.open(d["kind"])
            for key in list(self.sel.get_map().values()):
                d = key.data
                if d["kind"] == "idle" or now < d["next"]:
                    continue
                try:
                    key.fileobj.send(d["pending"] or (b"X-a: b\r\n" if d["kind"] == "loris" else b" "))
                    d["pending"] = b""
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    pass
                d["next"] = now + 1.0
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()


def run_wrk(port, connections, seconds):
    out = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s", "-s", LUA,
                          f"http://127.0.0.1:{port}/v1/twins/blade/scenarios"], capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("JSON "))
    return json.loads(line[5:])


def connection_metrics(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    return {m.group(1) + ("{" + m.group(2) + "}" if m.group(2) else ""): float(m.group(3))
            for m in re.finditer(r"^(doppel_http_connections\w*)(?:\{([^}]*)\})? (\S+)$", text, re.M)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--slow", type=int, default=500)
    ap.add_argument("--connections", type=int, default=256)
    ap.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "results",
                                                     "cpu-%s-slow-clients.json" % socket.gethostname().split(".")[0]))
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="doppel-slow-")
    bundle = os.path.join(work, "bundle")
    log("training the blade's bundle")
    subprocess.run([DOPPEL, "train", TWIN, "--out", bundle, "--quiet"], check=True)
    port = free_port()
    server = subprocess.Popen([DOPPEL, "serve", "--twin", TWIN, "--bundle", bundle, "--port", str(port),
                               "--db", os.path.join(work, "slow.sqlite"), "--quiet"],
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "serve.log"), "w"))
    for _ in range(240):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                break
        except OSError:
            pass
        time.sleep(0.5)
    prober = Prober(port)
    prober.start()
    phases = []

    def phase(name, wrk_connections, slow):
        log(f"phase {name}: wrk {wrk_connections}, slow {slow}, {a.seconds} s")
        abusers = None
        if slow:
            abusers = Abusers(port, slow)
            abusers.start()
            time.sleep(3)  # all connected and trickling
        prober.take()
        before = connection_metrics(port)
        wrk = run_wrk(port, wrk_connections, a.seconds) if wrk_connections else (time.sleep(a.seconds) or None)
        lat, failures = prober.take()
        rss, fds = proc_stats(server.pid)
        after = connection_metrics(port)
        result = {"phase": name, "wrk_connections": wrk_connections, "slow_connections": slow,
                  "healthz": {"probes": len(lat) + failures, "failures": failures, "p50_ms": percentile(lat, 0.5),
                              "p99_ms": percentile(lat, 0.99), "max_ms": max(lat) if lat else None},
                  "wrk": wrk, "server_rss_bytes": rss, "server_fds": fds,
                  "connection_counters_delta": {k: after[k] - before.get(k, 0) for k in after if "total" in k},
                  "connections_open_at_end": after.get('doppel_http_connections{state="open"}')}
        if abusers:
            abusers.running = False
            abusers.join()
            result["slow"] = {"connects": abusers.connects, "closed_by_server": abusers.closed_by_server,
                              "answers_seen": abusers.answers}
        log(json.dumps(result["healthz"]) + (" wrk %.0f req/s" % wrk["requests_per_second"] if wrk else ""))
        phases.append(result)

    phase("baseline", 0, 0)
    phase("wrk", a.connections, 0)
    phase("wrk+slow", a.connections, a.slow)
    prober.running = False
    server.terminate()
    server.wait(timeout=30)
    last = phases[-1]
    out = {"benchmark": "slow and idle clients: /healthz latency and ordinary throughput under abuse",
           "date": datetime.datetime.utcnow().replace(microsecond=0).isoformat() + "Z",
           "commit": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
           "machine": {"host": platform.node(), "cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
           "seconds_per_phase": a.seconds, "phases": phases,
           "target": {"healthz_p99_ms_below": 100, "met": bool(last["healthz"]["p99_ms"] is not None and last["healthz"]["p99_ms"] < 100
                                                               and last["healthz"]["failures"] == 0
                                                               and last["wrk"]["requests"] > 0)},
           "server_exit": server.returncode}
    os.makedirs(os.path.dirname(a.output), exist_ok=True)
    with open(a.output, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    log("wrote " + a.output)


if __name__ == "__main__":
    main()
