-- backend_guard lockout: a successful login, atomically, timed by the server clock.
-- Clears the (account, address) scope and the consecutive-failure ceiling, takes back this attempt's own
-- reservation from the account and address scopes (undoing a lock that reservation set), and remembers the
-- address as one the account logs in from. Never clears an address-wide counter.
-- KEYS as lockout_reserve.lua. ARGV: 1 address member, 2 remember-for ms, 3 max remembered, 4 counted mask,
-- 5 newly locked mask, 6 the policy string of lockout_reserve.lua.
-- Returns {failures the pair had, 1 when the pair was locked}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member = ARGV[1]
local remember = tonumber(ARGV[2])
local keep = tonumber(ARGV[3])
local counted = tonumber(ARGV[4])
local newly = tonumber(ARGV[5])
local keyidx = {1, 2, 3, 5}
local cfg = {}
for v in string.gmatch(ARGV[6], '[^,]+') do cfg[#cfg + 1] = tonumber(v) end

local pair = redis.call('HMGET', KEYS[1], 'n', 'w', 'u')
local had_n, had_lock = 0, 0
if (tonumber(pair[2]) or 0) > now then had_n = tonumber(pair[1]) or 0 end
if (tonumber(pair[3]) or 0) > now then had_lock = 1 end
redis.call('DEL', KEYS[1])
if cfg[1 + 2 * 7] == 1 then redis.call('DEL', KEYS[3]) end

for _, i in ipairs({2, 4}) do
  local o = 1 + (i - 1) * 7
  local key = KEYS[keyidx[i]]
  local bit = 2 ^ (i - 1)
  if key and cfg[o] == 1 and counted % (2 * bit) >= bit then
    local v = redis.call('HMGET', key, 'n', 'w', 'u', 's', 'x')
    local n, w, u, s, x = tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0,
                          tonumber(v[4]) or 0, tonumber(v[5]) or 0
    if w > now then
      if newly % (2 * bit) >= bit then
        u = 0
        s = math.max(0, s - 1)
        n = cfg[o + 1] - 1
      elseif n > 0 then
        n = n - 1
      end
      if n == 0 and u <= now and (s == 0 or x <= now) then
        redis.call('DEL', key)
      else
        redis.call('HSET', key, 'n', n, 'u', u, 's', s)
      end
    end
  end
end

if member ~= '' then
  redis.call('ZADD', KEYS[4], now, member)
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - remember)
  local card = redis.call('ZCARD', KEYS[4])
  if card > keep then redis.call('ZREMRANGEBYRANK', KEYS[4], 0, card - keep - 1) end
  redis.call('PEXPIRE', KEYS[4], remember)
end
return {had_n, had_lock}
