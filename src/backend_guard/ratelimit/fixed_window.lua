-- Fixed window, several limits charged all-or-nothing (backend_guard.ratelimit).
-- KEYS[i]: one counter per limit. ARGV[1]: 1 = spend, 0 = peek.
-- ARGV[2+3(i-1)..]: amount, window in ms, cost of limit i.
-- Returns {allowed, remaining_1, reset_ms_1, retry_ms_1, remaining_2, ...}; reset_ms: until more quota is
-- available (until remaining + 1 would pass; 0 when all of it is), retry_ms: until this request would pass.
-- A window starts at the first hit of its key and lasts `window` ms (the key's time to live).
local spend = ARGV[1] == '1'
local n = #KEYS
local counts, ttls, fresh, blocked = {}, {}, {}, {}
local ok = true
for i = 1, n do
  local amount = tonumber(ARGV[3 * i - 1])
  local window = tonumber(ARGV[3 * i])
  local cost = tonumber(ARGV[3 * i + 1])
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  local ttl = redis.call('PTTL', KEYS[i])
  -- No time to live (a missing key): INCRBY below makes it, and it must then get one.
  fresh[i] = ttl < 0
  if fresh[i] then
    ttl = window
  end
  counts[i] = count
  ttls[i] = ttl
  blocked[i] = count + cost > amount
  if blocked[i] then
    ok = false
  end
end
local out = {ok and 1 or 0}
for i = 1, n do
  local amount = tonumber(ARGV[3 * i - 1])
  local window = tonumber(ARGV[3 * i])
  local cost = tonumber(ARGV[3 * i + 1])
  local count = counts[i]
  if ok and spend and cost > 0 then
    count = redis.call('INCRBY', KEYS[i], cost)
    if fresh[i] then
      redis.call('PEXPIRE', KEYS[i], window)
    end
  end
  local retry = 0
  if blocked[i] then
    -- PTTL rounds down and a key lives through its last millisecond: retry one ms later.
    retry = ttls[i] + 1
  end
  -- reset: quota comes back all at once when the counter expires; an unused key has nothing to wait for
  local reset = 0
  if count > 0 then
    reset = ttls[i]
  end
  out[#out + 1] = math.max(0, amount - count)
  out[#out + 1] = reset
  out[#out + 1] = retry
end
return out
