"""ErrorEnvelopeMiddleware (ASGI): every error below it becomes one safe document, the success path untouched.

- an exception before the response started: a problem document (or the policy's format) with its status;
  5xx logged once with the request id, method, route, status and traceback;
- an exception after the response started: nothing more is sent (no second ``http.response.start``); the
  error is logged and :class:`~backend_guard.errors.ResponseAborted` is raised so the server closes the
  connection (uvicorn does exactly that) and the client sees a truncated response;
- on a WebSocket scope: an exception before ``websocket.accept`` refuses the handshake with the document (a
  denial response where the server offers one, else a close with 1008: the server answers 403); after it, the
  error is logged and the socket closed with 1011 (internal error); nothing of the exception reaches the client;
  a client that left (``WebSocketDisconnect``, a send failing on a gone client) is no error: nothing is logged;
- a framework's own plain-text/HTML 4xx/5xx page (Starlette's 404/405 text, for instance) is replaced with a
  problem document for API clients, keeping its status and headers such as ``Allow``.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Awaitable
from typing import Any

from .._http import (
    BYTES_LIKE_ERRORS,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    bytes_headers,
    bytes_or_raise,
    deny_handshake,
    get_header,
    request_id_from_scope,
)
from .._layer import BOTH, INNER, OUTER, Finish
from .._logging import log_server_error
from ..errors import ErrorEnvelopeShell, ResponseAborted
from ..request import _scope_route

__all__ = ["ErrorEnvelopeMiddleware"]

# Headers of the replaced body; everything else (Allow, Retry-After, WWW-Authenticate, Vary...) is kept.
_ENTITY = frozenset(
    {b"content-type", b"content-length", b"content-encoding", b"transfer-encoding", b"etag", b"last-modified"}
)


class ErrorEnvelopeMiddleware(ErrorEnvelopeShell[ASGIApp]):
    """Pure ASGI middleware turning every exception and framework error page below it into a safe document.

    Takes an :class:`~backend_guard.errors.ErrorPolicy` as ``policy`` (or its fields as keywords). Place it
    inside RequestId, SecureHeaders and CORS so error responses carry their headers too.

    Example::

        app.add_middleware(ErrorEnvelopeMiddleware)                       # Starlette / FastAPI
        app = ErrorEnvelopeMiddleware(app, policy=ErrorPolicy(format="envelope"))
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.run(self.app, scope, receive, send)
        elif kind == "websocket":
            await self.run_socket(self.app, scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def run_socket(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """Run ``app`` under the envelope on a WebSocket scope: an exception before ``websocket.accept`` refuses
        the handshake with the document (:func:`~backend_guard._http.deny_handshake`), one after it
        is logged and closes the socket with 1011; one after the socket closed is logged only.

        Example::

            await envelope.run_socket(app, scope, receive, send)
        """
        socket = _Socket(send)
        try:
            await app(scope, receive, socket.send)
        except Exception as exc:
            await socket.failed(self, scope, exc)

    async def run(
        self,
        app: ASGIApp,
        scope: Scope,
        receive: Receive,
        send: Send,
        finish: Finish | None = None,
        context: Any = None,
    ) -> None:
        """Run ``app`` under the envelope (an HTTP scope): how ``__call__`` and a fused ``Guard`` call it.

        ``finish`` (from a Guard): its layers' work on a response start, done here instead of in more ``send``
        wrappers: ``finish(context, status, headers, stage)`` with :data:`~backend_guard._layer.INNER` on each
        start the app sends (the layers inside the envelope), :data:`~backend_guard._layer.OUTER` on each
        start sent downstream (the app's or one rendered here), or :data:`~backend_guard._layer.BOTH` at once
        for a success response passing through.

        Example::

            await envelope.run(app, scope, receive, send)
        """
        sent = 0  # downstream: 1 after an http.response.start, 2 once the whole response
        exchange: _Exchange | None = None  # made by the first message off the success path, with what it needs

        def send_downstream(message: Message) -> Awaitable[None]:
            """The ``send`` the app gets: a success response passes straight through; any other message (an
            error start and what follows it) goes to the exchange, made then. No coroutine of its own: it returns
            the awaitable of the step it hands the message to (the app awaits it at once)."""
            nonlocal sent, exchange
            if exchange is None:
                kind = message["type"]
                if kind == "http.response.start":
                    status = message["status"]
                    if status < 400:
                        if finish is not None:
                            headers = message.get("headers", ())
                            try:
                                message["headers"] = finish(context, status, headers, BOTH)
                            except BYTES_LIKE_ERRORS as exc:  # an app's bytearray name or value (no cost otherwise)
                                message["headers"] = finish(context, status, bytes_or_raise(headers, exc), BOTH)
                        sent = 1
                        return send(message)
                elif kind == "http.response.body":
                    if not message.get("more_body", False):
                        sent = 2
                    return send(message)
                exchange = _Exchange(self, scope, send, finish, context, sent)
            return exchange.judge(message)

        try:
            await app(scope, receive, send_downstream)
        except Exception as exc:
            await (exchange or _Exchange(self, scope, send, finish, context, sent)).failed(exc)
            return
        if exchange is not None and exchange.held5xx is not None:  # a deliberate 5xx from the app: send it
            await exchange.release()

    @property
    def rewrites(self) -> bool:
        """True when the policy rewrites a framework's own error pages (``rewrite_plain_errors``)."""
        return self._rewrite

    def replaces(self, scope: Scope, start: Message) -> bool:
        """True when the error page ``start`` (an ``http.response.start``) is to be replaced by a problem
        document for this request (``ErrorPolicy.wants_rewrite``).

        Example::

            envelope.replaces(scope, {"type": "http.response.start", "status": 404, "headers": []})
        """
        headers = start.get("headers", ())
        ctype = get_header(headers, b"content-type")
        accept = get_header(scope.get("headers", ()), b"accept")
        return self.policy.wants_rewrite(
            start["status"],
            ctype.decode("latin-1") if ctype is not None else None,
            accept.decode("latin-1") if accept is not None else None,
        )

    def log(self, exc: BaseException, scope: Scope, status: int, *, after_start: bool = False) -> None:
        """Log ``exc`` once, with the request id, method, route and ``status`` (a failing handler is ignored).

        Example::

            envelope.log(exc, scope, 500, after_start=True)
        """
        with contextlib.suppress(Exception):  # a broken log handler must not break the error response
            log_server_error(
                exc,
                logger=self.policy.logger,
                request_id=request_id_from_scope(scope),
                method=str(scope.get("method") or ("WEBSOCKET" if scope.get("type") == "websocket" else "")),
                route=_scope_route(scope) or str(scope.get("path", "")),
                status=status,
                after_start=after_start,
            )

    async def send_error(
        self, send: Send, scope: Scope, error: BaseException | int, headers: list[tuple[bytes, bytes]]
    ) -> None:
        """Send the problem document for ``error`` (an exception or a status) with ``headers`` kept from the
        response it replaces.

        Example::

            await envelope.send_error(send, scope, 404, [(b"allow", b"GET")])
        """
        status, base, body = self.document(scope, error)
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in base]
        raw.extend(headers)
        request_id = request_id_from_scope(scope)
        if request_id is not None and not any(k == b"x-request-id" for k, _ in raw):
            raw.append((b"x-request-id", request_id.encode("latin-1")))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})

    def document(self, scope: Scope, error: BaseException | int) -> tuple[int, list[tuple[str, str]], bytes]:
        """``(status, headers, body)`` of the document for ``error`` under the policy; a server error is
        logged first.

        Example::

            status, headers, body = envelope.document(scope, exc)
        """
        request_id = request_id_from_scope(scope)
        info = self._info(error, lambda exc, status: self.log(exc, scope, status))
        return self.policy.render(info, request_id=request_id, path=scope.get("path"))


