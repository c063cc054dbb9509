"""The lockout's atomic operations: one script each for Redis, with a Python twin for the memory store.

Both implementations take the same keys and arguments and return the same reply (see ``_RESERVE_DOC`` in
``_reserve_lua.py`` and the comments at the top of ``lockout/success.lua``); the lockout test suite runs over both
stores so the twins cannot drift apart. Times are integer milliseconds from the store's clock.

The policy (thresholds, windows, backoff) is part of each script, not of its arguments: the reserve script is
generated per policy as straight-line Lua with the numbers as literals (:func:`reserve_lua`), and the success
script has them as constants in front of its Lua body; one script pair per policy. A decision then sends three short
arguments and the server parses none of the policy; a different policy is a different script (its own SHA).
Each scope's state is five doubles packed by Lua's ``struct`` (failures, window end, locked until, strikes,
strikes end). The account-wide scope and the ceiling, both per account and counted together, share one value
of ten doubles under the account's key: a reserve reads the pair, the account and the address values with one
``MGET`` and writes each with one ``SET ... PX``.

The Python twins here follow the scripts step by step: ``_reserve`` reads the scopes (:class:`_Scopes`), refuses
or extends a lock, or counts the failure; ``_success`` takes back the attempt's reservation and remembers the
address.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ..storage import MemoryView, Script
from ._policy import GOOD, MAX_MS, MAX_THRESHOLD, SLOT, LockoutPolicy, ScopeRule, plain_int
from ._reserve_lua import reserve_lua

__all__ = [
    "MAX_MS",
    "MAX_THRESHOLD",
    "PEEK",
    "LockoutPolicy",
    "ReserveReply",
    "ScopeRule",
    "SuccessReply",
    "plain_int",
    "reserve_lua",
    "scripts_for",
]

State = tuple[int, int, int, int, int]  # n failures, w window end, u locked until, s strikes, x strikes end
_EMPTY: State = (0, 0, 0, 0, 0)
_EMPTY2 = _EMPTY + _EMPTY


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


# -- reserve ---------------------------------------------------------------------------------------------------


def _reserve(policy: LockoutPolicy, db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> list[int]:
    """The reserve script's Python twin (see ``_RESERVE_DOC`` in ``_reserve_lua.py`` for keys, args, reply)."""
    now = _now(db)
    member = str(args[0])
    count = str(args[1]) == "1"
    named = str(args[2]) == "1"
    known = _known(policy, db, keys, member, now)
    scopes = _Scopes(policy, db, keys, now, named, known)
    k = int(known)
    if scopes.refused > 0:
        refused = scopes.extend() if policy.extend and count else scopes.refused
        return [0, refused, scopes.refusing, 0, 0, 0, k, 0]
    if not count:
        return [1, 0, 0, 0, 0, scopes.remaining(0), k, 0]
    newly, counted, longest = scopes.count()
    return [1, 0, 0, newly, counted, scopes.remaining(newly), k, longest]


def _known(policy: LockoutPolicy, db: MemoryView, keys: Sequence[str], member: str, now: int) -> bool:
    """True when the account logged in from the address ``member`` recently (it is then exempt from scopes 2, 4)."""
    if not member:
        return False
    good = db.get(keys[GOOD]) or {}
    score = good.get(member)
    return score is not None and score > now - policy.remember_ms


