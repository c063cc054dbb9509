"""From an exception (ours, a framework's, or any other) or a bare status to an :class:`ErrorInfo`.

What lives here: :func:`error_info` and the recognisers of framework exceptions (Starlette/FastAPI
``HTTPException`` and validation errors, pydantic ``ValidationError``, werkzeug ``HTTPException``, Django's
``Http404``, ``PermissionDenied``, ``SuspiciousOperation``, ``BadRequest``, ``RequestDataTooBig``). They are
recognised through ``sys.modules``: this module never imports a framework, it only knows the classes of
frameworks the application already imported. A foreign exception's message never becomes a detail.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..exceptions import ConfigurationError, GuardError
from ._fields import validation_field_errors
from ._model import ErrorInfo, FieldError, status_code, status_title

__all__ = ["GENERIC_500_DETAIL", "error_info", "validation_failures"]

GENERIC_500_DETAIL = "The server could not complete the request."

# Validation errors a client caused (a 422); FastAPI's RequestValidationError carries the request location.
_CLIENT_VALIDATION_ERRORS = (
    ("fastapi.exceptions", "RequestValidationError"),
    ("fastapi.exceptions", "WebSocketRequestValidationError"),
    ("pydantic_core", "ValidationError"),
)
# Every validation error whose text (``str(exc)``) holds the input that failed: a response the app returned
# through the wrong model (a token) is a server error, but its message must not reach a log either.
_VALIDATION_ERRORS = (*_CLIENT_VALIDATION_ERRORS, ("fastapi.exceptions", "ResponseValidationError"))
# Django: messages are the app's or Django's internals (paths, hosts): never shown.
_DJANGO_ERRORS = (
    ("django.core.exceptions", "RequestDataTooBig", 413),
    ("django.http", "Http404", 404),
    ("django.core.exceptions", "PermissionDenied", 403),
    ("django.core.exceptions", "BadRequest", 400),
    ("django.core.exceptions", "SuspiciousOperation", 400),
)
# The body's own headers: a framework exception's copies of them are dropped (the renderer writes its own).
_BODY_HEADERS = ("content-type", "content-length")


def _cls(module: str, name: str) -> type[BaseException] | tuple[()]:
    """The exception class ``module.name``; ``()`` (an ``isinstance`` of nothing) when its module is not loaded
    or it is no exception class."""
    mod = sys.modules.get(module)
    cls = getattr(mod, name, None) if mod is not None else None
    return cls if isinstance(cls, type) and issubclass(cls, BaseException) else ()


def _safe_headers(raw: Any) -> tuple[tuple[str, str], ...]:
    """A framework exception's headers that can go on the wire: not the body's own, and each one a valid field
    (a name of token characters, a value of latin-1 text without control characters); the others are dropped,
    so a header the app could not have sent either never turns an error response into a server error."""
    named = ((str(k), str(v)) for k, v in _header_items(raw))
    return tuple((n, v) for n, v in named if n.lower() not in _BODY_HEADERS and _sendable(n, v))


#: RFC 9110 token characters (a field name), and the characters a field value may not hold (controls but HTAB).
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_FORBIDDEN_IN_VALUE = frozenset(chr(c) for c in (*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F))


def _sendable(name: str, value: str) -> bool:
    """True when ``name: value`` is a field an HTTP/1.1 server can send as it is."""
    if not name or not _TOKEN.issuperset(name):
        return False
    return all(ord(ch) < 0x100 and ch not in _FORBIDDEN_IN_VALUE for ch in value)


def _header_items(raw: Any) -> Iterable[tuple[Any, Any]]:
    """A framework exception's headers (a mapping, pairs, or nothing) as pairs."""
    if not raw:
        return ()
    return raw.items() if isinstance(raw, Mapping) else raw


def _field_errors_of(exc: BaseException) -> tuple[FieldError, ...]:
    try:
        return validation_field_errors(exc.errors())  # type: ignore[attr-defined]
    except Exception:
        return ()


def validation_failures(exc: BaseException) -> tuple[FieldError, ...] | None:
    """The safe field errors of a pydantic or FastAPI validation error (request or response); None otherwise.

    What a log shows of such an error instead of its message, which quotes every failed ``input``.

    Example::

        >>> validation_failures(RuntimeError("boom")) is None
        True
    """
    for module, name in _VALIDATION_ERRORS:
        if isinstance(exc, _cls(module, name)):
            return _field_errors_of(exc)
    return None


def _validation_info(exc: BaseException) -> ErrorInfo | None:
    # FastAPI's RequestValidationError carries the request location in ``loc``.
    for module, name in _CLIENT_VALIDATION_ERRORS:
        if isinstance(exc, _cls(module, name)):
            return _client_validation_info(exc)
    return None


def _client_validation_info(exc: BaseException) -> ErrorInfo:
    return ErrorInfo(
        status=422,
        code="validation-failed",
        title="Unprocessable Content",
        detail="The request is not valid.",
        errors=_field_errors_of(exc),
    )


