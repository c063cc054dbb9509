"""ErrorEnvelopeMiddleware (ASGI): every error below it becomes one safe document, the success path untouched.

- an exception before the response started: a problem document (or the policy's format) with its status;
  5xx logged once with the request id, method, route, status and traceback;
- an exception after the response started: nothing more is sent (no second ``http.response.start``); the
  error is logged and :class:`~backend_guard.errors.ResponseAborted` is raised so the server closes the
  connection (uvicorn does exactly that) and the client sees a truncated response;
- a framework's own plain-text/HTML 4xx/5xx page (Starlette's 404/405 text, for instance) is replaced with a
  problem document for API clients, keeping its status and headers such as ``Allow``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from .._http import ASGIApp, Message, Receive, Scope, Send, get_header, request_id_from_scope
from .._logging import log_server_error
from ..errors import ErrorEnvelopeShell, ResponseAborted
from ..ratelimit import merge_raw_fields
from ..request import _scope_route

__all__ = ["ErrorEnvelopeMiddleware"]

#: A fused Guard's work on a response start: (its per-request context, the app's headers, rate limit fields
#: or None, the status) -> the headers sent.
Finish = Callable[
    [Any, Iterable[tuple[bytes, bytes]], "list[tuple[bytes, bytes]] | None", int], list[tuple[bytes, bytes]]
]


def _finishing(send: Send, finish: Finish, ctx: Any) -> Send:
    """``send`` with ``finish`` applied to the response start (the rare paths of a fused Guard)."""

    async def finishing_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = finish(ctx, message.get("headers", ()), None, message["status"])
        await send(message)

    return finishing_send


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
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self._guard(self.app, scope, receive, send, None)

    async def _guard(
        self,
        app: ASGIApp,
        scope: Scope,
        receive: Receive,
        send: Send,
        extra: list[tuple[bytes, bytes]] | None,
        finish: Finish | None = None,
        ctx: Any = None,
    ) -> None:
        """Run ``app`` under the envelope; ``extra`` (rate limit fields, from a fused Guard) is merged into
        the app's response start first, as the RateLimitMiddleware inside this one would have done.

        ``finish`` (from a fused Guard): the outer layers' work on a response start, done here instead of in
        another ``send`` wrapper. Every start that goes downstream, the app's or one rendered here, gets
        ``finish(ctx, headers, extra, status)``, ``extra`` being None once it is merged in already.
        """
        sent = 0  # downstream: 1 after an http.response.start, 2 once the whole response
        held: Message | None = None  # a framework 4xx page being replaced
        # A 5xx response is held back whole until the app returns or raises: frameworks such as Starlette send
        # their own 500 page and only then re-raise, and the exception (a GuardError keeps its own status)
        # must decide the answer, not the page.
        held5xx: list[Message] | None = None

        async def guarded_send(message: Message) -> None:
            nonlocal sent, held, held5xx
            if held5xx is None and held is None:  # the hot path: a success response passing through
                kind = message["type"]
                if kind == "http.response.start":
                    if message["status"] < 400:
                        if finish is not None:
                            message["headers"] = finish(ctx, message.get("headers", ()), extra, message["status"])
                        elif extra is not None:
                            message["headers"] = merge_raw_fields(message.get("headers", ()), extra)
                        sent = 1
                        await send(message)
                        return
                elif kind == "http.response.body":
                    if not message.get("more_body", False):
                        sent = 2
                    await send(message)
                    return
            out = send if finish is None else _finishing(send, finish, ctx)
            if extra is not None and message["type"] == "http.response.start":
                message["headers"] = merge_raw_fields(message.get("headers", ()), extra)
            if held5xx is not None:
                held5xx.append(message)
                return
            if held is not None:
                if message["type"] == "http.response.body" and not message.get("more_body", False):
                    start, held = held, None
                    keep = [(k, v) for k, v in start.get("headers", ()) if k.lower() not in _ENTITY]
                    await self._send_error(out, scope, start["status"], keep)
                    sent = 2
                return
            if message["type"] == "http.response.start":
                if message["status"] >= 500:
                    held5xx = [message]
                    return
                if self._rewrite and message["status"] >= 400 and self._replace(scope, message):
                    held = message
                    return
                sent = 1
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                sent = 2
            await out(message)

        try:
            await app(scope, receive, guarded_send)
        except Exception as exc:
            out = send if finish is None else _finishing(send, finish, ctx)
            if held5xx is not None:
                await self._send_error(out, scope, exc, [])
                return
            if sent == 2:
                # The response is whole (an app that answered and then failed in a background step): log the
                # error here and keep the connection.
                self._log(exc, scope, 500)
                return
            if sent:
                self._log(exc, scope, 500, after_start=True)
                raise ResponseAborted("the application failed after the response started") from None
            await self._send_error(out, scope, exc, [])
            return
        if held5xx is not None:  # a deliberate 5xx from the app: send it (rewritten for API clients)
            out = send if finish is None else _finishing(send, finish, ctx)
            first = held5xx[0]
            if self._rewrite and self._replace(scope, first):
                keep = [(k, v) for k, v in first.get("headers", ()) if k.lower() not in _ENTITY]
                await self._send_error(out, scope, first["status"], keep)
            else:
                for message in held5xx:
                    await out(message)

    def _replace(self, scope: Scope, start: Message) -> bool:
        headers = start.get("headers", ())
        ctype = get_header(headers, b"content-type")
        accept = get_header(scope.get("headers", ()), b"accept")
        return self.policy.wants_rewrite(
            start["status"],
            ctype.decode("latin-1") if ctype is not None else None,
            accept.decode("latin-1") if accept is not None else None,
        )

    def _log(self, exc: BaseException, scope: Scope, status: int, *, after_start: bool = False) -> None:
        with contextlib.suppress(Exception):  # a broken log handler must not break the error response
            log_server_error(
                exc,
                logger=self.policy.logger,
                request_id=request_id_from_scope(scope),
                method=str(scope.get("method", "")),
                route=_scope_route(scope) or str(scope.get("path", "")),
                status=status,
                after_start=after_start,
            )

    async def _send_error(
        self, send: Send, scope: Scope, error: BaseException | int, headers: list[tuple[bytes, bytes]]
    ) -> None:
        request_id = request_id_from_scope(scope)
        info = self._info(error, lambda exc, status: self._log(exc, scope, status))
        status, base, body = self.policy.render(info, request_id=request_id, path=scope.get("path"))
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in base]
        raw.extend(headers)
        if request_id is not None and not any(k == b"x-request-id" for k, _ in raw):
            raw.append((b"x-request-id", request_id.encode("latin-1")))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})
