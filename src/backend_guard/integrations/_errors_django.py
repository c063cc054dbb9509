"""Django middlewares: problem documents for every error, and the request id.

Put both in ``MIDDLEWARE``, the request id first (outermost)::

    MIDDLEWARE = [
        "backend_guard.integrations._errors_django.DjangoRequestIdMiddleware",
        ...,  # security, CORS
        "backend_guard.integrations._errors_django.DjangoErrorEnvelopeMiddleware",
        ...,
    ]

Options come from ``settings.BACKEND_GUARD["errors"]`` (:class:`~backend_guard.errors.ErrorPolicy` fields)
and ``settings.BACKEND_GUARD["request_id"]`` (``header``, ``trust_incoming``).
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Mapping
from typing import Any

from .._http import ENVIRON_REQUEST_ID
from .._logging import RequestIdPolicy, log_server_error, request_id_var
from ..errors import ERROR_DETAIL_KEY, ErrorInfo, ErrorPolicy, page_info, prefers_html

__all__ = ["DjangoErrorEnvelopeMiddleware", "DjangoRequestIdMiddleware", "csrf_failure", "csrf_failure_detail"]

_ENTITY = frozenset({"content-type", "content-length", "content-encoding", "transfer-encoding", "etag"})


def _setting(name: str) -> dict[str, Any]:
    from django.conf import settings

    conf = getattr(settings, "BACKEND_GUARD", None)
    if isinstance(conf, Mapping):
        value = conf.get(name)
        if isinstance(value, Mapping):
            return dict(value)
    return {}


def _is_async(get_response: Any) -> bool:
    from asgiref.sync import iscoroutinefunction

    return bool(iscoroutinefunction(get_response))


def _mark_async(obj: Any) -> None:
    from asgiref.sync import markcoroutinefunction

    markcoroutinefunction(obj)


def _django_debug() -> bool:
    from django.conf import settings

    return bool(getattr(settings, "DEBUG", False))


#: What stands for the value a client sent where one of Django's CSRF reasons quotes it (by reason name).
_CSRF_QUOTED = {"REASON_BAD_ORIGIN": "the request's Origin", "REASON_BAD_REFERER": "the request's Referer"}
#: The reasons Django composes from a token's source (POST, or the header named by CSRF_HEADER_NAME, a setting)
#: and a fixed fragment.
_CSRF_COMPOSED = re.compile(
    r"CSRF (?:cookie|token from (?:POST|the '[A-Za-z0-9_-]{1,64}' HTTP header)) "
    r"(?:has incorrect length|has invalid characters|incorrect)\."
)
_CSRF_GENERIC = "CSRF verification failed."


@functools.cache
def _csrf_reasons() -> tuple[frozenset[str], tuple[tuple[re.Pattern[str], str], ...]]:
    """Django's fixed CSRF reasons (``REASON_*`` of ``django.middleware.csrf``, whatever the version): the
    ones quoting nothing, and a pattern and a safe text for each one quoting what the client sent."""
    from django.middleware import csrf

    exact: set[str] = set()
    quoting: list[tuple[re.Pattern[str], str]] = []
    for name in sorted(vars(csrf)):
        value = getattr(csrf, name)
        if not name.startswith("REASON_") or not isinstance(value, str):
            continue
        if "%s" in value:
            pattern = re.compile(".*".join(re.escape(part) for part in value.split("%s")), re.DOTALL)
            quoting.append((pattern, value.replace("%s", _CSRF_QUOTED.get(name, "the value sent"))))
        else:
            exact.add(value)
    return frozenset(exact), tuple(quoting)


def csrf_failure_detail(reason: object) -> str:
    """The ``detail`` of a CSRF failure: Django's reason, never a value the client sent.

    One of Django's fixed reasons is kept as it is ("CSRF cookie not set.", "CSRF token missing.", "CSRF token
    from POST has incorrect length."); one that quotes the client's ``Origin`` or ``Referer`` gets the quoted
    part replaced; any other text (a custom middleware's) gives "CSRF verification failed.".

    Example::

        >>> csrf_failure_detail("Origin checking failed - https://evil.example does not match any trusted origins.")
        "Origin checking failed - the request's Origin does not match any trusted origins."
    """
    if not isinstance(reason, str):
        return _CSRF_GENERIC
    exact, quoting = _csrf_reasons()
    if reason in exact or _CSRF_COMPOSED.fullmatch(reason):
        return reason
    for pattern, safe in quoting:
        if pattern.fullmatch(reason):
            return safe
    return _CSRF_GENERIC


def csrf_failure(request: Any, reason: str = "") -> Any:
    """A ``CSRF_FAILURE_VIEW``: Django's own 403 page, and its reason in the problem document API clients get.

    The page is Django's (``django.views.csrf.csrf_failure``: browsers see what they always saw); the error
    middleware replacing it with a 403 problem document for an API client puts Django's reason in ``detail``
    (:func:`csrf_failure_detail`: never the ``Origin`` or ``Referer`` the client sent).

    Example (settings.py)::

        CSRF_FAILURE_VIEW = "backend_guard.django.csrf_failure"
    """
    from django.views.csrf import csrf_failure as django_csrf_failure

    request.META[ERROR_DETAIL_KEY] = (403, csrf_failure_detail(reason))
    return django_csrf_failure(request, reason=reason)


def _route_of(request: Any) -> Any:
    """The route template Django resolved the request to (``users/<int:id>/``), when it did."""
    match = getattr(request, "resolver_match", None)
    return getattr(match, "route", None) if match is not None else None


def _http_response(status: int, body: bytes, headers: list[tuple[str, str]]) -> Any:
    """A Django ``HttpResponse`` of a rendered problem document, marked ``backend_guard_error``."""
    from django.http import HttpResponse

    content_type = next(v for k, v in headers if k == "content-type")
    response = HttpResponse(body, status=status, content_type=content_type)
    for k, v in headers:
        if k not in ("content-type", "content-length"):
            response[k] = v
    response.backend_guard_error = True  # our own problem document: _rewrite leaves it as it is
    return response


class DjangoErrorEnvelopeMiddleware:
    """Django middleware: exceptions and Django's own error pages become problem documents (sync and async).

    ``process_exception`` maps ``Http404`` (404), ``PermissionDenied`` (403), ``SuspiciousOperation`` and
    ``BadRequest`` (400), ``RequestDataTooBig`` (413), every ``GuardError`` and pydantic ``ValidationError``;
    any other exception is a generic 500, logged once (Django does not log it again). Django's HTML 4xx/5xx
    pages are replaced for API clients (``rewrite_plain_errors``).

    With ``DEBUG = True``, an unexpected exception (a 500) in a request whose ``Accept`` prefers HTML (names
    ``text/html`` and no JSON: a browser navigation) is left to Django, which shows its technical 500 page and
    logs it; API clients still get the problem document, and so does everyone with
    ``rewrite_plain_errors="always"``.

    Example::

        MIDDLEWARE = [..., "backend_guard.integrations._errors_django.DjangoErrorEnvelopeMiddleware"]
        BACKEND_GUARD = {"errors": {"format": "envelope"}}
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any, policy: ErrorPolicy | None = None) -> None:
        self.get_response = get_response
        self.policy = policy if policy is not None else ErrorPolicy(**_setting("errors"))
        self._async = _is_async(get_response)
        if self._async:
            _mark_async(self)

    def __call__(self, request: Any) -> Any:
        if self._async:
            return self._acall(request)
        return self._rewrite(request, self.get_response(request))

    async def _acall(self, request: Any) -> Any:
        return self._rewrite(request, await self.get_response(request))

    def process_exception(self, request: Any, exception: Exception) -> Any:
        """Render the view's exception (Django calls this for exceptions raised in views).

        None (Django's own handling: its technical 500 page) for a browser under ``DEBUG``.
        """
        if self._debug_page(request, exception):
            return None
        return self._response(request, exception, [])

    def _debug_page(self, request: Any, exception: Exception) -> bool:
        """True when Django's technical 500 page is the answer: ``DEBUG`` on, a client preferring HTML, a
        policy leaving HTML pages to such clients, and an exception that is a 500 (not a deliberate 4xx/503)."""
        if self.policy.rewrite_plain_errors == "always" or not prefers_html(request.META.get("HTTP_ACCEPT")):
            return False
        if not _django_debug():
            return False
        try:
            info = self.policy.info(exception)
        except Exception:
            return False
        return info.server_error and info.status == 500

    def _rewrite(self, request: Any, response: Any) -> Any:
        status = response.status_code
        if status < 400 or getattr(response, "backend_guard_error", False):
            return response
        if not self.policy.wants_rewrite(status, response.get("Content-Type"), request.META.get("HTTP_ACCEPT")):
            return response
        keep = [(k, v) for k, v in response.items() if k.lower() not in _ENTITY]
        with contextlib.suppress(Exception):
            response.close()
        return self._response(request, page_info(status, request.META.get(ERROR_DETAIL_KEY)), keep)

    def _logged(self, request: Any, error: BaseException, status: int, rid: str | None) -> bool:
        """Log an unexpected exception once, with the request's route; whether the line was written."""
        with contextlib.suppress(Exception):
            route = _route_of(request)
            log_server_error(
                error,
                logger=self.policy.logger,
                request_id=rid,
                method=request.method or "",
                route="/" + route.lstrip("/") if route else request.path,
                status=status,
            )
            return True
        return False

    def _response(self, request: Any, error: BaseException | ErrorInfo | int, headers: list[tuple[str, str]]) -> Any:
        rid = getattr(request, "request_id", None) or request.META.get(ENVIRON_REQUEST_ID)
        info = error if isinstance(error, ErrorInfo | int) else self.policy.info(error)
        logged = False
        if isinstance(error, BaseException) and isinstance(info, ErrorInfo) and info.server_error:
            logged = self._logged(request, error, info.status, rid)
        status, base, body = self.policy.render(info, request_id=rid, path=request.path)
        response = _http_response(status, body, [*base, *headers])
        if logged:
            # Django's own "Internal Server Error: /path" line would repeat it: log_response() (django.utils.log)
            # skips a response that carries this flag, and sets it itself; there is no public way to say so.
            response._has_been_logged = True  # noqa: SLF001 - Django's own convention for "already logged"
        return response


