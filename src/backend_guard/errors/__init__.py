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
import math
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from .._check import check_bool, check_str
from ..exceptions import ConfigurationError, GuardError
from ._redact import redact_mapping

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

    The input value and the validator's context are never kept, and the message is one this library wrote for
    the error type (see :func:`validation_field_errors`), never the validator's.

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


#: The one message each pydantic error type gets in a response body, written here: never pydantic's ``msg``
#: (for ``value_error``, ``assertion_error`` and custom errors that is the app's own text, which may quote the
#: input; for others it is filled from ``ctx``, which may hold the input or parts of it), nor ``input``, ``ctx``
#: or ``url``. A type not listed gets :data:`_GENERIC_FIELD_MESSAGE`.
_FIELD_MESSAGES: Mapping[str, str] = {
    "missing": "Field required",
    "missing_argument": "Missing required argument",
    "missing_keyword_only_argument": "Missing required keyword only argument",
    "missing_positional_only_argument": "Missing required positional only argument",
    "unexpected_keyword_argument": "Unexpected keyword argument",
    "unexpected_positional_argument": "Unexpected positional argument",
    "multiple_argument_values": "Got multiple values for argument",
    "arguments_type": "Arguments must be a tuple, list or a dictionary",
    "extra_forbidden": "Extra inputs are not permitted",
    "frozen_field": "Field is frozen",
    "frozen_instance": "Instance is frozen",
    "json_invalid": "Invalid JSON",
    "json_type": "JSON input should be string, bytes or bytearray",
    "recursion_loop": "Recursion error - cyclic reference detected",
    "recursion_depth_exceeded": "Recursion error - maximum validation depth exceeded",
    "invalid_key": "Keys should be strings",
    "model_type": "Input should be an object",
    "model_attributes_type": "Input should be a valid dictionary or object to extract fields from",
    "dataclass_type": "Input should be an object",
    "dataclass_exact_type": "Input should be an object of the expected type",
    "named_tuple_type": "Input should be a valid named tuple",
    "is_instance_of": "Input should be an instance of the expected type",
    "is_subclass_of": "Input should be a subclass of the expected type",
    "callable_type": "Input should be callable",
    "none_required": "Input should be None",
    "literal_error": "Input should be one of the allowed values",
    "enum": "Input should be one of the allowed values",
    "union_tag_invalid": "Input tag does not match any of the expected tags",
    "union_tag_not_found": "Unable to extract the tag using the discriminator",
    "string_type": "Input should be a valid string",
    "string_unicode": "Input should be a valid string, unable to parse raw data as a unicode string",
    "string_not_ascii": "String should contain only ASCII characters",
    "string_pattern_mismatch": "String should match the required pattern",
    "string_too_short": "String is too short",
    "string_too_long": "String is too long",
    "bytes_type": "Input should be a valid bytes",
    "bytes_invalid_encoding": "Data should be valid in the expected encoding",
    "bytes_too_short": "Data is too short",
    "bytes_too_long": "Data is too long",
    "bool_type": "Input should be a valid boolean",
    "bool_parsing": "Input should be a valid boolean, unable to interpret input",
    "int_type": "Input should be a valid integer",
    "int_parsing": "Input should be a valid integer, unable to parse string as an integer",
    "int_parsing_size": "Unable to parse input string as an integer, exceeded maximum size",
    "int_from_float": "Input should be a valid integer, got a number with a fractional part",
    "float_type": "Input should be a valid number",
    "float_parsing": "Input should be a valid number, unable to parse string as a number",
    "finite_number": "Input should be a finite number",
    "greater_than": "Input is too small",
    "greater_than_equal": "Input is too small",
    "less_than": "Input is too large",
    "less_than_equal": "Input is too large",
    "multiple_of": "Input should be a multiple of the required step",
    "decimal_type": "Decimal input should be an integer, float, string or Decimal object",
    "decimal_parsing": "Input should be a valid decimal",
    "decimal_max_digits": "Decimal input has too many digits",
    "decimal_max_places": "Decimal input has too many decimal places",
    "decimal_whole_digits": "Decimal input has too many digits before the decimal point",
    "fraction_type": "Fraction input should be an integer, float, string or Fraction object",
    "fraction_parsing": "Input is not a valid fraction",
    "complex_type": "Input should be a valid complex number",
    "complex_str_parsing": "Input should be a valid complex string",
    "iterable_type": "Input should be iterable",
    "iteration_error": "Error iterating over the input",
    "too_short": "Input has too few items",
    "too_long": "Input has too many items",
    "dict_type": "Input should be a valid dictionary",
    "mapping_type": "Input should be a valid mapping",
    "list_type": "Input should be a valid list",
    "tuple_type": "Input should be a valid tuple",
    "set_type": "Input should be a valid set",
    "frozen_set_type": "Input should be a valid frozenset",
    "set_item_not_hashable": "Set items should be hashable",
    "date_type": "Input should be a valid date",
    "date_parsing": "Input should be a valid date",
    "date_from_datetime_parsing": "Input should be a valid date",
    "date_from_datetime_inexact": "Datetimes provided to dates should have zero time - e.g. be exact dates",
    "date_past": "Date should be in the past",
    "date_future": "Date should be in the future",
    "time_type": "Input should be a valid time",
    "time_parsing": "Input should be in a valid time format",
    "datetime_type": "Input should be a valid datetime",
    "datetime_parsing": "Input should be a valid datetime",
    "datetime_object_invalid": "Invalid datetime object",
    "datetime_from_date_parsing": "Input should be a valid datetime or date",
    "datetime_past": "Input should be in the past",
    "datetime_future": "Input should be in the future",
    "timezone_naive": "Input should not have timezone info",
    "timezone_aware": "Input should have timezone info",
    "timezone_offset": "Timezone offset is not the expected one",
    "time_delta_type": "Input should be a valid timedelta",
    "time_delta_parsing": "Input should be a valid timedelta",
    "url_type": "URL input should be a string or URL",
    "url_parsing": "Input should be a valid URL",
    "url_syntax_violation": "Input violates strict URL syntax rules",
    "url_too_long": "URL is too long",
    "url_scheme": "URL scheme is not permitted",
    "uuid_type": "UUID input should be a string, bytes or UUID object",
    "uuid_parsing": "Input should be a valid UUID",
    "uuid_version": "UUID version is not the expected one",
    # The app's own validators: their text is the app's and may quote what was submitted.
    "value_error": "Invalid value.",
    "assertion_error": "Invalid value.",
}
_GENERIC_FIELD_MESSAGE = "Invalid value."
#: Constraints a message may state, by error type: (ctx key, message with ``{}`` for the value). pydantic-core
#: fills these keys from the schema (``Field(min_length=8)``), never from the input; and only an ``int`` or a
#: finite ``float`` is used (never text, never ``actual_length``, which is measured on the input), else the
#: plain message above.
_FIELD_CONSTRAINTS: Mapping[str, tuple[str, str]] = {
    "string_too_short": ("min_length", "String should have at least {} characters"),
    "string_too_long": ("max_length", "String should have at most {} characters"),
    "bytes_too_short": ("min_length", "Data should have at least {} bytes"),
    "bytes_too_long": ("max_length", "Data should have at most {} bytes"),
    "too_short": ("min_length", "Input should have at least {} items"),
    "too_long": ("max_length", "Input should have at most {} items"),
    "url_too_long": ("max_length", "URL should have at most {} characters"),
    "greater_than": ("gt", "Input should be greater than {}"),
    "greater_than_equal": ("ge", "Input should be greater than or equal to {}"),
    "less_than": ("lt", "Input should be less than {}"),
    "less_than_equal": ("le", "Input should be less than or equal to {}"),
    "multiple_of": ("multiple_of", "Input should be a multiple of {}"),
    "decimal_max_digits": ("max_digits", "Decimal input should have no more than {} digits in total"),
    "decimal_max_places": ("decimal_places", "Decimal input should have no more than {} decimal places"),
    "decimal_whole_digits": ("whole_digits", "Decimal input should have no more than {} digits before the point"),
}
# Error types whose last location segment is a name the client wrote and the schema does not declare.
_UNDECLARED_NAME_TYPES = frozenset({"extra_forbidden", "unexpected_keyword_argument"})
# pydantic-core's marker after a mapping key that failed validation: the segment before it is the client's key.
_KEY_MARKER = "[key]"
# An error type is an identifier; anything else (a custom type built from the input) is shown as value_error.
_ERROR_TYPE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _field_message(kind: str, ctx: object) -> str:
    """The fixed message of error type ``kind``, stating a schema constraint from ``ctx`` where one applies."""
    constraint = _FIELD_CONSTRAINTS.get(kind)
    if constraint is not None and isinstance(ctx, Mapping):
        key, template = constraint
        value = ctx.get(key)
        if type(value) is int and abs(value) < 10**18:
            return template.format(value)
        if type(value) is float and math.isfinite(value):
            return template.format(repr(value))
    return _FIELD_MESSAGES.get(kind, _GENERIC_FIELD_MESSAGE)


