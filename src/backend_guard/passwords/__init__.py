"""Password hashing: argon2id with upgrade-only rehashing, legacy migration, peppers and an async API.

The public names of the package, re-exported from the modules that hold them: the policy
(:class:`Argon2Parameters` and its profiles, ``_parameters.py``), :class:`PasswordHasher` (``_hasher.py``, with
its input policy ``_input.py``, libargon2 calls ``_argon2.py``, worker pool ``_pool.py`` and stored formats
``_schemes.py``) and :func:`calibrate` (``_calibrate.py``).

Example::

    from backend_guard.passwords import PasswordHasher

    hasher = PasswordHasher()
    ok = hasher.verify(hasher.hash("correct horse"), "correct horse")
"""

from __future__ import annotations

from ._calibrate import calibrate
from ._hasher import PasswordHasher
from ._parameters import DEFAULT_PARAMETERS, OWASP_MIN, RECOMMENDED, RFC_9106_LOW_MEMORY, TEST, Argon2Parameters
from ._policy import PasswordIssue, PasswordPolicy, WeakPassword
from ._pwned import PwnedPasswordsFile
from ._pydantic import CheckedPassword

__all__ = [
    "DEFAULT_PARAMETERS",
    "OWASP_MIN",
    "RECOMMENDED",
    "RFC_9106_LOW_MEMORY",
    "TEST",
    "Argon2Parameters",
    "CheckedPassword",
    "PasswordHasher",
    "PasswordIssue",
    "PasswordPolicy",
    "PwnedPasswordsFile",
    "WeakPassword",
    "calibrate",
]
