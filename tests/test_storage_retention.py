"""Security state is never evicted: not by a flood of rate-limit keys on the memory store, not by Redis.

The memory store keeps rate-limit counters (evictable: forgetting one at worst admits a few extra requests)
apart from security state (token families and subject indexes, used one-time tokens, lockout counters and locks),
which it never evicts: when that area is full it refuses a new key with StorageError and changes nothing. The
Redis store refuses a server whose ``maxmemory-policy`` could evict security state (private servers here: the
shared one is never reconfigured).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend_guard._keys import generate_key
from backend_guard.exceptions import ConfigurationError, InvalidToken, StorageError
from backend_guard.lockout import Lockout
from backend_guard.ratelimit import RateLimiter
from backend_guard.storage import MemoryStore, MemoryView, RedisStore, Script, open_store
from backend_guard.storage.redis import evicting_policy_problem, reported_policies
from backend_guard.tokens import TokenManager
from backend_guard.tokens.onetime import OneTimeTokens

from .conftest import FrozenClock
from .faults import ServerGroup, redis_cli, wait_until

PEM, _ = generate_key("EdDSA")
IP = "203.0.113.7"


def _flood(store: MemoryStore, n: int) -> None:
    """A flood of distinct rate-limit keys, as distinct client addresses or account names would make."""
    limiter = RateLimiter(store)
    for i in range(n):
        limiter.hit(f"client-{i}", "5/minute")


def _tokens(store: MemoryStore) -> TokenManager:
    return TokenManager(PEM, "EdDSA", issuer="https://auth.example", audience="api", store=store)


def _one_time(store: MemoryStore) -> OneTimeTokens:
    return OneTimeTokens(store=store, purpose="password-reset", max_age=600, secret_keys=["k" * 32])


# -- the memory store: a flood of counters never evicts security state ----------------------------------------


def test_log_out_everywhere_still_ends_every_family_after_a_flood_of_rate_limit_keys() -> None:
    store = MemoryStore(max_keys=50)
    tm = _tokens(store)
    pairs = [tm.issue("victim") for _ in range(3)]
    _flood(store, 2_000)
    assert tm.revoke_subject("victim") == 3
    for pair in pairs:
        with pytest.raises(InvalidToken):
            tm.rotate(pair.refresh_token)


def test_a_used_reset_link_stays_used_after_a_flood_of_rate_limit_keys() -> None:
    store = MemoryStore(max_keys=50)
    ot = _one_time(store)
    token = ot.create("user-1")
    ot.consume(token)
    _flood(store, 2_000)
    with pytest.raises(InvalidToken, match="already used"):
        ot.consume(token)


def test_a_lock_stays_after_a_flood_of_rate_limit_keys() -> None:
    store = MemoryStore(max_keys=50)
    lock = Lockout(store=store, max_failures=3)
    for _ in range(3):
        lock.record_failure("alice", IP)
    assert lock.check("alice", IP).locked
    _flood(store, 2_000)
    assert lock.check("alice", IP).locked


def test_rate_limit_counters_are_still_bounded_and_evicted_least_recently_used_first() -> None:
    store = MemoryStore(max_keys=50)
    _flood(store, 2_000)
    assert len(store) <= 50


# -- the memory store: a full security state refuses loudly, never forgets ---------------------------------------


def test_a_full_security_state_refuses_a_new_used_marker_and_keeps_every_old_one() -> None:
    store = MemoryStore(max_state_keys=5)
    ot = _one_time(store)
    used = [ot.create(f"user-{i}") for i in range(5)]
    for token in used:
        ot.consume(token)
    refused = ot.create("user-late")
    with pytest.raises(StorageError, match="max_state_keys"):
        ot.consume(refused)
    for token in used:
        with pytest.raises(InvalidToken, match="already used"):
            ot.consume(token)


def test_a_refused_issue_leaves_no_half_written_family() -> None:
    # Room for one more key: the family fits, its subject index does not; the family must not stay behind.
    store = MemoryStore(max_state_keys=3)
    tm = _tokens(store)
    tm.issue("first")  # a family and an index: 2 keys
    with pytest.raises(StorageError):
        tm.issue("second")
    assert len(store) == 2
    assert store.scan("*second*") == []


def test_expired_security_state_makes_room_again() -> None:
    clock = FrozenClock()
    store = MemoryStore(max_state_keys=3, clock=clock)
    ot = _one_time(store)
    for i in range(3):
        ot.consume(ot.create(f"user-{i}"))
    with pytest.raises(StorageError):
        ot.consume(ot.create("user-3"))
    clock.advance(601 + 60)  # past every marker's expiry (max_age plus the verification leeway)
    ot_later = OneTimeTokens(store=store, purpose="password-reset", max_age=600, secret_keys=["k" * 32], clock=clock)
    ot_later.consume(ot_later.create("user-4"))


def test_a_lockout_on_a_full_security_state_fails_closed_and_keeps_its_counts() -> None:
    store = MemoryStore(max_state_keys=2)
    lock = Lockout(store=store, max_failures=2)  # on_storage_error="deny" by default
    lock.record_failure("alice", IP)  # the pair's value and the account's value: the state is full
    with pytest.raises(StorageError):
        lock.record_failure("bob", IP)
    lock.record_failure("alice", IP)
    assert lock.check("alice", IP).locked  # alice's first failure was not forgotten


def test_memory_url_sets_both_bounds() -> None:
    store = open_store("memory://?max_keys=10&max_state_keys=20")
    assert isinstance(store, MemoryStore)
    assert (store.max_keys, store.max_state_keys) == (10, 20)
    assert open_store("memory://?max_keys=10").max_state_keys == 10  # type: ignore[union-attr]
    with pytest.raises(ConfigurationError, match="max_state_keys"):
        MemoryStore(max_state_keys=0)


def _put(db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> Any:
    db.set(keys[0], str(args[0]), px=float(args[1]))
    return 1


def _get(db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> Any:
    return db.get(keys[0])


PUT_STATE = Script(name="test_put_state", memory=_put, lua="")
PUT_COUNTER = Script(name="test_put_counter", memory=_put, lua="", evictable=True)
GET_STATE = Script(name="test_get_state", memory=_get, lua="")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 40)), max_size=200))
def test_security_state_is_kept_until_it_expires_whatever_the_counters_do(ops: list[tuple[bool, int]]) -> None:
    store = MemoryStore(max_keys=8, max_state_keys=16)
    kept: dict[str, str] = {}
    for n, (security, k) in enumerate(ops):
        if security:
            key = store.key("state", k)
            try:
                store.run(PUT_STATE, [key], [str(n), 60_000])
            except StorageError:
                assert len(kept) >= 16  # refused only when full,
                assert key not in kept  # and only a new key
                continue
            kept[key] = str(n)
        else:
            store.run(PUT_COUNTER, [store.key("counter", k)], [str(n), 60_000])
    for key, value in kept.items():
        assert store.run(GET_STATE, [key], []) == value


# -- Redis: the store refuses a maxmemory-policy that can evict security state ------------------------------------


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[ServerGroup]:
    group = ServerGroup(tmp_path)
    try:
        yield group
    finally:
        group.stop_all()


def _url(port: int, query: str = "") -> str:
    return f"redis://127.0.0.1:{port}/0" + (f"?{query}" if query else "")


@pytest.mark.redis
@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-random", "volatile-lru", "volatile-ttl"])
def test_a_redis_store_refuses_an_evicting_policy_before_any_security_state(servers: ServerGroup, policy: str) -> None:
    port = servers.start("--maxmemory-policy", policy, "--maxmemory", "64mb")
    store = open_store(_url(port, "prefix=ret"))
    try:
        ot = _one_time(store)  # type: ignore[arg-type]
        token = ot.create("user-1")
        with pytest.raises(ConfigurationError, match=f"maxmemory-policy is {policy}.*noeviction") as info:
            ot.consume(token)
        assert "on_evicting_policy" in str(info.value)
        # Refused again without marking the token: it is never accepted under the unsafe policy.
        with pytest.raises(ConfigurationError):
            ot.consume(token)
        tm = _tokens(store)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError):
            tm.issue("u")
        with pytest.raises(ConfigurationError):
            Lockout(store=store, max_failures=3).record_failure("alice", IP)
        # Rate-limit counters may be evicted: the limiter runs on the same server.
        assert RateLimiter(store).hit("client", "5/minute").allowed
    finally:
        store.close()


@pytest.mark.redis
async def test_a_redis_store_refuses_an_evicting_policy_on_the_async_path(servers: ServerGroup) -> None:
    port = servers.start("--maxmemory-policy", "allkeys-lru")
    store = RedisStore(_url(port), prefix="ret")
    try:
        with pytest.raises(ConfigurationError, match="allkeys-lru"):
            await store.acheck_retention()
        with pytest.raises(ConfigurationError, match="allkeys-lru"):
            await _one_time(store).aconsume(_one_time(store).create("user-1"))  # type: ignore[arg-type]
    finally:
        await store.aclose()
        store.close()


@pytest.mark.redis
def test_a_redis_store_accepts_noeviction(servers: ServerGroup) -> None:
    port = servers.start("--maxmemory-policy", "noeviction")
    store = RedisStore(_url(port), prefix="ret")
    try:
        store.check_retention()
        ot = _one_time(store)  # type: ignore[arg-type]
        token = ot.create("user-1")
        ot.consume(token)
        with pytest.raises(InvalidToken, match="already used"):
            ot.consume(token)
    finally:
        store.close()


@pytest.mark.redis
def test_warn_accepts_an_evicting_policy_with_one_warning(
    servers: ServerGroup, caplog: pytest.LogCaptureFixture
) -> None:
    port = servers.start("--maxmemory-policy", "allkeys-lru")
    store = open_store(_url(port, "on_evicting_policy=warn"))
    try:
        ot = _one_time(store)  # type: ignore[arg-type]
        with caplog.at_level(logging.WARNING, logger="backend_guard.storage"):
            ot.consume(ot.create("user-1"))
            ot.consume(ot.create("user-2"))
        warnings = [r for r in caplog.records if "maxmemory-policy" in r.getMessage()]
        assert len(warnings) == 1
        assert "allkeys-lru" in warnings[0].getMessage()
    finally:
        store.close()


@pytest.mark.redis
def test_a_server_without_config_get_gets_one_warning_and_works(
    servers: ServerGroup, caplog: pytest.LogCaptureFixture
) -> None:
    port = servers.start("--rename-command", "CONFIG", '""')
    store = RedisStore(_url(port), prefix="ret")
    try:
        ot = _one_time(store)  # type: ignore[arg-type]
        with caplog.at_level(logging.WARNING, logger="backend_guard.storage"):
            ot.consume(ot.create("user-1"))
            ot.consume(ot.create("user-2"))
        warnings = [r for r in caplog.records if "cannot read maxmemory-policy" in r.getMessage()]
        assert len(warnings) == 1
    finally:
        store.close()


def test_an_unknown_on_evicting_policy_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="on_evicting_policy"):
        open_store("redis://127.0.0.1:6379/0?on_evicting_policy=ignore")
    with pytest.raises(ConfigurationError, match="on_evicting_policy"):
        RedisStore("redis://127.0.0.1:6379/0", on_evicting_policy="ignore")  # type: ignore[arg-type]


def test_only_noeviction_is_safe_for_security_state() -> None:
    assert evicting_policy_problem(["noeviction"]) is None
    assert evicting_policy_problem(["noeviction", "noeviction"]) is None
    for policy in ("allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu", "volatile-ttl"):
        assert policy in (evicting_policy_problem([policy]) or "")
    # A cluster answers per node: one evicting node is enough to refuse.
    reply = {"n1": {"maxmemory-policy": "noeviction"}, "n2": {b"maxmemory-policy": b"allkeys-lru"}}
    assert reported_policies(reply) == ["noeviction", "allkeys-lru"]
    assert "allkeys-lru" in (evicting_policy_problem(reported_policies(reply)) or "")


def _config_gets(port: int) -> int:
    for line in redis_cli(port, "INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_config|get:"):
            return int(line.split("calls=", 1)[1].split(",", 1)[0])
    return 0


@pytest.mark.redis
async def test_a_burst_of_first_calls_reads_the_policy_once_per_store(servers: ServerGroup) -> None:
    port = servers.start("--maxmemory-policy", "noeviction")
    # Generous timeouts: 50 connections opened at once on a loaded machine must not time out; this test counts
    # policy reads, not latency.
    threaded = RedisStore(_url(port), prefix="ret", socket_timeout=5.0, connect_timeout=5.0)
    tasked = RedisStore(_url(port), prefix="ret", socket_timeout=5.0, connect_timeout=5.0)
    try:
        ot = _one_time(threaded)  # type: ignore[arg-type]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda i: ot.consume(ot.create(f"thread-{i}")), range(40)))
        assert _config_gets(port) == 1
        aot = _one_time(tasked)  # type: ignore[arg-type]
        await asyncio.gather(*(aot.aconsume(aot.create(f"task-{i}")) for i in range(50)))
        assert _config_gets(port) == 2
    finally:
        await tasked.aclose()
        threaded.close()
        tasked.close()


# A script that keeps the server busy (bounded: it stops by itself after 20 s), so every other command gets BUSY.
_SPIN = "local s = tonumber(redis.call('TIME')[1]) while tonumber(redis.call('TIME')[1]) - s < 20 do end return 1"


@contextlib.contextmanager
def _busy(port: int) -> Iterator[None]:
    """The server on ``port`` answering BUSY (a long script) inside the block; the script is killed after it."""
    spin = subprocess.Popen(  # noqa: S603 - a fixed local binary, loopback only
        [shutil.which("redis-cli") or "redis-cli", "-h", "127.0.0.1", "-p", str(port), "EVAL", _SPIN, "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: redis_cli(port, "PING").startswith("BUSY"), 10, "the server to answer BUSY")
        yield
    finally:
        wait_until(lambda: redis_cli(port, "SCRIPT", "KILL").startswith("OK"), 10, "SCRIPT KILL")
        spin.wait(10)


@pytest.mark.redis
def test_a_busy_server_during_the_policy_check_does_not_skip_the_check_for_good(servers: ServerGroup) -> None:
    # BUSY (another client's long script) is an outage of a moment, not a server that cannot answer CONFIG GET:
    # the check must fail like any outage and run again, so the evicting policy is still refused afterwards.
    port = servers.start("--maxmemory-policy", "allkeys-lru", "--busy-reply-threshold", "20")
    store = RedisStore(_url(port), prefix="ret", socket_timeout=2.0)
    try:
        with _busy(port), pytest.raises(StorageError):
            store.check_retention()
        ot = _one_time(store)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="allkeys-lru"):
            ot.consume(ot.create("user-1"))
    finally:
        store.close()


@pytest.mark.redis
async def test_a_busy_server_during_the_async_policy_check_does_not_skip_the_check_for_good(
    servers: ServerGroup,
) -> None:
    port = servers.start("--maxmemory-policy", "allkeys-lru", "--busy-reply-threshold", "20")
    store = RedisStore(_url(port), prefix="ret", socket_timeout=2.0)
    try:
        with _busy(port), pytest.raises(StorageError):
            await store.acheck_retention()
        ot = _one_time(store)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="allkeys-lru"):
            await ot.aconsume(ot.create("user-1"))
    finally:
        await store.aclose()
        store.close()