def _is_last(message: Message) -> bool:
    """True for the last body message of a response."""
    return message["type"] == "http.response.body" and not message.get("more_body", False)


class _Exchange:
    """One request under the envelope once a message left the success path: what went downstream so far, and
    the response held back, if any."""

    __slots__ = ("context", "envelope", "finish", "held", "held5xx", "scope", "send", "sent")

    def __init__(
        self,
        envelope: ErrorEnvelopeMiddleware,
        scope: Scope,
        send: Send,
        finish: Finish | None,
        context: Any,
        sent: int,
    ) -> None:
        self.envelope = envelope
        self.scope = scope
        self.send = send
        self.finish = finish
        self.context = context
        self.sent = sent  # downstream: 1 after an http.response.start, 2 once the whole response
        self.held: Message | None = None  # a framework 4xx page being replaced
        # A 5xx response is held back whole until the app returns or raises: frameworks such as Starlette send
        # their own 500 page and only then re-raise, and the exception (a GuardError keeps its own status)
        # must decide the answer, not the page.
        self.held5xx: list[Message] | None = None

    async def judge(self, message: Message) -> None:
        """A message off the success path (an error start, what follows it): hold, replace or pass it."""
        is_start = message["type"] == "http.response.start"
        if is_start:
            headers = message["headers"] = list(message.get("headers", ()))  # read once, and again below
            as_bytes = bytes_headers(headers)  # an app's bytearray names and values, as bytes
            if as_bytes is not None:
                message["headers"] = as_bytes
            self._inside(message)
        if self.held5xx is not None:
            self.held5xx.append(message)
        elif self.held is not None:
            await self._held_more(message)
        elif not is_start:
            if _is_last(message):
                self.sent = 2
            await self.out(message)
        elif not self._hold(message):
            self.sent = 1
            await self.out(message)

    async def _held_more(self, message: Message) -> None:
        """A message after a held error page: at its end, the problem document replacing it goes out."""
        if _is_last(message) and self.held is not None:
            start, self.held = self.held, None
            await self._replace(start)

    def _inside(self, start: Message) -> None:
        """Add the headers of the layers inside the envelope (a Guard's) to the app's response ``start``."""
        if self.finish is not None:
            start["headers"] = self.finish(self.context, start["status"], start.get("headers", ()), INNER)

    def _hold(self, start: Message) -> bool:
        """Hold a response ``start`` back when it is a 5xx (until the app returns or raises) or a framework's
        error page to replace; True when it was held."""
        if start["status"] >= 500:
            self.held5xx = [start]
            return True
        envelope = self.envelope
        if envelope.rewrites and start["status"] >= 400 and envelope.replaces(self.scope, start):
            self.held = start
            return True
        return False

    async def out(self, message: Message) -> None:
        """Send ``message`` downstream (with the outer layers' headers on a start)."""
        if self.finish is not None and message["type"] == "http.response.start":
            message["headers"] = self.finish(self.context, message["status"], message.get("headers", ()), OUTER)
        await self.send(message)

    async def _replace(self, start: Message) -> None:
        """Send the problem document standing for the held page ``start`` (keeping its non-entity headers)."""
        keep = [(k, v) for k, v in start.get("headers", ()) if k.lower() not in _ENTITY]
        await self.envelope.send_error(self.out, self.scope, start["status"], keep)
        self.sent = 2

    async def failed(self, exc: Exception) -> None:
        """The app raised ``exc``: answer with a document, or log it when the response went out already."""
        if self.held5xx is None and self.sent:
            if self.sent == 2:
                # The response is whole (an app that answered and then failed in a background step): log the
                # error here and keep the connection.
                self.envelope.log(exc, self.scope, 500)
                return
            self.envelope.log(exc, self.scope, 500, after_start=True)
            raise ResponseAborted("the application failed after the response started") from None
        await self.envelope.send_error(self.out, self.scope, exc, [])

    async def release(self) -> None:
        """The app returned after a 5xx: send it, as a problem document when API clients get one."""
        held = self.held5xx or []
        first = held[0]
        if self.envelope.rewrites and self.envelope.replaces(self.scope, first):
            await self._replace(first)
            return
        for message in held:
            await self.out(message)


