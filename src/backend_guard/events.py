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
- ``tokens.refused`` (a route refused its access token: ``reason``, the refusal's code, such as ``invalid-token``
  or ``token-expired``, and ``status``; never the token);
- ``cors.refused`` (a refused preflight, or an actual cross-origin request whose response gets no CORS headers;
  ``reason``, ``origin``, ``preflight``), ``csrf.refused`` (``rule``, ``websocket``);
- ``hosts.refused`` (a request refused for its ``Host``; ``reason``, ``host``);
- ``storage.fail_open``, ``storage.fail_closed`` (a store outage answered by ``on_storage_error``; the part
  is the one whose store failed, ``operation`` says which call);
- ``operate.locks.unlock``, ``operate.limits.reset``, ``operate.tokens.revoke`` (an operator's action:
  ``by``, ``target`` and the verb's own fields).

A subject or a client key is shown as :func:`digest`, an HMAC-SHA-256 under the process's digest key: the
``BACKEND_GUARD_DIGEST_KEY`` environment variable (or :func:`set_digest_key`), else a random key drawn when the
process starts (kept by forked workers). An unkeyed hash of an address or a user name is undone by trying every
value; a keyed one is not. Digests match across processes (and ``backend-guard digest VALUE``) only when the key
is configured.

Example::

    from backend_guard import events

    def to_siem(event: events.Event) -> None:
        siem.send(event.name, event.as_dict())

    events.subscribe(to_siem, parts=["lockout", "tokens"])
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._logging import request_id_var
from .exceptions import ConfigurationError

__all__ = [
    "DIGEST_KEY_ENV",
    "NAMES",
    "PARTS",
    "Event",
    "Subscription",
    "digest",
    "digest_key_configured",
    "emit",
    "listening",
    "publish",
    "set_digest_key",
    "subscribe",
]

log = logging.getLogger("backend_guard.events")

#: The parts that emit events.
PARTS = ("cors", "csrf", "hosts", "lockout", "operate", "ratelimit", "tokens")

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
    "tokens.refused": "refused",
    "cors.refused": "refused",
    "hosts.refused": "refused",
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


#: The environment variable holding the digest key (at least 16 bytes of text; read when the module is imported).
DIGEST_KEY_ENV = "BACKEND_GUARD_DIGEST_KEY"
_MIN_DIGEST_KEY = 16


def _mac_of(key: str | bytes | None) -> tuple[Any, bool]:
    """The HMAC-SHA-256 state of ``key`` (a random 32-byte key when None) and whether it was configured."""
    if key is None:
        return hmac.new(os.urandom(32), digestmod=hashlib.sha256), False
    raw = key.encode("utf-8") if isinstance(key, str) else key
    if not isinstance(raw, bytes) or len(raw) < _MIN_DIGEST_KEY:
        raise ConfigurationError(
            f"{DIGEST_KEY_ENV}: the digest key must be at least {_MIN_DIGEST_KEY} bytes (e.g. `openssl rand -hex 32`)."
        )
    return hmac.new(raw, digestmod=hashlib.sha256), True


_mac, _configured = _mac_of(os.environ.get(DIGEST_KEY_ENV) or None)


def set_digest_key(key: str | bytes | None) -> None:
    """Key :func:`digest` with ``key`` (at least 16 bytes: the same in every process whose digests must match,
    and in the ``backend-guard digest`` command's environment); None draws a new random key for this process.

    Call it at start-up, before requests: earlier digests stop matching. ``BACKEND_GUARD_DIGEST_KEY`` does the
    same when the module is imported.

    Example::

        events.set_digest_key(os.environ["AUDIT_DIGEST_KEY"])
    """
    global _mac, _configured
    _mac, _configured = _mac_of(key)


def digest_key_configured() -> bool:
    """True when :func:`digest` uses a configured key (so its digests match other processes'), False for the
    random per-process key.

    Example::

        if not events.digest_key_configured():
            log.warning("event digests will not match across workers")
    """
    return _configured


def digest(text: str) -> str:
    """The short digest that stands for a subject or a client key in events, output and audit records: 32 hex
    digits of HMAC-SHA-256 under the digest key (see :func:`set_digest_key`), never the text itself.

    Example::

        digest("user-42")   # the same value as `backend-guard digest user-42` with the same key
    """
    mac = _mac.copy()
    mac.update(text.encode("utf-8", "surrogatepass"))
    return str(mac.hexdigest()[:32])
