"""ErrorEnvelopeMiddleware (WSGI): every error below it becomes one safe document.

- an exception while calling the app or before the first body chunk went out: a problem document (or the
  policy's format); a 5xx is logged once with the request id, method, route and traceback;
- an exception after the first chunk went out: nothing more can be sent; the error is logged and
  :class:`~backend_guard.errors.ResponseAborted` raised so the server closes the connection;
- a framework's own plain-text/HTML 4xx/5xx page is replaced by a problem document for API clients.

The body is produced by a generator so that errors raised while the app's iterable is consumed are caught
too; the app's iterable is always closed.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from .._http import StartResponse, WSGIApp, request_id_from_environ
from .._layer import BOTH, INNER, OUTER, Finish, status_code
from .._logging import log_server_error
from ..errors import ERROR_DETAIL_KEY, ErrorEnvelopeShell, ErrorInfo, ResponseAborted, page_info, status_title
from ..request import _wsgi_text
from ._layer_shell import finishing

__all__ = ["ErrorEnvelopeMiddleware"]

_ENTITY = frozenset({"content-type", "content-length", "content-encoding", "transfer-encoding", "etag"})


def _discard(data: bytes) -> None:
    """The ``write`` callable handed out while a framework error page is being replaced."""


def _replacing(state: _State) -> Any:
    """The ``exc_info`` of a start_response: None, or (when one already went to the server, headers not sent
    yet) the exception being handled, so the server replaces it, as PEP 3333 allows."""
    if not state.started:
        return None
    exc_info = sys.exc_info()
    if exc_info[0] is None:
        return (RuntimeError, RuntimeError("replacing the response headers"), None)
    return exc_info


def _outgoing(start_response: StartResponse, finish: Finish | None, context: Any) -> StartResponse:
    """The ``start_response`` of a document rendered here: with a Guard's outer layers' headers (made on the
    error paths only, not per request)."""
    return start_response if finish is None else finishing(start_response, finish, context, OUTER)


def _close(result: Iterable[bytes] | None) -> None:
    """Close the app's body iterable (PEP 3333), if it has a ``close``."""
    close = getattr(result, "close", None)
    if close is not None:
        close()


class _State:
    __slots__ = ("held", "started", "yielded")

    def __init__(self) -> None:
        self.held: tuple[int, list[tuple[str, str]]] | None = None
        self.started = False
        self.yielded = False


class ErrorEnvelopeMiddleware(ErrorEnvelopeShell[WSGIApp]):
    """WSGI middleware turning every exception and framework error page below it into a safe document.

    Takes an :class:`~backend_guard.errors.ErrorPolicy` as ``policy`` (or its fields as keywords).

    Example::

        app.wsgi_app = ErrorEnvelopeMiddleware(app.wsgi_app)                  # Flask
        application = ErrorEnvelopeMiddleware(application, format="envelope")  # any WSGI app
    """

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        return self.run(self.app, environ, start_response)

    def run(
        self,
        app: WSGIApp,
        environ: dict[str, Any],
        start_response: StartResponse,
        finish: Finish | None = None,
        context: Any = None,
    ) -> Iterator[bytes]:
        """Run ``app`` under the envelope: how ``__call__`` and a fused ``Guard`` call it (the body is a
        generator: the app runs when it is first iterated).

        ``finish`` (from a Guard): its layers' work on a response start: ``finish(context, status, headers,
        stage)`` with :data:`~backend_guard._layer.INNER` on the app's start (the layers inside the envelope)
        and :data:`~backend_guard._layer.OUTER` on what goes out (the app's start or one rendered here), or
        :data:`~backend_guard._layer.BOTH` at once.

        Example::

            body = envelope.run(app, environ, start_response)
        """
        state = _State()
        guarded_start = self._guarded_start(environ, start_response, state, finish, context)
        result: Iterable[bytes] | None = None
        try:
            result = app(environ, guarded_start)
            for chunk in result:
                if state.held is not None:
                    continue
                state.yielded = True
                yield chunk
            if state.held is not None:
                yield self._replace_held(environ, _outgoing(start_response, finish, context), state)
        except Exception as exc:
            yield self._failed(exc, environ, _outgoing(start_response, finish, context), state)
        finally:
            _close(result)

    def _replace_held(self, environ: dict[str, Any], out: StartResponse, state: _State) -> bytes:
        """The body of the problem document standing for the framework's error page held back."""
        code, headers = state.held or (500, [])
        keep = [(k, v) for k, v in headers if k.lower() not in _ENTITY]
        return self._error(environ, out, page_info(code, environ.get(ERROR_DETAIL_KEY)), keep, state)

    def _failed(self, exc: Exception, environ: dict[str, Any], out: StartResponse, state: _State) -> bytes:
        """The app raised ``exc``: a document's body, or ResponseAborted when the body went out already."""
        if state.yielded:
            self.log(exc, environ, 500, after_start=True)
            raise ResponseAborted("the application failed after the response started") from None
        return self._error(environ, out, exc, [], state)

    def _guarded_start(
        self, environ: dict[str, Any], start_response: StartResponse, state: _State, finish: Finish | None, context: Any
    ) -> StartResponse:
        """The ``start_response`` the app gets: a framework's error page is held back (to be replaced)."""
        policy = self.policy

        def guarded_start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if exc_info is not None and state.yielded:
                raise exc_info[1].with_traceback(exc_info[2])
            code = status_code(status) or int(status[:3])  # a malformed status line raises, as it always did
            stage = BOTH
            if code >= 400 and self._rewrite:
                if finish is not None:
                    headers = finish(context, code, headers, INNER)
                    stage = OUTER
                ctype = next((v for k, v in headers if k.lower() == "content-type"), None)
                if policy.wants_rewrite(code, ctype, environ.get("HTTP_ACCEPT")):
                    state.held = (code, headers)
                    return _discard
            if finish is not None:
                headers = finish(context, code, headers, stage)
            state.held = None
            write = start_response(status, headers, exc_info if state.started else None)
            state.started = True
            return write

        return guarded_start

    def log(self, exc: BaseException, environ: dict[str, Any], status: int, *, after_start: bool = False) -> None:
        """Log ``exc`` once, with the request id, method, route and ``status`` (a failing handler is ignored).

        Example::

            envelope.log(exc, environ, 500)
        """
        with contextlib.suppress(Exception):  # a broken log handler must not break the error response
            path = (environ.get("SCRIPT_NAME", "") or "") + (environ.get("PATH_INFO", "") or "/")
            log_server_error(
                exc,
                logger=self.policy.logger,
                request_id=request_id_from_environ(environ),
                method=str(environ.get("REQUEST_METHOD", "")),
                route=str(environ.get("backend_guard.route") or _wsgi_text(path)),
                status=status,
                after_start=after_start,
            )

    def _error(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        error: BaseException | ErrorInfo | int,
        headers: list[tuple[str, str]],
        state: _State,
    ) -> bytes:
        info = self._info(error, lambda exc, status: self.log(exc, environ, status))
        request_id = request_id_from_environ(environ)
        status, base, body = self.policy.render(
            info, request_id=request_id, path=_wsgi_text(environ.get("PATH_INFO", "") or "/")
        )
        out = [*base, *headers]
        if request_id is not None and not any(k.lower() == "x-request-id" for k, _ in out):
            out.append(("x-request-id", request_id))
        start_response(f"{status} {status_title(status)}", out, _replacing(state))
        state.started = True
        return body
