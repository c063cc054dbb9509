"""A login attempt and the account name it counts: what the lockout hands to route integrations.

:func:`normalize_identifier` makes the canonical account name every counter is keyed by, and :class:`Attempt`
is one reserved attempt, marked ``succeeded()`` by the application. Both are re-exported by
:mod:`backend_guard.lockout`; they live here, apart from :class:`~backend_guard.lockout.Lockout`, so the login
route integrations (``_routes``, the Django signals) use them without importing the lockout itself,
which imports them.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._keys import Plan
    from ._status import LockoutStatus

__all__ = ["Attempt", "normalize_identifier"]

_IGNORABLE_EXTRA = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u3164\uffa0")


def _ignorable(ch: str) -> bool:
    """A default-ignorable code point (Unicode DerivedCoreProperties): format characters and fillers."""
    return (
        unicodedata.category(ch) == "Cf"
        or ch in _IGNORABLE_EXTRA
        or "\ufe00" <= ch <= "\ufe0f"
        or "\U000e0100" <= ch <= "\U000e01ef"
    )


def normalize_identifier(account: str | bytes | None) -> str:
    """The canonical form of an account identifier: NFKC, case-folded, stripped of surrounding white space.

    ``"  Alice@Example.COM "``, ``"alice@example.com"``, the same name typed in full-width letters and the
    same name with invisible characters (zero-width space, joiners, BOM, soft hyphen) are one account.
    Look-alike letters of other scripts (a Cyrillic ``U+0430`` for a Latin ``a``) are *not* folded: they are
    other names, and a user store that does not fold them either has no account to guess there. Bytes are
    decoded as UTF-8 (undecodable bytes replaced). ``None`` (no name given) is the empty identifier, nobody's
    account, never the name ``"none"``.

    Example::

        >>> normalize_identifier("  ÅLICE ")
        'ålice'
    """
    if account is None:
        return ""
    text = account.decode("utf-8", "replace") if isinstance(account, bytes) else str(account)
    if text.isascii():
        return text.casefold().strip()  # NFKC leaves ASCII as it is, and ASCII case-folds to ASCII
    # Invisible characters (zero-width space/joiners, word joiner, BOM, soft hyphen, variation selectors,
    # bidi marks...) are dropped first: many user stores (MySQL's *_ci collations, for one) ignore them,
    # so "alice\u200b" would log in as alice while counting against a fresh, never-locked name.
    text = "".join(ch for ch in text if not _ignorable(ch))
    # NFKC again after case folding: folding can produce sequences that NFKC composes, and the result must be
    # a fixed point, so a name that was normalised once (say, before it was stored) keys the same counters.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold()).strip()


class Attempt:
    """One login attempt reserved by :meth:`Lockout.attempt`: mark it ``succeeded()`` after a good password.

    An attempt not marked succeeded counts as a failure (it was counted when reserved), including one whose
    block raised an exception.

    Example::

        with lock.attempt(username, client_ip) as attempt:
            if hasher.verify(stored_hash, password):
                attempt.succeeded()
    """

    __slots__ = ("_counted", "_newly", "_outcome", "_plan", "status")

    def __init__(self, plan: Plan | None, status: LockoutStatus, counted: int, newly: int) -> None:
        self._plan = plan
        self.status = status
        self._counted = counted
        self._newly = newly
        self._outcome: bool | None = None  # None: nothing reported yet (settles as a failure)

    def succeeded(self) -> None:
        """Mark the password as correct: the attempt is taken back and the address remembered."""
        self._outcome = True

    def failed(self) -> None:
        """Mark the password as wrong (the default for an attempt not marked succeeded)."""
        self._outcome = False

    @property
    def ok(self) -> bool:
        """True once :meth:`succeeded` was called (and not :meth:`failed` after it)."""
        return self._outcome is True

    @property
    def account(self) -> str | None:
        """The account this attempt counts, as :func:`normalize_identifier` made it (None if nothing was counted).

        None when the store was unavailable and ``on_storage_error="allow"`` let the attempt through unchecked.

        Example::

            with lock.attempt("  Alice ", ip) as attempt:
                attempt.account   # 'alice'
        """
        return self._plan.account if self._plan is not None else None

    def counts(self, name: str) -> bool:
        """True when ``name`` is the account this attempt counts, once normalised (False when nothing was counted).

        Example::

            with lock.attempt("alice", ip) as attempt:
                attempt.counts("  ALICE ")   # True
        """
        account = self.account
        return account is not None and normalize_identifier(name) == account

    @property
    def reported(self) -> bool:
        """True once the outcome was reported with :meth:`succeeded` or :meth:`failed`.

        Example::

            if not attempt.reported:
                attempt.failed()
        """
        return self._outcome is not None
