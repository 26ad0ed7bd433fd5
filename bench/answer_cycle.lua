-- The answer cycle for wrk (bench/answer_bench.py runs it): each wrk thread has one connection
-- and is one signed-in participant. A cycle is GET the challenge page, then POST the answer
-- form (its CSRF token and challenge id parsed from the page) and get the 303. When a test is
-- over (the 303 goes to the results), the participant moves on to its next participation.
--
-- Environment: ANSWER_BENCH_PEOPLE, a file of one participant a line ("cookie<TAB>path<TAB>
-- path..."), and ANSWER_BENCH_OUT, where `done` writes the cycles' figures as JSON.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } jalon_timespec;
  int clock_gettime(int clk_id, jalon_timespec *tp);
]]
local ts = ffi.new("jalon_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

-- main thread: hand each thread its participant ----------------------------------------------

local people = {}
local threads = {}

local function split(line, sep)
  local fields = {}
  for field in string.gmatch(line, "([^" .. sep .. "]+)") do
    fields[#fields + 1] = field
  end
  return fields
end

function setup(thread)
  if #people == 0 then
    local file = assert(io.open(os.getenv("ANSWER_BENCH_PEOPLE"), "r"))
    for line in file:lines() do
      if #line > 0 then people[#people + 1] = line end
    end
    file:close()
  end
  local index = #threads + 1
  local fields = split(people[(index - 1) % #people + 1], "\t")
  thread:set("cookie", fields[1])
  thread:set("paths", table.concat(fields, " ", 2))
  threads[index] = thread
end

-- each thread: one participant ----------------------------------------------------------------

local queue, path, next_path = {}, nil, 1
local state = "get"          -- the next request: "get" the page or "post" the answer
local form = nil             -- the answer form parsed from the last page
local started = 0            -- when the current cycle's GET was sent
-- figures read back by `done`
latencies = {}               -- one cycle's duration (ms) per completed cycle
errors = 0                   -- unexpected statuses or pages
tests = 0                    -- tests finished
exhausted = 0                -- 1 once every participation of this participant is over

function init(args)
  for p in string.gmatch(_G.paths, "%S+") do queue[#queue + 1] = p end
  path = queue[1]
  next_path = 2
end

local headers_get = nil
local headers_post = nil

local function urlencode(text)
  return (string.gsub(text, "[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

function request()
  if headers_get == nil then
    headers_get = { ["Cookie"] = cookie }
    headers_post = {
      ["Cookie"] = cookie,
      ["Content-Type"] = "application/x-www-form-urlencoded",
    }
  end
  if state == "post" then
    return wrk.format("POST", path, headers_post, form)
  end
  if exhausted == 1 then
    return wrk.format("GET", "/healthz", headers_get) -- out of tests: the bench warns
  end
  started = now_ms()
  return wrk.format("GET", path, headers_get)
end

local function answer_form(body)
  local csrf = string.match(body, 'name="_csrf_token" value="([^"]+)"')
  local challenge = string.match(body, 'name="challenge_id" value="([^"]*)"')
  local kind = string.match(body, 'name="type" value="([^"]*)"') or ""
  if csrf == nil or challenge == nil then return nil end
  -- a well-formed answer, right or wrong: the first proposal, or a word
  local value = (kind == "short_text") and "no idea" or "0"
  return "_csrf_token=" .. urlencode(csrf) .. "&challenge_id=" .. urlencode(challenge)
    .. "&type=" .. urlencode(kind) .. "&answer=" .. urlencode(value)
end

local function next_participation()
  tests = tests + 1
  if next_path > #queue then
    exhausted = 1
  else
    path = queue[next_path]
    next_path = next_path + 1
  end
end

function response(status, headers, body)
  if exhausted == 1 then return end
  if state == "get" then
    if status == 200 then
      form = answer_form(body)
      if form ~= nil then
        state = "post"
        return
      end
    end
    if status == 303 or status == 302 then -- the test is over: its results
      next_participation()
      return
    end
    errors = errors + 1
    return
  end
  state = "get"
  if status ~= 303 then
    errors = errors + 1
    return
  end
  latencies[#latencies + 1] = now_ms() - started
  local location = headers["Location"] or headers["location"] or ""
  if string.find(location, "/results", 1, true) then
    next_participation()
  end
end

function done(summary, latency, requests)
  local out = assert(io.open(os.getenv("ANSWER_BENCH_OUT"), "w"))
  out:write('{"threads": [')
  for i, thread in ipairs(threads) do
    local lat = thread:get("latencies")
    local parts = {}
    for j = 1, #lat do parts[j] = string.format("%.3f", lat[j]) end
    if i > 1 then out:write(",") end
    out:write(string.format(
      '{"errors": %d, "tests": %d, "exhausted": %d, "latencies": [%s]}',
      thread:get("errors"), thread:get("tests"), thread:get("exhausted"),
      table.concat(parts, ",")))
  end
  out:write(string.format(
    '], "requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, '
    .. '"write_errors": %d, "timeouts": %d, "status_errors": %d}',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, summary.errors.status))
  out:close()
end
