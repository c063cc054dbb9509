-- GCRA (the generic cell rate algorithm, a token bucket without a refill loop), several limits charged
-- all-or-nothing (backend_guard.ratelimit).
-- KEYS[i]: the theoretical arrival time (TAT) in microseconds (Redis clock).
-- ARGV as in ratelimit_fixed_window.lua. `amount` hits may arrive at once; then one per window/amount.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local spend = ARGV[1] == '1'
local n = #KEYS
local tol = 1 -- one microsecond of slack for the rounding of the stored arrival time
local st = {}
local ok = true
for i = 1, n do
  local amount = tonumber(ARGV[3 * i - 1])
  local span = tonumber(ARGV[3 * i]) * 1000
  local cost = tonumber(ARGV[3 * i + 1])
  local interval = span / amount
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then
    tat = now
  end
  local new = tat + cost * interval
  local blocked = new - now > span + tol
  if blocked then
    ok = false
  end
  st[i] = {amount, span, cost, interval, tat, new, blocked}
end
local out = {ok and 1 or 0}
for i = 1, n do
  local amount, span, cost, interval, tat, new, blocked = unpack(st[i])
  if ok and spend and cost > 0 then
    local stored = string.format('%.0f', new)
    tat = tonumber(stored)
    redis.call('SET', KEYS[i], stored, 'PX', math.max(1, math.ceil((tat - now) / 1000)))
  end
  local retry = 0
  if blocked then
    if cost > amount then
      retry = span
    else
      retry = new - span - now
    end
  end
  local remaining = math.max(0, math.min(amount, math.floor((span - (tat - now) + tol) / interval)))
  -- reset: more quota when remaining + 1 would pass (its arrival time no more than span + tol ahead)
  local reset = 0
  if remaining < amount then
    reset = tat + (remaining + 1) * interval - span - tol - now
  end
  out[#out + 1] = remaining
  out[#out + 1] = math.ceil(math.max(0, reset) / 1000)
  out[#out + 1] = math.ceil(math.max(0, retry) / 1000)
end
return out
