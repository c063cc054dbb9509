"""The lockout's packed-state scripts against the hash-based scripts they replaced, on the real Redis.

The reference is the Lua of commit 42145f8 (each scope a hash, the policy a comma string argument), kept here
verbatim apart from the clock. Both versions, and the memory store's Python twin, run the same random
sequences of checks, failures and successes under the same random policy and the same injected clock (the
``TIME`` lines are replaced by a clock argument, so a millisecond boundary cannot split them); every reply must
be identical. Storage formats differ on purpose and are not compared.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from backend_guard.lockout import MAX_ADDRESS_FAILURES, MAX_DURATION, Lockout
from backend_guard.lockout._scripts import LockoutPolicy, ScopeRule, scripts_for
from backend_guard.storage import MemoryStore

from .conftest import FrozenClock

pytestmark = pytest.mark.redis

_TIME = "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
_CLOCK = "local now = tonumber(ARGV[#ARGV])\n"  # the test's clock, passed as the last argument

OLD_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member = ARGV[1]
local extend = tonumber(ARGV[3])
local mode = tonumber(ARGV[4])
local keyidx = {1, 2, 3, 5}
local cfg = {}
for v in string.gmatch(ARGV[5], '[^,]+') do cfg[#cfg + 1] = tonumber(v) end

local known = 0
if member ~= '' then
  local score = redis.call('ZSCORE', KEYS[4], member)
  if score and tonumber(score) > now - tonumber(ARGV[2]) then known = 1 end
end

local function duration(o, strikes)
  local d = cfg[o + 3] * (cfg[o + 4] / 1000) ^ math.min(strikes - 1, 60)
  return math.floor(math.min(cfg[o + 5], d))
end

local function save(s)
  if s.n == 0 and s.u <= now and s.s == 0 then
    redis.call('DEL', s.key)
    return
  end
  redis.call('HSET', s.key, 'n', s.n, 'w', s.w, 'u', s.u, 's', s.s, 'x', s.x)
  redis.call('PEXPIRE', s.key, math.max(1, math.max(s.w, s.u, s.x) - now))
end

local st = {}
local refused, refusing = 0, 0
for i = 1, 4 do
  local o = 1 + (i - 1) * 7
  local key = KEYS[keyidx[i]]
  if cfg[o] == 1 and key then
    local v = redis.call('HMGET', key, 'n', 'w', 'u', 's', 'x')
    local s = {key = key, o = o, n = tonumber(v[1]) or 0, w = tonumber(v[2]) or 0, u = tonumber(v[3]) or 0,
               s = tonumber(v[4]) or 0, x = tonumber(v[5]) or 0}
    if s.w <= now then s.n = 0; s.w = 0 end
    if s.x <= now then s.s = 0; s.x = 0 end
    if s.u <= now then s.u = 0 end
    s.exempt = (i == 2 or i == 4) and known == 1
    if s.u > 0 and not s.exempt and s.u - now > refused then
      refused = s.u - now
      refusing = i
    end
    st[i] = s
  end
end

local function remaining(newly)
  local r = -1
  for i = 1, 4 do
    local s = st[i]
    if s and not s.exempt then
      local left = cfg[s.o + 1] - s.n
      if s.u > 0 or newly % (2 ^ i) >= 2 ^ (i - 1) then left = 0 end
      if r < 0 or left < r then r = left end
    end
  end
  return r
end

if refused > 0 then
  if extend == 1 and mode == 1 then
    for i = 1, 4 do
      local s = st[i]
      if s and s.u > 0 and not s.exempt then
        s.u = math.max(s.u, now + duration(s.o, math.max(s.s, 1)))
        s.w = math.max(s.w, s.u + cfg[s.o + 2])
        s.x = math.max(s.x, s.w)
        if s.u - now > refused then refused = s.u - now end
        save(s)
      end
    end
  end
  return {0, refused, refusing, 0, 0, 0, known, 0}
end
if mode == 0 then
  return {1, 0, 0, 0, 0, remaining(0), known, 0}
end

local newly, counted, longest = 0, 0, 0
for i = 1, 4 do
  local s = st[i]
  if s and s.u == 0 then
    local o = s.o
    local threshold = cfg[o + 1]
    local window = cfg[o + 2]
    if s.n == 0 then s.w = now + window end
    s.n = s.n + 1
    counted = counted + 2 ^ (i - 1)
    if s.n >= threshold then
      s.s = s.s + 1
      s.u = now + duration(o, s.s)
      s.n = threshold - 1
      s.w = s.u + window
      s.x = math.max(now + cfg[o + 6], s.w)
      newly = newly + 2 ^ (i - 1)
      longest = math.max(longest, s.u - now)
    end
    save(s)
  end
end
return {1, 0, 0, newly, counted, remaining(newly), known, longest}
"""