#: RFC 6455 close code 1011: the server met an unexpected condition.
_INTERNAL_ERROR = 1011
#: The messages ending a WebSocket exchange from the app's side.
_ENDS = frozenset({"websocket.close", "websocket.http.response.start"})


def _client_left(exc: Exception) -> bool:
    """True for Starlette's ``WebSocketDisconnect``: the client closed the socket (or left) while the endpoint
    waited on it or sent to it. Looked up only when Starlette is loaded (no exception is one otherwise)."""
    module = sys.modules.get("starlette.websockets")
    disconnect = getattr(module, "WebSocketDisconnect", None)
    return isinstance(disconnect, type) and isinstance(exc, disconnect)


class _Socket:
    """One WebSocket scope under the envelope: whether the app accepted the handshake or ended the exchange."""

    __slots__ = ("accepted", "ended", "lost", "send_downstream")

    def __init__(self, send: Send) -> None:
        self.send_downstream = send
        self.accepted = False
        self.ended = False  # the app closed the socket or began a denial response: nothing more to send
        self.lost: OSError | None = None  # the server's error on a send to a client that left (uvicorn's)

    async def send(self, message: Message) -> None:
        """The ``send`` the app gets: notes the accept and the end, then passes the message on."""
        kind = message["type"]
        if kind == "websocket.accept":
            self.accepted = True
        elif kind in _ENDS:
            self.ended = True
        try:
            await self.send_downstream(message)
        except OSError as exc:  # the client is gone (uvicorn's ClientDisconnected): no server error if it ends the app
            self.lost = exc
            raise

    async def failed(self, envelope: ErrorEnvelopeMiddleware, scope: Scope, exc: Exception) -> None:
        """The app raised ``exc``: refuse the handshake, or log it and close an accepted socket with 1011. A client
        that left (``WebSocketDisconnect``, the server's error on a send to it) is no error: nothing is logged
        or sent."""
        if exc is self.lost or _client_left(exc):
            return
        if not self.accepted and not self.ended:
            status, headers, body = envelope.document(scope, exc)  # logs a server error
            raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
            request_id = request_id_from_scope(scope)
            if request_id is not None and not any(k.lower() == b"x-request-id" for k, _ in raw):
                raw.append((b"x-request-id", request_id.encode("latin-1")))
            await deny_handshake(scope, self.send_downstream, status, raw, body)
            return
        envelope.log(exc, scope, 500, after_start=True)
        if not self.ended:
            self.ended = True
            with contextlib.suppress(Exception):  # the client may be gone already: the error is logged
                await self.send_downstream({"type": "websocket.close", "code": _INTERNAL_ERROR})
