"""The lockout's audit trail: each failure, lock, unlock and success after failures, as a :class:`LockoutEvent`
given to the application's ``on_event``, logged on the ``backend_guard.lockout`` logger and published as a
:class:`~backend_guard.events.Event` (``lockout.failure``, ``lockout.locked``, ``lockout.unlocked``,
``lockout.success_after_failures``; ``lockout.refused`` for an attempt refused while locked, only as an event).

A :class:`LockoutEvent` names the account by its keyed hash (the name only with ``log_identifiers=True``) and
the client by its address bucket; a published :class:`~backend_guard.events.Event` names both by their keyed
hashes (``account_id``, ``address``), as the documentation promises. Nothing is built when nobody listens,
and a failing ``on_event`` never breaks a login.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import astuple
from typing import Any, Protocol

from .. import events
from ._keys import Plan
from ._policy import SCOPES
from ._scripts import ReserveReply
from ._status import LockoutEvent

__all__ = ["AuditSettings", "emit", "emit_failure", "emit_refused", "log", "published"]

log = logging.getLogger("backend_guard.lockout")
_LEVELS = {"lockout": logging.WARNING}  # every other kind is logged at INFO
# The event name of each kind of LockoutEvent.
_NAMES = {
    "failure": "lockout.failure",
    "lockout": "lockout.locked",
    "unlock": "lockout.unlocked",
    "success_after_failures": "lockout.success_after_failures",
}


class AuditSettings(Protocol):
    """What the audit reads of its lockout, on every event (both may change while the lockout is in use)."""

    @property
    def on_event(self) -> Callable[[LockoutEvent], None] | None: ...

    @property
    def log_identifiers(self) -> bool: ...


def emit(settings: AuditSettings, kind: str, plan: Plan, **extra: Any) -> None:
    """Log one event of ``kind`` about ``plan``'s account and address and give it to ``on_event``.

    Example::

        emit(lock, "unlock", plan, scope="address")
    """
    level = _LEVELS.get(kind, logging.INFO)
    bus = events.listening("lockout")
    if settings.on_event is None and not bus and not log.isEnabledFor(level):
        return  # nobody listens: no event to build
    event = LockoutEvent(
        kind,
        plan.account_id,
        plan.address or None,
        account=plan.account if settings.log_identifiers else None,
        **extra,
    )
    _log(level, event)
    _give(settings.on_event, event)  # read again, as it may have changed: the sink set now gets the event
    if bus:
        events.emit("lockout", _NAMES[kind], **published(event, plan))


def published(event: LockoutEvent, plan: Plan) -> dict[str, Any]:
    """The fields a :class:`LockoutEvent` about ``plan`` publishes as an :class:`~backend_guard.events.Event`:
    all but its kind (the event's name) and the account's name, with the address as its keyed hash (``address``,
    as ``lock.address_id(ip)`` gives it; never the client's IP).

    Example::

        published(LockoutEvent("unlock", plan.account_id, plan.address), plan)["address"] == plan.address_id
    """
    _kind, account_id, _address, scope, retry_after, failures, _account = astuple(event)
    return {
        "account_id": account_id,
        "address": plan.address_id,
        "scope": scope,
        "retry_after": retry_after,
        "failures": failures,
    }


def emit_refused(plan: Plan, scope: str | None, retry_after: float) -> None:
    """Publish ``lockout.refused``: an attempt refused because the account is locked (an event only: the
    application's ``on_event`` gets the lock itself, as ``lockout``).

    Example::

        emit_refused(plan, "pair", 300.0)
    """
    if events.listening("lockout"):
        fields = published(LockoutEvent("refused", plan.account_id, plan.address or None, scope, retry_after), plan)
        events.emit("lockout", "lockout.refused", **fields)


def _log(level: int, event: LockoutEvent) -> None:
    """Log ``event`` with its fields as record attributes (``lockout_event``, ``account_id``, ``client_address``);
    the message starts with the event's name (``lockout.locked``), as the events bus publishes it."""
    log.log(
        level,
        "%s account_id=%s address=%s scope=%s",
        _NAMES[event.kind],
        event.account_id,
        event.address,
        event.scope,
        extra={"lockout_event": event.kind, "account_id": event.account_id, "client_address": event.address},
    )


def _give(on_event: Callable[[LockoutEvent], None] | None, event: LockoutEvent) -> None:
    """Give ``event`` to the application's sink, if any; a sink that raises is logged, never propagated."""
    if on_event is not None:
        try:
            on_event(event)
        except Exception:  # an audit sink must not break a login
            log.exception("lockout on_event callback failed")


def emit_failure(settings: AuditSettings, plan: Plan, reply: ReserveReply) -> None:
    """Audit a failure that counted, and the locks it set (after the attempt settled as a failure).

    Example::

        emit_failure(lock, plan, reply)
    """
    emit(settings, "failure", plan)
    newly = reply.newly
    if newly:
        scopes = ",".join(scope for i, scope in enumerate(SCOPES) if newly & (1 << i))
        emit(settings, "lockout", plan, scope=scopes, retry_after=reply.longest_ms / 1000.0)
