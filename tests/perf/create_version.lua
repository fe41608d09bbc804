-- POST /api/v1/models/{name}/versions with a JSON body and a distinct run_id per request, spreading the
-- requests of each thread round-robin over the models (so clients contend on the same model rows).
-- Arguments after "--": <comma-separated model names> <run tag, unique per wrk run> <admin token>
local here = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(here .. "common.lua")

local models = {}
local tag = "run"
local sent = 0
local headers = {}

function init(args)
  models = split_csv(args[1])
  assert(#models > 0, "create_version.lua needs: <models> <run tag> <admin token>")
  tag = args[2] or tag
  headers = {["Authorization"] = "Bearer " .. assert(args[3], "missing token argument"), ["Content-Type"] = "application/json",
             ["Accept"] = "application/json"}
end

function request()
  sent = sent + 1
  local model = models[(sent + (thread_id or 0)) % #models + 1]
  local run_id = string.format("%s-t%d-%d", tag, thread_id or 0, sent)
  local body = string.format('{"source":"s3://perf-artifacts/%s/%s/model","run_id":"%s"}', model, run_id, run_id)
  return wrk.format("POST", "/api/v1/models/" .. model .. "/versions", headers, body)
end
