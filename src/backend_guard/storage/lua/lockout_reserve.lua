-- backend_guard lockout: check, and (mode 1) reserve one attempt, atomically, timed by the server clock.
-- KEYS: 1 pair (account, address), 2 account, 3 ceiling (account), 4 remembered good addresses (zset),
--       5 address (optional). Each scope is a hash: n failures, w window end, u locked until, s strikes,
--       x strikes forgotten at (all times in ms).
-- ARGV: 1 address member ('' = none), 2 remember-for ms, 3 extend while locked (0/1), 4 mode (0 check,
--       1 count), 5 the policy: comma-separated, 7 numbers per scope 1..4: enabled, threshold, window, base,
--       factor*1000, max, strike ttl (one string: packing 28 arguments costs the client more than parsing).
-- Returns {allowed, retry ms, refusing scope, newly locked mask, counted mask, remaining, known address,
--          longest lock set now (ms)}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member = ARGV[1]
local extend = tonumber(ARGV[3])
local mode = tonumber(ARGV[4])
local keyidx = {1, 2, 3, 5}
local cfg = {}
for v in string.gmatch(ARGV[5], '[^,]+') do cfg[#cfg + 1] = tonumber(v) end

local known = 0
if member ~= '' then
  local score = redis.call('ZSCORE', KEYS[4], member)
  if score and tonumber(score) > now - tonumber(ARGV[2]) then known = 1 end
end

local function duration(o, strikes)
  local d = cfg[o + 3] * (cfg[o + 4] / 1000) ^ math.min(strikes - 1, 60)
  return math.floor(math.min(cfg[o + 5], d))
end

local function save(s)
  if s.n == 0 and s.u <= now and s.s == 0 then
    redis.call('DEL', s.key)
    return
  end
  redis.call('HSET', s.key, 'n', s.n, 'w', s.w, 'u', s.u, 's', s.s, 'x', s.x)
  redis.call('PEXPIRE', s.key, math.max(1, math.max(s.w, s.u, s.x) - now))
end

local st = {}
local refused, refusing = 0, 0
for i = 1, 4 do
  local o = 1 + (i - 1) * 7
  local key = KEYS[keyidx[i]]
  if cfg[o] == 1 and key then
    local v = redis.call('HMGET', key, 'n', 'w', 'u', 's', 'x')
    local s = {key = key, o = o, n = tonumber(v[1]) or 0, w = tonumber(v[2]) or 0, u = tonumber(v[3]) or 0,
               s = tonumber(v[4]) or 0, x = tonumber(v[5]) or 0}
    if s.w <= now then s.n = 0; s.w = 0 end
    if s.x <= now then s.s = 0; s.x = 0 end
    if s.u <= now then s.u = 0 end
    s.exempt = (i == 2 or i == 4) and known == 1
    if s.u > 0 and not s.exempt and s.u - now > refused then
      refused = s.u - now
      refusing = i
    end
    st[i] = s
  end
end

local function remaining(newly)
  local r = -1
  for i = 1, 4 do
    local s = st[i]
    if s and not s.exempt then
      local left = cfg[s.o + 1] - s.n
      if s.u > 0 or newly % (2 ^ i) >= 2 ^ (i - 1) then left = 0 end
      if r < 0 or left < r then r = left end
    end
  end
  return r
end

if refused > 0 then
  if extend == 1 and mode == 1 then
    for i = 1, 4 do
      local s = st[i]
      if s and s.u > 0 and not s.exempt then
        s.u = math.max(s.u, now + duration(s.o, math.max(s.s, 1)))
        s.w = math.max(s.w, s.u + cfg[s.o + 2])
        s.x = math.max(s.x, s.w)
        if s.u - now > refused then refused = s.u - now end
        save(s)
      end
    end
  end
  return {0, refused, refusing, 0, 0, 0, known, 0}
end
if mode == 0 then
  return {1, 0, 0, 0, 0, remaining(0), known, 0}
end

local newly, counted, longest = 0, 0, 0
for i = 1, 4 do
  local s = st[i]
  if s and s.u == 0 then
    local o = s.o
    local threshold = cfg[o + 1]
    local window = cfg[o + 2]
    if s.n == 0 then s.w = now + window end
    s.n = s.n + 1
    counted = counted + 2 ^ (i - 1)
    if s.n >= threshold then
      s.s = s.s + 1
      s.u = now + duration(o, s.s)
      s.n = threshold - 1
      s.w = s.u + window
      s.x = math.max(now + cfg[o + 6], s.w)
      newly = newly + 2 ^ (i - 1)
      longest = math.max(longest, s.u - now)
    end
    save(s)
  end
end
return {1, 0, 0, newly, counted, remaining(newly), known, longest}
