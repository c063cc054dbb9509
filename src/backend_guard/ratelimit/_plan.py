"""A middleware's compiled rules: :class:`RulePlan`, which charges (and cached plan) a request gets.

What lives here: the rules with their key resolvers (rules keyed alike share one), the charges of an ASGI or
WSGI request, and the request path of the middlewares: the route (rules matching a method and path, interned
per rule set, cached per path) and the limiter's plan for it, cached per route and key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .._cache import BoundedCache
from .._check import check_instance
from .._http import route_path
from ..clientip import ClientIP
from ..exceptions import ConfigurationError
from ._keys import Charge, KeyFunc, KeyResolver
from ._limiter import RateLimiter
from ._prepared import _Prepared
from ._rates import LimitSpec
from ._rules import RateLimitRule, RuleSet

__all__ = ["RulePlan"]

_PEER = "peer"  # in the key of a plan cached by the peer address
_NO_ROUTE: Any = object()  # "not cached yet" in the route cache, whose values may be None (no rule applies)


class RulePlan:
    """The compiled configuration of a rate limit middleware: rules, their keys, and the charges of a request.

    ``limits`` (optional) is a global limit on every path (a ``"*"`` rule named ``"global"``), applied with the
    route rules in the same atomic decision; ``key``, ``client_ip`` and ``ipv6_prefix`` build the default
    :class:`KeyResolver` (a rule may name its own ``key``).

    Example::

        plan = RulePlan([RateLimitRule("/login", "5/minute", methods=["POST"])], limits="1000/hour")
        plan.charges_for_scope(scope)
    """

    def __init__(
        self,
        rules: Iterable[RateLimitRule] = (),
        *,
        limits: str | Sequence[LimitSpec] | None = None,
        key: KeyFunc | str | None = None,
        client_ip: ClientIP | None = None,
        ipv6_prefix: int = 64,
    ) -> None:
        all_rules = _middleware_rules(rules, limits)
        self.rules = RuleSet(all_rules)
        self.default = KeyResolver(key, client_ip, ipv6_prefix)
        self._resolvers: dict[int, KeyResolver] = {
            id(r): self._own_resolver(r, client_ip, ipv6_prefix) for r in all_rules
        }
        # Keyed by (method, path) for WSGI, (method, path, root_path) for ASGI (the route path is made on a miss).
        self._routes: BoundedCache[tuple[Any, ...], _Route | None] = BoundedCache(
            "ratelimit.routes", max_entries=2048, max_bytes=1 << 20
        )
        self._interned: dict[tuple[int, ...], _Route] = {}

    def _own_resolver(self, rule: RateLimitRule, client_ip: ClientIP | None, ipv6_prefix: int) -> KeyResolver:
        """The resolver of a rule naming its own key; the plan's default for the others."""
        if rule.key is None:
            return self.default
        return KeyResolver(rule.key, client_ip, ipv6_prefix)

    def resolver_for(self, rule: RateLimitRule) -> KeyResolver:
        """The key resolver of one of this plan's rules (rules keyed alike share one).

        Example::

            key = plan.resolver_for(rule).from_scope(scope)
        """
        return self._resolvers[id(rule)]

    def _charges(self, rules: tuple[RateLimitRule, ...], key_of: Callable[[KeyResolver], str | None]) -> list[Charge]:
        """The charges of ``rules`` for a request, each resolver asked once (``key_of``; None exempts)."""
        out: list[Charge] = []
        seen: dict[int, str | None] = {}
        for rule in rules:
            resolver = self._resolvers[id(rule)]
            rid = id(resolver)
            if rid not in seen:
                seen[rid] = key_of(resolver)
            key = seen[rid]
            if key is not None:
                out.append(Charge(key, rule.rates, rule.cost, rule.bucket, rule.name))
        return out

    def charges_for_scope(self, scope: Any) -> list[Charge]:
        """The charges of an ASGI request (empty: not limited)."""
        rules = self.rules.match(scope.get("method", "GET"), route_path(scope))
        if not rules:
            return []
        return self._charges(rules, lambda r: r.from_scope(scope))

    def charges_for_environ(self, environ: Any) -> list[Charge]:
        """The charges of a WSGI request (empty: not limited)."""
        rules = self.rules.match(environ.get("REQUEST_METHOD", "GET"), _environ_path(environ))
        if not rules:
            return []
        return self._charges(rules, lambda r: r.from_environ(environ))

    # -- the request path of the middlewares: cached routes and plans ----------------------------------------

    def _route(self, method: str, path: str, cache_key: tuple[Any, ...]) -> _Route | None:
        cached = self._routes.get(cache_key, _NO_ROUTE)
        if cached is not _NO_ROUTE:
            return cached
        rules = self.rules.match(method, path)
        route = self._intern(rules) if rules else None
        self._routes.put(cache_key, route)  # bounded: paths come from clients
        return route

    def _intern(self, rules: tuple[RateLimitRule, ...]) -> _Route:
        """The one route of a set of rules (paths matching the same rules share it, and its cached plans)."""
        ident = tuple(map(id, rules))
        route = self._interned.get(ident)
        if route is None:
            if len(self._interned) >= 1024:  # bounded (routes still cached stay valid)
                self._interned.clear()
            route = self._interned[ident] = _Route(self, rules)
        return route

    def _plan(self, route: _Route, keys: tuple[str | None, ...], limiter: RateLimiter) -> _Prepared | None:
        if route.resolver is not None:  # one key for every rule of the route
            return limiter.cached_plan((route, keys[0]), lambda: route.charges(keys))
        if not any(k is not None for k in keys):
            return None
        return limiter.cached_plan((route, keys), lambda: route.charges(keys))

    def plan_for_scope(self, scope: Any, limiter: RateLimiter) -> _Prepared | None:
        """What ``limiter`` must decide for an ASGI request, compiled once and cached (None: not limited).

        Same charges as :meth:`charges_for_scope`, without building them on every request.

        Example::

            plan = rule_plan.plan_for_scope(scope, limiter)
        """
        # The route path (without root_path) is made on a cache miss only.
        request = (scope.get("method", "GET"), scope.get("path", "/"), scope.get("root_path"))
        # Cache lookups are loaded, then called: CPython 3.11 specialises the load of a slot or an instance
        # attribute, not a call through one (this is every request's path).
        routes = self._routes.get
        route = routes(request)
        if route is None:
            route = self._route(request[0], route_path(scope), request)
            if route is None:
                return None
        resolver = route.resolver
        if resolver is None:
            return self._plan(route, route.scope_keys(scope), limiter)
        known = limiter.known_plan
        if resolver.peer_only:  # the key follows from the peer address: plans cached by it, one lookup on a hit
            peer = scope.get("client")
            address = peer[0] if peer else ""
            by_peer = (route, _PEER, address)  # three items: never a (route, key) of _plan
            plan = known(by_peer)
            if plan is not None:
                return plan
            of_peer = resolver.peer_key(address)  # not remembered apart: the plan is, under the address
            return limiter.cached_plan(by_peer, lambda: route.charges((of_peer,)))
        key = resolver.from_scope(scope)
        if key is None:
            return None
        plan = known((route, key))
        return plan if plan is not None else self._plan(route, (key,), limiter)

    def plan_for_environ(self, environ: Any, limiter: RateLimiter) -> _Prepared | None:
        """What ``limiter`` must decide for a WSGI request (see :meth:`plan_for_scope`).

        Example::

            plan = rule_plan.plan_for_environ(environ, limiter)
        """
        script_name = environ.get("SCRIPT_NAME")  # _environ_path, inline: this is the request path
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        request = (method, script_name + path if script_name else path)
        # As plan_for_scope: the route and the plan are cache hits looked up inline; a miss builds them.
        routes = self._routes.get
        route = routes(request)
        if route is None:
            route = self._route(method, request[1], request)
            if route is None:
                return None
        resolver = route.resolver
        if resolver is not None:
            key = resolver.from_environ(environ)
            if key is None:
                return None
            known = limiter.known_plan
            plan = known((route, key))
            return plan if plan is not None else self._plan(route, (key,), limiter)
        return self._plan(route, route.environ_keys(environ), limiter)


