-- Moving window (an exact log of hits), several limits charged all-or-nothing (backend_guard.ratelimit).
-- KEYS[i]: a sorted set of hits scored by their time in microseconds (Redis clock).
-- ARGV as in ratelimit_fixed_window.lua. A hit counts while it is younger than `window`.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local stamp = string.format('%.0f', now)
local spend = ARGV[1] == '1'
local n = #KEYS
local counts, blocked = {}, {}
local ok = true
for i = 1, n do
  local amount = tonumber(ARGV[3 * i - 1])
  local span = tonumber(ARGV[3 * i]) * 1000
  local cost = tonumber(ARGV[3 * i + 1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - span)
  counts[i] = redis.call('ZCARD', KEYS[i])
  blocked[i] = counts[i] + cost > amount
  if blocked[i] then
    ok = false
  end
end
local out = {ok and 1 or 0}
for i = 1, n do
  local amount = tonumber(ARGV[3 * i - 1])
  local window = tonumber(ARGV[3 * i])
  local span = window * 1000
  local cost = tonumber(ARGV[3 * i + 1])
  local count = counts[i]
  if ok and spend and cost > 0 then
    for j = 1, cost do
      redis.call('ZADD', KEYS[i], now, stamp .. ':' .. (count + j))
    end
    count = count + cost
    redis.call('PEXPIRE', KEYS[i], window)
  end
  local retry = 0
  if blocked[i] then
    local drop = count + cost - amount
    if cost > amount then
      retry = span
    else
      local oldest = redis.call('ZRANGE', KEYS[i], drop - 1, drop - 1, 'WITHSCORES')
      retry = tonumber(oldest[2]) + span - now
    end
  end
  -- reset: more quota when the oldest hit leaves the window
  local reset = 0
  if count > 0 then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    reset = tonumber(oldest[2]) + span - now
  end
  out[#out + 1] = math.max(0, amount - count)
  out[#out + 1] = math.ceil(reset / 1000)
  out[#out + 1] = math.ceil(math.max(0, retry) / 1000)
end
return out
