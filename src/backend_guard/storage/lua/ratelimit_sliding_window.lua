-- Sliding-window counter, several limits charged all-or-nothing (backend_guard.ratelimit).
-- KEYS[i]: a string 'w:c:p' (w the window number, c the count in that window, p the count in the window
-- before), read for every limit with one MGET and written with one SET ... PX.
-- ARGV as in ratelimit_fixed_window.lua; times are computed in microseconds from the Redis clock.
-- The estimate of hits in the last `window` is c + p * (share of the previous window still inside it).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local spend = ARGV[1] == '1'
local n = #KEYS
local eps = 1e-9
local st = {}
local ok = true
local vals = redis.call('MGET', unpack(KEYS))
for i = 1, n do
  local amount = tonumber(ARGV[3 * i - 1])
  local span = tonumber(ARGV[3 * i]) * 1000
  local cost = tonumber(ARGV[3 * i + 1])
  local w = math.floor(now / span)
  local sw, c, p
  if vals[i] then
    local a, b, d = string.match(vals[i], '^(%d+):(%d+):(%d+)$')
    sw, c, p = tonumber(a), tonumber(b) or 0, tonumber(d) or 0
  end
  if sw == nil then
    c, p = 0, 0
  elseif sw == w - 1 then
    p, c = c, 0
  elseif sw ~= w then
    c, p = 0, 0
  end
  local elapsed = now - w * span
  local est = c + p * (span - elapsed) / span
  local blocked = est + cost > amount + eps
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
    redis.call('SET', KEYS[i], string.format('%d:%d:%d', w, c, p), 'PX', math.ceil((w * span + 2 * span - now) / 1000))
  end
  local est = c + p * (span - elapsed) / span
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
  -- reset (the RateLimit "t"): until additional quota is made available: the next whole unit when the
  -- previous window's decay frees it within this window, else this window's end; 0 when all of it is
  local remaining = math.max(0, math.floor(amount - est + eps))
  local reset = 0
  if remaining < amount then
    local g = amount - remaining - 1
    if p > 0 and c <= g then
      reset = span - span * (g - c) / p - elapsed
    elseif c > 0 then
      reset = span - elapsed
    end
  end
  out[#out + 1] = remaining
  out[#out + 1] = math.ceil(math.max(0, reset) / 1000)
  out[#out + 1] = math.ceil(math.max(0, retry) / 1000)
end
return out
