"""Password hashing: argon2id with upgrade-only rehashing, legacy migration, peppers and an async API.

The public names of the package, re-exported from the modules that hold them: the policy
(:class:`Argon2Parameters` and its profiles, ``_parameters.py``), :class:`PasswordHasher` (``_hasher.py``, with
its input policy ``_input.py``, libargon2 calls ``_argon2.py``, worker pool ``_pool.py`` and stored formats
``_schemes.py``), :func:`calibrate` (``_calibrate.py``), and choosing passwords: :class:`PasswordPolicy`
(``_policy.py``, ``_rules.py``, ``_blocklist.py``, ``_pwned.py``) and its pydantic field :class:`CheckedPassword`
(``_pydantic.py``, imported on first use: it loads pydantic, which hashing alone does not need).

Example::

    from backend_guard.passwords import PasswordHasher

    hasher = PasswordHasher()
    ok = hasher.verify(hasher.hash("correct horse"), "correct horse")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._calibrate import calibrate
from ._hasher import PasswordHasher
from ._parameters import DEFAULT_PARAMETERS, OWASP_MIN, RECOMMENDED, RFC_9106_LOW_MEMORY, TEST, Argon2Parameters
from ._policy import PasswordIssue, PasswordPolicy, WeakPassword
from ._pwned import PwnedPasswordsFile

if TYPE_CHECKING:
    from ._pydantic import CheckedPassword
else:

    def __getattr__(name: str) -> Any:
        """``CheckedPassword`` is imported when first read (it loads pydantic)."""
        if name == "CheckedPassword":
            value = importlib.import_module("._pydantic", __name__).CheckedPassword
            globals()[name] = value
            return value
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
