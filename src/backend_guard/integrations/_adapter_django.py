"""The Django adapter: what route decorators need to know of Django's requests and responses.

One object, :data:`ADAPTER`, implements :class:`~backend_guard._adapter.FrameworkAdapter`; the table in
``_adapter.py`` lists it. Django is never imported here at module level: a request is recognised through
``sys.modules`` (a framework never imported made no request), and ``HttpResponse`` is imported when a response
is first built.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._http import text_headers
from .._view import RequestView, scope_view, view_from_environ
from ..clientip import ClientIP
from ._lockout_django import watch_login

if TYPE_CHECKING:
    from ..tokens._cookie_jar import CookieSpec

__all__ = ["ADAPTER", "DjangoAdapter"]


class DjangoAdapter:
    """Django requests (``django.http.HttpRequest``, WSGI or ASGI) and responses.

    Example::

        ADAPTER.view(request, None).route   # "/users/<int:id>/"
    """

    name: str = "django"
    #: The root modules of this framework's response classes (a response's MRO is matched against them).
    response_modules: tuple[str, ...] = ("django",)
    #: No request context to look in: Django passes the request to the view.
    contextual: bool = False
    #: Its responses keep header fields as text: :meth:`set_raw_headers` decodes the pairs.
    raw_headers: bool = False

    def owns(self, obj: Any) -> bool:
        """True for a Django request."""
        module = sys.modules.get("django.http")
        return module is not None and isinstance(obj, module.HttpRequest)

    def current_request(self) -> Any:
        """None: Django keeps no request context."""
        return None

    def view(self, request: Any, client_ip: ClientIP | None) -> RequestView:
        """The lazy view of the request's scope (ASGI) or ``META`` (WSGI), with the route Django resolved.

        Its path is ``META``'s ``SCRIPT_NAME + PATH_INFO`` under either handler: the path
        ``GuardMiddleware``'s shells match (``request.path`` under ASGI is the scope's path, without the script
        name when the server stripped the prefix or ``FORCE_SCRIPT_NAME`` sets it)."""
        route = self.route_of(request)
        scope = getattr(request, "scope", None)  # Django's ASGIRequest keeps its scope
        if scope is None:
            return view_from_environ(getattr(request, "META", {}), client_ip, route=route)
        meta = request.META  # as the shells read it: a later middleware may rewrite request.path_info
        return scope_view(
            scope, client_ip, (meta.get("SCRIPT_NAME") or "") + meta.get("PATH_INFO", request.path_info), route
        )

    def route_of(self, request: Any) -> str | None:
        """The route pattern Django resolved (``users/<int:id>/``) as a path (``/users/<int:id>/``), if any."""
        match = getattr(request, "resolver_match", None)
        route = getattr(match, "route", None) if match is not None else None
        return None if route is None else "/" + route.lstrip("/")

    def scope_of(self, request: Any) -> Any:
        """The request's ASGI scope under Django's ASGI handler, else None."""
        return getattr(request, "scope", None)

    def environ_of(self, request: Any) -> Any:
        """The request's WSGI environ (``META``)."""
        environ = getattr(request, "environ", None)
        return getattr(request, "META", None) if environ is None else environ

    def set_attr(self, request: Any, name: str, value: Any) -> None:
        """Offer ``value`` to the view as ``request.<name>``."""
        setattr(request, name, value)

    def bare_response(self, body: bytes, status: int) -> Any:
        """A Django ``HttpResponse`` with ``body`` and ``status``."""
        from django.http import HttpResponse

        return HttpResponse(body, status=status)

    def no_store_json(self, body: bytes, status: int) -> Any:
        """A JSON response with ``body`` and ``Cache-Control: no-store`` (no ``Content-Type`` when empty)."""
        from django.http import HttpResponse

        response = HttpResponse(body, status=status, content_type="application/json")
        response["Cache-Control"] = "no-store"
        if not body:
            del response["Content-Type"]
        return response

    def status_and_target(self, result: Any, injected_response: Any) -> tuple[int, Any, Any]:
        """(status, response object to put headers on, the result to return)."""
        status = getattr(result, "status_code", None)
        if isinstance(status, int):
            return status, result, result
        return 200, None, result

    def set_headers(self, target: Any, headers: list[tuple[str, str]]) -> None:
        """``response.headers[name] = value`` (what ``response[name] = value`` does), each replacing a header of
        the same name."""
        fields = target.headers
        for k, v in headers:
            fields[k] = v

    def set_raw_headers(self, target: Any, pairs: list[tuple[bytes, bytes]]) -> None:
        """:meth:`set_headers` with the pairs decoded (latin-1)."""
        self.set_headers(target, text_headers(pairs))

    def set_cookies(self, response: Any, specs: Sequence[CookieSpec]) -> None:
        """One cookie per spec through ``response.set_cookie`` (Django keeps repeated ``Set-Cookie`` fields only
        in ``response.cookies``)."""
        for spec in specs:
            response.set_cookie(
                spec.name, spec.value, max_age=spec.max_age, path=spec.path, secure=True, httponly=True,
                samesite=spec.samesite,
            )  # fmt: skip

    def read_body(self, request: Any, limit: int) -> bytes | None:
        """``request.body``: cached, and Django parses ``request.POST`` from these bytes; None when Django already
        parsed a multipart form from the stream (for the CSRF check): no one can read the raw bytes now."""
        try:
            body: bytes = request.body
        except _django().RawPostDataException:
            return None
        return body

    async def aread_body(self, request: Any, limit: int) -> bytes | None:
        """:meth:`read_body` (an async view's body is already read in full)."""
        return self.read_body(request, limit)

    def form_values(self, request: Any, field: str, limit: int) -> list[Any]:
        """``request.POST.getlist(field)``, the raw bytes cached first so the view can still read
        ``request.body`` (unless Django already parsed the form from the stream, for the CSRF check)."""
        with contextlib.suppress(_django().RawPostDataException):
            request.body  # noqa: B018  (the read caches the body)
        return list(request.POST.getlist(field))

    async def aform_values(self, request: Any, field: str, limit: int) -> list[Any]:
        """:meth:`form_values`."""
        return self.form_values(request, field, limit)

    def parsed_json(self, request: Any) -> tuple[Any] | None:
        """None: Django parses no JSON of its own (routes parse ``request.body``)."""
        return None

    def body_charset(self, request: Any) -> str | None:
        """The Content-Type's charset, else ``DEFAULT_CHARSET``: what Django REST framework's JSONParser decodes
        the body with."""
        charset: str = request.encoding or _django().settings.DEFAULT_CHARSET
        return charset

    def body_too_large(self, exc: BaseException) -> bool:
        """True for Django's ``RequestDataTooBig`` (``DATA_UPLOAD_MAX_MEMORY_SIZE``)."""
        return type(exc).__name__ == "RequestDataTooBig"

    def watch_login(self, request: Any, attempt: Any) -> None:
        """Django's ``user_logged_in`` / ``user_login_failed`` signals for this request settle ``attempt``."""
        watch_login(request, attempt)

    def offer_nonce(self, request: Any, nonce: str) -> None:
        """``request.csp_nonce``, for the templates."""
        request.csp_nonce = nonce

    def headers_on_error(self, request: Any, exc: BaseException, headers: list[tuple[str, str]]) -> None:
        """Nothing: an exception's response is Django's handler's."""


class _Django:
    """The Django names the adapter uses on every request, imported once (on the first request: never at import)."""

    def __init__(self) -> None:
        from django.conf import settings
        from django.http import RawPostDataException

        self.settings = settings
        self.RawPostDataException = RawPostDataException  # noqa: N815  (Django's name)


@functools.cache
def _django() -> _Django:
    """The :class:`_Django` names, imported on first use."""
    return _Django()


#: The one Django adapter (listed in ``_adapter.ADAPTERS``).
ADAPTER = DjangoAdapter()
