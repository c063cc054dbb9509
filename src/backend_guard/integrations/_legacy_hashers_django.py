"""Django's own password hashers for the hashes a project had before ``GuardPasswordHasher``, refusing first what it
refuses.

While older hashes remain (PBKDF2, Django's argon2, bcrypt, scrypt), Django checks a login against one of them with
Django's own hasher, which takes a password of any length: an over-long password (or one holding a NUL) then
answered with the form's "wrong password" for an account still on an older hash, and with
:class:`~backend_guard.exceptions.InvalidPassword` (a 400 through ``GuardMiddleware``) for every other account,
known or not: the answer told the accounts still on an older hash apart. Each class here is Django's hasher of the
same ``algorithm`` (so it reads the same hashes) whose ``verify`` first refuses such a password as
``GuardPasswordHasher`` does. List them in ``PASSWORD_HASHERS`` in place of Django's.

Django never hands a hasher the password of an account with an unusable password:
``backend_guard.django.GuardModelBackend`` refuses such a password before the account is looked up.

This module imports ``django.contrib.auth.hashers``: ``backend_guard.django`` loads it when one of its names is
first read (as Django does when it reads ``PASSWORD_HASHERS``).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import hashers as django_hashers

from ._passwords_django import refuse_what_ours_refuses

__all__ = [
    "LegacyArgon2PasswordHasher",
    "LegacyBCryptSHA256PasswordHasher",
    "LegacyPBKDF2PasswordHasher",
    "LegacyPBKDF2SHA1PasswordHasher",
    "LegacyScryptPasswordHasher",
]


class _RefusesFirst:
    """``verify`` and ``encode`` refuse a password ``GuardPasswordHasher`` refuses (InvalidPassword), then do as
    Django's."""

    def verify(self, password: str, encoded: str) -> bool:
        refuse_what_ours_refuses(password)
        verified: bool = super().verify(password, encoded)  # type: ignore[misc]
        return verified

    def encode(self, password: str, *args: Any, **kwargs: Any) -> str:
        refuse_what_ours_refuses(password)
        encoded: str = super().encode(password, *args, **kwargs)  # type: ignore[misc]
        return encoded


class LegacyPBKDF2PasswordHasher(_RefusesFirst, django_hashers.PBKDF2PasswordHasher):  # type: ignore[misc]
    """Django's ``PBKDF2PasswordHasher`` (Django's default: ``pbkdf2_sha256$`` hashes), refusing first a password
    ``GuardPasswordHasher`` refuses, so an account on an older hash answers as every other one.

    Example (settings.py)::

        PASSWORD_HASHERS = [
            "backend_guard.django.GuardPasswordHasher",
            "backend_guard.django.LegacyPBKDF2PasswordHasher",
        ]
    """


class LegacyPBKDF2SHA1PasswordHasher(_RefusesFirst, django_hashers.PBKDF2SHA1PasswordHasher):  # type: ignore[misc]
    """Django's ``PBKDF2SHA1PasswordHasher`` (``pbkdf2_sha1$``), refusing first what ``GuardPasswordHasher`` refuses.

    Example (settings.py)::

        PASSWORD_HASHERS = [
            "backend_guard.django.GuardPasswordHasher",
            "backend_guard.django.LegacyPBKDF2SHA1PasswordHasher",
        ]
    """


class LegacyArgon2PasswordHasher(_RefusesFirst, django_hashers.Argon2PasswordHasher):  # type: ignore[misc]
    """Django's ``Argon2PasswordHasher`` (``argon2$``), refusing first what ``GuardPasswordHasher`` refuses.

    Example (settings.py)::

        PASSWORD_HASHERS = [
            "backend_guard.django.GuardPasswordHasher",
            "backend_guard.django.LegacyArgon2PasswordHasher",
        ]
    """


class LegacyBCryptSHA256PasswordHasher(_RefusesFirst, django_hashers.BCryptSHA256PasswordHasher):  # type: ignore[misc]
    """Django's ``BCryptSHA256PasswordHasher`` (``bcrypt_sha256$``), refusing first what ``GuardPasswordHasher``
    refuses.

    Example (settings.py)::

        PASSWORD_HASHERS = [
            "backend_guard.django.GuardPasswordHasher",
            "backend_guard.django.LegacyBCryptSHA256PasswordHasher",
        ]
    """


class LegacyScryptPasswordHasher(_RefusesFirst, django_hashers.ScryptPasswordHasher):  # type: ignore[misc]
    """Django's ``ScryptPasswordHasher`` (``scrypt$``), refusing first what ``GuardPasswordHasher`` refuses.

    Example (settings.py)::

        PASSWORD_HASHERS = [
            "backend_guard.django.GuardPasswordHasher",
            "backend_guard.django.LegacyScryptPasswordHasher",
        ]
    """
