"""The WSGI shell of the rate limiter: match rules, decide in one store call, answer 429 or add headers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

from .._http import StartResponse, WSGIApp, wsgi_problem
from .._layer import Answer
from ..errors import ErrorPolicy
from ..exceptions import StorageError
from ..ratelimit import RateLimitResult, RateLimitShell, merge_str_fields
from ..ratelimit._fields import _RL_STR_FIELDS
from ._layer_shell import LayerMiddleware

__all__ = ["RateLimitMiddleware"]


class RateLimitMiddleware(RateLimitShell[WSGIApp], LayerMiddleware):
    """WSGI middleware applying a :class:`~backend_guard.ratelimit.RateLimiter` by rules.

    Same behaviour as the ASGI middleware of the same name: one atomic decision for every matching rule,
    429 problem documents with ``Retry-After``, ``RateLimit`` fields on allowed responses when configured,
    503 (never 500) when the store fails under ``on_storage_error="deny"``. The response body iterable is
    returned untouched (streaming is unaffected).

    Example::

        app.wsgi_app = RateLimitMiddleware(app.wsgi_app, limiter=bg.RateLimiter(), limits="100/minute")
    """

    touches = _RL_STR_FIELDS

    def on_request(self, environ: dict[str, Any]) -> Answer[WSGIApp] | list[tuple[str, str]] | None:
        """Decide on the request (in one store call): an :class:`Answer` (429, 503), the header fields to add
        (the context), or None."""
        if self.client_ip is not None:
            self.client_ip.apply_environ(environ)
        plan = self.plan.plan_for_environ(environ, self.limiter)
        if plan is None:
            return None
        reply = self.limiter.run_plan(plan)
        refused, allowed = self._refusal(plan, reply)
        if refused is not None:
            return Answer(_refusing(refused, self.legacy, self.errors))
        if allowed is None:
            return None
        return self._legacy_fields(plan, allowed) if self.legacy else plan.str_fields(allowed)

    def on_response_start(
        self, context: list[tuple[str, str]], status: int, headers: Iterable[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """The response's headers with the rate limit fields merged in."""
        return merge_str_fields(headers, context)

    def appended(
        self, context: list[tuple[str, str]], status: int, headers: Sequence[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """The rate limit fields (the response holds none yet)."""
        return context


def _refusing(refused: RateLimitResult, legacy: bool, policy: ErrorPolicy | None) -> WSGIApp:
    """The app answering a refused request under ``policy``: 503 when the store failed (``degraded``), else the
    refusal's."""
    if refused.degraded:
        return partial(_refuse, StorageError(), [("Retry-After", "1")], policy)
    return partial(_refuse, refused.error(), refused.headers(legacy=legacy), policy)


def _refuse(
    error: Any, headers: Any, policy: ErrorPolicy | None, environ: dict[str, Any], start_response: StartResponse
) -> Iterable[bytes]:
    return wsgi_problem(start_response, error, environ=environ, headers=headers, policy=policy)