class _Scopes:
    """The scopes one reserve takes part in, in scope order: each one's live numbers (``st``, changed in place),
    the stored values they were read from (``raw``, by key index), whether the address is exempt from it, and
    the longest lock that refuses the attempt (``refused`` ms left, in scope ``refusing``; 0 for none)."""

    __slots__ = ("db", "exempt", "keys", "now", "policy", "raw", "refused", "refusing", "st")

    def __init__(
        self, policy: LockoutPolicy, db: MemoryView, keys: Sequence[str], now: int, named: bool, known: bool
    ) -> None:
        self.policy = policy
        self.db = db
        self.keys = keys
        self.now = now
        raw: dict[int, list[int]] = {}  # key index -> the numbers stored there (a scope's five at its offset)
        st: dict[int, list[int]] = {}
        exempt: dict[int, bool] = {}
        refused, refusing = 0, 0
        for i, rule in enumerate(policy.scopes, 1):
            if not rule.enabled or not (named or i in (1, 4)):
                continue
            index, at = SLOT[i - 1]
            if index not in raw:
                raw[index] = list(_value(db, index, keys))
            n, w, u, strikes, x = raw[index][at : at + 5]
            # What has run out is forgotten: the count with its window, the strikes, the lock.
            if w <= now:
                n = w = 0
            if x <= now:
                strikes = x = 0
            if u <= now:
                u = 0
            st[i] = [n, w, u, strikes, x]
            exempt[i] = known and i in (2, 4)
            if u > 0 and not exempt[i] and u - now > refused:  # the first of equally long locks is reported
                refused, refusing = u - now, i
        self.raw, self.st, self.exempt = raw, st, exempt
        self.refused, self.refusing = refused, refusing

    def extend(self) -> int:
        """``extend_while_locked``: lengthen every lock that refuses; the longest time left after it (ms)."""
        refused = self.refused
        changed: set[int] = set()
        now = self.now
        for i, s in self.st.items():
            if s[2] > 0 and not self.exempt[i]:
                rule = self.policy.scopes[i - 1]
                s[2] = max(s[2], now + _duration(rule, max(s[3], 1)))
                s[1] = max(s[1], s[2] + rule.window)
                s[4] = max(s[4], s[1])
                refused = max(refused, s[2] - now)
                changed.add(i)
        self.save(changed)
        return refused

    def count(self) -> tuple[int, int, int]:
        """Count one failure in every scope not locked (an exempt one too): (newly locked, counted, longest lock)."""
        newly = counted = longest = 0
        counted_scopes: set[int] = set()
        now = self.now
        for i, s in self.st.items():
            if s[2] != 0:
                continue
            rule = self.policy.scopes[i - 1]
            if s[0] == 0:
                s[1] = now + rule.window
            s[0] += 1
            counted |= 1 << (i - 1)
            counted_scopes.add(i)
            if s[0] >= rule.threshold:  # lock: one more strike, the lock's own window after it
                s[3] += 1
                s[2] = now + _duration(rule, s[3])
                s[0] = rule.threshold - 1
                s[1] = s[2] + rule.window
                s[4] = max(now + rule.strike_ttl, s[1])
                newly |= 1 << (i - 1)
                longest = max(longest, s[2] - now)
        self.save(counted_scopes)
        return newly, counted, longest

    def remaining(self, newly: int) -> int:
        """The failures left before the nearest lock, over the scopes the address is not exempt from."""
        r = -1
        for i, s in self.st.items():
            if self.exempt[i]:
                continue
            left = self.policy.scopes[i - 1].threshold - s[0]
            if s[2] > 0 or newly & (1 << (i - 1)):
                left = 0
            if r < 0 or left < r:
                r = left
        return r

    def save(self, changed: set[int]) -> None:
        """Write the keys of the scopes in ``changed`` (the account's key once for both of its scopes)."""
        now = self.now
        for index in sorted({SLOT[i - 1][0] for i in changed}):
            value = self.raw[index]
            for i, s in self.st.items():
                slot, at = SLOT[i - 1]
                if slot == index:
                    value[at : at + 5] = s
            # Lives as long as the longest time it holds (each scope's window end, lock end and strikes end).
            last = max(value[at + j] for at in range(0, len(value), 5) for j in (1, 2, 4))
            self.db.set(self.keys[index], tuple(value), px=max(1, last - now))


# -- success ---------------------------------------------------------------------------------------------------


def _success(policy: LockoutPolicy, db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> list[int]:
    """The success script's Python twin (see the comments at the top of ``success.lua``)."""
    now = _now(db)
    member = str(args[0])
    counted, newly = int(args[1]), int(args[2])
    named = str(args[3]) == "1"
    pn, pw, pu, _, _ = _state(db.get(keys[0]))
    had_n = pn if pw > now else 0
    had_lock = 1 if pu > now else 0
    db.delete(keys[0])
    # The account's key holds the ceiling too; the address scope is skipped when off (there is nothing to take).
    _take_back(policy, db, keys, now, 2, counted, newly, named and policy.scopes[2].enabled)
    if policy.scopes[3].enabled:
        _take_back(policy, db, keys, now, 4, counted, newly, False)
    if member:
        _remember(policy, db, keys, member, now)
    return [had_n, had_lock]


def _take_back(
    policy: LockoutPolicy,
    db: MemoryView,
    keys: Sequence[str],
    now: int,
    i: int,
    counted: int,
    newly: int,
    ceiling: bool,
) -> None:
    """Take back this attempt's own reservation from scope ``i`` (2 or 4), and with ``ceiling`` clear the
    account's consecutive-failure ceiling; the key is deleted once nothing in it is live."""
    rule = policy.scopes[i - 1]
    index, at = SLOT[i - 1]
    bit = 1 << (i - 1)
    take = rule.enabled and counted & bit
    if index >= len(keys) or not (ceiling or take):
        return
    value = list(_value(db, index, keys))
    if take and value[at + 1] > now:  # the reservation's window is still open: take back its failure
        n, w, u, strikes, x = value[at : at + 5]
        if newly & bit:  # undo the lock it set
            u, strikes, n = 0, max(0, strikes - 1), rule.threshold - 1
        elif n > 0:
            n -= 1
        value[at : at + 5] = [n, w, u, strikes, x]
    elif not ceiling:
        return
    if ceiling:
        value[5:10] = _EMPTY  # a login clears the consecutive-failure ceiling
    _put_back(db, keys[index], value, now)


def _put_back(db: MemoryView, key: str, value: list[int], now: int) -> None:
    """Write a key's numbers back (its time to live unchanged), or delete it once none of them is live."""
    if all(_dead(value[j : j + 5], now) for j in range(0, len(value), 5)):
        db.delete(key)
    else:
        db.set(key, tuple(value), keepttl=True)


def _remember(policy: LockoutPolicy, db: MemoryView, keys: Sequence[str], member: str, now: int) -> None:
    """Remember ``member`` as an address the account logs in from: the ``keep`` most recent, for ``remember_ms``."""
    good = dict(db.get(keys[GOOD]) or {})
    good[member] = now
    good = {m: sc for m, sc in good.items() if sc > now - policy.remember_ms}
    if len(good) > policy.keep:
        good = dict(sorted(good.items(), key=lambda kv: (kv[1], kv[0]))[len(good) - policy.keep :])
    db.set(keys[GOOD], good, px=policy.remember_ms)


# -- replies ---------------------------------------------------------------------------------------------------


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
