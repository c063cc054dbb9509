-- backend_guard lockout: check, and (mode 1) reserve one attempt, atomically, timed by the server clock.
-- Generated for one policy by backend_guard.lockout._scripts.reserve_lua: only the enabled scopes appear, with
-- their thresholds and times as literals, each scope's state in locals (no table, no closure per call).
-- Scopes: 1 pair (account, address), 2 account, 3 ceiling (account), 4 address. An address the account logged
-- in from recently (a "known" address) is exempt from the account and address scopes.
-- KEYS: 1 pair, 2 account (the account scope then the ceiling), 3 remembered good addresses (zset), 4 address
--       (only when that scope is on). Each scope is five doubles packed by struct ('<ddddd': n failures, w
--       window end, u locked until, s strikes, x strikes forgotten at; times in ms); the account's key holds
--       ten ('<dddddddddd'), its two scopes' in a row.
-- ARGV: 1 address member ('' = none), 2 mode (0 check, 1 count), 3 named (0: an empty identifier, counted per
--       pair and address only, never as an account).
-- Returns {allowed, retry ms, refusing scope, newly locked mask, counted mask, remaining, known address,
--          longest lock set now (ms)}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member = ARGV[1]
local count = ARGV[2] == '1'
local named = ARGV[3] == '1'
local floor, max, min, pack, unpack = math.floor, math.max, math.min, struct.pack, struct.unpack
local known = false
if member ~= '' then
  local score = redis.call('ZSCORE', KEYS[3], member)
  if score and tonumber(score) > now - 2592000000 then known = true end
end
local k = known and 1 or 0
local vals = redis.call('MGET', KEYS[1], KEYS[2], KEYS[4])
local v
local n1, w1, u1, s1, x1 = 0, 0, 0, 0, 0
v = vals[1]
if v and #v == 40 then n1, w1, u1, s1, x1 = unpack('<ddddd', v) end
if w1 <= now then n1 = 0; w1 = 0 end
if x1 <= now then s1 = 0; x1 = 0 end
if u1 <= now then u1 = 0 end
local n2, w2, u2, s2, x2, n3, w3, u3, s3, x3 = 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
if named then
  v = vals[2]
  if v and #v == 80 then n2, w2, u2, s2, x2, n3, w3, u3, s3, x3 = unpack('<dddddddddd', v) end
  if w2 <= now then n2 = 0; w2 = 0 end
  if x2 <= now then s2 = 0; x2 = 0 end
  if u2 <= now then u2 = 0 end
  if w3 <= now then n3 = 0; w3 = 0 end
  if x3 <= now then s3 = 0; x3 = 0 end
  if u3 <= now then u3 = 0 end
end
local n4, w4, u4, s4, x4 = 0, 0, 0, 0, 0
v = vals[3]
if v and #v == 40 then n4, w4, u4, s4, x4 = unpack('<ddddd', v) end
if w4 <= now then n4 = 0; w4 = 0 end
if x4 <= now then s4 = 0; x4 = 0 end
if u4 <= now then u4 = 0 end
local refused, refusing = 0, 0
if u1 - now > refused then refused = u1 - now; refusing = 1 end
if named and not known and u2 - now > refused then refused = u2 - now; refusing = 2 end
if named and u3 - now > refused then refused = u3 - now; refusing = 3 end
if not known and u4 - now > refused then refused = u4 - now; refusing = 4 end
if refused > 0 then
  return {0, refused, refusing, 0, 0, 0, k, 0}
end
if not count then
  local left = -1
  do
    local l = 5 - n1
    if u1 > 0 then l = 0 end
    if left < 0 or l < left then left = l end
  end
  if named and not known then
    local l = 20 - n2
    if u2 > 0 then l = 0 end
    if left < 0 or l < left then left = l end
  end
  if named then
    local l = 100 - n3
    if u3 > 0 then l = 0 end
    if left < 0 or l < left then left = l end
  end
  if not known then
    local l = 10 - n4
    if u4 > 0 then l = 0 end
    if left < 0 or l < left then left = l end
  end
  return {1, 0, 0, 0, 0, left, k, 0}
end
local newly, counted, longest = 0, 0, 0
local da = false
if u1 == 0 then
  if n1 == 0 then w1 = now + 900000 end
  n1 = n1 + 1
  counted = counted + 1
  if n1 >= 5 then
    s1 = s1 + 1
    u1 = now + floor(min(3600000, 300000 * (2000 / 1000) ^ min(s1 - 1, 60)))
    n1 = 4
    w1 = u1 + 900000
    x1 = max(now + 86400000, w1)
    newly = newly + 1
    if u1 - now > longest then longest = u1 - now end
  end
  redis.call('SET', KEYS[1], pack('<ddddd', n1, w1, u1, s1, x1), 'PX', max(1, max(w1, u1, x1) - now))
end
if named and u2 == 0 then
  if n2 == 0 then w2 = now + 900000 end
  n2 = n2 + 1
  counted = counted + 2
  if n2 >= 20 then
    s2 = s2 + 1
    u2 = now + floor(min(3600000, 300000 * (2000 / 1000) ^ min(s2 - 1, 60)))
    n2 = 19
    w2 = u2 + 900000
    x2 = max(now + 86400000, w2)
    newly = newly + 2
    if u2 - now > longest then longest = u2 - now end
  end
  da = true
end
if named and u3 == 0 then
  if n3 == 0 then w3 = now + 86400000 end
  n3 = n3 + 1
  counted = counted + 4
  if n3 >= 100 then
    s3 = s3 + 1
    u3 = now + floor(min(3600000, 300000 * (2000 / 1000) ^ min(s3 - 1, 60)))
    n3 = 99
    w3 = u3 + 86400000
    x3 = max(now + 86400000, w3)
    newly = newly + 4
    if u3 - now > longest then longest = u3 - now end
  end
  da = true
end
if u4 == 0 then
  if n4 == 0 then w4 = now + 900000 end
  n4 = n4 + 1
  counted = counted + 8
  if n4 >= 10 then
    s4 = s4 + 1
    u4 = now + floor(min(3600000, 300000 * (2000 / 1000) ^ min(s4 - 1, 60)))
    n4 = 9
    w4 = u4 + 900000
    x4 = max(now + 86400000, w4)
    newly = newly + 8
    if u4 - now > longest then longest = u4 - now end
  end
  redis.call('SET', KEYS[4], pack('<ddddd', n4, w4, u4, s4, x4), 'PX', max(1, max(w4, u4, x4) - now))
end
if da then
  redis.call('SET', KEYS[2], pack('<dddddddddd', n2, w2, u2, s2, x2, n3, w3, u3, s3, x3), 'PX', max(1, max(w2, u2, x2, w3, u3, x3) - now))
end
local left = -1
do
  local l = 5 - n1
  if u1 > 0 then l = 0 end
  if left < 0 or l < left then left = l end
end
if named and not known then
  local l = 20 - n2
  if u2 > 0 then l = 0 end
  if left < 0 or l < left then left = l end
end
if named then
  local l = 100 - n3
  if u3 > 0 then l = 0 end
  if left < 0 or l < left then left = l end
end
if not known then
  local l = 10 - n4
  if u4 > 0 then l = 0 end
  if left < 0 or l < left then left = l end
end
return {1, 0, 0, newly, counted, left, k, longest}
