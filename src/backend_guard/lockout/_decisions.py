"""From a script's reply to the lockout's answer: the status, the reserved attempt or its refusal, the success
arguments, the audit events, and what a store failure means (``on_storage_error``).

What must live here: the decisions both twins of each :class:`~backend_guard.lockout.Lockout` call share, so
that a sync method and its async twin are only the plan of their (account, address), one store call and one of
these. Nothing here does I/O; the settings it reads (``generic``, ``on_storage_error``, ``on_event``, ...) are
read from the lockout on every call, as they may change while it is in use. The lockout passes itself to each
call rather than being kept here: a reference back would make a cycle, and a dropped lockout (its caches, its
store) would then wait for the cycle collector instead of being freed at once.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from .. import events
from ..exceptions import InvalidCredentials, StorageError
from ._attempt import Attempt
from ._audit import AuditSettings, emit, emit_failure, emit_refused, log
from ._keys import PLAN_CACHE, Plan
from ._policy import SCOPES
from ._scripts import ReserveReply, SuccessReply
from ._status import LockoutStatus

__all__ = ["DecisionSettings", "Decisions", "reserve_args"]


class DecisionSettings(AuditSettings, Protocol):
    """What the decisions read of their lockout, on every call."""

    @property
    def generic(self) -> bool: ...

    @property
    def on_storage_error(self) -> Literal["allow", "deny"]: ...

    @property
    def max_remembered_addresses(self) -> int: ...

    def invalid_credentials(self) -> InvalidCredentials: ...


def reserve_args(plan: Plan, mode: int) -> list[Any]:
    """The reserve script's arguments: mode 0 checks only, mode 1 counts one failure.

    Example::

        store.run(reserve, plan.keys, reserve_args(plan, 1))
    """
    return [plan.member, mode, plan.named]


class Decisions:
    """One lockout's replies to decisions: statuses (the open ones made once and shared), attempts, audit.

    Example::

        decide = Decisions()
        status = decide.status(ReserveReply.from_reply(store.run(reserve, plan.keys, reserve_args(plan, 0))))
    """

    __slots__ = ("_open",)

    def __init__(self) -> None:
        self._open: dict[tuple[int, bool], LockoutStatus] = {}

    def status(self, reply: ReserveReply) -> LockoutStatus:
        """The status a reserve reply stands for."""
        known = reply.known
        if not reply.allowed:
            return LockoutStatus(True, reply.retry_ms / 1000.0, 0, SCOPES[reply.scope - 1], known)
        # An open status is one of few values (remaining 0..max threshold, known or not) and immutable: each is
        # made once and shared.
        remaining = max(0, reply.remaining)
        status = self._open.get((remaining, known))
        if status is None:
            status = LockoutStatus(False, 0.0, remaining, None, known)
            if len(self._open) < PLAN_CACHE:
                self._open[remaining, known] = status
        return status

    def success_args(self, settings: DecisionSettings, plan: Plan, counted: int, newly: int) -> list[Any]:
        """The success script's arguments (the reservation's masks; the address only when addresses are kept)."""
        return [plan.member if settings.max_remembered_addresses else "", counted, newly, plan.named]

    # -- finish: a store reply to a decision, shared by the sync and async twins ---------------------------

    def after_failure(self, settings: DecisionSettings, plan: Plan, reply: ReserveReply) -> LockoutStatus:
        """The status after a counted failure, audited unless the account was locked (so nothing was counted)."""
        status = self.status(reply)
        if not status.locked:
            emit_failure(settings, plan, reply)
        return status

    def after_success(self, settings: DecisionSettings, plan: Plan, reply: SuccessReply) -> None:
        """Audit a success that cleared failures or a lock."""
        had_n, had_lock = reply.had_failures, reply.had_lock
        if had_n or had_lock:
            emit(settings, "success_after_failures", plan, failures=had_n)

    def reserved(self, settings: DecisionSettings, plan: Plan, first: ReserveReply) -> Attempt:
        """The attempt a reservation made; raises the refusal when the account is locked."""
        status = self.status(first)
        if status.locked:
            emit_refused(plan, status.scope, status.retry_after)
            raise self.refusal(settings, status)
        return Attempt(plan, status, first.counted, first.newly)

    def settle(self, settings: DecisionSettings, att: Attempt, plan: Plan, first: ReserveReply) -> list[Any] | None:
        """The success script's arguments for an attempt that succeeded, or None: a failure, audited here."""
        if att.ok:
            return self.success_args(settings, plan, first.counted, first.newly)
        emit_failure(settings, plan, first)
        return None

    def degraded(self, settings: DecisionSettings, exc: StorageError, what: str) -> LockoutStatus:
        """The store failed: re-raise ``exc`` (``on_storage_error="deny"``), or let the attempt through, logged."""
        if settings.on_storage_error == "deny":
            events.emit("lockout", "storage.fail_closed", operation=what, mode="deny")
            raise exc
        log.warning("lockout %s skipped: store unavailable (on_storage_error=allow)", what)
        events.emit("lockout", "storage.fail_open", operation=what, mode="allow")
        return LockoutStatus(False, 0.0, None, None, False, True)

    def refusal(self, settings: DecisionSettings, status: LockoutStatus) -> Exception:
        """The error a locked status raises: AccountLocked, or in ``generic`` mode a wrong password's error."""
        if settings.generic:
            return settings.invalid_credentials()
        return status.error()
