"""The lockout's atomic operations: one Lua script each for Redis, with a Python twin for the memory store.

Both implementations take the same keys and arguments and return the same reply (see the comments at the top of
``storage/lua/lockout_reserve.lua`` and ``lockout_success.lua``); the lockout test suite runs over both stores
so the twins cannot drift apart. Times are integer milliseconds from the store's clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .storage import MemoryView, Script

__all__ = ["PEEK", "RESERVE", "SCOPE_ARGS", "SUCCESS"]

#: Numbers per scope in the policy string: enabled, threshold, window, base, factor*1000, max, strike ttl.
SCOPE_ARGS = 7
_KEY_INDEX = (0, 1, 2, 4)  # scope 1..4 -> index in KEYS (index 3 is the remembered-address set)


def _policy(text: Any) -> list[int]:
    return [int(v) for v in str(text).split(",") if v]


def _duration(cfg: Sequence[int], o: int, strikes: int) -> int:
    d = cfg[o + 3] * (cfg[o + 4] / 1000.0) ** min(strikes - 1, 60)
    return math.floor(min(float(cfg[o + 5]), d))


def _now(db: MemoryView) -> int:
    return math.floor(db.now_ms)


def _known(db: MemoryView, keys: Sequence[str], member: str, remember: int, now: int) -> bool:
    if not member:
        return False
    good = db.get(keys[3]) or {}
    score = good.get(member)
    return score is not None and score > now - remember


def _save(db: MemoryView, key: str, s: dict[str, int], now: int) -> None:
    if s["n"] == 0 and s["u"] <= now and s["s"] == 0:
        db.delete(key)
        return
    value = {k: s[k] for k in ("n", "w", "u", "s", "x")}
    db.set(key, value, px=max(1, max(s["w"], s["u"], s["x"]) - now))


def _reserve(db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> list[int]:
    now = _now(db)
    member = str(args[0])
    extend = int(args[2])
    mode = int(args[3])
    cfg = _policy(args[4])
    known = _known(db, keys, member, int(args[1]), now)
    st: dict[int, dict[str, int]] = {}
    exempt: dict[int, bool] = {}
    refused, refusing = 0, 0
    for i in range(1, 5):
        o = (i - 1) * SCOPE_ARGS
        idx = _KEY_INDEX[i - 1]
        if cfg[o] != 1 or idx >= len(keys):
            continue
        v = db.get(keys[idx]) or {}
        s = {k: int(v.get(k, 0)) for k in ("n", "w", "u", "s", "x")}
        s["o"] = o
        if s["w"] <= now:
            s["n"] = s["w"] = 0
        if s["x"] <= now:
            s["s"] = s["x"] = 0
        if s["u"] <= now:
            s["u"] = 0
        exempt[i] = i in (2, 4) and known
        if s["u"] > 0 and not exempt[i] and s["u"] - now > refused:
            refused, refusing = s["u"] - now, i
        st[i] = s

    def remaining(newly: int) -> int:
        r = -1
        for i, s in st.items():
            if exempt[i]:
                continue
            left = cfg[s["o"] + 1] - s["n"]
            if s["u"] > 0 or newly & (1 << (i - 1)):
                left = 0
            if r < 0 or left < r:
                r = left
        return r

    if refused > 0:
        if extend == 1 and mode == 1:
            for i, s in st.items():
                if s["u"] > 0 and not exempt[i]:
                    o = s["o"]
                    s["u"] = max(s["u"], now + _duration(cfg, o, max(s["s"], 1)))
                    s["w"] = max(s["w"], s["u"] + cfg[o + 2])
                    s["x"] = max(s["x"], s["w"])
                    refused = max(refused, s["u"] - now)
                    _save(db, keys[_KEY_INDEX[i - 1]], s, now)
        return [0, refused, refusing, 0, 0, 0, int(known), 0]
    if mode == 0:
        return [1, 0, 0, 0, 0, remaining(0), int(known), 0]

    newly = counted = longest = 0
    for i, s in st.items():
        if s["u"] != 0:
            continue
        o = s["o"]
        threshold, window = cfg[o + 1], cfg[o + 2]
        if s["n"] == 0:
            s["w"] = now + window
        s["n"] += 1
        counted |= 1 << (i - 1)
        if s["n"] >= threshold:
            s["s"] += 1
            s["u"] = now + _duration(cfg, o, s["s"])
            s["n"] = threshold - 1
            s["w"] = s["u"] + window
            s["x"] = max(now + cfg[o + 6], s["w"])
            newly |= 1 << (i - 1)
            longest = max(longest, s["u"] - now)
        _save(db, keys[_KEY_INDEX[i - 1]], s, now)
    return [1, 0, 0, newly, counted, remaining(newly), int(known), longest]


def _success(db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> list[int]:
    now = _now(db)
    member = str(args[0])
    remember, keep = int(args[1]), int(args[2])
    counted, newly = int(args[3]), int(args[4])
    cfg = _policy(args[5])
    pair = db.get(keys[0]) or {}
    had_n = int(pair.get("n", 0)) if int(pair.get("w", 0)) > now else 0
    had_lock = 1 if int(pair.get("u", 0)) > now else 0
    db.delete(keys[0])
    if cfg[2 * SCOPE_ARGS] == 1:
        db.delete(keys[2])
    for i in (2, 4):
        o = (i - 1) * SCOPE_ARGS
        idx = _KEY_INDEX[i - 1]
        bit = 1 << (i - 1)
        if idx >= len(keys) or cfg[o] != 1 or not counted & bit:
            continue
        v = db.get(keys[idx])
        if v is None or int(v.get("w", 0)) <= now:
            continue
        n, u, s, x = (int(v.get(k, 0)) for k in ("n", "u", "s", "x"))
        if newly & bit:
            u, s, n = 0, max(0, s - 1), cfg[o + 1] - 1
        elif n > 0:
            n -= 1
        if n == 0 and u <= now and (s == 0 or x <= now):
            db.delete(keys[idx])
        else:
            db.set(keys[idx], {**v, "n": n, "u": u, "s": s}, keepttl=True)
    if member:
        good = dict(db.get(keys[3]) or {})
        good[member] = now
        good = {m: sc for m, sc in good.items() if sc > now - remember}
        if len(good) > keep:
            good = dict(sorted(good.items(), key=lambda kv: (kv[1], kv[0]))[len(good) - keep :])
        db.set(keys[3], good, px=remember)
    return [had_n, had_lock]


RESERVE = Script(name="lockout_reserve", lua_file="lockout_reserve.lua", memory=_reserve)
SUCCESS = Script(name="lockout_success", lua_file="lockout_success.lua", memory=_success)


def _peek(db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> int:
    v = db.get(keys[0])
    if not isinstance(v, dict):
        return 0
    return max(0, int(v.get("u", 0)) - _now(db))


#: Milliseconds left on the lock held in one scope hash (0 when none): for listing locks.
PEEK = Script(
    name="lockout_peek",
    lua="""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then return 0 end
local u = tonumber(redis.call('HGET', KEYS[1], 'u')) or 0
return math.max(0, u - now)
""",
    memory=_peek,
)
