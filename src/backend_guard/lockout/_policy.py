"""The lockout's numbers: its limits, the checks its settings pass, and the policy its scripts are compiled from.

What must live here: everything that decides which thresholds, windows and backoff a
:class:`~backend_guard.lockout.Lockout` may hold and how they reach its scripts. :func:`check_policy` turns the
constructor's arguments (seconds as floats, counts as ints) into :class:`CheckedPolicy`: the values the lockout
shows as attributes, and the :class:`LockoutPolicy` of whole milliseconds its Lua and Python scripts are
generated from (``_reserve_lua.py``, ``_scripts.py``).

Every number is taken as a plain ``int`` or ``float`` before it is checked: the numbers are written into the
scripts' Lua text, so an ``int`` subclass (an ``IntEnum`` member, one with its own ``__format__``) must never get
the chance to print itself there; and the policy is the cache key of its scripts, so an equal policy must print
the same.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._check import check_bool, check_callable, check_int, check_str, optional
from ..exceptions import ConfigurationError

__all__ = [
    "GOOD",
    "MAX_ADDRESS_FAILURES",
    "MAX_DURATION",
    "MAX_MS",
    "MAX_THRESHOLD",
    "NIST_CEILING",
    "SCOPES",
    "SLOT",
    "CheckedPolicy",
    "LockoutPolicy",
    "ScopeRule",
    "check_options",
    "check_policy",
    "lua_int",
    "plain_int",
]

#: The longest time a policy may hold (10 years, in ms). Every time a script sends Redis (a ``PX``, a
#: ``PEXPIRE``) is at most two of these, far below 1e14: Lua prints a number with 14 significant digits, so a
#: larger one would reach Redis as ``1e+17`` ("value is not an integer or out of range").
MAX_MS = 10 * 365 * 86_400 * 1000
#: The largest threshold (and remembered-address count) a policy may hold: exact in Lua's doubles.
MAX_THRESHOLD = 1_000_000
#: NIST SP 800-63B: no more than 100 consecutive failed attempts on one account.
NIST_CEILING = 100
#: The longest duration a Lockout accepts, in seconds (10 years): windows, locks, resets, remembered addresses.
MAX_DURATION = MAX_MS / 1000
#: The largest ``address_max_failures`` a Lockout accepts.
MAX_ADDRESS_FAILURES = MAX_THRESHOLD

#: The four scopes, by number from 1: their names in statuses, events and lock records.
SCOPES = ("pair", "account", "ceiling", "address")
#: KEYS of both scripts: 1 the pair (account, address), 2 the account (its account-wide scope, then its ceiling,
#: in one value), 3 the remembered good addresses (a sorted set), 4 the address (only when that scope is on).
#: Scope 1..4 -> (index in KEYS from 0, offset of its five numbers in that key's value).
SLOT = ((0, 0), (1, 0), (1, 5), (3, 0))
GOOD = 2  # index of the remembered-address set in KEYS


def plain_int(value: Any) -> int | None:
    """``value`` as a plain ``int`` (an int subclass, such as an ``IntEnum`` member, loses its class and
    methods), or None: not an int, or a bool.

    Example::

        >>> plain_int(True) is None, plain_int(5)
        (True, 5)
    """
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


def lua_int(value: int) -> str:
    """``value`` as a Lua number literal: digits (and a minus sign), whatever the value's class formats as.

    Example::

        >>> lua_int(300_000)
        '300000'
    """
    return int.__repr__(operator.index(value))


@dataclass(frozen=True, slots=True)
class ScopeRule:
    """One scope's numbers (ms): ``enabled`` False turns the scope off.

    Every number is stored as a plain ``int`` in range (or :class:`ConfigurationError`): they are written into
    the generated Lua, and the policy is the cache key of its scripts, so an equal policy must print the same.

    Example::

        ScopeRule(True, threshold=5, window=900_000, base=300_000, factor_milli=2000, max_lock=3_600_000,
                  strike_ttl=86_400_000)
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
    """The whole policy of one :class:`~backend_guard.lockout.Lockout`: four scopes and the address memory.

    Example::

        policy = LockoutPolicy((pair, account, ceiling, ScopeRule()), remember_ms=2_592_000_000, extend=False,
                               keep=10)
    """

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
        """The policy as Lua constants, put in front of the success script's body (``success.lua``)."""
        tables = [
            f"local {name} = {_lua_table([int(getattr(r, field)) for r in self.scopes])}\n" for name, field in _TABLES
        ]
        return "".join(
            [
                *tables,
                f"local REMEMBER = {lua_int(self.remember_ms)}\n",
                f"local EXTEND = {lua_int(self.extend)}\n",
                f"local KEEP = {lua_int(self.keep)}\n",
            ]
        )


