"""One command on a pooled redis-py connection, without redis-py's per-command machinery.

redis-py's ``execute_command`` is general: per call it takes a connection from the pool under a lock, polls the
socket to check the connection is clean (a syscall), wraps the call in its retry object, records observability
metrics and dispatches events, then returns the connection under the lock again. On a loopback server that work
costs about as much as the round trip itself. A security decision is one known command (EVALSHA) on a private
pool, so the store keeps its own free list of connections borrowed once from that pool and sends the packed
command straight on one of them.

What redis-py's path guarantees is kept:

- A connection goes back to the free list only after a full request and reply (a Redis error reply, such as
  NOSCRIPT, leaves the connection clean). On any other exception (a timeout, a broken socket, a cancellation)
  redis-py's ``send_packed_command``/``read_response`` have already disconnected it; it goes back to the pool.
- The store's retry policy: one immediate retry on a broken connection (``ConnectionError``, a restarted server),
  never on a timeout.
- Fork safety: a child process never uses a connection its parent opened (the free lists are emptied in the
  child; redis-py's pool resets itself there too).
- ``close`` on the client disconnects every connection of the pool, borrowed ones included.
- Maintenance notifications (redis-py 6+): a connection the server asked to move (``should_reconnect``) goes
  back to the pool, which reconnects it, instead of to the free list. The pool's handlers still reach borrowed
  connections (the pool counts them as in use).

The store gives this path a pool of its own, made from its URL beside its redis-py client (whose pool then serves
only PING, DEL and SCAN, never starved by the free list). Only plain ``redis://``, ``rediss://`` and ``unix://``
URLs get one: Sentinel pools must re-resolve the master, cluster clients route by slot, client-side caching needs
redis-py's own path, and a client the application passes in keeps redis-py's path (its pool may be shared).

When the pool is at ``max_connections``, a call waits (at most ``wait`` seconds) for another call to give a
connection back instead of failing at once: a burst of concurrent decisions queues, it never reads as a dead
server.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import threading
import time
from collections import deque
from typing import Any

__all__ = ["AsyncDirect", "Direct", "direct_ok", "is_saturated"]

#: How many forks this process has seen in a child; a free list made before the last fork is not used.
_forks = 0


def _after_fork_in_child() -> None:  # pragma: no cover - runs in a forked child
    global _forks
    _forks += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _packer() -> Any:
    """hiredis's ``pack_command`` when redis-py uses hiredis (the same bytes as redis-py's own packing of str,
    bytes, int and float arguments, without its per-argument Python loop), else None."""
    try:
        from redis.utils import HIREDIS_AVAILABLE
    except ImportError:  # pragma: no cover - very old redis-py
        return None
    if not HIREDIS_AVAILABLE:  # pragma: no cover - depends on the install
        return None
    import hiredis

    return getattr(hiredis, "pack_command", None)  # hiredis < 2.2.3 has none: redis-py packs instead


def _pack(packer: Any, conn: Any, args: tuple[Any, ...]) -> Any:
    if packer is not None:
        try:
            return (packer(args),)
        except TypeError:  # an argument hiredis cannot pack: redis-py's packer raises its own DataError
            pass
    return conn.pack_command(*args)


def direct_ok(pool: Any) -> bool:
    """True when ``pool`` is a plain redis-py connection pool (sync or asyncio) this path can serve."""
    import redis
    import redis.asyncio

    if type(pool) not in (redis.ConnectionPool, redis.asyncio.ConnectionPool):
        return False
    return getattr(pool, "cache", None) is None


def _required_positional(param: inspect.Parameter) -> bool:
    return param.default is inspect.Parameter.empty and param.kind in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    )


def _getter(pool: Any) -> Any:
    """``pool.get_connection`` as a call without arguments (redis-py before 5.3 requires a command name)."""
    try:
        params = list(inspect.signature(pool.get_connection).parameters.values())
    except (TypeError, ValueError):  # pragma: no cover
        params = []
    if params and _required_positional(params[0]):  # pragma: no cover - redis-py < 5.3
        return functools.partial(pool.get_connection, "EVALSHA")
    return pool.get_connection


def is_saturated(exc: BaseException) -> bool:
    """True for a pool at ``max_connections`` (``MaxConnectionsError`` in newer redis-py; before, a plain
    ``ConnectionError("Too many connections")``)."""
    return type(exc).__name__ == "MaxConnectionsError" or str(exc).startswith("Too many connections")


class _FreeList:
    """What both call paths share: the pool, the free list of borrowed connections and how a command is packed."""

    def __init__(self, pool: Any, wait: float) -> None:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import ResponseError

        self._pool = pool
        self._get = _getter(pool)
        self._wait = wait
        self._free: deque[Any] = deque()
        self._forks = _forks
        self._broken = RedisConnectionError
        self._reply_error = ResponseError
        self._packer = _packer()
        #: redis-py 6+ marks connections to move during server maintenance; older versions have no such flag.
        self._moved = hasattr(pool.connection_class, "should_reconnect")

    def _pop_free(self) -> Any:
        """A connection from the free list, or None when it is empty."""
        try:
            return self._free.pop()
        except IndexError:
            return None

    def _too_many(self) -> BaseException:
        return self._broken("Too many connections: no connection came free in time")


class Direct(_FreeList):
    """Send one packed command on a free connection of a sync redis-py pool (see the module docstring)."""

    def __init__(self, pool: Any, wait: float = 0.25) -> None:
        super().__init__(pool, wait)
        # Threads waiting for a connection while the pool is at max_connections: [event, connection or None].
        self._waiters: deque[list[Any]] = deque()
        self._lock = threading.Lock()

    def close(self) -> None:
        """Disconnect every connection of the pool (those on the free list included)."""
        self._free.clear()
        self._pool.disconnect()

    def _after_fork(self) -> None:  # pragma: no cover - a forked child: the parent's connections are not ours
        self._free = deque()
        self._waiters = deque()
        self._lock = threading.Lock()
        self._forks = _forks

    def call(self, *args: Any) -> Any:
        """The reply to one command (a Redis error reply is raised as redis-py's ``ResponseError``)."""
        if self._forks != _forks:  # pragma: no cover
            self._after_fork()
        try:
            conn = self._free.pop()
        except IndexError:
            conn = self._take()
        try:
            packed = _pack(self._packer, conn, args)
            try:
                conn.send_packed_command(packed)
                reply = conn.read_response()
            except self._broken:
                # A restarted server or a connection closed while idle: one immediate retry on a new socket.
                conn.disconnect()
                conn.send_packed_command(packed)
                reply = conn.read_response()
        except self._reply_error:
            self._give(conn)  # the error reply was read in full: the connection is clean
            raise
        except BaseException:
            # Anything else may leave a reply unread (an interrupt between send and read): never reuse the socket.
            self._discard(conn)
            raise
        if self._moved and conn.should_reconnect():
            self._pool.release(conn)
            self._give(None)
        else:
            self._give(conn)
        return reply

    def _discard(self, conn: Any) -> None:
        """Disconnect a connection and hand it back to the pool (a waiter is told one went back)."""
        try:
            conn.disconnect()
            self._pool.release(conn)
        finally:
            self._give(None)

    def _give(self, conn: Any) -> None:
        """A connection is free (None: one went back to the pool): to the first waiter, else to the free list."""
        if self._waiters:
            with self._lock:
                if self._waiters:
                    waiter = self._waiters.popleft()
                    waiter[1] = conn
                    waiter[0].set()
                    return
        if conn is not None:
            self._free.append(conn)

    def _from_pool(self) -> Any:
        """A connection from the pool, or None while it is at max_connections."""
        try:
            return self._get()
        except self._broken as exc:
            if is_saturated(exc):
                return None
            raise

    def _unregister(self, waiter: list[Any]) -> bool:
        """Stop waiting; True when a connection (or a None: one went back to the pool) was handed over."""
        with self._lock:
            if waiter[0].is_set():
                return True
            self._waiters.remove(waiter)
            return False

    def _take(self) -> Any:
        """A connection from the pool; while it is at max_connections, one given back by another call."""
        conn = self._from_pool()
        if conn is not None:
            return conn
        deadline = time.monotonic() + self._wait
        while True:
            conn = self._one_turn(deadline)
            if conn is not None:
                return conn
            if time.monotonic() >= deadline:
                raise self._too_many()

    def _one_turn(self, deadline: float) -> Any:
        """One short wait in the queue: the connection found or handed over, else None."""
        waiter: list[Any] = [threading.Event(), None]
        with self._lock:
            conn = self._pop_free()
            if conn is not None:
                return conn
            self._waiters.append(waiter)
        self._sleep(waiter, deadline)
        conn = self._handed(waiter)
        return conn if conn is not None else self._pop_free()

    def _sleep(self, waiter: list[Any], deadline: float) -> None:
        try:
            # Short waits: a connection given back between our look at the free list and our registering
            # is found on the next turn, not after the whole wait.
            waiter[0].wait(min(0.01, max(0.0, deadline - time.monotonic())))
        except BaseException:  # an interrupt while waiting: pass on what we were handed, never lose it
            if self._unregister(waiter):
                self._give(waiter[1])
            raise

    def _handed(self, waiter: list[Any]) -> Any:
        """The connection handed to ``waiter``; when the hand-over said one went back to the pool, one from it."""
        if not self._unregister(waiter):
            return None
        return waiter[1] if waiter[1] is not None else self._from_pool()


class AsyncDirect(_FreeList):
    """Async twin of :class:`Direct` on an asyncio redis-py pool (one per event loop, like the pool)."""

    def __init__(self, pool: Any, wait: float = 0.25) -> None:
        super().__init__(pool, wait)
        #: Tasks waiting for a connection while the pool is at max_connections (one loop: no lock needed).
        self._waiters: deque[asyncio.Future[Any]] = deque()

    async def aclose(self) -> None:
        """Disconnect every connection of the pool (those on the free list included)."""
        self._free.clear()
        await self._pool.disconnect()

    def _after_fork(self) -> None:  # pragma: no cover - a forked child: the parent's connections are not ours
        self._free = deque()
        self._waiters = deque()
        self._forks = _forks

    async def call(self, *args: Any) -> Any:
        """The reply to one command (a Redis error reply is raised as redis-py's ``ResponseError``)."""
        if self._forks != _forks:  # pragma: no cover
            self._after_fork()
        try:
            conn = self._free.pop()
        except IndexError:
            conn = await self._take()
        try:
            packed = _pack(self._packer, conn, args)
            try:
                await conn.send_packed_command(packed)
                reply = await conn.read_response()
            except self._broken:
                await conn.disconnect()
                await conn.send_packed_command(packed)
                reply = await conn.read_response()
        except self._reply_error:
            self._give(conn)
            raise
        except BaseException:
            # redis-py disconnected it (a cancellation mid-reply included); hand it back to the pool, even when
            # a second cancellation lands while we do.
            await self._release(conn, disconnect=True)
            raise
        if self._moved and conn.should_reconnect():
            await self._release(conn, disconnect=False)
        else:
            self._give(conn)
        return reply

    async def _release(self, conn: Any, *, disconnect: bool) -> None:
        """Hand a connection back to the pool (disconnected first when it may hold an unread reply)."""
        try:
            if disconnect:
                await conn.disconnect(nowait=True)
            await self._pool.release(conn)
        finally:
            self._give(None)

    def _give(self, conn: Any) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        if conn is not None:
            self._free.append(conn)

    async def _from_pool(self) -> Any:
        try:
            return await self._get()
        except self._broken as exc:
            if is_saturated(exc):
                return None
            raise

    async def _take(self) -> Any:
        conn = await self._from_pool()
        if conn is not None:
            return conn
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        while True:
            conn = await self._one_turn(loop, deadline)
            if conn is not None:
                return conn

    async def _one_turn(self, loop: asyncio.AbstractEventLoop, deadline: float) -> Any:
        """One wait in the queue: the connection found or handed over, else None (raises past the deadline)."""
        conn = self._pop_free()
        if conn is not None:
            return conn
        left = deadline - loop.time()
        if left <= 0:
            raise self._too_many()
        conn = await self._wait_turn(loop, left)
        if conn is None and loop.time() < deadline:  # woken by a connection that went back to the pool
            conn = await self._from_pool()
        return conn

    async def _wait_turn(self, loop: asyncio.AbstractEventLoop, left: float) -> Any:
        """Wait up to ``left`` seconds for a connection handed over (None: one went back to the pool, or none)."""
        waiter: asyncio.Future[Any] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(left, _expire, waiter)
        try:
            return await waiter
        except BaseException:
            # Cancelled after a connection was handed over: never lose it.
            if _handed_over(waiter):
                self._give(waiter.result())
            raise
        finally:
            timer.cancel()


def _handed_over(waiter: asyncio.Future[Any]) -> bool:
    return waiter.done() and not waiter.cancelled() and waiter.exception() is None


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_result(None)  # the waiting call looks at the free list once more, then gives up
