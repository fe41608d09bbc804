-- run_console.py's request generator: GET one page of the web console (or one JSON call of MLflow's UI).
-- Arguments after "--": <cookie or "-"> <path> [<count> [<close>]]
--   cookie: the Cookie header's value (the console's signed-in session), "-" for none (MLflow has no auth);
--   path:   the path and query; "{n}" in it is replaced by a number cycling over 1..count (each thread visits
--           every number once per cycle, threads start at different places);
--   close:  "close" sends "Connection: close" (a new connection per request), anything else keeps alive.
local here = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(here .. "common.lua")

local headers = {}
local path, count, position, step = "/", 1, 0, 1

function init(args)
  local cookie = assert(args[1], "console.lua needs: <cookie or -> <path> [<count> [close]]")
  path = assert(args[2], "console.lua needs: <cookie or -> <path> [<count> [close]]")
  count = tonumber(args[3] or "1")
  headers = {["Accept"] = "text/html,application/json"}
  if cookie ~= "-" then
    headers["Cookie"] = cookie
  end
  if args[4] == "close" then
    headers["Connection"] = "close"
  end
  step = coprime_step(count, 7919)
  position = ((thread_id or 0) * 104729) % count
end

function request()
  local p = path
  if string.find(path, "{n}", 1, true) then
    position = (position + step) % count
    p = (string.gsub(path, "{n}", tostring(position + 1)))
  end
  return wrk.format("GET", p, headers)
end
