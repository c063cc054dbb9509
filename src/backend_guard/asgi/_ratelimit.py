"""The ASGI shell of the rate limiter: match rules, decide in one store call, answer 429 or add headers.

A WebSocket handshake counts as a ``GET`` of its path (same rules, key and client resolution as HTTP); an
over-limit one is refused before ``websocket.accept`` (see :func:`~backend_guard.asgi._layer_shell.refusing`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .._http import ASGIApp, Receive, Scope, Send
from .._layer import Answer
from ..errors import ErrorPolicy
from ..exceptions import ConfigurationError, StorageError
from ..integrations._known_routes import starlette_routes
from ..ratelimit import _RL_FIELDS_ALL, RateLimitResult, RateLimitShell, _Prepared, merge_raw_fields
from ..ratelimit._scripts import RateLimitReply
from ._layer_shell import LayerMiddleware, refusing

__all__ = ["RateLimitMiddleware"]


class RateLimitMiddleware(RateLimitShell[ASGIApp], LayerMiddleware):
    """Pure ASGI middleware applying a :class:`~backend_guard.ratelimit.RateLimiter` by rules.

    Every rule matching a request (path pattern and method) is charged in one atomic decision; ``limits``
    adds a global limit on every path. A refused request gets a 429 problem document with ``Retry-After`` and
    the ``RateLimit`` fields; an allowed one gets the fields when the limiter's ``headers`` is on (one field
    each, merged with a route decorator's). When the store fails, ``on_storage_error="allow"`` passes the
    request and ``"deny"`` answers 503 (``storage-unavailable``, ``Retry-After: 1``); never a 500. Only the
    response start is touched, so streaming responses pass through unchanged.

    A WebSocket handshake is charged as a ``GET`` of its path (a rule with ``methods=["GET"]`` or none matches
    it). Over the limit it never reaches the app: the server's denial response (429 problem document with
    ``Retry-After`` and the fields) when it offers the ``websocket.http.response`` extension, else
    ``websocket.close`` with code 1008 (the client sees a 403). An accepted socket gets the fields on its
    ``websocket.accept`` (the handshake response). Lifespan passes straight through.

    Example::

        limiter = bg.RateLimiter(store="redis://127.0.0.1:6379/0")
        app.add_middleware(RateLimitMiddleware, limiter=limiter, limits="1000/hour",
                           rules=[bg.RateLimitRule("/login", "5/minute", methods=["POST"])],
                           client_ip=bg.ClientIP(["10.0.0.0/8"]))
    """

    scope_types = frozenset({"http", "websocket"})
    touches = _RL_FIELDS_ALL
    context_appended = True  # the context is the fields, appended as they are

    @property
    def awaits(self) -> bool:  # type: ignore[override]
        """True when the decision needs I/O (an asynchronous store): ``on_request`` then returns an awaitable."""
        return not self.limiter.inline

    def on_request(self, scope: Scope) -> Any:
        """Decide on the request (in one store call): an :class:`Answer` (429, 503), the header fields to add
        (the context), or None; an awaitable of that when the store is asynchronous."""
        if self.client_ip is not None:
            self.client_ip.apply_scope(scope)
        limiter = self.limiter
        plan = self.plan.plan_for_scope(scope, limiter)
        if plan is None:
            return None
        if not limiter.inline:
            return self._adecide(plan)
        reply = limiter.run_plan(plan)
        if reply.__class__ is RateLimitReply and reply.allowed and self.send_headers and not self.legacy:
            return plan.raw_fields(reply)  # the common case (allowed, the standard fields), in this frame
        return self._decided(plan, reply)

    async def _adecide(self, plan: _Prepared) -> Answer[ASGIApp] | list[tuple[bytes, bytes]] | None:
        return self._decided(plan, await self.limiter.arun_plan(plan))

    def on_response_start(
        self, context: list[tuple[bytes, bytes]], status: int, headers: Iterable[tuple[bytes, bytes]]
    ) -> list[tuple[bytes, bytes]]:
        """The response's headers with the rate limit fields merged in."""
        return merge_raw_fields(headers, context)

    def appended(
        self, context: list[tuple[bytes, bytes]], status: int, headers: Sequence[tuple[bytes, bytes]]
    ) -> list[tuple[bytes, bytes]]:
        """The rate limit fields (the response holds none yet)."""
        return context

    async def other_scope(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the scope on; at a lifespan startup, check the rules against the app's routes first."""
        if scope["type"] == "lifespan" and self.check_routes:
            await self._check_at_startup(scope, receive, send)
        await self.app(scope, receive, send)

    async def _check_at_startup(self, scope: Scope, receive: Receive, send: Send) -> None:
        """At the lifespan startup of a Starlette/FastAPI app (``scope["app"]``), refuse a rule matching none of
        its routes: the server is told the startup failed (with the rule in the message) and it stops."""
        routes = starlette_routes(scope.get("app"))
        if routes is None:
            return
        try:
            self.check_rules(routes)
        except ConfigurationError as exc:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.failed", "message": f"backend_guard: {exc.detail}"})
            raise

    def _decided(
        self, plan: _Prepared, reply: RateLimitReply | RateLimitResult
    ) -> Answer[ASGIApp] | list[tuple[bytes, bytes]] | None:
        """What a decision means for the request (the context of :meth:`on_request`): an :class:`Answer` (429,
        503), the header fields to add to the wrapped app's response, or None."""
        refused, allowed = self._refusal(plan, reply)
        if refused is not None:
            return Answer(_refusing(refused, self.legacy, self.errors))
        if allowed is None:
            return None
        return self._fields(plan, allowed)

    def _fields(self, plan: _Prepared, allowed: RateLimitReply) -> list[tuple[bytes, bytes]]:
        """The header fields of an allowed request (the legacy ``X-RateLimit-*`` ones when configured)."""
        if self.legacy:
            return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self._legacy_fields(plan, allowed)]
        return plan.raw_fields(allowed)


def _refusing(refused: RateLimitResult, legacy: bool, policy: ErrorPolicy | None) -> ASGIApp:
    """The app answering a refused request under ``policy``: 503 when the store failed (``degraded``), else the
    refusal's."""
    if refused.degraded:
        return refusing(StorageError(), [("retry-after", "1")], policy)
    return refusing(refused.error(), refused.headers(legacy=legacy), policy)
