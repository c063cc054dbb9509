"""Rate limiting (sans-IO core): limits, strategies, decisions, results and their header values.

The documented place to import every rate limiting name from; each part lives in a module of its own:

- :mod:`._rates`: :class:`Rate`, :func:`parse_limits`, the strategies (:data:`STRATEGIES`);
- :mod:`._keys`: what one request is charged (:class:`Charge`), its key (:class:`KeyResolver`) and bucket;
- :mod:`._scripts` (and the ``.lua`` files beside it): the atomic decision of each strategy, in Lua for Redis
  and in Python for the memory store;
- :mod:`._prepared`: a decision compiled once (store keys, arguments, header templates);
- :mod:`._result`: :class:`RateLimitResult`, :class:`LimitState` and the ``RateLimit`` header values;
- :mod:`._limiter`: :class:`RateLimiter`, which decides plans in one store call each;
- :mod:`._routes`: the hooks behind ``RateLimiter.limit`` and ``RateLimiter.dependency``;
- :mod:`._rules`, :mod:`._route_check`, :mod:`._plan`: the middlewares' rules, their check against the app's
  routes, and their compiled plan per request;
- :mod:`._fields`: merging the header fields into a response's own;
- :mod:`._shell`: :class:`RateLimitShell`, what the ASGI and WSGI middlewares share.

No framework is imported here. Every call to :meth:`RateLimiter.hit` decides for all its limits at once: one
script, one round trip, timed by the store's clock; a request refused by one limit spends none of the others.

Example::

    from backend_guard.ratelimit import RateLimiter

    limiter = RateLimiter()
    result = limiter.hit("user:42", "5/minute", "100/hour")
"""

from __future__ import annotations

from ._fields import _RL_FIELDS_ALL as _RL_FIELDS_ALL
from ._fields import merge_header_fields, merge_raw_fields, merge_str_fields
from ._keys import Charge, KeyFunc, KeyResolver, bucket_method, handler_name
from ._limiter import RateLimiter
from ._plan import RulePlan
from ._prepared import _Prepared as _Prepared
from ._rates import DEFAULT_STRATEGY, STRATEGIES, Rate, parse_limits
from ._rates import LimitSpec as LimitSpec
from ._rates import Strategy as Strategy
from ._result import LimitState, RateLimitResult, format_headers
from ._route_check import KnownRoutes, check_rule_routes
from ._rules import RateLimitRule, RuleSet, compile_path
from ._scripts import RateLimitReply as RateLimitReply
from ._shell import RateLimitShell as RateLimitShell

# Also importable from here, outside __all__ (the `X as X` imports above): the names the ASGI and WSGI shells
# build on (RateLimitShell, the compiled plan _Prepared, the store's reply RateLimitReply, the field names
# _RL_FIELDS_ALL) and the type aliases.
__all__ = [
    "DEFAULT_STRATEGY",
    "STRATEGIES",
    "Charge",
    "KeyFunc",
    "KeyResolver",
    "KnownRoutes",
    "LimitState",
    "Rate",
    "RateLimitResult",
    "RateLimitRule",
    "RateLimiter",
    "RulePlan",
    "RuleSet",
    "bucket_method",
    "check_rule_routes",
    "compile_path",
    "format_headers",
    "handler_name",
    "merge_header_fields",
    "merge_raw_fields",
    "merge_str_fields",
    "parse_limits",
]
