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

Only pools the store made itself use this path (never a client the application passed in: its pool may be
shared and bounded, and the free list would hold its connections), and only plain ones: Sentinel pools must
re-resolve the master, cluster clients route by slot, and client-side caching needs redis-py's own path.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any

__all__ = ["AsyncDirect", "Direct", "direct_ok"]

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

    return hiredis.pack_command


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

    if type(pool) not in (
        redis.ConnectionPool,
        redis.BlockingConnectionPool,
        redis.asyncio.ConnectionPool,
        redis.asyncio.BlockingConnectionPool,
    ):
        return False
    return getattr(pool, "cache", None) is None


class Direct:
    """Send one packed command on a free connection of a sync redis-py pool (see the module docstring)."""

    def __init__(self, pool: Any) -> None:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import ResponseError

        self._pool = pool
        self._free: deque[Any] = deque()
        self._forks = _forks
        self._broken = RedisConnectionError
        self._reply_error = ResponseError
        #: redis-py 6+ marks connections to move during server maintenance; older versions have no such flag.
        self._moved = hasattr(pool.connection_class, "should_reconnect")
        self._packer = _packer()

    def call(self, *args: Any) -> Any:
        """The reply to one command (a Redis error reply is raised as redis-py's ``ResponseError``)."""
        if self._forks != _forks:  # pragma: no cover - a forked child: the parent's connections are not ours
            self._free = deque()
            self._forks = _forks
        free = self._free
        try:
            conn = free.pop()
        except IndexError:
            conn = self._pool.get_connection()
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
            free.append(conn)  # the error reply was read in full: the connection is clean
            raise
        except BaseException:
            self._pool.release(conn)  # already disconnected by redis-py; the pool reconnects it when needed
            raise
        if self._moved and conn.should_reconnect():
            self._pool.release(conn)
        else:
            free.append(conn)
        return reply


class AsyncDirect:
    """Async twin of :class:`Direct` on an asyncio redis-py pool (one per event loop, like the pool)."""

    def __init__(self, pool: Any) -> None:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import ResponseError

        self._pool = pool
        self._free: deque[Any] = deque()
        self._broken = RedisConnectionError
        self._reply_error = ResponseError
        self._moved = hasattr(pool.connection_class, "should_reconnect")
        self._packer = _packer()
        self._forks = _forks

    async def call(self, *args: Any) -> Any:
        """The reply to one command (a Redis error reply is raised as redis-py's ``ResponseError``)."""
        if self._forks != _forks:  # pragma: no cover - a forked child: the parent's connections are not ours
            self._free = deque()
            self._forks = _forks
        free = self._free
        try:
            conn = free.pop()
        except IndexError:
            conn = await self._pool.get_connection()
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
            free.append(conn)
            raise
        except BaseException:
            # redis-py disconnected it (a cancellation mid-reply included); hand it back to the pool.
            await conn.disconnect(nowait=True)
            await self._pool.release(conn)
            raise
        if self._moved and conn.should_reconnect():
            await self._pool.release(conn)
        else:
            free.append(conn)
        return reply
