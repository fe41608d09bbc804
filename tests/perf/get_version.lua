-- GET /api/v1/models/{name}/versions/{v}, cycling over every seeded version of every model.
-- Arguments after "--": <comma-separated model names> <versions per model> <admin token>
local here = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(here .. "common.lua")

local paths = {}
local position = 0
local headers = {}

function init(args)
  local versions = tonumber(args[2])
  for _, model in ipairs(split_csv(args[1])) do
    for v = 1, versions do
      table.insert(paths, "/api/v1/models/" .. model .. "/versions/" .. v)
    end
  end
  assert(#paths > 0, "get_version.lua needs: <models> <versions per model> <admin token>")
  headers = {["Authorization"] = "Bearer " .. assert(args[3], "missing token argument"), ["Accept"] = "application/json"}
  -- Threads start at different places so they do not read the same row in lockstep.
  position = ((thread_id or 0) * 7919) % #paths
end

function request()
  position = position % #paths + 1
  return wrk.format("GET", paths[position], headers)
end
