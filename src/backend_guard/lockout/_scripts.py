"""The lockout's atomic operations: one Lua script each for Redis, with a Python twin for the memory store.

Both implementations take the same keys and arguments and return the same reply (see ``_RESERVE_DOC`` below
and the comments at the top of ``lockout/success.lua``); the lockout test suite runs over both
stores so the twins cannot drift apart. Times are integer milliseconds from the store's clock.

The policy (thresholds, windows, backoff) is part of each script, not of its arguments: the reserve script is
generated per policy as straight-line Lua with the numbers as literals (:func:`reserve_lua`), and the success
script has them as constants in front of its Lua body; one script pair per policy. A decision then sends three short
arguments and the server parses none of the policy; a different policy is a different script (its own SHA).
Each scope's state is five doubles packed by Lua's ``struct`` (failures, window end, locked until, strikes,
strikes end). The account-wide scope and the ceiling, both per account and counted together, share one value
of ten doubles under the account's key: a reserve reads the pair, the account and the address values with one
``MGET`` and writes each with one ``SET ... PX``.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from ..exceptions import ConfigurationError
from ..storage import MemoryView, Script

__all__ = [
    "MAX_MS",
    "MAX_THRESHOLD",
    "PEEK",
    "LockoutPolicy",
    "ReserveReply",
    "ScopeRule",
    "SuccessReply",
    "plain_int",
    "scripts_for",
]

#: The longest time a policy may hold (10 years, in ms). Every time a script sends Redis (a ``PX``, a
#: ``PEXPIRE``) is at most two of these, far below 1e14: Lua prints a number with 14 significant digits, so a
#: larger one would reach Redis as ``1e+17`` ("value is not an integer or out of range").
MAX_MS = 10 * 365 * 86_400 * 1000
#: The largest threshold (and remembered-address count) a policy may hold: exact in Lua's doubles.
MAX_THRESHOLD = 1_000_000


def plain_int(value: Any) -> int | None:
    """``value`` as a plain ``int`` (an int subclass, such as an ``IntEnum`` member, loses its class and
    methods), or None: not an int, or a bool."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return operator.index(value)  # an exact int, never a subclass's own __index__ or __int__


def _plain_int(name: str, value: Any, low: int, high: int) -> int:
    """``value`` as a plain ``int`` in range (:func:`plain_int`); floats and bools are refused: a policy number
    is a whole count of milliseconds or failures."""
    number = plain_int(value)
    if number is None:
        raise ConfigurationError(f"lockout policy: {name} must be an integer, not {type(value).__name__}.")
    if not low <= number <= high:
        raise ConfigurationError(f"lockout policy: {name} must be from {low} to {high}.")
    return number


def _lua_int(value: int) -> str:
    """``value`` as a Lua number literal: digits (and a minus sign), whatever the value's class formats as."""
    return int.__repr__(operator.index(value))


#: KEYS of both scripts: 1 the pair (account, address), 2 the account (its account-wide scope, then its ceiling,
#: in one value), 3 the remembered good addresses (a sorted set), 4 the address (only when that scope is on).
#: Scope 1..4 -> (index in KEYS from 0, offset of its five numbers in that key's value).
_SLOT = ((0, 0), (1, 0), (1, 5), (3, 0))
_GOOD = 2  # index of the remembered-address set in KEYS

State = tuple[int, int, int, int, int]  # n failures, w window end, u locked until, s strikes, x strikes end
_EMPTY: State = (0, 0, 0, 0, 0)
_EMPTY2 = _EMPTY + _EMPTY


@dataclass(frozen=True, slots=True)
class ScopeRule:
    """One scope's numbers (ms): ``enabled`` False turns the scope off.

    Every number is stored as a plain ``int`` in range (or :class:`ConfigurationError`): they are written into
    the generated Lua, and the policy is the cache key of its scripts, so an equal policy must print the same.
    """

    enabled: bool = False
    threshold: int = 1
    window: int = 1
    base: int = 1
    factor_milli: int = 1000
    max_lock: int = 1
    strike_ttl: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "enabled", bool(self.enabled))
        for name in ("threshold", "window", "base", "factor_milli", "max_lock", "strike_ttl"):
            low, high = _RULE_RANGES.get(name, (1, MAX_MS))
            object.__setattr__(self, name, _plain_int(name, getattr(self, name), low, high))


