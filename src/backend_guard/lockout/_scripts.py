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
    return value if _is_numbers(value, 5) else _EMPTY


def _is_numbers(value: Any, size: int) -> bool:
    """True for a stored value of ``size`` numbers (anything else reads as nothing stored)."""
    return isinstance(value, tuple) and len(value) == size


def _value(db: MemoryView, index: int, keys: Sequence[str]) -> tuple[int, ...]:
    """The numbers stored under ``keys[index]``: ten for the account's key, five for the others."""
    value = db.get(keys[index])
    empty = _EMPTY2 if index == 1 else _EMPTY
    return value if _is_numbers(value, len(empty)) else empty


def _dead(s: Sequence[int], now: int) -> bool:
    """True when a scope's numbers hold nothing a later decision reads (no count, no lock, no live strikes)."""
    return s[0] == 0 and s[2] <= now and not _live_strikes(s, now)


def _live_strikes(s: Sequence[int], now: int) -> bool:
    return s[3] != 0 and s[4] > now


def _good(db: MemoryView, keys: Sequence[str]) -> dict[str, int]:
    """The addresses the account logged in from, with when (ms); empty when none is stored."""
    good: dict[str, int] = db.get(keys[GOOD]) or {}
    return good


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
        return _refusal(policy, scopes, count, k)
    if not count:
        return [1, 0, 0, 0, 0, scopes.remaining(0), k, 0]
    newly, counted, longest = scopes.count()
    return [1, 0, 0, newly, counted, scopes.remaining(newly), k, longest]


def _refusal(policy: LockoutPolicy, scopes: _Scopes, count: bool, k: int) -> list[int]:
    """The reply of a refused attempt; a counted one first lengthens the locks with ``extend_while_locked``."""
    refused = scopes.extend() if policy.extend and count else scopes.refused
    return [0, refused, scopes.refusing, 0, 0, 0, k, 0]


def _known(policy: LockoutPolicy, db: MemoryView, keys: Sequence[str], member: str, now: int) -> bool:
    """True when the account logged in from the address ``member`` recently (it is then exempt from scopes 2, 4)."""
    if not member:
        return False
    score = _good(db, keys).get(member)
    return score is not None and score > now - policy.remember_ms


def _taking_part(policy: LockoutPolicy, named: bool) -> list[int]:
    """The scopes (1-4) one reserve takes part in: the enabled ones; without a named account, only 1 and 4."""
    return [i for i, rule in enumerate(policy.scopes, 1) if rule.enabled and (named or i in (1, 4))]


def _live(numbers: Sequence[int], now: int) -> list[int]:
    """A scope's five numbers with what has run out forgotten: the count with its window, the strikes, the lock."""
    n, w, u, strikes, x = numbers
    if w <= now:
        n = w = 0
    if x <= now:
        strikes = x = 0
    if u <= now:
        u = 0
    return [n, w, u, strikes, x]


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
        self.raw: dict[int, list[int]] = {}  # key index -> the numbers stored there (a scope's five at its offset)
        self.st: dict[int, list[int]] = {}
        self.exempt: dict[int, bool] = {}
        self.refused, self.refusing = 0, 0
        for i in _taking_part(policy, named):
            self._read(i, known)

    def _read(self, i: int, known: bool) -> None:
        """Read scope ``i``'s live numbers; the longest lock so far that refuses the attempt is remembered."""
        index, at = SLOT[i - 1]
        s = self.st[i] = _live(self._raw(index)[at : at + 5], self.now)
        self.exempt[i] = known and i in (2, 4)
        if self._locked(i) and s[2] - self.now > self.refused:  # the first of equally long locks is reported
            self.refused, self.refusing = s[2] - self.now, i

    def _raw(self, index: int) -> list[int]:
        """The numbers stored under ``keys[index]``, read once per reserve."""
        if index not in self.raw:
            self.raw[index] = list(_value(self.db, index, self.keys))
        return self.raw[index]

    def _locked(self, i: int) -> bool:
        """True when scope ``i`` holds a lock the address is not exempt from."""
        return self.st[i][2] > 0 and not self.exempt[i]

    def extend(self) -> int:
        """``extend_while_locked``: lengthen every lock that refuses; the longest time left after it (ms)."""
        refused = self.refused
        changed: set[int] = set()
        now = self.now
        for i, s in self.st.items():
            if self._locked(i):
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
        for i, s in self.st.items():
            if s[2] != 0:
                continue
            counted |= 1 << (i - 1)
            counted_scopes.add(i)
            if _count_failure(self.policy.scopes[i - 1], s, self.now):
                newly |= 1 << (i - 1)
                longest = max(longest, s[2] - self.now)
        self.save(counted_scopes)
        return newly, counted, longest

    def remaining(self, newly: int) -> int:
        """The failures left before the nearest lock, over the scopes the address is not exempt from."""
        r = -1
        for i in self.st:
            if not self.exempt[i]:
                r = _nearer(r, self._left(i, newly))
        return r

    def _left(self, i: int, newly: int) -> int:
        """The failures scope ``i`` allows before it locks: none while it is locked or was just locked."""
        s = self.st[i]
        if s[2] > 0 or newly & (1 << (i - 1)):
            return 0
        return self.policy.scopes[i - 1].threshold - s[0]

    def save(self, changed: set[int]) -> None:
        """Write the keys of the scopes in ``changed`` (the account's key once for both of its scopes)."""
        for index in sorted({SLOT[i - 1][0] for i in changed}):
            value = self._packed(index)
            # Lives as long as the longest time it holds (each scope's window end, lock end and strikes end).
            self.db.set(self.keys[index], tuple(value), px=max(1, _last_end(value) - self.now))

    def _packed(self, index: int) -> list[int]:
        """The value of ``keys[index]`` with the live numbers of its scopes written in."""
        value = self.raw[index]
        for i, s in self.st.items():
            slot, at = SLOT[i - 1]
            if slot == index:
                value[at : at + 5] = s
        return value


