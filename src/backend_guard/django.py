"""Django integration: middleware classes for ``MIDDLEWARE``, configured from ``settings.BACKEND_GUARD``.

``GuardMiddleware`` runs the very same WSGI shells as ``backend_guard.wsgi.Guard`` around the rest of Django's
middleware chain: the request's ``META`` is a WSGI environ, Django's response is handed to them through
``start_response`` and their headers are copied back. So Django gets the same policies, byte for byte, as
every other framework, with no second implementation; it works under Django's WSGI and ASGI handlers (Django
runs this sync middleware in a thread under ASGI).

Example (settings.py)::

    MIDDLEWARE = [
        "backend_guard.django.GuardMiddleware",      # first: its headers go on every response
        "django.middleware.common.CommonMiddleware",
        ...
    ]
    BACKEND_GUARD = {
        "cors": {"allow_origins": ["https://app.example.com"]},
        "rate_limit": {"rules": [{"path": "/login/", "limits": "5/minute", "methods": ["POST"]}]},
    }
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._http import ENVIRON_REQUEST_ID
from ._stack import StackParts
from .clientip import RESOLVED_KEY, ResolvedClient
from .config import GuardSettings
from .headers import NONCE_KEY
from .integrations._errors_django import (
    DjangoErrorEnvelopeMiddleware,
    DjangoRequestIdMiddleware,
    csrf_failure,
    csrf_failure_detail,
)

__all__ = [
    "CORSMiddleware",
    "ErrorEnvelopeMiddleware",
    "GuardMiddleware",
    "RateLimitMiddleware",
    "RequestIdMiddleware",
    "SecureHeadersMiddleware",
    "csp_nonce_context",
    "csrf_failure",
    "csrf_failure_detail",
    "settings",
]

ErrorEnvelopeMiddleware = DjangoErrorEnvelopeMiddleware
RequestIdMiddleware = DjangoRequestIdMiddleware

_REQUEST = "backend_guard.django.request"
_RESPONSE = "backend_guard.django.response"
#: Marks an environ that is a Django request's META (csp_nonce and the route decorators read it).
SHELL_KEY = "backend_guard.django"


def settings() -> GuardSettings:
    """``settings.BACKEND_GUARD`` (a dict or a GuardSettings) as GuardSettings.

    Example::

        backend_guard.django.settings().cors.allow_origins
    """
    from django.conf import settings as django_settings

    return GuardSettings.coerce(getattr(django_settings, "BACKEND_GUARD", None), "settings.BACKEND_GUARD")


def csp_nonce_context(request: Any) -> dict[str, Any]:
    """Template context processor: ``{{ csp_nonce }}`` in templates (made lazily, on first use).

    Example (settings.py)::

        TEMPLATES[0]["OPTIONS"]["context_processors"].append("backend_guard.django.csp_nonce_context")
    """
    from .integrations._headers_django import csp_nonce_context as context

    return context(request)


class _Passthrough(list[bytes]):
    """The empty body that stands for "Django's own response object" inside the WSGI shells."""


class GuardMiddleware:
    """The whole stack for Django: RequestId, SecureHeaders, CORS, ErrorEnvelope, RateLimit.

    Put it first in ``MIDDLEWARE``. Views see ``request.request_id``; ``bg.csp_nonce(request)`` gives the
    nonce; route decorators (``@limiter.limit``, ``@lock.protect``, ``@tm.require_auth``, ``@cors_route``,
    ``policy.route()``) work on function and class-based views, sync and async. The parts are at
    ``GuardMiddleware.parts`` once Django has built the middleware.

    Example::

        MIDDLEWARE = ["backend_guard.django.GuardMiddleware", ...]
    """

    sync_capable = True
    async_capable = False
    parts: StackParts | None = None
    #: The stack sections this class runs (None: every enabled one); the one-part classes below narrow it.
    only: tuple[str, ...] | None = None

    def __init__(self, get_response: Any) -> None:
        from .wsgi import Guard as WSGIGuard

        self.get_response = get_response
        config = settings()
        if self.only is not None:
            off = {name: {"enabled": False} for name in _SECTIONS if name not in self.only}
            config = GuardSettings(**{**config.model_dump(exclude_unset=True), **off})
        parts = StackParts.build(config)
        if parts.errors is not None:
            # Django turns view exceptions into responses itself: process_exception shapes them, and the shell
            # rewrites what Django's own handlers produced (its HTML 404/500 pages) for API clients.
            self.errors = DjangoErrorEnvelopeMiddleware(get_response, parts.errors)
        self.stack = WSGIGuard(self._inner, parts=parts)
        self.parts = parts
        type(self).parts = parts

    def _inner(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = environ[_REQUEST]
        resolved = environ.get(RESOLVED_KEY)
        asgi_scope = getattr(request, "scope", None)
        if isinstance(resolved, ResolvedClient) and isinstance(asgi_scope, dict) and self.parts is not None:
            # Under ASGI, Django reads the scheme from the scope: it gets the client the shells resolved.
            self.parts.client_ip.apply_scope(asgi_scope, resolved)
        rid = environ.get(ENVIRON_REQUEST_ID)
        if rid is not None:
            request.request_id = rid
        response = self.get_response(request)
        scope = getattr(request, "scope", None)  # under ASGI, bg.csp_nonce(request) keeps the nonce in the scope
        if isinstance(scope, dict) and scope.get("state") and NONCE_KEY in scope["state"]:
            environ.setdefault(NONCE_KEY, scope["state"][NONCE_KEY])
        environ[_RESPONSE] = response
        start_response(f"{response.status_code} {response.reason_phrase}", list(response.items()))
        return _Passthrough()

    def __call__(self, request: Any) -> Any:
        from django.http import HttpResponse

        environ = request.META
        environ[_REQUEST] = request
        environ[SHELL_KEY] = True
        environ.setdefault("PATH_INFO", request.path_info)
        environ.setdefault("SCRIPT_NAME", "")
        environ.setdefault("REQUEST_METHOD", request.method)
        environ.setdefault("wsgi.url_scheme", request.scheme)
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda chunk: None

        try:
            result = self.stack(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        finally:
            environ.pop(_REQUEST, None)
        response = environ.pop(_RESPONSE, None)
        status = int(captured["status"].split(" ", 1)[0])
        if response is None or body:
            # A shell answered by itself (a preflight, a 429, a rewritten error page): its body, its headers.
            response = HttpResponse(body, status=status)
        for name in list(response.headers):
            del response.headers[name]
        for name, value in captured["headers"]:
            if name.lower() == "vary" and "Vary" in response:
                response["Vary"] = f"{response['Vary']}, {value}"
            else:
                response[name] = value
        return response

    def process_exception(self, request: Any, exception: Exception) -> Any:
        """Shape a view's exception as a problem document (logged once, never leaked)."""
        errors = getattr(self, "errors", None)
        return None if errors is None else errors.process_exception(request, exception)


_SECTIONS = ("request_id", "secure_headers", "cors", "errors", "rate_limit")


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
