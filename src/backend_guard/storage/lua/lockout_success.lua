-- backend_guard lockout: a successful login, atomically, timed by the server clock.
-- Clears the (account, address) scope and the consecutive-failure ceiling, takes back this attempt's own
-- reservation from the account and address scopes (undoing a lock that reservation set), and remembers the
-- address as one the account logs in from. Never clears an address-wide counter.
-- KEYS and the scope format are those of the reserve script (_RESERVE_DOC in backend_guard/_lockout_scripts.py);
-- the policy constants come first; KEEP is the number of good addresses remembered.
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
local KI = {1, 2, 3, 5}
local BIT = {1, 2, 4, 8}

local function parse(v)
  if v and #v == 40 then
    local n, w, u, s, x = struct.unpack('<ddddd', v)
    return n, w, u, s, x
  end
  return 0, 0, 0, 0, 0
end

local had_n, had_lock = 0, 0
local pn, pw, pu = parse(redis.call('MGET', KEYS[1])[1])
if pw > now then had_n = pn end
if pu > now then had_lock = 1 end
redis.call('DEL', KEYS[1])
if EN[3] == 1 and named then redis.call('DEL', KEYS[3]) end

for _, i in ipairs({2, 4}) do
  local key = KEYS[KI[i]]
  if key and EN[i] == 1 and counted % (2 * BIT[i]) >= BIT[i] then
    local n, w, u, s, x = parse(redis.call('MGET', key)[1])
    if w > now then
      if newly % (2 * BIT[i]) >= BIT[i] then
        u = 0
        s = math.max(0, s - 1)
        n = TH[i] - 1
      elseif n > 0 then
        n = n - 1
      end
      if n == 0 and u <= now and (s == 0 or x <= now) then
        redis.call('DEL', key)
      else
        redis.call('SET', key, struct.pack('<ddddd', n, w, u, s, x), 'KEEPTTL')
      end
    end
  end
end

if member ~= '' then
  redis.call('ZADD', KEYS[4], now, member)
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - REMEMBER)
  local card = redis.call('ZCARD', KEYS[4])
  if card > KEEP then redis.call('ZREMRANGEBYRANK', KEYS[4], 0, card - KEEP - 1) end
  redis.call('PEXPIRE', KEYS[4], REMEMBER)
end
return {had_n, had_lock}