def _field_type(raw: object) -> str:
    kind = raw if isinstance(raw, str) else ""
    if kind in _FIELD_MESSAGES:
        return kind
    if 0 < len(kind) <= 64 and _ERROR_TYPE_CHARS.issuperset(kind):
        return kind
    return "value_error"


def _declared_loc(loc: tuple[object, ...], kind: str) -> tuple[object, ...]:
    """``loc`` up to the first segment that is not the schema's but the client's own text.

    A field name the schema does not declare (``extra="forbid"``) and a mapping key that failed validation are
    whatever was submitted (a password pasted as a field name); the pointer stops at the object holding them.
    """
    if _KEY_MARKER in loc:
        return loc[: max(0, loc.index(_KEY_MARKER) - 1)]
    if kind in _UNDECLARED_NAME_TYPES:
        return loc[:-1]
    return loc


def validation_field_errors(items: Iterable[Mapping[str, Any]]) -> tuple[FieldError, ...]:
    """Pydantic-style error dicts as :class:`FieldError` s: the location, the type and a fixed message.

    The message is chosen from the error type (``missing`` -> ``"Field required"``; the app's own validators,
    ``value_error``/``assertion_error`` and custom types, -> ``"Invalid value."``), never taken from ``msg``,
    which a validator may have written with the submitted value in it. ``input``, ``ctx`` and ``url`` are
    dropped; only a numeric schema constraint (``min_length``, ``gt``...) may be stated in the message. The
    pointer ends before a name the schema refused (an undeclared field, a mapping key that failed validation).

    Example::

        >>> validation_field_errors([{"loc": ("body", "email"), "msg": "Field required", "type": "missing"}])
        (FieldError(pointer='/body/email', message='Field required', type='missing'),)
    """
    out = []
    for item in items:
        loc = item.get("loc") or ()
        if isinstance(loc, (str, int)):
            loc = (loc,)
        kind = _field_type(item.get("type"))
        loc = _declared_loc(tuple(loc), kind)
        pointer = "/" + "/".join(_escape_pointer(p) for p in loc) if loc else ""
        out.append(FieldError(pointer=pointer, message=_field_message(kind, item.get("ctx")), type=kind))
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


