"""Structured events: one per decision that refuses or changes state, for audit sinks, signals and metrics.

Each part emits an :class:`Event` (a stable ``name``, its ``part`` and ``outcome``, and ``fields`` with
identifiers digested as the logs show them; never a password, a token or a raw account name) to the callbacks
:func:`subscribe` registered. Nothing is built while no callback listens to a part, and a callback that raises
never reaches the request: its first failure is logged on ``backend_guard.events`` and later events still
reach it (and every other callback).

The names (:data:`NAMES`), stable across releases:

- ``ratelimit.refused`` (a request over a limit; ``key_id``, ``policy``, ``retry_after``);
- ``lockout.failure``, ``lockout.locked``, ``lockout.refused``, ``lockout.unlocked``,
  ``lockout.success_after_failures`` (``account_id``, ``address``, ``scope``, ``retry_after``, ``failures``);
- ``tokens.reuse_detected``, ``tokens.family_revoked`` (``subject_id``, ``family``, ``reason``, ``count``);
- ``cors.refused`` (a refused preflight; ``reason``, ``origin``), ``csrf.refused`` (``rule``, ``websocket``);
- ``storage.fail_open``, ``storage.fail_closed`` (a store outage answered by ``on_storage_error``; the part
  is the one whose store failed, ``operation`` says which call);
- ``operate.locks.unlock``, ``operate.limits.reset``, ``operate.tokens.revoke`` (an operator's action:
  ``by``, ``target`` and the verb's own fields).

Example::

    from backend_guard import events

    def to_siem(event: events.Event) -> None:
        siem.send(event.name, event.as_dict())

    events.subscribe(to_siem, parts=["lockout", "tokens"])
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._logging import request_id_var

__all__ = ["NAMES", "PARTS", "Event", "Subscription", "digest", "emit", "listening", "publish", "subscribe"]

log = logging.getLogger("backend_guard.events")

#: The parts that emit events.
PARTS = ("cors", "csrf", "lockout", "operate", "ratelimit", "tokens")

#: Every event name and its outcome (the ``storage.*`` events come from the part whose store failed).
NAMES: Mapping[str, str] = {
    "ratelimit.refused": "refused",
    "lockout.failure": "counted",
    "lockout.locked": "locked",
    "lockout.refused": "refused",
    "lockout.unlocked": "unlocked",
    "lockout.success_after_failures": "cleared",
    "tokens.reuse_detected": "revoked",
    "tokens.family_revoked": "revoked",
    "cors.refused": "refused",
    "csrf.refused": "refused",
    "storage.fail_open": "allowed",
    "storage.fail_closed": "refused",
    "operate.locks.unlock": "unlocked",
    "operate.limits.reset": "reset",
    "operate.tokens.revoke": "revoked",
}


@dataclass(frozen=True, slots=True)
class Event:
    """One decision that refused or changed state: ``name`` (see :data:`NAMES`), ``part``, ``outcome``, the
    digested ``fields``, and the ``request_id`` of the request it was made in (None outside one).

    Example::

        def audit(event: Event) -> None:
            log.info("%s %s", event.name, event.fields.get("account_id"))
    """

    name: str
    part: str
    outcome: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    request_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The event as one flat JSON-ready dict: ``event``, ``part``, ``outcome``, ``request_id`` and the fields.

        Example::

            json.dumps(event.as_dict())
        """
        return {
            "event": self.name,
            "part": self.part,
            "outcome": self.outcome,
            "request_id": self.request_id,
            **self.fields,
        }


class Subscription:
    """A callback :func:`subscribe` registered; :meth:`close` (or leaving a ``with`` block) removes it.

    ``failures`` counts the times the callback raised (only the first is logged).

    Example::

        with events.subscribe(seen.append, parts=["ratelimit"]):
            limiter.hit("k", "1/minute")
    """

    __slots__ = ("callback", "failures", "parts")

    def __init__(self, callback: Callable[[Event], None], parts: tuple[str, ...]) -> None:
        self.callback = callback
        self.parts = parts
        self.failures = 0

    def deliver(self, event: Event) -> None:
        """Give ``event`` to the callback; a failure is counted, logged the first time, never raised."""
        try:
            self.callback(event)
        except Exception:  # a sink must never break the request that made the event
            self.failures += 1
            if self.failures == 1:
                log.exception("event callback %r failed (logged once; it still receives events)", self.callback)

    def close(self) -> None:
        """Stop delivering events to this callback (a second call does nothing).

        Example::

            sub = events.subscribe(print)
            sub.close()
        """
        _remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# The subscriptions by part, replaced whole under the lock: emitting reads it without locking.
_lock = threading.Lock()
_all: list[Subscription] = []
_by_part: dict[str, tuple[Subscription, ...]] = {}


def _rebuild() -> None:
    global _by_part
    _by_part = {p: found for p in PARTS if (found := tuple(s for s in _all if p in s.parts))}


def _remove(sub: Subscription) -> None:
    with _lock:
        if sub in _all:
            _all.remove(sub)
            _rebuild()


def subscribe(callback: Callable[[Event], None], *, parts: Iterable[str] | None = None) -> Subscription:
    """Deliver every event of ``parts`` (default: all of :data:`PARTS`) to ``callback``, in the thread or task
    that made the decision (keep it quick: queue slow work). Returns the :class:`Subscription`.

    Example::

        sub = events.subscribe(lambda e: print(e.name, e.fields), parts=["lockout"])
    """
    if not callable(callback):
        raise TypeError("callback must be callable")
    wanted = PARTS if parts is None else tuple(parts)
    unknown = sorted(set(wanted) - set(PARTS))
    if unknown:
        raise ValueError(f"unknown parts {unknown}: choose from {list(PARTS)}")
    sub = Subscription(callback, wanted)
    with _lock:
        _all.append(sub)
        _rebuild()
    return sub


def listening(part: str) -> bool:
    """True when a callback wants ``part``'s events (check it before building costly fields).

    Example::

        if events.listening("ratelimit"):
            events.emit("ratelimit", "ratelimit.refused", key_id=events.digest(key))
    """
    return part in _by_part


def publish(event: Event) -> None:
    """Give ``event`` to every callback of its part (none raises into the caller).

    Example::

        events.publish(Event("csrf.refused", "csrf", "refused", {"rule": "fetch-cross-site"}))
    """
    for sub in _by_part.get(event.part, ()):
        sub.deliver(event)


def emit(part: str, name: str, **fields: Any) -> None:
    """Publish the event ``name`` of ``part`` (its outcome from :data:`NAMES`) when a callback listens.

    Example::

        events.emit("csrf", "csrf.refused", rule="fetch-cross-site", websocket=False)
    """
    subs = _by_part.get(part)
    if subs:
        event = Event(name, part, NAMES[name], fields, request_id_var.get())
        for sub in subs:
            sub.deliver(event)


def digest(text: str) -> str:
    """The short digest that stands for a subject or a client key in events, output and audit records (32 hex
    digits of SHA-256).

    Example::

        digest("user-42")
    """
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
