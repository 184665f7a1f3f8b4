-- wrk script: one single-scenario surrogate request per call, parameters drawn inside the
-- blade's bounds; done() prints the summary as one JSON line for run.py.
math.randomseed(os.time())
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("DOPPEL_BENCH_TOKEN")
if token and #token > 0 then wrk.headers["Authorization"] = "Bearer " .. token end

request = function()
  local body = string.format(
    '{"scenarios": [{"parameters": {"T_gas": %.3f, "h_gas": %.3f, "T_cool": %.3f, "h_cool": %.3f}}], "fidelity": "surrogate"}',
    900 + 500 * math.random(), 500 + 2500 * math.random(), 400 + 300 * math.random(), 1000 + 5000 * math.random())
  return wrk.format(nil, nil, nil, body)
end

done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format(
    'JSON {"requests": %d, "seconds": %.3f, "requests_per_second": %.2f, "p50_ms": %.3f, "p90_ms": %.3f, ' ..
    '"p99_ms": %.3f, "max_ms": %.3f, "errors_connect": %d, "errors_read": %d, "errors_timeout": %d, "non_2xx": %d}\n',
    summary.requests, seconds, summary.requests / seconds, latency:percentile(50) / 1e3, latency:percentile(90) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3, summary.errors.connect, summary.errors.read,
    summary.errors.timeout, summary.errors.status))
end
