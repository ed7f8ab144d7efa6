-- wrk script: cycles over prepared requests (one per line of $IIOT_WRK_REQUESTS:
-- METHOD \t PATH \t Header: value|Header: value \t BODY) and prints a JSON summary on stderr.

local requests = {}
local counter = 0

local function split(text, sep)
  local out = {}
  for piece in string.gmatch(text, "([^" .. sep .. "]+)") do
    out[#out + 1] = piece
  end
  return out
end

function init(args)
  for line in io.lines(os.getenv("IIOT_WRK_REQUESTS")) do
    local fields = {}
    for field in string.gmatch(line .. "\t", "([^\t]*)\t") do
      fields[#fields + 1] = field
    end
    local headers = {}
    for _, pair in ipairs(split(fields[3] or "", "|")) do
      local name, value = string.match(pair, "^([^:]+):%s*(.*)$")
      if name then headers[name] = value end
    end
    local body = fields[4]
    if body == "" then body = nil end
    requests[#requests + 1] = wrk.format(fields[1], fields[2], headers, body)
  end
  -- Threads start at different offsets so that they do not send the same request together.
  counter = math.random(#requests)
end

function request()
  counter = counter % #requests + 1
  return requests[counter]
end

function done(summary, latency, requests)
  io.stderr:write(string.format(
    '{"requests": %d, "duration_us": %d, "status_errors": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
