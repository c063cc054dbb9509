"""Django's middleware classes, :func:`settings` and :func:`parts`, re-exported by ``backend_guard.django``.

They live here, loaded when first read from ``backend_guard.django`` (Django reads ``GuardMiddleware`` when it
builds ``MIDDLEWARE``), because they build the stack from :class:`~backend_guard.config.GuardSettings`
(pydantic) and run the WSGI shells; a settings module that only names ``csrf_failure`` or
``csp_nonce_context`` loads neither.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

from .._http import ENVIRON_REQUEST_ID
from .._shell_browser import VIEW_KEY
from .._stack import StackParts
from .._stack_guard import StackGuard
from ..clientip import RESOLVED_KEY, ResolvedClient
from ..config import GuardSettings
from ..headers import NONCE_KEY
from ..ratelimit import check_rule_routes
from ..wsgi import Guard as WSGIGuard
from ..wsgi import _shells as wsgi_shells
from ..wsgi._csrf import CrossOriginProtectionMiddleware
from ..wsgi._errors import ErrorEnvelopeMiddleware
from ..wsgi._layer_shell import LayerMiddleware
from ._errors_django import DjangoErrorEnvelopeMiddleware
from ._known_routes import django_routes
from ._route_views import django_view_exempt

__all__ = [
    "CORSMiddleware",
    "GuardMiddleware",
    "RateLimitMiddleware",
    "SecureHeadersMiddleware",
    "parts",
    "settings",
]

_REQUEST = "backend_guard.django.request"
_RESPONSE = "backend_guard.django.response"
#: The cross-origin refusal (a :class:`_Held`) waiting for ``process_view``: answered unless the view is csrf_exempt.
#: Kept in the environ and, under the same name, as an attribute of the request (a later middleware may give the
#: request a new ``META``: ``process_view`` must still find it, or the protected view would run).
_PENDING = "backend_guard.django.csrf_refusal"
#: Marks an environ that is a Django request's META (csp_nonce and the route decorators read it).
SHELL_KEY = "backend_guard.django"


def settings() -> GuardSettings:
    """``settings.BACKEND_GUARD`` (a dict or a GuardSettings) as GuardSettings.

    Example::

        backend_guard.django.settings().cors.allow_origins
    """
    from django.conf import settings as django_settings

    return GuardSettings.coerce(getattr(django_settings, "BACKEND_GUARD", None), "settings.BACKEND_GUARD")


class _Shared:
    """The one StackParts of ``settings.BACKEND_GUARD``: (the settings value, a copy of it, its parts)."""

    lock = threading.Lock()
    built: tuple[Any, Any, StackParts] | None = None

    @classmethod
    def current(cls, raw: Any) -> StackParts | None:
        """The parts built for ``raw``, while it is the same object with the same value; else None."""
        built = cls.built
        if built is not None and built[0] is raw and built[1] == raw:
            return built[2]
        return None


def parts() -> StackParts:
    """The parts configured by ``settings.BACKEND_GUARD``: the same objects ``GuardMiddleware`` uses.

    Built once, on first use (thread-safe), and shared by the middleware and every view: one store, one
    ``limiter`` (a :class:`~backend_guard.ratelimit.RateLimiter`, whether or not ``rate_limit`` limits are
    configured), and ``lockout()``, ``tokens()`` and ``passwords()`` built from the ``lockout``, ``tokens`` and
    ``passwords`` settings on the first call and the same object on every later call. When
    ``settings.BACKEND_GUARD`` is replaced (``override_settings`` in a test), the next call builds them anew.

    Example (views.py)::

        import backend_guard.django

        guard = backend_guard.django.parts()
        lock = guard.lockout()            # BACKEND_GUARD["lockout"]["max_failures"] and the rest apply

        @guard.limiter.limit("10/minute")
        @lock.protect()
        def login(request): ...
    """
    from django.conf import settings as django_settings

    raw = getattr(django_settings, "BACKEND_GUARD", None)
    found = _Shared.current(raw)
    if found is not None:
        return found
    with _Shared.lock:
        found = _Shared.current(raw)
        if found is not None:
            return found
        fresh = StackParts.build(GuardSettings.coerce(raw, "settings.BACKEND_GUARD"))
        _Shared.built = (raw, copy.deepcopy(raw), fresh)
        return fresh


class _Passthrough(list[bytes]):
    """The empty body that stands for "Django's own response object" inside the WSGI shells."""


def _keep_nonce(request: Any, environ: dict[str, Any]) -> None:
    """Under ASGI, ``bg.csp_nonce(request)`` keeps the nonce in the scope: the shells read it from the environ."""
    scope = getattr(request, "scope", None)
    if isinstance(scope, dict) and scope.get("state") and NONCE_KEY in scope["state"]:
        environ.setdefault(NONCE_KEY, scope["state"][NONCE_KEY])


def _shell_environ(request: Any) -> dict[str, Any]:
    """The request's ``META`` as the WSGI environ the shells read (the request itself under a private key)."""
    environ: dict[str, Any] = request.META
    environ[_REQUEST] = request
    environ[SHELL_KEY] = True
    environ[VIEW_KEY] = _view_later  # csrf_exempt views: judged in process_view, on the view Django resolved
    environ.setdefault("PATH_INFO", request.path_info)
    environ.setdefault("SCRIPT_NAME", "")
    environ.setdefault("REQUEST_METHOD", request.method)
    environ.setdefault("wsgi.url_scheme", request.scheme)
    return environ


