-- Clarion interaction-report load for wrk: cycles through N valid (TrackingId, DeviceToken)
-- pairs prepared by bench/events/run.py, one report per request, as CIJ apps send them.
--
-- Configured through the environment (run.py sets these):
--   BENCH_PATH      /api/v1.0/orgs/<org>/pushdatareceiver/events
--   BENCH_PAIRS     file: one "<trackingId> <deviceToken>" per line
--   BENCH_STATUSES  comma-separated PushNotificationStatus values cycled per pair
--                   (default: Delivered,1,0,Dismissed = delivered, opened, clicked, dismissed)
--   BENCH_BATCH     0 (default) = one report per request, as CIJ apps send them;
--                   n = a JSON array of n reports (Clarion's batch form, for relays)
--   BENCH_OUT       where done() writes a JSON summary (requests, statuses, latency)
-- Each wrk thread starts at a different offset so threads do not send the same pair at once.

local path = os.getenv("BENCH_PATH")
local out_path = os.getenv("BENCH_OUT")
local status_list = os.getenv("BENCH_STATUSES") or 'Delivered,1,0,Dismissed'
local batch = tonumber(os.getenv("BENCH_BATCH") or "0")

local statuses_cycle = {}
for s in string.gmatch(status_list, "[^,]+") do
  if tonumber(s) then statuses_cycle[#statuses_cycle + 1] = s
  else statuses_cycle[#statuses_cycle + 1] = '"' .. s .. '"' end
end

local pairs_list = {}
for line in io.lines(os.getenv("BENCH_PAIRS")) do
  local tid, token = string.match(line, "^(%S+)%s+(%S+)$")
  if tid then pairs_list[#pairs_list + 1] = { tid, token } end
end

local headers = { ["Content-Type"] = "application/json" }

counter = 0
tid = 0
codes = {}

local threads = {}
local next_tid = 1
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

function init(_args)
  counter = (tid - 1) * 7919  -- a prime offset per thread
end

local function report()
  counter = counter + 1
  local n = #pairs_list
  local pair = pairs_list[(counter % n) + 1]
  local status = statuses_cycle[(math.floor(counter / n) % #statuses_cycle) + 1]
  return '{"TrackingId":"' .. pair[1] .. '","DeviceToken":"' .. pair[2] ..
         '","PushNotificationStatus":' .. status .. '}'
end

function request()
  local body
  if batch > 0 then
    local parts = {}
    for i = 1, batch do parts[i] = report() end
    body = "[" .. table.concat(parts, ",") .. "]"
  else
    body = report()
  end
  return wrk.format("POST", path, headers, body)
end

function response(status, _headers, _body)
  codes[status] = (codes[status] or 0) + 1
end

function done(summary, latency, _requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    local s = thread:get("codes")
    for code, n in pairs(s) do counts[code] = (counts[code] or 0) + n end
  end
  local parts = {}
  for code, n in pairs(counts) do parts[#parts + 1] = string.format('"%d":%d', code, n) end
  local e = summary.errors
  local json = string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"reports_per_request":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"statuses":{%s},"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}}',
    summary.requests, summary.duration, summary.bytes, math.max(batch, 1),
    e.connect, e.read, e.write, e.status, e.timeout, table.concat(parts, ","),
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max)
  local f = assert(io.open(out_path, "w"))
  f:write(json)
  f:close()
end
