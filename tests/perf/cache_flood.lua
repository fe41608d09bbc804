-- run_cache_flood.py's request generator: every request asks for a *distinct* cache key or for an answer
-- with parameters its view ignores. Arguments after "--": <token> <models> (models are "flood-%04d", each
-- with a large answer; see run_cache_flood.py).
local here = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(here .. "common.lua")

local headers, models
local sent = 0

function init(args)
  headers = base_headers(args[1])
  models = tonumber(args[2])
  sent = (thread_id or 0) * 1000003
end

function request()
  sent = sent + 1
  local name = string.format("flood-%04d", sent % models + 1)
  local kind = sent % 4
  if kind == 0 then      -- a large answer per model: distinct keys, larger than the budget together
    return wrk.format("GET", "/api/2.0/mlflow/registered-models/get?name=" .. name, headers)
  elseif kind == 1 then  -- the same, through the native API
    return wrk.format("GET", "/api/v1/models/" .. name, headers)
  elseif kind == 2 then  -- parameters the view ignores: one key however many values
    return wrk.format("GET", "/api/2.0/mlflow/registered-models/get?name=flood-0001&n=" .. sent, headers)
  end
  -- a distinct If-None-Match per request: a distinct key for every request (small answers)
  local h = {}
  for k, v in pairs(headers) do h[k] = v end
  h["If-None-Match"] = '"x' .. sent .. '"'
  return wrk.format("GET", "/api/v1/models/" .. name .. "/stages/Production", h)
end
