"""Caches keyed on request data are bounded by bytes as well as entries, and answers stay right under a flood."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import backend_guard as bg
from backend_guard._cache import BoundedCache, approx_size, bounded_caches
from backend_guard.asgi import Guard

# --- the cache type ------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.booleans(), st.integers(0, 40), st.integers(0, 3000)),
        max_size=300,
    ),
    max_entries=st.integers(1, 32),
    max_bytes=st.integers(1, 40_000),
)
def test_a_bounded_cache_never_holds_more_than_its_entries_or_bytes_and_answers_what_was_put(
    ops: list[tuple[bool, int, int]], max_entries: int, max_bytes: int
) -> None:
    cache: BoundedCache[str, str] = BoundedCache("test", max_entries=max_entries, max_bytes=max_bytes)
    last: dict[str, str] = {}
    for is_put, key_no, length in ops:
        key = f"k{key_no}"
        if is_put:
            value = "v" * length
            kept = cache.put(key, value)
            assert kept == (approx_size(key) + approx_size(value) <= cache.max_entry_bytes)
            if kept:
                last[key] = value
            else:
                last.pop(key, None)
                assert cache.get(key) is None  # not the older value either
        else:
            found = cache.get(key)
            assert found is None or found == last[key]
        assert len(cache) <= max_entries
        assert cache.nbytes <= max_bytes
        assert cache.nbytes == sum(approx_size(k) + approx_size(cache.get(k)) for k in cache)


_texts = st.text(max_size=200) | st.binary(max_size=200)
_nested = st.recursive(_texts, lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(value=_nested)
def test_approx_size_counts_every_string_held_in_nested_tuples_and_lists(value: Any) -> None:
    # The byte bound is only a bound if a key or value's strings are counted wherever they sit: at least the
    # containers' own sizes plus each string's, to the depth the cache looks (4 levels below the top).
    def floor(obj: Any, depth: int) -> int:
        if isinstance(obj, (tuple, list)) and depth < 4:
            return sys.getsizeof(obj) + sum(floor(item, depth + 1) for item in obj)
        return sys.getsizeof(obj)

    assert approx_size(value) == floor(value, 0)
    assert approx_size(("key", value)) == sys.getsizeof(("key", value)) + sys.getsizeof("key") + floor(value, 1)


def test_the_oldest_entry_goes_first() -> None:
    cache: BoundedCache[str, int] = BoundedCache("test", max_entries=3, max_bytes=1 << 20)
    for key in ("a", "b", "c"):
        cache.put(key, 1)
    cache.put("a", 2)  # put again: now the newest
    cache.put("d", 1)
    assert "b" not in cache
    assert [cache.get(k) for k in ("a", "c", "d")] == [2, 1, 1]


def test_a_cache_hit_runs_no_python_code() -> None:
    # The per-request paths (CORS answers, rate-limit routes, client addresses) look a cache up on every request:
    # a hit is one dict lookup, with no Python function call around it.
    cache: BoundedCache[str, int] = BoundedCache("test", max_entries=8, max_bytes=1 << 20)
    cache.put("k", 1)
    events: list[str] = []
    sys.setprofile(lambda frame, event, arg: events.append(event))
    try:
        found, missing = cache.get("k"), cache.get("other", 7)
    finally:
        sys.setprofile(None)
    assert (found, missing) == (1, 7)
    assert "call" not in events, events  # "c_call" only


def test_an_entry_too_big_for_the_cache_is_not_kept() -> None:
    cache: BoundedCache[str, str] = BoundedCache("test", max_entries=10, max_bytes=64 * 1024)
    assert not cache.put("/x" * 50_000, "value")
    assert len(cache) == 0
    assert cache.nbytes == 0


# --- a flood through the real middleware -----------------------------------------------------------------------


def _call(app: Any, path: str, origin: str | None = None) -> tuple[int, dict[bytes, bytes]]:
    headers = [(b"host", b"api.example.com")]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "https",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("203.0.113.9", 5000),
        "server": ("10.0.0.1", 443),
    }
    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = sent[0]
    return start["status"], dict(start["headers"])


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def test_a_flood_of_distinct_large_paths_and_origins_keeps_every_cache_under_its_byte_bound() -> None:
    before = {id(c) for c in bounded_caches()}
    guard = Guard(
        _ok,
        bg.GuardSettings(
            cors={"allow_origin_patterns": ["https://*.example.com"], "allow_credentials": True},
            rate_limit={
                "default_limits": "100000/hour",
                "rules": [{"path": "/login", "limits": "2/minute"}],
            },
        ),
    )
    # Paths of 100 KB (never cached: over an entry's limit) and of 8 KB (cached until the bytes run out), and
    # distinct allowed origins of about 250 characters.
    for i in range(300):
        size = 100_000 if i % 2 else 8_000
        path = f"/flood/{i}/" + "p" * size
        origin = f"https://{'o' * 60}.{i:0>60}.{'r' * 60}.example.com"
        status, headers = _call(guard, path, origin)
        assert status == 200
        assert headers[b"access-control-allow-origin"] == origin.encode()  # answers stay right
    mine = [c for c in bounded_caches() if id(c) not in before or c.name in ("clientip.peers", "lockout.buckets")]
    assert {"ratelimit.rules", "ratelimit.routes", "cors.actual"} <= {c.name for c in mine}
    for cache in mine:
        assert cache.nbytes <= cache.max_bytes, cache
        assert len(cache) <= cache.max_entries, cache
    routes = next(c for c in mine if c.name == "ratelimit.routes")
    assert routes.nbytes > routes.max_bytes // 2  # the 8 KB paths were cached, up to the byte bound
    # Results after the flood: the login limit still counts, a foreign origin is still refused.
    assert [_call(guard, "/login")[0] for _ in range(3)] == [200, 200, 429]
    assert b"access-control-allow-origin" not in _call(guard, "/x", "https://attacker.com")[1]


class _Text(str):
    """A str subclass an application might pass (as markupsafe's Markup): its methods answer their own type."""

    def strip(self, chars: str | None = None) -> _Text:
        return _Text(str.strip(self, chars))


@settings(max_examples=200, deadline=None)
@given(
    account=st.text(max_size=256) | st.binary(max_size=256),
    ip=st.sampled_from(["203.0.113.7", "2001:db8::1", "", " not an address "]),
    subclass=st.booleans(),
)
def test_a_lockout_plan_counts_every_string_it_holds(account: str | bytes, ip: str, subclass: bool) -> None:
    # The lockout's plan cache is bounded by bytes through each plan's size: every key, digest, the address and the
    # normalised name (non-ASCII names take 2 or 4 bytes a character) are counted, not only the plan's slots; an
    # address given as a str subclass is held as a plain str.
    from backend_guard.lockout import Lockout

    plan = Lockout(max_failures=5)._keys.plan(account, (_Text(ip) if subclass else ip) or None)
    held = [*plan.keys, plan.named, plan.member, plan.account_id, plan.address, plan.account]
    assert all(type(s) is str for s in held)
    assert sys.getsizeof(plan) >= sys.getsizeof(plan.keys) + sum(map(sys.getsizeof, held))


def test_a_rate_limit_plan_counts_the_client_key_it_holds() -> None:
    # A new client's plan is cached under its key: its size must grow with the key it holds (in the charge and in
    # the store key), or a flood of long keys would pass the byte bound.
    from backend_guard.ratelimit import Charge, RateLimiter, parse_limits

    limiter = RateLimiter()
    rates = parse_limits(["100/minute"])

    def plan_size(key: str) -> int:
        plan = limiter.cached_plan(
            (test_a_rate_limit_plan_counts_the_client_key_it_holds, key), lambda: [Charge(key, rates)]
        )
        return sys.getsizeof(plan)

    assert plan_size("k" * 60) - plan_size("k") >= 59  # the charge's key (the store key digests a long part)
    assert plan_size("€" * 60) - plan_size("€") >= 2 * 59  # two bytes a character there


def test_every_clients_plan_of_one_limit_shares_its_field_texts_and_they_stay_bounded() -> None:
    # The RateLimit field texts follow from the limits alone: a new client's plan reuses them (its size counts only
    # what is its own), and a flood of distinct limit names (scopes from route templates) keeps their cache bounded.
    from backend_guard._cache import bounded_caches
    from backend_guard.ratelimit import Charge, RateLimiter, format_headers, parse_limits

    limiter = RateLimiter()
    rates = parse_limits(["100/minute"])
    owner = test_every_clients_plan_of_one_limit_shares_its_field_texts_and_they_stay_bounded
    plans = [
        limiter.cached_plan((owner, key), lambda key=key: [Charge(key, rates, scope="GET /a b", name="GET /a b")])
        for key in ("ip:198.51.100.1", "ip:198.51.100.2")
    ]
    assert plans[0] is not plans[1]
    assert plans[0].keys != plans[1].keys
    assert plans[0].policy is plans[1].policy
    assert plans[0].templates is plans[1].templates
    result = limiter.result_for(plans[0], limiter.run_plan(plans[0]))
    assert plans[0].str_fields(limiter.run_plan(plans[0]))[0] == format_headers(result)[0]  # the policy field
    for i in range(3000):
        name = f"route-{i}-" + "x" * 200
        limiter.cached_plan((owner, i), lambda name=name: [Charge("ip:198.51.100.9", rates, scope=name, name=name)])
    (texts,) = [c for c in bounded_caches() if c.name == "ratelimit.field_texts"]
    assert len(texts) <= texts.max_entries
    assert texts.max_bytes // 2 < texts.nbytes <= texts.max_bytes  # flooded, and held to its bound
