"""The route side of access tokens: :meth:`~backend_guard.tokens.TokenManager.require_auth` and its FastAPI twin.

What lives here: the hooks (on the shared :mod:`backend_guard._routes` mechanism) that read
``Authorization: Bearer <token>``, have the manager verify it, check the route's scopes against the token's
space-separated ``scope`` claim (RFC 9068) and offer the claims to the route; and, for FastAPI, the declaration
of the ``bearerAuth`` security scheme in the OpenAPI document. Which token is valid is the manager's decision.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from .. import events
from .._routes import RouteCall, RouteHooks, fastapi_dependency, guard_route
from ..clientip import ClientIP
from ..errors import ErrorPolicy
from ..exceptions import AuthenticationError, Forbidden, GuardError

__all__ = [
    "AccessVerifier",
    "AuthHooks",
    "TokenSource",
    "auth_dependency",
    "bearer_token",
    "refused",
    "require_auth",
]

_F = TypeVar("_F", bound=Callable[..., Any])


class AccessVerifier(Protocol):
    """What the hooks need of a token manager: both ways of verifying an access token.

    Example::

        hooks = AuthHooks(tm, "read")   # tm: a TokenManager
    """

    def verify_access(self, token: str | bytes) -> dict[str, Any]:
        """The claims of a valid access token."""

    async def averify_access(self, token: str | bytes) -> dict[str, Any]:
        """Async twin of :meth:`verify_access`."""


def bearer_token(call: RouteCall) -> str:
    """The token of ``Authorization: Bearer <token>``; AuthenticationError for no or a malformed header.

    Example::

        token = bearer_token(call)
    """
    value = call.view.header("authorization") or ""
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise AuthenticationError("A bearer token is required.")
    return token


#: How the hooks find the access token of a call: the bearer header by default (cookies: ``_cookies.py``).
TokenSource = Callable[[RouteCall], str]


class AuthHooks(RouteHooks):
    """Route hooks of :meth:`TokenManager.require_auth` (built on the shared ``_routes`` mechanism).

    ``token_of`` finds the call's access token (or raises the refusal): ``Authorization: Bearer`` by default;
    :class:`~backend_guard.tokens.TokenCookies` passes its own, which also reads the access cookie.

    Example::

        decorator = guard_route(AuthHooks(tm, ["admin"]))
    """

    def __init__(self, tm: AccessVerifier, scopes: str | Sequence[str], token_of: TokenSource | None = None) -> None:
        self.tm = tm
        self.scopes = tuple(scopes.split() if isinstance(scopes, str) else scopes)
        self.statuses = (401, 403) if self.scopes else (401,)
        self.token_of: TokenSource = token_of or bearer_token

    def fastapi_parameters(self) -> list[inspect.Parameter]:
        """The ``bearerAuth`` security parameter, for FastAPI's OpenAPI document (none without FastAPI)."""
        try:
            from ..integrations._fastapi_security import bearer_parameter
        except ImportError:  # no FastAPI: nothing to declare
            return []
        return [bearer_parameter(self.scopes)]

    def _grant(self, call: RouteCall, claims: dict[str, Any]) -> None:
        if self.scopes:
            granted = claims.get("scope")
            have = set(granted.split()) if isinstance(granted, str) else set()
            if not have.issuperset(self.scopes):
                raise Forbidden("The token lacks a required scope.", scope=" ".join(self.scopes))
        call.set_attr("auth", claims)

    def before(self, call: RouteCall) -> None:
        """Verify the bearer token and its scopes; the claims go to the route as ``auth``."""
        try:
            self._grant(call, self.tm.verify_access(self.token_of(call)))
        except (AuthenticationError, Forbidden) as exc:
            refused(exc)
            raise

    async def abefore(self, call: RouteCall) -> None:
        """Async twin of :meth:`before`."""
        try:
            self._grant(call, await self.tm.averify_access(self.token_of(call)))
        except (AuthenticationError, Forbidden) as exc:
            refused(exc)
            raise


def refused(exc: GuardError) -> None:
    """Publish ``tokens.refused`` for a route's refusal ``exc`` (401 or 403): its ``code`` as the ``reason``
    (``unauthenticated``, ``invalid-token``, ``token-expired``, ``forbidden``, ...) and its ``status``; never the
    token, nor a subject (a refused token's claims are not to be trusted).

    Example::

        refused(InvalidToken("The token is invalid."))
    """
    if events.listening("tokens"):
        events.emit("tokens", "tokens.refused", reason=exc.code, status=exc.status)


def require_auth(
    tm: AccessVerifier,
    scopes: str | Sequence[str] = (),
    token_of: TokenSource | None = None,
    *,
    client_ip: ClientIP | None = None,
    errors: ErrorPolicy | None = None,
) -> Callable[[_F], _F]:
    """The decorator of :meth:`TokenManager.require_auth`: a valid access token of ``tm`` with ``scopes``; its
    401/403 rendered under ``errors`` (default: problem documents).

    Example::

        @require_auth(tm, scopes=["admin"])
        async def admin(request): ...
    """
    return guard_route(AuthHooks(tm, scopes, token_of), client_ip=client_ip, errors=errors)


def auth_dependency(
    tm: AccessVerifier,
    scopes: str | Sequence[str] = (),
    token_of: TokenSource | None = None,
    *,
    client_ip: ClientIP | None = None,
) -> Callable[..., Any]:
    """The FastAPI dependency of :meth:`TokenManager.dependency`; it returns the claims (HTTP and WebSocket routes:
    it asks for the ``HTTPConnection``, which FastAPI fills on both).

    Example::

        claims: dict = Depends(auth_dependency(tm, "read"))
    """
    from fastapi import Depends
    from starlette.requests import HTTPConnection

    inner = fastapi_dependency(AuthHooks(tm, scopes, token_of), client_ip=client_ip)

    async def dependency(request: HTTPConnection, checked: Any = Depends(inner)) -> dict[str, Any]:  # noqa: B008
        claims: dict[str, Any] = request.state.auth
        return claims

    dependency.__annotations__ = {"request": HTTPConnection, "checked": Any, "return": dict[str, Any]}
    return dependency
