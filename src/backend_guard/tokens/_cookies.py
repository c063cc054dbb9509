"""Access and refresh tokens in hardened cookies, for browser apps: :class:`TokenCookies`.

What lives here: the companion of a :class:`~backend_guard.tokens.TokenManager` that puts its token pairs in
cookies, reads them back and clears them, and the decisions that come with cookies: which token a request
presents (header, cookie, or both, and what two different ones mean), the cross-origin check a cookie-borne
credential needs, and the refusal at start-up of cookie mode without that protection. Parsing and writing the
cookies themselves is ``_cookie_jar.py``; which token is valid is still the manager's decision.

Why two prefixes: ``__Host-`` makes the browser refuse the cookie unless it is ``Secure``, has ``Path=/`` and no
``Domain``, so no sibling subdomain can set or overwrite it. The refresh cookie must be sent only to the refresh
endpoint (``Path=<refresh path>``), which ``__Host-`` forbids, so it takes ``__Secure-`` (``Secure`` required,
any path) and ``SameSite=Strict``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, TypeVar

from .._adapter import adapter_named
from .._check import check_instance, optional
from .._logging import log_server_error
from .._request_ids import request_id_of
from .._routes import RouteCall, declare_problem_statuses, native_problem
from ..clientip import ClientIP
from ..csrf import CrossOriginProtection
from ..csrf._policy import publish_refusal
from ..errors import ErrorPolicy
from ..exceptions import (
    AuthenticationError,
    ConfigurationError,
    CrossOriginRequest,
    Forbidden,
    GuardError,
    InvalidToken,
    StorageError,
)
from ..request import RequestView, framework_of, framework_view
from ._claims import TokenPair
from ._cookie_jar import CookieSpec, check_cookie_options, cookie_value, cookie_values, write_cookies
from ._manager import TokenManager
from ._routes import auth_dependency, bearer_token, require_auth

__all__ = ["TokenCookies"]

_F = TypeVar("_F", bound=Callable[..., Any])

Accept = Literal["header", "cookie", "both"]
_WS_SCHEMES = ("ws", "wss")
#: The largest cookie (name and value) browsers keep: Chromium and Firefox drop a larger one (RFC 6265 asks them
#: to keep at least this much).
MAX_COOKIE_BYTES = 4096
#: The method refresh and logout are judged as, whatever method the app serves them on: both change state (a
#: GET route would otherwise let a sibling subdomain's ``<img>``, which the Strict refresh cookie reaches, rotate
#: the tokens or end the login).
_STATE_CHANGE = "POST"
#: What a route reading the access cookie can answer besides the token's own statuses: a cross-origin 403.
_COOKIE_STATUSES = (401, 403)


#: Logout refusals that keep the cookies: a forged cross-origin request, too many refresh cookies to end them all,
#: and a store that could not end the login.
_KEPT = (Forbidden, StorageError)

#: How many distinct refresh cookie values one logout ends at most. A browser sends one, or a few when a sibling
#: subdomain planted more (cookie tossing); each costs a signature check and, when valid, a store round trip.
#: Beyond it the logout is refused (403, nothing ended), never answered 204 with the user's own login alive.
_MAX_LOGOUT_TOKENS = 32


class TokenCookies:
    """Set, read and clear a :class:`~backend_guard.tokens.TokenManager`'s tokens as cookies (browser apps).

    The access token goes in ``__Host-access`` (``Secure``, ``HttpOnly``, ``Path=/``, ``SameSite=Lax``), the
    refresh token in ``__Secure-refresh`` (``Secure``, ``HttpOnly``, ``Path=<refresh_path>``,
    ``SameSite=Strict``), each with ``Max-Age`` from its token's lifetime.

    :param tm: the token manager.
    :param refresh_path: the path of the app's refresh (and logout) endpoint: the only path the browser sends
        the refresh cookie to.
    :param accept: where :meth:`require_auth` and :meth:`dependency` look for the access token: ``"cookie"``,
        ``"header"`` (``Authorization: Bearer``) or ``"both"`` (default). A request with a header and a cookie
        holding *different* tokens is refused (401): it is not clear whose request it is.
    :param csrf: the :class:`~backend_guard.CrossOriginProtection` checked here on every request authenticated by
        a cookie (the token routes, WebSocket handshakes included, :meth:`refresh` and :meth:`logout`), whatever
        middleware also runs: a refusal is a 403 ``cross-origin-request``. Required: cookie mode without
        cross-origin protection is a ConfigurationError at start-up. ``parts.token_cookies()`` (settings
        ``token_cookies``) passes the stack's own policy.
    :param client_ip: the :class:`~backend_guard.ClientIP` resolving the request's scheme and host through trusted
        proxies (a request a ProxyHeaders layer already resolved is not resolved again). Behind a proxy that
        terminates TLS, without it the request's own origin is ``http://...`` and browsers without Fetch
        Metadata are refused. ``parts.token_cookies()`` passes the stack's ``trusted_proxies``.
    :param access_cookie, refresh_cookie: the cookie names; they must keep their ``__Host-`` and ``__Secure-``
        prefixes.
    :param errors: the :class:`~backend_guard.errors.ErrorPolicy` the refusals of :meth:`refresh`,
        :meth:`logout` and :meth:`require_auth` are rendered with (default: the manager's ``errors``);
        ``parts.token_cookies()`` passes the settings' ``errors``.

    Example::

        cookies = bg.TokenCookies(tm, refresh_path="/auth/refresh", csrf=bg.CrossOriginProtection())
        cookies.set(response, tm.issue("user-42"))          # at login, on the framework's response
    """

    def __init__(
        self,
        tm: TokenManager,
        *,
        refresh_path: str = "/auth/refresh",
        accept: Accept = "both",
        csrf: CrossOriginProtection | None = None,
        client_ip: ClientIP | None = None,
        access_cookie: str = "__Host-access",
        refresh_cookie: str = "__Secure-refresh",
        errors: ErrorPolicy | None = None,
    ) -> None:
        if not isinstance(tm, TokenManager):
            raise ConfigurationError(f"tm must be a TokenManager, not {type(tm).__name__}.")
        check_cookie_options(refresh_path, accept, access_cookie, refresh_cookie)
        self.tm = tm
        self.refresh_path = refresh_path
        self.accept: Accept = accept
        self.csrf: CrossOriginProtection = _checked_protection(csrf)
        self.client_ip: ClientIP | None = optional(check_instance, "client_ip", client_ip, ClientIP)
        self.access_cookie = access_cookie
        self.refresh_cookie = refresh_cookie
        #: The policy refusals (:meth:`refresh`, :meth:`logout`, :meth:`require_auth`) are rendered with: the
        #: manager's unless given (None: problem documents).
        self.errors = optional(check_instance, "errors", errors, ErrorPolicy) or tm.errors

    def __repr__(self) -> str:
        return f"TokenCookies(refresh_path={self.refresh_path!r}, accept={self.accept!r})"

    # -- writing ------------------------------------------------------------------------------------------------

    def specs(self, pair: TokenPair) -> list[CookieSpec]:
        """The two cookies that carry ``pair`` (for a custom shell; :meth:`set` writes them).

        Example::

            [spec.header() for spec in cookies.specs(pair)]
        """
        refresh_age = max(0, _expiry(pair.refresh_token) - int(self.tm.clock()))
        specs = [
            CookieSpec(self.access_cookie, pair.access_token, pair.expires_in, "/", "Lax"),
            CookieSpec(self.refresh_cookie, pair.refresh_token, refresh_age, self.refresh_path, "Strict"),
        ]
        for spec in specs:
            if len(spec.name) + len(spec.value) > MAX_COOKIE_BYTES:
                raise ConfigurationError(
                    f"The {spec.name} cookie would be {len(spec.name) + len(spec.value)} bytes: browsers drop a"
                    f" cookie over {MAX_COOKIE_BYTES} (name and value), and the login would silently not stick."
                    " Keep the subject and claims short (an id, not a profile)."
                )
        return specs

    def cleared_specs(self) -> list[CookieSpec]:
        """The two cookies that remove the tokens (empty values, ``Max-Age=0``, same names and paths).

        Example::

            [spec.header() for spec in cookies.cleared_specs()]
        """
        return [
            CookieSpec(self.access_cookie, "", 0, "/", "Lax"),
            CookieSpec(self.refresh_cookie, "", 0, self.refresh_path, "Strict"),
        ]

    def set(self, response: Any, pair: TokenPair) -> None:
        """Put ``pair`` on a Starlette/FastAPI, Flask or Django response as the two cookies (after a login).

        Example::

            response = JSONResponse({"user": "user-42"})
            cookies.set(response, tm.issue("user-42"))

        A pair too large for a browser cookie is a ConfigurationError (see :meth:`specs`), and the login it began
        is ended first (revoked in the store): nothing is left behind, and a refresh refused this way leaves no
        spent token for a retry to present as a reuse.
        """
        write_cookies(response, self._fitting_specs(pair))

    def _fitting_specs(self, pair: TokenPair) -> list[CookieSpec]:
        """:meth:`specs`; for a pair too large for browser cookies, its login is ended before the refusal."""
        try:
            return self.specs(pair)
        except ConfigurationError:
            with contextlib.suppress(GuardError):  # a store failure here changes nothing of the answer
                self.tm.revoke(pair.refresh_token)
            raise

    async def _afitting_specs(self, pair: TokenPair) -> list[CookieSpec]:
        """Async twin of :meth:`_fitting_specs` (the store is not asked from the event loop's thread)."""
        try:
            return self.specs(pair)
        except ConfigurationError:
            with contextlib.suppress(GuardError):
                await self.tm.arevoke(pair.refresh_token)
            raise

    def clear(self, response: Any) -> None:
        """Remove both cookies in the browser (on a Starlette/FastAPI, Flask or Django response).

        Example::

            cookies.clear(response)
        """
        write_cookies(response, self.cleared_specs())

    # -- reading ------------------------------------------------------------------------------------------------

    def access_token(self, view: RequestView) -> str | None:
        """The access cookie's value in a request (None when absent; InvalidToken for a conflicting duplicate).

        No cross-origin check: to authenticate a request, use :meth:`presented` (or :meth:`require_auth` and
        :meth:`dependency`), which checks ``csrf`` before it returns a cookie's token.

        Example::

            token = cookies.access_token(view_from_request(request))
        """
        return cookie_value(view.header_all("cookie"), self.access_cookie) or None

    def refresh_token(self, view: RequestView) -> str | None:
        """The refresh cookie's value in a request (None when absent; InvalidToken for a conflicting duplicate).

        No cross-origin check: :meth:`refresh` and :meth:`logout` check ``csrf`` before they read it.

        Example::

            token = cookies.refresh_token(view_from_request(request))
        """
        return cookie_value(view.header_all("cookie"), self.refresh_cookie) or None

    def presented(self, view: RequestView) -> str:
        """The access token a request presents, per ``accept``; the cookie only after the cross-origin check.

        Refusals: no token (401), a malformed ``Authorization`` header (401), a header and a cookie with
        different tokens (401), a cookie sent from another origin (403).

        Example::

            claims = tm.verify_access(cookies.presented(view))
        """
        header = _header_token(view, self.accept == "both") if self.accept != "cookie" else None
        cookie = self.access_token(view) if self.accept != "header" else None
        if header is not None and cookie is not None and header != cookie:
            raise InvalidToken("The request carries two different access tokens.")
        if header is not None:
            return header
        if cookie is None:
            raise AuthenticationError("An access token is required.")
        self.check_origin(view)
        return cookie

    def check_origin(self, view: RequestView) -> None:
        """Refuse (403 ``cross-origin-request``) a request the ``csrf`` policy says came from another origin.

        A WebSocket handshake (scheme ``ws`` or ``wss``) is judged as an unsafe method: it is a ``GET`` that opens
        a channel the browser authenticates with the user's cookies (cross-site WebSocket hijacking).

        Example::

            cookies.check_origin(cookies.view(request))
        """
        self._judge(view, view.method)

    def _judge(self, view: RequestView, method: str) -> None:
        """:meth:`check_origin` as if the request's method were ``method``."""
        site, origin, host = view.header_all("sec-fetch-site"), view.header_all("origin"), view.host or ""
        websocket = _is_handshake(view)
        if websocket:
            decision = self.csrf.check_websocket(scheme=view.scheme, host=host, sec_fetch_site=site, origin=origin)
        else:
            decision = self.csrf.check(method, scheme=view.scheme, host=host, sec_fetch_site=site, origin=origin)
        if not decision.allowed:
            publish_refusal(decision, websocket=websocket)
            raise CrossOriginRequest(decision.reason)

    def view(self, request: Any) -> RequestView:
        """The view of a Starlette/FastAPI, Flask or Django request, its scheme and host resolved through
        ``client_ip`` (for :meth:`check_origin` on a login route).

        Example::

            cookies.check_origin(cookies.view(request))
        """
        return _framework_view(request, self.client_ip)[1]

    # -- routes -------------------------------------------------------------------------------------------------

    def _route_token(self, call: RouteCall) -> str:
        return self.presented(call.view)

    def require_auth(self, scopes: str | Sequence[str] = ()) -> Callable[[_F], _F]:
        """:meth:`TokenManager.require_auth` reading the token per ``accept`` (header, cookie or both).

        Example::

            @app.get("/me")
            @cookies.require_auth()
            async def me(request: Request):
                return {"user": request.state.auth["sub"]}
        """
        decorate = require_auth(self.tm, scopes, self._route_token, client_ip=self.client_ip, errors=self.errors)
        if self.accept == "header":
            return decorate

        def with_cross_origin(func: _F) -> _F:
            guarded = decorate(func)
            declare_problem_statuses(guarded, _COOKIE_STATUSES)  # the cookie's cross-origin 403, in the OpenAPI
            return guarded

        return with_cross_origin

    def dependency(self, scopes: str | Sequence[str] = ()) -> Callable[..., Any]:
        """The FastAPI dependency twin of :meth:`require_auth`; it returns the claims.

        Example::

            async def me(claims: dict = Depends(cookies.dependency())): ...
        """
        dependency = auth_dependency(self.tm, scopes, self._route_token, client_ip=self.client_ip)
        if self.accept != "header":
            declare_problem_statuses(dependency, _COOKIE_STATUSES)
        return dependency

    # -- refresh and logout endpoints ---------------------------------------------------------------------------

    def _refresh_input(self, request: Any) -> tuple[str, str]:
        """(framework, refresh token) of a refresh request, after the cross-origin check; a GuardError else."""
        framework, view = _framework_view(request, self.client_ip)
        self._judge(view, _STATE_CHANGE)
        token = self.refresh_token(view)
        if token is None:
            raise AuthenticationError("A refresh cookie is required.")
        return framework, token

    def refresh(self, request: Any) -> Any:
        """The whole answer of a refresh endpoint, in the request's framework: rotate the refresh cookie's token.

        200 ``{"expires_in": <seconds>}`` with both cookies re-set; a refused rotation (reuse detected, session
        ended, a bad or missing cookie) is a 401 problem+json that clears both cookies; a cross-origin request a
        403, whatever method the route is served on (a refresh changes state: judged as a ``POST``). Tokens never
        appear in a body.

        Example::

            @app.post("/auth/refresh")
            def refresh(request: Request):
                return cookies.refresh(request)
        """
        try:
            framework, token = self._refresh_input(request)
            pair = self.tm.rotate(token)
            return self._refreshed(framework, pair, self._fitting_specs(pair))
        except GuardError as exc:
            return self._refused(request, exc)

    async def arefresh(self, request: Any) -> Any:
        """Async twin of :meth:`refresh` (the store is not asked from the event loop's thread).

        Example::

            @app.post("/auth/refresh")
            async def refresh(request: Request):
                return await cookies.arefresh(request)
        """
        try:
            framework, token = self._refresh_input(request)
            pair = await self.tm.arotate(token)
            return self._refreshed(framework, pair, await self._afitting_specs(pair))
        except GuardError as exc:
            return self._refused(request, exc)

    def logout(self, request: Any) -> Any:
        """The whole answer of a logout endpoint: end the refresh cookie's login and clear both cookies (204).

        Serve it on ``refresh_path`` (the refresh cookie is only sent there). A missing or invalid cookie still
        clears them; a cross-origin request is refused (403, whatever the route's method: judged as a ``POST``) and
        a store failure is a 503; both clear nothing.
        When the browser sends the refresh cookie more than once (a sibling subdomain planted one), the login of
        each valid value ends: the user's own is among them. More than 32 distinct values (a flood of planted
        cookies) are refused with a 403 that ends nothing, rather than a 204 that might leave the user's login alive.

        Example::

            @app.post("/auth/refresh/logout")   # under refresh_path="/auth/refresh"
            def logout(request: Request):
                return cookies.logout(request)
        """
        try:
            framework, tokens = self._logout_input(request)
            for token in tokens:
                _quietly(self.tm.revoke, token)
        except _KEPT as exc:
            return self._refused(request, exc)
        return self._logged_out(framework)

    async def alogout(self, request: Any) -> Any:
        """Async twin of :meth:`logout`.

        Example::

            return await cookies.alogout(request)
        """
        try:
            framework, tokens = self._logout_input(request)
            for token in tokens:
                await _aquietly(self.tm.arevoke, token)
        except _KEPT as exc:
            return self._refused(request, exc)
        return self._logged_out(framework)

    def _logout_input(self, request: Any) -> tuple[str, list[str]]:
        """(framework, every refresh cookie value) of a logout request, after the cross-origin check."""
        framework, view = _framework_view(request, self.client_ip)
        self._judge(view, _STATE_CHANGE)
        tokens = cookie_values(view.header_all("cookie"), self.refresh_cookie, _MAX_LOGOUT_TOKENS + 1)
        if len(tokens) > _MAX_LOGOUT_TOKENS:
            raise Forbidden(
                f"Logout refused: the browser sent more than {_MAX_LOGOUT_TOKENS} refresh cookies (cookies planted by"
                " another site); no login was ended."
            )
        return framework, tokens

    def _refreshed(self, framework: str, pair: TokenPair, specs: list[CookieSpec]) -> Any:
        response = _json_response(framework, b'{"expires_in":%d}' % pair.expires_in, 200)
        write_cookies(response, specs)
        return response

    def _logged_out(self, framework: str) -> Any:
        response = _json_response(framework, b"", 204)
        self.clear(response)
        return response

    def _refused(self, request: Any, exc: GuardError) -> Any:
        """The problem response of a refusal; an authentication failure also clears both cookies."""
        framework, view = _framework_view(request, self.client_ip)
        if isinstance(exc, ConfigurationError):  # the operator's to fix: logged, as every 500 the envelope answers
            log_server_error(
                exc, request_id=request_id_of(request), method=view.method, route=view.route_or_path, status=500
            )
        response = native_problem(framework, exc, request_id_of(request), None, self.errors)
        if isinstance(exc, AuthenticationError):
            self.clear(response)
        return response


def _is_handshake(view: RequestView) -> bool:
    """True for a WebSocket handshake: a ``ws``/``wss`` scheme (ASGI), or, whatever scheme a server reports, an
    ``Upgrade: websocket`` header (which no page's script can set on a plain request)."""
    if view.scheme in _WS_SCHEMES:
        return True
    return any("websocket" in value.lower() for value in view.header_all("upgrade"))


def _header_token(view: RequestView, other_schemes_are_none: bool) -> str | None:
    """The bearer token of the request's ``Authorization`` header, None when it has none (401 if malformed).

    With ``other_schemes_are_none`` (cookies accepted too), a header of another scheme (``Basic`` credentials a
    browser keeps for a staging proxy) is no token rather than a 401, so the cookie still authenticates.
    """
    values = view.header_all("authorization")
    if not values:
        return None
    if other_schemes_are_none and len(values) == 1 and values[0].strip().partition(" ")[0].lower() != "bearer":
        return None
    return bearer_token(RouteCall(view=view, request=None, framework=""))


def _quietly(revoke: Callable[[str], bool], token: str) -> None:
    """End the login of ``token``; a value that is no valid refresh token (forged, planted, empty) ends nothing."""
    try:
        revoke(token)
    except StorageError:
        raise  # the login may still be alive: a 503, the cookies kept
    except GuardError:
        pass


async def _aquietly(arevoke: Callable[[str], Awaitable[bool]], token: str) -> None:
    """Async twin of :func:`_quietly`."""
    try:
        await arevoke(token)
    except StorageError:
        raise  # the login may still be alive: a 503, the cookies kept
    except GuardError:
        pass


def _framework_view(request: Any, client_ip: ClientIP | None) -> tuple[str, RequestView]:
    framework = framework_of(request)
    if framework is None:
        raise TypeError(f"Not a request object backend_guard knows: {type(request).__name__}")
    return framework, framework_view(framework, request, client_ip)


def _json_response(framework: str, body: bytes, status: int) -> Any:
    """A ``no-store`` JSON response of the framework's own type (tokens set on it must not be cached)."""
    return adapter_named(framework).no_store_json(body, status)


def _expiry(token: str) -> int:
    """The ``exp`` of a token the manager has just signed (read, not verified: it is our own)."""
    import jwt  # already loaded: the manager that signed the token imported it

    claims = jwt.decode(token, options={"verify_signature": False})
    return int(claims["exp"])


def _checked_protection(csrf: object) -> CrossOriginProtection:
    if csrf is None:
        raise ConfigurationError(
            "Tokens in cookies need cross-origin request protection: pass csrf=bg.CrossOriginProtection(...) (the"
            " same policy as your CrossOriginProtectionMiddleware, if any), or build the cookies from the settings"
            " with parts.token_cookies() (GuardSettings(token_cookies=...) switches csrf on)."
        )
    if not isinstance(csrf, CrossOriginProtection):
        raise ConfigurationError(f"csrf must be a CrossOriginProtection, not {type(csrf).__name__}.")
    return csrf
