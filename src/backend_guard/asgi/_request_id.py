"""RequestIdMiddleware (ASGI): one id per request, on the scope, in log records and on every response."""

from __future__ import annotations

from collections.abc import Iterable

from .._http import ASGIApp, Message, Receive, Scope, Send
from .._logging import RequestIdShell, request_id_var

__all__ = ["RequestIdMiddleware"]


def _stamp(headers: Iterable[tuple[bytes, bytes]], name: bytes, value: bytes) -> list[tuple[bytes, bytes]]:
    """A new header list with ``name: value`` added, replacing the app's own ``name`` header if it set one."""
    size = len(name)
    for k, _ in headers:
        if len(k) == size and k.lower() == name:  # the app set one: ours replaces it
            out = [(k, v) for k, v in headers if k.lower() != name]
            out.append((name, value))
            return out
    return [*headers, (name, value)]


class RequestIdMiddleware(RequestIdShell[ASGIApp]):
    """Pure ASGI middleware giving each request an id: the incoming ``X-Request-ID`` when it is safe, else new.

    The id is put in ``scope["state"]["request_id"]`` (``request.state.request_id`` in Starlette/FastAPI),
    in :data:`backend_guard._logging.request_id_var` (log records via ``RequestIdFilter``) and on every
    response, 500s included: keep it outermost (``RequestId -> SecureHeaders -> CORS -> ErrorEnvelope``).

    Example::

        app.add_middleware(RequestIdMiddleware)           # added last = outermost in Starlette
        app = RequestIdMiddleware(app, trust_incoming=False)
    """

    def _compile(self) -> None:
        self._name = self.policy.header.lower().encode("latin-1")

    def _begin(self, scope: Scope, incoming: bytes | None) -> str:
        """Choose this request's id (from the incoming header value, if any) and put it on the scope."""
        rid = self.policy.choose(incoming)
        state = scope.get("state")
        if state is None:
            scope["state"] = {"request_id": rid}
        else:
            state["request_id"] = rid
        return rid

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        name = self._name
        size = len(name)
        incoming = None
        for k, v in scope.get("headers", ()):
            if len(k) == size and (k == name or k.lower() == name):  # the length test skips most lower() calls
                incoming = v
                break
        rid = self._begin(scope, incoming)
        value = rid.encode("ascii")

        async def send_with_id(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start" or kind == "websocket.accept":
                message["headers"] = _stamp(message.get("headers", ()), name, value)
            await send(message)

        token = request_id_var.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
