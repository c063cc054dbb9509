"""Problem documents (RFC 9457) for every error: pure functions, no framework, no I/O.

Everything a shell needs to answer an error is computed here: the status, the headers and the body bytes.
The body never holds ``str(exc)`` of a foreign exception, a traceback, a secret, or the input that failed
validation: only titles and details that this library wrote, or that an app raised on purpose through a
:class:`~backend_guard.exceptions.GuardError` or a framework ``HTTPException``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from .exceptions import GuardError

__all__ = ["PROBLEM_JSON", "problem_document", "problem_response", "status_title"]

PROBLEM_JSON = "application/problem+json"


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


def problem_document(
    exc_or_status: BaseException | int,
    *,
    detail: str | None = None,
    instance: str | None = None,
    request_id: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The RFC 9457 problem document (a dict) for an error or a bare status.

    A :class:`GuardError` gives its own status, title, detail and extension members; any other exception
    is a 500 with a generic title and detail (its message is never used).

    Example::

        >>> problem_document(bg.RateLimited(retry_after=3))["retry_after"]
        3
    """
    if isinstance(exc_or_status, GuardError):
        status, code = exc_or_status.status, exc_or_status.code
        title = exc_or_status.title
        detail = detail if detail is not None else exc_or_status.detail
        ext: dict[str, Any] = exc_or_status.extensions()
    elif isinstance(exc_or_status, BaseException):
        status, code, title = 500, "internal-error", "Internal Server Error"
        detail = detail if detail is not None else "The server could not complete the request."
        ext = {}
    else:
        status = int(exc_or_status)
        title = status_title(status)
        code = title.lower().replace(" ", "-").replace("'", "")
        ext = {}
    doc: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        doc["detail"] = detail
    if instance:
        doc["instance"] = instance
    doc["code"] = code
    if request_id:
        doc["request_id"] = request_id
    doc.update(ext)
    if extensions:
        doc.update({k: v for k, v in extensions.items() if k not in ("status", "type", "title")})
    return doc


def problem_response(
    exc_or_status: BaseException | int,
    *,
    detail: str | None = None,
    instance: str | None = None,
    request_id: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> tuple[int, list[tuple[str, str]], bytes]:
    """``(status, headers, body)`` of a problem+json response, for any framework.

    Headers include ``Content-Type: application/problem+json``, ``Cache-Control: no-store`` and the
    error's own headers (``Retry-After``, ``WWW-Authenticate``).

    Example::

        status, headers, body = bg.problem_response(bg.RateLimited(retry_after=10))
        return Response(body, status=status, headers=dict(headers))
    """
    doc = problem_document(
        exc_or_status, detail=detail, instance=instance, request_id=request_id, extensions=extensions
    )
    body = json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    headers = [
        ("content-type", PROBLEM_JSON),
        ("content-length", str(len(body))),
        ("cache-control", "no-store"),
    ]
    if isinstance(exc_or_status, GuardError):
        headers.extend((k.lower(), v) for k, v in exc_or_status.headers.items())
    return doc["status"], headers, body