class DjangoRequestIdMiddleware:
    """Django middleware giving each request an id: ``request.request_id``, the response header, log records.

    Put it first in ``MIDDLEWARE`` so every response, error pages included, carries the header.

    Example::

        MIDDLEWARE = ["backend_guard.integrations._errors_django.DjangoRequestIdMiddleware", ...]

        def view(request):
            return JsonResponse({"request_id": request.request_id})
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any, policy: RequestIdPolicy | None = None) -> None:
        self.get_response = get_response
        self.policy = policy if policy is not None else RequestIdPolicy(**_setting("request_id"))
        self._meta_key = "HTTP_" + self.policy.header.upper().replace("-", "_")
        self._async = _is_async(get_response)
        if self._async:
            _mark_async(self)

    def _start(self, request: Any) -> str:
        rid = self.policy.choose(request.META.get(self._meta_key))
        request.request_id = rid
        request.META[ENVIRON_REQUEST_ID] = rid
        return rid

    def __call__(self, request: Any) -> Any:
        if self._async:
            return self._acall(request)
        rid = self._start(request)
        token = request_id_var.set(rid)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response[self.policy.header] = rid
        return response

    async def _acall(self, request: Any) -> Any:
        rid = self._start(request)
        token = request_id_var.set(rid)
        try:
            response = await self.get_response(request)
        finally:
            request_id_var.reset(token)
        response[self.policy.header] = rid
        return response
