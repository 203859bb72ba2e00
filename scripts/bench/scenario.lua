-- wrk script for scripts/bench.sh. The scenario comes from the environment:
--   BENCH_SCENARIO  root | read | search | write | login | users | establish
--   BENCH_SUBJECTS  number of seeded subjects (S000001..)
--   BENCH_TOKEN     staff token (read, search, write)
--   BENCH_COOKIE    session cookie (users)
--   BENCH_USERNAME, BENCH_PASSWORD (login)
--   BENCH_LINK_TOKENS  file with one fresh link JWT a line (establish)
--   BENCH_THREADS   wrk threads, so each thread takes its own link tokens
-- done() prints one line "BENCH_JSON {...}" for the script to collect.

local scenario = os.getenv("BENCH_SCENARIO") or "root"
local subjects = tonumber(os.getenv("BENCH_SUBJECTS") or "1")
local threads_total = tonumber(os.getenv("BENCH_THREADS") or "1")
local token = os.getenv("BENCH_TOKEN")

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local id, counter = 0, 0
-- Global, so done() can read it from each thread with thread:get().
created = 0
local link_tokens = {}
-- Fragments of the seeded names (benches/idm_bench.rs), plus one that
-- matches nothing, so the search sees few, some and many matches.
local search_terms = { "meier", "zimmer", "brunner", "kaufmann", "S0012", "1975-03", "nobody-here" }

function init(args)
  id = wrk.thread:get("id")
  math.randomseed(id * 7919 + os.time())
  if token then wrk.headers["Authorization"] = "JWT " .. token end
  local cookie = os.getenv("BENCH_COOKIE")
  if cookie then wrk.headers["Cookie"] = cookie end
  if scenario == "write" or scenario == "login" then
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
  end
  if scenario == "login" then
    wrk.body = string.format('{"username":"%s","password":"%s"}',
      os.getenv("BENCH_USERNAME"), os.getenv("BENCH_PASSWORD"))
  end
  if scenario == "establish" then
    local n = 0
    for line in io.lines(os.getenv("BENCH_LINK_TOKENS")) do
      if n % threads_total == id then table.insert(link_tokens, line) end
      n = n + 1
    end
  end
end

function request()
  counter = counter + 1
  if scenario == "read" then
    return wrk.format("GET", string.format("/subject/S%06d", math.random(1, subjects)))
  elseif scenario == "search" then
    local term = search_terms[math.random(1, #search_terms)]
    return wrk.format("GET", "/subject?search=" .. term .. "&perpage=50")
  elseif scenario == "write" then
    local body = string.format(
      '{"sssid":"WR-%d-%d","name":"Load Test %d","bday":"1980-02-03","email":"load@example.org"}',
      id, counter, counter)
    return wrk.format("POST", "/subject", nil, body)
  elseif scenario == "establish" then
    -- Each token once; when they run out the server answers 409, which
    -- shows up as errors rather than silently re-measuring a cheap path.
    local jwt = link_tokens[((counter - 1) % #link_tokens) + 1]
    return wrk.format("POST", "/establish",
      { ["Authorization"] = "Bearer " .. jwt, ["Content-Type"] = "application/json" },
      string.format('{"resourceType":"Patient","identifier":[{"system":"urn:bench","value":"app-%d-%d"}]}',
        id, counter))
  elseif scenario == "login" then
    return wrk.format("POST", "/auth", nil, wrk.body)
  elseif scenario == "users" then
    return wrk.format("GET", "/users")
  else
    return wrk.format("GET", "/")
  end
end

if scenario == "write" then
  -- Counts acknowledged writes, to check afterwards that none was lost.
  function response(status, headers, body)
    if status == 201 then created = created + 1 end
  end
end

function done(summary, latency, requests)
  local acknowledged = 0
  for _, thread in ipairs(threads) do
    acknowledged = acknowledged + (thread:get("created") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"errors":%d,"status_errors":%d,"timeouts":%d,"acknowledged_writes":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect + e.read + e.write + e.status + e.timeout, e.status, e.timeout,
    acknowledged))
end
