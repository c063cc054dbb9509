"""Rendering: an :class:`ErrorInfo` as a problem document (RFC 9457), an envelope, or an app's own JSON body.

What lives here: the document's members (the body's status always the HTTP status, extension members redacted),
the ``envelope`` format, the encoding, the response headers, and the fixed minimal 500 sent when rendering
itself failed. Which exception gives which :class:`ErrorInfo` is ``_classify``'s business.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from ._classify import error_info
from ._model import ErrorInfo
from ._redact import redact_mapping

__all__ = [
    "JSON",
    "MINIMAL_500_BODY",
    "MINIMAL_500_HEADERS",
    "PROBLEM_JSON",
    "ErrorFormat",
    "Renderer",
    "envelope_body",
    "problem_document",
    "problem_response",
    "render",
]

PROBLEM_JSON = "application/problem+json"
JSON = "application/json"

#: A custom renderer: takes the problem document (a fresh dict) and returns the JSON body to send.
Renderer = Callable[[dict[str, Any]], Mapping[str, Any]]
ErrorFormat = Literal["problem", "envelope"] | Renderer

#: Sent when rendering an error failed itself: fixed bytes, nothing computed.
MINIMAL_500_BODY = b'{"type":"about:blank","title":"Internal Server Error","status":500,"code":"internal-error"}'
MINIMAL_500_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-type", PROBLEM_JSON),
    ("content-length", str(len(MINIMAL_500_BODY))),
    ("cache-control", "no-store"),
)
# Members a caller's extensions may not overwrite: the document's own.
_OWN_MEMBERS = ("status", "type", "title")


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
    _add_members(doc, info, extensions)
    doc["status"] = info.status  # the body's status always equals the HTTP status
    return doc


def _add_members(doc: dict[str, Any], info: ErrorInfo, extensions: Mapping[str, Any] | None) -> None:
    """The members after ``code`` and ``request_id``: the field errors, then the extension members.

    Extension members come from the app (an HTTPException's structured detail, its own extensions, the caller's
    ``extensions``): values under secret-looking names (a token, a DSN, a password) never reach the body.
    """
    if info.errors:
        doc["errors"] = [e.as_dict() for e in info.errors]
    doc.update(redact_mapping(info.extensions))
    if extensions:
        doc.update(redact_mapping({k: v for k, v in extensions.items() if k not in _OWN_MEMBERS}))


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
    error: dict[str, Any] = {"code": doc.get("code"), "message": doc.get("detail") or doc.get("title")}
    error["details"] = _details(doc)
    if "retry_after" in doc:
        error["retry_after"] = doc["retry_after"]
    meta = {
        "timestamp": _iso_timestamp(time.time() if now is None else now),
        "request_id": doc.get("request_id"),
    }
    return {"success": False, "error": error, "meta": meta}


def _details(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The envelope's ``details``: each field error's pointer and message."""
    return [{"field": e.get("pointer", ""), "message": e.get("detail", "")} for e in doc.get("errors", ())]


def _encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=True, default=str).encode("ascii")


def render(
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
    """``(status, headers, body)`` of ``info`` in ``format``; the fixed minimal 500 when rendering failed.

    Example::

        status, headers, body = render(error_info(404), format="problem", detail=None, instance=None,
                                       request_id=None, extensions=None, headers=(), now=None)
    """
    try:
        doc = _document(info, detail=detail, instance=instance, request_id=request_id, extensions=extensions)
        content_type, body = _body(format, doc, now)
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


def _body(format: ErrorFormat, doc: dict[str, Any], now: float | None) -> tuple[str, bytes]:
    """(content type, body bytes) of the problem document ``doc`` in ``format``."""
    if format == "problem":
        return PROBLEM_JSON, _encode(doc)
    if format == "envelope":
        return JSON, _encode(envelope_body(doc, now=now))
    if callable(format):
        return JSON, _encode(format(dict(doc)))
    raise ValueError("unknown error format")


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
    return render(
        info,
        format=format,
        detail=detail,
        instance=instance,
        request_id=request_id,
        extensions=extensions,
        headers=headers,
        now=now,
    )