_RULE_RANGES = {"threshold": (1, MAX_THRESHOLD), "factor_milli": (1000, 100_000)}  # the rest: times, 1..MAX_MS


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """The whole policy of one :class:`~backend_guard.lockout.Lockout`: four scopes and the address memory."""

    scopes: tuple[ScopeRule, ScopeRule, ScopeRule, ScopeRule]  # pair, account, ceiling, address
    remember_ms: int
    extend: bool
    keep: int

    def __post_init__(self) -> None:
        scopes = tuple(self.scopes)
        if len(scopes) != 4 or not all(type(r) is ScopeRule for r in scopes):
            raise ConfigurationError("lockout policy: scopes must be four ScopeRule.")
        object.__setattr__(self, "scopes", scopes)
        object.__setattr__(self, "remember_ms", _plain_int("remember_ms", self.remember_ms, 1, MAX_MS))
        object.__setattr__(self, "extend", bool(self.extend))
        object.__setattr__(self, "keep", _plain_int("keep", self.keep, 0, MAX_THRESHOLD))

    def lua_constants(self) -> str:
        def table(values: Sequence[int]) -> str:
            return "{" + ", ".join(_lua_int(v) for v in values) + "}"

        s = self.scopes
        return (
            f"local EN = {table([int(r.enabled) for r in s])}\n"
            f"local TH = {table([r.threshold for r in s])}\n"
            f"local WIN = {table([r.window for r in s])}\n"
            f"local BASE = {table([r.base for r in s])}\n"
            f"local FAC = {table([r.factor_milli for r in s])}\n"
            f"local MAXD = {table([r.max_lock for r in s])}\n"
            f"local STRIKE = {table([r.strike_ttl for r in s])}\n"
            f"local REMEMBER = {_lua_int(self.remember_ms)}\n"
            f"local EXTEND = {_lua_int(self.extend)}\n"
            f"local KEEP = {_lua_int(self.keep)}\n"
        )


def _duration(rule: ScopeRule, strikes: int) -> int:
    d = rule.base * (rule.factor_milli / 1000.0) ** min(strikes - 1, 60)
    return math.floor(min(float(rule.max_lock), d))


def _now(db: MemoryView) -> int:
    return math.floor(db.now_ms)


def _state(value: Any) -> State:
    return value if isinstance(value, tuple) and len(value) == 5 else _EMPTY


def _value(db: MemoryView, index: int, keys: Sequence[str]) -> tuple[int, ...]:
    """The numbers stored under ``keys[index]``: ten for the account's key, five for the others."""
    value = db.get(keys[index])
    size = 10 if index == 1 else 5
    if isinstance(value, tuple) and len(value) == size:
        return value
    return _EMPTY2 if size == 10 else _EMPTY


def _dead(s: Sequence[int], now: int) -> bool:
    """True when a scope's numbers hold nothing a later decision reads (no count, no lock, no live strikes)."""
    return s[0] == 0 and s[2] <= now and (s[3] == 0 or s[4] <= now)


