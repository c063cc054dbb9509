"""The error policy: how errors are rendered, and which framework error pages are replaced.

What lives here: :class:`ErrorPolicy` (format, exposure of details, rewriting of plain-text/HTML error pages,
``instance``, logger) and the decision it owns, :meth:`ErrorPolicy.wants_rewrite`, with :func:`prefers_html`
(a browser, not an API client). The shells hold no such rule of their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .._check import check_bool, check_str
from .._media import media_type
from ..exceptions import ConfigurationError
from ._classify import error_info
from ._model import ErrorInfo
from ._render import MINIMAL_500_BODY, MINIMAL_500_HEADERS, ErrorFormat, render

if TYPE_CHECKING:
    from typing import TypedDict

    class ErrorPolicyOptions(TypedDict, total=False):
        """ErrorPolicy's fields as keywords: named, so Starlette's ``_MiddlewareFactory`` type-checks."""

        format: ErrorFormat
        expose_exception_details: bool
        rewrite_plain_errors: Literal["api", "always", "never"]
        include_instance: bool
        logger: str


__all__ = ["DEFAULT_POLICY", "ErrorPolicy", "prefers_html"]

_REWRITE_MODES = ("api", "always", "never")
# The media types of a framework's own error page (none at all included): a JSON or other body is the app's.
_PLAIN_PAGE_TYPES = frozenset({"text/plain", "text/html", ""})


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
        _check_format(self.format)
        _check_rewrite_mode(self.rewrite_plain_errors)

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
        detail: str | None = None,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """``(status, headers, body)`` of the error under this policy (never raises); ``detail`` replaces the
        error's own."""
        try:
            info = exc_or_status if isinstance(exc_or_status, ErrorInfo) else self.info(exc_or_status)
        except Exception:
            return 500, list(MINIMAL_500_HEADERS), MINIMAL_500_BODY
        return render(
            info,
            format=self.format,
            detail=detail,
            instance=path if self.include_instance else None,
            request_id=request_id,
            extensions=None,
            headers=headers,
            now=None,
        )

    def wants_rewrite(self, status: int, content_type: str | None, accept: str | None) -> bool:
        """True when a framework's own error response (``status``, ``content_type``) should be replaced."""
        # A framework's own page: an error status with a plain-text, HTML or empty body (a JSON one is the app's).
        if self.rewrite_plain_errors == "never" or status < 400 or media_type(content_type) not in _PLAIN_PAGE_TYPES:
            return False
        return self.rewrite_plain_errors == "always" or not prefers_html(accept)


def _check_format(fmt: object) -> None:
    if not (fmt in ("problem", "envelope") or callable(fmt)):
        raise ConfigurationError("format must be 'problem', 'envelope' or a callable renderer.")


def _check_rewrite_mode(mode: object) -> None:
    if mode not in _REWRITE_MODES:
        raise ConfigurationError("rewrite_plain_errors must be 'api', 'always' or 'never'.")


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


#: The policy of a shell built without one (a middleware used alone): problem documents, nothing exposed.
DEFAULT_POLICY = ErrorPolicy()
