"""The WSGI shell of the rate limiter: match rules, decide in one store call, answer 429 or add headers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._http import StartResponse, WSGIApp, wsgi_problem
from ..exceptions import StorageError
from ..ratelimit import RateLimitShell, merge_str_fields

__all__ = ["RateLimitMiddleware"]


class RateLimitMiddleware(RateLimitShell[WSGIApp]):
    """WSGI middleware applying a :class:`~backend_guard.ratelimit.RateLimiter` by rules.

    Same behaviour as the ASGI middleware of the same name: one atomic decision for every matching rule,
    429 problem documents with ``Retry-After``, ``RateLimit`` fields on allowed responses when configured,
    503 (never 500) when the store fails under ``on_storage_error="deny"``. The response body iterable is
    returned untouched (streaming is unaffected).

    Example::

        app.wsgi_app = RateLimitMiddleware(app.wsgi_app, limiter=bg.RateLimiter(), limits="100/minute")
    """

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if self.client_ip is not None:
            self.client_ip.apply_environ(environ)
        limiter = self.limiter
        plan = self.plan.plan_for_environ(environ, limiter)
        if plan is None:
            return self.app(environ, start_response)
        reply = limiter.run_plan(plan)
        refused, allowed = self._refusal(plan, reply)
        if refused is not None:
            if refused.degraded:
                return wsgi_problem(start_response, StorageError(), environ=environ, headers=[("Retry-After", "1")])
            return wsgi_problem(
                start_response, refused.error(), environ=environ, headers=refused.headers(legacy=self.legacy)
            )
        if allowed is None:
            return self.app(environ, start_response)
        extra = self._legacy_fields(plan, allowed) if self.legacy else plan.str_fields(allowed)

        def start_with_headers(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, merge_str_fields(headers, extra), exc_info)

        return self.app(environ, start_with_headers)
