"""The ASGI shell of the rate limiter: match rules, decide in one store call, answer 429 or add headers."""

from __future__ import annotations

from .._http import ASGIApp, Message, Receive, Scope, Send, asgi_problem
from ..exceptions import ConfigurationError, StorageError
from ..integrations._known_routes import starlette_routes
from ..ratelimit import RateLimitResult, RateLimitShell, _Prepared, merge_raw_fields
from ..ratelimit._scripts import RateLimitReply

__all__ = ["RateLimitMiddleware"]


class RateLimitMiddleware(RateLimitShell[ASGIApp]):
    """Pure ASGI middleware applying a :class:`~backend_guard.ratelimit.RateLimiter` by rules.

    Every rule matching a request (path pattern and method) is charged in one atomic decision; ``limits``
    adds a global limit on every path. A refused request gets a 429 problem document with ``Retry-After`` and
    the ``RateLimit`` fields; an allowed one gets the fields when the limiter's ``headers`` is on (one field
    each, merged with a route decorator's). When the store fails, ``on_storage_error="allow"`` passes the
    request and ``"deny"`` answers 503 (``storage-unavailable``, ``Retry-After: 1``); never a 500. Only the
    response start is touched, so streaming responses pass through unchanged.

    Example::

        limiter = bg.RateLimiter(store="redis://127.0.0.1:6379/0")
        app.add_middleware(RateLimitMiddleware, limiter=limiter, limits="1000/hour",
                           rules=[bg.RateLimitRule("/login", "5/minute", methods=["POST"])],
                           client_ip=bg.ClientIP(["10.0.0.0/8"]))
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and self.check_routes:
                await self._check_at_startup(scope, receive, send)
            await self.app(scope, receive, send)
            return
        if self.client_ip is not None:
            self.client_ip.apply_scope(scope)
        limiter = self.limiter
        plan = self.plan.plan_for_scope(scope, limiter)
        if plan is None:
            await self.app(scope, receive, send)
            return
        reply = limiter.run_plan(plan) if limiter.inline else await limiter.arun_plan(plan)
        answer, extra = self._outcome(plan, reply)
        if answer is not None:
            await answer(scope, receive, send)
            return
        if extra is None:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = merge_raw_fields(message.get("headers", ()), extra)
            await send(message)

        await self.app(scope, receive, send_with_headers)

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

    def _outcome(
        self, plan: _Prepared, reply: RateLimitReply | RateLimitResult
    ) -> tuple[ASGIApp | None, list[tuple[bytes, bytes]] | None]:
        """What a decision means for the request: (an app answering instead of the wrapped one, or None;
        the header fields to add to the wrapped app's response, or None)."""
        if reply.__class__ is RateLimitReply and reply.allowed and self.send_headers and not self.legacy:
            return None, plan.raw_fields(reply)  # the common case: allowed, with the standard fields
        refused, allowed = self._refusal(plan, reply)
        if refused is not None:
            if refused.degraded:
                return _storage_unavailable, None
            legacy = self.legacy

            async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
                await asgi_problem(send, refused.error(), scope=scope, headers=refused.headers(legacy=legacy))

            return refuse, None
        if allowed is None:
            return None, None
        if self.legacy:
            return None, [
                (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self._legacy_fields(plan, allowed)
            ]
        return None, plan.raw_fields(allowed)


async def _storage_unavailable(scope: Scope, receive: Receive, send: Send) -> None:
    await asgi_problem(send, StorageError(), scope=scope, headers=[("retry-after", "1")])
