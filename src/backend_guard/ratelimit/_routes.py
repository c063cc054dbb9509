"""``RateLimiter.limit`` and ``RateLimiter.dependency``: the rate limiter on the shared route mechanism.

:class:`_LimitHooks` are handed to :func:`~backend_guard._routes.guard_route` (the decorator) or
:func:`~backend_guard._routes.fastapi_dependency` (the dependency).

The hooks charge the route's limits before the route runs (a refusal is a 429 problem document) and add the
``RateLimit`` fields to the response. The bucket is one handler on one route template (never the concrete
URL): the decorated function (named once, at decoration, from its module and qualified name: see
:func:`~backend_guard.ratelimit.handler_name`), or for the dependency the endpoint FastAPI routed to. It is
one for all the handler's methods unless ``per_method`` (HEAD then shares GET's: the same handler answers).
Clients see the route template (and method, per method) as the policy name; the handler's name stays server
side, in the store key.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from .._routes import RouteCall, RouteHooks
from ..clientip import ClientIP
from ..exceptions import StorageError
from ._keys import Charge, KeyFunc, KeyResolver, bucket_method, handler_name
from ._result import RateLimitResult
from ._scripts import RateLimitReply

if TYPE_CHECKING:
    from ._limiter import RateLimiter
    from ._prepared import _Prepared
    from ._rates import Rate

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
        handler: str | None = None,
    ) -> None:
        self.limiter = limiter
        self.rates = rates
        self.resolver = KeyResolver(key, client_ip)
        self.cost = cost
        self.scope = scope
        self.name = name
        self.per_method = per_method
        #: The decorated handler's name (module and qualified name), None for the dependency (one object for
        #: several routes: its bucket follows the endpoint of each request instead).
        self.handler = handler

    def for_handler(self, handler: str) -> _LimitHooks:
        """These hooks for one decorated handler, named ``handler`` (a bucket of its own on each route)."""
        bound = copy.copy(self)
        bound.handler = handler
        return bound

    def _charge(self, key: str, route: str | None, method: str | None, endpoint: Any) -> Charge:
        """The charge of a request to ``endpoint`` on ``route`` (``method`` when per method, else None).

        Nothing here comes from the request but the key: ``route`` is the router's template, ``method`` one of
        HTTP's standard methods, the handler named from code. The policy name clients see is the route template.
        """
        if self.scope:
            return Charge(key, self.rates, self.cost, self.scope, self.name)
        shown = _policy_name(method, route)
        return Charge(key, self.rates, self.cost, f"{shown} @{self._owner(endpoint)}", self.name or shown)

    def _owner(self, endpoint: Any) -> str:
        """Who owns the bucket: the decorated handler, or for the dependency the endpoint it guards this time
        (marked apart from a decorator on the same endpoint)."""
        if self.handler is not None:
            return self.handler
        return "dependency " + handler_name(endpoint) if endpoint is not None else "dependency"

    def runs_inline(self) -> bool:
        """True on a store doing no I/O (the memory store): an async route then decides without a coroutine."""
        return self.limiter.inline

    def _key(self, call: RouteCall) -> str | None:
        """The request's key, from its WSGI environ (the client address or a header: no view is built), or from
        its view for a key function (None exempts the request); :meth:`_plan` reads an ASGI scope's itself."""
        resolver = self.resolver
        if resolver.func is None:
            environ = call.environ
            if environ is not None:
                return resolver.from_environ(environ)
        return resolver.from_view(call.view)

    def _plan(self, call: RouteCall) -> _Prepared | None:
        """The limiter's compiled plan for this call (cached per key, route and handler), or None when exempt."""
        resolver = self.resolver
        # The adapter is asked directly (call.scope and call.route, without two properties' calls per request).
        adapter, request = call.adapter, call.request
        scope = adapter.scope_of(request) if resolver.func is None and request is not None else None
        key = resolver.from_scope(scope) if scope is not None else self._key(call)
        if key is None:
            return None
        # The router's template, never the concrete path a client chose (a call around a bare view: the view's).
        route = None if self.scope else adapter.route_of(request) if request is not None else call.route
        method = self._method(call.view.method) if self.per_method else None
        endpoint = None if self.handler is not None else call.endpoint
        cache_key = (self, key, route, method, endpoint)
        plan = self.limiter.known_plan(cache_key)  # no closure built when the plan is known
        if plan is None:
            plan = self.limiter.cached_plan(cache_key, lambda: [self._charge(key, route, method, endpoint)])
        return plan

    def _method(self, method: str) -> str | None:
        """The method a request counts under: its own bucket when counted per method (and not in a shared
        scope), else None (the handler's one bucket); an invented method name gets no bucket of its own."""
        return bucket_method(method) if self.per_method and not self.scope else None

    def _apply(self, call: RouteCall, plan: _Prepared, reply: RateLimitReply | RateLimitResult) -> None:
        """Refuse (429 with the fields, the result kept on the request; or 503 when the store failed closed), or
        add the fields to an allowed response when the limiter's ``headers`` is on (no result built for it)."""
        if isinstance(reply, RateLimitResult):  # the store failed and on_storage_error answered: no limit to show
            call.set_state(STATE_KEY, reply)
            if not reply.allowed:
                raise StorageError()
            return
        limiter = self.limiter
        if reply.allowed:
            if not limiter.headers:
                return
            if call.adapter.raw_headers and not limiter.legacy_headers:
                call.add_raw_headers(plan.raw_fields(reply))  # encoded as the ASGI middleware sends them
            else:
                call.response_headers += self._fields(plan, reply)
            return
        result = limiter.result_for(plan, reply)
        call.set_state(STATE_KEY, result)
        call.response_headers += self._fields(plan, reply)
        raise result.error()

    def _fields(self, plan: _Prepared, reply: RateLimitReply) -> list[tuple[str, str]]:
        """The ``RateLimit`` fields (and the legacy ones when the limiter sends them); without legacy fields,
        the plan's precomputed ones (the very values :func:`format_headers` writes)."""
        if self.limiter.legacy_headers:
            return self.limiter.result_for(plan, reply).headers(legacy=True)
        return plan.str_fields(reply)

    def before(self, call: RouteCall) -> None:
        plan = self._plan(call)
        if plan is not None:
            self._apply(call, plan, self.limiter.run_plan(plan))

    async def abefore(self, call: RouteCall) -> None:
        plan = self._plan(call)
        if plan is not None:
            self._apply(call, plan, await self.limiter.arun_plan(plan))


def _policy_name(method: str | None, route: str | None) -> str:
    """The policy name clients see: the route template, after the method when counted per method."""
    return " ".join(part for part in (method, route) if part) or "default"
