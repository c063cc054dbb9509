"""The numbers of a lockout policy reach the generated Lua as plain digits, and only numbers Redis can take.

An int subclass (an ``(int, Enum)`` member, or one with its own ``__format__``) used to be formatted into the Lua
text as itself: ``Limits.LOGIN`` (every decision on Redis failed) or arbitrary Lua. Durations so long that Lua
printed them as ``1e+17`` were accepted and failed only on Redis. Both run here on the memory store and on the
real Redis, which must agree.
"""

from __future__ import annotations

import enum
import re
from typing import Any

import pytest
import redis

import backend_guard as bg
from backend_guard.exceptions import AccountLocked, ConfigurationError
from backend_guard.lockout import MAX_ADDRESS_FAILURES, MAX_DURATION, Lockout, LockoutStatus
from backend_guard.lockout._scripts import MAX_MS, LockoutPolicy, ScopeRule, reserve_lua, scripts_for
from backend_guard.storage import MemoryStore, RedisStore

from .conftest import REDIS_URL, TEST_TIMEOUTS

IP = "203.0.113.7"
OTHER_IP = "198.51.100.9"


class Limits(int, enum.Enum):
    """A plain ``(int, Enum)``: ``f"{Limits.LOGIN}"`` is ``"Limits.LOGIN"`` on Python < 3.12, not ``"3"``."""

    LOGIN = 3
    ACCOUNT = 6
    ADDRESS = 5
    KEEP = 2


def _hostile(value: int, key: str) -> int:
    """An int of ``value`` whose every way of printing itself is Lua that writes ``key``."""
    lua = f"{value} + (redis.call('SET', '{key}', 'pwned') and 0)"

    class Hostile(int):
        def __format__(self, spec: str) -> str:
            return lua

        def __str__(self) -> str:
            return lua

        def __repr__(self) -> str:
            return lua

        def __int__(self) -> int:
            return 99

        def __index__(self) -> int:
            return 99

        def __sub__(self, other: Any) -> Any:
            return lua

    return Hostile(value)


def _kwargs(kind: str, key: str) -> dict[str, Any]:
    """The counts of a Lockout policy as ``kind``: plain ints, enum members or hostile ints (same values)."""
    plain = {
        "max_failures": 3,
        "account_max_failures": 6,
        "address_max_failures": 5,
        "max_remembered_addresses": 2,
        "account_ceiling": 20,
    }
    if kind == "enum":
        return {**plain, **{n: Limits[m] for n, m in _ENUM_NAMES.items()}}
    if kind == "hostile":
        return {name: _hostile(value, key) for name, value in plain.items()}
    return plain


_ENUM_NAMES = {
    "max_failures": "LOGIN",
    "account_max_failures": "ACCOUNT",
    "address_max_failures": "ADDRESS",
    "max_remembered_addresses": "KEEP",
}


def _literals(source: str) -> set[str]:
    """Every token of ``source``'s code (comments dropped) that starts with a digit: the numeric literals."""
    code = "\n".join(line.split("--", 1)[0] for line in source.splitlines())
    return set(re.findall(r"(?<![\w.])\d[\w.+\-]*", code))


def _script_sources(lock: Lockout) -> tuple[str, str]:
    return lock._reserve_script.source, lock._success_script.source


# -- the policy and its Lua text ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["enum", "hostile"])
def test_counts_of_any_int_class_make_the_plain_policy_and_scripts(kind: str, prefix: str) -> None:
    plain = Lockout(**_kwargs("plain", ""))
    odd = Lockout(**_kwargs(kind, f"{prefix}:injected"))
    assert odd._script_policy == plain._script_policy
    for rule in odd._script_policy.scopes:
        for name in ("threshold", "window", "base", "factor_milli", "max_lock", "strike_ttl"):
            assert type(getattr(rule, name)) is int, (name, rule)
    assert type(odd._script_policy.keep) is int
    assert type(odd.max_failures) is int
    assert odd.max_failures == 3
    assert _script_sources(odd) == _script_sources(plain)
    for source in _script_sources(odd):
        assert "Limits" not in source
        assert "pwned" not in source
        assert all(lit.isdigit() for lit in _literals(source)), _literals(source)


