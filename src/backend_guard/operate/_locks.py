"""Locks: list the live locks of a :class:`~backend_guard.lockout.Lockout` and lift them.

Built on the lockout's public calls only (``scan_locks``, ``unlock``, ``unlock_address``, ``account_id``,
``address_id``): the listing is its SCAN (never KEYS; of the given account's or address's keys only) of at most
:data:`MAX_LIMIT` locks, sorted (SCAN's order
changes between calls) and cut into pages by ``limit`` and a cursor (the last row's sort key, so unlocking
while paging skips nobody). The sync and async paths share every step but the store call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..exceptions import ConfigurationError
from ..lockout import Lockout, LockoutStatus, LockRecord
from ._model import MAX_LIMIT, LockEntry, Page, audit, check_limit, listed

__all__ = ["Locks", "lock_page", "sort_key"]


@dataclass(frozen=True, slots=True)
class _Query:
    """A listing's page and filter: the cursor (the last sort key shown), the size, the names given and their hashes."""

    after: str
    limit: int
    account: str | None = None
    account_id: str | None = None
    address: str | None = None
    address_id: str | None = None

    def keeps(self, record: LockRecord) -> bool:
        """True when ``record`` passes the filter and comes after the cursor."""
        if self.account_id is not None and record.account_id != self.account_id:
            return False
        if self.address_id is not None and record.address_id != self.address_id:
            return False
        return sort_key(record) > self.after


def sort_key(record: LockRecord) -> str:
    """The order of a listing, and its cursor: the account's hash, the scope, the address's hash.

    Example::

        sort_key(LockRecord("ab12", "pair", 30.0, "cd34"))   # 'ab12:pair:cd34'
    """
    return f"{record.account_id}:{record.scope}:{record.address_id or ''}"


def lock_page(records: list[LockRecord], query: _Query, now: float, complete: bool = True) -> Page[LockEntry]:
    """The page of ``query`` out of ``records`` (pure: no store, no clock); ``complete``: whether ``records`` are
    every live lock the query covers (else the page says it is ``truncated``).

    Example::

        records, complete = lock.scan_locks(100)
        lock_page(records, query, time.time(), complete)
    """
    kept = sorted((r for r in records if query.keeps(r)), key=sort_key)
    rows = kept[: query.limit]
    more = len(kept) > query.limit
    entries = tuple(
        LockEntry(
            r.account_id,
            r.scope,
            r.retry_after,
            now + r.retry_after,
            r.address_id,
            query.account,
            query.address if r.address_id is not None else None,
        )
        for r in rows
    )
    return Page(entries, sort_key(rows[-1]) if more else None, not complete)


class Locks:
    """The live locks of one lockout, listed by page and lifted by account, pair or address.

    ``by`` (each call's operator name) goes into the audit record of each unlock; targets are the keyed hashes.

    Example::

        locks = Locks(lock)
        page = locks.list(limit=20)
        locks.unlock(account="alice", by="jane")
    """

    def __init__(self, lockout: Lockout, clock: Callable[[], float] = time.time) -> None:
        self.lockout = lockout
        self.clock = clock

    def _query(self, limit: int, cursor: str | None, account: str | None, address: str | None) -> _Query:
        lock = self.lockout
        return _Query(
            _cursor(cursor),
            check_limit(limit),
            account,
            lock.account_id(account) if account is not None else None,
            address,
            lock.address_id(address) if address is not None else None,
        )

    def list(
        self, *, limit: int = 100, cursor: str | None = None, account: str | None = None, address: str | None = None
    ) -> Page[LockEntry]:
        """One page of live locks (of ``account`` and/or the pair locks at ``address`` when given).

        Example::

            page = locks.list(account="alice")
        """
        query = self._query(limit, cursor, account, address)
        records, complete = self.lockout.scan_locks(MAX_LIMIT, account=account, ip=address)
        if address is not None and self._address_scope(query):
            records += _address_lock(self.lockout.check("", address), query)
        return lock_page(records, query, self.clock(), complete)

    async def alist(
        self, *, limit: int = 100, cursor: str | None = None, account: str | None = None, address: str | None = None
    ) -> Page[LockEntry]:
        """Async twin of :meth:`list`.

        Example::

            page = await locks.alist(limit=20)
        """
        query = self._query(limit, cursor, account, address)
        records, complete = await self.lockout.ascan_locks(MAX_LIMIT, account=account, ip=address)
        if address is not None and self._address_scope(query):
            records += _address_lock(await self.lockout.acheck("", address), query)
        return lock_page(records, query, self.clock(), complete)

    def _address_scope(self, query: _Query) -> bool:
        """True when a listing of an address must also ask for its address-wide lock (which SCAN does not list)."""
        return query.account is None and self.lockout.address_max_failures is not None

    def unlock(self, *, account: str | None = None, address: str | None = None, by: str | None = None) -> int:
        """Lift the locks and counters of ``account`` (with ``address``: only that pair) or, with ``address``
        alone, the address-wide ones; how many stored counters were removed (0: nothing was known).

        Example::

            locks.unlock(account="alice", by="jane")
        """
        if account is not None:
            removed = self.lockout.unlock(account, address)
        else:
            removed = self.lockout.unlock_address(_address(account, address))
        self._audit(account, address, removed, by)
        return removed

    async def aunlock(self, *, account: str | None = None, address: str | None = None, by: str | None = None) -> int:
        """Async twin of :meth:`unlock`.

        Example::

            await locks.aunlock(address="203.0.113.7", by="jane")
        """
        if account is not None:
            removed = await self.lockout.aunlock(account, address)
        else:
            removed = await self.lockout.aunlock_address(_address(account, address))
        self._audit(account, address, removed, by)
        return removed

    def _audit(self, account: str | None, address: str | None, removed: int, by: str | None) -> None:
        parts = []
        if account is not None:
            parts.append("account:" + self.lockout.account_id(account))
        if address is not None:
            parts.append("address:" + self.lockout.address_id(address))
        audit(by, "locks.unlock", " ".join(parts), removed=removed)


def _address_lock(status: LockoutStatus, query: _Query) -> list[LockRecord]:
    """The address-wide lock of a listing's address, from its status (none when it is not locked so)."""
    if not status.locked or status.scope != "address":
        return []
    return [LockRecord("", "address", status.retry_after, query.address_id)]


def _address(account: str | None, address: str | None) -> str:
    """The address of an address-wide unlock; neither an account nor an address is a usage error."""
    if address is None:
        raise ConfigurationError("unlock needs an account, an address, or both.")
    return address


def _cursor(cursor: str | None) -> str:
    """A listing's cursor, checked: "" (the first page) or a sort key a listing gave."""
    return listed("cursor", cursor) if cursor else ""
