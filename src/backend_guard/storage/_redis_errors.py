"""How the Redis store reads a failure: which errors are failures, which are a moment's outage, and the breaker.

One reading serves both call paths (sync and asyncio): :func:`wrap_failure` turns a redis-py or socket error into
the :class:`~backend_guard.exceptions.StorageError` a part handles by its ``on_storage_error`` (or, for a Redis
Cluster cross-slot refusal, a :class:`~backend_guard.exceptions.ConfigurationError`: a bug, never a reason to fail
open), and :class:`Breaker` stops dialling a dead server on every request.

redis-py is optional: its exception classes are bound by :func:`load_redis_errors` when the first store is made.
Until then :data:`FAILURES`, :data:`AFAILURES` and :data:`NoScriptError` are placeholders; read them as attributes
of this module (``_redis_errors.FAILURES``), never import them by name, or the placeholder stays bound.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from ..exceptions import ConfigurationError, StorageError
from ._redis_direct import is_saturated

__all__ = [
    "AFAILURES",
    "FAILURES",
    "Breaker",
    "NoScriptError",
    "load_redis_errors",
    "transient_reply",
    "wrap_failure",
]

log = logging.getLogger("backend_guard.storage")

_CROSS_SLOT = ("CROSSSLOT", "same key slot", "hash to the same slot", "non local key")

# redis-py's exception classes, bound once (importing them inside every call costs a dictionary walk per call);
# until redis-py is loaded they are placeholders that match nothing.
NoScriptError: type[BaseException] = type("_Unloaded", (Exception,), {})
#: What a sync call can raise that is the store's failure (redis-py's errors and the socket's).
FAILURES: tuple[type[BaseException], ...] = (OSError,)
#: The same for an asyncio call, whose timeouts are asyncio's own.
AFAILURES: tuple[type[BaseException], ...] = (OSError, asyncio.TimeoutError)


def load_redis_errors() -> bool:
    """Bind redis-py's exception classes; False when redis-py is not installed.

    Example::

        if not load_redis_errors():
            raise ConfigurationError("pip install 'backend-guard[redis]'")
    """
    global NoScriptError, FAILURES, AFAILURES
    try:
        from redis.exceptions import NoScriptError as RedisNoScriptError
        from redis.exceptions import RedisClusterException, RedisError
    except ImportError:
        return False
    NoScriptError = RedisNoScriptError
    FAILURES = (RedisError, RedisClusterException, OSError)
    AFAILURES = (*FAILURES, asyncio.TimeoutError)
    return True


def _cross_slot(exc: BaseException) -> bool:
    """True for Redis Cluster's refusal of keys in several slots (server CROSSSLOT or redis-py's own check)."""
    if type(exc).__name__ == "ClusterCrossSlotError":
        return True
    text = str(exc)
    return any(marker in text for marker in _CROSS_SLOT)


def transient_reply(exc: BaseException) -> bool:
    """True for an error reply that says "not now" (BUSY with another script, TRYAGAIN, CLUSTERDOWN, MASTERDOWN),
    not "never": the server will answer the same command later, so it is an outage of a moment.

    Example::

        transient_reply(ResponseError("BUSY Redis is busy running a script"))   # True
    """
    from redis.exceptions import ClusterDownError, TryAgainError

    return isinstance(exc, (ClusterDownError, TryAgainError)) or str(exc).startswith(("BUSY ", "LOADING "))


class Breaker:
    """Fail fast while the server is known to be down; probe again after a cooldown.

    After a connection failure calls fail fast for ``cooldown`` seconds, then one call probes again. The outage
    is logged once when it starts and once when it ends (``url`` names the server, its password redacted).

    Example::

        breaker = Breaker(1.0, "redis://127.0.0.1:6379/0")
        breaker.before()   # StorageError while the circuit is open
    """

    def __init__(self, cooldown: float, url: str) -> None:
        self.cooldown = cooldown
        self.url = url
        self._open_until = 0.0
        self._down = False
        self._lock = threading.Lock()

    def before(self) -> None:
        """Raise StorageError while the circuit is open (the server failed less than ``cooldown`` ago)."""
        if self._down and time.monotonic() < self._open_until:
            raise StorageError("The backing store is unavailable (circuit open).", outage=True)

    def failure(self, exc: BaseException) -> None:
        """The server failed: open the circuit for ``cooldown`` seconds (logged when an outage starts)."""
        with self._lock:
            self._open_until = time.monotonic() + self.cooldown
            if not self._down:
                self._down = True
                log.warning("Redis store %s unavailable: %s: %s", self.url, type(exc).__name__, exc)

    def success(self) -> None:
        """The server answered: close the circuit (logged when an outage ends)."""
        if self._down:
            with self._lock:
                if self._down:
                    self._down = False
                    log.warning("Redis store %s available again", self.url)


def wrap_failure(exc: BaseException, what: str, breaker: Breaker) -> StorageError:
    """The StorageError for a failure of ``what`` (an outage also opens ``breaker``).

    Raises ConfigurationError for Redis Cluster's cross-slot refusal: never transient and never a reason to fail
    open, keys that cannot share a slot are a bug in how they were built (or a part used on a cluster in a
    configuration it cannot support there).

    Example::

        raise wrap_failure(exc, script.name, breaker) from exc
    """
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    if _cross_slot(exc):
        raise ConfigurationError(
            f"Redis Cluster refused {what}: the keys of one atomic operation are in different hash slots."
        ) from exc
    if is_saturated(exc):
        # The pool is full of calls in flight (a burst): this process is saturated, the server is not down,
        # so the circuit stays closed.
        return StorageError(f"Redis connection pool exhausted during {what}.", original=exc)
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)):
        breaker.failure(exc)  # logs the outage when it starts
        return StorageError(f"Redis unavailable during {what}.", original=exc, outage=True)
    return StorageError(f"Redis error during {what}.", original=exc)