def _view_later(environ: dict[str, Any]) -> None:
    """No view yet: a middleware listed after ours may still set ``request.urlconf`` (django-hosts, multi-tenant
    apps), so the view is the one Django passes to ``process_view``; until then the request is not exempt."""
    return None


class _Held:
    """A cross-origin refusal (a WSGI app) held for ``process_view``; ``lifted`` once the view is csrf_exempt."""

    __slots__ = ("app", "lifted")

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lifted = False


def _held(request: Any) -> _Held | None:
    """The refusal held for ``request`` and not lifted (on the request itself, else in its ``META``)."""
    held = vars(request).get(_PENDING) or request.META.get(_PENDING)
    return held if isinstance(held, _Held) and not held.lifted else None


class _CrossOriginAtView(CrossOriginProtectionMiddleware):
    """Django's cross-origin protection: a refusal that a ``csrf_exempt`` view could lift waits for the view.

    The decision is taken here, in the stack; ``exempt_paths`` are honoured here. A refusal is kept in the environ
    and answered (with its ``csrf.refused`` event) by :class:`GuardMiddleware` unless ``process_view`` sees an
    exempt view: as Django's own ``CsrfViewMiddleware``, after every middleware's request phase, with the URLconf
    that really dispatches the request. No view (a 404, a middleware answering by itself) keeps the refusal.
    """

    def on_request(self, environ: dict[str, Any]) -> None:
        answer = super().on_request(environ)
        if answer is not None:
            held = environ[_PENDING] = _Held(answer.app)
            setattr(environ[_REQUEST], _PENDING, held)
        return None


#: The WSGI shells GuardMiddleware stacks: the ``wsgi`` ones, with cross-origin protection judged at the view.
_SHELLS = SimpleNamespace(
    **{name: getattr(wsgi_shells, name) for name in wsgi_shells.__all__}
    | {"CrossOriginProtectionMiddleware": _CrossOriginAtView}
)


class _DjangoStack(WSGIGuard):
    """``wsgi.Guard`` over :data:`_SHELLS`: the same fused stack, in the same order."""

    def __init__(self, app: Any, parts: StackParts) -> None:
        StackGuard.__init__(self, app, None, None, parts, _SHELLS, LayerMiddleware, ErrorEnvelopeMiddleware)


class _StartResponse:
    """The ``start_response`` handed to the WSGI shells: keeps the status line and headers they chose."""

    def __init__(self) -> None:
        self.status = ""
        self.headers: list[tuple[str, str]] = []

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        self.status, self.headers = status, headers
        return lambda chunk: None


def _django_response(response: Any, body: bytes, started: _StartResponse) -> Any:
    """Django's own response, or the one a shell answered by itself, with exactly the shells' headers."""
    from django.http import HttpResponse

    status = int(started.status.split(" ", 1)[0])
    if response is None or body:
        # A shell answered by itself (a preflight, a 429, a rewritten error page): its body, its headers.
        response = HttpResponse(body, status=status)
    for name in list(response.headers):
        del response.headers[name]
    for name, value in started.headers:
        if name.lower() == "vary" and "Vary" in response:
            response["Vary"] = f"{response['Vary']}, {value}"
        else:
            response[name] = value
    return response