#: The success script's per-scope constants: Lua table name, ScopeRule field (each a table of the four scopes).
_TABLES = (
    ("EN", "enabled"),
    ("TH", "threshold"),
    ("WIN", "window"),
    ("BASE", "base"),
    ("FAC", "factor_milli"),
    ("MAXD", "max_lock"),
    ("STRIKE", "strike_ttl"),
)


def _lua_table(values: Sequence[int]) -> str:
    return "{" + ", ".join(lua_int(v) for v in values) + "}"


# -- a Lockout's settings: checked, then compiled into the policy ----------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckedPolicy:
    """A Lockout's policy settings after their checks: the values it shows as attributes, and ``policy``, the
    same numbers in whole milliseconds for its scripts.

    Example::

        checked = check_policy(max_failures=5, ...)
        checked.policy.scopes[0].threshold  # 5
    """

    max_failures: int
    account_max_failures: int | None
    account_ceiling: int
    address_max_failures: int | None
    backoff_factor: float
    max_remembered_addresses: int
    window: float
    lockout_duration: float
    max_lockout_duration: float
    policy: LockoutPolicy


def check_policy(
    *,
    max_failures: int,
    window: float,
    lockout_duration: float,
    backoff_factor: float,
    max_lockout_duration: float,
    backoff_reset: float,
    account_max_failures: int | None,
    account_ceiling: int,
    ceiling_window: float,
    address_max_failures: int | None,
    remember_addresses_for: float,
    max_remembered_addresses: int,
    ipv6_prefix: int,
    extend_while_locked: bool,
    on_storage_error: str,
) -> CheckedPolicy:
    """Check a Lockout's policy settings (see :class:`~backend_guard.lockout.Lockout`); ConfigurationError on the
    first wrong one.

    The checks run in one fixed order (counts, backoff factor, ``on_storage_error``, remembered addresses,
    ``ipv6_prefix``, durations): a call with several wrong settings always names the same one.

    Example::

        checked = check_policy(max_failures=5, window=900.0, ...)
    """
    max_failures, account_max_failures, account_ceiling, address_max_failures = _counts(
        max_failures, account_max_failures, account_ceiling, address_max_failures
    )
    factor = _backoff_factor(backoff_factor)
    if on_storage_error not in ("allow", "deny"):
        raise ConfigurationError('on_storage_error must be "allow" or "deny".')
    max_remembered_addresses = _count("max_remembered_addresses", max_remembered_addresses, 0, 1000)
    if not (isinstance(ipv6_prefix, int) and 0 < ipv6_prefix <= 128):
        raise ConfigurationError("ipv6_prefix must be between 1 and 128.")
    window, lockout_duration, max_lockout_duration = _lock_times(window, lockout_duration, max_lockout_duration)
    window_ms, base_ms, max_ms = _ms(window), _ms(lockout_duration), _ms(max_lockout_duration)
    reset_ms = _ms(_seconds("backoff_reset", backoff_reset))
    ceiling_ms = _ms(_seconds("ceiling_window", ceiling_window))
    remember_ms = _ms(_seconds("remember_addresses_for", remember_addresses_for))
    backoff = (base_ms, round(factor * 1000), max_ms, reset_ms)
    policy = LockoutPolicy(
        (
            _rule(max_failures, window_ms, backoff),
            _rule(account_max_failures, window_ms, backoff),
            _rule(account_ceiling, ceiling_ms, backoff),
            _rule(address_max_failures, window_ms, backoff),
        ),
        remember_ms,
        bool(extend_while_locked),
        max_remembered_addresses,
    )
    return CheckedPolicy(
        max_failures,
        account_max_failures,
        account_ceiling,
        address_max_failures,
        factor,
        max_remembered_addresses,
        window,
        lockout_duration,
        max_lockout_duration,
        policy,
    )


