"""The lockout's answers: a decision (:class:`LockoutStatus`), an audit event (:class:`LockoutEvent`) and a live
lock found by a listing (:class:`LockRecord`).

Plain frozen values with no logic beyond building the error a locked status raises; re-exported by
:mod:`backend_guard.lockout` and :mod:`backend_guard`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..exceptions import AccountLocked

__all__ = ["LockRecord", "LockoutEvent", "LockoutStatus"]


@dataclass(frozen=True, slots=True)
class LockoutStatus:
    """A lockout decision: whether the account is locked for this address, and for how long.

    ``retry_after`` is in seconds (0 when not locked); ``remaining`` is how many more failures this account
    may have from this address before a lock; ``scope`` names the lock that refuses (``"pair"``,
    ``"account"``, ``"ceiling"`` or ``"address"``); ``degraded`` is True when the store failed and
    ``on_storage_error="allow"`` let the attempt through unchecked.

    Example::

        status = lock.check("alice", "203.0.113.7")
        if status.locked:
            raise bg.AccountLocked(retry_after=status.retry_after)
    """

    locked: bool
    retry_after: float = 0.0
    remaining: int | None = None
    scope: str | None = None
    known_address: bool = False
    degraded: bool = False

    def error(self) -> AccountLocked:
        """The :class:`~backend_guard.exceptions.AccountLocked` error for this status.

        Example::

            raise status.error()
        """
        return AccountLocked(retry_after=self.retry_after)


@dataclass(frozen=True, slots=True)
class LockoutEvent:
    """An audit event: ``kind`` is ``"failure"``, ``"lockout"``, ``"unlock"`` or ``"success_after_failures"``.

    ``account_id`` is the keyed hash of the account (never the name unless ``log_identifiers=True`` puts it in
    ``account``), ``address`` the client address bucket, ``scope`` the lock's scope for lockouts.

    Example::

        def audit(event: bg.LockoutEvent) -> None:
            siem.send(event.kind, event.account_id, event.address)

        lock = bg.Lockout(on_event=audit)
    """

    kind: str
    account_id: str
    address: str | None = None
    scope: str | None = None
    retry_after: float = 0.0
    failures: int = 0
    account: str | None = None


@dataclass(frozen=True, slots=True)
class LockRecord:
    """One live lock found by :meth:`Lockout.locked_accounts`: the account's hash, the scope, the time left.

    Compare ``account_id`` with ``lock.account_id(name)`` to find a given account; a ``pair`` lock also names
    its address bucket's hash in ``address_id`` (compare with ``lock.address_id(ip)``; None for other scopes).

    Example::

        for rec in lock.locked_accounts():
            log.info("locked %s (%s) for %.0f s", rec.account_id, rec.scope, rec.retry_after)
    """

    account_id: str
    scope: str
    retry_after: float
    address_id: str | None = None
