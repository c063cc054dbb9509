"""Rate limiting (sans-IO core): limits, strategies, decisions, results and their header values.

What must live here: parsing rate strings (through ``limits``), the choice of strategy, turning a set of
charges into one atomic store call (:mod:`backend_guard.ratelimit._scripts`) and its reply into a
:class:`RateLimitResult`, the ``RateLimit``/``RateLimit-Policy`` header values, and the rule matching used by
the ASGI and WSGI shells. No framework is imported here.

Every call to :meth:`RateLimiter.hit` decides for all its limits at once: one script, one round trip, timed by
the store's clock; a request refused by one limit spends none of the others.
"""

from __future__ import annotations

import difflib
import functools
import json
import logging
import math
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from .._cache import BoundedCache, approx_size
from .._check import check_bool, check_instance, check_int, check_str, check_strs, optional
from .._durations import wait_text, window_text
from .._http import HTTP_TOKEN_RE
from .._routes import fastapi_dependency, guard_route
from ..clientip import ClientIP
from ..exceptions import ConfigurationError, RateLimited, StorageError
from ..storage import MemoryStore, Script, Store, StoreLike, open_store
from ..storage.base import glob_escape, is_cluster
from ._keys import BUCKET_METHODS as _BUCKET_METHODS
from ._keys import Charge, KeyFunc, KeyResolver, bucket_method, handler_name
from ._routes import _LimitHooks
from ._scripts import SCRIPTS, RateLimitReply

if TYPE_CHECKING:
    from limits import RateLimitItem


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

log = logging.getLogger("backend_guard.ratelimit")

Strategy = Literal["sliding-window-counter", "fixed-window", "moving-window", "gcra"]

#: The strategies, by name. ``"token-bucket"`` is accepted as an alias of ``"gcra"``.
STRATEGIES: tuple[str, ...] = ("sliding-window-counter", "fixed-window", "moving-window", "gcra")
#: The default: O(1) state per key, no burst of twice the limit at a window edge (see docs/ratelimit.md).
DEFAULT_STRATEGY: Strategy = "sliding-window-counter"

_ALIASES = {"token-bucket": "gcra", "sliding-window": "sliding-window-counter"}
_CODES = {"sliding-window-counter": "sw", "fixed-window": "fw", "moving-window": "mw", "gcra": "gc"}

F = TypeVar("F", bound=Callable[..., Any])
App = TypeVar("App")  # an ASGI or a WSGI app: the shells below share their configuration


@dataclass(frozen=True, slots=True)
class Rate:
    """One limit: ``amount`` hits per ``window`` seconds, parsed from a rate string by ``limits``.

    ``name`` is the policy name used in the ``RateLimit`` header fields (None: a name is derived).

    Example::

        Rate.parse("5/minute")     # (Rate(amount=5, window=60.0, ...),)
    """

    amount: int
    window: float
    text: str
    name: str | None = None

    @property
    def window_ms(self) -> int:
        """The window in whole milliseconds."""
        return round(self.window * 1000)

    @property
    def ident(self) -> str:
        """The part of the storage key that names this limit (amount and window)."""
        return f"{self.amount}/{self.window_ms}"

    @classmethod
    def from_item(cls, item: RateLimitItem, name: str | None = None) -> Rate:
        """A Rate from a ``limits.RateLimitItem``."""
        return cls(int(item.amount), float(item.get_expiry()), str(item), name)

    @classmethod
    def parse(cls, spec: str, name: str | None = None) -> tuple[Rate, ...]:
        """Every limit in ``spec`` (``"5/minute;100/hour"``, ``"10 per 2 seconds"``), or ConfigurationError."""
        from limits import parse_many

        try:
            items = parse_many(spec)
        except ValueError as exc:
            raise ConfigurationError(f"Invalid rate limit {spec!r}: {exc}") from exc
        rates = tuple(cls.from_item(item, name) for item in items)
        for rate in rates:
            if rate.amount < 1 or rate.window <= 0:
                raise ConfigurationError(f"Invalid rate limit {spec!r}: the amount and window must be positive.")
        return rates


_NO_ROUTE: Any = object()  # "not cached yet" in the route cache, whose values may be None (no rule applies)

LimitSpec = str | Rate | Any  # Any: a limits.RateLimitItem

_parse_cache: dict[str, tuple[Rate, ...]] = {}


def parse_limits(specs: Iterable[LimitSpec]) -> tuple[Rate, ...]:
    """Rates from rate strings, :class:`Rate` objects or ``limits.RateLimitItem`` objects.

    Example::

        >>> [r.amount for r in parse_limits(["5/minute;100/hour"])]
        [5, 100]
    """
    out: list[Rate] = []
    for spec in specs:
        if isinstance(spec, Rate):
            out.append(spec)
        elif isinstance(spec, str):
            cached = _parse_cache.get(spec)
            if cached is None:
                cached = Rate.parse(spec)
                if len(_parse_cache) < 1024:
                    _parse_cache[spec] = cached
            out.extend(cached)
        elif hasattr(spec, "amount") and hasattr(spec, "get_expiry"):
            out.append(Rate.from_item(spec))
        else:
            raise ConfigurationError(f"A limit must be a rate string or a RateLimitItem, not {type(spec).__name__}.")
    if not out:
        raise ConfigurationError("At least one limit is needed.")
    return tuple(out)


