-- Refresh-token rotation for one family, atomically, timed by the Redis clock.
-- KEYS[1]: the family hash (fields cur, prev, pu, pd, sealed; rv once revoked for reuse)
-- KEYS[2]: the subject's set of family ids (same hash tag)
-- ARGV[1]: SHA-256 digest of the presented refresh token
-- ARGV[2]: digest of the successor (signed by the caller before this call)
-- ARGV[3]: the successor pair, sealed under a key only the presented token's holder can derive ('' = no grace)
-- ARGV[4]: grace window in milliseconds
-- ARGV[5]: the family id
-- ARGV[6]: idle timeout in milliseconds (0 = none): a family unused for longer (field lu: last issue or rotation,
--          ms) ends here, as a logout would
-- Returns {0} unknown or logged-out family, {1} rotated, {2, sealed} grace replay, {3} reuse (family revoked),
--         {4} the family idled out (now deleted).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local f = redis.call('HMGET', KEYS[1], 'cur', 'prev', 'pu', 'pd', 'sealed', 'rv', 'lu')
if f[6] then
  return {3}
end
if not f[1] then
  return {0}
end
local idle = tonumber(ARGV[6])
if idle > 0 and f[7] and now - tonumber(f[7]) > idle then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[5])
  return {4}
end
if f[1] == ARGV[1] then
  redis.call('HSET', KEYS[1], 'cur', ARGV[2], 'prev', ARGV[1], 'pu', tostring(now + tonumber(ARGV[4])),
    'pd', '0', 'sealed', ARGV[3], 'lu', tostring(now))
  return {1}
end
if f[2] == ARGV[1] and f[4] == '0' and f[5] and f[5] ~= '' and now < tonumber(f[3]) then
  redis.call('HSET', KEYS[1], 'pd', '1', 'sealed', '')
  return {2, f[5]}
end
-- Any other presentation of a token of this family is reuse: keep a tombstone until the family's own expiry.
-- HSET before HDEL: the hash never becomes empty, so its TTL (the family's absolute expiry) survives.
redis.call('HSET', KEYS[1], 'rv', '1')
redis.call('HDEL', KEYS[1], 'cur', 'prev', 'pu', 'pd', 'sealed')
redis.call('SREM', KEYS[2], ARGV[5])
return {3}
