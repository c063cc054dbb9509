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
from collections.abc import Mapping
from typing import Any

from .._http import ENVIRON_REQUEST_ID
from .._logging import RequestIdPolicy, log_server_error, request_id_var
from ..errors import ErrorInfo, ErrorPolicy

__all__ = ["DjangoErrorEnvelopeMiddleware", "DjangoRequestIdMiddleware"]

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


class DjangoErrorEnvelopeMiddleware:
    """Django middleware: exceptions and Django's own error pages become problem documents (sync and async).

    ``process_exception`` maps ``Http404`` (404), ``PermissionDenied`` (403), ``SuspiciousOperation`` and
    ``BadRequest`` (400), ``RequestDataTooBig`` (413), every ``GuardError`` and pydantic ``ValidationError``;
    any other exception is a generic 500, logged once (Django does not log it again). Django's HTML 4xx/5xx
    pages are replaced for API clients (``rewrite_plain_errors``).

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
        """Render the view's exception (Django calls this for exceptions raised in views)."""
        return self._response(request, exception, [])

    def _rewrite(self, request: Any, response: Any) -> Any:
        status = response.status_code
        if status < 400 or getattr(response, "_backend_guard_error", False):
            return response
        if not self.policy.wants_rewrite(status, response.get("Content-Type"), request.META.get("HTTP_ACCEPT")):
            return response
        keep = [(k, v) for k, v in response.items() if k.lower() not in _ENTITY]
        with contextlib.suppress(Exception):
            response.close()
        return self._response(request, status, keep)

    def _response(self, request: Any, error: BaseException | int, headers: list[tuple[str, str]]) -> Any:
        from django.http import HttpResponse

        rid = getattr(request, "request_id", None) or request.META.get(ENVIRON_REQUEST_ID)
        info: ErrorInfo | int = error if isinstance(error, int) else self.policy.info(error)
        logged = False
        if isinstance(error, BaseException) and isinstance(info, ErrorInfo) and info.server_error:
            match = getattr(request, "resolver_match", None)
            route = getattr(match, "route", None) if match is not None else None
            with contextlib.suppress(Exception):
                log_server_error(
                    error,
                    logger=self.policy.logger,
                    request_id=rid,
                    method=request.method or "",
                    route="/" + route.lstrip("/") if route else request.path,
                    status=info.status,
                )
                logged = True
        status, base, body = self.policy.render(info, request_id=rid, path=request.path)
        content_type = next(v for k, v in base if k == "content-type")
        response = HttpResponse(body, status=status, content_type=content_type)
        for k, v in [*base, *headers]:
            if k not in ("content-type", "content-length"):
                response[k] = v
        response._backend_guard_error = True
        if logged:
            response._has_been_logged = True  # Django's own "Internal Server Error: /path" line would repeat it
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
