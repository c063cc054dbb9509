"""Retention: may the Redis server evict security state? Read once per store, before the first script that needs it.

Before the first script that is not :attr:`~backend_guard.storage.Script.evictable` (lockout, tokens, one-time
tokens), the store reads the server's ``maxmemory-policy`` once. Any policy but ``noeviction`` can evict security
state (``allkeys-*`` any key, ``volatile-*`` any key with a time to live, which all security keys have), so the
store refuses it with ConfigurationError (or, with ``on_evicting_policy="warn"``, logs a warning once). A server
that does not answer ``CONFIG GET`` (managed Redis, a renamed command) gets a warning once.

:class:`Retention` holds the verdict and serialises the one read for both call paths: a burst of first calls
sends one ``CONFIG GET``, not one each. The store does the read itself (its clients, its breaker).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Literal

from ..exceptions import ConfigurationError
from ._redis_errors import Breaker, transient_reply, wrap_failure

__all__ = ["SAFE_POLICY", "OnEvictingPolicy", "Retention", "evicting_policy_problem", "reported_policies"]

log = logging.getLogger("backend_guard.storage")

OnEvictingPolicy = Literal["refuse", "warn"]
_ARead = Callable[[asyncio.AbstractEventLoop], Coroutine[Any, Any, None]]

#: The one ``maxmemory-policy`` that never evicts security state.
SAFE_POLICY = "noeviction"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _as_mapping(reply: Any) -> Any:
    """A raw ``CONFIG GET`` reply (name and value in turn) as a dict; any other reply as it is."""
    if isinstance(reply, (list, tuple)):
        return dict(zip(reply[::2], reply[1::2], strict=False))
    return reply


def reported_policies(reply: Any) -> list[str]:
    """The ``maxmemory-policy`` values in a ``CONFIG GET`` reply: one for a server, one per node for a cluster.

    Example::

        >>> reported_policies({"maxmemory-policy": "noeviction"})
        ['noeviction']
    """
    reply = _as_mapping(reply)
    if not isinstance(reply, dict):
        return []
    out: list[str] = []
    for name, value in reply.items():
        if isinstance(value, dict):
            out += reported_policies(value)  # a cluster client answers per node
        elif _text(name) == "maxmemory-policy":
            out.append(_text(value))
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


class Retention:
    """One store's retention verdict: ``ok`` once accepted (or warned about), ``refused`` the refusal kept.

    A refusal is raised again by every later check without another round trip; a read that failed (an outage,
    a busy server) leaves both unset, so the next check reads again.

    Example::

        retention = Retention("refuse", "redis://127.0.0.1:6379/0")
        retention.check(read)   # calls read() once; ConfigurationError when the policy can evict
    """

    def __init__(self, on_evicting_policy: OnEvictingPolicy, url: str) -> None:
        self.on_evicting_policy: OnEvictingPolicy = on_evicting_policy
        self.url = url
        self.ok = False
        self.refused = ""
        # A burst of first calls sends one CONFIG GET, not one each: the others wait for its answer.
        self._lock = threading.Lock()
        self._tasks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
            weakref.WeakKeyDictionary()
        )

    def _pending(self) -> bool:
        return not self.ok and not self.refused

    def _raise_refused(self) -> None:
        if self.refused:
            raise ConfigurationError(self.refused)

    def decide(self, reply: Any) -> None:
        """Decide from a ``CONFIG GET maxmemory-policy`` reply."""
        problem = evicting_policy_problem(reported_policies(reply))
        if problem is None:
            self.ok = True
        elif self.on_evicting_policy == "warn":
            log.warning("Redis store %s: %s", self.url, problem)
            self.ok = True
        else:
            self.refused = problem

    def failed(self, exc: BaseException, breaker: Breaker) -> None:
        """Decide from a ``CONFIG GET`` that raised: a server that will not answer it (CONFIG disabled or renamed
        on managed Redis, or not permitted) is accepted with a warning; an outage or a busy server (BUSY,
        TRYAGAIN, CLUSTERDOWN, MASTERDOWN) raises StorageError and is checked again next time."""
        from redis.exceptions import ResponseError

        if not isinstance(exc, ResponseError) or transient_reply(exc):
            raise wrap_failure(exc, "CONFIG GET maxmemory-policy", breaker) from exc
        log.warning(
            "Redis store %s: cannot read maxmemory-policy (%s: %s); make sure it is noeviction, or security "
            "state (token families, used one-time tokens, locks) may be evicted",
            self.url,
            type(exc).__name__,
            exc,
        )
        self.ok = True

    def check(self, read: Callable[[], None]) -> None:
        """Call ``read`` (which calls :meth:`decide` or :meth:`failed`) unless decided; raise a refusal."""
        if self._pending():
            with self._lock:
                if self._pending():
                    read()
        self._raise_refused()

    async def acheck(self, read: _ARead) -> None:
        """Async twin of :meth:`check`: one ``read`` per event loop, awaited by every call arriving meanwhile."""
        if self._pending():
            await self._one_read(read)
        self._raise_refused()

    async def _one_read(self, read: _ARead) -> None:
        # Every call that arrives meanwhile awaits the same task (all resume together when it ends); shielded, so
        # a cancelled caller does not cancel it for the others. A failed read is retried later.
        loop = asyncio.get_running_loop()
        task = self._tasks.get(loop)
        if task is None:
            task = self._tasks[loop] = loop.create_task(read(loop))
        try:
            await asyncio.shield(task)
        finally:
            if task.done() and self._tasks.get(loop) is task:
                del self._tasks[loop]
