"""What the operator API answers: one row per lock, limit or token family, a bounded page of rows, the audit record.

Plain frozen values with no I/O. Identifiers are shown as the logs show them: an account and an address as the
lockout's keyed hashes, a subject and a client key as :func:`digest` (a keyed HMAC-SHA-256), unless the operator
gave the name (then the row carries it too, as the operator already knows it).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar

from .. import events
from .._command_parser import printable
from ..events import digest
from ..exceptions import ConfigurationError

__all__ = [
    "MAX_LIMIT",
    "FamilyEntry",
    "LockEntry",
    "Page",
    "QuotaEntry",
    "audit",
    "check_limit",
    "digest",
    "listed",
    "row_dict",
]

T = TypeVar("T")

#: The most rows one page may hold, and the most locks a listing reads.
MAX_LIMIT = 10_000

audit_log = logging.getLogger("backend_guard.audit")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One bounded page of a listing: its rows, and the cursor of the next page (None: this was the last).

    ``truncated`` is True when the listing could not read everything it covers (a lock listing reads at most
    :data:`MAX_LIMIT` locks, and ``4 * MAX_LIMIT`` keys, of the store): the pages, however far the cursor goes,
    miss some rows. Narrow the listing (by account or address) to see them.

    Example::

        page = operator.locks.list(limit=50)
        while page.cursor is not None:
            page = operator.locks.list(limit=50, cursor=page.cursor)
        if page.truncated:
            log.warning("more locks than one listing reads: list by account or address")
    """

    items: tuple[T, ...]
    cursor: str | None = None
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class LockEntry:
    """One live lock: the account's hash (and name when the operator gave it), the address, scope and end.

    ``address_id`` is the address bucket's hash for a ``pair`` lock (``address`` its text when given);
    ``until`` is the lock's end (seconds since the epoch), ``retry_after`` the seconds left.

    Example::

        waits = {e.scope: e.retry_after for e in operator.locks.list(account="alice").items}
    """

    account_id: str
    scope: str
    retry_after: float
    until: float
    address_id: str | None = None
    account: str | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True)
class QuotaEntry:
    """What is left of one rule's limit for a client key: ``remaining`` of ``limit`` per ``window`` seconds.

    ``reset_after`` is the seconds until more quota is available; ``allowed`` whether one more request passes.

    Example::

        left = {row.rule: (row.remaining, row.limit) for row in operator.limits.show(address="203.0.113.7")}
    """

    rule: str
    scope: str
    limit: int
    window: float
    remaining: int
    reset_after: float
    allowed: bool


@dataclass(frozen=True, slots=True)
class FamilyEntry:
    """One live refresh-token family (one login) of a subject.

        ``created`` and ``expires`` are seconds since the epoch (``created`` is None when the refresh lifetime is
        unknown), ``last_used`` the last issue or rotation; ``device`` the login's ``device`` (or ``user_agent``) claim,
    None when it had none.

        Example::

            last_used = {fam.family: fam.last_used for fam in operator.tokens.list("user-42").items}
    """

    family: str
    created: float | None
    last_used: float | None
    expires: float
    device: str | None = None


def check_limit(limit: int) -> int:
    """``limit`` if it is a whole number from 1 to :data:`MAX_LIMIT`; else a ConfigurationError.

    Example::

        check_limit(50)
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ConfigurationError(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {limit!r}.")
    return limit


def listed(what: str, value: str) -> str:
    """``value`` if it can be a ``what`` (a cursor, a family id) that a listing printed: printable ASCII, at most
    200 characters; else a ConfigurationError (operator input, checked before it reaches the store).

    Example::

        listed("family", args.family)
    """
    if len(value) > 200 or not value.isascii() or not value.isprintable():
        raise ConfigurationError(f"{what} {value[:40]!r} is not one a listing gave.")
    return value


def row_dict(row: Any) -> dict[str, Any]:
    """A row as a JSON-ready dict (its fields in order).

    Example::

        json.dumps([row_dict(r) for r in page.items])
    """
    return asdict(row)


def audit(by: str | None, verb: str, target: str, **fields: Any) -> None:
    """Record an operator's action on the ``backend_guard.audit`` logger (``target`` already digested), and
    emit it as the event ``operate.<verb>`` (fields ``by``, ``target`` and ``fields``).

    The record carries ``operator``, ``verb`` and ``target`` as attributes, and ``fields`` beside them.

    Example::

        audit("jane", "locks.unlock", lock.account_id("alice"), removed=3)
    """
    # The operator's name is free text: no newline or escape in it may forge a second line or rewrite the terminal.
    who = printable(by) if by else "unknown"
    audit_log.info(
        "operator %s %s %s",
        who,
        verb,
        target,
        extra={"operator": who, "verb": verb, "target": target, **fields},
    )
    events.emit("operate", "operate." + verb, by=who, target=target, **fields)
