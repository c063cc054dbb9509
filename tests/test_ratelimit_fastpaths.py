"""The rate limiter's fast paths give exactly what the general paths give.

- each strategy's single-limit Python twin (``_*_one``) against its general body (``_*_many``);
- the compiled plan's header values against :func:`format_headers` of the full result;
- the encoded header merges against :func:`merge_header_fields`;
- the middlewares' cached plans against the charges built per request, with one key or several;
- the peer-address key (no trusted proxy) against the trusted-proxy resolution;
- the legacy ``X-RateLimit-*`` fields on allowed responses (the middleware's slow header path);
- the route decorator's encoded fields on Starlette responses (replacing the route's own, stacked decorators).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

import backend_guard as bg
from backend_guard.asgi import RateLimitMiddleware
from backend_guard.clientip import ClientIP, address_bucket, normalize_address
from backend_guard.ratelimit import (
    Charge,
    KeyResolver,
    RateLimiter,
    RateLimitRule,
    RulePlan,
    format_headers,
    merge_header_fields,
    merge_raw_fields,
    merge_str_fields,
    parse_limits,
)
from backend_guard.ratelimit import _scripts as scripts
from backend_guard.storage import MemoryStore, Script
from backend_guard.storage.memory import MemoryView
from backend_guard.wsgi import RateLimitMiddleware as WSGIRateLimitMiddleware

from .conftest import FrozenClock

Body = Callable[[MemoryView, Sequence[str], Sequence[Any]], Any]

PAIRS: dict[str, tuple[Body, Body]] = {
    "fixed-window": (scripts._fixed_window, scripts._fixed_window_many),
    "sliding-window-counter": (scripts._sliding_window, scripts._sliding_window_many),
    "gcra": (scripts._gcra, scripts._gcra_many),
}

STEP = st.tuples(
    st.integers(0, 40_000),  # ms since the previous call
    st.integers(0, 4),  # cost
    st.booleans(),  # spend
)


@pytest.mark.parametrize("strategy", sorted(PAIRS))
@settings(max_examples=60, deadline=None)
@given(
    amount=st.integers(1, 8),
    window_ms=st.sampled_from([1_000, 2_500, 10_000, 60_000]),
    steps=st.lists(STEP, min_size=1, max_size=40),
    start_us=st.integers(0, 999),
)
def test_single_limit_twin_matches_the_general_body(
    strategy: str, amount: int, window_ms: int, steps: list[tuple[int, int, bool]], start_us: int
) -> None:
    entry, general = PAIRS[strategy]
    fast_script = Script(name="fast", memory=entry)
    slow_script = Script(name="slow", memory=general)
    now = 1_700_000_000.0 + start_us / 1e6
    fast_clock, slow_clock = FrozenClock(now), FrozenClock(now)
    fast, slow = MemoryStore(clock=fast_clock), MemoryStore(clock=slow_clock)
    key = fast.key("rl", "k")
    for gap, cost, spend in steps:
        now += gap / 1000
        fast_clock.now = slow_clock.now = now
        args = [1 if spend else 0, amount, window_ms, cost]
        assert fast.run(fast_script, [key], args) == slow.run(slow_script, [key], args)


def test_the_entry_points_dispatch_by_the_number_of_keys() -> None:
    store = MemoryStore(clock=FrozenClock(1_700_000_000.0))
    keys = [store.key("rl", "a"), store.key("rl", "b")]
    for entry, _ in PAIRS.values():
        one = store.run(Script(name="x", memory=entry), keys[:1], [1, 3, 60_000, 1])
        two = store.run(Script(name="y", memory=entry), keys, [1, 3, 60_000, 1, 5, 60_000, 1])
        assert len(one) == 4
        assert len(two) == 7
        store.clear()


@pytest.mark.parametrize("strategy", sorted(scripts.SCRIPTS))
def test_the_public_entry_reads_numeric_strings_as_a_plan_reads_its_ints(strategy: str) -> None:
    """``store.run`` with a strategy's script takes what Redis would pass (numeric strings); a limiter's plan of one
    limit runs the one-limit body on the ints it built: the same numbers."""
    public, typed = MemoryStore(clock=FrozenClock(1_700_000_000.0)), MemoryStore(clock=FrozenClock(1_700_000_000.0))
    key = public.key("rl", "k")
    for _ in range(5):  # allowed, then refused
        expected = typed.run(scripts.ONE_LIMIT[strategy], [key], [1, 3, 60_000, 1])
        assert public.run(scripts.SCRIPTS[strategy], [key], ["1", "3", "60000", "1"]) == expected
    plan = RateLimiter(strategy=strategy)._prepare([Charge("k", parse_limits(["3/minute"]), cost=1)], True)
    assert plan.script is scripts.ONE_LIMIT[strategy]
    assert [type(a) for a in plan.args] == [int] * 4


def test_plans_cached_by_peer_address_share_the_counters_of_their_key() -> None:
    """A rule keyed by the peer address alone caches its plans by that address: two addresses of one IPv6 /64
    get their own plan, on the same counter; a key header still keys by the header."""
    limiter = RateLimiter()
    plan = RulePlan([], limits="5/minute")
    assert plan.default.peer_only
    assert not KeyResolver("header:X-API-Key").peer_only

    def scope(address: str) -> dict[str, Any]:
        return {"type": "http", "method": "GET", "path": "/", "headers": [], "client": (address, 1234)}

    first, second = (
        plan.plan_for_scope(scope("2001:db8::1"), limiter),
        plan.plan_for_scope(scope("2001:db8::2"), limiter),
    )
    assert first is not None
    assert second is not None
    assert first.keys == second.keys
    assert plan.plan_for_scope(scope("2001:db8::1"), limiter) is first
    assert plan.plan_for_scope(scope("192.0.2.1"), limiter).keys != first.keys  # type: ignore[union-attr]


REPLY_ITEM = st.tuples(st.integers(0, 10**6), st.integers(-5, 10**8), st.integers(0, 10**8))


@settings(max_examples=150, deadline=None)
@given(
    names=st.lists(st.text(max_size=12), min_size=1, max_size=3),
    allowed=st.booleans(),
    items=st.lists(REPLY_ITEM, min_size=3, max_size=3),
)
def test_plan_header_values_match_format_headers(names: list[str], allowed: bool, items: list[Any]) -> None:
    limiter = RateLimiter()
    rates = parse_limits(["100/minute", "5/second", "1000/day"])[: len(names)]
    charges = [
        Charge("k", (rate,), scope=f"s{i}", name=name or None)
        for i, (rate, name) in enumerate(zip(rates, names, strict=True))
    ]
    plan = limiter._prepare(charges, True)
    raw: list[int] = [1 if allowed else 0]
    for item in items[: len(names)]:
        raw.extend(item)
    reply = scripts.RateLimitReply.from_reply(raw)
    expected = format_headers(limiter.result_for(plan, reply))
    assert plan.str_fields(reply) == expected
    assert plan.raw_fields(reply) == [(k.lower().encode(), v.encode()) for k, v in expected]


HEADER_NAME = st.sampled_from(
    ["content-type", "RateLimit", "ratelimit-policy", "X-RateLimit-Remaining", "x-ratelimit-reset", "etag"]
)


@given(
    existing=st.lists(st.tuples(HEADER_NAME, st.text("abc;=", max_size=6)), max_size=5),
    legacy=st.booleans(),
)
def test_encoded_merges_match_merge_header_fields(existing: list[tuple[str, str]], legacy: bool) -> None:
    ours = [("RateLimit-Policy", '"g";q=5;w=60'), ("RateLimit", '"g";r=4;t=60')]
    if legacy:
        ours += [("X-RateLimit-Limit", "5"), ("X-RateLimit-Remaining", "4"), ("X-RateLimit-Reset", "60")]
    raw_existing = [(k.encode(), v.encode()) for k, v in existing]
    expected = merge_header_fields(raw_existing, ours)
    assert merge_raw_fields(raw_existing, [(k.lower().encode(), v.encode()) for k, v in ours]) == expected
    expected_wsgi = merge_header_fields(raw_existing, ours, lower=False)
    assert [(k.encode(), v.encode()) for k, v in merge_str_fields(existing, ours)] == expected_wsgi


def _scope(path: str, peer: str, headers: list[tuple[bytes, bytes]] | None = None, method: str = "GET") -> Any:
    return {"type": "http", "method": method, "path": path, "headers": headers or [], "client": (peer, 1)}


def _environ(path: str, peer: str, api_key: str | None = None, method: str = "GET") -> dict[str, Any]:
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "", "REMOTE_ADDR": peer}
    if api_key is not None:
        environ["HTTP_X_API_KEY"] = api_key
    return environ


@pytest.mark.parametrize("path", ["/", "/users/1", "/users/2", "/login", "/health", "/other/x"])
@pytest.mark.parametrize("api_key", [None, "k1"])
def test_cached_plans_match_the_charges_of_each_request(path: str, api_key: str | None) -> None:
    plan = RulePlan(
        [
            RateLimitRule("/users/{id}", "10/minute"),
            RateLimitRule("/login", "5/minute", methods=["POST", "GET"], key="header:X-API-Key"),
            RateLimitRule("/health", exempt=True),
        ],
        limits="100/minute",
    )
    limiter = RateLimiter()
    headers = [(b"x-api-key", api_key.encode())] if api_key else []
    for _ in range(2):  # the second time from the caches
        scope = _scope(path, "203.0.113.9", headers)
        charges = plan.charges_for_scope(scope)
        compiled = plan.plan_for_scope(scope, limiter)
        if not charges:
            assert compiled is None
        else:
            assert compiled is not None
            assert compiled.keys == limiter._prepare(charges, True).keys
            assert compiled.charges == tuple(charges)
        environ = _environ(path, "203.0.113.9", api_key)
        wsgi_compiled = plan.plan_for_environ(environ, limiter)
        wsgi_charges = plan.charges_for_environ(environ)
        assert (wsgi_compiled.charges if wsgi_compiled else ()) == tuple(wsgi_charges)


def test_a_callable_key_exempting_one_of_two_resolvers() -> None:
    plan = RulePlan(
        [RateLimitRule("/a", "3/minute", key=lambda view: None if view.header("x-admin") else "user:1")],
        limits="100/minute",
    )
    limiter = RateLimiter()
    admin = plan.plan_for_scope(_scope("/a", "198.51.100.1", [(b"x-admin", b"1")]), limiter)
    user = plan.plan_for_scope(_scope("/a", "198.51.100.1"), limiter)
    assert admin is not None
    assert user is not None
    assert [c.scope for c in admin.charges] == ["global"]
    assert [c.scope for c in user.charges] == ["global", "* /a"]
    nobody = RulePlan([RateLimitRule("/a", "3/minute", key=lambda view: None)])
    assert nobody.plan_for_scope(_scope("/a", "198.51.100.1"), limiter) is None
    assert nobody.plan_for_environ(_environ("/a", "198.51.100.1"), limiter) is None


@given(
    address=st.one_of(
        st.ip_addresses().map(str),
        st.sampled_from(["", "::ffff:192.0.2.1", "[2001:db8::1]:80", "not-an-ip", "unix:/tmp/s"]),
    )
)
def test_the_peer_address_key_matches_the_resolution_through_client_ip(address: str) -> None:
    fast = KeyResolver()
    assert fast._peer_only
    slow = KeyResolver(client_ip=ClientIP(["10.0.0.0/8"]))
    assert not slow._peer_only
    expected = "ip:" + address_bucket(normalize_address(address) or address)
    scope = {"type": "http", "headers": [], "client": (address, 1) if address else None}
    assert fast.from_scope(scope) == expected == slow.from_scope(scope)
    assert fast.from_environ({"REMOTE_ADDR": address}) == expected == slow.from_environ({"REMOTE_ADDR": address})


def _asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> Any:
    async def run() -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"ratelimit", b'"route";r=1;t=5')]})
        await send({"type": "http.response.body", "body": b"ok"})

    return run()


def _wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("RateLimit", '"route";r=1;t=5'), ("X-RateLimit-Remaining", "1")])
    return [b"ok"]


@pytest.mark.parametrize("legacy", [False, True])
async def test_allowed_responses_with_and_without_legacy_fields(legacy: bool) -> None:
    limiter = RateLimiter(MemoryStore(), strategy="fixed-window", legacy_headers=legacy)
    app = RateLimitMiddleware(_asgi_app, limiter=limiter, limits="10/minute")
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        resp = await client.get("/")
    assert resp.headers["ratelimit"] == '"route";r=1;t=5, "global";r=9;t=60'
    assert resp.headers["ratelimit-policy"] == '"global";q=10;w=60'
    assert ("x-ratelimit-remaining" in resp.headers) is legacy
    if legacy:
        assert resp.headers["x-ratelimit-limit"] == "10"

    wsgi_limiter = RateLimiter(strategy="fixed-window", legacy_headers=legacy)
    wsgi = Client(WSGIRateLimitMiddleware(_wsgi_app, limiter=wsgi_limiter, limits="10/minute"))
    wresp = wsgi.get("/", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert wresp.headers["RateLimit"] == '"route";r=1;t=5, "global";r=9;t=60'
    assert wresp.headers.getlist("X-RateLimit-Remaining") == ["1"]  # the route's own legacy field is kept
    assert ("X-RateLimit-Limit" in wresp.headers) is legacy


def test_hit_plans_are_cached_and_unhashable_limits_still_work() -> None:
    limiter = RateLimiter()
    first = limiter.hit("k", "3/minute")
    assert limiter._fast
    assert limiter.hit("k", "3/minute").remaining == first.remaining - 1
    assert limiter.test("k", "3/minute").remaining == 1

    class Unhashable:
        amount = 3
        __hash__ = None  # type: ignore[assignment]

        @staticmethod
        def get_expiry() -> int:
            return 60

        def __str__(self) -> str:
            return "3 per 1 minute"

    assert limiter.hit("k", Unhashable()).remaining == 0  # same limit, same counter, no caching


@pytest.mark.parametrize("legacy", [False, True])
async def test_decorated_starlette_route_fields_replace_the_routes_own(legacy: bool) -> None:
    """The decorator's encoded fields (appended to the response's raw headers) replace a field of the same name
    the route set, and stacked decorators leave one field each: the outer one's."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    limiter = RateLimiter(MemoryStore(), strategy="fixed-window", legacy_headers=legacy)

    @limiter.limit("10/minute", name="own")
    async def own(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok", headers={"RateLimit": '"route";r=1;t=5', "RateLimit-Policy": "x"})

    @limiter.limit("5/minute", name="outer")
    @limiter.limit("10/minute", name="inner")
    async def stacked(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/own", own), Route("/stacked", stacked)])
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        first = await client.get("/own")
        second = await client.get("/own")
        both = await client.get("/stacked")
    for resp in (first, second):
        assert resp.headers.get_list("ratelimit-policy") == ['"own";q=10;w=60']
    assert [v.rsplit(";t=", 1)[0] for v in first.headers.get_list("ratelimit")] == ['"own";r=9']
    assert [v.rsplit(";t=", 1)[0] for v in second.headers.get_list("ratelimit")] == ['"own";r=8']
    assert [v.rsplit(";t=", 1)[0] for v in both.headers.get_list("ratelimit")] == ['"outer";r=4']
    assert both.headers.get_list("ratelimit-policy") == ['"outer";q=5;w=60']
    assert ("x-ratelimit-remaining" in both.headers) is legacy
    if legacy:
        assert both.headers.get_list("x-ratelimit-remaining") == ["4"]


@pytest.mark.parametrize("cost", [-1, 1.5, True, "2"])
def test_a_route_decorator_with_a_bad_cost_is_refused_at_decoration(cost: object) -> None:
    # refused where the route is written, not as a server error (ConfigurationError) on its first request
    limiter = bg.RateLimiter()
    with pytest.raises(bg.ConfigurationError, match="cost"):
        limiter.limit("5/minute", cost=cost)  # type: ignore[arg-type]
    with pytest.raises(bg.ConfigurationError, match="cost"):
        limiter.dependency("5/minute", cost=cost)  # type: ignore[arg-type]
