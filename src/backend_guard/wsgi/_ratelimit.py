"""The WSGI shell of the rate limiter: match rules, decide in one store call, answer 429 or add headers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .._http import StartResponse, WSGIApp, wsgi_problem
from ..clientip import ClientIP
from ..exceptions import StorageError
from ..ratelimit import KeyFunc, LimitSpec, RateLimiter, RateLimitResult, RateLimitRule, RulePlan, merge_str_fields

__all__ = ["RateLimitMiddleware"]


class RateLimitMiddleware:
    """WSGI middleware applying a :class:`~backend_guard.ratelimit.RateLimiter` by rules.

    Same behaviour as the ASGI middleware of the same name: one atomic decision for every matching rule,
    429 problem documents with ``Retry-After``, ``RateLimit`` fields on allowed responses when configured,
    503 (never 500) when the store fails under ``on_storage_error="deny"``. The response body iterable is
    returned untouched (streaming is unaffected).

    Example::

        app.wsgi_app = RateLimitMiddleware(app.wsgi_app, limiter=bg.RateLimiter(), limits="100/minute")
    """

    def __init__(
        self,
        app: WSGIApp,
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

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        limiter = self.limiter
        plan = self.plan.plan_for_environ(environ, limiter)
        if plan is None:
            return self.app(environ, start_response)
        reply = limiter._run(plan)
        if isinstance(reply, RateLimitResult):  # the store failed: on_storage_error decided
            if reply.allowed:
                return self.app(environ, start_response)
            return wsgi_problem(start_response, StorageError(), environ=environ, headers=[("Retry-After", "1")])
        if int(reply[0]) != 1:
            result = limiter._result(plan, reply)
            return wsgi_problem(
                start_response, result.error(), environ=environ, headers=result.headers(legacy=self.legacy)
            )
        if not self.send_headers:
            return self.app(environ, start_response)
        extra = limiter._result(plan, reply).headers(legacy=True) if self.legacy else plan.str_fields(reply)

        def start_with_headers(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, merge_str_fields(headers, extra), exc_info)

        return self.app(environ, start_with_headers)
