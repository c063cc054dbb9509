"""The Redis store: state shared across processes and hosts, one atomic Lua script per decision.

One store object serves both call paths: a sync redis-py client for WSGI and threads, and one asyncio client
per running event loop (redis-py's asyncio connections belong to the loop that made them). Both run the same
Lua source (EVALSHA, falling back to EVAL on NOSCRIPT, so a flushed or restarted server is handled without a
restart of the app). For plain ``redis://``, ``rediss://`` and ``unix://`` URLs the scripts have a pool of their
own and skip redis-py's per-command machinery: each is sent straight on a pooled connection
(:mod:`._redis_direct`); Sentinel, Cluster and clients the application passes in use redis-py's own path.

Timeouts are short by default (250 ms a call, 1 s to connect): a security check that hangs is worse than one
that answers "store unavailable" and lets the part apply its fail-open/fail-closed setting. A circuit breaker
stops dialling a dead server on every request: after a connection failure, calls fail fast for
``breaker_cooldown`` seconds, then one call probes again. An outage is logged once when it starts and once when
it ends.

Retention: before the first script that is not :attr:`~backend_guard.storage.Script.evictable` (lockout, tokens,
one-time tokens), the store reads the server's ``maxmemory-policy`` once and refuses one that can evict security
state (see :mod:`._redis_retention`).

The parts each path shares live beside this module, so the sync and async methods here only send: how a URL
becomes clients and pools (:mod:`._redis_connect`), how a failure is read and the breaker
(:mod:`._redis_errors`), and the retention verdict (:mod:`._redis_retention`).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Sequence
from typing import Any

from .._check import check_choice, check_float, check_int, check_str
from ..exceptions import ConfigurationError, StorageError
from . import _redis_errors as errors
from ._redis_connect import Connect, aclose_client, check_options, check_scheme, is_cluster_client, redact
from ._redis_direct import AsyncDirect, Direct
from ._redis_errors import Breaker, wrap_failure
from ._redis_retention import (
    SAFE_POLICY,
    OnEvictingPolicy,
    Retention,
    evicting_policy_problem,
    reported_policies,
)
from .base import Script, make_key

__all__ = ["SAFE_POLICY", "OnEvictingPolicy", "RedisStore", "evicting_policy_problem", "reported_policies"]

_POLICY = ("CONFIG", "GET", "maxmemory-policy")


def _key_text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


class RedisStore:
    """Store on a Redis server (``redis://``, ``rediss://``, ``redis+sentinel://``, ``redis+cluster://``).

    ``on_evicting_policy``: ``"refuse"`` (default) raises ConfigurationError from the first script that is not
    evictable (lockout, tokens, one-time tokens) when the server's ``maxmemory-policy`` is not ``noeviction``;
    ``"warn"`` logs a warning once and goes on. Checked once per store (one ``CONFIG GET``), never per decision;
    :meth:`check_retention` checks at start-up.

    ``socket_timeout`` and ``connect_timeout`` bound every call (seconds). ``max_connections`` caps the pool
    of each client the store makes (one sync, one per event loop); when that many calls are in flight, the next
    waits up to ``socket_timeout`` for one to finish. ``client``/``async_client`` let you
    pass ready redis-py clients instead of a URL. Sentinel URLs name the service as the path:
    ``redis+sentinel://host1:26379,host2:26379/mymaster/0``.

    Example::

        store = RedisStore("redis://127.0.0.1:6379/0", prefix="myapp")
        limiter = bg.RateLimiter(store=store)
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "bg",
        socket_timeout: float = 0.25,
        connect_timeout: float = 1.0,
        breaker_cooldown: float = 1.0,
        max_connections: int = 100,
        client: Any = None,
        async_client: Any = None,
        on_evicting_policy: OnEvictingPolicy = "refuse",
    ) -> None:
        if not errors.load_redis_errors():  # pragma: no cover - depends on the install
            raise ConfigurationError("The Redis store needs redis-py: pip install 'backend-guard[redis]'.")
        check_str("url", url)
        check_str("prefix", prefix, empty=True)
        check_float("socket_timeout", socket_timeout, positive=True)
        check_float("connect_timeout", connect_timeout, positive=True)
        check_float("breaker_cooldown", breaker_cooldown, min=0)
        check_int("max_connections", max_connections, min=1)
        scheme = check_scheme(url)
        check_options(url)
        check_choice("on_evicting_policy", on_evicting_policy, ("refuse", "warn"))
        self.on_evicting_policy: OnEvictingPolicy = on_evicting_policy
        self.max_connections = max_connections
        self.url = url
        self.prefix = prefix
        self.socket_timeout = socket_timeout
        self.connect_timeout = connect_timeout
        self._connect = Connect(url, socket_timeout, connect_timeout, max_connections)
        self._breaker = Breaker(breaker_cooldown, redact(url))
        # The server's maxmemory-policy, checked once before the first script that is not evictable.
        self._retention = Retention(on_evicting_policy, self._breaker.url)
        #: True on Redis Cluster (a ``+cluster`` URL or a given cluster client): every key one script touches
        #: must then share a hash slot; the parts put a ``tag=`` in their keys for that.
        self.cluster: bool = scheme.endswith("+cluster") or is_cluster_client(client, async_client)
        self._init_sync(client)
        self._init_async(async_client)

    def _init_sync(self, client: Any) -> None:
        self._client = client
        # How scripts are sent: a given client's own execute_command, else set when the client is made.
        self._call: Any = None if client is None else client.execute_command
        self._direct: Direct | None = None
        self._lock = threading.Lock()
        # The Sentinel client behind the sync client, closed with it.
        self._sentinel: Any = None

    def _init_async(self, async_client: Any) -> None:
        # Per event loop: the client, how scripts are sent, the direct path, the Sentinel client behind the
        # client, and whether a cluster client is initialised (see _acluster_ready).
        self._given_async = async_client
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._acall: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._adirect: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncDirect] = weakref.WeakKeyDictionary()
        self._asentinels: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._aready: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock | None] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return f"RedisStore({redact(self.url)!r}, prefix={self.prefix!r})"

    # -- clients ------------------------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The sync redis-py client (made on first use)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._make_sync_client()
        return self._client

    def _make_sync_client(self) -> None:
        client, self._sentinel = self._connect.client(asynchronous=False)
        pool = self._connect.direct_pool(asynchronous=False)
        self._direct = Direct(pool, self.socket_timeout) if pool is not None else None
        self._call = self._direct.call if self._direct is not None else client.execute_command
        self._client = client

    def _async_client(self) -> Any:
        """This event loop's asyncio client (redis-py's asyncio connections belong to one loop)."""
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            client = self._async[loop] = self._make_async_client(loop)
        return client

    def _make_async_client(self, loop: asyncio.AbstractEventLoop) -> Any:
        """A client for this loop (the given one, else a new one) and how this loop's scripts are sent."""
        if self._given_async is not None:
            self._acall[loop] = self._given_async.execute_command
            return self._given_async
        check_options(self.url, asynchronous=True)  # an option only the sync path takes: said here, not a TypeError
        client, sentinel = self._connect.client(asynchronous=True)
        if sentinel is not None:
            self._asentinels[loop] = sentinel
        pool = self._connect.direct_pool(asynchronous=True)
        if pool is not None:
            adirect = self._adirect[loop] = AsyncDirect(pool, self.socket_timeout)
            self._acall[loop] = adirect.call
        else:
            self._acall[loop] = client.execute_command
        return client

    async def _aclient(self) -> Any:
        """This event loop's asyncio client, ready for its first command (a cluster client initialised)."""
        client = self._async_client()
        if self.cluster:
            await self._acluster_ready(client)
        return client

    async def _acluster_ready(self, client: Any) -> None:
        """Initialise this loop's async cluster client once, before its first command.

        redis-py's asyncio cluster client initialises itself lazily; a burst of concurrent first commands
        (say, an asyncio.gather of scripts) can then see connections closed under them and retry scripts that
        already ran. One explicit initialisation, under a lock, before the first command avoids that.
        """
        loop = asyncio.get_running_loop()
        lock = self._aready.get(loop, False)
        if lock is None:  # initialised
            return
        if lock is False:
            lock = self._aready[loop] = asyncio.Lock()
        assert isinstance(lock, asyncio.Lock)
        async with lock:
            if self._aready.get(loop) is not None:
                await client.initialize()
                self._aready[loop] = None

    # -- the Store protocol ---------------------------------------------------------------------------------

    def key(self, namespace: str, *parts: object, tag: object | None = None) -> str:
        """A safe key under this store's prefix (see :func:`~backend_guard.storage.base.make_key`)."""
        return make_key(self.prefix, namespace, parts, tag)

    def _wrap(self, exc: BaseException, what: str) -> StorageError:
        return wrap_failure(exc, what, self._breaker)

    def run(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run the script's Lua body (EVALSHA, EVAL on NOSCRIPT) in one round trip."""
        if not self._retention.ok and not script.evictable:
            self.check_retention()
        self._breaker.before()
        try:
            call = self._call
            if call is None:
                self.client  # noqa: B018 - made on first use (a cluster client connects, and may fail, then)
                call = self._call
            try:
                result = call("EVALSHA", script.sha, len(keys), *keys, *args)
            except errors.NoScriptError:  # a new, flushed or restarted server: EVAL loads it for the next EVALSHA
                result = call("EVAL", script.source, len(keys), *keys, *args)
        except errors.FAILURES as exc:
            raise self._wrap(exc, script.name) from exc
        self._breaker.success()
        return result

    async def arun(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Async twin of :meth:`run`, on this event loop's client."""
        if not self._retention.ok and not script.evictable:
            await self.acheck_retention()
        self._breaker.before()
        try:
            loop = asyncio.get_running_loop()
            call = self._acall.get(loop)
            if call is None or self.cluster:
                await self._aclient()
                call = self._acall[loop]
            try:
                result = await call("EVALSHA", script.sha, len(keys), *keys, *args)
            except errors.NoScriptError:
                result = await call("EVAL", script.source, len(keys), *keys, *args)
        except errors.AFAILURES as exc:
            raise self._wrap(exc, script.name) from exc
        self._breaker.success()
        return result

    # -- retention ------------------------------------------------------------------------------------------

    def _every_primary(self) -> dict[str, str]:
        """Ask every primary node of a cluster (each has its own policy), not one random node."""
        return {"target_nodes": "primaries"} if self.cluster else {}

    def check_retention(self) -> None:
        """Check once that the server cannot evict security state; raise ConfigurationError when it can.

        Runs by itself before the first script that is not evictable; call it at start-up to fail there instead.
        An unreachable or busy server (BUSY, TRYAGAIN, CLUSTERDOWN, MASTERDOWN) raises StorageError and is checked
        again next time.

        Example::

            store = RedisStore("redis://127.0.0.1:6379/0")
            store.check_retention()  # ConfigurationError under maxmemory-policy allkeys-lru
        """
        self._retention.check(self._read_policy)

    def _read_policy(self) -> None:
        """One ``CONFIG GET maxmemory-policy`` on the sync path, decided by the store's :class:`Retention`."""
        self._breaker.before()
        try:
            client = self.client
            if self._direct is not None:  # on the scripts' own connections: no other pool opened for it
                reply = self._call(*_POLICY)
            else:
                reply = client.config_get("maxmemory-policy", **self._every_primary())
        except errors.FAILURES as exc:
            self._retention.failed(exc, self._breaker)
            return
        self._retention.decide(reply)

    async def acheck_retention(self) -> None:
        """Async twin of :meth:`check_retention`, on this event loop's client.

        Example::

            await store.acheck_retention()
        """
        await self._retention.acheck(self._aread_policy)

    async def _aread_policy(self, loop: asyncio.AbstractEventLoop) -> None:
        """Async twin of :meth:`_read_policy`."""
        self._breaker.before()
        try:
            client = await self._aclient()
            adirect = self._adirect.get(loop)
            if adirect is not None:
                reply = await adirect.call(*_POLICY)
            else:
                reply = await client.config_get("maxmemory-policy", **self._every_primary())
        except errors.AFAILURES as exc:
            self._retention.failed(exc, self._breaker)
            return
        self._retention.decide(reply)

    # -- keys -----------------------------------------------------------------------------------------------

    def scan(self, match: str, count: int = 500) -> list[str]:
        """Keys matching ``match`` via SCAN (never KEYS), at most ``count``."""
        self._breaker.before()
        out: list[str] = []
        try:
            # On a cluster, redis-py's scan_iter walks every primary node in turn, one cursor per node.
            for raw in self.client.scan_iter(match=match, count=500):
                out.append(_key_text(raw))
                if len(out) >= count:
                    break
        except errors.FAILURES as exc:
            raise self._wrap(exc, "scan") from exc
        return out

    async def ascan(self, match: str, count: int = 500) -> list[str]:
        """Async twin of :meth:`scan`."""
        self._breaker.before()
        out: list[str] = []
        try:
            client = await self._aclient()
            async for raw in client.scan_iter(match=match, count=500):
                out.append(_key_text(raw))
                if len(out) >= count:
                    break
        except errors.AFAILURES as exc:
            raise self._wrap(exc, "scan") from exc
        return out

    def delete(self, *keys: str) -> int:
        """Delete keys; how many existed."""
        if not keys:
            return 0
        self._breaker.before()
        try:
            return int(self.client.delete(*keys))
        except errors.FAILURES as exc:
            raise self._wrap(exc, "delete") from exc

    async def adelete(self, *keys: str) -> int:
        """Async twin of :meth:`delete`."""
        if not keys:
            return 0
        self._breaker.before()
        try:
            client = await self._aclient()
            return int(await client.delete(*keys))
        except errors.AFAILURES as exc:
            raise self._wrap(exc, "delete") from exc

    def ping(self) -> bool:
        """True when the server answers a PING within the timeout."""
        try:
            return bool(self.client.ping())
        except errors.FAILURES:
            return False

    # -- closing --------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the sync client's connections."""
        if self._client is not None:
            self._client.close()
            self._client = None
            self._call = None
        direct, self._direct = self._direct, None
        if direct is not None:
            direct.close()
        self._close_sentinel()

    def _close_sentinel(self) -> None:
        sentinel, self._sentinel = self._sentinel, None
        for client in getattr(sentinel, "sentinels", ()):
            client.close()

    async def aclose(self) -> None:
        """Close this event loop's async client."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover
            return
        client = self._async.pop(loop, None)
        self._acall.pop(loop, None)
        self._aready.pop(loop, None)
        await self._aclose_direct(loop)
        if client is not None and self._given_async is None:
            await aclose_client(client)
        await self._aclose_sentinel(loop)

    async def _aclose_direct(self, loop: asyncio.AbstractEventLoop) -> None:
        adirect = self._adirect.pop(loop, None)
        if adirect is not None:
            await adirect.aclose()

    async def _aclose_sentinel(self, loop: asyncio.AbstractEventLoop) -> None:
        sentinel = self._asentinels.pop(loop, None)
        for sclient in getattr(sentinel, "sentinels", ()):
            await aclose_client(sclient)
