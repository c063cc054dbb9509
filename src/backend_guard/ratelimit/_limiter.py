"""The rate limiter: :class:`RateLimiter`, its plans, its store calls and its route decorators.

What lives here: compiling charges into a plan (:class:`~backend_guard.ratelimit._prepared._Prepared`, cached
per key), the one store call that decides a plan (sync and async), the store-outage policy
(``on_storage_error``), reading a reply into a :class:`~backend_guard.ratelimit.RateLimitResult`, resets, and
the ``limit``/``dependency`` route decorators (their hooks live in :mod:`._routes`).

Every call to :meth:`RateLimiter.hit` decides for all its limits at once: one script, one round trip, timed by
the store's clock; a request refused by one limit spends none of the others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Literal, TypeVar

from .. import events
from .._cache import BoundedCache
from .._check import check_bool, check_instance, check_int, check_str, optional
from .._routes import fastapi_dependency, guard_route
from ..clientip import ClientIP
from ..errors import ErrorPolicy
from ..exceptions import ConfigurationError, StorageError
from ..storage import MemoryStore, Script, Store, StoreLike, open_store
from ..storage.base import glob_escape, is_cluster
from ._keys import Charge, KeyFunc, handler_name
from ._prepared import _Prepared, check_one_slot, policy_names_of, script_args
from ._rates import DEFAULT_STRATEGY, STRATEGY_CODES, LimitSpec, Rate, checked_strategy, parse_limits
from ._result import LimitState, RateLimitResult, binding_limit, degraded_result, emit_refused
from ._routes import _LimitHooks
from ._scripts import ONE_LIMIT, SCRIPTS, RateLimitReply

__all__ = ["RateLimiter"]

log = logging.getLogger("backend_guard.ratelimit")

F = TypeVar("F", bound=Callable[..., Any])

_reply_of = RateLimitReply.from_reply  # a module global: CPython 3.11 specialises it, not a class's attribute


class RateLimiter:
    """Rate limits over a store, decided atomically for all of a request's limits in one round trip.

    ``store``: a URL (``"memory://"``, ``"redis://..."``) or a store object. ``strategy``: one of
    :data:`STRATEGIES` (default :data:`DEFAULT_STRATEGY`). ``key_prefix`` separates limiters sharing a store.
    ``on_storage_error``: ``"allow"`` (fail open, the default), ``"deny"`` (fail closed) or ``"raise"``
    (:class:`~backend_guard.exceptions.StorageError` propagates); the outage is logged once.
    ``headers``/``legacy_headers``: whether middlewares and decorators add ``RateLimit``/``RateLimit-Policy``
    (and ``X-RateLimit-*``) on allowed responses; refusals always carry them. ``errors``: the
    :class:`~backend_guard.errors.ErrorPolicy` the route decorators' 429 is rendered with (a limiter of a stack
    built from settings has the settings' ``errors``; default: problem documents).

    Example::

        limiter = bg.RateLimiter(store="redis://127.0.0.1:6379/0")
        result = limiter.hit(f"login:{ip}", "5/minute", "100/hour")
        if not result.allowed:
            raise result.error()
    """

    def __init__(
        self,
        store: StoreLike = "memory://",
        *,
        strategy: str = DEFAULT_STRATEGY,
        key_prefix: str = "",
        on_storage_error: Literal["allow", "deny", "raise"] = "allow",
        headers: bool = True,
        legacy_headers: bool = False,
        client_ip: ClientIP | None = None,
        errors: ErrorPolicy | None = None,
    ) -> None:
        check_str("strategy", strategy)
        check_str("key_prefix", key_prefix, empty=True)
        check_bool("headers", headers)
        check_bool("legacy_headers", legacy_headers)
        optional(check_instance, "client_ip", client_ip, ClientIP)
        strategy = checked_strategy(strategy, on_storage_error)
        self.store: Store = open_store(store)
        self.strategy: str = strategy
        self.key_prefix = key_prefix
        self.on_storage_error = on_storage_error
        self.headers = headers
        self.legacy_headers = legacy_headers
        self.client_ip = client_ip
        #: The policy the route decorators' refusals are rendered with (None: problem documents).
        self.errors = optional(check_instance, "errors", errors, ErrorPolicy)
        self._script: Script = SCRIPTS[strategy]
        self._one_limit: Script = ONE_LIMIT[strategy]  # a plan of one limit: its ints need no coercion
        #: True when the store does no I/O (the memory store: its ``arun`` only calls ``run``), so an async
        #: caller may call :meth:`run_plan` and skip a coroutine.
        self.inline: bool = type(self.store) is MemoryStore
        self._code = STRATEGY_CODES[strategy]
        self._plans: BoundedCache[tuple[tuple[Charge, ...], bool], _Prepared] = BoundedCache(
            "ratelimit.plans", max_entries=4096, max_bytes=8 << 20
        )
        self._fast: BoundedCache[tuple[Any, ...], _Prepared] = BoundedCache(
            "ratelimit.fast_plans", max_entries=4096, max_bytes=8 << 20
        )
        #: ``known_plan(cache_key)``: the spending plan :meth:`cached_plan` keeps under ``cache_key``, or None when
        #: none is kept yet (a shell's fast path: no closure is built on a hit; the cache's own ``get``, so no
        #: Python code runs). Example: ``limiter.known_plan((route, key)) or limiter.cached_plan(...)``.
        self.known_plan: Callable[[tuple[Any, ...]], _Prepared | None] = self._fast.get
        self._outage = False
        # How many handlers of each name this limiter has decorated (handlers made in a loop share a name).
        self._handlers: dict[str, int] = {}
        self._handlers_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RateLimiter(store={self.store!r}, strategy={self.strategy!r})"

    # -- the sans-IO halves of a decision -------------------------------------------------------------------

    def _key(self, key: str, scope: str, rate: Rate) -> str:
        """The store key of one limit of ``key`` in ``scope`` (made when a plan is built: plans are cached)."""
        parts = [part for part in (self.key_prefix, scope) if part]  # a part is left out when empty
        return self.store.key("rl", *parts, self._code, rate.ident, tag=key)

    def _prepare(self, charges: Sequence[Charge], spend: bool) -> _Prepared:
        """The plan of ``charges``, cached by the charges themselves (see :meth:`cached_plan` for a cheaper key)."""
        plan_key = (tuple(charges), spend)
        plan = self._plans.get(plan_key)
        if plan is None:
            plan = self._build(charges, spend)
            self._plans.put(plan_key, plan)  # bounded: keys come from clients
        return plan

    def cached_plan(self, cache_key: tuple[Any, ...], charges: Callable[[], Sequence[Charge]]) -> _Prepared | None:
        """The spending plan under ``cache_key`` (its first item: the object owning the key scheme); None when
        ``charges()`` is empty. Cheaper than :meth:`_prepare` on a hit: no Charge is built or hashed.

        Example::

            plan = limiter.cached_plan((self, key), lambda: [Charge(key, rates)])
            result = limiter.decide_plan(plan) if plan is not None else None
        """
        plan = self._fast.get(cache_key)
        if plan is None:
            found = charges()
            if not found:
                return None
            plan = self._build(found, True)
            self._fast.put(cache_key, plan)  # bounded: keys come from clients
        return plan

    def _build(self, charges: Sequence[Charge], spend: bool) -> _Prepared:
        """The plan of ``charges``: the script's keys and arguments (``spend``: 1, else 0: a peek), in order."""
        self._check_cluster(charges)
        for charge in charges:  # a whole number (never a bool, a float, NaN): the same count on every store
            if check_int("cost", charge.cost) < 0:
                raise ConfigurationError("cost must not be negative.")
        charges, keys = self._counters(charges)
        args: list[int] = [1 if spend else 0]
        for charge in charges:
            args += script_args(charge)
        script = self._one_limit if len(keys) == 1 else self._script
        return _Prepared(tuple(charges), keys, args, policy_names_of(charges), script)

    def _counters(self, charges: Sequence[Charge]) -> tuple[list[Charge], list[str]]:
        """``charges`` with every counter named once, and the store key of each limit kept, in order: a limit
        whose counter an earlier charge (or the same one) already names is left out, so a decision charges each
        counter once, on every store and strategy.

        Two rules sharing a scope and a limit, both matching one request, name one counter (the store key is
        the key, the scope and the limit); the first charge naming it sets the cost.
        """
        seen: set[str] = set()
        distinct: list[Charge] = []
        keys: list[str] = []
        for charge in charges:
            kept = []
            for rate in charge.rates:
                counter = self._key(charge.key, charge.scope, rate)
                if counter not in seen:
                    seen.add(counter)
                    kept.append(rate)
                    keys.append(counter)
            if len(kept) == len(charge.rates):
                distinct.append(charge)
            elif kept:
                distinct.append(replace(charge, rates=tuple(kept)))
        return distinct, keys

    def _check_cluster(self, charges: Sequence[Charge]) -> None:
        """Refuse, on Redis Cluster only, charges of different keys decided together (see check_one_slot)."""
        if len(charges) > 1 and is_cluster(self.store):
            check_one_slot(charges)

    @staticmethod
    def result_for(plan: _Prepared, reply: RateLimitReply) -> RateLimitResult:
        """The :class:`RateLimitResult` a store reply to ``plan`` means (the binding limit picked).

        Example::

            result = limiter.result_for(plan, reply)
        """
        allowed = reply.allowed
        states: list[LimitState] = []
        for i, (name, (amount, window)) in enumerate(zip(plan.names, plan.rates, strict=True)):
            remaining, reset_ms, retry_ms = reply.remaining(i), reply.reset_ms(i), reply.retry_ms(i)
            states.append(LimitState(name, amount, window, remaining, reset_ms / 1000, retry_ms / 1000, retry_ms == 0))
        binding = states[0] if len(states) == 1 else binding_limit(states, allowed)
        if allowed:
            return RateLimitResult(True, binding.limit, binding.remaining, binding.reset_after, 0.0, tuple(states))
        result = RateLimitResult(
            False, binding.limit, binding.remaining, binding.reset_after, binding.retry_after, tuple(states)
        )
        if plan.args[0] and events.listening("ratelimit"):  # a spending decision refused (not a peek)
            emit_refused(plan.charges, result)
        return result

    def run_plan(self, plan: _Prepared) -> RateLimitReply | RateLimitResult:
        """The store's reply for ``plan``, or the degraded result when the store failed (one store call).

        Example::

            reply = limiter.run_plan(plan)  # a RateLimitReply, or a RateLimitResult when degraded
        """
        try:
            reply = _reply_of(self.store.run(plan.script, plan.keys, plan.args))
        except StorageError as exc:
            return self._failed(exc)
        if self._outage:
            self._recovered()
        return reply

    async def arun_plan(self, plan: _Prepared) -> RateLimitReply | RateLimitResult:
        """Async twin of :meth:`run_plan`.

        Example::

            reply = limiter.run_plan(plan) if limiter.inline else await limiter.arun_plan(plan)
        """
        if self.inline:
            return self.run_plan(plan)
        try:
            reply = RateLimitReply.from_reply(await self.store.arun(plan.script, plan.keys, plan.args))
        except StorageError as exc:
            return self._failed(exc)
        self._recovered()
        return reply

    def decide_plan(self, plan: _Prepared) -> RateLimitResult:
        """The decision on ``plan``: one store call, read as a :class:`RateLimitResult`.

        Example::

            result = limiter.decide_plan(plan)
        """
        reply = self.run_plan(plan)
        return reply if isinstance(reply, RateLimitResult) else self.result_for(plan, reply)

    async def adecide_plan(self, plan: _Prepared) -> RateLimitResult:
        """Async twin of :meth:`decide_plan`.

        Example::

            result = await limiter.adecide_plan(plan)
        """
        reply = await self.arun_plan(plan)
        return reply if isinstance(reply, RateLimitResult) else self.result_for(plan, reply)

    def _failed(self, exc: StorageError) -> RateLimitResult:
        """What the limiter answers while its store fails (``on_storage_error``); the outage is logged once."""
        if not self._outage:
            self._outage = True
            log.warning(
                "Rate limiter store unavailable; answering on_storage_error=%r until it recovers (%s)",
                self.on_storage_error,
                exc.detail,
            )
        allowed = self.on_storage_error == "allow"
        name = "storage.fail_open" if allowed else "storage.fail_closed"
        events.emit("ratelimit", name, operation="hit", mode=self.on_storage_error)
        if self.on_storage_error == "raise":
            raise exc
        return degraded_result(allowed=allowed)

    def _recovered(self) -> None:
        """Log once that the store answers again, after an outage."""
        if self._outage:
            self._outage = False
            log.warning("Rate limiter store available again")

    # -- decisions ------------------------------------------------------------------------------------------

    def hit_all(self, charges: Sequence[Charge], *, spend: bool = True) -> RateLimitResult:
        """Decide several charges at once, all or nothing, in one store call (``spend=False``: only peek).

        Example::

            limiter.hit_all([Charge(ip, parse_limits(["100/minute"]), scope="global"),
                             Charge(ip, parse_limits(["5/minute"]), scope="POST /login")])
        """
        if not charges:
            return RateLimitResult(True, 0, 0, 0.0, 0.0)
        return self.decide_plan(self._prepare(charges, spend))

    async def ahit_all(self, charges: Sequence[Charge], *, spend: bool = True) -> RateLimitResult:
        """Async twin of :meth:`hit_all` (never blocks the event loop on Redis).

        Example::

            result = await limiter.ahit_all([Charge(ip, parse_limits(["100/minute"]))])
        """
        if not charges:
            return RateLimitResult(True, 0, 0, 0.0, 0.0)
        return await self.adecide_plan(self._prepare(charges, spend))

    def hit(self, key: str, *limits: LimitSpec, cost: int = 1, scope: str = "") -> RateLimitResult:
        """Charge ``cost`` against every limit for ``key``, all or nothing; the decision and header numbers.

        Example::

            result = limiter.hit("user:42", "5/minute", "100/hour")
            result.allowed, result.remaining, result.retry_after
        """
        return self.decide_plan(self._hit_plan(key, limits, cost, scope, True))

    def _hit_plan(self, key: str, limits: tuple[LimitSpec, ...], cost: int, scope: str, spend: bool) -> _Prepared:
        """The plan of a :meth:`hit`/:meth:`test` call, cached by its arguments (no Charge built on a hit)."""
        cache_key = (self, key, limits, cost, scope, spend)
        try:
            plan = self._fast.get(cache_key)
        except TypeError:  # an unhashable limit object: no caching
            return self._prepare([Charge(key, parse_limits(limits), cost, scope)], spend)
        if plan is None:
            plan = self._build([Charge(key, parse_limits(limits), cost, scope)], spend)
            self._fast.put(cache_key, plan)  # bounded: keys come from clients
        return plan

    async def ahit(self, key: str, *limits: LimitSpec, cost: int = 1, scope: str = "") -> RateLimitResult:
        """Async twin of :meth:`hit`.

        Example::

            result = await limiter.ahit("user:42", "5/minute")
        """
        return await self.adecide_plan(self._hit_plan(key, limits, cost, scope, True))

    def test(self, key: str, *limits: LimitSpec, cost: int = 1, scope: str = "") -> RateLimitResult:
        """Whether a hit of ``cost`` would pass now, without spending anything.

        Example::

            if not limiter.test("user:42", "5/minute").allowed:
                ...
        """
        return self.decide_plan(self._hit_plan(key, limits, cost, scope, False))

    async def atest(self, key: str, *limits: LimitSpec, cost: int = 1, scope: str = "") -> RateLimitResult:
        """Async twin of :meth:`test`.

        Example::

            result = await limiter.atest("user:42", "5/minute")
        """
        return await self.adecide_plan(self._hit_plan(key, limits, cost, scope, False))

    def _reset_target(self, key: str, limits: Sequence[LimitSpec], scope: str) -> tuple[list[str], str | None]:
        if limits:
            return [self._key(key, scope, r) for r in parse_limits(limits)], None
        return [], self._reset_pattern(key)

    def _reset_pattern(self, key: str) -> str:
        """The pattern of every counter of ``key``: ``prefix:rl:{tag}[:key_prefix]:*``, only this limiter's counters
        when limiters share a store. Every part of it is escaped (the key, and the store's prefix too): a reset
        never reads the key as a pattern."""
        probe = self.store.key("rl", self.key_prefix, tag=key) if self.key_prefix else self.store.key("rl", tag=key)
        return glob_escape(probe) + ":*"

    def reset(self, key: str, *limits: LimitSpec, scope: str = "") -> int:
        """Forget the counters of ``key`` (for ``limits`` in ``scope``; with no limits, every one of the key's).

        ``key`` is always taken literally, on every store: ``"login:a*"`` or ``"login:alic\\e"`` forget only
        their own counters, never those of keys a glob would match.

        Example::

            limiter.reset("user:42")            # e.g. after a successful CAPTCHA
        """
        keys, pattern = self._reset_target(key, limits, scope)
        if pattern is not None:
            keys = self.store.scan(pattern, count=10_000)
        return self.store.delete(*keys) if keys else 0

    async def areset(self, key: str, *limits: LimitSpec, scope: str = "") -> int:
        """Async twin of :meth:`reset`.

        Example::

            await limiter.areset("user:42")
        """
        keys, pattern = self._reset_target(key, limits, scope)
        if pattern is not None:
            keys = await self.store.ascan(pattern, count=10_000)
        return await self.store.adelete(*keys) if keys else 0

    # -- route decorators -----------------------------------------------------------------------------------

    def limit(
        self,
        *limits: LimitSpec,
        key: KeyFunc | str | None = None,
        cost: int = 1,
        scope: str | None = None,
        name: str | None = None,
        client_ip: ClientIP | None = None,
        per_method: bool = False,
    ) -> Callable[[F], F]:
        """Decorate a FastAPI, Starlette, Flask or Django route (sync or async) with limits.

        The bucket is this handler on its route template (``/users/{id}``, never the concrete URL): one for all
        the methods the handler answers, and its own even when another handler (a PUT beside a GET) serves the
        same path. ``scope`` replaces it (handlers with the same scope share limits). ``per_method=True`` gives
        each standard method its own bucket, HEAD sharing GET's (the same handler answers) and any other method
        the handler's one bucket (see :func:`bucket_method`). Clients see the route template (``GET
        /users/{id}`` per method) as the policy name, or ``name``. The handler is named once, at decoration,
        from code (:func:`handler_name`), so every worker and restart counts in the same bucket. ``key``:
        ``"ip"`` (default, through ``client_ip``'s trusted proxies, IPv6 per /64), ``"header:X-API-Key"``, or a
        callable taking the :class:`~backend_guard.request.RequestView` (returning None exempts the request).

        Example::

            @app.get("/search")
            @limiter.limit("10/second;100/minute")
            async def search(q: str): ...
        """
        client_ip = client_ip or self.client_ip
        hooks = self._route_hooks(limits, key, cost, scope, name, client_ip, per_method)

        def decorate(func: F) -> F:
            return guard_route(hooks.for_handler(self._name_handler(func)), client_ip=client_ip, errors=self.errors)(
                func
            )

        return decorate

    def dependency(
        self,
        *limits: LimitSpec,
        key: KeyFunc | str | None = None,
        cost: int = 1,
        scope: str | None = None,
        name: str | None = None,
        client_ip: ClientIP | None = None,
        per_method: bool = False,
    ) -> Callable[..., Any]:
        """A FastAPI dependency applying limits: ``dependencies=[Depends(limiter.dependency("5/minute"))]``.

        Buckets as for :meth:`limit`, the handler being the endpoint each request is routed to: one dependency
        object on several routes (or a router) keeps a bucket per route template and endpoint, one for all its
        methods unless ``per_method=True``, never shared with a decorator on the same endpoint. Two dependency
        objects with the same limits and key on one endpoint count together (a dependency has no name of its
        own): give one a ``scope``.

        Example::

            @app.post("/login", dependencies=[Depends(limiter.dependency("5/minute"))])
            async def login(form: LoginForm): ...
        """
        client_ip = client_ip or self.client_ip
        hooks = self._route_hooks(limits, key, cost, scope, name, client_ip, per_method)
        return fastapi_dependency(hooks, client_ip=client_ip)

    def _route_hooks(
        self,
        limits: tuple[LimitSpec, ...],
        key: KeyFunc | str | None,
        cost: int,
        scope: str | None,
        name: str | None,
        client_ip: ClientIP | None,
        per_method: bool,
    ) -> _LimitHooks:
        """The route hooks behind :meth:`limit` and :meth:`dependency` (a bad ``cost`` refused here, at
        decoration, not as a server error on the first request)."""
        check_int("cost", cost, min=0)
        return _LimitHooks(self, parse_limits(limits), key, cost, scope, name, client_ip, per_method)

    def _name_handler(self, func: Callable[..., Any]) -> str:
        """The bucket name of a handler this limiter decorates: :func:`handler_name`, and ``#2``, ``#3``... for
        later handlers of the same name (made in a loop or a factory), counted in the order the code decorates
        them, which every worker and restart repeats."""
        base = handler_name(func)
        with self._handlers_lock:
            seen = self._handlers.get(base, 0) + 1
            self._handlers[base] = seen
        return base if seen == 1 else f"{base}#{seen}"