OLD_SUCCESS = """
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
"""

_OFF = [0, 1, 1, 1, 1000, 1, 1]  # a disabled scope in the old policy string


def _clocked(source: str) -> str:
    assert source.count(_TIME) == 1, "the clock lines of the script changed: update _TIME"
    return source.replace(_TIME, _CLOCK)


def _random_policy(rng: random.Random) -> LockoutPolicy:
    def scope(on: bool) -> ScopeRule:
        if not on:
            return ScopeRule()
        base = rng.choice([50, 200, 1000])
        return ScopeRule(
            True,
            rng.randint(1, 4),
            rng.choice([100, 500, 3000]),
            base,
            rng.choice([1000, 1500, 2000, 3000]),
            base * rng.choice([1, 3, 20]),
            rng.choice([100, 2000, 10_000]),
        )

    return LockoutPolicy(
        (scope(True), scope(rng.random() < 0.7), scope(rng.random() < 0.5), scope(rng.random() < 0.5)),
        rng.choice([300, 5000]),
        rng.random() < 0.5,
        rng.randint(0, 3),
    )


def _old_policy(policy: LockoutPolicy, named: bool) -> str:
    rules = []
    for i, r in enumerate(policy.scopes):
        on = r.enabled and (named or i in (0, 3))
        rules += [1, r.threshold, r.window, r.base, r.factor_milli, r.max_lock, r.strike_ttl] if on else _OFF
    return ",".join(str(n) for n in rules)


class _Sim:
    """One random policy run three ways: old Lua, new Lua (both on Redis) and the new Python twin."""

    #: Clock steps (ms) the injected clock takes between calls: windows and locks of every length expire.
    STEPS = (0, 0, 0, 1, 7, 60, 180, 499, 500, 501, 1500, 4000, 20_000)

    def __init__(self, client: Any, prefix: str, policy: LockoutPolicy, steps: tuple[int, ...] = STEPS) -> None:
        self.client = client
        self.steps = steps
        self.prefix = prefix
        self.policy = policy
        reserve, success = scripts_for(policy)
        self.reserve, self.success = reserve, success
        self.lua = {
            "old_reserve": client.register_script(_clocked(OLD_RESERVE)),
            "old_success": client.register_script(_clocked(OLD_SUCCESS)),
            "new_reserve": client.register_script(_clocked(reserve.source)),
            "new_success": client.register_script(_clocked(success.source)),
        }
        self.clock = FrozenClock()
        self.memory = MemoryStore(prefix=prefix, clock=self.clock)
        self.offset = 0

    def tick(self, rng: random.Random) -> int:
        # The injected clock never runs slower than the real one, so a Redis key (timed by the real clock)
        # never expires before the injected clock says it should.
        self.offset += rng.choice(self.steps)
        return int(time.time() * 1000) + self.offset

    def keys(self, version: str, account: str, address: str) -> list[str]:
        base = f"{self.prefix}:{version}:{{{account}}}:"
        # The old scripts kept the ceiling in a key of its own; the new ones keep it beside the account scope.
        keys = [f"{base}p:{address}", base + "a", base + "c", base + "g"]
        if version != "old":
            del keys[2]
        if self.policy.scopes[3].enabled:
            keys.append(f"{self.prefix}:{version}:ip:{address}")
        return keys

    def call(self, what: str, account: str, address: str, now: int, mode: int, counted: int, newly: int) -> Any:
        named = account != ""
        member = address if named and address else ""
        policy = self.policy
        old_policy = _old_policy(policy, named)
        if what == "reserve":
            old_args: list[Any] = [member, policy.remember_ms, int(policy.extend), mode, old_policy]
            new_args: list[Any] = [member, mode, "1" if named else "0"]
        else:
            member = member if policy.keep else ""
            old_args = [member, policy.remember_ms, policy.keep, counted, newly, old_policy]
            new_args = [member, counted, newly, "1" if named else "0"]
        old = self.lua["old_" + what](keys=self.keys("old", account, address), args=[*old_args, now])
        new = self.lua["new_" + what](keys=self.keys("new", account, address), args=[*new_args, now])
        self.clock.now = (now + 0.25) / 1000.0  # floor(clock * 1000) == now despite binary fractions
        script = self.reserve if what == "reserve" else self.success
        twin = self.memory.run(script, self.keys("mem", account, address), new_args)
        return old, new, twin


