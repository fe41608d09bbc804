-- The request generators of run_serving.py, for both dialects (our native API and MLflow's REST API).
-- Arguments after "--": <kind> <token or "-"> <first model index> <model count> <versions per model> [<run tag>]
-- Models and run ids follow seed.py's naming: model i is "perf-m-%06d", version v of model i has run_id
-- "%016x%016x" (i, v). Each thread walks the models (or model x version pairs) with a step coprime to their
-- number, so it visits every one of them once per cycle, and threads start at different places.
local here = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(here .. "common.lua")

local kind, first, count, versions, tag
local headers, json_headers = {}, {}
local position, step, total = 0, 1, 1
local sent = 0

local function model_name(i)
  return string.format("perf-m-%06d", i)
end

local function next_index()
  position = (position + step) % total
  return position
end

-- The next (model name, model index, version) over every pair of the selected range.
local function next_pair()
  local k = next_index()
  local i = first + math.floor(k / versions)
  return model_name(i), i, k % versions + 1
end

-- A run id no seeded version has (those start with 8 zeros), unique per wrk run, thread and request;
-- 32 hex characters, the length MLflow allows.
local function fresh_run_id()
  sent = sent + 1
  return string.format("%08x%04x%020x", tag, thread_id or 0, sent)
end

local function get(path)
  return wrk.format("GET", path, headers)
end

local function post(path, body)
  return wrk.format("POST", path, json_headers, body)
end

local generators = {
  hello = function() return get("/") end,

  native_stage = function()
    local name = next_pair()
    return get("/api/v1/models/" .. name .. "/stages/Production")
  end,
  mlflow_latest = function()
    local name = next_pair()
    return post("/api/2.0/mlflow/registered-models/get-latest-versions",
                string.format('{"name":"%s","stages":["Production"]}', name))
  end,

  native_alias = function()
    local name = next_pair()
    return get("/api/v1/models/" .. name .. "/aliases/champion")
  end,
  mlflow_alias = function()
    local name = next_pair()
    return get("/api/2.0/mlflow/registered-models/alias?name=" .. name .. "&alias=champion")
  end,

  native_version = function()
    local name, _, v = next_pair()
    return get("/api/v1/models/" .. name .. "/versions/" .. v)
  end,
  mlflow_version = function()
    local name, _, v = next_pair()
    return get("/api/2.0/mlflow/model-versions/get?name=" .. name .. "&version=" .. v)
  end,

  native_create = function()
    local name = next_pair()
    local run_id = fresh_run_id()
    return post("/api/v1/models/" .. name .. "/versions",
                string.format('{"source":"s3://perf-artifacts/%s/%s/model","run_id":"%s"}', name, run_id, run_id))
  end,
  mlflow_create = function()
    local name = next_pair()
    local run_id = fresh_run_id()
    return post("/api/2.0/mlflow/model-versions/create",
                string.format('{"name":"%s","source":"s3://perf-artifacts/%s/%s/model","run_id":"%s"}',
                              name, name, run_id, run_id))
  end,

  native_promote = function()
    local name, _, v = next_pair()
    return post("/api/v1/models/" .. name .. "/versions/" .. v .. "/transition",
                '{"stage":"Production","archive_existing_versions":true}')
  end,
  mlflow_promote = function()
    local name, _, v = next_pair()
    return post("/api/2.0/mlflow/model-versions/transition-stage",
                string.format('{"name":"%s","version":"%d","stage":"Production","archive_existing_versions":true}',
                              name, v))
  end,

  native_run_id = function()
    local _, i, v = next_pair()
    return get(string.format("/api/v1/versions?run_id=%016x%016x", i, v))
  end,
  mlflow_run_id = function()
    local _, i, v = next_pair()
    return get(string.format("/api/2.0/mlflow/model-versions/search?filter=run_id%%3D%%27%016x%016x%%27", i, v))
  end,

  -- The first 12 characters of a name ("perf-m-" and 5 digits) match at most 10 models.
  native_prefix = function()
    local name = next_pair()
    return get("/api/v1/models?name_prefix=" .. string.sub(name, 1, 12))
  end,
  mlflow_prefix = function()
    local name = next_pair()
    return get("/api/2.0/mlflow/registered-models/search?filter=name+LIKE+%27" .. string.sub(name, 1, 12) .. "%25%27")
  end,
}

local generate

function init(args)
  kind = args[1]
  generate = generators[kind]
  assert(generate, "serving.lua: unknown kind " .. tostring(kind))
  headers = base_headers(args[2])
  json_headers = base_headers(args[2])
  json_headers["Content-Type"] = "application/json"
  first = tonumber(args[3] or "1")
  count = tonumber(args[4] or "1")
  versions = tonumber(args[5] or "1")
  tag = tonumber(args[6] or "1")
  total = count * versions
  step = coprime_step(total, 7919 + 2 * (thread_id or 0))
  position = ((thread_id or 0) * 104729) % total
end

function request()
  return generate()
end
