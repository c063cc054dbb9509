"""The Redis store's own send path (storage/_redis_direct.py): scripts sent straight on pooled connections.

What must hold, on a private redis-server (and a fault proxy in front of it where a fault is needed): one
connection is reused call after call; a Redis error reply leaves the connection clean; a call that times out or
is cancelled mid-reply never hands its late reply to the next call; a client the application passes in keeps
redis-py's own path (the store never holds the application's connections); a forked child never uses a
connection its parent opened.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest
import redis

from backend_guard.exceptions import StorageError
from backend_guard.storage import RedisStore, Script
from backend_guard.storage._redis_direct import _getter

from .faults import fault_proxy, private_redis
from .test_storage import INCR

pytestmark = [pytest.mark.redis, pytest.mark.slow]

ECHO = Script(name="echo", lua="return ARGV[1]", memory=lambda db, keys, args: args[0])


def _accepted(url: str) -> int:
    """How many connections the server has accepted so far (INFO stats), the one asking included."""
    with redis.Redis.from_url(url) as admin:
        return int(admin.info("stats")["total_connections_received"])


def test_sequential_calls_reuse_one_connection() -> None:
    with private_redis() as server:
        store = RedisStore(server.url)
        key = store.key("direct", "k")
        before = _accepted(server.url)
        replies = [store.run(INCR, [key], [1, 60_000])[0] for _ in range(50)]
        assert replies == list(range(1, 51))
        assert _accepted(server.url) - before - 1 == 1  # the store's one connection
        store.close()


async def test_async_sequential_calls_reuse_one_connection() -> None:
    with private_redis() as server:
        store = RedisStore(server.url)
        key = store.key("direct", "a")
        before = _accepted(server.url)
        replies = [(await store.arun(INCR, [key], [1, 60_000]))[0] for _ in range(50)]
        assert replies == list(range(1, 51))
        assert _accepted(server.url) - before - 1 == 1
        await store.aclose()


def test_noscript_and_error_replies_leave_the_connection_clean() -> None:
    with private_redis() as server:
        store = RedisStore(server.url)
        key = store.key("direct", "n")
        assert store.run(INCR, [key], [1, 60_000])[0] == 1
        before = _accepted(server.url)
        with redis.Redis.from_url(server.url) as admin:
            admin.script_flush()  # the next EVALSHA gets NOSCRIPT, then EVAL on the same connection
            wrong = store.key("direct", "list")
            admin.rpush(wrong, "x")
        assert store.run(INCR, [key], [1, 60_000])[0] == 2
        with pytest.raises(StorageError) as info:
            store.run(INCR, [wrong], [1, 60_000])  # WRONGTYPE from inside the script
        assert "unavailable" not in str(info.value)
        assert store.run(ECHO, [key], ["after the error"]) == b"after the error"
        assert _accepted(server.url) - before - 1 == 1  # the admin client above; the store opened none
        store.close()


def _until_ok(store: RedisStore, script: Script, keys: list[str], args: list[object], seconds: float = 5.0) -> object:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return store.run(script, keys, args)
        except StorageError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_a_timed_out_call_never_hands_its_late_reply_to_the_next_call() -> None:
    with private_redis() as server, fault_proxy(server.port) as proxy:
        store = RedisStore(proxy.url, socket_timeout=0.2, breaker_cooldown=0.05)
        key = store.key("direct", "t")
        assert store.run(ECHO, [key], ["warm"]) == b"warm"
        proxy.stall()
        with pytest.raises(StorageError):
            store.run(ECHO, [key], ["first"])
        proxy.heal()  # no cut: the late reply to "first" is delivered to whoever reads that socket
        assert _until_ok(store, ECHO, [key], ["second"]) == b"second"
        assert store.run(ECHO, [key], ["third"]) == b"third"
        store.close()


async def test_a_cancelled_call_never_hands_its_late_reply_to_the_next_call() -> None:
    with private_redis() as server, fault_proxy(server.port) as proxy:
        store = RedisStore(proxy.url, socket_timeout=5)
        key = store.key("direct", "c")
        assert await store.arun(ECHO, [key], ["warm"]) == b"warm"
        proxy.stall()
        task = asyncio.create_task(store.arun(ECHO, [key], ["first"]))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        proxy.heal()
        assert await store.arun(ECHO, [key], ["second"]) == b"second"
        assert await store.arun(ECHO, [key], ["third"]) == b"third"
        await store.aclose()


def test_a_client_the_application_passes_keeps_its_connections() -> None:
    with private_redis() as server:
        pool = redis.BlockingConnectionPool.from_url(server.url, max_connections=1, timeout=1)
        client = redis.Redis(connection_pool=pool)
        store = RedisStore(server.url, client=client)
        key = store.key("direct", "g")
        assert store.run(INCR, [key], [1, 60_000])[0] == 1
        # The application's single pooled connection is free again: its own command does not wait for it.
        assert client.ping() is True
        assert store.run(INCR, [key], [1, 60_000])[0] == 2
        client.close()
        pool.disconnect()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Python 3.12+: fork() with threads alive
def test_a_forked_child_opens_its_own_connection() -> None:
    with private_redis() as server:
        store = RedisStore(server.url)
        key = store.key("direct", "f")
        assert store.run(INCR, [key], [1, 60_000])[0] == 1
        before = _accepted(server.url)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                value = store.run(INCR, [key], [1, 60_000])[0]
                os.write(write, str(value).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        _, status = os.waitpid(pid, 0)
        child = os.read(read, 64).decode()
        os.close(read)
        assert os.waitstatus_to_exitcode(status) == 0
        assert child == "2"
        assert store.run(INCR, [key], [1, 60_000])[0] == 3  # the parent's connection is still in step
        assert _accepted(server.url) - before - 1 == 1  # the child's own; the parent reused its connection
        store.close()


def test_threads_sharing_the_store_each_get_their_own_replies() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with private_redis() as server:
        store = RedisStore(server.url)
        key = store.key("direct", "threads")

        def worker(n: int) -> list[bool]:
            return [store.run(ECHO, [key], [f"{n}-{i}"]) == f"{n}-{i}".encode() for i in range(100)]

        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(worker, range(16)))
        assert all(all(r) for r in results)
        store.close()


async def test_concurrent_tasks_each_get_their_own_replies() -> None:
    with private_redis() as server:
        store = RedisStore(server.url)
        key = store.key("direct", "tasks")
        args = [f"task-{i}" for i in range(200)]
        replies = await asyncio.gather(*(store.arun(ECHO, [key], [a]) for a in args))
        assert replies == [a.encode() for a in args]
        # Connections come back to the free list: a second burst opens none.
        before = _accepted(server.url)
        replies = await asyncio.gather(*(store.arun(ECHO, [key], [a]) for a in args))
        assert replies == [a.encode() for a in args]
        assert _accepted(server.url) - before - 1 == 0
        await store.aclose()


async def test_a_burst_beyond_max_connections_queues_instead_of_failing() -> None:
    with private_redis() as server:
        store = RedisStore(server.url, max_connections=4, socket_timeout=2)
        key = store.key("direct", "burst")
        before = _accepted(server.url)
        args = [f"burst-{i}" for i in range(300)]
        replies = await asyncio.gather(*(store.arun(ECHO, [key], [a]) for a in args))
        assert replies == [a.encode() for a in args]
        assert _accepted(server.url) - before - 1 <= 4
        await store.aclose()


def test_threads_beyond_max_connections_queue_instead_of_failing() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with private_redis() as server:
        store = RedisStore(server.url, max_connections=3, socket_timeout=2)
        key = store.key("direct", "tburst")
        before = _accepted(server.url)

        def worker(n: int) -> list[bool]:
            return [store.run(ECHO, [key], [f"{n}-{i}"]) == f"{n}-{i}".encode() for i in range(50)]

        with ThreadPoolExecutor(max_workers=24) as pool:
            results = list(pool.map(worker, range(24)))
        assert all(all(r) for r in results)
        assert _accepted(server.url) - before - 1 <= 3
        store.close()


def test_a_saturated_pool_is_not_a_dead_server() -> None:
    # The pool's one connection is in use elsewhere: a call waits its bounded time for it, then fails as "pool
    # exhausted" without opening the circuit; once the connection is back, calls go through at once.
    with private_redis() as server:
        store = RedisStore(server.url, max_connections=1, socket_timeout=0.2)
        key = store.key("direct", "sat")
        store.client  # noqa: B018 - made on first use
        assert store._direct is not None
        pool = store._direct._pool  # the scripts' own pool; its one connection is taken by "another call"
        busy = _getter(pool)()  # redis-py before 5.3 wants a command name
        with pytest.raises(StorageError, match="pool exhausted"):
            store.run(ECHO, [key], ["queued"])
        pool.release(busy)
        assert store.run(ECHO, [key], ["after"]) == b"after"  # not "circuit open"
        store.close()


async def test_async_saturated_pool_is_not_a_dead_server() -> None:
    with private_redis() as server:
        store = RedisStore(server.url, max_connections=1, socket_timeout=0.2)
        key = store.key("direct", "asat")
        store._async_client()
        pool = store._adirect[asyncio.get_running_loop()]._pool
        busy = await _getter(pool)()
        with pytest.raises(StorageError, match="pool exhausted"):
            await store.arun(ECHO, [key], ["queued"])
        await pool.release(busy)
        assert await store.arun(ECHO, [key], ["after"]) == b"after"
        await store.aclose()


def test_ping_delete_and_scan_keep_working_when_the_scripts_hold_every_connection() -> None:
    with private_redis() as server:
        store = RedisStore(server.url, max_connections=1)
        key = store.key("direct", "admin")
        assert store.run(INCR, [key], [1, 60_000])[0] == 1  # the scripts' one connection stays on the free list
        assert store.ping() is True
        assert store.scan(store.key("direct", "*")) == [key]
        assert store.delete(key) == 1
        assert store.run(INCR, [key], [1, 60_000])[0] == 1
        store.close()


async def test_async_admin_calls_keep_working_after_a_burst() -> None:
    with private_redis() as server:
        # 150 calls on a pool of 100: 50 wait for a connection, at most socket_timeout (generous: a loaded CI host)
        store = RedisStore(server.url, socket_timeout=10)
        key = store.key("direct", "aadmin")
        replies = await asyncio.gather(*(store.arun(INCR, [key], [1, 60_000]) for _ in range(150)))
        assert sorted(r[0] for r in replies) == list(range(1, 151))
        assert await store.ascan(store.key("direct", "*")) == [key]
        assert await store.adelete(key) == 1
        await store.aclose()


def test_an_interrupt_while_waiting_for_a_connection_loses_no_connection() -> None:
    import signal
    import threading

    with private_redis() as server, fault_proxy(server.port) as proxy:
        store = RedisStore(proxy.url, max_connections=1, socket_timeout=2)
        key = store.key("direct", "ki")
        assert store.run(ECHO, [key], ["warm"]) == b"warm"
        proxy.stall()
        holder = threading.Thread(target=lambda: store.run(ECHO, [key], ["slow"]))
        holder.start()
        time.sleep(0.1)  # the holder has the only connection, waiting on the stalled proxy

        def interrupt(*_: object) -> None:
            raise KeyboardInterrupt

        old = signal.signal(signal.SIGALRM, interrupt)
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        try:
            with pytest.raises(KeyboardInterrupt):
                store.run(ECHO, [key], ["waiting"])  # waits for the connection, interrupted
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        proxy.heal()
        holder.join(5)
        assert store.run(ECHO, [key], ["after"]) == b"after"  # the holder's connection came back
        store.close()


async def test_a_task_cancelled_right_after_a_hand_off_passes_the_connection_on() -> None:
    import redis.asyncio as aredis

    from backend_guard.storage._redis_direct import AsyncDirect

    with private_redis() as server:
        pool = aredis.ConnectionPool.from_url(server.url, max_connections=1)
        direct = AsyncDirect(pool, wait=2)
        held = await _getter(pool)()
        waiting = asyncio.create_task(direct.call("PING"))
        await asyncio.sleep(0.05)
        direct._give(held)  # handed to the waiting task's future...
        waiting.cancel()  # ...which is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert await direct.call("PING") == b"PONG"
        assert await asyncio.wait_for(direct.call("PING"), 1) == b"PONG"
        await pool.disconnect()