@pytest.fixture
def client(redis_url: str, prefix: str) -> Iterator[Any]:
    conn = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        yield conn
    finally:
        batch = list(conn.scan_iter(match=f"{prefix}:*", count=1000))
        if batch:
            conn.delete(*batch)
        conn.close()


def _run(
    sim: _Sim,
    rng: random.Random,
    steps: int,
    accounts: list[str],
    addresses: list[str],
    weights: tuple[int, int, int, int] = (2, 6, 1, 2),
) -> int:
    """``steps`` random operations run three ways, every reply compared; returns the mask of scopes that locked."""
    locked = 0
    for step in range(steps):
        now = sim.tick(rng)
        account, address = rng.choice(accounts), rng.choice(addresses)
        op = rng.choices(["check", "fail", "success", "attempt_ok"], weights)[0]
        if op == "success":
            replies = sim.call("success", account, address, now, 0, 0, 0)
        else:
            replies = sim.call("reserve", account, address, now, 0 if op == "check" else 1, 0, 0)
            locked |= int(replies[0][3])
            if op == "attempt_ok" and replies[0][0] == 1:
                counted, newly = int(replies[0][4]), int(replies[0][3])
                replies = sim.call("success", account, address, sim.tick(rng), 0, counted, newly)
        old, new, twin = ([int(x) for x in r] for r in replies)
        assert new == old, f"step {step}: {op} {account!r}@{address!r} under {sim.policy}"
        assert twin == old, f"step {step}: {op} {account!r}@{address!r} under {sim.policy} (memory twin)"
    return locked


@pytest.mark.parametrize("seed", range(12))
def test_packed_scripts_answer_as_the_hash_scripts_did(client: Any, prefix: str, seed: int) -> None:
    rng = random.Random(seed)
    policy = _random_policy(rng)
    sim = _Sim(client, f"{prefix}:{seed}", policy)
    _run(sim, rng, 250, ["alice", "bob", ""], ["a1", "a2", "a3", ""])


#: Mostly short clock steps, so counts climb to thresholds of 20 within a window, and now and then a long one
#: that ends windows, locks and strikes.
_CLIMB = (*(0, 0, 0, 1, 7, 60, 180, 500, 1500, 4000) * 4, 60_000, 700_000)
#: Mostly one account at one address (whose pair must reach 20 between the successes that clear it), and others.
_ACCOUNTS = ["alice", "alice", "alice", "bob", ""]
_ADDRESSES = ["a1", "a1", "a1", "a2", ""]
_CLIMBING = (2, 40, 1, 1)  # check, fail, success, attempt that succeeds


