-- Shared by the wrk scripts: counts responses by HTTP status in every thread, keeps the first non-2xx answer
-- of each thread as a sample, and, when wrk finishes, prints one line "WRK_JSON {...}" with wrk's own summary
-- and latency distribution for the Python side (_wrk.py).
-- setup()/done() run in wrk's main Lua state; response() runs in each thread's own state, so counts are
-- kept per thread and summed in done() through thread:get().

local threads = {}
local next_thread_id = 0

function setup(thread)
  thread:set("thread_id", next_thread_id)
  next_thread_id = next_thread_id + 1
  table.insert(threads, thread)
end

status_counts = {}
first_error = nil

function response(status, headers, body)
  local key = tostring(status)
  status_counts[key] = (status_counts[key] or 0) + 1
  if first_error == nil and (status < 200 or status > 299) then
    first_error = key .. " " .. string.sub(body or "", 1, 300)
  end
end

function split_csv(text)
  local items = {}
  for item in string.gmatch(text or "", "[^,]+") do
    table.insert(items, item)
  end
  return items
end

-- Headers every request carries; token "-" means none (a server without authentication).
function base_headers(token)
  local headers = {["Accept"] = "application/json"}
  if token and token ~= "-" then
    headers["Authorization"] = "Bearer " .. token
  end
  return headers
end

-- A step through 0..n-1 that visits every index once per cycle: successive requests of a thread hit
-- different rows, and threads start at different places.
function coprime_step(n, wanted)
  local function gcd(a, b)
    while b ~= 0 do a, b = b, a % b end
    return a
  end
  local step = wanted % n
  if step == 0 then step = 1 end
  while gcd(step, n) ~= 1 do step = step + 1 end
  return step
end

local function int(x)
  return string.format("%.0f", x or 0)
end

local function json_string(text)
  local escaped = string.gsub(text, '[%c"\\]', function(c)
    if c == '"' then return '\\"' elseif c == "\\" then return "\\\\" end
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. escaped .. '"'
end

function done(summary, latency, requests)
  local totals = {}
  local sample = nil
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("status_counts") or {}) do
      totals[status] = (totals[status] or 0) + count
    end
    sample = sample or thread:get("first_error")
  end
  local statuses = {}
  for status, count in pairs(totals) do
    table.insert(statuses, string.format('"%s":%s', status, int(count)))
  end
  local e = summary.errors
  io.write("WRK_JSON {",
    '"duration_us":', int(summary.duration), ',"requests":', int(summary.requests),
    ',"bytes":', int(summary.bytes),
    ',"errors":{"connect":', int(e.connect), ',"read":', int(e.read), ',"write":', int(e.write),
    ',"status":', int(e.status), ',"timeout":', int(e.timeout), '}',
    ',"latency_us":{"min":', int(latency.min), ',"max":', int(latency.max),
    ',"mean":', int(latency.mean), ',"stdev":', int(latency.stdev),
    ',"p50":', int(latency:percentile(50)), ',"p90":', int(latency:percentile(90)),
    ',"p95":', int(latency:percentile(95)),
    ',"p99":', int(latency:percentile(99)), ',"p999":', int(latency:percentile(99.9)), '}',
    ',"statuses":{', table.concat(statuses, ","), '}',
    ',"first_error":', sample and json_string(sample) or "null", '}\n')
end