def _starlette_detail(status: int, raw_detail: object) -> tuple[str | None, dict[str, Any]]:
    """(detail, extension members) of a Starlette ``HTTPException``'s ``detail``: text unless it is the bare
    title; structured data (the app put it there on purpose) as the ``data`` member."""
    if isinstance(raw_detail, str):
        return (raw_detail if raw_detail != status_title(status) else None), {}
    if raw_detail is not None:
        return None, {"data": raw_detail}
    return None, {}


def _starlette_info(exc: BaseException) -> ErrorInfo | None:
    if not isinstance(exc, _cls("starlette.exceptions", "HTTPException")):
        return None
    status = int(exc.status_code)  # type: ignore[attr-defined]
    detail, ext = _starlette_detail(status, getattr(exc, "detail", None))
    return ErrorInfo(
        status=status,
        code=status_code(status),
        title=status_title(status),
        detail=detail,
        headers=_safe_headers(getattr(exc, "headers", None)),
        extensions=ext,
    )


def _werkzeug_headers(exc: BaseException) -> tuple[tuple[str, str], ...]:
    try:
        return _safe_headers(exc.get_headers())  # type: ignore[attr-defined]
    except Exception:
        return ()


def _werkzeug_info(exc: BaseException) -> ErrorInfo | None:
    if not (isinstance(exc, _cls("werkzeug.exceptions", "HTTPException")) and getattr(exc, "code", None)):
        return None
    status = int(exc.code)  # type: ignore[attr-defined]
    detail = _werkzeug_detail(exc)
    headers = _werkzeug_headers(exc)
    return ErrorInfo(
        status=status, code=status_code(status), title=status_title(status), detail=detail, headers=headers
    )


def _werkzeug_detail(exc: BaseException) -> str | None:
    """A werkzeug exception's ``description`` when the app wrote one (not its class's default text)."""
    description = getattr(exc, "description", None)
    default = getattr(type(exc), "description", None)
    return description if isinstance(description, str) and description != default else None


def _django_info(exc: BaseException) -> ErrorInfo | None:
    for module, name, status in _DJANGO_ERRORS:
        if isinstance(exc, _cls(module, name)):
            return ErrorInfo(status=status, code=status_code(status), title=status_title(status))
    return None


# Validation first: FastAPI's RequestValidationError is also a pydantic-style error with a request location.
_RECOGNISERS: tuple[Callable[[BaseException], ErrorInfo | None], ...] = (
    _validation_info,
    _starlette_info,
    _werkzeug_info,
    _django_info,
)


def _framework_info(exc: BaseException) -> ErrorInfo | None:
    """Starlette/FastAPI, pydantic, werkzeug and Django exceptions, when those modules are loaded."""
    for recognise in _RECOGNISERS:
        info = recognise(exc)
        if info is not None:
            return info
    return None


def _guard_error_of(exc_or_status: object) -> GuardError | None:
    """Our own error: raised directly, or carried by a framework ``HTTPException`` (its ``guard_error``)."""
    wrapped = getattr(exc_or_status, "guard_error", None)
    if isinstance(wrapped, GuardError):
        return wrapped
    return exc_or_status if isinstance(exc_or_status, GuardError) else None


def _guard_info(exc: GuardError, expose_exception_details: bool = False) -> ErrorInfo:
    # A configuration error's text (a rule, a setting, a size) is for the operator's log, never the client (but in
    # development, where exception details are shown, it is the one thing worth showing).
    hidden = isinstance(exc, ConfigurationError) and not expose_exception_details
    detail = GENERIC_500_DETAIL if hidden else exc.detail
    return ErrorInfo(
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=detail,
        headers=tuple(exc.headers.items()),
        extensions=exc.extensions(),
        server_error=exc.status >= 500,
    )


def _unexpected_info(err: BaseException, expose_exception_details: bool) -> ErrorInfo:
    """A 500 for an exception nobody meant to show: generic, unless details are exposed (development only)."""
    ext: dict[str, Any] = {}
    detail = GENERIC_500_DETAIL
    if expose_exception_details:
        detail = f"{type(err).__name__}: {err}"
        ext["traceback"] = traceback.format_exception(type(err), err, err.__traceback__)
    return ErrorInfo(
        status=500,
        code="internal-error",
        title="Internal Server Error",
        detail=detail,
        extensions=ext,
        server_error=True,
    )


def error_info(exc_or_status: BaseException | int, *, expose_exception_details: bool = False) -> ErrorInfo:
    """Reduce an exception (ours, a framework's, or any other) or a bare status to an :class:`ErrorInfo`.

    Any exception not recognised is a 500 with a generic title and detail. Only with
    ``expose_exception_details=True`` (development only!) do its type, message and traceback appear.

    Example::

        >>> error_info(RuntimeError("secret-123")).detail
        'The server could not complete the request.'
    """
    guard_error = _guard_error_of(exc_or_status)
    if guard_error is not None:
        return _guard_info(guard_error, expose_exception_details)
    if isinstance(exc_or_status, BaseException):
        return _framework_info(exc_or_status) or _unexpected_info(exc_or_status, expose_exception_details)
    status = int(exc_or_status)
    return ErrorInfo(status=status, code=status_code(status), title=status_title(status))