def _reserve(policy: LockoutPolicy, db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> list[int]:
    now = _now(db)
    member = str(args[0])
    count = str(args[1]) == "1"
    named = str(args[2]) == "1"
    known = False
    if member:
        good = db.get(keys[_GOOD]) or {}
        score = good.get(member)
        known = score is not None and score > now - policy.remember_ms
    raw: dict[int, list[int]] = {}  # key index -> the numbers stored there (a scope's five at its offset)
    st: dict[int, list[int]] = {}
    exempt: dict[int, bool] = {}
    refused, refusing = 0, 0
    for i, rule in enumerate(policy.scopes, 1):
        if not rule.enabled or not (named or i in (1, 4)):
            continue
        index, at = _SLOT[i - 1]
        if index not in raw:
            raw[index] = list(_value(db, index, keys))
        n, w, u, strikes, x = raw[index][at : at + 5]
        if w <= now:
            n = w = 0
        if x <= now:
            strikes = x = 0
        if u <= now:
            u = 0
        exempt[i] = known and i in (2, 4)
        if u > 0 and not exempt[i] and u - now > refused:
            refused, refusing = u - now, i
        st[i] = [n, w, u, strikes, x]

    def save(changed: set[int]) -> None:
        """Write the keys of the scopes in ``changed`` (the account's key once for both of its scopes)."""
        for index in sorted({_SLOT[i - 1][0] for i in changed}):
            value = raw[index]
            for i, s in st.items():
                slot, at = _SLOT[i - 1]
                if slot == index:
                    value[at : at + 5] = s
            # Lives as long as the longest time it holds (each scope's window end, lock end and strikes end).
            last = max(value[at + j] for at in range(0, len(value), 5) for j in (1, 2, 4))
            db.set(keys[index], tuple(value), px=max(1, last - now))

    def remaining(newly: int) -> int:
        r = -1
        for i, s in st.items():
            if exempt[i]:
                continue
            left = policy.scopes[i - 1].threshold - s[0]
            if s[2] > 0 or newly & (1 << (i - 1)):
                left = 0
            if r < 0 or left < r:
                r = left
        return r

    k = int(known)
    if refused > 0:
        if policy.extend and count:
            changed: set[int] = set()
            for i, s in st.items():
                if s[2] > 0 and not exempt[i]:
                    rule = policy.scopes[i - 1]
                    s[2] = max(s[2], now + _duration(rule, max(s[3], 1)))
                    s[1] = max(s[1], s[2] + rule.window)
                    s[4] = max(s[4], s[1])
                    refused = max(refused, s[2] - now)
                    changed.add(i)
            save(changed)
        return [0, refused, refusing, 0, 0, 0, k, 0]
    if not count:
        return [1, 0, 0, 0, 0, remaining(0), k, 0]

    newly = counted = longest = 0
    counted_scopes: set[int] = set()
    for i, s in st.items():
        if s[2] != 0:
            continue
        rule = policy.scopes[i - 1]
        if s[0] == 0:
            s[1] = now + rule.window
        s[0] += 1
        counted |= 1 << (i - 1)
        counted_scopes.add(i)
        if s[0] >= rule.threshold:
            s[3] += 1
            s[2] = now + _duration(rule, s[3])
            s[0] = rule.threshold - 1
            s[1] = s[2] + rule.window
            s[4] = max(now + rule.strike_ttl, s[1])
            newly |= 1 << (i - 1)
            longest = max(longest, s[2] - now)
    save(counted_scopes)
    return [1, 0, 0, newly, counted, remaining(newly), k, longest]


def _success(policy: LockoutPolicy, db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> list[int]:
    now = _now(db)
    member = str(args[0])
    counted, newly = int(args[1]), int(args[2])
    named = str(args[3]) == "1"
    pn, pw, pu, _, _ = _state(db.get(keys[0]))
    had_n = pn if pw > now else 0
    had_lock = 1 if pu > now else 0
    db.delete(keys[0])
    for i in (2, 4):
        rule = policy.scopes[i - 1]
        index, at = _SLOT[i - 1]
        bit = 1 << (i - 1)
        ceiling = i == 2 and named and policy.scopes[2].enabled  # the account's key holds the ceiling too
        if index >= len(keys) or not (ceiling or (rule.enabled and counted & bit)):
            continue
        value = list(_value(db, index, keys))
        n, w, u, s, x = value[at : at + 5]
        if rule.enabled and counted & bit and w > now:  # take back this attempt's own reservation
            if newly & bit:
                u, s, n = 0, max(0, s - 1), rule.threshold - 1
            elif n > 0:
                n -= 1
            value[at : at + 5] = [n, w, u, s, x]
        elif not ceiling:
            continue
        if ceiling:
            value[5:10] = _EMPTY  # a login clears the consecutive-failure ceiling
        if all(_dead(value[j : j + 5], now) for j in range(0, len(value), 5)):
            db.delete(keys[index])
        else:
            db.set(keys[index], tuple(value), keepttl=True)
    if member:
        good = dict(db.get(keys[_GOOD]) or {})
        good[member] = now
        good = {m: sc for m, sc in good.items() if sc > now - policy.remember_ms}
        if len(good) > policy.keep:
            good = dict(sorted(good.items(), key=lambda kv: (kv[1], kv[0]))[len(good) - policy.keep :])
        db.set(keys[_GOOD], good, px=policy.remember_ms)
    return [had_n, had_lock]


class ReserveReply(NamedTuple):
    """The reserve script's reply, by name (its eight numbers, in the order both twins return them).

    Example::

        reply = ReserveReply.from_reply(store.run(reserve, keys, args))
        if not reply.allowed: ...
    """

    allowed: bool  # the attempt may go ahead
    retry_ms: int  # when refused: ms until the refusing lock ends
    scope: int  # when refused: the refusing scope, 1 pair, 2 account, 3 ceiling, 4 address
    newly: int  # bit mask (1 << scope - 1) of the scopes this attempt locked
    counted: int  # bit mask of the scopes this attempt was counted in
    remaining: int  # failures left before the nearest lock
    known: bool  # the address logged in to this account recently (exempt from account and address scopes)
    longest_ms: int  # the longest lock this attempt set (ms)

    @classmethod
    def from_reply(cls, raw: Sequence[Any]) -> ReserveReply:
        """The reply of either twin (Redis's list of ints or the memory twin's list)."""
        return cls(
            int(raw[0]) == 1,
            int(raw[1]),
            int(raw[2]),
            int(raw[3]),
            int(raw[4]),
            int(raw[5]),
            int(raw[6]) == 1,
            int(raw[7]),
        )


class SuccessReply(NamedTuple):
    """The success script's reply, by name.

    Example::

        reply = SuccessReply.from_reply(store.run(success, keys, args))
        if reply.had_failures or reply.had_lock: ...
    """

    had_failures: int  # the pair's live failure count before this success
    had_lock: bool  # the pair was locked before this success

    @classmethod
    def from_reply(cls, raw: Sequence[Any]) -> SuccessReply:
        """The reply of either twin."""
        return cls(int(raw[0]), int(raw[1]) == 1)


#: The reserve script's documentation, put at the top of every generated script.
_RESERVE_DOC = """\
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
"""


def reserve_lua(policy: LockoutPolicy) -> str:
    """The reserve script of ``policy``, as straight-line Lua: the same replies as the Python twin ``_reserve``.

    A scope's code is emitted only when the scope is on; scopes 2 and 3 run only for a named account; scopes 2
    and 4 are skipped for a known address where the twin skips exempt scopes. Every lock and window is computed
    with the same expressions as the twin (``_duration``), so both round the same way.
    """
    rules = policy.scopes
    on = [i for i in range(1, 5) if rules[i - 1].enabled]
    key = {i: _SLOT[i - 1][0] + 1 for i in range(1, 5)}  # scope -> its KEYS index (the account's two share 2)
    account = [i for i in on if i in (2, 3)]  # the scopes kept in the account's key

    def guard(i: int, *, exempt: bool) -> str:
        """The condition under which scope ``i`` takes part (present and, with ``exempt``, not exempt)."""
        parts = ["named"] if i in (2, 3) else []
        if exempt and i in (2, 4):
            parts.append("not known")
        return " and ".join(parts)

    def when(cond: str, expr: str) -> str:
        return f"{cond} and {expr}" if cond else expr

    def duration(i: int, strikes: str) -> str:
        r = rules[i - 1]
        return (
            f"floor(min({_lua_int(r.max_lock)}, {_lua_int(r.base)} * ({_lua_int(r.factor_milli)} / 1000) "
            f"^ min({strikes} - 1, 60)))"
        )

    def save(i: int) -> list[str]:
        """Write scope ``i``'s key; the account's key is only marked (``da``) and written once, by ``save_account``."""
        if i in (2, 3):
            return ["  da = true"]
        return [
            f"  redis.call('SET', KEYS[{key[i]}], pack('<ddddd', n{i}, w{i}, u{i}, s{i}, x{i}), 'PX', "
            f"max(1, max(w{i}, u{i}, x{i}) - now))"
        ]

    def save_account() -> list[str]:
        if not account:
            return []
        return [
            "if da then",
            "  redis.call('SET', KEYS[2], pack('<dddddddddd', n2, w2, u2, s2, x2, n3, w3, u3, s3, x3), 'PX', "
            "max(1, max(w2, u2, x2, w3, u3, x3) - now))",
            "end",
        ]

    def remaining() -> list[str]:
        out = ["local left = -1"]
        for i in on:
            cond = guard(i, exempt=True)
            body = [
                f"local l = {_lua_int(rules[i - 1].threshold)} - n{i}",
                f"if u{i} > 0 then l = 0 end",
                "if left < 0 or l < left then left = l end",
            ]
            out += [f"if {cond} then" if cond else "do", *("  " + b for b in body), "end"]
        return out

    lua = [
        _RESERVE_DOC.rstrip("\n"),
        "local t = redis.call('TIME')",
        "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)",
        "local member = ARGV[1]",
        "local count = ARGV[2] == '1'",
        "local named = ARGV[3] == '1'",
        "local floor, max, min, pack, unpack = math.floor, math.max, math.min, struct.pack, struct.unpack",
        "local known = false",
        "if member ~= '' then",
        "  local score = redis.call('ZSCORE', KEYS[3], member)",
        f"  if score and tonumber(score) > now - {_lua_int(policy.remember_ms)} then known = true end",
        "end",
        "local k = known and 1 or 0",
    ]
    read_keys = sorted({key[i] for i in on})
    if on:
        lua.append("local vals = redis.call('MGET', " + ", ".join(f"KEYS[{k}]" for k in read_keys) + ")")
    lua.append("local v")

    def expire(i: int) -> list[str]:
        return [
            f"if w{i} <= now then n{i} = 0; w{i} = 0 end",
            f"if x{i} <= now then s{i} = 0; x{i} = 0 end",
            f"if u{i} <= now then u{i} = 0 end",
        ]

    for j, k in enumerate(read_keys, 1):
        if k == 2:  # the account's key: both of its scopes' numbers, read only for a named account
            lua.append("local n2, w2, u2, s2, x2, n3, w3, u3, s3, x3 = 0, 0, 0, 0, 0, 0, 0, 0, 0, 0")
            read = [
                f"v = vals[{j}]",
                "if v and #v == 80 then n2, w2, u2, s2, x2, n3, w3, u3, s3, x3 = unpack('<dddddddddd', v) end",
                *(line for i in account for line in expire(i)),
            ]
            lua += ["if named then", *("  " + r for r in read), "end"]
            continue
        i = next(i for i in on if key[i] == k)
        lua.append(f"local n{i}, w{i}, u{i}, s{i}, x{i} = 0, 0, 0, 0, 0")
        lua += [f"v = vals[{j}]", f"if v and #v == 40 then n{i}, w{i}, u{i}, s{i}, x{i} = unpack('<ddddd', v) end"]
        lua += expire(i)

    # A lock in a scope that takes part refuses the attempt; the longest one is reported.
    lua.append("local refused, refusing = 0, 0")
    for i in on:
        cond = when(guard(i, exempt=True), f"u{i} - now > refused")
        lua.append(f"if {cond} then refused = u{i} - now; refusing = {i} end")
    lua.append("if refused > 0 then")
    if policy.extend:
        lua.append("  if count then")
        if account:
            lua.append("    local da = false")
        for i in on:
            r = rules[i - 1]
            cond = when(guard(i, exempt=True), f"u{i} > 0")
            lua += [
                f"    if {cond} then",
                f"      u{i} = max(u{i}, now + {duration(i, f'max(s{i}, 1)')})",
                f"      w{i} = max(w{i}, u{i} + {_lua_int(r.window)})",
                f"      x{i} = max(x{i}, w{i})",
                f"      if u{i} - now > refused then refused = u{i} - now end",
                *("    " + s for s in save(i)),
                "    end",
            ]
        lua += ["    " + line for line in save_account()]
        lua.append("  end")
    lua += ["  return {0, refused, refusing, 0, 0, 0, k, 0}", "end"]
    lua += ["if not count then", *("  " + r for r in remaining()), "  return {1, 0, 0, 0, 0, left, k, 0}", "end"]

    # Count one failure in every scope that takes part and is not locked (an exempt scope counts too).
    lua.append("local newly, counted, longest = 0, 0, 0")
    if account:
        lua.append("local da = false")
    for i in on:
        r = rules[i - 1]
        bit = 1 << (i - 1)
        cond = when(guard(i, exempt=False), f"u{i} == 0")
        lua += [
            f"if {cond} then",
            f"  if n{i} == 0 then w{i} = now + {_lua_int(r.window)} end",
            f"  n{i} = n{i} + 1",
            f"  counted = counted + {bit}",
            f"  if n{i} >= {_lua_int(r.threshold)} then",
            f"    s{i} = s{i} + 1",
            f"    u{i} = now + {duration(i, f's{i}')}",
            f"    n{i} = {_lua_int(operator.index(r.threshold) - 1)}",
            f"    w{i} = u{i} + {_lua_int(r.window)}",
            f"    x{i} = max(now + {_lua_int(r.strike_ttl)}, w{i})",
            f"    newly = newly + {bit}",
            f"    if u{i} - now > longest then longest = u{i} - now end",
            "  end",
            *save(i),
            "end",
        ]
    lua += save_account()
    lua += [*remaining(), "return {1, 0, 0, newly, counted, left, k, longest}", ""]
    return "\n".join(lua)


@functools.lru_cache(maxsize=64)
def scripts_for(policy: LockoutPolicy) -> tuple[Script, Script]:
    """The (reserve, success) scripts of ``policy``: its constants in front of the shared Lua bodies."""
    head = policy.lua_constants()
    reserve = Script(
        name="lockout_reserve",
        lua=reserve_lua(policy),
        memory=functools.partial(_reserve, policy),
    )
    success = Script(
        name="lockout_success",
        lua=head + Path(__file__).with_name("success.lua").read_text(encoding="utf-8"),
        memory=functools.partial(_success, policy),
    )
    return reserve, success


def _peek(db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> list[int]:
    value = db.get(keys[0])
    if not isinstance(value, tuple) or len(value) not in (5, 10):
        return []
    now = _now(db)
    return [max(0, value[at + 2] - now) for at in range(0, len(value), 5)]


#: Milliseconds left on each lock held in one key's value (the pair's one, or the account's two: its
#: account-wide scope and its ceiling), 0 for none; an empty list for anything else. For listing locks.
PEEK = Script(
    name="lockout_peek",
    lua="""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.pcall('GET', KEYS[1])
if type(v) ~= 'string' then return {} end
if #v == 40 then
  local _, _, u = struct.unpack('<ddddd', v)
  return {math.max(0, u - now)}
end
if #v == 80 then
  local _, _, u, _, _, _, _, u3 = struct.unpack('<dddddddddd', v)
  return {math.max(0, u - now), math.max(0, u3 - now)}
end
return {}
""",
    memory=_peek,
)
