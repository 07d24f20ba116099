-- SPDX-License-Identifier: Apache-2.0
-- http_post.lua -- wrk script of tests/bench/bench_http.sh: POST the JSON bodies of BODIES
-- (one per line) in turn to PATH; DELAY_MS > 0 makes each connection wait that long between
-- requests (a fixed offered load: connections x 1000 / DELAY_MS requests/s at most).
local bodies = {}
local i = 0
local path = os.getenv("HTTP_PATH") or "/v1/classify"
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
for line in io.lines(os.getenv("BODIES")) do bodies[#bodies + 1] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function setup(thread) thread:set("id", math.random(1, 1000000)) end

function request()
  i = i + 1
  return wrk.format("POST", path, nil, bodies[(i + (id or 0)) % #bodies + 1])
end

if delay_ms > 0 then
  function delay() return delay_ms end
end