@dataclass(frozen=True, slots=True)
class LimitState:
    """The state of one limit after a decision (also what its ``RateLimit`` header item says).

    Example::

        for state in result.limits:
            log.info("%s: %d of %d left", state.name, state.remaining, state.limit)
    """

    name: str
    limit: int
    window: float
    remaining: int
    reset_after: float
    retry_after: float
    allowed: bool


@dataclass(frozen=True, slots=True)
class RateLimitResult:
    """The decision for a request: allowed or not, and the numbers a client should see.

    ``limit``, ``remaining`` and ``reset_after`` describe the binding limit (the one closest to refusing);
    ``reset_after`` (the ``RateLimit`` header's ``t``) is the seconds until more quota is available, i.e. until
    a request of ``remaining + 1`` would pass (0 when the whole quota is), for every strategy; ``retry_after``
    is 0 when allowed, else the seconds after which the same request can pass. ``limits``
    holds every limit's :class:`LimitState`. ``degraded`` is True when the store failed and the limiter's
    ``on_storage_error`` answered instead (then ``limits`` is empty).

    Example::

        result = limiter.hit("user:42", "5/minute", "100/hour")
        if not result.allowed:
            raise bg.RateLimited(result.retry_after)
    """

    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    retry_after: float
    limits: tuple[LimitState, ...] = ()
    degraded: bool = False

    def headers(self, *, policy: bool = True, legacy: bool = False) -> list[tuple[str, str]]:
        """``RateLimit-Policy``/``RateLimit`` (and optionally ``X-RateLimit-*``) header pairs for this result."""
        return format_headers(self, policy=policy, legacy=legacy)

    def error(self) -> RateLimited:
        """The :class:`~backend_guard.exceptions.RateLimited` error for a refused request.

        Its detail names the limit that refused, by the policy name clients already see in ``RateLimit-Policy``
        (a route template, a rule's name; never the key), its amount and window, and when to retry::

            Too many requests: the limit is 5 per minute ("POST /login"); retry in 37 seconds.

        Example::

            result = limiter.hit(f"login:{ip}", "5/minute")
            if not result.allowed:
                raise result.error()
        """
        refusing = [s for s in self.limits if not s.allowed]
        if not refusing:  # the store failed closed: no limit to name
            return RateLimited(self.retry_after)
        state = max(refusing, key=lambda s: s.retry_after)
        detail = (
            f"Too many requests: the limit is {state.limit} per {window_text(state.window)} "
            f"({json.dumps(state.name)}); retry in {wait_text(self.retry_after)}."
        )
        return RateLimited(self.retry_after, detail)


@functools.lru_cache(maxsize=1024)
def _sf_string(text: str) -> str:
    """``text`` as a structured-field String (RFC 8941): printable ASCII, quotes and backslashes escaped."""
    clean = "".join(ch if " " <= ch <= "~" else "?" for ch in text)
    return '"' + clean.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_headers(result: RateLimitResult, *, policy: bool = True, legacy: bool = False) -> list[tuple[str, str]]:
    """Header pairs for ``result`` per draft-ietf-httpapi-ratelimit-headers-10, one field each.

    ``RateLimit-Policy: "name";q=100;w=60`` lists every policy; ``RateLimit: "name";r=98;t=30`` the state of
    each (``t`` in whole seconds, rounded up). ``legacy`` adds ``X-RateLimit-Limit``, ``-Remaining`` and
    ``-Reset`` (seconds) of the binding limit. A degraded result (store down) has no headers.

    Example::

        >>> r = RateLimitResult(True, 100, 98, 30.0, 0.0, (LimitState("default", 100, 60.0, 98, 30.0, 0.0, True),))
        >>> format_headers(r)
        [('RateLimit-Policy', '"default";q=100;w=60'), ('RateLimit', '"default";r=98;t=30')]
    """
    if not result.limits:
        return []
    out: list[tuple[str, str]] = []
    if policy:
        out.append(
            (
                "RateLimit-Policy",
                ", ".join(f"{_sf_string(s.name)};q={s.limit};w={_secs(s.window)}" for s in result.limits),
            )
        )
    out.append(
        (
            "RateLimit",
            ", ".join(f"{_sf_string(s.name)};r={s.remaining};t={_secs(s.reset_after)}" for s in result.limits),
        )
    )
    if legacy:
        out += [
            ("X-RateLimit-Limit", str(result.limit)),
            ("X-RateLimit-Remaining", str(result.remaining)),
            ("X-RateLimit-Reset", str(_secs(result.reset_after))),
        ]
    return out


def _secs(value: float) -> int:
    return max(0, math.ceil(value - 1e-9))


def _policy_names(charge: Charge) -> list[str]:
    base = charge.name or charge.scope or "default"
    if len(charge.rates) == 1:
        return [charge.rates[0].name or base]
    return [r.name or f"{base}-{r.amount}-per-{_secs(r.window)}s" for r in charge.rates]


