"""``RateLimiter.limit`` and ``RateLimiter.dependency``: the rate limiter on the shared route mechanism.

:class:`_LimitHooks` are handed to :func:`~backend_guard._routes.guard_route` (the decorator) or
:func:`~backend_guard._routes.fastapi_dependency` (the dependency).

The hooks charge the route's limits before the route runs (a refusal is a 429 problem document) and add the
``RateLimit`` fields to the response; the bucket is the route template (never the concrete URL), one for all
its methods unless the decorator asks for one per method (HEAD then shares GET's: the same handler answers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._routes import RouteCall, RouteHooks
from .clientip import ClientIP
from .exceptions import StorageError

if TYPE_CHECKING:
    from .ratelimit import KeyFunc, Rate, RateLimiter, RateLimitResult

STATE_KEY = "backend_guard.ratelimit"


class _LimitHooks(RouteHooks):
    def __init__(
        self,
        limiter: RateLimiter,
        rates: tuple[Rate, ...],
        key: KeyFunc | str | None,
        cost: int,
        scope: str | None,
        name: str | None,
        client_ip: ClientIP | None,
        per_method: bool = False,
    ) -> None:
        from .ratelimit import KeyResolver

        self.limiter = limiter
        self.rates = rates
        self.resolver = KeyResolver(key, client_ip)
        self.cost = cost
        self.scope = scope
        self.name = name
        self.per_method = per_method

    def _bucket(self, call: RouteCall) -> str:
        """The bucket of this call: the scope given, else the route template (and standard method, when per method)."""
        from .ratelimit import bucket_method

        if self.scope:
            return self.scope
        if self.per_method:
            method = bucket_method(call.view.method)
            if method is not None:  # an invented method name gets no bucket of its own
                return f"{method} {call.view.route_or_path}"
        return call.view.route_or_path

    def _plan(self, call: RouteCall) -> Any:
        """The limiter's compiled plan for this call (cached per key and route), or None when exempt."""
        from .ratelimit import Charge

        key = self.resolver.from_view(call.view)
        if key is None:
            return None
        scope = self._bucket(call)
        return self.limiter._cached((self, key, scope), lambda: [Charge(key, self.rates, self.cost, scope, self.name)])

    def _apply(self, call: RouteCall, result: RateLimitResult) -> None:
        call.set_state(STATE_KEY, result)
        if not result.allowed:
            if result.degraded:
                raise StorageError()
            for k, v in result.headers(legacy=self.limiter.legacy_headers):
                call.add_header(k, v)
            raise result.error()
        if self.limiter.headers:
            for k, v in result.headers(legacy=self.limiter.legacy_headers):
                call.add_header(k, v)

    def before(self, call: RouteCall) -> None:
        plan = self._plan(call)
        if plan is not None:
            self._apply(call, self.limiter._decide(plan))

    async def abefore(self, call: RouteCall) -> None:
        plan = self._plan(call)
        if plan is not None:
            self._apply(call, await self.limiter._adecide(plan))
