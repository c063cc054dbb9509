"""RequestIdMiddleware (WSGI): one id per request, in the environ, in log records and on every response."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .._http import ENVIRON_REQUEST_ID, StartResponse, WSGIApp
from .._logging import RequestIdPolicy, request_id_var

__all__ = ["RequestIdMiddleware"]


class _ResetOnClose:
    """The app's body iterable, resetting the request id context variable when the server closes it."""

    __slots__ = ("_reset", "_result")

    def __init__(self, result: Iterable[bytes], reset: Callable[[], None]) -> None:
        self._result = result
        self._reset = reset

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._result)

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            self._reset()


class RequestIdMiddleware:
    """WSGI middleware giving each request an id: the incoming ``X-Request-ID`` when it is safe, else new.

    The id goes to ``environ["backend_guard.request_id"]``, to the logging context variable (for
    ``RequestIdFilter``) and on every response, 500s included: keep it outermost.

    Example::

        app.wsgi_app = RequestIdMiddleware(app.wsgi_app)   # Flask
        application = RequestIdMiddleware(get_wsgi_application())
    """

    def __init__(
        self,
        app: WSGIApp,
        policy: RequestIdPolicy | None = None,
        *,
        header: str = "X-Request-ID",
        trust_incoming: bool = True,
        generator: Callable[[], str] | None = None,
    ) -> None:
        self.app = app
        self.policy = policy or RequestIdPolicy(header=header, trust_incoming=trust_incoming, generator=generator)
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

        def reset() -> None:
            with contextlib.suppress(ValueError):  # closed from another context: nothing of ours to undo
                request_id_var.reset(token)

        try:
            result = self.app(environ, start_with_id)
        except BaseException:
            reset()
            raise
        return _ResetOnClose(result, reset)
