"""The error tree of backend_guard.

Every error the library raises derives from :class:`GuardError`, which is never raised itself. Each class
knows the HTTP status it maps to, a stable slug ``code`` (the ``code`` member of problem documents), a short
human ``title``, and any response headers it needs (``Retry-After``, ``WWW-Authenticate``). The ``detail`` is
always a message written by this library: safe to show a client, never holding a secret, a password or a token.

Bad *input* (an odd password, a malformed hash) mixes in :class:`ValueError` so ordinary ``except ValueError``
code keeps working, as argon2-cffi does.
"""

from __future__ import annotations

import math
from typing import ClassVar

from ._durations import wait_text

__all__ = [
    "AccountLocked",
    "AuthenticationError",
    "ConfigurationError",
    "CrossOriginRequest",
    "Forbidden",
    "GuardError",
    "InvalidCredentials",
    "InvalidHash",
    "InvalidPassword",
    "InvalidToken",
    "RateLimited",
    "StorageError",
    "TokenExpired",
    "TokenReused",
    "UnknownHost",
]


class GuardError(Exception):
    """Base class of every backend_guard error; never raised itself.

    Attributes are plain data so any shell can render the error: ``status`` (HTTP status), ``code`` (a slug
    such as ``"rate-limited"``), ``title``, ``detail`` and ``headers`` (extra response headers).

    Example::

        try:
            limiter.hit("login:alice", "5/minute")
        except bg.GuardError as exc:
            status, headers, body = bg.problem_response(exc)
    """

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal Server Error"

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None) -> None:
        self.detail: str = detail if detail is not None else self.title
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(self.detail)

    def extensions(self) -> dict[str, object]:
        """Extra members for the problem document (RFC 9457 extension members)."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.detail!r})"


class ConfigurationError(GuardError, ValueError):
    """A policy was built with an unsafe or invalid setting; raised at start-up, never per request.

    Example::

        bg.CORSPolicy(allow_origins=["*"], allow_credentials=True)  # raises ConfigurationError
    """

    status = 500
    code = "configuration-error"
    title = "Invalid configuration"


class StorageError(GuardError):
    """The store failed (Redis down, timed out, refused); ``original`` keeps the cause. ``outage`` is True when
    the failure is part of an outage the store logs itself (once when it starts, once when it ends: a server
    that does not answer, an open circuit), so a handler need not log every request that meets it.

    Each part decides what a storage failure means (allow, deny or raise) from its own setting.

    Example::

        try:
            store.run(script, keys, args)
        except bg.StorageError as exc:
            log.warning("store down: %r", exc.original)
    """

    status = 503
    code = "storage-unavailable"
    title = "Service Unavailable"

    def __init__(
        self, detail: str | None = None, *, original: BaseException | None = None, outage: bool = False
    ) -> None:
        super().__init__(detail or "The backing store is unavailable.")
        self.original = original
        self.outage = outage
        if original is not None:
            self.__cause__ = original


class _RetryAfter(GuardError):
    """Shared shape of the errors that tell the client when to come back.

    Without a ``detail``, the detail is :attr:`what` followed by when to retry, in words rounded up
    ("retry in 37 seconds"), so a client reading the body alone knows both.
    """

    #: What happened, the first half of the default detail.
    what: ClassVar[str] = "Too many requests"

    def __init__(self, retry_after: float, detail: str | None = None) -> None:
        self.retry_after: float = max(0.0, float(retry_after))
        seconds = self.retry_after_header()
        if detail is None:
            detail = f"{self.what}; {self.retry_text()}."
        super().__init__(detail, headers={"Retry-After": seconds})

    def retry_text(self) -> str:
        """When to retry, in words rounded up: ``"retry in 37 seconds"``, ``"retry in 1 hour 5 minutes"``.

        Example::

            >>> RateLimited(retry_after=36.2).retry_text()
            'retry in 37 seconds'
        """
        return f"retry in {wait_text(self.retry_after)}"

    def retry_after_header(self) -> str:
        """``Retry-After`` as whole seconds, rounded up (a client retrying earlier would be refused)."""
        return str(max(0, math.ceil(self.retry_after)))

    def extensions(self) -> dict[str, object]:
        return {"retry_after": int(self.retry_after_header())}


class RateLimited(_RetryAfter):
    """429: a rate limit refused the request; ``retry_after`` is in seconds.

    The default detail says when to retry ("Too many requests; retry in 13 seconds."); a refusal of the
    rate limiter also names the limit that refused (see ``RateLimitResult.error``).

    Example::

        raise bg.RateLimited(retry_after=12.5)   # Retry-After: 13
    """

    status = 429
    code = "rate-limited"
    title = "Too Many Requests"


class AccountLocked(_RetryAfter):
    """429: too many failed logins for this account (from this address); ``retry_after`` is in seconds.

    The default detail says when to try again and nothing of the account ("Too many failed sign-in attempts;
    try again in 5 minutes.").

    Example::

        raise bg.AccountLocked(retry_after=300)
    """

    status = 429
    code = "account-locked"
    title = "Account Temporarily Locked"
    what = "Too many failed sign-in attempts"

    def retry_text(self) -> str:
        """When to try again, in words rounded up: ``"try again in 12 minutes"``."""
        return f"try again in {wait_text(self.retry_after)}"


class AuthenticationError(GuardError):
    """401: the request is not authenticated. Carries ``WWW-Authenticate: Bearer`` (RFC 6750).

    Example::

        raise bg.AuthenticationError()
    """

    status = 401
    code = "unauthenticated"
    title = "Unauthorized"
    bearer_error: ClassVar[str | None] = None

    def __init__(self, detail: str | None = None, *, realm: str | None = None) -> None:
        params = []
        if realm:
            params.append(f'realm="{realm}"')
        if self.bearer_error:
            params.append(f'error="{self.bearer_error}"')
        value = "Bearer" + (" " + ", ".join(params) if params else "")
        super().__init__(detail, headers={"WWW-Authenticate": value})


class InvalidToken(AuthenticationError, ValueError):
    """401: a token is malformed, tampered with, of the wrong kind, or signed by an unknown key.

    Example::

        tm.verify_access("not-a-token")   # raises InvalidToken
    """

    code = "invalid-token"
    title = "Invalid Token"
    bearer_error = "invalid_token"


class TokenExpired(InvalidToken):
    """401: the token was valid but has expired.

    Example::

        tm.verify_access(old_token)   # raises TokenExpired
    """

    code = "token-expired"
    title = "Token Expired"


class TokenReused(InvalidToken):
    """401: a refresh token that was already rotated was presented again; its whole family is revoked.

    Example::

        tm.rotate(already_used_refresh_token)   # raises TokenReused
    """

    code = "token-reused"
    title = "Token Reused"


class InvalidCredentials(AuthenticationError):
    """401: a wrong account name or password; in ``generic`` mode also what a locked account answers.

    Raise ``lock.invalid_credentials()`` on a wrong password, and a ``Lockout(generic=True)`` raises the very
    same error for a locked account, so the two responses cannot be told apart.

    Example::

        if not hasher.verify(stored, password):
            raise lock.invalid_credentials()
    """

    code = "invalid-credentials"
    title = "Invalid Credentials"


class Forbidden(GuardError):
    """403: authenticated, but not allowed (e.g. a missing scope).

    Example::

        raise bg.Forbidden("The token lacks the 'admin' scope.")
    """

    status = 403
    code = "forbidden"
    title = "Forbidden"

    def __init__(self, detail: str | None = None, *, scope: str | None = None) -> None:
        headers = None
        if scope is not None:
            headers = {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'}
        super().__init__(detail, headers=headers)


class CrossOriginRequest(Forbidden):
    """403: a browser sent a state-changing request from another origin (cross-site request forgery).

    What the cross-origin protection middlewares answer; ``detail`` is the decision's reason (safe to show).

    Example::

        from backend_guard.exceptions import CrossOriginRequest
        CrossOriginRequest("Cross-site requests with this method are refused.").code   # 'cross-origin-request'
    """

    code = "cross-origin-request"
    title = "Cross-Origin Request Refused"


class UnknownHost(GuardError):
    """400: the request's ``Host`` is none this server answers for (see ``TrustedHosts``).

    Example::

        from backend_guard.exceptions import UnknownHost
        UnknownHost().status   # 400
    """

    status = 400
    code = "unknown-host"
    title = "Unknown Host"


class InvalidPassword(GuardError, ValueError):
    """400: a password breaks the input policy (empty, too long, not text).

    Example::

        bg.PasswordHasher().hash("")   # raises InvalidPassword
    """

    status = 400
    code = "invalid-password"
    title = "Invalid Password"


class InvalidHash(GuardError, ValueError):
    """A stored hash cannot be parsed or uses an unknown scheme (a server-side data problem, hence 500).

    Example::

        bg.PasswordHasher().verify("garbage", "pw")   # raises InvalidHash
    """

    status = 500
    code = "invalid-hash"
    title = "Internal Server Error"
