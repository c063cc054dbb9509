"""The lockout's reserve script for Redis, generated per policy as straight-line Lua (:func:`reserve_lua`).

Only the enabled scopes appear, with their thresholds and times as literals and each scope's state in locals: a
decision sends three short arguments, and the server parses none of the policy (a different policy is a
different script, with its own SHA). The script gives the same replies as its Python twin ``_reserve`` in
``_scripts.py``, with the same expressions, so both round the same way; ``tests/golden/lockout_reserve.lua`` pins
the text for one policy, and the equivalence tests run both twins side by side.

The generator is one small method per part of the script, in the script's order: the head (clock, arguments,
the known-address test), reading the scopes, the refusal (and ``extend_while_locked``), the check-only answer,
and counting the failure.
"""

from __future__ import annotations

import operator

from ._policy import SLOT, LockoutPolicy, lua_int

__all__ = ["reserve_lua"]

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

    Example::

        Script(name="lockout_reserve", lua=reserve_lua(policy), memory=functools.partial(_reserve, policy))
    """
    w = _Writer(policy)
    return "\n".join([*w.head(), *w.reads(), *w.refusal(), *w.check_only(), *w.counting()])


def _guard(i: int, *, exempt: bool) -> str:
    """The condition under which scope ``i`` takes part (present and, with ``exempt``, not exempt)."""
    parts = ["named"] if i in (2, 3) else []
    if exempt and i in (2, 4):
        parts.append("not known")
    return " and ".join(parts)


def _when(cond: str, expr: str) -> str:
    return f"{cond} and {expr}" if cond else expr


def _expire(i: int) -> list[str]:
    """Forget what of scope ``i`` has run out: the count with its window, the strikes, the lock."""
    return [
        f"if w{i} <= now then n{i} = 0; w{i} = 0 end",
        f"if x{i} <= now then s{i} = 0; x{i} = 0 end",
        f"if u{i} <= now then u{i} = 0 end",
    ]


def _indent(prefix: str, lines: list[str]) -> list[str]:
    return [prefix + line for line in lines]


class _Writer:
    """The parts of one policy's reserve script, each a list of lines (joined with newlines, in this order)."""

    __slots__ = ("account", "key", "on", "policy", "rules")

    def __init__(self, policy: LockoutPolicy) -> None:
        self.policy = policy
        self.rules = policy.scopes
        self.on = [i for i in range(1, 5) if self.rules[i - 1].enabled]
        self.key = {i: SLOT[i - 1][0] + 1 for i in range(1, 5)}  # scope -> its KEYS index (the account's two share 2)
        self.account = [i for i in self.on if i in (2, 3)]  # the scopes kept in the account's key

    # -- building blocks ---------------------------------------------------------------------------------------

    def duration(self, i: int, strikes: str) -> str:
        """The lock of scope ``i`` after ``strikes`` locks: the twin's ``_duration``, as a Lua expression."""
        r = self.rules[i - 1]
        return (
            f"floor(min({lua_int(r.max_lock)}, {lua_int(r.base)} * ({lua_int(r.factor_milli)} / 1000) "
            f"^ min({strikes} - 1, 60)))"
        )

    def save(self, i: int) -> list[str]:
        """Write scope ``i``'s key; the account's key is only marked (``da``) and written once, by ``save_account``."""
        if i in (2, 3):
            return ["  da = true"]
        k = self.key[i]
        return [
            f"  redis.call('SET', KEYS[{k}], pack('<ddddd', n{i}, w{i}, u{i}, s{i}, x{i}), 'PX', "
            f"max(1, max(w{i}, u{i}, x{i}) - now))"
        ]

    def save_account(self) -> list[str]:
        """Write the account's key (both of its scopes) when a scope in it changed."""
        if not self.account:
            return []
        return [
            "if da then",
            "  redis.call('SET', KEYS[2], pack('<dddddddddd', n2, w2, u2, s2, x2, n3, w3, u3, s3, x3), 'PX', "
            "max(1, max(w2, u2, x2, w3, u3, x3) - now))",
            "end",
        ]

    def remaining(self) -> list[str]:
        """``left``: the failures left before the nearest lock, over the scopes that take part and are not exempt."""
        out = ["local left = -1"]
        for i in self.on:
            cond = _guard(i, exempt=True)
            body = [
                f"local l = {lua_int(self.rules[i - 1].threshold)} - n{i}",
                f"if u{i} > 0 then l = 0 end",
                "if left < 0 or l < left then left = l end",
            ]
            out += [f"if {cond} then" if cond else "do", *_indent("  ", body), "end"]
        return out

    # -- the script's parts, in order --------------------------------------------------------------------------

    def head(self) -> list[str]:
        """The documentation, the server clock, the arguments, and whether the address is a known one."""
        return [
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
            f"  if score and tonumber(score) > now - {lua_int(self.policy.remember_ms)} then known = true end",
            "end",
            "local k = known and 1 or 0",
        ]

    def reads(self) -> list[str]:
        """Read every enabled scope's numbers with one MGET, then forget what of them has run out."""
        read_keys = sorted({self.key[i] for i in self.on})
        lua = []
        if self.on:
            lua.append("local vals = redis.call('MGET', " + ", ".join(f"KEYS[{k}]" for k in read_keys) + ")")
        lua.append("local v")
        for j, k in enumerate(read_keys, 1):
            lua += self.read_account(j) if k == 2 else self.read_scope(j, k)
        return lua

    def read_account(self, j: int) -> list[str]:
        """The account's key (MGET reply ``j``): both of its scopes' numbers, read only for a named account."""
        read = [
            f"v = vals[{j}]",
            "if v and #v == 80 then n2, w2, u2, s2, x2, n3, w3, u3, s3, x3 = unpack('<dddddddddd', v) end",
            *(line for i in self.account for line in _expire(i)),
        ]
        return [
            "local n2, w2, u2, s2, x2, n3, w3, u3, s3, x3 = 0, 0, 0, 0, 0, 0, 0, 0, 0, 0",
            "if named then",
            *_indent("  ", read),
            "end",
        ]

    def read_scope(self, j: int, k: int) -> list[str]:
        """The key ``KEYS[k]`` of one scope (MGET reply ``j``)."""
        i = next(i for i in self.on if self.key[i] == k)
        return [
            f"local n{i}, w{i}, u{i}, s{i}, x{i} = 0, 0, 0, 0, 0",
            f"v = vals[{j}]",
            f"if v and #v == 40 then n{i}, w{i}, u{i}, s{i}, x{i} = unpack('<ddddd', v) end",
            *_expire(i),
        ]

    def refusal(self) -> list[str]:
        """A lock in a scope that takes part refuses the attempt; the longest one is reported."""
        lua = ["local refused, refusing = 0, 0"]
        for i in self.on:
            cond = _when(_guard(i, exempt=True), f"u{i} - now > refused")
            lua.append(f"if {cond} then refused = u{i} - now; refusing = {i} end")
        lua.append("if refused > 0 then")
        if self.policy.extend:
            lua += self.extension()
        return [*lua, "  return {0, refused, refusing, 0, 0, 0, k, 0}", "end"]

    def extension(self) -> list[str]:
        """``extend_while_locked``: a counted attempt while locked lengthens every lock that refuses it."""
        lua = ["  if count then"]
        if self.account:
            lua.append("    local da = false")
        for i in self.on:
            r = self.rules[i - 1]
            cond = _when(_guard(i, exempt=True), f"u{i} > 0")
            lua += [
                f"    if {cond} then",
                f"      u{i} = max(u{i}, now + {self.duration(i, f'max(s{i}, 1)')})",
                f"      w{i} = max(w{i}, u{i} + {lua_int(r.window)})",
                f"      x{i} = max(x{i}, w{i})",
                f"      if u{i} - now > refused then refused = u{i} - now end",
                *_indent("    ", self.save(i)),
                "    end",
            ]
        return [*lua, *_indent("    ", self.save_account()), "  end"]

    def check_only(self) -> list[str]:
        """Mode 0 (check): the failures left, nothing written."""
        return ["if not count then", *_indent("  ", self.remaining()), "  return {1, 0, 0, 0, 0, left, k, 0}", "end"]

    def counting(self) -> list[str]:
        """Count one failure in every scope that takes part and is not locked (an exempt scope counts too)."""
        lua = ["local newly, counted, longest = 0, 0, 0"]
        if self.account:
            lua.append("local da = false")
        for i in self.on:
            lua += self.count_scope(i)
        return [*lua, *self.save_account(), *self.remaining(), "return {1, 0, 0, newly, counted, left, k, longest}", ""]

    def count_scope(self, i: int) -> list[str]:
        """Count the failure in scope ``i``; at its threshold, lock it (one more strike) and start a new window."""
        r = self.rules[i - 1]
        bit = 1 << (i - 1)
        cond = _when(_guard(i, exempt=False), f"u{i} == 0")
        return [
            f"if {cond} then",
            f"  if n{i} == 0 then w{i} = now + {lua_int(r.window)} end",
            f"  n{i} = n{i} + 1",
            f"  counted = counted + {bit}",
            f"  if n{i} >= {lua_int(r.threshold)} then",
            f"    s{i} = s{i} + 1",
            f"    u{i} = now + {self.duration(i, f's{i}')}",
            f"    n{i} = {lua_int(operator.index(r.threshold) - 1)}",
            f"    w{i} = u{i} + {lua_int(r.window)}",
            f"    x{i} = max(now + {lua_int(r.strike_ttl)}, w{i})",
            f"    newly = newly + {bit}",
            f"    if u{i} - now > longest then longest = u{i} - now end",
            "  end",
            *self.save(i),
            "end",
        ]
