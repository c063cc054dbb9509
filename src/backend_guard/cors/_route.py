"""CORS outside the middlewares: one decision from plain request values, and a per-route policy.

What lives here: :func:`cors_headers` (for code that is neither ASGI nor WSGI: tells a preflight from an
actual request and asks the policy) and :func:`cors_route` (a route decorator leaving its own
:class:`CORSPolicy` where the CORS middleware looks, under :data:`STATE_KEY`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from .._routes import RouteCall, RouteHooks, guard_route
from ..exceptions import ConfigurationError
from ._decision import CORSDecision
from ._policy import CORSPolicy

__all__ = ["STATE_KEY", "cors_headers", "cors_route"]

F = TypeVar("F", bound=Callable[..., Any])
STATE_KEY = "backend_guard.cors"  # scope["state"][...] / environ[...]: a per-route CORSPolicy override


def _lookup(request_headers: Mapping[str, str] | Iterable[tuple[str, str]], name: str) -> str | None:
    items = request_headers.items() if isinstance(request_headers, Mapping) else request_headers
    for k, v in items:
        if k.lower() == name:
            return v
    return None


def cors_headers(
    policy: CORSPolicy,
    method: str,
    origin: str | None,
    request_headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
) -> CORSDecision:
    """The CORS decision for one request, for code that is neither ASGI nor WSGI.

    A preflight is an ``OPTIONS`` with an ``Origin`` and ``Access-Control-Request-Method`` (read from
    ``request_headers``); anything else is an actual request. Write ``decision.headers`` onto the response
    and merge ``decision.vary`` into its ``Vary``; for a preflight, answer with ``decision.status`` yourself.

    Example::

        d = bg.cors_headers(policy, "GET", request.headers.get("origin"), request.headers)
        for name, value in d.headers:
            response.headers[name] = value
        response.headers["Vary"] = merge_vary(response.headers.get("Vary"), d.vary)
    """
    if method == "OPTIONS" and origin is not None:
        acrm = _lookup(request_headers, "access-control-request-method")
        if acrm is not None:
            return _preflight(policy, origin, acrm, request_headers)
    return policy.actual(origin)


def _preflight(
    policy: CORSPolicy, origin: str, acrm: str, request_headers: Mapping[str, str] | Iterable[tuple[str, str]]
) -> CORSDecision:
    pna = _lookup(request_headers, "access-control-request-private-network")
    return policy.preflight(
        origin,
        acrm,
        _lookup(request_headers, "access-control-request-headers"),
        private_network=(pna or "").strip().lower() == "true",
    )


def cors_route(policy: CORSPolicy) -> Callable[[F], F]:
    """A decorator giving one route its own CORS policy for actual responses (FastAPI, Starlette, Flask, Django).

    The route leaves ``policy`` where the CORS middleware looks when the response starts
    (``scope["state"]["backend_guard.cors"]`` / ``environ["backend_guard.cors"]``); the middleware must be
    installed. Preflights are answered before any route runs, so give the route's path its own preflight rules
    with a path-scoped policy in the middleware's list (``CORSMiddleware(app, policy=[route_policy, default])``).

    Example::

        public = bg.CORSPolicy(allow_origins=["*"], paths=["/public"])

        @app.get("/public/feed")
        @bg.cors_route(public)
        async def feed(): ...
    """
    if not isinstance(policy, CORSPolicy):
        raise ConfigurationError("cors_route needs a CORSPolicy.")
    return guard_route(_CORSHooks(policy))


class _CORSHooks(RouteHooks):
    """The route hooks of :func:`cors_route`: leave the route's policy in the request state before it runs."""

    def __init__(self, policy: CORSPolicy) -> None:
        self.policy = policy

    def before(self, call: RouteCall) -> None:
        call.set_state(STATE_KEY, self.policy)
