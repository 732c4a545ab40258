-- customer.lua: wrk requests for bench/run.sh against the customer dialect.
--   wrk ... -s customer.lua http://HOST:PORT/rest-api/enterprise-interface/v1.0/events -- OP TOKEN ARG
-- OP create: POST one event per request; ARG is a run prefix, external_id is
--            "<ARG>-<thread>-<n>" so every request is unique (the triple is).
-- OP get:    GET /events/{id}, ARG a file of ids, taken round-robin.
-- OP list:   GET /events?customer_id=ARG&count=50 (a filtered list of 50).
-- done() prints one line "BENCHJSON {...}" for run.sh to parse.
local op, arg3
local counter = 0
local ids = {}
local n_threads = 0

function setup(thread)
  n_threads = n_threads + 1
  thread:set("tid", n_threads)
end

function init(args)
  op, arg3 = args[1], args[3]
  wrk.headers["Authorization"] = "Bearer " .. args[2]
  if op == "create" then
    wrk.headers["Content-Type"] = "application/json"
  elseif op == "get" then
    for line in io.lines(arg3) do
      if #line > 0 then ids[#ids + 1] = line end
    end
  end
end

local body_fmt = '{"event":{"event_type_id":"8bed991c68a470e7aaeffbf048",' ..
  '"customer_id":"85bc5819e09dab95437552ce79","external_id":"%s-%d-%d",' ..
  '"data":{"source":"bench"}},"property_records":[' ..
  '{"property_id":"has_purchase","property_value":"true"},' ..
  '{"property_id":"amount","property_value":42.5}]}'

function request()
  counter = counter + 1
  if op == "create" then
    return wrk.format("POST", wrk.path, nil, string.format(body_fmt, arg3, tid, counter))
  elseif op == "get" then
    return wrk.format("GET", wrk.path .. "/" .. ids[(counter % #ids) + 1])
  else
    return wrk.format("GET", wrk.path .. "?customer_id=" .. arg3 .. "&count=50")
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCHJSON {"requests":%d,"duration_us":%d,"status_errors":%d,' ..
    '"socket_errors":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
