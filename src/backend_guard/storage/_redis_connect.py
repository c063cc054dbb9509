"""How the Redis store connects: its URL read (schemes, Sentinel hosts and service), its clients and pools made.

Every function here serves both call paths: ``asynchronous=True`` picks redis-py's asyncio module and retry
class, otherwise the sync ones; the URL is read the same way for both. The options are the store's: short
timeouts, a bounded pool, and one immediate retry on a broken connection (a restarted server), never on a
timeout, so a slow server costs one timeout, not several.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from ..exceptions import ConfigurationError
from ._redis_direct import direct_ok

__all__ = [
    "SCHEMES",
    "Connect",
    "aclose_client",
    "check_options",
    "check_scheme",
    "is_cluster_client",
    "parse_url",
    "redact",
]

#: The URL schemes the Redis store accepts.
SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster")
#: The schemes whose scripts get a pool of their own, sent straight (Sentinel and Cluster keep redis-py's path).
_DIRECT_SCHEMES = ("redis", "rediss", "unix")
_SENTINEL_PORT = 26379


def parse_url(url: str) -> SplitResult:
    """``urlsplit(url)`` with its port read; ConfigurationError when the URL does not parse, with nothing of it in the
    message: a password holding ``/``, ``#``, ``?`` or ``@`` unencoded ends the host part early and its rest is read
    as the port (urllib's error, and redis-py's on every later call, quote the password's start).

    Example::

        parse_url("redis://:p%2Fw@db:6379/0").port   # 6379
    """
    try:
        parts = urlsplit(url)
        if not parts.scheme.endswith("+sentinel"):  # a Sentinel URL lists several hosts: read by _sentinel_hosts
            parts.port  # noqa: B018  (raises ValueError when what follows the last ':' is no port number)
    except ValueError:
        raise ConfigurationError(
            "The store URL does not parse (a port that is no number, an unclosed '['): check it, and percent-encode"
            " the special characters of its password (urllib.parse.quote(password, safe=''))."
        ) from None
    database = unquote(parts.path).strip("/")  # as redis-py reads it, which takes ?db= first
    numbered = not database or (database.isascii() and database.isdigit()) or "db" in parse_qs(parts.query)
    if parts.scheme.lower() in ("redis", "rediss") and not numbered:
        # redis-py would use database 0 without a word: the operator's tools then read an empty database
        raise ConfigurationError("The Redis URL's path must be a database number (redis://host:6379/0).")
    return parts


def check_scheme(url: str) -> str:
    """The URL's scheme; ConfigurationError unless the Redis store serves it and the URL parses (:func:`parse_url`).

    Example::

        check_scheme("redis+sentinel://h1:26379/mymaster")   # 'redis+sentinel'
    """
    scheme = parse_url(url).scheme
    if scheme not in SCHEMES:
        raise ConfigurationError(f"Unsupported Redis URL scheme {scheme!r}.")
    return scheme


def check_options(url: str, *, asynchronous: bool = False) -> None:
    """ConfigurationError for a URL option that one call path of redis-py (sync, or asyncio: they take different
    options) refuses or does not know (``?db=abc``, ``?bogus=1``), on a ``redis://``, ``rediss://``, ``unix://`` or
    Sentinel URL: asked when the store is made (sync) and when its first async client is, else it is a TypeError or
    ValueError at the first command. Cluster URLs are read by redis-py's cluster client, which checks its own.

    Example::

        check_options("redis://127.0.0.1:6379/0?health_check_interval=30")   # nothing: redis-py takes it
    """
    import redis

    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DIRECT_SCHEMES and not scheme.endswith("+sentinel"):
        return
    module, _ = _modules(asynchronous)
    master = _sentinel_options(parts)[0] if scheme.endswith("+sentinel") else {}  # its own ConfigurationError
    try:
        if scheme in _DIRECT_SCHEMES:
            module.ConnectionPool.from_url(url).make_connection()  # the connection object only: no socket opened
        else:
            kind = module.SSLConnection if scheme.startswith("rediss") else module.Connection
            module.ConnectionPool(connection_class=kind, **master).make_connection()
    except (TypeError, ValueError, redis.RedisError) as exc:
        raise ConfigurationError(
            f"The Redis URL has an option redis-py does not take: {_valueless(exc, parts)}"
        ) from None


def _valueless(exc: BaseException, parts: SplitResult) -> str:
    """redis-py's message about a URL option (it names the option), each of the URL's option values in it hidden:
    some messages quote the value (``Invalid SSL Certificate Requirements Flag: ...``), which may be a secret."""
    text = str(exc)
    values = {form for given in parse_qs(parts.query).values() for value in given for form in (value, unquote(value))}
    for value in sorted(values, key=len, reverse=True):  # the longest first: a short one inside it hides no part
        if len(value) > 2:  # a shorter one is no secret, and hiding it would blot out the option's name
            text = text.replace(value, "***")
    return text


def redact(url: str) -> str:
    """The URL without its passwords, for logs and reprs: the one before ``@`` and any query option naming one
    (``?password=``, which redis-py reads as the password too, ``sentinel_password=``...).

    Example::

        redact("redis://app:s3cret@db:6379/0")          # 'redis://app:***@db:6379/0'
        redact("redis://db:6379/0?password=s3cret")     # 'redis://db:6379/0?password=***'
    """
    parts = original = urlsplit(url)
    if parts.password is not None:
        user = parts.username or ""
        parts = parts._replace(netloc=f"{user}:***@{parts.netloc.rsplit('@', 1)[1]}")
    if "password" in unquote(parts.query).lower():
        parts = parts._replace(query="&".join(map(_redact_option, parts.query.split("&"))))
    return url if parts is original else parts.geturl()  # a URL with nothing to hide is shown as written


def _redact_option(option: str) -> str:
    """One ``name=value`` of a URL's query, its value hidden when its name says it is a password."""
    name, equals, _ = option.partition("=")
    return f"{name}=***" if equals and "password" in unquote(name).lower() else option


def is_cluster_client(*clients: Any) -> bool:
    """True when one of the given redis-py clients is a cluster client (sync or asyncio).

    Example::

        is_cluster_client(redis.cluster.RedisCluster(...), None)   # True
    """
    return any(cls.__name__ == "RedisCluster" for given in clients for cls in type(given).__mro__)


async def aclose_client(client: Any) -> None:
    """Close an asyncio redis-py client (``aclose`` since redis-py 5.0.1; ``close`` before).

    Example::

        await aclose_client(client)
    """
    close = getattr(client, "aclose", None) or client.close
    await close()


def _sentinel_hosts(parts: SplitResult) -> list[tuple[str, int]]:
    """The (host, port) of each Sentinel in ``h1:26379,h2:26379`` (a port defaults to 26379)."""
    hosts = []
    for hostport in parts.netloc.rsplit("@", 1)[-1].split(","):
        host, _, port = hostport.rpartition(":")
        hosts.append((host or hostport, int(port or _SENTINEL_PORT)))
    return hosts


def _sentinel_service(parts: SplitResult) -> tuple[str, int]:
    """The service name and database number from a Sentinel URL's path (``/mymaster/0``)."""
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ConfigurationError("A sentinel URL must name the service: redis+sentinel://h:26379/name")
    return path[0], int(path[1]) if len(path) > 1 else 0


def _refuse_decoding(parts: SplitResult) -> None:
    """The store reads its replies as bytes: a URL may not ask redis-py to decode them."""
    if "decode_responses" in parse_qs(parts.query):
        raise ConfigurationError("decode_responses is managed by backend_guard; remove it from the URL.")


def _sentinel_options(parts: SplitResult) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Sentinel URL's query options, read as redis-py reads a plain URL's: (the master's connections', the
    sentinels' own). ``sentinel_password`` and ``sentinel_username`` are the sentinels' credentials; every other
    option (``password``, ``db``, ``ssl_cert_reqs``, ``client_name``...) is the master's, as in a ``redis://`` URL.
    """
    from redis.connection import parse_url as redis_options

    _refuse_decoding(parts)
    try:
        master: dict[str, Any] = redis_options(f"redis://sentinel?{parts.query}")  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise ConfigurationError(
            f"The Redis URL has an option redis-py does not take: {_valueless(exc, parts)}"
        ) from None
    del master["host"]  # the placeholder's: a Sentinel URL's hosts are the sentinels
    own = {name: master.pop(f"sentinel_{name}") for name in ("password", "username") if f"sentinel_{name}" in master}
    return master, own


def _modules(asynchronous: bool) -> tuple[Any, Any]:
    """redis-py's module and Retry class for the call path (asyncio or sync)."""
    if asynchronous:
        import redis.asyncio as aredis
        from redis.asyncio.retry import Retry as ARetry

        return aredis, ARetry
    import redis
    from redis.retry import Retry

    return redis, Retry


@dataclass(frozen=True)
class Connect:
    """The store's URL and connection options, making its clients and pools for either call path.

    Example::

        connect = Connect("redis://127.0.0.1:6379/0", socket_timeout=0.25, connect_timeout=1.0, max_connections=100)
        client, sentinel = connect.client(asynchronous=False)
    """

    url: str
    socket_timeout: float
    connect_timeout: float
    max_connections: int

    def _options(self, retry_class: Any) -> dict[str, Any]:
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError

        return {
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.connect_timeout,
            "max_connections": self.max_connections,
            # One immediate retry on a broken connection (a restarted server), never on a timeout: a slow
            # server must cost one timeout, not several.
            "retry": retry_class(NoBackoff(), 1, (RedisConnectionError,)),
        }

    def client(self, *, asynchronous: bool) -> tuple[Any, Any]:
        """The client for this URL, and the Sentinel object behind it (None unless a sentinel URL)."""
        module, retry_class = _modules(asynchronous)
        opts = self._options(retry_class)
        parts = urlsplit(self.url)
        if parts.scheme.endswith("+sentinel"):
            return self._sentinel_client(module, parts, opts)
        if parts.scheme.endswith("+cluster"):
            url = parts._replace(scheme="rediss" if parts.scheme.startswith("rediss") else "redis").geturl()
            return module.cluster.RedisCluster.from_url(url, **opts), None
        return self._plain_client(module, parts, opts), None

    def _plain_client(self, module: Any, parts: SplitResult, opts: dict[str, Any]) -> Any:
        """The client of a ``redis://``, ``rediss://`` or ``unix://`` URL."""
        _refuse_decoding(parts)
        return module.Redis.from_url(self.url, **opts)

    def _sentinel_client(self, module: Any, parts: SplitResult, opts: dict[str, Any]) -> tuple[Any, Any]:
        """The master's client through the Sentinels a ``+sentinel`` URL names, and the Sentinel object."""
        hosts = _sentinel_hosts(parts)
        service, db = _sentinel_service(parts)
        # The user before "@" is the master's (sentinels mostly have no ACL users: sentinel_username names theirs),
        # the password the master's and the sentinels' (sentinel_password gives theirs apart).
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        master, own = _sentinel_options(parts)
        sentinel = module.sentinel.Sentinel(
            hosts,
            socket_timeout=self.socket_timeout,
            socket_connect_timeout=self.connect_timeout,
            sentinel_kwargs={"socket_timeout": self.socket_timeout, "password": password, **own},
            ssl=parts.scheme.startswith("rediss"),
        )
        # The query's options win, as redis-py lets a plain URL's query win over its path and password.
        login = {"db": db, "username": username, "password": password}
        return sentinel.master_for(service, **{**login, **opts, **master}), sentinel

    def direct_pool(self, *, asynchronous: bool) -> Any:
        """A pool of the store's own for sending scripts straight (``_redis_direct``), beside the client's pool;
        None for Sentinel and Cluster URLs (and anything but a plain pool), which keep redis-py's path."""
        if urlsplit(self.url).scheme not in _DIRECT_SCHEMES:
            return None
        module, retry_class = _modules(asynchronous)
        pool = module.ConnectionPool.from_url(self.url, **self._options(retry_class))
        return pool if direct_ok(pool) else None
