"""The Redis store under faults: stopped, restarted, stalled and cut servers (a private redis-server)."""

from __future__ import annotations

import asyncio
import time

import pytest

from backend_guard.exceptions import StorageError
from backend_guard.storage import RedisStore

from .faults import fault_proxy, private_redis
from .test_storage import INCR

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def _wait_until_ok(store: RedisStore, key: str, seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return store.run(INCR, [key], [1, 60_000])  # type: ignore[no-any-return]
        except StorageError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_stopped_server_raises_storage_error_and_restart_recovers_without_new_store() -> None:
    with private_redis() as server:
        store = RedisStore(server.url, breaker_cooldown=0.2)
        key = store.key("fault", "k")
        assert store.run(INCR, [key], [1, 60_000])[0] == 1
        server.stop()
        with pytest.raises(StorageError) as info:
            store.run(INCR, [key], [1, 60_000])
        assert info.value.original is not None
        server.start()  # same port, empty data: the store reconnects and reloads its script by itself
        assert _wait_until_ok(store, key)[0] == 1
        store.close()


async def test_async_path_recovers_after_restart() -> None:
    with private_redis() as server:
        store = RedisStore(server.url, breaker_cooldown=0.2)
        key = store.key("fault", "a")
        assert (await store.arun(INCR, [key], [1, 60_000]))[0] == 1
        server.stop()
        with pytest.raises(StorageError):
            await store.arun(INCR, [key], [1, 60_000])
        server.start()
        deadline = time.monotonic() + 5
        while True:
            try:
                result = await store.arun(INCR, [key], [1, 60_000])
                break
            except StorageError:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        assert result[0] == 1
        await store.aclose()


def test_stalled_server_times_out_then_heals() -> None:
    with private_redis() as server, fault_proxy(server.port) as proxy:
        store = RedisStore(proxy.url, socket_timeout=0.2, breaker_cooldown=0.1)
        key = store.key("fault", "s")
        assert store.run(INCR, [key], [1, 60_000])[0] == 1
        proxy.stall()
        with pytest.raises(StorageError) as info:
            store.run(INCR, [key], [1, 60_000])
        assert "unavailable" in str(info.value)
        # While the circuit is open, calls fail fast without dialling the server.
        with pytest.raises(StorageError, match="circuit open"):
            store.run(INCR, [key], [1, 60_000])
        proxy.heal()
        proxy.cut()  # the stalled connection holds a half-read reply: drop it
        result = _wait_until_ok(store, key)
        assert result[0] >= 2
        store.close()


def test_cut_connections_are_retried_once_transparently() -> None:
    with private_redis() as server, fault_proxy(server.port) as proxy:
        store = RedisStore(proxy.url)
        key = store.key("fault", "c")
        assert store.run(INCR, [key], [1, 60_000])[0] == 1
        proxy.cut()
        # The pooled connection is dead; the one immediate retry on a fresh connection hides the cut.
        assert store.run(INCR, [key], [1, 60_000])[0] == 2
        store.close()
