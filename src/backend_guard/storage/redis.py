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
one-time tokens), the store reads the server's ``maxmemory-policy`` once. Any policy but ``noeviction`` can evict
security state (``allkeys-*`` any key, ``volatile-*`` any key with a time to live, which all security keys have),
so the store refuses it with ConfigurationError (or, with ``on_evicting_policy="warn"``, logs a warning once).
A server that does not answer ``CONFIG GET`` (managed Redis, a renamed command) gets a warning once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from .._check import check_choice, check_float, check_int, check_str
from ..exceptions import ConfigurationError, StorageError
from ._redis_direct import AsyncDirect, Direct, direct_ok, is_saturated
from .base import Script, make_key

__all__ = ["RedisStore"]

_CROSS_SLOT = ("CROSSSLOT", "same key slot", "hash to the same slot", "non local key")


def _cross_slot(exc: BaseException) -> bool:
    """True for Redis Cluster's refusal of keys in several slots (server CROSSSLOT or redis-py's own check)."""
    if type(exc).__name__ == "ClusterCrossSlotError":
        return True
    text = str(exc)
    return any(marker in text for marker in _CROSS_SLOT)


log = logging.getLogger("backend_guard.storage")

OnEvictingPolicy = Literal["refuse", "warn"]

#: The one ``maxmemory-policy`` that never evicts security state.
SAFE_POLICY = "noeviction"


def reported_policies(reply: Any) -> list[str]:
    """The ``maxmemory-policy`` values in a ``CONFIG GET`` reply: one for a server, one per node for a cluster.

    Example::

        >>> reported_policies({"maxmemory-policy": "noeviction"})
        ['noeviction']
    """
    out: list[str] = []
    if isinstance(reply, (list, tuple)):  # the raw reply, name and value in turn
        reply = dict(zip(reply[::2], reply[1::2], strict=False))
    if isinstance(reply, dict):
        for name, value in reply.items():
            if isinstance(value, dict):
                out += reported_policies(value)  # a cluster client answers per node
            elif (name.decode() if isinstance(name, bytes) else str(name)) == "maxmemory-policy":
                out.append(value.decode() if isinstance(value, bytes) else str(value))
    return out


def evicting_policy_problem(policies: Sequence[str]) -> str | None:
    """Why these ``maxmemory-policy`` values are unsafe for security state, or None when they are all safe.

    ``allkeys-*`` evicts any key; ``volatile-*`` evicts keys with a time to live, and every security key has one
    (a token family lives until its absolute expiry, a lock until it ends). Only ``noeviction`` keeps them: a
    full server then refuses writes with an error, which the part handles by its ``on_storage_error``.

    Example::

        >>> evicting_policy_problem(["noeviction"]) is None
        True
    """
    bad = sorted({p for p in policies if p != SAFE_POLICY})
    if not bad:
        return None
    return (
        f"Redis maxmemory-policy is {', '.join(bad)}: the server may evict security state (token families, "
        "used one-time tokens, lockout counters and locks) and so revive a used reset link or forget a lock. "
        f"Set 'maxmemory-policy {SAFE_POLICY}' on this server (keep rate-limit counters on a server of their own "
        "if you want allkeys-lru there), or accept the risk with on_evicting_policy='warn' "
        "(store URL: ?on_evicting_policy=warn)."
    )


# redis-py's exception classes, bound once (importing them inside every call costs a dictionary walk per call);
# until redis-py is loaded they are placeholders that match nothing.
_NoScriptError: type[BaseException] = type("_Unloaded", (Exception,), {})
_FAILURES: tuple[type[BaseException], ...] = (OSError,)
_AFAILURES: tuple[type[BaseException], ...] = (OSError, asyncio.TimeoutError)


def _load_redis_errors() -> bool:
    """Bind redis-py's exception classes; False when redis-py is not installed."""
    global _NoScriptError, _FAILURES, _AFAILURES
    try:
        from redis.exceptions import NoScriptError, RedisClusterException, RedisError
    except ImportError:
        return False
    _NoScriptError = NoScriptError
    _FAILURES = (RedisError, RedisClusterException, OSError)
    _AFAILURES = (*_FAILURES, asyncio.TimeoutError)
    return True


