"""What the ASGI and WSGI ``RateLimitMiddleware`` share, protocol aside: :class:`RateLimitShell`.

What lives here: the middleware's configuration (limiter, compiled :class:`~backend_guard.ratelimit.RulePlan`,
header options, the route check at startup) and what a decision means for a response (refused, or allowed
with or without header fields). Each shell only reads its protocol's request and writes its response.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Generic, TypeVar

from .._check import check_bool, check_instance, optional
from ..clientip import ClientIP
from ..errors import ErrorPolicy
from ._keys import KeyFunc
from ._limiter import RateLimiter
from ._plan import RulePlan
from ._prepared import _Prepared
from ._rates import LimitSpec
from ._result import RateLimitResult
from ._route_check import KnownRoutes, check_rule_routes
from ._rules import RateLimitRule
from ._scripts import RateLimitReply

__all__ = ["RateLimitShell"]

App = TypeVar("App")  # an ASGI or a WSGI app: the shells share their configuration


class RateLimitShell(Generic[App]):
    """The configuration both ``RateLimitMiddleware`` shells share (ASGI and WSGI): each keeps only its protocol.

    ``limiter`` (a memory one by default), the compiled :class:`RulePlan` on ``plan``, and whether allowed
    responses get the ``RateLimit`` fields (``send_headers``) and the legacy ``X-RateLimit-*`` ones
    (``legacy``), from the limiter unless given. ``check_routes``: whether the rules are checked against the
    app's routes when it starts, where the framework knows them (:meth:`check_rules`). ``errors``: the
    :class:`~backend_guard.errors.ErrorPolicy` its 429/503 are rendered with (a stack built from settings passes
    its own; default: the limiter's ``errors``, else problem documents).

    Example::

        class RateLimitMiddleware(RateLimitShell[WSGIApp]):
            def __call__(self, environ, start_response):
                plan = self.plan.plan_for_environ(environ, self.limiter)
                ...
    """

    def __init__(
        self,
        app: App,
        limiter: RateLimiter | None = None,
        rules: Iterable[RateLimitRule] = (),
        *,
        limits: str | Sequence[LimitSpec] | None = None,
        key: KeyFunc | str | None = None,
        client_ip: ClientIP | None = None,
        ipv6_prefix: int = 64,
        headers: bool | None = None,
        legacy_headers: bool | None = None,
        check_routes: bool = True,
        errors: ErrorPolicy | None = None,
    ) -> None:
        self.app = app
        optional(check_instance, "limiter", limiter, RateLimiter)
        optional(check_instance, "errors", errors, ErrorPolicy)
        optional(check_instance, "client_ip", client_ip, ClientIP)
        optional(check_bool, "headers", headers)
        optional(check_bool, "legacy_headers", legacy_headers)
        check_bool("check_routes", check_routes)
        self.limiter = limiter if limiter is not None else RateLimiter()
        #: The policy refusals are rendered with: ``errors``, else the limiter's (None: problem documents).
        self.errors = errors if errors is not None else self.limiter.errors
        client_ip = _given(client_ip, self.limiter.client_ip)
        self.plan = RulePlan(rules, limits=limits, key=key, client_ip=client_ip, ipv6_prefix=ipv6_prefix)
        #: Used alone with trusted proxies, the shell resolves the client once for everything inside it.
        self.client_ip = _trusting(client_ip)
        self.send_headers = _given(headers, self.limiter.headers)
        self.legacy = _given(legacy_headers, self.limiter.legacy_headers)
        #: Whether the rules are checked against the app's routes when it starts (see check_rule_routes).
        self.check_routes = check_routes

    def check_rules(self, routes: KnownRoutes) -> None:
        """Refuse (ConfigurationError) a rule matching none of ``routes``; nothing when ``check_routes`` is off.

        Example::

            middleware.check_rules(KnownRoutes(lambda p: p == "/login", ("/login",)))
        """
        if self.check_routes:
            check_rule_routes(self.plan.rules.rules, routes)

    def _refusal(
        self, plan: _Prepared, reply: RateLimitReply | RateLimitResult
    ) -> tuple[RateLimitResult | None, RateLimitReply | None]:
        """What a decision means, protocol aside: (the result of a refusal, or None; the store's reply when
        the allowed response gets header fields, or None). A degraded refusal is the store failing closed."""
        if isinstance(reply, RateLimitResult):  # the store failed: on_storage_error decided
            return _failed_closed(reply), None
        if not reply.allowed:
            return self.limiter.result_for(plan, reply), None
        return None, reply if self.send_headers else None

    def _legacy_fields(self, plan: _Prepared, reply: RateLimitReply) -> list[tuple[str, str]]:
        """The fields of an allowed response with the legacy ``X-RateLimit-*`` ones (``legacy`` on)."""
        return self.limiter.result_for(plan, reply).headers(legacy=True)


_T = TypeVar("_T")


def _given(value: _T | None, default: _T) -> _T:
    """``value``, or ``default`` when it is None (an option left to the limiter's own)."""
    return default if value is None else value


def _trusting(client_ip: ClientIP | None) -> ClientIP | None:
    """``client_ip`` when it trusts proxies (the shell then resolves the client once for the app), else None."""
    return client_ip if client_ip is not None and client_ip.enabled else None


def _failed_closed(result: RateLimitResult) -> RateLimitResult | None:
    """The degraded result of a store failure when it refuses (``on_storage_error="deny"``), else None."""
    return None if result.allowed else result
