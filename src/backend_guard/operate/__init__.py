"""Operate it: see and undo what the guard decided, from Python, the ``backend-guard`` command, Django and Flask.

One API (:class:`Operator`), sans-IO rows over the store the app uses, sync and async:

- ``locks``: list the live lockout locks (account and address hashes, scope, end) and lift them by account,
  (account, address) pair or address (:mod:`._locks`);
- ``limits``: a client key's remaining quota under each rate limit rule, and resetting it (:mod:`._limits`);
- ``tokens``: a subject's live refresh-token families, and revoking one or all (:mod:`._tokens`).

Listings are SCAN-based and bounded (a ``limit`` and a cursor: :class:`Page`); identifiers are shown as the
logs show them (hashes) unless the operator gave the name. Every change is an audit record on the
``backend_guard.audit`` logger naming the operator (``by``), the verb and the hashed target (:mod:`._model`).
The command-line front end is :mod:`._cli`; Django's ``manage.py guard`` and Flask's ``flask guard`` run it.

Example::

    from backend_guard.operate import Operator

    op = Operator.from_settings(store="redis://127.0.0.1:6379/0")
    page = op.locks.list(limit=20)
    op.locks.unlock(account="alice", by="jane")
"""

from __future__ import annotations

from ._limits import Limits, client_key
from ._locks import Locks
from ._model import MAX_LIMIT, FamilyEntry, LockEntry, Page, QuotaEntry, audit, digest
from ._operator import Operator
from ._tokens import Families

__all__ = [
    "MAX_LIMIT",
    "Families",
    "FamilyEntry",
    "Limits",
    "LockEntry",
    "Locks",
    "Operator",
    "Page",
    "QuotaEntry",
    "audit",
    "client_key",
    "digest",
]
