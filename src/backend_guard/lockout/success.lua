-- backend_guard lockout: a successful login, atomically, timed by the server clock.
-- Clears the (account, address) scope and the consecutive-failure ceiling, takes back this attempt's own
-- reservation from the account and address scopes (undoing a lock that reservation set), and remembers the
-- address as one the account logs in from. Never clears an address-wide counter.
-- KEYS and the scope format are those of the reserve script (_RESERVE_DOC in backend_guard/_lockout_scripts.py):
-- 1 pair, 2 account (the account scope's five numbers, then the ceiling's), 3 remembered good addresses,
-- 4 address. The policy constants come first; KEEP is the number of good addresses remembered.
-- ARGV: 1 address member ('' = none), 2 counted mask, 3 newly locked mask (both from the reservation),
-- 4 named (0/1).
-- Returns {failures the pair had, 1 when the pair was locked}.
-- State is read with MGET, never GET: MGET reads a key of another type (a hash left by an older version) as
-- missing where GET would fail the whole script with WRONGTYPE; the SET below then replaces it.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member = ARGV[1]
local counted = tonumber(ARGV[2])
local newly = tonumber(ARGV[3])
local named = ARGV[4] == '1'
local KI = {1, 2, 2, 4}
local AT = {0, 0, 5, 0}
local BIT = {1, 2, 4, 8}

-- the numbers stored under key: ten for the account's key (index 2), five for the others
local function parse(v, size)
  if v and #v == 8 * size then
    return {struct.unpack('<' .. string.rep('d', size), v)}
  end
  local out = {}
  for j = 1, size do out[j] = 0 end
  return out
end

local function dead(a, at)
  return a[at + 1] == 0 and a[at + 3] <= now and (a[at + 4] == 0 or a[at + 5] <= now)
end

local had_n, had_lock = 0, 0
local pair = parse(redis.call('MGET', KEYS[1])[1], 5)
if pair[2] > now then had_n = pair[1] end
if pair[3] > now then had_lock = 1 end
redis.call('DEL', KEYS[1])

for _, i in ipairs({2, 4}) do
  local key = KEYS[KI[i]]
  local ceiling = i == 2 and named and EN[3] == 1  -- the account's key holds the ceiling too
  local take = EN[i] == 1 and counted % (2 * BIT[i]) >= BIT[i]
  if key and (ceiling or take) then
    local size = (i == 2) and 10 or 5
    local a = parse(redis.call('MGET', key)[1], size)
    local at = AT[i]
    local write = ceiling
    if take and a[at + 2] > now then  -- take back this attempt's own reservation
      if newly % (2 * BIT[i]) >= BIT[i] then
        a[at + 3] = 0
        a[at + 4] = math.max(0, a[at + 4] - 1)
        a[at + 1] = TH[i] - 1
      elseif a[at + 1] > 0 then
        a[at + 1] = a[at + 1] - 1
      end
      write = true
    end
    if write then
      if ceiling then
        for j = 6, 10 do a[j] = 0 end  -- a login clears the consecutive-failure ceiling
      end
      local empty = dead(a, 0) and (size == 5 or dead(a, 5))
      if empty then
        redis.call('DEL', key)
      else
        redis.call('SET', key, struct.pack('<' .. string.rep('d', size), unpack(a)), 'KEEPTTL')
      end
    end
  end
end

if member ~= '' then
  redis.call('ZADD', KEYS[3], now, member)
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - REMEMBER)
  local card = redis.call('ZCARD', KEYS[3])
  if card > KEEP then redis.call('ZREMRANGEBYRANK', KEYS[3], 0, card - KEEP - 1) end
  redis.call('PEXPIRE', KEYS[3], REMEMBER)
end
return {had_n, had_lock}
