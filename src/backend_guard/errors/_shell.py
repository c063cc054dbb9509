"""What both ``ErrorEnvelopeMiddleware`` shells share (ASGI and WSGI), and the detail of a framework's page.

What lives here: :class:`ErrorEnvelopeShell` (the policy, and the step from an exception to what is rendered,
logging server errors once) and :func:`page_info` with :data:`ERROR_DETAIL_KEY` (the detail a framework adapter
noted for an error page it let the framework produce). Each shell keeps only its protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from ..exceptions import ConfigurationError
from ._model import ErrorInfo, status_code, status_title
from ._policy import ErrorPolicy

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._policy import ErrorPolicyOptions

__all__ = ["ERROR_DETAIL_KEY", "ErrorEnvelopeShell", "page_info"]


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
    detail = _noted_detail(status, noted)
    if detail is None:
        return status
    return ErrorInfo(status=status, code=status_code(status), title=status_title(status), detail=detail)


def _noted_detail(status: int, noted: object) -> str | None:
    """The detail of ``noted`` when it is ``(status, text)`` for this very status; None otherwise."""
    if isinstance(noted, tuple) and len(noted) == 2 and noted[0] == status and isinstance(noted[1], str):
        return noted[1]
    return None


App = TypeVar("App")  # an ASGI or a WSGI app


class ErrorEnvelopeShell(Generic[App]):
    """What both ``ErrorEnvelopeMiddleware`` shells share (ASGI and WSGI): each keeps only its protocol.

    The :class:`ErrorPolicy` (``policy``, or its fields as keywords) and the step from an exception to
    what is rendered.

    Example::

        class ErrorEnvelopeMiddleware(ErrorEnvelopeShell[WSGIApp]):
            def __call__(self, environ, start_response): ...
    """

    def __init__(self, app: App, policy: ErrorPolicy | None = None, **options: Unpack[ErrorPolicyOptions]) -> None:
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
        info = self._safe_info(error)
        status = _server_error_status(info)
        if status is not None:
            log(error, status)
        return info

    def _safe_info(self, error: BaseException) -> ErrorInfo | int:
        """The policy's :class:`ErrorInfo` of ``error``; 500 when even that failed."""
        try:
            return self.policy.info(error)
        except Exception:
            return 500


def _server_error_status(info: ErrorInfo | int) -> int | None:
    """The status to log ``info`` with when it is a server error (500 when classifying failed); None otherwise."""
    if isinstance(info, int):
        return 500
    return info.status if info.server_error else None
