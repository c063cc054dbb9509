"""The lockout's per-instance plan cache stays small under hostile identifiers, and state keys of another type
(a hash left by the hash-based format of older versions, a zset) read as empty rather than failing decisions."""

from __future__ import annotations

import pytest
import redis

from backend_guard.lockout import Lockout
from backend_guard.ratelimit import RateLimiter
from backend_guard.storage import MemoryStore, RedisStore

from .conftest import REDIS_URL

IP = "203.0.113.7"


def test_long_identifiers_are_not_kept_by_the_plan_cache() -> None:
    lock = Lockout(MemoryStore(), max_failures=2)
    long_name = "A" * 100_000
    for i in range(5):
        lock.check(f"{i}{long_name}", IP)
    lock.check("alice", "x" * 10_000)  # not an address: counted under its own text, never cached
    assert all(len(a) <= 256 for a, _ in lock._plans)
    assert all(len(a) <= 256 for a in lock._addr_ids)
    lock.record_failure(long_name, IP)
    lock.record_failure(" " + long_name.lower() + " ", IP)  # the same account: its second failure locks it
    assert lock.check(long_name, IP).locked is True
    assert lock.check("b" + long_name, IP).locked is False


def test_equal_identifiers_of_other_types_never_share_a_plan() -> None:
    """1 == 1.0 == True in Python, but they name the accounts "1", "1.0" and "true": a cache keyed by the raw
    value must not hand one the other's counters."""
    lock = Lockout(MemoryStore(), max_failures=1)
    lock.record_failure(1, IP)  # type: ignore[arg-type]
    assert lock.check(1, IP).locked is True  # type: ignore[arg-type]
    assert lock.check(True, IP).locked is False  # type: ignore[arg-type]
    assert lock.check(1.0, IP).locked is False  # type: ignore[arg-type]
    assert lock.check("1", IP).locked is True


@pytest.mark.redis
@pytest.mark.parametrize("scope", [0, 1, 3])  # pair, account (and ceiling), address (2 is the address set)
@pytest.mark.parametrize("kind", ["hash", "zset", "short string"])
def test_state_keys_of_another_type_read_as_empty(
    redis_store: RedisStore, scope: int, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    lock = Lockout(redis_store, max_failures=2, account_max_failures=3, address_max_failures=5)
    key = lock._plan("alice", IP).keys[scope]
    client = redis.Redis.from_url(REDIS_URL)

    def spoil() -> None:
        client.delete(key)
        if kind == "hash":  # the format of older versions, holding a live lock
            client.hset(key, mapping={"n": 1, "w": 9e12, "u": 9e12, "s": 1, "x": 9e12})
        elif kind == "zset":
            client.zadd(key, {"m": 1})
        else:
            client.set(key, b"garbage")

    try:
        with caplog.at_level("WARNING", logger="backend_guard"):
            spoil()
            lock.record_success("alice", IP)  # a store error is only logged here
            spoil()
            with lock.attempt("alice", IP) as att:  # on_storage_error="deny": a store error would raise
                att.succeeded()  # the success script then reads the account and address scopes
            spoil()
            lock.record_failure("alice", IP)
            lock.record_failure("alice", IP)
            assert lock.check("alice", IP).locked is True
        assert not [r for r in caplog.records if "store unavailable" in r.getMessage()]
    finally:
        client.close()


@pytest.mark.redis
@pytest.mark.parametrize("limits", [("5/minute",), ("5/minute", "100/hour")])
def test_sliding_window_keys_of_another_type_read_as_empty(redis_store: RedisStore, limits: tuple[str, ...]) -> None:
    limiter = RateLimiter(redis_store, strategy="sliding-window-counter", on_storage_error="raise")
    assert limiter.hit("k", *limits).allowed
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{redis_store.prefix}:*"))
        assert len(keys) == len(limits)
        for key in keys:
            client.delete(key)
            client.hset(key, mapping={"w": 1, "c": 1, "p": 1})
    finally:
        client.close()
    results = [limiter.hit("k", *limits).allowed for _ in range(6)]
    assert results == [True] * 5 + [False]