def _count_failure(rule: ScopeRule, s: list[int], now: int) -> bool:
    """Count one failure in a scope's live numbers (a new window when none is open); True when it locks."""
    if s[0] == 0:
        s[1] = now + rule.window
    s[0] += 1
    if s[0] < rule.threshold:
        return False
    _lock(rule, s, now)
    return True


def _lock(rule: ScopeRule, s: list[int], now: int) -> None:
    """Lock a scope: one more strike, the lock's own window after it."""
    s[3] += 1
    s[2] = now + _duration(rule, s[3])
    s[0] = rule.threshold - 1
    s[1] = s[2] + rule.window
    s[4] = max(now + rule.strike_ttl, s[1])


def _nearer(r: int, left: int) -> int:
    """The failures left so far (-1: no scope yet) against one more scope's: the first scope's, then fewer."""
    return left if r < 0 or left < r else r


def _last_end(value: Sequence[int]) -> int:
    """The latest time a value holds: each scope's window end, lock end and strikes end."""
    return max(value[at + j] for at in range(0, len(value), 5) for j in (1, 2, 4))


# -- success ---------------------------------------------------------------------------------------------------


def _success(policy: LockoutPolicy, db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> list[int]:
    """The success script's Python twin (see the comments at the top of ``success.lua``)."""
    now = _now(db)
    member = str(args[0])
    counted, newly = int(args[1]), int(args[2])
    named = str(args[3]) == "1"
    had = _had(_state(db.get(keys[0])), now)
    db.delete(keys[0])
    # The account's key holds the ceiling too; the address scope is skipped when off (there is nothing to take).
    _take_back(policy, db, keys, now, 2, counted, newly, named and policy.scopes[2].enabled)
    if policy.scopes[3].enabled:
        _take_back(policy, db, keys, now, 4, counted, newly, False)
    if member:
        _remember(policy, db, keys, member, now)
    return had


def _had(pair: State, now: int) -> list[int]:
    """The pair's live failure count and whether it was locked (1 or 0), before this success."""
    pn, pw, pu, _, _ = pair
    return [pn if pw > now else 0, 1 if pu > now else 0]


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
    index, at = SLOT[i - 1]
    take = _counted_in(policy, i, counted)
    if index >= len(keys) or not (ceiling or take):
        return
    value = list(_value(db, index, keys))
    if _taken(policy.scopes[i - 1], value, at, now, take=take, locked=bool(newly & (1 << (i - 1)))) or ceiling:
        _put_back(db, keys[index], _without_ceiling(value) if ceiling else value, now)


def _counted_in(policy: LockoutPolicy, i: int, counted: int) -> bool:
    """True when the attempt was counted in scope ``i`` (and the scope is on)."""
    return policy.scopes[i - 1].enabled and bool(counted & (1 << (i - 1)))


def _taken(rule: ScopeRule, value: list[int], at: int, now: int, *, take: bool, locked: bool) -> bool:
    """Take back the attempt's failure from the scope at ``value[at:]`` when its window is still open (and the
    lock it set when ``locked``); True when something was taken back."""
    if not take or value[at + 1] <= now:
        return False
    value[at : at + 5] = _undo_failure(rule, value[at : at + 5], locked)
    return True


def _undo_failure(rule: ScopeRule, numbers: Sequence[int], locked: bool) -> list[int]:
    """A scope's five numbers without one failure; when that failure set the lock, without the lock and its strike."""
    n, w, u, strikes, x = numbers
    if locked:
        return [rule.threshold - 1, w, 0, max(0, strikes - 1), x]
    return [n - 1 if n > 0 else n, w, u, strikes, x]


def _without_ceiling(value: list[int]) -> list[int]:
    """The account's value with the consecutive-failure ceiling cleared (a login clears it)."""
    value[5:10] = _EMPTY
    return value


def _put_back(db: MemoryView, key: str, value: list[int], now: int) -> None:
    """Write a key's numbers back (its time to live unchanged), or delete it once none of them is live."""
    if all(_dead(value[j : j + 5], now) for j in range(0, len(value), 5)):
        db.delete(key)
    else:
        db.set(key, tuple(value), keepttl=True)


def _remember(policy: LockoutPolicy, db: MemoryView, keys: Sequence[str], member: str, now: int) -> None:
    """Remember ``member`` as an address the account logs in from: the ``keep`` most recent, for ``remember_ms``."""
    good = {**_good(db, keys), member: now}
    good = _recent(good, now - policy.remember_ms)
    if len(good) > policy.keep:
        good = dict(sorted(good.items(), key=_oldest_first)[len(good) - policy.keep :])
    db.set(keys[GOOD], good, px=policy.remember_ms)


def _recent(good: dict[str, int], since: int) -> dict[str, int]:
    """The addresses seen after ``since`` (ms)."""
    return {m: sc for m, sc in good.items() if sc > since}


def _oldest_first(item: tuple[str, int]) -> tuple[int, str]:
    """Sort key of a remembered address: when it was seen, then the address (a stable order for equal times)."""
    return item[1], item[0]


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
