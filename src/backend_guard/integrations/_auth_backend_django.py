"""``GuardModelBackend``: Django's ``ModelBackend`` refusing first a password ``GuardPasswordHasher`` refuses.

This module imports ``django.contrib.auth.backends`` (and so the auth models): ``backend_guard.django`` loads it when
``GuardModelBackend`` is first read, as Django does when it reads ``AUTHENTICATION_BACKENDS`` (apps ready).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend

from ._passwords_django import refuse_what_ours_refuses

__all__ = ["GuardModelBackend"]


class GuardModelBackend(ModelBackend):  # type: ignore[misc]
    """Django's ``ModelBackend``, refusing first (:class:`~backend_guard.exceptions.InvalidPassword`, a 400 through
    ``GuardMiddleware``) a password ``GuardPasswordHasher`` refuses, before the account is looked up.

    Django never hands the password of an account with an unusable password (``set_unusable_password()``) or a hash
    no listed hasher reads to a hasher: such an account answered an over-long password with the form's "wrong
    password", every other account (unknown ones too) with the 400. Put it in ``AUTHENTICATION_BACKENDS`` in place
    of ``ModelBackend``.

    Example (settings.py)::

        AUTHENTICATION_BACKENDS = ["backend_guard.django.GuardModelBackend"]
    """

    def authenticate(self, request: Any, username: Any = None, password: Any = None, **kwargs: Any) -> Any:
        if isinstance(password, str):
            refuse_what_ours_refuses(password)
        return super().authenticate(request, username, password, **kwargs)

    async def aauthenticate(self, request: Any, username: Any = None, password: Any = None, **kwargs: Any) -> Any:
        if isinstance(password, str):
            refuse_what_ours_refuses(password)
        return await super().aauthenticate(request, username, password, **kwargs)