def _middleware_rules(rules: Iterable[RateLimitRule], limits: str | Sequence[LimitSpec] | None) -> list[RateLimitRule]:
    """A middleware's rules, checked, with the global limit (``limits``) first as a ``"*"`` rule."""
    _check_rules_type(rules)
    all_rules = [check_instance("rules", rule, RateLimitRule) for rule in rules]
    if limits:
        all_rules.insert(0, RateLimitRule("*", limits, scope="global", name="global"))
    if not all_rules:
        raise ConfigurationError("A rate limit middleware needs rules or limits.")
    return all_rules


def _check_rules_type(rules: object) -> None:
    """Refuse ``rules`` that are not a list of rules (a string, bytes or a mapping are refused too)."""
    if isinstance(rules, (str, bytes, Mapping)) or not isinstance(rules, Iterable):
        raise ConfigurationError(f"rules must be a list of RateLimitRule, not {type(rules).__name__}.")


def _environ_path(environ: Any) -> str:
    """The path of a WSGI request as the rules see it: the script name and the path inside the app."""
    script_name = environ.get("SCRIPT_NAME")
    path = environ.get("PATH_INFO") or "/"
    return script_name + path if script_name else path


class _Route:
    """The rules matching a request path, with their key resolvers in a fixed order (interned per rule set)."""

    __slots__ = ("resolver", "resolvers", "rules", "slots")

    def __init__(self, plan: RulePlan, rules: tuple[RateLimitRule, ...]) -> None:
        self.rules = rules
        resolvers: list[KeyResolver] = []
        slots: list[int] = []
        for rule in rules:
            resolver = plan.resolver_for(rule)
            if resolver not in resolvers:
                resolvers.append(resolver)
            slots.append(resolvers.index(resolver))
        self.resolvers = tuple(resolvers)
        self.slots = tuple(slots)  # per rule: the index of its resolver's key
        self.resolver = resolvers[0] if len(resolvers) == 1 else None

    def scope_keys(self, scope: Any) -> tuple[str | None, ...]:
        """Each resolver's key for an ASGI request (None: that resolver exempts it)."""
        return tuple(r.from_scope(scope) for r in self.resolvers)

    def environ_keys(self, environ: Any) -> tuple[str | None, ...]:
        """Each resolver's key for a WSGI request (None: that resolver exempts it)."""
        return tuple(r.from_environ(environ) for r in self.resolvers)

    def charges(self, keys: tuple[str | None, ...]) -> list[Charge]:
        """The charges of a request whose resolvers gave ``keys`` (None: that resolver exempts it)."""
        out: list[Charge] = []
        for rule, slot in zip(self.rules, self.slots, strict=True):
            key = keys[slot]
            if key is not None:
                out.append(Charge(key, rule.rates, rule.cost, rule.bucket, rule.name))
        return out
