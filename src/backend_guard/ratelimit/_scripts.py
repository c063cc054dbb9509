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

Each Python twin is written as its Lua script is: per limit, a ``read`` step (the limit's state and whether it
refuses this request; no write) and a ``settle`` step (spend when every limit allows it, then the limit's
reply numbers); :func:`_all_or_none` runs them over several limits (``_*_many``), :func:`_single` over one.
Most requests are charged against one limit, so the fixed-window, sliding-window (the default strategy) and
GCRA twins have their single-limit path written by hand instead (``_*_one``: no per-limit lists or state
tuples, the request path of the memory store); the script's entry point picks one by the number of keys, after
coercing the arguments (Redis passes strings). A limiter's plan of one limit runs the one-limit body directly
(:data:`ONE_LIMIT`: its arguments are ints from the start).
Both compute the same numbers in the same order of operations, and a property test runs them side by side.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

from ..storage import MemoryView, Script

__all__ = ["ONE_LIMIT", "SCRIPTS", "RateLimitReply"]

_HERE = Path(__file__).parent  # the Lua bodies sit beside this module

_floor = math.floor
_tuple_new = tuple.__new__
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
        return _tuple_new(cls, (int(raw[0]) == 1, raw))  # the NamedTuple's own __new__, without its Python frame

    def remaining(self, i: int) -> int:
        """Requests (cost units) left on limit ``i``."""
        return int(self.raw[3 * i + 1])

    def remaining_reset(self, i: int) -> tuple[int, int]:
        """:meth:`remaining` and :meth:`reset_ms` of limit ``i`` in one call (a response's header path)."""
        raw = self.raw
        return int(raw[3 * i + 1]), int(raw[3 * i + 2])

    def reset_ms(self, i: int) -> int:
        """Milliseconds until limit ``i`` has more quota (0: all of it is available)."""
        return int(self.raw[3 * i + 2])

    def retry_ms(self, i: int) -> int:
        """Milliseconds until this request's cost fits limit ``i`` (0: it passes)."""
        return int(self.raw[3 * i + 3])


# A strategy is two steps on one limit, as in its Lua script: ``read`` (the limit's state, its last item whether
# this request's cost is refused: no write) and ``settle`` (spend when told, then the reply's three numbers).
# The entry points below run them for one limit or for several, all or none.
_State = tuple[Any, ...]
_Read = Callable[[MemoryView, str, float, int, int, int], _State]
_Settle = Callable[[MemoryView, str, float, bool, int, int, int, _State], list[int]]
_Body = Callable[[MemoryView, Sequence[str], Sequence[Any]], list[int]]


def _limits(args: Sequence[Any]) -> list[tuple[int, int, int]]:
    """(amount, window_ms, cost) per limit from the flat argument list."""
    return [(int(args[i]), int(args[i + 1]), int(args[i + 2])) for i in range(1, len(args), 3)]


def _single(read: _Read, settle: _Settle) -> _Body:
    """The body for one limit, its arguments already ints (see :func:`_by_count`): no per-limit lists."""

    def one(db: MemoryView, keys: Sequence[str], args: Sequence[int]) -> list[int]:
        key = keys[0]
        spend, amount, window, cost = args
        now = float((db.now_ms * 1000.0).__round__())  # the clock in whole microseconds, as the Lua's
        state = read(db, key, now, amount, window, cost)
        if state[-1]:  # refused: nothing spent
            return [0, *settle(db, key, now, False, amount, window, cost, state)]
        return [1, *settle(db, key, now, spend == 1, amount, window, cost, state)]

    return one


