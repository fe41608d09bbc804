-- Shared by the wrk scripts: counts responses by HTTP status in every thread and, when wrk finishes,
-- prints one line "WRK_JSON {...}" with wrk's own summary and latency distribution for run_core.py.
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

function response(status, headers, body)
  local key = tostring(status)
  status_counts[key] = (status_counts[key] or 0) + 1
end

function split_csv(text)
  local items = {}
  for item in string.gmatch(text or "", "[^,]+") do
    table.insert(items, item)
  end
  return items
end

local function int(x)
  return string.format("%.0f", x or 0)
end

function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("status_counts") or {}) do
      totals[status] = (totals[status] or 0) + count
    end
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
    ',"p99":', int(latency:percentile(99)), ',"p999":', int(latency:percentile(99.9)), '}',
    ',"statuses":{', table.concat(statuses, ","), '}}\n')
end
