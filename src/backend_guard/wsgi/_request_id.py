"""RequestIdMiddleware (WSGI): one id per request, in the environ, in log records and on every response."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextvars import Token
from typing import Any

from .._http import ENVIRON_REQUEST_ID, WSGIApp
from .._logging import RequestIdShell, reset_request_id, set_request_id
from .._shell_headers import stamp
from ._layer_shell import LayerMiddleware

__all__ = ["RequestIdMiddleware"]


class _WithRequestId:
    """The app's body iterable, run with the request id in the logging context variable.

    The variable is set only while the app runs (its call, each step of its body, its ``close``) and reset
    right after, so an id never outlives its request in a server thread, even if nobody closes the body.
    """

    __slots__ = ("_iterator", "_result", "_rid")

    def __init__(self, result: Iterable[bytes], rid: str) -> None:
        self._result = result
        self._rid = rid
        self._iterator: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        token = set_request_id(self._rid)
        try:
            if self._iterator is None:
                self._iterator = iter(self._result)
            return next(self._iterator)
        finally:
            reset_request_id(token)

    def close(self) -> None:
        close = getattr(self._result, "close", None)
        if close is not None:
            token = set_request_id(self._rid)
            try:
                close()
            finally:
                reset_request_id(token)


class RequestIdMiddleware(RequestIdShell[WSGIApp], LayerMiddleware):
    """WSGI middleware giving each request an id: the incoming ``X-Request-ID`` when it is safe, else new.

    The id goes to ``environ["backend_guard.request_id"]``, to the logging context variable (for
    ``RequestIdFilter``) and on every response, 500s included: keep it outermost.

    Example::

        app.wsgi_app = RequestIdMiddleware(app.wsgi_app)   # Flask
        application = RequestIdMiddleware(get_wsgi_application())
    """

    ends = True  # the body is run with the id in the logging context

    def _compile(self) -> None:
        self._lname = self.policy.header.lower()
        self.touches = frozenset({self._lname})
        self._environ_key = "HTTP_" + self.policy.header.upper().replace("-", "_")

    def on_request(self, environ: dict[str, Any]) -> tuple[str, Token[str | None]]:
        """Choose this request's id, put it in the environ and the logging context; the context: (the id, the
        context variable's token)."""
        rid = self.policy.choose(environ.get(self._environ_key))
        environ[ENVIRON_REQUEST_ID] = rid
        return rid, set_request_id(rid)

    def on_response_start(
        self, context: tuple[str, Any], status: int, headers: Iterable[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """The headers with the id added (replacing the app's own header of that name)."""
        return stamp(headers, self._lname, self.policy.header, context[0])

    def appended(
        self, context: tuple[str, Any], status: int, headers: Sequence[tuple[str, str]]
    ) -> tuple[tuple[str, str]]:
        """The id's header, when the app set none."""
        return ((self.policy.header, context[0]),)

    def on_end(self, context: tuple[str, Token[str | None]], body: Iterable[bytes] | None) -> Iterable[bytes] | None:
        """Reset the logging context variable; the body runs with the id set again (:class:`_WithRequestId`)."""
        reset_request_id(context[1])
        return _WithRequestId(body, context[0]) if body is not None else None