def _reset_secs(reset_ms: int) -> int:
    """``_secs(reset_ms / 1000)`` in integer arithmetic: whole seconds, rounded up, never negative."""
    return max(0, -(-int(reset_ms) // 1000))


class _Prepared:
    """One decision compiled once per distinct set of charges (then reused from a bounded cache).

    It holds the store keys and arguments of the script and the parts of the ``RateLimit`` header fields
    that do not change between requests: the whole ``RateLimit-Policy`` value and, per limit, a template
    for its ``RateLimit`` item. A request then costs one script call and one string formatting.
    """

    __slots__ = (
        "args",
        "charges",
        "keys",
        "names",
        "policy",
        "policy_raw",
        "rates",
        "raw_template",
        "single",
        "templates",
    )

    def __init__(self, charges: tuple[Charge, ...], keys: list[str], args: list[int], names: list[str]) -> None:
        rates = [rate for charge in charges for rate in charge.rates]
        self.charges = charges
        self.keys = keys
        self.args = args
        self.names = names
        self.rates: tuple[tuple[int, float], ...] = tuple((r.amount, r.window) for r in rates)
        self.policy = ", ".join(
            f"{_sf_string(n)};q={r.amount};w={_secs(r.window)}" for n, r in zip(names, rates, strict=True)
        )
        self.policy_raw = self.policy.encode("latin-1")
        self.templates = tuple(_sf_string(n).replace("%", "%%") + ";r=%d;t=%d" for n in names)
        self.raw_template = self.templates[0].encode("latin-1") if len(rates) == 1 else b""
        self.single = len(rates) == 1

    def __sizeof__(self) -> int:
        # What a cache of plans holds per entry: the store keys and the charges' keys (client-chosen), the
        # header texts; the rates and rules are shared with other plans.
        own = (self.keys, self.names, self.policy, self.policy_raw, self.templates, self.raw_template)
        return object.__sizeof__(self) + approx_size(own) + sum(sys.getsizeof(c.key) for c in self.charges)

    def ratelimit_value(self, reply: RateLimitReply) -> str:
        """The ``RateLimit`` field value for a store reply (what :func:`format_headers` writes)."""
        if self.single:
            return self.templates[0] % (reply.remaining(0), _reset_secs(reply.reset_ms(0)))
        return ", ".join(t % (reply.remaining(i), _reset_secs(reply.reset_ms(i))) for i, t in enumerate(self.templates))

    def raw_fields(self, reply: RateLimitReply) -> list[tuple[bytes, bytes]]:
        """``RateLimit-Policy`` and ``RateLimit`` as ASGI header pairs (lower-case names)."""
        if self.single:
            reset = -(-reply.reset_ms(0) // 1000)
            value = self.raw_template % (reply.remaining(0), reset if reset > 0 else 0)
        else:
            value = self.ratelimit_value(reply).encode("latin-1")
        return [(b"ratelimit-policy", self.policy_raw), (b"ratelimit", value)]

    def str_fields(self, reply: RateLimitReply) -> list[tuple[str, str]]:
        """``RateLimit-Policy`` and ``RateLimit`` as WSGI header pairs."""
        return [("RateLimit-Policy", self.policy), ("RateLimit", self.ratelimit_value(reply))]


class RateLimiter:
    """Rate limits over a store, decided atomically for all of a request's limits in one round trip.

    ``store``: a URL (``"memory://"``, ``"redis://..."``) or a store object. ``strategy``: one of
    :data:`STRATEGIES` (default :data:`DEFAULT_STRATEGY`). ``key_prefix`` separates limiters sharing a store.
    ``on_storage_error``: ``"allow"`` (fail open, the default), ``"deny"`` (fail closed) or ``"raise"``
    (:class:`~backend_guard.exceptions.StorageError` propagates); the outage is logged once.
    ``headers``/``legacy_headers``: whether middlewares and decorators add ``RateLimit``/``RateLimit-Policy``
    (and ``X-RateLimit-*``) on allowed responses; refusals always carry them.

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
    ) -> None:
        check_str("strategy", strategy)
        check_str("key_prefix", key_prefix, empty=True)
        check_bool("headers", headers)
        check_bool("legacy_headers", legacy_headers)
        if client_ip is not None:
            check_instance("client_ip", client_ip, ClientIP)
        strategy = _ALIASES.get(strategy, strategy)
        if strategy not in SCRIPTS:
            raise ConfigurationError(f"Unknown rate limit strategy {strategy!r}: use one of {', '.join(STRATEGIES)}.")
        if on_storage_error not in ("allow", "deny", "raise"):
            raise ConfigurationError("on_storage_error must be 'allow', 'deny' or 'raise'.")
        self.store: Store = open_store(store)
        self.strategy: str = strategy
        self.key_prefix = key_prefix
        self.on_storage_error = on_storage_error
        self.headers = headers
        self.legacy_headers = legacy_headers
        self.client_ip = client_ip
        self._script: Script = SCRIPTS[strategy]
        #: True when the store does no I/O (the memory store: its ``arun`` only calls ``run``), so an async
        #: caller may call :meth:`run_plan` and skip a coroutine.
        self.inline: bool = type(self.store) is MemoryStore
        self._code = _CODES[strategy]
        self._keys: BoundedCache[tuple[str, str, str], str] = BoundedCache(
            "ratelimit.keys", max_entries=4096, max_bytes=2 << 20
        )
        self._plans: BoundedCache[tuple[tuple[Charge, ...], bool], _Prepared] = BoundedCache(
            "ratelimit.plans", max_entries=4096, max_bytes=8 << 20
        )
        self._fast: BoundedCache[tuple[Any, ...], _Prepared] = BoundedCache(
            "ratelimit.fast_plans", max_entries=4096, max_bytes=8 << 20
        )
        self._outage = False
        # How many handlers of each name this limiter has decorated (handlers made in a loop share a name).
        self._handlers: dict[str, int] = {}
        self._handlers_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RateLimiter(store={self.store!r}, strategy={self.strategy!r})"

    # -- the sans-IO halves of a decision -------------------------------------------------------------------

    def _key(self, key: str, scope: str, rate: Rate) -> str:
        cache_key = (key, scope, rate.ident)
        found = self._keys.get(cache_key)
        if found is None:
            parts: list[object] = [self._code, rate.ident]
            if scope:
                parts.insert(0, scope)
            if self.key_prefix:
                parts.insert(0, self.key_prefix)
            found = self.store.key("rl", *parts, tag=key)
            self._keys.put(cache_key, found)  # bounded: keys come from clients
        return found

    def _prepare(self, charges: Sequence[Charge], spend: bool) -> _Prepared:
        plan_key = (tuple(charges), spend)
        plan = self._plans.get(plan_key)
        if plan is None:
            plan = self._build(charges, spend)
            self._plans.put(plan_key, plan)  # bounded: keys come from clients
        return plan

    def known_plan(self, cache_key: tuple[Any, ...]) -> _Prepared | None:
        """The spending plan :meth:`cached_plan` keeps under ``cache_key``, or None when none is kept yet (a
        shell's fast path: no closure is built on a hit).

        Example::

            plan = limiter.known_plan((route, key)) or limiter.cached_plan((route, key), make_charges)
        """
        return self._fast.get(cache_key)

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
        if len(charges) > 1 and is_cluster(self.store) and len({c.key for c in charges}) > 1:
            # Every counter of a key shares the key's hash tag; one atomic decision cannot span two slots.
            raise ConfigurationError(
                "On Redis Cluster, limits decided together must share one key: these rules key requests "
                f"differently ({', '.join(sorted({c.name or c.scope or 'limit' for c in charges}))}). Give them "
                "the same key, or use one limiter (middleware) per key."
            )
        keys: list[str] = []
        args: list[int] = [1 if spend else 0]
        names: list[str] = []
        for charge in charges:
            if charge.cost < 0:
                raise ConfigurationError("cost must not be negative.")
            names.extend(_policy_names(charge))
            for rate in charge.rates:
                keys.append(self._key(charge.key, charge.scope, rate))
                args += (rate.amount, rate.window_ms, charge.cost)
        return _Prepared(tuple(charges), keys, args, names)

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
        if len(states) == 1:
            binding = states[0]
        elif allowed:
            binding = min(states, key=lambda s: (s.remaining, -s.reset_after))
        else:
            binding = max(states, key=lambda s: s.retry_after)
        retry = 0.0 if allowed else binding.retry_after
        return RateLimitResult(allowed, binding.limit, binding.remaining, binding.reset_after, retry, tuple(states))

    def run_plan(self, plan: _Prepared) -> RateLimitReply | RateLimitResult:
        """The store's reply for ``plan``, or the degraded result when the store failed (one store call).

        Example::

            reply = limiter.run_plan(plan)  # a RateLimitReply, or a RateLimitResult when degraded
        """
        try:
            reply = RateLimitReply.from_reply(self.store.run(self._script, plan.keys, plan.args))
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
            reply = RateLimitReply.from_reply(await self.store.arun(self._script, plan.keys, plan.args))
        except StorageError as exc:
            return self._failed(exc)
        if self._outage:
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
        if not self._outage:
            self._outage = True
            log.warning(
                "Rate limiter store unavailable; answering on_storage_error=%r until it recovers (%s)",
                self.on_storage_error,
                exc.detail,
            )
        if self.on_storage_error == "raise":
            raise exc
        if self.on_storage_error == "allow":
            return RateLimitResult(True, 0, 0, 0.0, 0.0, (), degraded=True)
        return RateLimitResult(False, 0, 0, 0.0, 1.0, (), degraded=True)

    def _recovered(self) -> None:
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
        # prefix:rl:{tag}[:key_prefix]: only this limiter's counters when limiters share a store. Every part of
        # the probe is escaped (the key, and the store's prefix too): a reset never reads the key as a pattern.
        probe = self.store.key("rl", self.key_prefix, tag=key) if self.key_prefix else self.store.key("rl", tag=key)
        return [], glob_escape(probe) + ":*"

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
            return guard_route(hooks.for_handler(self._name_handler(func)), client_ip=client_ip)(func)

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
        """The route hooks behind :meth:`limit` and :meth:`dependency`."""
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


# -- rules for the middlewares (sans-IO matching) ---------------------------------------------------------

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z]+))?\}")


def compile_path(pattern: str) -> re.Pattern[str]:
    """A regex for a path pattern: ``{name}`` is one segment, ``{name:path}`` the rest, a final ``*`` any tail.

    Example::

        >>> bool(compile_path("/users/{id}").match("/users/42"))
        True
    """
    if pattern in ("*", "/*"):
        return re.compile(r".*")
    out = ["^"]
    pos = 0
    tail = pattern.endswith("*")
    body = pattern[:-1] if tail else pattern
    for m in _PARAM.finditer(body):
        out.append(re.escape(body[pos : m.start()]))
        out.append(".*" if m.group(2) == "path" else "[^/]+")
        pos = m.end()
    out.append(re.escape(body[pos:]))
    out.append(".*$" if tail else "/?$")
    return re.compile("".join(out))


#: The methods a rule may name without ``custom_methods`` (RFC 9110, PATCH of RFC 5789).
_RULE_METHODS = (*sorted(_BUCKET_METHODS), "HEAD")


def _check_rule_path(path: str) -> None:
    """Refuse a rule path no request path can ever match."""
    if path in ("*", "/*"):
        return
    if not path.startswith("/"):
        raise ConfigurationError(
            f"rule {path!r}: a rule path starts with '/' (request paths always do): did you mean {'/' + path!r}?"
        )
    for char, what in (("?", "query string"), ("#", "fragment")):
        if char in path:
            fixed = path.split(char, 1)[0] or "/"
            raise ConfigurationError(
                f"rule {path!r}: a request's {what} is not part of the path rules match: did you mean {fixed!r}?"
            )


def _check_rule_method(path: str, method: str, custom: bool) -> None:
    """Refuse a rule method no request can carry (standard methods only unless ``custom``)."""
    if HTTP_TOKEN_RE.fullmatch(method) is None:
        raise ConfigurationError(f"rule {path!r}: {method!r} is not an HTTP method.")
    if custom or method.upper() in _RULE_METHODS:
        return
    near = difflib.get_close_matches(method.upper(), _RULE_METHODS, n=1, cutoff=0.5)
    hint = f"did you mean {near[0]!r}? " if near else ""
    raise ConfigurationError(
        f"rule {path!r}: unknown HTTP method {method!r}: {hint}(standard methods: {', '.join(_RULE_METHODS)};"
        " for another method, set custom_methods=True on the rule)."
    )


@dataclass(frozen=True)
class KnownRoutes:
    """What a framework knows of an app's routes, for :func:`check_rule_routes` (the adapters build it).

    ``serves(path)``: True when the app routes this concrete request path (to any handler, any method; a path
    the router only redirects is not served). ``samples``: one concrete path per route (its parameters
    filled in). ``complete``: the samples cover every route (False when some route could not be read, e.g.
    a custom route class: then only rules naming a concrete path are checked).

    Example::

        routes = KnownRoutes(lambda p: p in {"/login", "/users/1"}, ("/login", "/users/1"))
        check_rule_routes([RateLimitRule("/login/", "5/minute")], routes)   # ConfigurationError
    """

    serves: Callable[[str], bool]
    samples: tuple[str, ...] = ()
    complete: bool = True


#: Values tried for a rule's parameters and tail when looking for a route it reaches.
_SAMPLE_VALUES = ("1", "x", "00000000-0000-0000-0000-000000000000")


def _rule_samples(rule: RateLimitRule) -> list[str]:
    """Concrete paths ``rule`` matches: its parameters and tail filled with each sample value, as written and
    with one more final slash (a rule matches both)."""
    tail = rule.path.endswith("*")
    body = rule.path[:-1] if tail else rule.path
    out: list[str] = []
    for value in _SAMPLE_VALUES:
        filled = _PARAM.sub(value, body)
        for path in (filled, filled + value) if tail else (filled,):
            out.extend((path, path + "/"))
    return [path for path in dict.fromkeys(out) if rule.regex.match(path)]


def _reaches(rule: RateLimitRule, routes: KnownRoutes) -> bool | None:
    """True when ``rule`` matches some route; None when that cannot be told (an incomplete route list)."""
    if any(routes.serves(path) for path in _rule_samples(rule)):
        return True
    if any(rule.regex.match(path) for path in routes.samples):
        return True
    literal = not rule.path.endswith("*") and _PARAM.search(rule.path) is None
    return False if literal or routes.complete else None


def _near_misses(path: str, routes: KnownRoutes) -> list[str]:
    """Spellings of ``path`` a user may have meant: another case, the other trailing slash, a route's own."""
    bare = path.rstrip("/") or "/"
    out = [path.lower(), bare, bare.lower()]
    out += [s for s in routes.samples if (s.rstrip("/") or "/").lower() == bare.lower()]
    return [p for p in dict.fromkeys(out) if p != path]


def check_rule_routes(rules: Iterable[RateLimitRule], routes: KnownRoutes) -> None:
    """Refuse a rule whose path matches none of the app's routes (ConfigurationError naming the rule).

    The framework adapters call it when the app starts (FastAPI/Starlette: the ASGI lifespan startup; Flask and
    Django: the first request, refused until fixed), with the app's routes. A rule matching nothing usually
    is a typo: another case (``/Login``), a trailing slash the route has not (``/login/`` for ``/login``),
    which would leave the real route unlimited. The message suggests the near miss that does match.
    ``"*"`` rules always pass. Set ``rate_limit.check_routes=False`` (or ``check_routes=False`` on the
    middleware) for paths served outside the app's router.

    Example::

        check_rule_routes(rules, KnownRoutes(lambda p: p == "/login", ("/login",)))
    """
    for rule in rules:
        if rule.path in ("*", "/*") or _reaches(rule, routes) is not False:
            continue
        fixes = [p for p in _near_misses(rule.path, routes) if _reaches(replace(rule, path=p), routes)]
        hint = f"did you mean {fixes[0]!r}?" if fixes else "rule paths match request paths exactly, case included"
        raise ConfigurationError(
            f"rate limit rule {rule.path!r} matches no route of the app: {hint} (or set"
            " rate_limit.check_routes=False when the path is served outside the app's router)."
        )


@dataclass(frozen=True)
class RateLimitRule:
    """Limits for requests whose path matches ``path`` (and method one of ``methods``; None: any).

    Methods match in any case, and a rule for ``GET`` also counts ``HEAD`` (the same handler answers both), in
    the same bucket: alternating GET and HEAD never doubles a client's quota.

    ``path``: ``"/users/{id}"`` (one bucket for the route, never per concrete URL), ``"/api/*"`` or ``"*"``.
    ``key`` overrides the middleware's key for this rule. Rules with the same ``scope`` share counters (a
    limit shared by several routes); the default scope is the method list and pattern. ``exempt=True``
    lets matching requests through unlimited. ``name`` is the policy name in the headers.

    A rule that could never match is refused here with a ConfigurationError naming it: a path that does not
    start with ``/`` (``"login"``), one holding a query or fragment (``?``, ``#``: never part of the path a
    request is matched on), and a method that is not one of HTTP's standard ones (``"PSOT"``), unless
    ``custom_methods=True`` (then any HTTP token, e.g. WebDAV's ``PROPFIND``). Against the app's own routes,
    rules are checked when the app starts (see :func:`check_rule_routes`).

    Example::

        rules = [RateLimitRule("*", "1000/hour", name="global"),
                 RateLimitRule("/login", "5/minute", methods=["POST"]),
                 RateLimitRule("/health", exempt=True)]
    """

    path: str
    limits: str | Sequence[LimitSpec] = ()
    methods: Iterable[str] | None = None
    key: KeyFunc | str | None = None
    scope: str | None = None
    cost: int = 1
    exempt: bool = False
    name: str | None = None
    custom_methods: bool = False
    rates: tuple[Rate, ...] = field(init=False, repr=False)
    method_set: frozenset[str] | None = field(init=False, repr=False)
    regex: re.Pattern[str] = field(init=False, repr=False)
    bucket: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_str("path", self.path)
        if isinstance(self.limits, (bytes, bytearray, Mapping)) or not isinstance(self.limits, (str, Iterable)):
            raise ConfigurationError(
                "limits must be a rate string ('5/minute;100/hour') or a list of rates,"
                f" not {type(self.limits).__name__}."
            )
        optional(check_strs, "methods", self.methods)
        optional(check_str, "scope", self.scope)
        optional(check_str, "name", self.name)
        check_int("cost", self.cost, min=0)
        check_bool("exempt", self.exempt)
        check_bool("custom_methods", self.custom_methods)
        _check_rule_path(self.path)
        if self.methods is not None:
            for method in self.methods:
                _check_rule_method(self.path, method, self.custom_methods)
        if self.key is not None:
            KeyResolver(self.key)  # refuses a key that is neither 'ip', 'header:<name>' nor a callable
        specs = [self.limits] if isinstance(self.limits, str) else list(self.limits)
        try:
            rates = () if self.exempt and not specs else parse_limits(specs)
        except ConfigurationError as exc:
            raise ConfigurationError(f"limits: {exc.detail}") from None
        methods = None if self.methods is None else frozenset(m.upper() for m in self.methods)
        if self.cost < 0:
            raise ConfigurationError("A rule's cost must not be negative.")
        set_ = object.__setattr__
        set_(self, "rates", rates)
        # HEAD runs the GET handler: a rule for GET counts HEAD too (in the same bucket; the label, part of the
        # storage key, stays the one of the methods as written).
        set_(self, "method_set", methods | {"HEAD"} if methods is not None and "GET" in methods else methods)
        set_(self, "regex", compile_path(self.path))
        label = ",".join(sorted(methods)) if methods else "*"
        set_(self, "bucket", self.scope or f"{label} {self.path}")

    def matches(self, method: str, path: str) -> bool:
        """True when this rule applies to ``method`` (any case; HEAD when the rule has GET) and ``path``."""
        if self.method_set is not None and method.upper() not in self.method_set:
            return False
        return self.regex.match(path) is not None


class RuleSet:
    """Compiled rules: which apply to a request (every matching rule applies; an exempt match wins).

    Example::

        RuleSet([RateLimitRule("*", "100/minute")]).match("GET", "/x")
    """

    def __init__(self, rules: Iterable[RateLimitRule]) -> None:
        self.rules = tuple(rules)
        self._cache: BoundedCache[tuple[str, str], tuple[RateLimitRule, ...]] = BoundedCache(
            "ratelimit.rules", max_entries=2048, max_bytes=1 << 20
        )

    def match(self, method: str, path: str) -> tuple[RateLimitRule, ...]:
        """The rules for this request: empty when none applies or an exempt rule matches."""
        cache_key = (method, path)
        found = self._cache.get(cache_key)
        if found is None:
            matched = [r for r in self.rules if r.matches(method, path)]
            found = () if any(r.exempt for r in matched) else tuple(matched)
            self._cache.put(cache_key, found)  # bounded: paths come from clients
        return found


_RL_NAMES = ("ratelimit", "ratelimit-policy", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")
_RL_FIELDS_ALL = frozenset(n.encode("latin-1") for n in _RL_NAMES)
_RL_STR_FIELDS = frozenset(_RL_NAMES)
_RL_LIST_FIELDS = (b"ratelimit", b"ratelimit-policy")
_RL_STR_LIST_FIELDS = ("ratelimit", "ratelimit-policy")


def merge_header_fields(
    existing: list[tuple[bytes, bytes]], ours: list[tuple[str, str]], *, lower: bool = True
) -> list[tuple[bytes, bytes]]:
    """Add ``ours`` to response headers without duplicating a field: list fields are joined into one.

    A route's own ``RateLimit``/``RateLimit-Policy`` items come first; legacy ``X-RateLimit-*`` already set by
    the route are kept as they are (the route's limit is the narrower one). ``lower``: add new names in lower
    case (ASGI); WSGI keeps their case.

    Example::

        merge_header_fields([(b"ratelimit", b'"route";r=1;t=5')], [("RateLimit", '"global";r=99;t=60')])
    """
    raw = [
        (name.lower().encode("latin-1") if lower else name.encode("latin-1"), value.encode("latin-1"))
        for name, value in ours
    ]
    return merge_raw_fields(existing, raw)


def merge_raw_fields(
    existing: Iterable[tuple[bytes, bytes]], ours: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """:func:`merge_header_fields` for header pairs already encoded (as the ASGI shell keeps them).

    The common case (the response has no rate limit field yet) is a plain append.

    Example::

        merge_raw_fields([(b"content-type", b"text/plain")], [(b"ratelimit", b'"global";r=99;t=60')])
    """
    return _merge_fields(existing, ours, _RL_FIELDS_ALL, _RL_LIST_FIELDS, b", ")


def merge_str_fields(existing: Iterable[tuple[str, str]], ours: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """:func:`merge_raw_fields` for WSGI header pairs (text); new names keep their case.

    Example::

        merge_str_fields([("Content-Type", "text/plain")], [("RateLimit", '"global";r=99;t=60')])
    """
    return _merge_fields(existing, ours, _RL_STR_FIELDS, _RL_STR_LIST_FIELDS, ", ")


_S = TypeVar("_S", str, bytes)


def _merge_fields(
    existing: Iterable[tuple[_S, _S]],
    ours: list[tuple[_S, _S]],
    names: frozenset[_S],
    list_names: tuple[_S, ...],
    sep: _S,
) -> list[tuple[_S, _S]]:
    """``existing`` with ``ours`` added: a name already there is joined (``list_names``) or kept as it is."""
    out = list(existing)
    for name, _ in out:
        if name.lower() in names:
            break
    else:  # the common case: no rate limit field yet, a plain append
        out += ours
        return out
    index = {k.lower(): i for i, (k, _) in enumerate(out)}
    for name, value in ours:
        lname = name.lower()
        i = index.get(lname)
        if i is None:
            out.append((name, value))
        elif lname in list_names:
            out[i] = (out[i][0], out[i][1] + sep + value)
    return out


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
        if isinstance(rules, (str, bytes, Mapping)) or not isinstance(rules, Iterable):
            raise ConfigurationError(f"rules must be a list of RateLimitRule, not {type(rules).__name__}.")
        all_rules = list(rules)
        for rule in all_rules:
            check_instance("rules", rule, RateLimitRule)
        if limits:
            all_rules.insert(0, RateLimitRule("*", limits, scope="global", name="global"))
        if not all_rules:
            raise ConfigurationError("A rate limit middleware needs rules or limits.")
        self.rules = RuleSet(all_rules)
        self.default = KeyResolver(key, client_ip, ipv6_prefix)
        self._resolvers: dict[int, KeyResolver] = {
            id(r): (KeyResolver(r.key, client_ip, ipv6_prefix) if r.key is not None else self.default)
            for r in all_rules
        }
        self._routes: BoundedCache[tuple[str, str], _Route | None] = BoundedCache(
            "ratelimit.routes", max_entries=2048, max_bytes=1 << 20
        )
        self._interned: dict[tuple[int, ...], _Route] = {}

    def resolver_for(self, rule: RateLimitRule) -> KeyResolver:
        """The key resolver of one of this plan's rules (rules keyed alike share one).

        Example::

            key = plan.resolver_for(rule).from_scope(scope)
        """
        return self._resolvers[id(rule)]

    def _charges(self, rules: tuple[RateLimitRule, ...], key_of: Callable[[KeyResolver], str | None]) -> list[Charge]:
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
        rules = self.rules.match(scope.get("method", "GET"), scope.get("path", "/"))
        if not rules:
            return []
        return self._charges(rules, lambda r: r.from_scope(scope))

    def charges_for_environ(self, environ: Any) -> list[Charge]:
        """The charges of a WSGI request (empty: not limited)."""
        path = (environ.get("SCRIPT_NAME", "") or "") + (environ.get("PATH_INFO", "") or "/")
        rules = self.rules.match(environ.get("REQUEST_METHOD", "GET"), path)
        if not rules:
            return []
        return self._charges(rules, lambda r: r.from_environ(environ))

    # -- the request path of the middlewares: cached routes and plans ----------------------------------------

    def _route(self, method: str, path: str) -> _Route | None:
        cache_key = (method, path)
        cached = self._routes.get(cache_key, _NO_ROUTE)
        if cached is not _NO_ROUTE:
            return cached
        rules = self.rules.match(method, path)
        route: _Route | None = None
        if rules:
            ident = tuple(map(id, rules))
            route = self._interned.get(ident)
            if route is None:
                if len(self._interned) >= 1024:  # bounded (routes still cached below stay valid)
                    self._interned.clear()
                route = self._interned[ident] = _Route(self, rules)
        self._routes.put(cache_key, route)  # bounded: paths come from clients
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
        method_path = (scope.get("method", "GET"), scope.get("path", "/"))
        route = self._routes.get(method_path)
        if route is None:
            route = self._route(*method_path)
            if route is None:
                return None
        resolver = route.resolver
        if resolver is not None:
            key = resolver.from_scope(scope)
            if key is None:
                return None
            plan = limiter.known_plan((route, key))
            return plan if plan is not None else self._plan(route, (key,), limiter)
        return self._plan(route, tuple(r.from_scope(scope) for r in route.resolvers), limiter)

    def plan_for_environ(self, environ: Any, limiter: RateLimiter) -> _Prepared | None:
        """What ``limiter`` must decide for a WSGI request (see :meth:`plan_for_scope`).

        Example::

            plan = rule_plan.plan_for_environ(environ, limiter)
        """
        script_name = environ.get("SCRIPT_NAME")
        path = environ.get("PATH_INFO") or "/"
        route = self._route(environ.get("REQUEST_METHOD", "GET"), script_name + path if script_name else path)
        if route is None:
            return None
        resolver = route.resolver
        if resolver is not None:
            key = resolver.from_environ(environ)
            return None if key is None else self._plan(route, (key,), limiter)
        return self._plan(route, tuple(r.from_environ(environ) for r in route.resolvers), limiter)


class RateLimitShell(Generic[App]):
    """The configuration both ``RateLimitMiddleware`` shells share (ASGI and WSGI): each keeps only its protocol.

    ``limiter`` (a memory one by default), the compiled :class:`RulePlan` on ``plan``, and whether allowed
    responses get the ``RateLimit`` fields (``send_headers``) and the legacy ``X-RateLimit-*`` ones
    (``legacy``), from the limiter unless given. ``check_routes``: whether the rules are checked against the
    app's routes when it starts, where the framework knows them (:meth:`check_rules`).

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
    ) -> None:
        self.app = app
        optional(check_instance, "limiter", limiter, RateLimiter)
        optional(check_instance, "client_ip", client_ip, ClientIP)
        optional(check_bool, "headers", headers)
        optional(check_bool, "legacy_headers", legacy_headers)
        check_bool("check_routes", check_routes)
        self.limiter = limiter if limiter is not None else RateLimiter()
        client_ip = client_ip or self.limiter.client_ip
        self.plan = RulePlan(rules, limits=limits, key=key, client_ip=client_ip, ipv6_prefix=ipv6_prefix)
        #: Used alone with trusted proxies, the shell resolves the client once for everything inside it.
        self.client_ip = client_ip if client_ip is not None and client_ip.enabled else None
        self.send_headers = self.limiter.headers if headers is None else headers
        self.legacy = self.limiter.legacy_headers if legacy_headers is None else legacy_headers
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
            return (None if reply.allowed else reply), None
        if not reply.allowed:
            return self.limiter.result_for(plan, reply), None
        return None, reply if self.send_headers else None

    def _legacy_fields(self, plan: _Prepared, reply: RateLimitReply) -> list[tuple[str, str]]:
        """The fields of an allowed response with the legacy ``X-RateLimit-*`` ones (``legacy`` on)."""
        return self.limiter.result_for(plan, reply).headers(legacy=True)


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

    def charges(self, keys: tuple[str | None, ...]) -> list[Charge]:
        """The charges of a request whose resolvers gave ``keys`` (None: that resolver exempts it)."""
        out: list[Charge] = []
        for rule, slot in zip(self.rules, self.slots, strict=True):
            key = keys[slot]
            if key is not None:
                out.append(Charge(key, rule.rates, rule.cost, rule.bucket, rule.name))
        return out
