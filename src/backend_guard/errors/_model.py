"""What an error is reduced to: :class:`ErrorInfo` (with its :class:`FieldError` s), the status titles, and
:class:`ResponseAborted`.

What lives here: the plain, safe values every renderer and shell works from, and the reason phrase and code of a
status. Nothing here looks at an exception (``_classify``) or writes a body (``_render``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

__all__ = ["ErrorInfo", "FieldError", "ResponseAborted", "status_code", "status_title"]


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


#: Codes that differ from the reason phrase: a 500 the framework answered itself (Django's own 500 page, a route
#: returning a bare 500) has the code of a 500 from an unhandled exception, so clients match one code per status.
_STATUS_CODES = {500: "internal-error"}


def status_code(status: int) -> str:
    """The ``code`` member of a bare status: its reason phrase in lower-case words joined by ``-``
    (``internal-error`` for 500, as for an unhandled exception).

    Example::

        >>> status_code(404)
        'not-found'
    """
    return _STATUS_CODES.get(status) or status_title(status).lower().replace(" ", "-").replace("'", "")


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
