-- Sliding-window counter, several limits charged all-or-nothing (backend_guard.ratelimit).
-- KEYS[i]: three doubles packed by struct ('<ddd': w the window number, c the count in that window, p the count
-- in the window before; packing is cheaper than formatting and parsing text), written with one SET ... PX.
-- Keys are read with MGET, never GET: a key of another type (a hash left by an older version) reads as missing
-- instead of failing the script with WRONGTYPE until it expires; the SET replaces it.
-- ARGV as in ratelimit_fixed_window.lua; times are computed in microseconds from the Redis clock.
-- The estimate of hits in the last `window` is c + p * (share of the previous window still inside it).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local spend = ARGV[1] == '1'
local n = #KEYS
local eps = 1e-9
local floor, ceil, max = math.floor, math.ceil, math.max

-- (c, p) of window w from a stored value: the previous window's count carries over as p, older ones are gone.
local function counts(v, w)
  if v and #v == 24 then
    local sw, sc, sp = struct.unpack('<ddd', v)
    if sw == w then
      return sc, sp
    elseif sw == w - 1 then
      return 0, sc
    end
  end
  return 0, 0
end

local function save(key, w, c, p, span)
  redis.call('SET', key, struct.pack('<ddd', w, c, p), 'PX', ceil((w * span + 2 * span - now) / 1000))
end

-- The reply numbers of one limit: remaining, reset ms, retry ms.
local function numbers(amount, span, cost, c, p, elapsed, blocked)
  local retry = 0
  if blocked then
    local need = amount - cost
    if need < 0 then
      retry = 2 * span - elapsed
    elseif c <= need and p > 0 then
      retry = span - span * (need - c) / p - elapsed
    else
      retry = 2 * span - elapsed - span * need / c
    end
  end
  -- reset (the RateLimit "t"): until additional quota is made available (until remaining + 1 would pass):
  -- within this window when the previous window's decay frees the next whole unit, else in the next window as
  -- this window's count decays; 0 when all of it is
  local remaining = max(0, floor(amount - (c + p * (span - elapsed) / span) + eps))
  local reset = 0
  if remaining < amount then
    local g = amount - remaining - 1
    if p > 0 and c <= g then
      reset = span - span * (g - c) / p - elapsed
    elseif c > 0 then
      reset = 2 * span - elapsed - span * g / c
    end
  end
  return remaining, ceil(max(0, reset) / 1000), ceil(max(0, retry) / 1000)
end

-- One limit (most requests): the same steps as below, without the per-limit tables.
if n == 1 then
  local amount, span, cost = tonumber(ARGV[2]), tonumber(ARGV[3]) * 1000, tonumber(ARGV[4])
  local w = floor(now / span)
  local c, p = counts(redis.call('MGET', KEYS[1])[1], w)
  local elapsed = now - w * span
  local blocked = c + p * (span - elapsed) / span + cost > amount + eps
  if not blocked and spend and cost > 0 then
    c = c + cost
    save(KEYS[1], w, c, p, span)
  end
  local remaining, reset, retry = numbers(amount, span, cost, c, p, elapsed, blocked)
  return {blocked and 0 or 1, remaining, reset, retry}
end

local st = {}
local ok = true
local vals = redis.call('MGET', unpack(KEYS))
for i = 1, n do
  local amount = tonumber(ARGV[3 * i - 1])
  local span = tonumber(ARGV[3 * i]) * 1000
  local cost = tonumber(ARGV[3 * i + 1])
  local w = floor(now / span)
  local c, p = counts(vals[i], w)
  local elapsed = now - w * span
  local blocked = c + p * (span - elapsed) / span + cost > amount + eps
  if blocked then
    ok = false
  end
  st[i] = {amount, span, cost, w, c, p, elapsed, blocked}
end
local out = {ok and 1 or 0}
for i = 1, n do
  local amount, span, cost, w, c, p, elapsed, blocked = unpack(st[i])
  if ok and spend and cost > 0 then
    c = c + cost
    save(KEYS[i], w, c, p, span)
  end
  local remaining, reset, retry = numbers(amount, span, cost, c, p, elapsed, blocked)
  out[#out + 1] = remaining
  out[#out + 1] = reset
  out[#out + 1] = retry
end
return out