class GuardMiddleware:
    """The whole stack for Django: RequestId, SecureHeaders, CORS, ErrorEnvelope, RateLimit.

    Put it first in ``MIDDLEWARE``. Views see ``request.request_id``; ``bg.csp_nonce(request)`` gives the
    nonce; route decorators (``@limiter.limit``, ``@lock.protect``, ``@tm.require_auth``, ``@cors_route``,
    ``policy.route()``) work on function and class-based views, sync and async. Its parts are the ones
    :func:`parts` returns (also at ``GuardMiddleware.parts`` once Django has built the middleware). With ``csrf``,
    a view's ``@csrf_exempt`` is judged in :meth:`process_view`, on the view of the URLconf that dispatches the
    request (``request.urlconf`` as a later middleware may set it).

    Example::

        MIDDLEWARE = ["backend_guard.django.GuardMiddleware", ...]
    """

    sync_capable = True
    async_capable = False
    parts: StackParts | None = None
    #: The stack sections this class runs (None: every enabled one); the one-part classes below narrow it.
    only: tuple[str, ...] | None = None

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        shared = parts()
        stack_parts = shared if self.only is None else shared.only(self.only)
        if stack_parts.errors is not None:
            # Django turns view exceptions into responses itself: process_exception shapes them, and the shell
            # rewrites what Django's own handlers produced (its HTML 404/500 pages) for API clients.
            self.errors = DjangoErrorEnvelopeMiddleware(get_response, stack_parts.errors)
        self.stack: WSGIGuard = _DjangoStack(self._inner, stack_parts)
        #: The rate limit rules still to check against the URLconf (on the first request: see _check_routes).
        self._unchecked = (
            stack_parts.rules if stack_parts.rate_limit and stack_parts.settings.rate_limit.check_routes else []
        )
        self.parts = stack_parts
        type(self).parts = stack_parts

    def _inner(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = environ[_REQUEST]
        if self._unchecked:  # inside the stack: its refusal is a problem document with every layer's headers
            self._check_routes(request)
        self._share_client(request, environ)
        rid = environ.get(ENVIRON_REQUEST_ID)
        if rid is not None:
            request.request_id = rid
        response = self.get_response(request)
        _keep_nonce(request, environ)
        held = environ.pop(_PENDING, None)
        if isinstance(held, _Held) and not held.lifted:  # cross-origin, no csrf_exempt view reached (process_view)
            body: Iterable[bytes] = held.app(environ, start_response)
            return body
        environ[_RESPONSE] = response
        start_response(f"{response.status_code} {response.reason_phrase}", list(response.items()))
        return _Passthrough()

    def _share_client(self, request: Any, environ: dict[str, Any]) -> None:
        """Under ASGI, Django reads the scheme from the scope: it gets the client the shells resolved."""
        resolved = environ.get(RESOLVED_KEY)
        asgi_scope = getattr(request, "scope", None)
        if isinstance(resolved, ResolvedClient) and isinstance(asgi_scope, dict) and self.parts is not None:
            self.parts.client_ip.apply_scope(asgi_scope, resolved)

    def _check_routes(self, request: Any) -> None:
        """Refuse a rate limit rule matching no URL pattern: raised on the first request (the URLconf is complete
        by then) and every later one until the rule is fixed (a logged 500); Django's own ``check`` command
        cannot see settings of a middleware it has not built."""
        check_rule_routes(self._unchecked, django_routes(None, request.META.get("SCRIPT_NAME") or ""))
        self._unchecked = []

    def __call__(self, request: Any) -> Any:
        environ = _shell_environ(request)
        start_response = _StartResponse()
        body = self._run_stack(environ, start_response)
        return _django_response(environ.pop(_RESPONSE, None), body, start_response)

    def _run_stack(self, environ: dict[str, Any], start_response: _StartResponse) -> bytes:
        """The body the WSGI shells answer with (empty when it is Django's own response, passed through)."""
        try:
            result = self.stack(environ, start_response)
            try:
                return b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        finally:
            request = environ.pop(_REQUEST, None)
            environ.pop(_PENDING, None)
            if request is not None:
                vars(request).pop(_PENDING, None)  # nothing held outlives the request

    def process_view(self, request: Any, view_func: Any, view_args: Any, view_kwargs: Any) -> Any:
        """Lift a waiting cross-origin refusal when the view Django resolved is marked ``csrf_exempt``.

        Django calls it after every middleware's request phase, with the view of the URLconf that dispatches the
        request (``request.urlconf`` as a later middleware set it). Otherwise the view is not called: a bare 403
        stands in, and the refusal itself (the problem document, with every layer's headers) is answered.

        Example (Django calls it; a cross-site ``POST`` to a view not marked ``csrf_exempt``)::

            middleware.process_view(request, transfer, (), {})   # <HttpResponseForbidden status_code=403>
        """
        held = _held(request)
        if held is None:
            return None
        if django_view_exempt(view_func):
            held.lifted = True
            return None
        from django.http import HttpResponseForbidden

        return HttpResponseForbidden()

    def process_exception(self, request: Any, exception: Exception) -> Any:
        """Shape a view's exception as a problem document (logged once, never leaked)."""
        errors = getattr(self, "errors", None)
        return None if errors is None else errors.process_exception(request, exception)


class SecureHeadersMiddleware(GuardMiddleware):
    """Only the security headers of ``settings.BACKEND_GUARD["secure_headers"]``.

    Example::

        MIDDLEWARE = ["backend_guard.django.SecureHeadersMiddleware", ...]
    """

    only = ("secure_headers",)


class CORSMiddleware(GuardMiddleware):
    """Only CORS, from ``settings.BACKEND_GUARD["cors"]``.

    Example::

        MIDDLEWARE = ["backend_guard.django.CORSMiddleware", ...]
    """

    only = ("cors",)


class RateLimitMiddleware(GuardMiddleware):
    """Only the rate limit rules of ``settings.BACKEND_GUARD["rate_limit"]``.

    Example::

        MIDDLEWARE = ["backend_guard.django.RateLimitMiddleware", ...]
    """

    only = ("rate_limit",)