# Validation errors a client caused (a 422); FastAPI's RequestValidationError carries the request location.
_CLIENT_VALIDATION_ERRORS = (
    ("fastapi.exceptions", "RequestValidationError"),
    ("fastapi.exceptions", "WebSocketRequestValidationError"),
    ("pydantic_core", "ValidationError"),
)
# Every validation error whose text (``str(exc)``) holds the input that failed: a response the app returned
# through the wrong model (a token) is a server error, but its message must not reach a log either.
_VALIDATION_ERRORS = (*_CLIENT_VALIDATION_ERRORS, ("fastapi.exceptions", "ResponseValidationError"))


def _field_errors_of(exc: BaseException) -> tuple[FieldError, ...]:
    try:
        return validation_field_errors(exc.errors())  # type: ignore[attr-defined]
    except Exception:
        return ()


def _validation_failures(exc: BaseException) -> tuple[FieldError, ...] | None:
    """The safe field errors of a pydantic or FastAPI validation error (request or response); None otherwise.

    What a log shows of such an error instead of its message, which quotes every failed ``input``.
    """
    for module, name in _VALIDATION_ERRORS:
        cls = _cls(module, name)
        if cls is not None and isinstance(exc, cls):
            return _field_errors_of(exc)
    return None


def _framework_info(exc: BaseException) -> ErrorInfo | None:
    """Starlette/FastAPI, pydantic, werkzeug and Django exceptions, when those modules are loaded."""
    # Validation first: FastAPI's RequestValidationError carries the request location in ``loc``.
    for module, name in _CLIENT_VALIDATION_ERRORS:
        cls = _cls(module, name)
        if cls is not None and isinstance(exc, cls):
            errors = _field_errors_of(exc)
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
        check_bool("expose_exception_details", self.expose_exception_details)
        check_bool("include_instance", self.include_instance)
        check_str("logger", self.logger)
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


#: Where a framework adapter notes the detail of an error page it let the framework produce, as
#: ``(status, detail)`` (the environ or ``request.META``; ``scope["state"]`` under ASGI): the shell replacing
#: that page with a problem document for an API client puts the detail in it (see :func:`page_info`).
ERROR_DETAIL_KEY = "backend_guard.error_detail"


def page_info(status: int, noted: object = None) -> ErrorInfo | int:
    """What replaces a framework's own error page of ``status``: the bare status, or with the noted detail.

    ``noted`` is what an adapter left under :data:`ERROR_DETAIL_KEY`: ``(status, detail)``, used only when
    its status is the page's and the detail is text (anything else is ignored: the bare status).

    Example::

        >>> page_info(403, (403, "CSRF cookie not set.")).detail
        'CSRF cookie not set.'
    """
    if isinstance(noted, tuple) and len(noted) == 2 and noted[0] == status and isinstance(noted[1], str):
        return ErrorInfo(status=status, code=_status_code(status), title=status_title(status), detail=noted[1])
    return status


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
        if policy is not None and not isinstance(policy, ErrorPolicy):
            raise ConfigurationError(f"policy must be an ErrorPolicy, not {type(policy).__name__}.")
        self.policy = policy if policy is not None else ErrorPolicy(**options)
        self._rewrite = self.policy.rewrite_plain_errors != "never"

    def _info(
        self, error: BaseException | ErrorInfo | int, log: Callable[[BaseException, int], None]
    ) -> ErrorInfo | int:
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
