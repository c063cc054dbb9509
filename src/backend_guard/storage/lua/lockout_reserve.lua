-- backend_guard lockout: check, and (mode 1) reserve one attempt, atomically, timed by the server clock.
-- The policy is not an argument: _lockout_scripts.py puts it in front of this body as constants (one script per
-- policy), so no call spends time packing or parsing it. Per scope i (1 pair, 2 account, 3 ceiling,
-- 4 address): EN[i] enabled (0/1), TH threshold, WIN window ms, BASE first lock ms, FAC backoff factor*1000,
-- MAXD longest lock ms, STRIKE ms a strike is remembered; REMEMBER ms a good address counts as known;
-- EXTEND 1 when a failure while locked extends the lock.
-- KEYS: 1 pair (account, address), 2 account, 3 ceiling (account), 4 remembered good addresses (zset),
--       5 address (only when the address scope is on). Each scope is five doubles packed by struct ('<ddddd':
--       n failures, w window end, u locked until, s strikes, x strikes forgotten at; times in ms).
-- ARGV: 1 address member ('' = none), 2 mode (0 check, 1 count), 3 named (0: an empty identifier, counted per
--       pair and address only, never as an account).
-- Returns {allowed, retry ms, refusing scope, newly locked mask, counted mask, remaining, known address,
--          longest lock set now (ms)}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member = ARGV[1]
local count = ARGV[2] == '1'
local named = ARGV[3] == '1'
local KI = {1, 2, 3, 5}
local BIT = {1, 2, 4, 8}

local known = false
if member ~= '' then
  local score = redis.call('ZSCORE', KEYS[4], member)
  if score and tonumber(score) > now - REMEMBER then known = true end
end
local vals
if EN[4] == 1 then
  vals = redis.call('MGET', KEYS[1], KEYS[2], KEYS[3], KEYS[5])
else
  vals = redis.call('MGET', KEYS[1], KEYS[2], KEYS[3])
end

-- st[i] = {n, w, u, s, x, exempt}
local st = {}
local refused, refusing = 0, 0
for i = 1, 4 do
  if EN[i] == 1 and (named or i == 1 or i == 4) then
    local n, w, u, s, x = 0, 0, 0, 0, 0
    local v = vals[i]
    if v and #v == 40 then n, w, u, s, x = struct.unpack('<ddddd', v) end
    if w <= now then n = 0; w = 0 end
    if x <= now then s = 0; x = 0 end
    if u <= now then u = 0 end
    local exempt = known and (i == 2 or i == 4)
    if u > 0 and not exempt and u - now > refused then
      refused = u - now
      refusing = i
    end
    st[i] = {n, w, u, s, x, exempt}
  end
end

local function duration(i, strikes)
  return math.floor(math.min(MAXD[i], BASE[i] * (FAC[i] / 1000) ^ math.min(strikes - 1, 60)))
end

local function save(i, r)
  local n, w, u, s, x = r[1], r[2], r[3], r[4], r[5]
  if n == 0 and u <= now and s == 0 then
    redis.call('DEL', KEYS[KI[i]])
  else
    redis.call('SET', KEYS[KI[i]], struct.pack('<ddddd', n, w, u, s, x), 'PX', math.max(1, math.max(w, u, x) - now))
  end
end

local function remaining(newly)
  local left = -1
  for i = 1, 4 do
    local r = st[i]
    if r and not r[6] then
      local l = TH[i] - r[1]
      if r[3] > 0 or newly % (2 * BIT[i]) >= BIT[i] then l = 0 end
      if left < 0 or l < left then left = l end
    end
  end
  return left
end

local k = known and 1 or 0
if refused > 0 then
  if EXTEND == 1 and count then
    for i = 1, 4 do
      local r = st[i]
      if r and r[3] > 0 and not r[6] then
        r[3] = math.max(r[3], now + duration(i, math.max(r[4], 1)))
        r[2] = math.max(r[2], r[3] + WIN[i])
        r[5] = math.max(r[5], r[2])
        if r[3] - now > refused then refused = r[3] - now end
        save(i, r)
      end
    end
  end
  return {0, refused, refusing, 0, 0, 0, k, 0}
end
if not count then
  return {1, 0, 0, 0, 0, remaining(0), k, 0}
end

local newly, counted, longest = 0, 0, 0
for i = 1, 4 do
  local r = st[i]
  if r and r[3] == 0 then
    if r[1] == 0 then r[2] = now + WIN[i] end
    r[1] = r[1] + 1
    counted = counted + BIT[i]
    if r[1] >= TH[i] then
      r[4] = r[4] + 1
      r[3] = now + duration(i, r[4])
      r[1] = TH[i] - 1
      r[2] = r[3] + WIN[i]
      r[5] = math.max(now + STRIKE[i], r[2])
      newly = newly + BIT[i]
      longest = math.max(longest, r[3] - now)
    end
    save(i, r)
  end
end
return {1, 0, 0, newly, counted, remaining(newly), k, longest}
