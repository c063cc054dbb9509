"""Shared fixtures: the real Redis (never a fake), a per-test key prefix, a frozen clock, free loopback ports."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from backend_guard.storage import MemoryStore, RedisStore, Store

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_REDIS = os.environ.get("BACKEND_GUARD_REQUIRE_REDIS") == "1"
#: The correctness suites run on a loaded 2-core machine with hundreds of concurrent clients: generous timeouts
#: there; the fault tests set short ones on purpose.
TEST_TIMEOUTS = {"socket_timeout": 5.0, "connect_timeout": 5.0}


def _redis_answers() -> str | None:
    """None when Redis answers at REDIS_URL, else the reason it does not."""
    try:
        import redis
    except ImportError:
        return "redis-py is not installed"
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
        client.ping()
        client.close()
    except Exception as exc:
        return f"no Redis answers at {REDIS_URL}: {type(exc).__name__}: {exc}"
    return None


_REDIS_PROBLEM: str | bool | None = False  # False: not probed yet


def require_redis() -> None:
    """Skip (or, with BACKEND_GUARD_REQUIRE_REDIS=1, fail) when no Redis answers."""
    global _REDIS_PROBLEM
    if _REDIS_PROBLEM is False:
        _REDIS_PROBLEM = _redis_answers()
    if _REDIS_PROBLEM:
        if REQUIRE_REDIS:
            pytest.fail(f"BACKEND_GUARD_REQUIRE_REDIS=1 but {_REDIS_PROBLEM}")
        pytest.skip(str(_REDIS_PROBLEM))


class FrozenClock:
    """A clock for tests: call it for the time in seconds; advance it by hand."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FrozenClock:
    """An injectable clock frozen at a fixed instant."""
    return FrozenClock()


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own, so tests never see each other's keys."""
    return f"bgtest:{uuid.uuid4().hex[:12]}"


@pytest.fixture
def redis_url() -> str:
    """The real Redis URL; skips (or fails under BACKEND_GUARD_REQUIRE_REDIS=1) when no server answers."""
    require_redis()
    return REDIS_URL


def _cleanup(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        batch = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if batch:
            client.delete(*batch)
    finally:
        client.close()


@pytest.fixture
def redis_store(redis_url: str, prefix: str) -> Iterator[RedisStore]:
    """A RedisStore on the real server under this test's prefix; its keys are deleted afterwards."""
    store = RedisStore(redis_url, prefix=prefix, **TEST_TIMEOUTS)
    try:
        yield store
    finally:
        store.close()
        _cleanup(prefix)


@pytest.fixture
async def aredis_store(redis_url: str, prefix: str) -> AsyncIterator[RedisStore]:
    """Like redis_store, closing the async client of the test's event loop too."""
    store = RedisStore(redis_url, prefix=prefix, **TEST_TIMEOUTS)
    try:
        yield store
    finally:
        await store.aclose()
        store.close()
        _cleanup(prefix)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, prefix: str) -> Iterator[Store]:
    """The same suite over the memory store and the real Redis (marker ``redis``)."""
    if request.param == "memory":
        yield MemoryStore(prefix=prefix)
        return
    require_redis()
    rstore = RedisStore(REDIS_URL, prefix=prefix, **TEST_TIMEOUTS)
    try:
        yield rstore
    finally:
        rstore.close()
        _cleanup(prefix)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def astore(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Store]:
    """``store`` for async tests: also closes the async Redis client of the test's event loop."""
    if request.param == "memory":
        yield MemoryStore(prefix=prefix)
        return
    require_redis()
    rstore = RedisStore(REDIS_URL, prefix=prefix, **TEST_TIMEOUTS)
    try:
        yield rstore
    finally:
        await rstore.aclose()
        rstore.close()
        _cleanup(prefix)
