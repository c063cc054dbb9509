"""RequestIdMiddleware (WSGI): one id per request, in the environ, in log records and on every response."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from .._http import ENVIRON_REQUEST_ID, StartResponse, WSGIApp
from .._logging import RequestIdShell, request_id_var

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
        token = request_id_var.set(self._rid)
        try:
            if self._iterator is None:
                self._iterator = iter(self._result)
            return next(self._iterator)
        finally:
            request_id_var.reset(token)

    def close(self) -> None:
        close = getattr(self._result, "close", None)
        if close is not None:
            token = request_id_var.set(self._rid)
            try:
                close()
            finally:
                request_id_var.reset(token)


class RequestIdMiddleware(RequestIdShell[WSGIApp]):
    """WSGI middleware giving each request an id: the incoming ``X-Request-ID`` when it is safe, else new.

    The id goes to ``environ["backend_guard.request_id"]``, to the logging context variable (for
    ``RequestIdFilter``) and on every response, 500s included: keep it outermost.

    Example::

        app.wsgi_app = RequestIdMiddleware(app.wsgi_app)   # Flask
        application = RequestIdMiddleware(get_wsgi_application())
    """

    def _compile(self) -> None:
        self._lname = self.policy.header.lower()
        self._environ_key = "HTTP_" + self.policy.header.upper().replace("-", "_")

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        rid = self.policy.choose(environ.get(self._environ_key))
        environ[ENVIRON_REQUEST_ID] = rid
        header, lname = self.policy.header, self._lname

        size = len(lname)

        def start_with_id(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            for k, _ in headers:
                if len(k) == size and k.lower() == lname:  # the app set one: ours replaces it
                    headers = [(k, v) for k, v in headers if k.lower() != lname]
                    headers.append((header, rid))
                    break
            else:
                headers = [*headers, (header, rid)]
            return start_response(status, headers, exc_info)

        token = request_id_var.set(rid)
        try:
            result = self.app(environ, start_with_id)
        finally:
            request_id_var.reset(token)
        return _WithRequestId(result, rid)
