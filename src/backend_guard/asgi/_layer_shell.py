"""The ASGI translation of :class:`~backend_guard._layer.Layer`: one shell drives any layer.

Each ASGI middleware of the stack (but the ErrorEnvelope, which wraps the call) is a :class:`LayerMiddleware`:
it implements the layer's two steps and inherits ``__call__``, which turns them into ASGI (the request step
on the scope, the response step on the ``http.response.start`` or ``websocket.accept`` message).

A layer refusing a request answers with :func:`refusing` (an app for its :class:`~backend_guard._layer.Answer`):
the problem document on an HTTP scope; on a WebSocket handshake, a refusal before ``websocket.accept`` (the
socket never reaches the app), the one way every layer refuses a handshake.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import TYPE_CHECKING, Any

from .._http import (
    BYTES_LIKE_ERRORS,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    asgi_problem,
    bytes_or_raise,
    deny_handshake,
    request_id_from_scope,
)
from .._layer import Answer, Finish, LayerDefaults
from ..errors._policy import DEFAULT_POLICY

if TYPE_CHECKING:
    from ..errors import ErrorPolicy

__all__ = ["LayerMiddleware", "finishing", "refuse_asgi", "refusing"]

_STARTS = frozenset({"http.response.start", "websocket.accept", "websocket.http.response.start"})
_HTTP = frozenset({"http"})


class LayerMiddleware(LayerDefaults):
    """A pure ASGI middleware made of a layer: subclasses implement ``on_request``/``on_response_start``.

    ``scope_types``: the scope types the layer acts on (others pass through untouched).

    Example::

        class Hello(LayerMiddleware):
            def __init__(self, app):
                self.app = app

            def on_request(self, scope):
                return b"hello"

            def on_response_start(self, context, status, headers):
                return [*headers, (b"x-hello", context)]
    """

    app: ASGIApp
    scope_types: frozenset[str] = _HTTP

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in self.scope_types:
            await self.other_scope(scope, receive, send)
            return
        context = self.on_request(scope)
        if self.awaits and context is not None:
            context = await context
        if context is None:
            await self.app(scope, receive, send)
        elif context.__class__ is Answer:
            await context.app(scope, receive, send)
        elif self.ends:
            try:
                await self.app(scope, receive, self._sending(send, context))
            finally:
                self.on_end(context, None)
        else:
            await self.app(scope, receive, self._sending(send, context))

    async def other_scope(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A scope the layer does not act on (``lifespan``...): passed on untouched (override to act)."""
        await self.app(scope, receive, send)

    def _sending(self, send: Send, context: Any) -> Send:
        """``send`` with this layer's headers merged into the response start (no coroutine of its own: it
        returns the awaitable of ``send``, which the app awaits at once)."""
        merge = self.on_response_start

        def send_with_headers(message: Message) -> Awaitable[None]:
            if message["type"] in _STARTS:
                status, headers = message.get("status", 101), message.get("headers", ())
                try:
                    message["headers"] = merge(context, status, headers)
                except BYTES_LIKE_ERRORS as exc:  # an app's bytearray name or value (no cost on the way through)
                    message["headers"] = merge(context, status, bytes_or_raise(headers, exc))
            return send(message)

        return send_with_headers


def finishing(send: Send, finish: Finish, context: Any, stage: int) -> Send:
    """``send`` with ``finish(context, status, headers, stage)`` applied to the response start (a Guard's)."""

    def finishing_send(message: Message) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            status, headers = message["status"], message.get("headers", ())
            try:
                message["headers"] = finish(context, status, headers, stage)
            except BYTES_LIKE_ERRORS as exc:  # an app's bytearray name or value (no cost on the way through)
                message["headers"] = finish(context, status, bytes_or_raise(headers, exc), stage)
        return send(message)  # the awaitable of the next send: no coroutine of this wrapper's own

    return finishing_send


def refusing(
    error: BaseException, headers: Iterable[tuple[str, str]] = (), policy: ErrorPolicy | None = None
) -> ASGIApp:
    """The app refusing a request with ``error`` (and extra ``headers``), rendered under ``policy`` (the stack's
    :class:`~backend_guard.errors.ErrorPolicy`; default: problem documents): what a layer's :class:`Answer` holds.

    Example::

        return Answer(refusing(CrossOriginRequest("..."), [("retry-after", "3")], self.errors))
    """
    extra = tuple(headers)

    async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
        await refuse_asgi(scope, send, error, extra, policy)

    return refuse


async def refuse_asgi(
    scope: Scope,
    send: Send,
    error: BaseException,
    headers: Iterable[tuple[str, str]] = (),
    policy: ErrorPolicy | None = None,
) -> None:
    """Answer ``error`` on an HTTP scope (an error document under ``policy``, with ``headers``) or refuse a
    WebSocket handshake before it is accepted: a denial response with the same status, headers and document when
    the server offers the ``websocket.http.response`` extension, else ``websocket.close`` with code 1008 (the
    server then answers the handshake with a 403, and the status and headers are lost).

    Example::

        await refuse_asgi(scope, send, CrossOriginRequest("..."))
    """
    if scope["type"] != "websocket":
        await asgi_problem(send, error, scope=scope, headers=headers, policy=policy)
        return
    status, base, body = (policy or DEFAULT_POLICY).render(
        error, request_id=request_id_from_scope(scope), path=scope.get("path"), headers=headers
    )
    await deny_handshake(scope, send, status, [(k.encode("latin-1"), v.encode("latin-1")) for k, v in base], body)
