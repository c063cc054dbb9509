"""The per-route override: a route decorated with ``policy.route()`` gets that policy instead of the stack's.

This module owns the two halves of an override. Before the route runs, :class:`OverrideHooks` marks the request
(:data:`OVERRIDE_KEY` in ``scope["state"]`` or the WSGI environ), so the middleware replaces its policy's headers
with the override's for that response; after it, the hooks return the override's headers for the route's own
response, which is what a route gets where no middleware is installed. The policy is seen only through the
small :class:`RoutePolicy` protocol, so this module does not depend on how a policy is compiled.
"""

from __future__ import annotations

from typing import Final, Protocol

from .._http import route_path
from .._routes import RouteCall, RouteHooks
from ._nonce import peek_nonce

__all__ = ["ENVIRON_OVERRIDE_KEY", "OVERRIDE_KEY", "OverrideHooks", "RoutePolicy"]

#: Where a per-route :class:`~backend_guard.headers.SecureHeaders` that replaces the middleware's policy is kept.
OVERRIDE_KEY: Final = "backend_guard.secure_headers"
ENVIRON_OVERRIDE_KEY: Final = OVERRIDE_KEY


class RoutePolicy(Protocol):
    """What the override hooks use of a policy (``SecureHeaders`` is one)."""

    force_hsts: bool

    def headers_for(
        self, *, secure: bool, path: str = "/", nonce: str | None = None, status: int = 200
    ) -> list[tuple[str, str]]:
        """The headers to add to one response."""
        ...


class OverrideHooks(RouteHooks):
    """Marks the request for the middleware and puts the override's headers on the route's response."""

    def __init__(self, policy: RoutePolicy) -> None:
        self.policy = policy

    def before(self, call: RouteCall) -> None:
        call.set_state(OVERRIDE_KEY, self.policy)

    def after(self, call: RouteCall, status: int) -> list[tuple[str, str]]:
        return self.policy.headers_for(
            secure=call.view.secure or self.policy.force_hsts,
            path=_policy_path(call),
            nonce=peek_nonce(call.request),
            status=status,
        )


def _policy_path(call: RouteCall) -> str:
    """The path ``no_store_paths`` match, as the middlewares match it: a Starlette/FastAPI request's path without
    ``root_path`` (:func:`~backend_guard._http.route_path`), else the request's full path (WSGI, Django)."""
    scope = call.scope if call.framework == "starlette" else None
    return call.view.path if scope is None else route_path(scope)
