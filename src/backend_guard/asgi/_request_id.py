"""RequestIdMiddleware (ASGI): one id per request, on the scope, in log records and on every response."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextvars import Token
from typing import Any

from .._http import REQUEST_ID_KEY, ASGIApp, Scope
from .._logging import RequestIdShell, reset_request_id, set_request_id
from .._shell_headers import stamp
from ._layer_shell import LayerMiddleware

__all__ = ["RequestIdMiddleware"]


class RequestIdMiddleware(RequestIdShell[ASGIApp], LayerMiddleware):
    """Pure ASGI middleware giving each request an id: the incoming ``X-Request-ID`` when it is safe, else new.

    The id is put in ``scope["state"]["request_id"]`` (``request.state.request_id`` in Starlette/FastAPI),
    in :data:`backend_guard._logging.request_id_var` (log records via ``RequestIdFilter``) and on every
    response, 500s included: keep it outermost (``RequestId -> SecureHeaders -> CORS -> ErrorEnvelope``).

    Example::

        app.add_middleware(RequestIdMiddleware)           # added last = outermost in Starlette
        app = RequestIdMiddleware(app, trust_incoming=False)
    """

    scope_types = frozenset({"http", "websocket"})
    ends = True  # the logging context variable is reset when the request ends

    def _compile(self) -> None:
        self._name = self.policy.header.lower().encode("latin-1")
        self._size = len(self._name)
        self.touches = frozenset({self._name})

    def on_request(self, scope: Scope) -> tuple[tuple[tuple[bytes, bytes]], Token[str | None]]:
        """Choose this request's id (the incoming header's, if safe), put it on the scope and in the logging
        context; the context: (the header it adds, as ``appended`` returns it; the context variable's token)."""
        name = self._name
        size = self._size
        incoming = None
        for k, v in scope.get("headers", ()):
            if len(k) == size and (k == name or k.lower() == name):  # the length test skips most lower() calls
                if incoming is not None:  # repeated: no one id, as under WSGI (whose servers join the values)
                    incoming = None
                    break
                incoming = v
        rid = self.policy.choose(incoming)
        state = scope.get("state")
        if state is None:
            scope["state"] = {REQUEST_ID_KEY: rid}
        else:
            state[REQUEST_ID_KEY] = rid
        return ((name, rid.encode("ascii")),), set_request_id(rid)

    def on_response_start(
        self, context: tuple[tuple[tuple[bytes, bytes]], Any], status: int, headers: Iterable[tuple[bytes, bytes]]
    ) -> list[tuple[bytes, bytes]]:
        """The headers with the id added (replacing the app's own header of that name)."""
        return stamp(headers, self._name, self._name, context[0][0][1])

    def appended(
        self, context: tuple[tuple[tuple[bytes, bytes]], Any], status: int, headers: Sequence[tuple[bytes, bytes]]
    ) -> tuple[tuple[bytes, bytes]]:
        """The id's header, when the app set none."""
        return context[0]

    def on_end(self, context: tuple[Any, Token[str | None]], body: Any) -> Any:
        """Reset the logging context variable."""
        reset_request_id(context[1])
        return body