def test_the_generator_prints_digits_even_for_a_rule_that_holds_a_subclass() -> None:
    """The second line of defence: should a subclass ever sit in a policy, the Lua generator prints digits."""
    rule = ScopeRule(True, 3, 1000, 100, 2000, 400, 5000)
    policy = LockoutPolicy((rule, ScopeRule(), ScopeRule(), rule), 300, True, 2)
    for name in ("threshold", "window", "base", "max_lock", "strike_ttl"):
        object.__setattr__(rule, name, _hostile(getattr(rule, name), "x:injected"))
    object.__setattr__(policy, "remember_ms", _hostile(300, "x:injected"))
    object.__setattr__(policy, "keep", Limits.KEEP)
    for source in (reserve_lua(policy), policy.lua_constants()):
        assert "pwned" not in source
        assert "Limits" not in source
        assert all(lit.isdigit() for lit in _literals(source)), _literals(source)
    assert "n1 >= 3 then" in reserve_lua(policy)
    assert "n1 = 2\n" in reserve_lua(policy)
    assert "local KEEP = 2\n" in policy.lua_constants()


def test_an_enum_policy_never_poisons_the_script_cache_of_an_equal_plain_policy() -> None:
    scripts_for.cache_clear()
    first = Lockout(max_failures=Limits.LOGIN, window=4321)  # first in the cache
    second = Lockout(max_failures=3, window=4321)
    assert first._reserve_script is second._reserve_script  # one cache entry: the plain one
    assert "if n1 >= 3 then" in second._reserve_script.source


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": True},
        {"threshold": 2.0},
        {"threshold": 0},
        {"threshold": 1_000_001},
        {"window": MAX_MS + 1},
        {"max_lock": 10**400},
        {"strike_ttl": "5"},
        {"factor_milli": 999},
        {"factor_milli": 100_001},
    ],
)
def test_scope_rules_refuse_numbers_the_scripts_cannot_hold(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        ScopeRule(True, **kwargs)


def test_policies_refuse_numbers_the_scripts_cannot_hold() -> None:
    with pytest.raises(ConfigurationError):
        LockoutPolicy((ScopeRule(),) * 4, MAX_MS + 1, False, 1)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        LockoutPolicy((ScopeRule(),) * 4, 1000, False, True)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        LockoutPolicy((ScopeRule(),) * 3, 1000, False, 1)  # type: ignore[arg-type]


# -- the same behaviour on memory and on the real Redis -----------------------------------------------------------


def _trace(lock: Lockout) -> list[tuple[Any, ...]]:
    """A fixed sequence of decisions over every scope; retry times are left out (the clocks differ)."""

    def view(status: LockoutStatus) -> tuple[Any, ...]:
        return (status.locked, status.remaining, status.scope, status.known_address, status.degraded)

    out: list[tuple[Any, ...]] = []
    with lock.attempt("alice", IP) as attempt:
        attempt.succeeded()  # IP becomes a known address of alice
    for account, ip in [("alice", IP)] * 4 + [("alice", OTHER_IP)] * 4 + [("bob", OTHER_IP)] * 3:
        try:
            with lock.attempt(account, ip) as attempt:
                out.append(("reserved", *view(attempt.status)))
        except AccountLocked as exc:
            out.append(("refused", exc.retry_after > 0))
        out.append(("check", *view(lock.check(account, ip))))
    out.append(("check", *view(lock.check("carol", OTHER_IP))))
    return out


@pytest.mark.redis
@pytest.mark.parametrize("kind", ["plain", "enum", "hostile"])
def test_odd_int_counts_decide_alike_on_memory_and_redis(redis_store: RedisStore, prefix: str, kind: str) -> None:
    injected = f"{prefix}:injected"
    scripts_for.cache_clear()  # no equal policy of an earlier test may stand in for this one's scripts
    memory = _trace(Lockout(MemoryStore(prefix=prefix), **_kwargs(kind, injected)))
    on_redis = _trace(Lockout(redis_store, **_kwargs(kind, injected)))
    assert on_redis == memory
    assert memory == _trace(Lockout(MemoryStore(prefix=prefix + "x"), **_kwargs("plain", "")))
    assert any(step[:2] == ("refused", True) for step in memory)  # the locks were reached
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert client.exists(injected) == 0
    finally:
        client.close()


@pytest.mark.redis
def test_an_enum_threshold_locks_on_redis_even_failing_open(redis_store: RedisStore) -> None:
    """The review's symptom: every decision failed, and with on_storage_error='allow' nothing ever locked."""
    scripts_for.cache_clear()
    lock = Lockout(redis_store, max_failures=Limits.LOGIN, on_storage_error="allow")
    for _ in range(3):
        assert lock.record_failure("bob", IP).degraded is False
    status = lock.check("bob", IP)
    assert status.locked
    assert status.scope == "pair"
    assert not status.degraded


# -- durations ---------------------------------------------------------------------------------------------------

_DURATIONS = [
    "window",
    "lockout_duration",
    "max_lockout_duration",
    "backoff_reset",
    "ceiling_window",
    "remember_addresses_for",
]


@pytest.mark.parametrize("name", _DURATIONS)
@pytest.mark.parametrize("value", [1e14, 1e306, float("inf"), 10**400, MAX_DURATION + 1, float("nan"), True, 0])
def test_durations_beyond_the_bound_are_configuration_errors(name: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=f"^{name} must be a positive number of seconds"):
        Lockout(**{name: value})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"address_max_failures": MAX_ADDRESS_FAILURES + 1},
        {"address_max_failures": 2**63},
        {"max_remembered_addresses": True},
        {"backoff_factor": True},
        {"backoff_factor": float("inf")},
        {"max_failures": Limits.LOGIN, "account_ceiling": 2},
    ],
)
def test_other_numbers_out_of_range_are_configuration_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Lockout(**kwargs)