def _combo_policy(rng: random.Random, combo: int) -> LockoutPolicy:
    """The policy of one of the 16 combinations: bits 0-2 turn the account, ceiling and address scopes on, bit 3
    extend-while-locked. Thresholds are 1-20, pair <= account <= ceiling as ``Lockout`` builds them; the largest
    is 20, with a window long enough to reach it (the other scopes' locks are short, so they do not keep every
    attempt out meanwhile)."""
    on = [True, bool(combo & 1), bool(combo & 2), bool(combo & 4)]
    thresholds = [*sorted(rng.randint(1, 20) for _ in range(3)), rng.randint(1, 20)]
    high = max((i for i in range(4) if on[i]), key=lambda i: thresholds[i])
    thresholds[high] = 20

    def scope(i: int) -> ScopeRule:
        if not on[i]:
            return ScopeRule()
        base = rng.choice([50, 1000, 30_000] if i == high else [50, 1000])
        return ScopeRule(
            True,
            thresholds[i],
            600_000 if i == high else rng.choice([3000, 120_000, 600_000]),
            base,
            rng.choice([1000, 1500, 2000, 100_000]),
            base * rng.choice([1, 3, 20] if i == high else [1, 3]),
            rng.choice([100, 10_000, 2_000_000]),
        )

    return LockoutPolicy(
        (scope(0), scope(1), scope(2), scope(3)), rng.choice([300, 900_000]), bool(combo & 8), rng.randint(0, 3)
    )


@pytest.mark.parametrize("combo", range(16))
def test_every_combination_of_scopes_and_extend_answers_alike(client: Any, prefix: str, combo: int) -> None:
    """Each of the 16 on/off combinations of the account, ceiling and address scopes and extend-while-locked, with
    thresholds up to 20: the generated Lua, the reference Lua and the memory twin give the same replies."""
    rng = random.Random(1000 + combo)
    policy = _combo_policy(rng, combo)
    assert [int(r.enabled) for r in policy.scopes[1:]] + [int(policy.extend)] == [(combo >> b) & 1 for b in range(4)]
    sim = _Sim(client, f"{prefix}:{combo}", policy, _CLIMB)
    locked = _run(sim, rng, 600, _ACCOUNTS, _ADDRESSES, _CLIMBING)
    reached = [r.threshold for i, r in enumerate(policy.scopes) if locked & (1 << i)]
    assert max(reached, default=0) >= 10, f"no threshold of 10 or more was reached under {policy}"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_failures": 20, "account_max_failures": None},
        {"max_failures": 7, "account_max_failures": 20, "account_ceiling": 20, "extend_while_locked": True},
        {"max_failures": 3, "account_max_failures": 12, "address_max_failures": 18, "backoff_factor": 1.5},
        {
            "max_failures": 4,
            "account_max_failures": None,
            "address_max_failures": 9,
            "extend_while_locked": True,
            "max_remembered_addresses": 1,
        },
        # Every duration at the documented bound, the largest address threshold and backoff factor: the times
        # Redis is sent (PX, PEXPIRE) stay integers it accepts.
        {
            "max_failures": 2,
            "address_max_failures": MAX_ADDRESS_FAILURES,
            "window": MAX_DURATION,
            "lockout_duration": MAX_DURATION,
            "max_lockout_duration": MAX_DURATION,
            "backoff_reset": MAX_DURATION,
            "ceiling_window": MAX_DURATION,
            "remember_addresses_for": MAX_DURATION,
            "backoff_factor": 100,
            "extend_while_locked": True,
        },
    ],
)
def test_policies_built_by_lockout_answer_alike(client: Any, prefix: str, kwargs: dict[str, Any]) -> None:
    """The policies ``Lockout`` itself builds (seconds to ms, factor to thousandths), run three ways."""
    policy = Lockout(**{"window": 60, "lockout_duration": 5, "max_lockout_duration": 120, **kwargs})._script_policy
    rng = random.Random(repr(sorted(kwargs.items())))
    sim = _Sim(client, f"{prefix}:lockout", policy, _CLIMB)
    locked = _run(sim, rng, 600, _ACCOUNTS, _ADDRESSES, _CLIMBING)
    assert locked & 1, f"the pair scope never locked under {policy}"