def _transient_reply(exc: BaseException) -> bool:
    """True for an error reply that says "not now" (BUSY with another script, TRYAGAIN, CLUSTERDOWN, MASTERDOWN),
    not "never": the server will answer the same command later, so it is an outage of a moment."""
    from redis.exceptions import ClusterDownError, TryAgainError

    return isinstance(exc, (ClusterDownError, TryAgainError)) or str(exc).startswith(("BUSY ", "LOADING "))


class _Breaker:
    """Fail fast while the server is known to be down; probe again after a cooldown."""

    def __init__(self, cooldown: float, url: str) -> None:
        self.cooldown = cooldown
        self.url = url
        self._open_until = 0.0
        self._down = False
        self._lock = threading.Lock()

    def before(self) -> None:
        if self._down and time.monotonic() < self._open_until:
            raise StorageError("The backing store is unavailable (circuit open).")

    def failure(self, exc: BaseException) -> None:
        with self._lock:
            self._open_until = time.monotonic() + self.cooldown
            if not self._down:
                self._down = True
                log.warning("Redis store %s unavailable: %s: %s", self.url, type(exc).__name__, exc)

    def success(self) -> None:
        if self._down:
            with self._lock:
                if self._down:
                    self._down = False
                    log.warning("Redis store %s available again", self.url)


async def _aclose(client: Any) -> None:
    """Close an asyncio redis-py client (``aclose`` since redis-py 5.0.1; ``close`` before)."""
    close = getattr(client, "aclose", None) or client.close
    await close()


