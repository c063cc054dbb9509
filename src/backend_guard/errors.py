"""Problem documents (RFC 9457) for every error: pure functions, no framework, no I/O.

Everything a shell needs to answer an error is computed here: the status, the headers and the body bytes.
The body never holds ``str(exc)`` of a foreign exception, a traceback, a secret, or the input that failed
validation: only titles and details that this library wrote, or that an app raised on purpose through a
:class:`~backend_guard.exceptions.GuardError` or a framework ``HTTPException``.

Framework exceptions (Starlette/FastAPI ``HTTPException`` and ``RequestValidationError``, pydantic
``ValidationError``, werkzeug ``HTTPException``, Django's ``Http404``, ``PermissionDenied``,
``SuspiciousOperation``, ``BadRequest``) are recognised through ``sys.modules``: this module never imports a
framework, it only knows the classes of frameworks the application already imported.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from ._redact import redact_mapping
from .exceptions import GuardError

if TYPE_CHECKING:
    from typing import TypedDict

    from typing_extensions import Unpack

    class _ErrorPolicyOptions(TypedDict, total=False):
        """ErrorPolicy's fields as keywords: named, so Starlette's ``_MiddlewareFactory`` type-checks."""

        format: ErrorFormat
        expose_exception_details: bool
        rewrite_plain_errors: Literal["api", "always", "never"]
        include_instance: bool
        logger: str


__all__ = [
    "PROBLEM_JSON",
    "ErrorInfo",
    "ErrorPolicy",
    "FieldError",
    "Renderer",
    "ResponseAborted",
    "error_info",
    "problem_document",
    "problem_response",
    "status_title",
    "validation_field_errors",
]

PROBLEM_JSON = "application/problem+json"
JSON = "application/json"

#: A custom renderer: takes the problem document (a fresh dict) and returns the JSON body to send.
Renderer = Callable[[dict[str, Any]], Mapping[str, Any]]
ErrorFormat = Literal["problem", "envelope"] | Renderer

_GENERIC_500_DETAIL = "The server could not complete the request."
#: Sent when rendering an error failed itself: fixed bytes, nothing computed.
MINIMAL_500_BODY = b'{"type":"about:blank","title":"Internal Server Error","status":500,"code":"internal-error"}'
MINIMAL_500_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-type", PROBLEM_JSON),
    ("content-length", str(len(MINIMAL_500_BODY))),
    ("cache-control", "no-store"),
)


class ResponseAborted(Exception):
    """Raised by the error middlewares when the app failed after the response had started.

    The status line and part of the body are already on the wire, so no error document can be sent; the
    middleware logs the original exception once (with the request id) and raises this bare exception so the
    server closes the connection and the client sees a truncated, not a silently shortened, response.

    Example::

        except ResponseAborted:
            pass   # already logged by backend_guard with the request id
    """


def status_title(status: int) -> str:
    """The standard reason phrase of ``status`` ("Error" when unknown).

    Example::

        >>> status_title(429)
        'Too Many Requests'
    """
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _status_code(status: int) -> str:
    return status_title(status).lower().replace(" ", "-").replace("'", "")


@dataclass(frozen=True, slots=True)
class FieldError:
    """One failed field of a validation error: a JSON pointer (``/body/email``), a message and a type.

    The input value and the validator's context are never kept.

    Example::

        FieldError(pointer="/body/email", message="Field required", type="missing")
    """

    pointer: str
    message: str
    type: str

    def as_dict(self) -> dict[str, str]:
        """The ``errors`` member entry of a problem document."""
        return {"pointer": self.pointer, "detail": self.message, "type": self.type}


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """An error reduced to plain, safe values: what every renderer and shell works from.

    Example::

        info = error_info(bg.RateLimited(retry_after=3))
        info.status, info.code, dict(info.headers)["Retry-After"]
    """

    status: int
    code: str
    title: str
    detail: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    extensions: Mapping[str, Any] = field(default_factory=dict)
    errors: tuple[FieldError, ...] = ()
    server_error: bool = False  # an unexpected exception (to be logged with its traceback)


def _escape_pointer(part: object) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def validation_field_errors(items: Iterable[Mapping[str, Any]]) -> tuple[FieldError, ...]:
    """Pydantic-style error dicts (``loc``, ``msg``, ``type``) as :class:`FieldError` s, input and ctx dropped.

    A message that quotes the rejected input (custom validators may do that) is replaced by a generic one.

    Example::

        >>> validation_field_errors([{"loc": ("body", "email"), "msg": "Field required", "type": "missing"}])
        (FieldError(pointer='/body/email', message='Field required', type='missing'),)
    """
    out = []
    for item in items:
        loc = item.get("loc") or ()
        if isinstance(loc, (str, int)):
            loc = (loc,)
        pointer = "/" + "/".join(_escape_pointer(p) for p in loc) if loc else ""
        message = str(item.get("msg", "Invalid value"))
        kind = str(item.get("type", "value_error"))
        value = item.get("input")
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            text = str(value)
            if len(text) >= 3 and text in message:
                message = "Invalid value."
        out.append(FieldError(pointer=pointer, message=message[:500], type=kind[:100]))
    return tuple(out)


def _cls(module: str, name: str) -> type[BaseException] | None:
    mod = sys.modules.get(module)
    cls = getattr(mod, name, None) if mod is not None else None
    return cls if isinstance(cls, type) and issubclass(cls, BaseException) else None


def _safe_headers(raw: Any) -> tuple[tuple[str, str], ...]:
    if not raw:
        return ()
    items = raw.items() if isinstance(raw, Mapping) else raw
    out = []
    for k, v in items:
        name = str(k)
        if name.lower() in ("content-type", "content-length"):
            continue
        out.append((name, str(v)))
    return tuple(out)


def _framework_info(exc: BaseException) -> ErrorInfo | None:
    """Starlette/FastAPI, pydantic, werkzeug and Django exceptions, when those modules are loaded."""
    # Validation first: FastAPI's RequestValidationError carries the request location in ``loc``.
    for module, name in (
        ("fastapi.exceptions", "RequestValidationError"),
        ("fastapi.exceptions", "WebSocketRequestValidationError"),
        ("pydantic_core", "ValidationError"),
    ):
        cls = _cls(module, name)
        if cls is not None and isinstance(exc, cls):
            try:
                errors = validation_field_errors(exc.errors())  # type: ignore[attr-defined]
            except Exception:
                errors = ()
            return ErrorInfo(
                status=422,
                code="validation-failed",
                title="Unprocessable Content",
                detail="The request is not valid.",
                errors=errors,
            )
    cls = _cls("starlette.exceptions", "HTTPException")
    if cls is not None and isinstance(exc, cls):
        status = int(exc.status_code)  # type: ignore[attr-defined]
        raw_detail = getattr(exc, "detail", None)
        ext: dict[str, Any] = {}
        detail: str | None = None
        if isinstance(raw_detail, str):
            detail = raw_detail if raw_detail != status_title(status) else None
        elif raw_detail is not None:
            ext["data"] = raw_detail  # the app put structured data there on purpose
        return ErrorInfo(
            status=status,
            code=_status_code(status),
            title=status_title(status),
            detail=detail,
            headers=_safe_headers(getattr(exc, "headers", None)),
            extensions=ext,
        )
    cls = _cls("werkzeug.exceptions", "HTTPException")
    if cls is not None and isinstance(exc, cls) and getattr(exc, "code", None):
        status = int(exc.code)  # type: ignore[attr-defined]
        description = getattr(exc, "description", None)
        default = getattr(type(exc), "description", None)
        headers: tuple[tuple[str, str], ...] = ()
        try:
            headers = _safe_headers(exc.get_headers())  # type: ignore[attr-defined]
        except Exception:
            headers = ()
        return ErrorInfo(
            status=status,
            code=_status_code(status),
            title=status_title(status),
            detail=description if isinstance(description, str) and description != default else None,
            headers=headers,
        )
    # Django: messages are the app's or Django's internals (paths, hosts): never shown.
    for module, name, status in (
        ("django.core.exceptions", "RequestDataTooBig", 413),
        ("django.http", "Http404", 404),
        ("django.core.exceptions", "PermissionDenied", 403),
        ("django.core.exceptions", "BadRequest", 400),
        ("django.core.exceptions", "SuspiciousOperation", 400),
    ):
        cls = _cls(module, name)
        if cls is not None and isinstance(exc, cls):
            return ErrorInfo(status=status, code=_status_code(status), title=status_title(status))
    return None


def error_info(exc_or_status: BaseException | int, *, expose_exception_details: bool = False) -> ErrorInfo:
    """Reduce an exception (ours, a framework's, or any other) or a bare status to an :class:`ErrorInfo`.

    Any exception not recognised is a 500 with a generic title and detail. Only with
    ``expose_exception_details=True`` (development only!) do its type, message and traceback appear.

    Example::

        >>> error_info(RuntimeError("secret-123")).detail
        'The server could not complete the request.'
    """
    wrapped = getattr(exc_or_status, "guard_error", None)  # a framework HTTPException carrying our error
    if isinstance(wrapped, GuardError):
        exc_or_status = wrapped
    if isinstance(exc_or_status, GuardError):
        exc = exc_or_status
        return ErrorInfo(
            status=exc.status,
            code=exc.code,
            title=exc.title,
            detail=exc.detail,
            headers=tuple(exc.headers.items()),
            extensions=exc.extensions(),
            server_error=exc.status >= 500,
        )
    if isinstance(exc_or_status, BaseException):
        info = _framework_info(exc_or_status)
        if info is not None:
            return info
        ext: dict[str, Any] = {}
        detail = _GENERIC_500_DETAIL
        if expose_exception_details:
            err = exc_or_status
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
    status = int(exc_or_status)
    return ErrorInfo(status=status, code=_status_code(status), title=status_title(status))


def _document(
    info: ErrorInfo,
    *,
    detail: str | None,
    instance: str | None,
    request_id: str | None,
    extensions: Mapping[str, Any] | None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": "about:blank", "title": info.title, "status": info.status}
    detail = detail if detail is not None else info.detail
    if detail:
        doc["detail"] = detail
    if instance:
        doc["instance"] = instance
    doc["code"] = info.code
    if request_id:
        doc["request_id"] = request_id
    if info.errors:
        doc["errors"] = [e.as_dict() for e in info.errors]
    # Extension members come from the app (an HTTPException's structured detail, its own extensions): values
    # under secret-looking names (a token, a DSN, a password) never reach the body.
    doc.update(redact_mapping(info.extensions))
    if extensions:
        doc.update(redact_mapping({k: v for k, v in extensions.items() if k not in ("status", "type", "title")}))
    doc["status"] = info.status  # the body's status always equals the HTTP status
    return doc


def problem_document(
    exc_or_status: BaseException | int,
    *,
    detail: str | None = None,
    instance: str | None = None,
    request_id: str | None = None,
    extensions: Mapping[str, Any] | None = None,
    expose_exception_details: bool = False,
) -> dict[str, Any]:
    """The RFC 9457 problem document (a dict) for an error or a bare status.

    A :class:`GuardError` gives its own status, title, detail and extension members; framework exceptions
    map to their status; any other exception is a 500 with a generic title and detail (its message is never
    used unless ``expose_exception_details=True``).

    Example::

        >>> problem_document(bg.RateLimited(retry_after=3))["retry_after"]
        3
    """
    info = error_info(exc_or_status, expose_exception_details=expose_exception_details)
    return _document(info, detail=detail, instance=instance, request_id=request_id, extensions=extensions)


def _iso_timestamp(now: float) -> str:
    ms = int((now % 1) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{ms:03d}Z"


def envelope_body(doc: Mapping[str, Any], *, now: float | None = None) -> dict[str, Any]:
    """The ``envelope`` format of a problem document.

    ``{"success": false, "error": {"code", "message", "details": [{"field", "message"}]},
    "meta": {"timestamp", "request_id"}}``

    Example::

        envelope_body(problem_document(404))["error"]["code"]   # 'not-found'
    """
    details = [{"field": e.get("pointer", ""), "message": e.get("detail", "")} for e in doc.get("errors", ())]
    error: dict[str, Any] = {"code": doc.get("code"), "message": doc.get("detail") or doc.get("title")}
    error["details"] = details
    if "retry_after" in doc:
        error["retry_after"] = doc["retry_after"]
    meta = {
        "timestamp": _iso_timestamp(time.time() if now is None else now),
        "request_id": doc.get("request_id"),
    }
    return {"success": False, "error": error, "meta": meta}


def _encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=True, default=str).encode("ascii")


def _render(
    info: ErrorInfo,
    *,
    format: ErrorFormat,
    detail: str | None,
    instance: str | None,
    request_id: str | None,
    extensions: Mapping[str, Any] | None,
    headers: Iterable[tuple[str, str]],
    now: float | None,
) -> tuple[int, list[tuple[str, str]], bytes]:
    try:
        doc = _document(info, detail=detail, instance=instance, request_id=request_id, extensions=extensions)
        if format == "problem":
            content_type, body = PROBLEM_JSON, _encode(doc)
        elif format == "envelope":
            content_type, body = JSON, _encode(envelope_body(doc, now=now))
        elif callable(format):
            content_type, body = JSON, _encode(format(dict(doc)))
        else:
            raise ValueError("unknown error format")
        out = [
            ("content-type", content_type),
            ("content-length", str(len(body))),
            ("cache-control", "no-store"),
        ]
        out.extend((k.lower(), v) for k, v in info.headers)
        out.extend((k.lower(), v) for k, v in headers)
        return info.status, out, body
    except Exception:
        # Rendering the error failed (a broken renderer, unserialisable extension): fixed bytes, status 500.
        return 500, list(MINIMAL_500_HEADERS), MINIMAL_500_BODY


def problem_response(
    exc_or_status: BaseException | int,
    *,
    detail: str | None = None,
    instance: str | None = None,
    request_id: str | None = None,
    extensions: Mapping[str, Any] | None = None,
    format: ErrorFormat = "problem",
    headers: Iterable[tuple[str, str]] = (),
    expose_exception_details: bool = False,
    now: float | None = None,
) -> tuple[int, list[tuple[str, str]], bytes]:
    """``(status, headers, body)`` of an error response, for any framework.

    Headers include the content type (``application/problem+json``, or ``application/json`` for the
    ``"envelope"`` format and custom renderers), ``Cache-Control: no-store`` and the error's own headers
    (``Retry-After``, ``WWW-Authenticate``). ``format`` is ``"problem"`` (RFC 9457), ``"envelope"``, or a
    callable taking the problem document and returning the JSON body. When rendering fails, a fixed minimal
    500 is returned instead.

    Example::

        status, headers, body = bg.problem_response(bg.RateLimited(retry_after=10))
        return Response(body, status=status, headers=dict(headers))
    """
    info = error_info(exc_or_status, expose_exception_details=expose_exception_details)
    return _render(
        info,
        format=format,
        detail=detail,
        instance=instance,
        request_id=request_id,
        extensions=extensions,
        headers=headers,
        now=now,
    )


_REWRITE_MODES = ("api", "always", "never")


@dataclass(frozen=True)
class ErrorPolicy:
    """How errors are rendered and which framework error pages are replaced; shared by every shell.

    - ``format``: ``"problem"`` (RFC 9457, default), ``"envelope"`` or a callable renderer;
    - ``expose_exception_details``: put the exception type, message and traceback of unexpected errors in
      the body. **Development only**: it leaks internals (and any secret in a message) to every client;
    - ``rewrite_plain_errors``: replace the frameworks' own plain-text/HTML 4xx/5xx pages with problem
      documents: ``"api"`` (default: unless the client asks for HTML), ``"always"`` or ``"never"``;
    - ``include_instance``: put the request path in ``instance`` (off: paths may hold tokens);
    - ``logger``: the logger name 5xx errors are logged to.

    Example::

        policy = ErrorPolicy(format="envelope")
        app.add_middleware(ErrorEnvelopeMiddleware, policy=policy)
    """

    format: ErrorFormat = "problem"
    expose_exception_details: bool = False
    rewrite_plain_errors: Literal["api", "always", "never"] = "api"
    include_instance: bool = False
    logger: str = "backend_guard.errors"

    def __post_init__(self) -> None:
        from .exceptions import ConfigurationError

        if not (self.format in ("problem", "envelope") or callable(self.format)):
            raise ConfigurationError("format must be 'problem', 'envelope' or a callable renderer.")
        if self.rewrite_plain_errors not in _REWRITE_MODES:
            raise ConfigurationError("rewrite_plain_errors must be 'api', 'always' or 'never'.")

    def info(self, exc_or_status: BaseException | int) -> ErrorInfo:
        """The :class:`ErrorInfo` of an error under this policy."""
        return error_info(exc_or_status, expose_exception_details=self.expose_exception_details)

    def render(
        self,
        exc_or_status: BaseException | int | ErrorInfo,
        *,
        request_id: str | None = None,
        path: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """``(status, headers, body)`` of the error under this policy (never raises)."""
        try:
            info = exc_or_status if isinstance(exc_or_status, ErrorInfo) else self.info(exc_or_status)
        except Exception:
            return 500, list(MINIMAL_500_HEADERS), MINIMAL_500_BODY
        return _render(
            info,
            format=self.format,
            detail=None,
            instance=path if self.include_instance else None,
            request_id=request_id,
            extensions=None,
            headers=headers,
            now=None,
        )

    def wants_rewrite(self, status: int, content_type: str | None, accept: str | None) -> bool:
        """True when a framework's own error response (``status``, ``content_type``) should be replaced."""
        if status < 400 or self.rewrite_plain_errors == "never":
            return False
        ctype = (content_type or "").split(";", 1)[0].strip().lower()
        if ctype not in ("text/plain", "text/html", ""):
            return False
        return self.rewrite_plain_errors == "always" or not prefers_html(accept)


def prefers_html(accept: str | None) -> bool:
    """True when an ``Accept`` header names HTML and no JSON (a browser, not an API client).

    Example::

        >>> prefers_html("text/html,application/xhtml+xml,*/*;q=0.8")
        True
    """
    if not accept:
        return False
    value = accept.lower()
    return "text/html" in value and "json" not in value


App = TypeVar("App")  # an ASGI or a WSGI app


class ErrorEnvelopeShell(Generic[App]):
    """What both ``ErrorEnvelopeMiddleware`` shells share (ASGI and WSGI): each keeps only its protocol.

    The :class:`ErrorPolicy` (``policy``, or its fields as keywords) and the step from an exception to
    what is rendered.

    Example::

        class ErrorEnvelopeMiddleware(ErrorEnvelopeShell[WSGIApp]):
            def __call__(self, environ, start_response): ...
    """

    def __init__(self, app: App, policy: ErrorPolicy | None = None, **options: Unpack[_ErrorPolicyOptions]) -> None:
        self.app = app
        self.policy = policy if policy is not None else ErrorPolicy(**options)
        self._rewrite = self.policy.rewrite_plain_errors != "never"

    def _info(self, error: BaseException | int, log: Callable[[BaseException, int], None]) -> ErrorInfo | int:
        """What to render for ``error`` (500 when even that failed); a server error is first passed to
        ``log`` with its status."""
        if not isinstance(error, BaseException):
            return error
        info: ErrorInfo | int
        try:
            info = self.policy.info(error)
        except Exception:
            info = 500
        if isinstance(info, int) or info.server_error:
            log(error, 500 if isinstance(info, int) else info.status)
        return info
