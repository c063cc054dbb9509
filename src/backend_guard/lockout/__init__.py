"""Account lockout: failed-login counters that are exact under parallel attacks and no weapon against users.

What lives in this package: the policy (thresholds, windows, backoff), the identifiers and keys, and turning
script replies into decisions and audit events. The read-modify-write logic itself is two atomic scripts
(``_scripts.py``; the reserve one is generated per policy by ``_reserve_lua.py``), so a decision is one round
trip on Redis, timed by the Redis clock.

Four counters ("scopes"), each with a threshold, an observation window and a lock with progressive backoff:

``pair``      failures of one account from one client address (``max_failures``, default 5).
``account``   failures of one account from every address (``account_max_failures``, default 20). Its lock does
              not apply to addresses the account recently logged in from, so strangers cannot lock a user out
              of the places they log in from.
``ceiling``   consecutive failures of one account from every address (``account_ceiling``, at most 100, as
              NIST SP 800-63B asks). Its lock applies to everyone; only a successful login resets it.
``address``   failures from one address over every account (``address_max_failures``, off by default).

An attempt is *reserved* (counted as a failure) before the password is checked, in the same atomic step that
checks the locks; a success then takes its reservation back. So 100 parallel guesses against a threshold of 5
let exactly 5 reach the password verifier.

The package's modules, one concept each: ``_policy`` (the numbers: limits, checks, the policy the scripts are
compiled from), ``_keys`` (identifiers and storage keys), ``_scripts`` and ``_reserve_lua`` (the atomic
operations: Lua for Redis, a Python twin for the memory store), ``_decisions`` and ``_audit`` (a script's reply
to a status, an attempt, an event), ``_status`` (the answers), ``_attempt`` (an attempt and the canonical account
name), ``_lockout`` (the :class:`Lockout` class and its API) and ``_routes`` (the login-route hooks).
"""

from __future__ import annotations

from ..exceptions import InvalidCredentials
from ._attempt import Attempt, normalize_identifier
from ._lockout import Lockout
from ._lockout import OnStorageError as OnStorageError

# The limits a Lockout accepts, importable from here as before the package was split (``config.py`` reads them).
from ._policy import MAX_ADDRESS_FAILURES as MAX_ADDRESS_FAILURES
from ._policy import MAX_DURATION as MAX_DURATION
from ._policy import NIST_CEILING as NIST_CEILING
from ._status import LockoutEvent, LockoutStatus, LockRecord

__all__ = [
    "Attempt",
    "InvalidCredentials",
    "LockRecord",
    "Lockout",
    "LockoutEvent",
    "LockoutStatus",
    "normalize_identifier",
]