def _redact(url: str) -> str:
    """The URL without its password, for logs and reprs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{netloc}").geturl()


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
        if not _load_redis_errors():  # pragma: no cover - depends on the install
            raise ConfigurationError("The Redis store needs redis-py: pip install 'backend-guard[redis]'.")
        check_str("url", url)
        check_str("prefix", prefix, empty=True)
        check_float("socket_timeout", socket_timeout, positive=True)
        check_float("connect_timeout", connect_timeout, positive=True)
        check_float("breaker_cooldown", breaker_cooldown, min=0)
        check_int("max_connections", max_connections, min=1)
        scheme = urlsplit(url).scheme
        if scheme not in (
            "redis",
            "rediss",
            "unix",
            "redis+sentinel",
            "rediss+sentinel",
            "redis+cluster",
            "rediss+cluster",
        ):
            raise ConfigurationError(f"Unsupported Redis URL scheme {scheme!r}.")
        check_choice("on_evicting_policy", on_evicting_policy, ("refuse", "warn"))
        self.on_evicting_policy: OnEvictingPolicy = on_evicting_policy
        # The server's maxmemory-policy, checked once before the first script that is not evictable: True once
        # accepted (or warned about); ``_refused`` keeps the refusal, raised again without another round trip.
        self._retention_ok = False
        self._refused = ""
        # A burst of first calls sends one CONFIG GET, not one each: the others wait for its answer.
        self._retention_lock = threading.Lock()
        self._aretention: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
            weakref.WeakKeyDictionary()
        )
        self.max_connections = max_connections
        self.url = url
        self.prefix = prefix
        self.socket_timeout = socket_timeout
        self.connect_timeout = connect_timeout
        self._breaker = _Breaker(breaker_cooldown, _redact(url))
        self._client = client
        # How scripts are sent: a given client's own execute_command, else set when the client is made.
        self._call: Any = None if client is None else client.execute_command
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._acall: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._direct: Direct | None = None
        self._adirect: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncDirect] = weakref.WeakKeyDictionary()
        self._given_async = async_client
        self._lock = threading.Lock()
        # Sentinel clients behind the sync client and behind each loop's async client, closed with them.
        self._sentinel: Any = None
        #: True on Redis Cluster (a ``+cluster`` URL or a given cluster client): every key one script touches
        #: must then share a hash slot; the parts put a ``tag=`` in their keys for that.
        self.cluster: bool = scheme.endswith("+cluster") or any(
            cls.__name__ == "RedisCluster" for given in (client, async_client) for cls in type(given).__mro__
        )
        self._asentinels: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._aready: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock | None] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return f"RedisStore({_redact(self.url)!r}, prefix={self.prefix!r})"

    # -- clients ------------------------------------------------------------------------------------------

    def _options(self) -> dict[str, Any]:
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError

        return {
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.connect_timeout,
            "max_connections": self.max_connections,
            # One immediate retry on a broken connection (a restarted server), never on a timeout: a slow
            # server must cost one timeout, not several.
            "_retry": (NoBackoff(), 1, (RedisConnectionError,)),
        }

    def _make_client(self, asynchronous: bool) -> tuple[Any, Any]:
        opts = self._options()
        backoff, retries, errors = opts.pop("_retry")
        if asynchronous:
            import redis.asyncio as aredis
            from redis.asyncio.retry import Retry as ARetry

            opts["retry"] = ARetry(backoff, retries, errors)
            return self._build(aredis, opts, asynchronous=True)
        import redis
        from redis.retry import Retry

        opts["retry"] = Retry(backoff, retries, errors)
        return self._build(redis, opts, asynchronous=False)

    def _build(self, module: Any, opts: dict[str, Any], *, asynchronous: bool) -> tuple[Any, Any]:
        """The client for this URL, and the Sentinel object behind it (None unless a sentinel URL)."""
        parts = urlsplit(self.url)
        scheme = parts.scheme
        if scheme.endswith("+sentinel"):
            hosts = []
            for hostport in parts.netloc.rsplit("@", 1)[-1].split(","):
                host, _, port = hostport.rpartition(":")
                hosts.append((host or hostport, int(port or 26379)))
            path = [p for p in parts.path.split("/") if p]
            if not path:
                raise ConfigurationError("A sentinel URL must name the service: redis+sentinel://h:26379/name")
            service, db = path[0], int(path[1]) if len(path) > 1 else 0
            sentinel_mod = module.sentinel
            password = unquote(parts.password) if parts.password else None
            sentinel = sentinel_mod.Sentinel(
                hosts,
                socket_timeout=self.socket_timeout,
                socket_connect_timeout=self.connect_timeout,
                sentinel_kwargs={"socket_timeout": self.socket_timeout, "password": password},
                ssl=scheme.startswith("rediss"),
            )
            return sentinel.master_for(service, db=db, password=password, **opts), sentinel
        if scheme.endswith("+cluster"):
            url = parts._replace(scheme="rediss" if scheme.startswith("rediss") else "redis").geturl()
            return module.cluster.RedisCluster.from_url(url, **opts), None
        query = parse_qs(parts.query)
        if "decode_responses" in query:
            raise ConfigurationError("decode_responses is managed by backend_guard; remove it from the URL.")
        return module.Redis.from_url(self.url, **opts), None

    @property
    def client(self) -> Any:
        """The sync redis-py client (made on first use)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    client, self._sentinel = self._make_client(asynchronous=False)
                    pool = self._direct_pool(asynchronous=False)
                    self._direct = Direct(pool, self.socket_timeout) if pool is not None else None
                    self._call = self._direct.call if self._direct is not None else client.execute_command
                    self._client = client
        return self._client

    def _direct_pool(self, asynchronous: bool) -> Any:
        """A pool of the store's own for sending scripts straight (``_redis_direct``), beside the client's pool;
        None for Sentinel and Cluster URLs (and anything but a plain pool), which keep redis-py's path."""
        if urlsplit(self.url).scheme not in ("redis", "rediss", "unix"):
            return None
        opts = self._options()
        backoff, retries, errors = opts.pop("_retry")
        pool: Any
        if asynchronous:
            import redis.asyncio as aredis
            from redis.asyncio.retry import Retry as ARetry

            pool = aredis.ConnectionPool.from_url(self.url, retry=ARetry(backoff, retries, errors), **opts)
        else:
            import redis
            from redis.retry import Retry

            pool = redis.ConnectionPool.from_url(self.url, retry=Retry(backoff, retries, errors), **opts)
        return pool if direct_ok(pool) else None

    def _async_client(self) -> Any:
        """This event loop's asyncio client (redis-py's asyncio connections belong to one loop)."""
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            if self._given_async is not None:
                client = self._given_async
                self._acall[loop] = client.execute_command
            else:
                client, sentinel = self._make_client(True)
                if sentinel is not None:
                    self._asentinels[loop] = sentinel
                pool = self._direct_pool(asynchronous=True)
                if pool is not None:
                    adirect = self._adirect[loop] = AsyncDirect(pool, self.socket_timeout)
                    self._acall[loop] = adirect.call
                else:
                    self._acall[loop] = client.execute_command
            self._async[loop] = client
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
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        if _cross_slot(exc):
            # Never transient and never a reason to fail open: keys that cannot share a slot are a bug in how
            # they were built (or a part used on a cluster in a configuration it cannot support there).
            raise ConfigurationError(
                f"Redis Cluster refused {what}: the keys of one atomic operation are in different hash slots."
            ) from exc
        if is_saturated(exc):
            # The pool is full of calls in flight (a burst): this process is saturated, the server is not down,
            # so the circuit stays closed.
            return StorageError(f"Redis connection pool exhausted during {what}.", original=exc)
        if isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)):
            self._breaker.failure(exc)
            return StorageError(f"Redis unavailable during {what}.", original=exc)
        return StorageError(f"Redis error during {what}.", original=exc)

    def run(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run the script's Lua body (EVALSHA, EVAL on NOSCRIPT) in one round trip."""
        if not self._retention_ok and not script.evictable:
            self.check_retention()
        self._breaker.before()
        try:
            call = self._call
            if call is None:
                self.client  # noqa: B018 - made on first use (a cluster client connects, and may fail, then)
                call = self._call
            try:
                result = call("EVALSHA", script.sha, len(keys), *keys, *args)
            except _NoScriptError:  # a new, flushed or restarted server: EVAL loads it for the next EVALSHA
                result = call("EVAL", script.source, len(keys), *keys, *args)
        except _FAILURES as exc:
            raise self._wrap(exc, script.name) from exc
        self._breaker.success()
        return result

    async def arun(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Async twin of :meth:`run`, on this event loop's client."""
        if not self._retention_ok and not script.evictable:
            await self.acheck_retention()
        self._breaker.before()
        try:
            loop = asyncio.get_running_loop()
            call = self._acall.get(loop)
            if call is None or self.cluster:
                client = self._async_client()
                if self.cluster:
                    await self._acluster_ready(client)
                call = self._acall[loop]
            try:
                result = await call("EVALSHA", script.sha, len(keys), *keys, *args)
            except _NoScriptError:
                result = await call("EVAL", script.source, len(keys), *keys, *args)
        except _AFAILURES as exc:
            raise self._wrap(exc, script.name) from exc
        self._breaker.success()
        return result

    # -- retention ------------------------------------------------------------------------------------------

    def _retention(self, reply: Any, error: BaseException | None) -> None:
        """Decide from a ``CONFIG GET maxmemory-policy`` reply (or the server's refusal to answer it)."""
        if error is not None:
            log.warning(
                "Redis store %s: cannot read maxmemory-policy (%s: %s); make sure it is noeviction, or security "
                "state (token families, used one-time tokens, locks) may be evicted",
                self._breaker.url,
                type(error).__name__,
                error,
            )
            self._retention_ok = True
            return
        problem = evicting_policy_problem(reported_policies(reply))
        if problem is None:
            self._retention_ok = True
        elif self.on_evicting_policy == "warn":
            log.warning("Redis store %s: %s", self._breaker.url, problem)
            self._retention_ok = True
        else:
            self._refused = problem

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
        if not self._retention_ok and not self._refused:
            with self._retention_lock:
                if not self._retention_ok and not self._refused:
                    self._read_policy()
        if self._refused:
            raise ConfigurationError(self._refused)

    def _read_policy(self) -> None:
        """One ``CONFIG GET maxmemory-policy`` on the sync path, decided by :meth:`_retention`."""
        from redis.exceptions import ResponseError

        self._breaker.before()
        try:
            client = self.client
            if self._direct is not None:  # on the scripts' own connections: no other pool opened for it
                reply = self._call("CONFIG", "GET", "maxmemory-policy")
            else:
                reply = client.config_get("maxmemory-policy", **self._every_primary())
        except ResponseError as exc:  # CONFIG disabled or renamed (managed Redis), or not permitted
            if _transient_reply(exc):  # busy for a moment: checked again next time, never skipped for good
                raise self._wrap(exc, "CONFIG GET maxmemory-policy") from exc
            self._retention(None, exc)
            return
        except _FAILURES as exc:
            raise self._wrap(exc, "CONFIG GET maxmemory-policy") from exc
        self._retention(reply, None)

    async def acheck_retention(self) -> None:
        """Async twin of :meth:`check_retention`, on this event loop's client.

        Example::

            await store.acheck_retention()
        """
        if not self._retention_ok and not self._refused:
            # One check per loop, awaited by every call that arrives meanwhile (all resume together when it ends);
            # shielded, so a cancelled caller does not cancel it for the others. A failed check is retried later.
            loop = asyncio.get_running_loop()
            task = self._aretention.get(loop)
            if task is None:
                task = self._aretention[loop] = loop.create_task(self._aread_policy(loop))
            try:
                await asyncio.shield(task)
            finally:
                if task.done() and self._aretention.get(loop) is task:
                    del self._aretention[loop]
        if self._refused:
            raise ConfigurationError(self._refused)

    async def _aread_policy(self, loop: asyncio.AbstractEventLoop) -> None:
        """Async twin of :meth:`_read_policy`."""
        from redis.exceptions import ResponseError

        self._breaker.before()
        try:
            client = self._async_client()
            if self.cluster:
                await self._acluster_ready(client)
            adirect = self._adirect.get(loop)
            if adirect is not None:
                reply = await adirect.call("CONFIG", "GET", "maxmemory-policy")
            else:
                reply = await client.config_get("maxmemory-policy", **self._every_primary())
        except ResponseError as exc:
            if _transient_reply(exc):
                raise self._wrap(exc, "CONFIG GET maxmemory-policy") from exc
            self._retention(None, exc)
            return
        except _AFAILURES as exc:
            raise self._wrap(exc, "CONFIG GET maxmemory-policy") from exc
        self._retention(reply, None)

    def scan(self, match: str, count: int = 500) -> list[str]:
        """Keys matching ``match`` via SCAN (never KEYS), at most ``count``."""
        from redis.exceptions import RedisClusterException, RedisError

        self._breaker.before()
        out: list[str] = []
        try:
            # On a cluster, redis-py's scan_iter walks every primary node in turn, one cursor per node.
            for raw in self.client.scan_iter(match=match, count=500):
                out.append(raw.decode() if isinstance(raw, bytes) else raw)
                if len(out) >= count:
                    break
        except (RedisError, RedisClusterException, OSError) as exc:
            raise self._wrap(exc, "scan") from exc
        return out

    async def ascan(self, match: str, count: int = 500) -> list[str]:
        """Async twin of :meth:`scan`."""
        from redis.exceptions import RedisClusterException, RedisError

        self._breaker.before()
        out: list[str] = []
        try:
            client = self._async_client()
            if self.cluster:
                await self._acluster_ready(client)
            async for raw in client.scan_iter(match=match, count=500):
                out.append(raw.decode() if isinstance(raw, bytes) else raw)
                if len(out) >= count:
                    break
        except (RedisError, RedisClusterException, OSError, asyncio.TimeoutError) as exc:
            raise self._wrap(exc, "scan") from exc
        return out

    def delete(self, *keys: str) -> int:
        """Delete keys; how many existed."""
        from redis.exceptions import RedisClusterException, RedisError

        if not keys:
            return 0
        self._breaker.before()
        try:
            return int(self.client.delete(*keys))
        except (RedisError, RedisClusterException, OSError) as exc:
            raise self._wrap(exc, "delete") from exc

    async def adelete(self, *keys: str) -> int:
        """Async twin of :meth:`delete`."""
        from redis.exceptions import RedisClusterException, RedisError

        if not keys:
            return 0
        self._breaker.before()
        try:
            client = self._async_client()
            if self.cluster:
                await self._acluster_ready(client)
            return int(await client.delete(*keys))
        except (RedisError, RedisClusterException, OSError, asyncio.TimeoutError) as exc:
            raise self._wrap(exc, "delete") from exc

    def ping(self) -> bool:
        """True when the server answers a PING within the timeout."""
        from redis.exceptions import RedisClusterException, RedisError

        try:
            return bool(self.client.ping())
        except (RedisError, RedisClusterException, OSError):
            return False

    def close(self) -> None:
        """Close the sync client's connections."""
        if self._client is not None:
            self._client.close()
            self._client = None
            self._call = None
        direct, self._direct = self._direct, None
        if direct is not None:
            direct.close()
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
        adirect = self._adirect.pop(loop, None)
        if adirect is not None:
            await adirect.aclose()
        if client is not None and self._given_async is None:
            await _aclose(client)
        sentinel = self._asentinels.pop(loop, None)
        for sclient in getattr(sentinel, "sentinels", ()):
            await _aclose(sclient)
