"""The lockout's audit trail: each failure, lock, unlock and success after failures, as a :class:`LockoutEvent`
given to the application's ``on_event`` and logged on the ``backend_guard.lockout`` logger.

An event names the account by its keyed hash (the name only with ``log_identifiers=True``) and the client by its
address bucket. Nothing is built when nobody listens, and a failing ``on_event`` never breaks a login.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from ._keys import Plan
from ._policy import SCOPES
from ._scripts import ReserveReply
from ._status import LockoutEvent

__all__ = ["AuditSettings", "emit", "emit_failure", "log"]

log = logging.getLogger("backend_guard.lockout")
_LEVELS = {"lockout": logging.WARNING}  # every other kind is logged at INFO


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
    if settings.on_event is None and not log.isEnabledFor(level):
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


def _log(level: int, event: LockoutEvent) -> None:
    """Log ``event`` with its fields as record attributes (``lockout_event``, ``account_id``, ``client_address``)."""
    log.log(
        level,
        "lockout %s account_id=%s address=%s scope=%s",
        event.kind,
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
