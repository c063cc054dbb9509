"""The ASGI shell of the rate limiter: match rules, decide in one store call, answer 429 or add headers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .._http import ASGIApp, Message, Receive, Scope, Send, asgi_problem
from ..clientip import ClientIP
from ..exceptions import StorageError
from ..ratelimit import (
    KeyFunc,
    LimitSpec,
    RateLimiter,
    RateLimitResult,
    RateLimitRule,
    RulePlan,
    _Prepared,
    merge_raw_fields,
)

__all__ = ["RateLimitMiddleware"]


class RateLimitMiddleware:
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

    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter | None = None,
        rules: Iterable[RateLimitRule] = (),
        *,
        limits: str | Sequence[LimitSpec] | None = None,
        key: KeyFunc | str | None = None,
        client_ip: ClientIP | None = None,
        ipv6_prefix: int = 64,
        headers: bool | None = None,
        legacy_headers: bool | None = None,
    ) -> None:
        self.app = app
        self.limiter = limiter if limiter is not None else RateLimiter()
        self.plan = RulePlan(
            rules, limits=limits, key=key, client_ip=client_ip or self.limiter.client_ip, ipv6_prefix=ipv6_prefix
        )
        self.send_headers = self.limiter.headers if headers is None else headers
        self.legacy = self.limiter.legacy_headers if legacy_headers is None else legacy_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limiter = self.limiter
        plan = self.plan.plan_for_scope(scope, limiter)
        if plan is None:
            await self.app(scope, receive, send)
            return
        reply = limiter._run(plan) if limiter._inline else await limiter._arun(plan)
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

    def _outcome(
        self, plan: _Prepared, reply: Sequence[Any] | RateLimitResult
    ) -> tuple[ASGIApp | None, list[tuple[bytes, bytes]] | None]:
        """What a decision means for the request: (an app answering instead of the wrapped one, or None;
        the header fields to add to the wrapped app's response, or None)."""
        limiter = self.limiter
        if isinstance(reply, RateLimitResult):  # the store failed: on_storage_error decided
            return (None if reply.allowed else _storage_unavailable), None
        if int(reply[0]) != 1:
            result = limiter._result(plan, reply)
            legacy = self.legacy

            async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
                await asgi_problem(send, result.error(), scope=scope, headers=result.headers(legacy=legacy))

            return refuse, None
        if not self.send_headers:
            return None, None
        if self.legacy:
            return None, [
                (k.lower().encode("latin-1"), v.encode("latin-1"))
                for k, v in limiter._result(plan, reply).headers(legacy=True)
            ]
        return None, plan.raw_fields(reply)


async def _storage_unavailable(scope: Scope, receive: Receive, send: Send) -> None:
    await asgi_problem(send, StorageError(), scope=scope, headers=[("retry-after", "1")])
