"""The rate limiter's atomic decisions: one :class:`~backend_guard.storage.Script` per strategy.

Each script decides for *several* limits at once and charges them all or none (a request refused by one limit
spends none of the others), in one round trip, timed by the store's clock (``redis.call('TIME')`` on Redis).
The Lua bodies live in ``ratelimit/*.lua`` (beside this module); the Python functions below are their twins for the
memory store and must return exactly what the Lua returns. Both are run by one test suite over both backends.

Calling convention, shared by every strategy:

- ``KEYS[i]``: the state of limit ``i``;
- ``ARGV[1]``: ``1`` to spend, ``0`` to peek; then per limit three numbers: amount, window in ms, cost;
- reply: ``[allowed, remaining_1, reset_ms_1, retry_ms_1, remaining_2, ...]`` (integers only).

``reset_ms`` (the ``RateLimit`` header's ``t``) is, for every strategy, the time until more quota is available
on that limit: until a request of ``remaining + 1`` would pass (with nothing spent meanwhile), rounded up to
the millisecond; 0 when the whole quota is available (an unused key). ``retry_ms`` is the same for this
request's own cost, 0 when it passes.

Most requests are charged against one limit, so each Python twin has a single-limit fast path
(``_*_one``: no per-limit lists or tuples, the spend-or-peek branch taken once) beside the general body
(``_*_many``); the script's entry point picks one by the number of keys. Both compute the same numbers in the
same order of operations, and a property test runs them side by side.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ..storage import MemoryView, Script

__all__ = ["SCRIPTS", "RateLimitReply"]

_HERE = Path(__file__).parent  # the Lua bodies sit beside this module

_floor = math.floor
_ceil = math.ceil
_EPS = 1e-9
_TOL = 1.0  # GCRA: one microsecond of slack for the rounding of the stored arrival time


class RateLimitReply(NamedTuple):
    """A decision script's reply, by name: ``allowed``, then three numbers per limit read by the limit's index
    (the order of the script's keys). The only code that knows the reply's layout.

    Example::

        reply = RateLimitReply.from_reply(store.run(script, keys, args))
        if reply.allowed:
            headers = f"r={reply.remaining(0)};t={reply.reset_ms(0)}"
    """

    allowed: bool
    raw: Sequence[Any]  # the script's own list: [allowed, remaining_1, reset_ms_1, retry_ms_1, remaining_2, ...]

    @classmethod
    def from_reply(cls, raw: Sequence[Any]) -> RateLimitReply:
        """The reply of either twin (Redis's list of ints or the memory twin's list)."""
        return cls(int(raw[0]) == 1, raw)

    def remaining(self, i: int) -> int:
        """Requests (cost units) left on limit ``i``."""
        return int(self.raw[3 * i + 1])

    def reset_ms(self, i: int) -> int:
        """Milliseconds until limit ``i`` has more quota (0: all of it is available)."""
        return int(self.raw[3 * i + 2])

    def retry_ms(self, i: int) -> int:
        """Milliseconds until this request's cost fits limit ``i`` (0: it passes)."""
        return int(self.raw[3 * i + 3])


_One = Callable[[MemoryView, str, bool, int, int, int], list[int]]
_Many = Callable[[MemoryView, Sequence[str], Sequence[Any]], list[int]]


def _by_count(one: _One, many: _Many) -> _Many:
    """A script body: ``one`` (key, spend, amount, window_ms, cost) for a single limit, else ``many``."""

    def body(db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> list[int]:
        if len(keys) == 1:
            return one(db, keys[0], int(args[0]) == 1, int(args[1]), int(args[2]), int(args[3]))
        return many(db, keys, args)

    return body


def _limits(args: Sequence[Any]) -> list[tuple[int, int, int]]:
    """(amount, window_ms, cost) per limit from the flat argument list."""
    return [(int(args[i]), int(args[i + 1]), int(args[i + 2])) for i in range(1, len(args), 3)]


def _fixed_window_one(db: MemoryView, key: str, spend: bool, amount: int, window: int, cost: int) -> list[int]:
    count = int(db.get(key, 0))
    ttl = db.pttl(key)
    if ttl < 0:
        ttl = window
    if count + cost > amount:
        return [0, max(0, amount - count), ttl if count > 0 else 0, ttl + 1]
    if spend and cost > 0:
        count = db.incr(key, cost)
        if db.pttl(key) < 0:
            db.pexpire(key, window)
    # quota comes back all at once, when the window's counter expires (none used: nothing to wait for)
    return [1, max(0, amount - count), ttl if count > 0 else 0, 0]


def _fixed_window_many(db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> list[int]:
    spend = int(args[0]) == 1
    specs = _limits(args)
    counts: list[int] = []
    ttls: list[int] = []
    blocked: list[bool] = []
    for key, (amount, window, cost) in zip(keys, specs, strict=True):
        count = int(db.get(key, 0))
        ttl = db.pttl(key)
        if ttl < 0:
            ttl = window
        counts.append(count)
        ttls.append(ttl)
        blocked.append(count + cost > amount)
    ok = not any(blocked)
    out = [1 if ok else 0]
    for i, (key, (amount, window, cost)) in enumerate(zip(keys, specs, strict=True)):
        count = counts[i]
        if ok and spend and cost > 0:
            count = db.incr(key, cost)
            if db.pttl(key) < 0:
                db.pexpire(key, window)
        # PTTL rounds down and a key lives through its last millisecond: retry one ms later.
        out += [max(0, amount - count), ttls[i] if count > 0 else 0, ttls[i] + 1 if blocked[i] else 0]
    return out


def _sliding_window_one(db: MemoryView, key: str, spend: bool, amount: int, window: int, cost: int) -> list[int]:
    now = float((db.now_ms * 1000.0).__round__())  # round(), without the builtin's lookup
    span = window * 1000.0
    w = _floor(now / span)
    elapsed = now - w * span
    stored = db.get(key)
    c = p = 0
    if stored is not None:
        sw, sc, sp = stored
        if sw == w:
            c, p = sc, sp
        elif sw == w - 1:
            p = sc
    # With nothing carried over from the previous window the estimate is the integer count: the same
    # comparisons as the float ones (integers far below 2**53), without the float work.
    carried = p * (span - elapsed) / span if p else 0.0
    blocked = (c + carried + cost > amount + _EPS) if p else (c + cost > amount)
    retry_ms = 0
    if not blocked:
        if spend and cost > 0:
            c += cost
            db.set(key, (w, c, p), _ceil((w * span + 2 * span - now) / 1000))  # px
    else:
        need = amount - cost
        if need < 0:
            retry = 2 * span - elapsed
        elif c <= need and p > 0:
            retry = span - span * (need - c) / p - elapsed
        else:
            retry = 2 * span - elapsed - span * need / c
        if retry > 0.0:
            retry_ms = _ceil(retry / 1000)
    remaining = _floor(amount - (c + carried) + _EPS) if p else amount - c
    if remaining < 0:
        remaining = 0
    # reset (the RateLimit "t"): until additional quota is made available (draft-ietf-httpapi-ratelimit-headers),
    # i.e. until remaining + 1 would pass: within this window when the previous window's decay frees the next
    # whole unit, else in the next one, as this window's count decays; 0 when the whole quota is available.
    reset_ms = 0
    if remaining < amount:
        g = amount - remaining - 1
        if p > 0 and c <= g:
            reset = span - span * (g - c) / p - elapsed
        elif c > 0:
            reset = 2 * span - elapsed - span * g / c
        else:
            reset = 0.0
        if reset > 0.0:
            reset_ms = _ceil(reset / 1000)
    return [0 if blocked else 1, remaining, reset_ms, retry_ms]


def _sliding_window_many(db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> list[int]:
    now = float(round(db.now_ms * 1000.0))
    spend = int(args[0]) == 1
    state: list[tuple[int, float, int, int, int, int, float, bool]] = []
    for key, (amount, window, cost) in zip(keys, _limits(args), strict=True):
        span = window * 1000.0
        w = math.floor(now / span)
        stored = db.get(key)
        c = p = 0
        if stored is not None:
            sw, sc, sp = stored
            if sw == w:
                c, p = sc, sp
            elif sw == w - 1:
                p = sc
        elapsed = now - w * span
        est = c + p * (span - elapsed) / span
        state.append((amount, span, cost, w, c, p, elapsed, est + cost > amount + _EPS))
    ok = not any(s[-1] for s in state)
    out = [1 if ok else 0]
    for key, (amount, span, cost, w, c, p, elapsed, blocked) in zip(keys, state, strict=True):
        if ok and spend and cost > 0:
            c += cost
            db.set(key, (w, c, p), px=math.ceil((w * span + 2 * span - now) / 1000))
        est = c + p * (span - elapsed) / span
        retry = 0.0
        if blocked:
            need = amount - cost
            if need < 0:
                retry = 2 * span - elapsed
            elif c <= need and p > 0:
                retry = span - span * (need - c) / p - elapsed
            else:
                retry = 2 * span - elapsed - span * need / c
        remaining = max(0, math.floor(amount - est + _EPS))
        reset = 0.0
        if remaining < amount:
            g = amount - remaining - 1
            if p > 0 and c <= g:
                reset = span - span * (g - c) / p - elapsed
            elif c > 0:
                reset = 2 * span - elapsed - span * g / c
        out += [remaining, math.ceil(max(0.0, reset) / 1000), math.ceil(max(0.0, retry) / 1000)]
    return out


def _moving_window(db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> list[int]:
    now = float(round(db.now_ms * 1000.0))
    spend = int(args[0]) == 1
    specs = _limits(args)
    logs: list[list[float]] = []
    blocked: list[bool] = []
    for key, (amount, window, cost) in zip(keys, specs, strict=True):
        log: list[float] = db.get(key) or []
        del log[: bisect.bisect_right(log, now - window * 1000.0)]
        logs.append(log)
        blocked.append(len(log) + cost > amount)
    ok = not any(blocked)
    out = [1 if ok else 0]
    for i, (key, (amount, window, cost)) in enumerate(zip(keys, specs, strict=True)):
        span = window * 1000.0
        log = logs[i]
        if ok and spend and cost > 0:
            for _ in range(cost):
                bisect.insort(log, now)
            db.set(key, log, px=window)
        elif log:
            db.set(key, log, keepttl=True)
        count = len(log)
        retry = 0.0
        if blocked[i]:
            retry = span if cost > amount else log[count + cost - amount - 1] + span - now
        reset = log[0] + span - now if log else 0.0  # more quota when the oldest hit leaves the window
        out += [max(0, amount - count), math.ceil(reset / 1000), math.ceil(max(0.0, retry) / 1000)]
    return out


def _gcra_one(db: MemoryView, key: str, spend: bool, amount: int, window: int, cost: int) -> list[int]:
    now = float(round(db.now_ms * 1000.0))
    span = window * 1000.0
    interval = span / amount
    tat = max(float(db.get(key, 0.0)), now)
    new = tat + cost * interval
    blocked = new - now > span + _TOL
    retry = 0.0
    if blocked:
        retry = span if cost > amount else max(0.0, new - span - now)
    elif spend and cost > 0:
        tat = float(f"{new:.0f}")
        db.set(key, tat, px=max(1, _ceil((tat - now) / 1000)))
    remaining = max(0, min(amount, _floor((span - (tat - now) + _TOL) / interval)))
    # more quota when remaining + 1 would pass: its arrival time no more than span (+ tol) ahead of the clock
    reset = tat + (remaining + 1) * interval - span - _TOL - now if remaining < amount else 0.0
    return [0 if blocked else 1, remaining, _ceil(max(0.0, reset) / 1000), _ceil(retry / 1000)]


def _gcra_many(db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> list[int]:
    now = float(round(db.now_ms * 1000.0))
    spend = int(args[0]) == 1
    state: list[tuple[int, float, int, float, float, float, bool]] = []
    for key, (amount, window, cost) in zip(keys, _limits(args), strict=True):
        span = window * 1000.0
        interval = span / amount
        tat = max(float(db.get(key, 0.0)), now)
        new = tat + cost * interval
        state.append((amount, span, cost, interval, tat, new, new - now > span + _TOL))
    ok = not any(s[-1] for s in state)
    out = [1 if ok else 0]
    for key, (amount, span, cost, interval, tat, new, blocked) in zip(keys, state, strict=True):
        if ok and spend and cost > 0:
            tat = float(f"{new:.0f}")
            db.set(key, tat, px=max(1, math.ceil((tat - now) / 1000)))
        retry = 0.0
        if blocked:
            retry = span if cost > amount else new - span - now
        remaining = max(0, min(amount, math.floor((span - (tat - now) + _TOL) / interval)))
        reset = tat + (remaining + 1) * interval - span - _TOL - now if remaining < amount else 0.0
        out += [remaining, math.ceil(max(0.0, reset) / 1000), math.ceil(max(0.0, retry) / 1000)]
    return out


_fixed_window = _by_count(_fixed_window_one, _fixed_window_many)
_sliding_window = _by_count(_sliding_window_one, _sliding_window_many)
_gcra = _by_count(_gcra_one, _gcra_many)

#: Rate-limit counters are the one kind of state a store may evict (``evictable=True``): forgetting one under memory
#: pressure at worst admits a few extra requests, while lockout, token and one-time-token state must stay.
SCRIPTS: dict[str, Script] = {
    "fixed-window": Script(
        name="ratelimit_fixed_window", lua_file=_HERE / "fixed_window.lua", memory=_fixed_window, evictable=True
    ),
    "sliding-window-counter": Script(
        name="ratelimit_sliding_window",
        lua_file=_HERE / "sliding_window.lua",
        memory=_sliding_window,
        evictable=True,
    ),
    "moving-window": Script(
        name="ratelimit_moving_window", lua_file=_HERE / "moving_window.lua", memory=_moving_window, evictable=True
    ),
    "gcra": Script(name="ratelimit_gcra", lua_file=_HERE / "gcra.lua", memory=_gcra, evictable=True),
}
