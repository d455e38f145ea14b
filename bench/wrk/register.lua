-- Clarion registration load for wrk: one distinct FCM token per request.
--
-- Configured through the environment (bench/run.py sets these):
--   BENCH_PATH    request path (…/pushdeviceregistration/devices or …/devices/batch)
--   BENCH_APP     MobileAppId            BENCH_API_TOKEN  ApiToken
--   BENCH_USERS   file with one UserId per line (rotated through)
--   BENCH_PREFIX  unique per wrk run, so warm-up and measured runs never repeat a token
--   BENCH_BATCH   0 = one object per request; n = a JSON array of n objects (/devices/batch)
--   BENCH_OUT     where done() writes a JSON summary (requests, status counts, latency)
-- Tokens are "<prefix>-<thread>-<counter hex>" padded to a realistic FCM length (~160 chars).

local path = os.getenv("BENCH_PATH")
local app = os.getenv("BENCH_APP")
local api_token = os.getenv("BENCH_API_TOKEN")
local prefix = os.getenv("BENCH_PREFIX") or "bench"
local batch = tonumber(os.getenv("BENCH_BATCH") or "0")
local out_path = os.getenv("BENCH_OUT")

local users = {}
for line in io.lines(os.getenv("BENCH_USERS")) do
  if #line > 0 then users[#users + 1] = line end
end

local pad = string.rep("x", 120)
local headers = { ["Content-Type"] = "application/json" }
local head = '{"MobileAppId":"' .. app .. '","ApiToken":"' .. api_token .. '","UserId":"'

-- per-thread state (each wrk thread runs its own copy of this script)
local counter = 0
tid = 0
statuses = {}

local threads = {}
local next_tid = 1
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

local function item()
  counter = counter + 1
  local user = users[(counter % #users) + 1]
  local token = string.format("%s-%d-%08x:%s", prefix, tid, counter, pad)
  return head .. user .. '","FcmDeviceToken":"' .. token .. '"}'
end

function request()
  local body
  if batch > 0 then
    local parts = {}
    for i = 1, batch do parts[i] = item() end
    body = "[" .. table.concat(parts, ",") .. "]"
  else
    body = item()
  end
  return wrk.format("POST", path, headers, body)
end

function response(status, _headers, _body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, _requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for code, n in pairs(s) do counts[code] = (counts[code] or 0) + n end
  end
  local parts = {}
  for code, n in pairs(counts) do parts[#parts + 1] = string.format('"%d":%d', code, n) end
  local e = summary.errors
  local json = string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"items_per_request":%d,' ..
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