def _all_or_none(read: _Read, settle: _Settle) -> _Body:
    """The body for several limits: read them all, then spend on every one or none (one refusing refuses all)."""

    def many(db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> list[int]:
        now = float((db.now_ms * 1000.0).__round__())  # the clock in whole microseconds, as the Lua's
        specs = _limits(args)
        states = [read(db, key, now, *spec) for key, spec in zip(keys, specs, strict=True)]
        ok = not any(state[-1] for state in states)
        spend = ok and int(args[0]) == 1
        out = [1 if ok else 0]
        for key, spec, state in zip(keys, specs, states, strict=True):
            out += settle(db, key, now, spend, *spec, state)
        return out

    return many


def _by_count(one: _Body, many: _Body) -> _Body:
    """A script body: ``one`` for a single limit, else ``many``.

    ``one`` takes its four arguments (spend, amount, window_ms, cost) as ints, a limiter's plan builds them so
    (:data:`ONE_LIMIT`); this body is the public entry, which coerces them first, as Redis reads its strings."""

    def body(db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> list[int]:
        if len(keys) == 1:
            spend, amount, window, cost = args  # one limit: exactly four arguments
            return one(db, keys, (int(spend) == 1, int(amount), int(window), int(cost)))
        return many(db, keys, args)

    return body


# -- fixed window: a counter per window, which expires with it ------------------------------------------------


def _fw_read(db: MemoryView, key: str, now: float, amount: int, window: int, cost: int) -> _State:
    """(count, ttl ms, refused) of one limit."""
    count = int(db.get(key, 0))
    ttl = db.pttl(key)
    return count, ttl if ttl >= 0 else window, count + cost > amount


def _fw_spend(db: MemoryView, key: str, window: int, cost: int) -> int:
    """Count ``cost`` more in the window's counter (a new counter expires with the window); the new count."""
    count = db.incr(key, cost)
    if db.pttl(key) < 0:
        db.pexpire(key, window)
    return count


def _fw_settle(
    db: MemoryView, key: str, now: float, spend: bool, amount: int, window: int, cost: int, state: _State
) -> list[int]:
    """Spend ``cost`` when told; remaining, reset ms, retry ms."""
    count, ttl, blocked = state
    if spend and cost > 0:
        count = _fw_spend(db, key, window, cost)
    # Quota comes back all at once, when the window's counter expires (none used: nothing to wait for).
    # PTTL rounds down and a key lives through its last millisecond: retry one ms later.
    return [max(0, amount - count), ttl if count > 0 else 0, ttl + 1 if blocked else 0]


def _fixed_window_one(db: MemoryView, keys: Sequence[str], args: Sequence[int]) -> list[int]:
    """:func:`_fw_read` and :func:`_fw_settle` for one limit, by hand (a request path: no state tuple)."""
    key = keys[0]
    spend, amount, window, cost = args  # ints: a plan's own, or coerced by _by_count
    count = int(db.get(key, 0))
    ttl = db.pttl(key)
    if ttl < 0:
        ttl = window
    if count + cost > amount:
        return [0, max(0, amount - count), ttl if count > 0 else 0, ttl + 1]
    if spend and cost > 0:  # _fw_spend, inline: this is the request path
        count = db.incr(key, cost)
        if db.pttl(key) < 0:
            db.pexpire(key, window)
    # quota comes back all at once, when the window's counter expires (none used: nothing to wait for)
    return [1, max(0, amount - count), ttl if count > 0 else 0, 0]


# -- sliding window counter: this window's count and the previous one's, weighted by its overlap -------------


def _sw_counts(stored: Any, w: int) -> tuple[int, int]:
    """(c, p) of window ``w`` from a stored (window, count, previous count): the previous window's count carries
    over as p, older ones are gone."""
    if stored is not None:
        sw, sc, sp = stored
        if sw == w:
            return sc, sp
        if sw == w - 1:
            return 0, sc
    return 0, 0


def _sw_wait(g: int, c: int, p: int, span: float, elapsed: float) -> int:
    """Milliseconds (rounded up) until the estimate ``c + p * overlap`` is at most ``g``: within this window when
    the previous window's decay is enough, else in the next one as this window's count decays (0: now)."""
    if g < 0:  # a cost above the limit: two whole windows
        wait = 2 * span - elapsed
    elif p > 0 and c <= g:
        wait = span - span * (g - c) / p - elapsed
    elif c > 0:
        wait = 2 * span - elapsed - span * g / c
    else:
        return 0
    return _ceil(wait / 1000) if wait > 0.0 else 0


def _sw_read(db: MemoryView, key: str, now: float, amount: int, window: int, cost: int) -> _State:
    """(span, w, elapsed, c, p, carried, refused) of one limit (times in microseconds)."""
    span = window * 1000.0
    w = _floor(now / span)
    elapsed = now - w * span
    c, p = _sw_counts(db.get(key), w)
    # With nothing carried over from the previous window the estimate is the integer count: the same
    # comparisons as the float ones (integers far below 2**53), without the float work.
    carried = p * (span - elapsed) / span if p else 0.0
    return span, w, elapsed, c, p, carried, (c + carried + cost > amount + _EPS) if p else (c + cost > amount)


def _sw_settle(
    db: MemoryView, key: str, now: float, spend: bool, amount: int, window: int, cost: int, state: _State
) -> list[int]:
    """Spend ``cost`` when told; remaining, reset ms (until remaining + 1 would pass), retry ms."""
    span, w, elapsed, c, p, carried, blocked = state
    if spend and cost > 0:
        c += cost
        db.set(key, (w, c, p), _ceil((w * span + 2 * span - now) / 1000))  # px
    remaining = _sw_remaining(amount, c, p, carried)
    # reset (the RateLimit "t"): until additional quota is made available (draft-ietf-httpapi-ratelimit-headers),
    # i.e. until remaining + 1 would pass; 0 when the whole quota is available.
    reset_ms = _sw_wait(amount - remaining - 1, c, p, span, elapsed) if remaining < amount else 0
    return [remaining, reset_ms, _sw_wait(amount - cost, c, p, span, elapsed) if blocked else 0]


def _sw_remaining(amount: int, c: int, p: int, carried: float) -> int:
    """What is left of ``amount`` under the estimate ``c + carried`` (the integer count when nothing carries)."""
    return max(0, _floor(amount - (c + carried) + _EPS) if p else amount - c)


def _sliding_window_one(db: MemoryView, keys: Sequence[str], args: Sequence[int]) -> list[int]:
    """:func:`_sw_read` and :func:`_sw_settle` for one limit, by hand: the default strategy's request path."""
    key = keys[0]
    spend, amount, window, cost = args  # ints: a plan's own, or coerced by _by_count
    now = float((db.now_ms * 1000.0).__round__())  # round(), without the builtin's lookup
    span = window * 1000.0
    w = _floor(now / span)
    elapsed = now - w * span
    stored = db.get(key)  # _sw_counts, inline: this is the request path
    c = p = 0
    if stored is not None:
        sw, sc, sp = stored
        if sw == w:
            c, p = sc, sp
        elif sw == w - 1:
            p = sc
    carried = p * (span - elapsed) / span if p else 0.0  # the integer fast case of _sw_read
    blocked = (c + carried + cost > amount + _EPS) if p else (c + cost > amount)
    if not blocked and spend and cost > 0:
        c += cost
        db.set(key, (w, c, p), _ceil((w * span + 2 * span - now) / 1000))  # px
    remaining = _floor(amount - (c + carried) + _EPS) if p else amount - c
    if remaining < 0:
        remaining = 0
    reset_ms = _sw_wait(amount - remaining - 1, c, p, span, elapsed) if remaining < amount else 0
    return [0 if blocked else 1, remaining, reset_ms, _sw_wait(amount - cost, c, p, span, elapsed) if blocked else 0]


# -- moving window: a log of the hits inside the window ---------------------------------------------------------


def _mw_read(db: MemoryView, key: str, now: float, amount: int, window: int, cost: int) -> _State:
    """(the hits still inside the window, oldest first; refused) of one limit."""
    log: list[float] = db.get(key) or []
    del log[: bisect.bisect_right(log, now - window * 1000.0)]
    return log, len(log) + cost > amount


def _mw_save(db: MemoryView, key: str, now: float, spend: bool, window: int, cost: int, log: list[float]) -> None:
    """Log ``cost`` hits now when spending (a fresh expiry); else keep the pruned log with its expiry."""
    if spend and cost > 0:
        _mw_log_hits(log, now, cost)
        db.set(key, log, px=window)
    elif log:
        db.set(key, log, keepttl=True)


def _mw_log_hits(log: list[float], now: float, cost: int) -> None:
    """Log ``cost`` hits at ``now`` in ``log`` (kept sorted, oldest first)."""
    for _ in range(cost):
        bisect.insort(log, now)


def _mw_settle(
    db: MemoryView, key: str, now: float, spend: bool, amount: int, window: int, cost: int, state: _State
) -> list[int]:
    """Spend ``cost`` when told; remaining, reset ms (the oldest hit leaves the window), retry ms."""
    log, blocked = state
    _mw_save(db, key, now, spend, window, cost, log)
    span = window * 1000.0
    count = len(log)
    retry = _mw_retry(log, amount, cost, span, now) if blocked else 0.0
    reset = log[0] + span - now if log else 0.0
    return [max(0, amount - count), _ceil(reset / 1000), _ceil(max(0.0, retry) / 1000)]


def _mw_retry(log: list[float], amount: int, cost: int, span: float, now: float) -> float:
    """Microseconds until ``cost`` fits: until enough of the oldest hits leave the window (a whole window for a
    cost above the limit)."""
    return span if cost > amount else log[len(log) + cost - amount - 1] + span - now


# -- GCRA: the theoretical arrival time of the next request ---------------------------------------------------


def _gcra_read(db: MemoryView, key: str, now: float, amount: int, window: int, cost: int) -> _State:
    """(span, interval, tat, new tat, refused) of one limit (times in microseconds)."""
    span = window * 1000.0
    interval = span / amount
    tat = max(float(db.get(key, 0.0)), now)
    new = tat + cost * interval
    return span, interval, tat, new, new - now > span + _TOL


def _gcra_settle(
    db: MemoryView, key: str, now: float, spend: bool, amount: int, window: int, cost: int, state: _State
) -> list[int]:
    """Spend ``cost`` when told; remaining, reset ms (until remaining + 1 would pass), retry ms."""
    span, interval, tat, new, blocked = state
    if spend and cost > 0:
        tat = float(f"{new:.0f}")
        db.set(key, tat, px=max(1, _ceil((tat - now) / 1000)))
    retry = (span if cost > amount else new - span - now) if blocked else 0.0
    remaining = max(0, min(amount, _floor((span - (tat - now) + _TOL) / interval)))
    reset = _gcra_reset(remaining, amount, interval, span, tat, now)
    return [remaining, _ceil(max(0.0, reset) / 1000), _ceil(max(0.0, retry) / 1000)]


def _gcra_reset(remaining: int, amount: int, interval: float, span: float, tat: float, now: float) -> float:
    """Microseconds until more quota: until remaining + 1 would pass, its arrival time no more than span (+ tol)
    ahead of the clock (0 when the whole quota is available)."""
    return tat + (remaining + 1) * interval - span - _TOL - now if remaining < amount else 0.0


def _gcra_one(db: MemoryView, keys: Sequence[str], args: Sequence[int]) -> list[int]:
    """:func:`_gcra_read` and :func:`_gcra_settle` for one limit, by hand (a request path: no state tuple)."""
    key = keys[0]
    spend, amount, window, cost = args  # ints: a plan's own, or coerced by _by_count
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


_fixed_window_many = _all_or_none(_fw_read, _fw_settle)
_fixed_window = _by_count(_fixed_window_one, _fixed_window_many)
_sliding_window_many = _all_or_none(_sw_read, _sw_settle)
_sliding_window = _by_count(_sliding_window_one, _sliding_window_many)
_moving_window_one = _single(_mw_read, _mw_settle)
_moving_window = _by_count(_moving_window_one, _all_or_none(_mw_read, _mw_settle))
_gcra_many = _all_or_none(_gcra_read, _gcra_settle)
_gcra = _by_count(_gcra_one, _gcra_many)

#: Per strategy: (the script's name, its Lua file, its entry point, its one-limit body).
_BODIES: dict[str, tuple[str, str, _Body, _Body]] = {
    "fixed-window": ("ratelimit_fixed_window", "fixed_window.lua", _fixed_window, _fixed_window_one),
    "sliding-window-counter": (
        "ratelimit_sliding_window",
        "sliding_window.lua",
        _sliding_window,
        _sliding_window_one,
    ),
    "moving-window": ("ratelimit_moving_window", "moving_window.lua", _moving_window, _moving_window_one),
    "gcra": ("ratelimit_gcra", "gcra.lua", _gcra, _gcra_one),
}

#: Rate-limit counters are the one kind of state a store may evict (``evictable=True``): forgetting one under memory
#: pressure at worst admits a few extra requests, while lockout, token and one-time-token state must stay.
SCRIPTS: dict[str, Script] = {
    strategy: Script(name=name, lua_file=_HERE / lua, memory=entry, evictable=True)
    for strategy, (name, lua, entry, _) in _BODIES.items()
}

#: The same scripts (the same Lua) for one limit whose four arguments are ints already, as a limiter's plan builds
#: them: the memory body is the strategy's one-limit body itself, without the public entry's coercion and count.
#: Only for such calls; :data:`SCRIPTS` takes any arguments Redis would (numeric strings too).
ONE_LIMIT: dict[str, Script] = {
    strategy: replace(SCRIPTS[strategy], memory=one) for strategy, (_, _, _, one) in _BODIES.items()
}
