"""``GuardModelBackend``: Django's ``ModelBackend`` answering a password ``GuardPasswordHasher`` refuses as a wrong
one, for every account.

This module imports ``django.contrib.auth.backends`` (and so the auth models): ``backend_guard.django`` loads it when
``GuardModelBackend`` is first read, as Django does when it reads ``AUTHENTICATION_BACKENDS`` (apps ready).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.views.decorators.debug import sensitive_variables

from ..exceptions import InvalidPassword
from ._passwords_django import refuse_what_ours_refuses

__all__ = ["GuardModelBackend"]


class GuardModelBackend(ModelBackend):  # type: ignore[misc]
    """Django's ``ModelBackend``, ending the login before the account is looked up when the password is one
    ``GuardPasswordHasher`` refuses (over ``max_password_bytes``, a NUL): Django's ``authenticate()`` then answers it
    as a wrong password (None, and its ``user_login_failed`` signal, which lockouts count), for every account alike.

    Without it, Django never handed such a password to a hasher for an account with an unusable password
    (``set_unusable_password()``): that account answered with the form's "wrong password", every other one
    (unknown ones too) with :class:`~backend_guard.exceptions.InvalidPassword` (a 400 through ``GuardMiddleware``,
    else a 500). Put it in ``AUTHENTICATION_BACKENDS`` in place of ``ModelBackend`` (Django keeps each session's
    backend: list ``ModelBackend`` after it until the sessions made under it expire, or they are logged out).

    Example (settings.py)::

        AUTHENTICATION_BACKENDS = ["backend_guard.django.GuardModelBackend"]
    """

    # Every variable hidden in Django's error reports, in this frame and those it calls (the password).
    @sensitive_variables()  # type: ignore[untyped-decorator]
    def authenticate(self, request: Any, username: Any = None, password: Any = None, **kwargs: Any) -> Any:
        _refuse(password)
        return super().authenticate(request, username, password, **kwargs)

    @sensitive_variables()  # type: ignore[untyped-decorator]
    async def aauthenticate(self, request: Any, username: Any = None, password: Any = None, **kwargs: Any) -> Any:
        _refuse(password)
        return await super().aauthenticate(request, username, password, **kwargs)


def _refuse(password: Any) -> None:
    """PermissionDenied (Django's way for a backend to end a login) for a password ``GuardPasswordHasher`` refuses."""
    if isinstance(password, (str, bytes)):
        try:
            refuse_what_ours_refuses(password)
        except InvalidPassword:
            raise PermissionDenied from None
