-- wrk script: METHOD (default POST) with the body in BODY, of CONTENT_TYPE (default JSON), and
-- X-API-Key from API_KEY, if set; prints one JSON line of results.
wrk.method = os.getenv("METHOD") or "POST"
if os.getenv("API_KEY") then
  wrk.headers["X-API-Key"] = os.getenv("API_KEY")
end
if wrk.method == "POST" then
  wrk.headers["Content-Type"] = os.getenv("CONTENT_TYPE") or "application/json"
  wrk.body = os.getenv("BODY")
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "socket_errors": %d, "non_2xx": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status, e.connect, e.read, e.write, e.timeout))
end
