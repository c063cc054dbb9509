"""Django's own login outcome for ``@lock.protect``: the ``django.contrib.auth`` signals settle the attempt.

``user_logged_in`` for the very request that holds a reserved attempt marks it succeeded when the user logged in
is the account the attempt counted (its username, ``USERNAME_FIELD`` or email, normalised as the lockout
normalises names), and failed when it is another user (a view that logs in someone else than the account the
body names must not clear that account's counters or make the address known for it); ``user_login_failed``
marks it failed, whatever status the view then answers (Django's ``LoginView`` answers a wrong password with
200, and form views often redirect). A request whose view reports neither is counted as a failure.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..lockout._attempt import Attempt

__all__ = ["connect_auth_signals", "watch_login"]

_UID = "backend_guard.lockout"
#: Where :func:`watch_login` keeps the request's reserved attempt (the receivers settle only that one).
_WATCHED = "_backend_guard_login_attempt"
_connected = threading.Event()
_lock = threading.Lock()


def watch_login(request: Any, attempt: Attempt) -> None:
    """Have the auth signals for ``request`` settle ``attempt`` (the receivers are connected on first use).

    Example::

        watch_login(request, attempt)   # the Django adapter does this for @lock.protect
    """
    connect_auth_signals()
    setattr(request, _WATCHED, attempt)


def _attempt_of(request: Any) -> Attempt | None:
    attempt: Attempt | None = getattr(request, _WATCHED, None)
    return attempt


def _login_fields(user: Any) -> list[str]:
    """The fields a user may log in with: the ``USERNAME_FIELD``, ``email`` and the email field's name."""
    fields = [getattr(user, "USERNAME_FIELD", None), "email"]
    email_field = getattr(user, "get_email_field_name", None)
    if callable(email_field):
        fields.append(email_field())
    return [f for f in fields if isinstance(f, str)]


def _names_of(user: Any) -> set[str]:
    """The names a user logs in with: ``get_username()``, the ``USERNAME_FIELD`` and the email field's value."""
    values = [getattr(user, f, None) for f in _login_fields(user)]
    get_username = getattr(user, "get_username", None)
    if callable(get_username):
        values.append(get_username())
    return {v for v in values if isinstance(v, str) and v}


def _is_counted_account(attempt: Attempt, user: Any) -> bool:
    # Nothing counted (the store was unavailable): no counter to clear, and counts() is False for every name.
    return any(attempt.counts(name) for name in _names_of(user))


def _logged_in(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    attempt = _attempt_of(request)
    if attempt is None:
        return
    if _is_counted_account(attempt, user):
        attempt.succeeded()
    else:  # another user logged in: the account the lockout counted was not proven
        attempt.failed()


def _login_failed(sender: Any, credentials: Any = None, request: Any = None, **kwargs: Any) -> None:
    attempt = _attempt_of(request)
    if attempt is not None:
        attempt.failed()


def connect_auth_signals() -> None:
    """Connect the two receivers once per process (weak=False: they are module functions).

    Example::

        connect_auth_signals()   # the login decorator does this on its first Django request
    """
    if _connected.is_set():
        return
    with _lock:
        if _connected.is_set():
            return
        from django.contrib.auth.signals import user_logged_in, user_login_failed

        user_logged_in.connect(_logged_in, dispatch_uid=_UID + ".logged_in", weak=False)
        user_login_failed.connect(_login_failed, dispatch_uid=_UID + ".login_failed", weak=False)
        _connected.set()