def _rule(limit: int | None, window_ms: int, backoff: tuple[int, int, int, int]) -> ScopeRule:
    """A scope's rule: off without a ``limit``, else the limit, its window and the shared backoff (first lock,
    factor in thousandths, longest lock, strikes forgotten after; all in ms)."""
    if limit is None:
        return ScopeRule()
    return ScopeRule(True, limit, window_ms, *backoff)


def _counts(
    max_failures: int, account_max_failures: int | None, account_ceiling: int, address_max_failures: int | None
) -> tuple[int, int | None, int, int | None]:
    """The four thresholds, checked: (pair, account, ceiling, address); the optional two may be None (off)."""
    max_failures = _count("max_failures", max_failures, 1, NIST_CEILING)
    account_ceiling = _count("account_ceiling", account_ceiling, 1, NIST_CEILING)
    if account_max_failures is not None:
        account_max_failures = _count("account_max_failures", account_max_failures, 1, NIST_CEILING)
    if address_max_failures is not None:
        address_max_failures = _count("address_max_failures", address_max_failures, 1, MAX_ADDRESS_FAILURES)
    if max_failures > account_ceiling:
        raise ConfigurationError("max_failures cannot exceed account_ceiling.")
    return max_failures, account_max_failures, account_ceiling, address_max_failures


def _backoff_factor(value: float) -> float:
    """The backoff factor, a plain number from 1 to 100."""
    factor = _real(value)
    if factor is None or not 1.0 <= factor <= 100.0:
        raise ConfigurationError("backoff_factor must be between 1 and 100.")
    return factor


def _lock_times(window: float, lockout_duration: float, max_lockout_duration: float) -> tuple[float, float, float]:
    """The window, the first lock and the longest lock, in seconds, checked: the longest lock is at least as long
    as the first once both are whole milliseconds."""
    window = _seconds("window", window)
    lockout_duration = _seconds("lockout_duration", lockout_duration)
    max_lockout_duration = _seconds("max_lockout_duration", max_lockout_duration)
    if _ms(max_lockout_duration) < _ms(lockout_duration):
        raise ConfigurationError("max_lockout_duration cannot be shorter than lockout_duration.")
    return window, lockout_duration, max_lockout_duration


def _seconds(name: str, value: float) -> float:
    """``value`` as a plain number of seconds from 0 (excluded) to ``MAX_DURATION``, or ConfigurationError."""
    number = _real(value)
    if number is None or not 0 < number <= MAX_DURATION:  # NaN and infinities fail the comparison
        raise ConfigurationError(f"{name} must be a positive number of seconds, at most {MAX_DURATION:.0f} (10 years).")
    return number


def _ms(value: float) -> int:
    """Seconds as whole milliseconds, at least 1."""
    return max(1, round(value * 1000))


def _count(name: str, value: int, low: int, high: int) -> int:
    """``value`` as a plain int from ``low`` to ``high``, or ConfigurationError."""
    number = plain_int(value)
    if number is None or not low <= number <= high:
        raise ConfigurationError(f"{name} must be an integer from {low} to {high}.")
    return number


def _real(value: Any) -> float | None:
    """``value`` as a plain int or float (subclasses lose their class), or None: not a number, or a bool."""
    if isinstance(value, float):
        return float.__float__(value)  # exact float, whatever a subclass's own __float__ does
    return plain_int(value)


def check_options(
    flags: dict[str, bool], texts: dict[str, str], ipv6_prefix: int, on_event: object, secret: object
) -> None:
    """The types of the settings that are not policy numbers (those are :func:`check_policy`'s), in the order a
    Lockout always checked them: the flags, the texts, ``ipv6_prefix``, ``on_event``, ``secret``.

    Example::

        check_options({"generic": True}, {"generic_detail": "Try again later."}, 64, None, None)
    """
    for flag_name, flag in flags.items():
        check_bool(flag_name, flag)
    for text_name, text in texts.items():
        check_str(text_name, text)
    check_int("ipv6_prefix", ipv6_prefix, min=1, max=128)
    optional(check_callable, "on_event", on_event)
    if secret is not None and not isinstance(secret, (str, bytes, bytearray)):
        raise ConfigurationError(
            f"secret must be a string or bytes (at least 16 bytes), not a {type(secret).__name__}."
        )
