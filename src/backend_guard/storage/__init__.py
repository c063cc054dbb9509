"""Storage backends behind one small protocol: ``memory://`` (the default) and Redis.

Choose a backend with a URL, or pass a ready store object::

    open_store("memory://")                         # embedded, per process
    open_store("memory://?max_keys=50000&max_state_keys=200000")
    open_store("redis://127.0.0.1:6379/0")          # shared across processes and hosts
    open_store("redis+sentinel://h1:26379,h2:26379/mymaster")
    open_store("redis+cluster://node1:6379")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import SplitResult, parse_qs, urlencode

from .._check import check_str
from ..exceptions import ConfigurationError
from ._redis_connect import parse_url
from .base import Script, Store, escape_key_part, make_key
from .memory import MemoryStore, MemoryView
from .redis import RedisStore

__all__ = [
    "MemoryStore",
    "MemoryView",
    "RedisStore",
    "Script",
    "Store",
    "StoreLike",
    "escape_key_part",
    "make_key",
    "open_store",
]

StoreLike = str | Store | None

_shared: dict[tuple[str, str], Store] = {}


def open_store(store: StoreLike = None, *, prefix: str = "bg") -> Store:
    """Return a store for a URL string, pass a store object through, or make the memory default for None.

    Query options: ``prefix`` (key prefix); ``max_keys`` (memory: rate-limit counters, least recently used evicted)
    and ``max_state_keys`` (memory: security state, never evicted; default ``max_keys``); ``socket_timeout`` and
    ``connect_timeout`` (Redis, seconds), ``max_connections`` (Redis, per pool), ``on_evicting_policy`` (Redis:
    ``refuse``, the default, or ``warn`` when the server's ``maxmemory-policy`` can evict security state). A URL
    names a *new* store; share one object between parts when they should share one memory store.

    Example::

        store = open_store("redis://127.0.0.1:6379/0?prefix=myapp")
        lock = bg.Lockout(store=store)
        limiter = bg.RateLimiter(store=store)
    """
    check_str("prefix", prefix, empty=True)
    if store is None:
        return MemoryStore(prefix=prefix)
    if not isinstance(store, str):
        return _given_store(store)
    return _open_url(store, prefix)


def _given_store(store: object) -> Store:
    """A store object passed in, checked."""
    if not isinstance(store, Store):
        raise ConfigurationError(f"store must be a URL or a storage object, not {type(store).__name__}.")
    return store


def _open_url(url: str, prefix: str) -> Store:
    """The store a URL names (its ``prefix`` option overrides the argument)."""
    parts = parse_url(url)  # a port that is no number fails here, not as a ValueError at the first command
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    prefix = query.pop("prefix", prefix)
    opener = _opener(parts.scheme)
    try:
        return opener(parts, query, prefix)
    except ValueError as exc:
        if isinstance(exc, ConfigurationError):
            raise
        raise ConfigurationError(f"Invalid store URL option: {exc}") from exc


def _opener(scheme: str) -> Callable[[SplitResult, dict[str, str], str], Store]:
    """What makes the store of a URL scheme."""
    if scheme == "memory":
        return _memory_store
    if scheme.startswith(("redis", "rediss", "unix")):
        return _redis_store
    raise ConfigurationError(
        f"Unknown store URL scheme {scheme!r}: use memory://, redis://, rediss://, redis+sentinel:// or redis+cluster://."
    )


def _memory_store(parts: SplitResult, query: dict[str, str], prefix: str) -> Store:
    """A ``memory://`` URL's store (``max_keys``, ``max_state_keys``)."""
    max_keys = int(query.pop("max_keys", "100000"))
    max_state_keys = int(query.pop("max_state_keys", str(max_keys)))
    if query:
        raise ConfigurationError(f"Unknown memory:// options: {', '.join(sorted(query))}.")
    return MemoryStore(prefix=prefix, max_keys=max_keys, max_state_keys=max_state_keys)


def _redis_options(query: dict[str, str]) -> dict[str, Any]:
    """The store's own options, taken out of a Redis URL's query."""
    options: dict[str, Any] = {
        "socket_timeout": float(query.pop("socket_timeout", "0.25")),
        "connect_timeout": float(query.pop("connect_timeout", "1.0")),
        "max_connections": int(query.pop("max_connections", "100")),
        "on_evicting_policy": query.pop("on_evicting_policy", "refuse"),
    }
    if options["on_evicting_policy"] not in ("refuse", "warn"):
        raise ConfigurationError('on_evicting_policy must be "refuse" or "warn".')
    return options


def _redis_store(parts: SplitResult, query: dict[str, str], prefix: str) -> Store:
    """A Redis URL's store; the options it does not know stay in the URL, for redis-py."""
    options = _redis_options(query)
    rest = urlencode(query)  # encoded again: a password's "&", "=", "+" or "#" reaches redis-py as written
    # The URL as written up to its query (urlunsplit would make unix:///run/redis.sock unix:/run/redis.sock).
    base = parts._replace(query="", fragment="").geturl() if parts.netloc else _before_query(parts)
    return RedisStore(base + ("?" + rest if rest else ""), prefix=prefix, **options)


def _before_query(parts: SplitResult) -> str:
    """A URL with no host (``unix:///run/redis.sock``) up to its query, its ``//`` kept."""
    return f"{parts.scheme}://{parts.path}"