@pytest.mark.parametrize("store_kind", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
def test_durations_at_the_bound_work_on_both_stores(store_kind: str, request: pytest.FixtureRequest) -> None:
    store = MemoryStore() if store_kind == "memory" else request.getfixturevalue("redis_store")
    lock = Lockout(
        store,
        max_failures=1,
        address_max_failures=MAX_ADDRESS_FAILURES,
        window=MAX_DURATION,
        lockout_duration=MAX_DURATION,
        max_lockout_duration=MAX_DURATION,
        backoff_reset=MAX_DURATION,
        ceiling_window=MAX_DURATION,
        remember_addresses_for=MAX_DURATION,
        backoff_factor=100,
        extend_while_locked=True,
    )
    with lock.attempt("dave", OTHER_IP) as attempt:
        attempt.succeeded()
    assert lock.record_failure("erin", IP).remaining == 0
    status = lock.check("erin", IP)
    assert status.locked
    assert status.scope == "pair"
    assert MAX_DURATION - 3600 < status.retry_after <= MAX_DURATION
    assert lock.record_failure("erin", IP).locked  # extended while locked: still within the bound
    assert lock.check("dave", OTHER_IP) == LockoutStatus(False, 0.0, 1, None, True)


def test_settings_refuse_what_lockout_refuses() -> None:
    for field in ("window", "lockout_duration", "max_lockout_duration"):
        with pytest.raises(ConfigurationError, match=re.escape(f"lockout.{field}")):
            bg.GuardSettings(lockout={field: 1e14})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=re.escape("lockout.address_max_failures")):
        bg.GuardSettings(lockout={"address_max_failures": MAX_ADDRESS_FAILURES + 1})  # type: ignore[arg-type]
    settings = bg.LockoutSettings(window=MAX_DURATION, lockout_duration=MAX_DURATION, max_lockout_duration=MAX_DURATION)
    assert settings.build("memory://").window == MAX_DURATION


@pytest.mark.redis
def test_scripts_for_a_bound_policy_load_on_redis(redis_url: str) -> None:
    """Both scripts of the largest policy compile on the real server (a SCRIPT LOAD, nothing run)."""
    rule = ScopeRule(True, 1_000_000, MAX_MS, MAX_MS, 100_000, MAX_MS, MAX_MS)
    reserve, success = scripts_for(LockoutPolicy((rule, rule, rule, rule), MAX_MS, True, 1_000_000))
    client = redis.Redis.from_url(redis_url, socket_timeout=TEST_TIMEOUTS["socket_timeout"])
    try:
        for script in (reserve, success):
            assert client.script_load(script.source)
    finally:
        client.close()
