-- requests.lua -- replay a file of requests, one picked at random per request.
--
-- The file ($BENCH_REQUESTS) has one request a line, tab-separated:
--   PATH  KEY  [X-FORWARDED-FOR]
-- e.g. "/v1/leads/lead_8Dy...\tdvs_live_...": the key goes into
-- "Authorization: Bearer KEY" (no header when empty), the third field, when
-- present, into X-Forwarded-For. bench/seed.py writes these files
-- (req-<scenario>.tsv), pairing each lead id with a key of its organization.
--
-- With $BENCH_DELAY_MS set, each connection waits that long before each of
-- its requests (wrk's delay()), which caps the rate at -c * 1000 / MS a second:
-- bench/soak uses it with "Connection: close" to churn connections at a
-- steady rate rather than as fast as the loopback allows.
--
-- Like the nginx kit's keys.lua, every request is rendered once in init(), so
-- request() is one table index and the load generator stays cheap; done()
-- prints the kit's ANCHOR_RESULT line (same fields as its wrk/report.lua).
--
--   BENCH_REQUESTS=/tmp/x/req-lead.tsv wrk -t1 -c64 -d10s --latency -s bench/wrk/requests.lua http://127.0.0.1:18090

local file = os.getenv("BENCH_REQUESTS") or "requests.tsv"
local reqs = {}
local n = 0
local thread_counter = 0

function setup(thread)
   thread_counter = thread_counter + 1
   thread:set("bench_tid", thread_counter)
end

function init(args)
   local f = io.open(file, "r")
   if not f then
      io.stderr:write("requests.lua: cannot open " .. file .. "\n")
      os.exit(2)
   end
   for line in f:lines() do
      local path, key, xff = line:match("^([^\t]+)\t?([^\t]*)\t?([^\t]*)$")
      if path then
         local h = {}
         for k, v in pairs(wrk.headers) do h[k] = v end
         if key ~= "" then h["Authorization"] = "Bearer " .. key end
         if xff ~= "" then h["X-Forwarded-For"] = xff end
         n = n + 1
         reqs[n] = wrk.format("GET", path, h)
      end
   end
   f:close()
   if n == 0 then
      io.stderr:write("requests.lua: no requests in " .. file .. "\n")
      os.exit(2)
   end
   math.randomseed(os.time() * 1000 + (bench_tid or 0))
end

local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if delay_ms and delay_ms > 0 then
   -- Defined only when asked for: wrk looks for delay() once, at start.
   function delay()
      return delay_ms
   end
end

function request()
   return reqs[math.random(n)]
end

function done(summary, latency, requests)
   local s = summary
   local e = s.errors
   io.write(string.format(
      "ANCHOR_RESULT requests=%d duration_s=%.3f rps=%.1f lat_mean_us=%.1f " ..
      "p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f non2xx=%d " ..
      "err_connect=%d err_read=%d err_write=%d err_timeout=%d bytes=%d\n",
      s.requests, s.duration / 1e6, s.requests / (s.duration / 1e6), latency.mean,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, e.status, e.connect, e.read, e.write, e.timeout, s.bytes))
end
