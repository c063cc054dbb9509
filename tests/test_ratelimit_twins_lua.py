"""The memory store's Python twins against the Lua scripts on the real Redis, number for number.

Wider than ``test_lua_and_memory_report_the_same_numbers_on_one_clock`` (test_ratelimit.py): a clock at any
microsecond (never only whole milliseconds), windows that are not whole seconds, one to three limits each with
its own amount and its own cost (a charge's cost differs between charges decided together), cost 0 and costs
above the limit, spends and peeks, and a varying number of the limits charged per request. A refused request
must spend nothing on any limit: asking again with a peek gives the same numbers.
"""

from __future__ import annotations

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend_guard.ratelimit._scripts import SCRIPTS
from backend_guard.storage import MemoryStore, RedisStore

from .conftest import REDIS_URL, FrozenClock

_REDIS_TIME = "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
_INJECTED = "local now = tonumber(ARGV[#ARGV])\n"  # the test's clock, in microseconds, as the last argument
# Redis expires keys on its own clock, not the test's: a 7 ms window's key could vanish on a slow machine while the
# twin's frozen clock stood still. An hour more on every expiry keeps them for the test; an expired key and one
# past its time read the same in every clocked script (a stale window, tat or log entry counts as none), so the
# numbers compared are the same ones.
_LONGER = (("'PX', ", "'PX', 3600000 + "), ("'PEXPIRE', KEYS[i], window", "'PEXPIRE', KEYS[i], 3600000 + window"))


def _on_test_clock(source: str) -> str:
    """A clocked script timed by the test's clock (its last argument), its keys kept an hour longer."""
    assert _REDIS_TIME in source
    source = source.replace(_REDIS_TIME, _INJECTED)
    longer = source
    for old, new in _LONGER:
        longer = longer.replace(old, new)
    assert longer != source, "no expiry found to lengthen"
    return longer


CLOCKED = ("sliding-window-counter", "moving-window", "gcra")  # fixed-window is timed by PTTL, not TIME
START_US = 1_700_000_000_000_000

LIMIT = st.tuples(st.integers(1, 10), st.sampled_from([7, 999, 1_000, 1_001, 2_500, 10_000, 60_000]))
STEP = st.tuples(
    st.integers(0, 70_000),  # ms since the previous call
    st.integers(0, 999),  # and microseconds
    st.lists(st.integers(0, 12), min_size=3, max_size=3),  # the cost on each limit
    st.booleans(),  # spend (else peek)
    st.integers(1, 3),  # how many of the limits this request is charged against
)


def _args(spend: bool, limits: list[tuple[int, int]], costs: list[int]) -> list[int]:
    args = [1 if spend else 0]
    for (amount, window), cost in zip(limits, costs, strict=False):
        args += [amount, window, cost]
    return args


@pytest.mark.redis
@pytest.mark.parametrize("strategy", CLOCKED)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    limits=st.lists(LIMIT, min_size=1, max_size=3),
    steps=st.lists(STEP, min_size=1, max_size=30),
    start_us=st.integers(0, 10**6 - 1),
)
def test_twins_equal_the_lua_at_any_microsecond(
    redis_store: RedisStore,
    strategy: str,
    limits: list[tuple[int, int]],
    steps: list[tuple[int, int, list[int], bool, int]],
    start_us: int,
) -> None:
    script = SCRIPTS[strategy]
    lua = _on_test_clock(script.source)
    client = redis.Redis.from_url(REDIS_URL)
    keys = [redis_store.key("twins", strategy, i) for i in range(len(limits))]
    now_us = START_US + start_us
    clock = FrozenClock(now_us / 1e6)
    memory = MemoryStore(clock=clock)
    try:
        for gap_ms, gap_us, costs, spend, count in steps:
            now_us += gap_ms * 1000 + gap_us
            clock.now = now_us / 1e6
            n = min(count, len(limits))
            args = _args(spend, limits[:n], costs)
            ours = memory.run(script, keys[:n], args)
            theirs = [int(x) for x in client.eval(lua, n, *keys[:n], *args, now_us)]
            assert theirs == ours, (args, now_us)
            if not ours[0]:  # refused: nothing was spent on any limit
                peek = _args(False, limits[:n], costs)
                assert memory.run(script, keys[:n], peek) == ours
                assert [int(x) for x in client.eval(lua, n, *keys[:n], *peek, now_us)] == ours
    finally:
        client.delete(*keys)
        client.close()


@pytest.mark.redis
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    limits=st.lists(st.tuples(st.integers(1, 10), st.sampled_from([600_000, 3_600_000])), min_size=1, max_size=3),
    steps=st.lists(st.tuples(st.lists(st.integers(0, 12), min_size=3, max_size=3), st.booleans()), max_size=25),
)
def test_fixed_window_twin_counts_as_the_lua(
    redis_store: RedisStore, limits: list[tuple[int, int]], steps: list[tuple[list[int], bool]]
) -> None:
    """Fixed window (timed by each key's PTTL, so on the real clocks, in windows no test outlasts): the same
    decisions and remaining counts; the reset and retry times within the test's own duration."""
    script = SCRIPTS["fixed-window"]
    client = redis.Redis.from_url(REDIS_URL)
    keys = [redis_store.key("twins-fw", i) for i in range(len(limits))]
    memory = MemoryStore()
    try:
        for costs, spend in steps:
            args = _args(spend, limits, costs)
            ours = memory.run(script, keys, args)
            theirs = [int(x) for x in client.eval(script.source, len(keys), *keys, *args)]
            assert theirs[0] == ours[0]
            for i in range(len(limits)):
                remaining, reset_ms, retry_ms = ours[3 * i + 1 : 3 * i + 4]
                assert theirs[3 * i + 1] == remaining
                assert abs(theirs[3 * i + 2] - reset_ms) < 5_000
                assert abs(theirs[3 * i + 3] - retry_ms) < 5_000
                assert (theirs[3 * i + 2] == 0) == (reset_ms == 0)
                assert (theirs[3 * i + 3] == 0) == (retry_ms == 0)
    finally:
        client.delete(*keys)
        client.close()


async def test_a_negative_cost_is_refused_on_every_entry() -> None:
    """No entry admits a negative cost (it would give quota back): hit/test and their async twins, hit_all with
    a Charge a user built, rules, plans, and the route hooks (refused when the route is decorated)."""
    from backend_guard.exceptions import ConfigurationError
    from backend_guard.ratelimit import Charge, RateLimiter, RateLimitRule, parse_limits

    limiter = RateLimiter()
    rates = parse_limits(["2/minute"])
    for call in (limiter.hit, limiter.test):
        with pytest.raises(ConfigurationError, match="negative"):
            call("k", "2/minute", cost=-1)
    for acall in (limiter.ahit, limiter.atest):
        with pytest.raises(ConfigurationError, match="negative"):
            await acall("k", "2/minute", cost=-1)
    charges = [Charge("k", rates, scope="ok"), Charge("k", rates, -1, scope="bad")]
    with pytest.raises(ConfigurationError, match="negative"):
        limiter.hit_all(charges)
    with pytest.raises(ConfigurationError, match="negative"):
        await limiter.ahit_all(charges, spend=False)
    with pytest.raises(ConfigurationError, match="cost"):
        RateLimitRule("/x", "2/minute", cost=-1)
    with pytest.raises(ConfigurationError, match="cost"):  # the route hooks: refused when the route is decorated
        limiter._route_hooks(("2/minute",), None, -1, None, None, None, False)
    with pytest.raises(ConfigurationError, match="negative"):  # a plan built from a charge of its own
        limiter.cached_plan(("neg",), lambda: [Charge("k", rates, -1, scope="x")])
    assert limiter.hit("k", "2/minute").remaining == 1  # nothing was spent or given back


@pytest.mark.redis
@pytest.mark.parametrize("strategy", ["fixed-window", *CLOCKED])
def test_a_counter_named_twice_in_one_decision_is_charged_once(redis_store: RedisStore, strategy: str) -> None:
    """Two rules sharing a scope and a limit, both matching one request, name one counter: every strategy on
    both stores charges it once per request (fixed-window charged it twice, moving-window twice in memory but
    once on Redis, the others once), with the same remaining count on both."""
    from backend_guard.ratelimit import Charge, RateLimiter, parse_limits

    rates = parse_limits(["5/minute"])
    charges = [Charge("1.2.3.4", rates, scope="api"), Charge("1.2.3.4", rates, scope="api", name="again")]
    for store in (MemoryStore(), redis_store):
        limiter = RateLimiter(store, strategy=strategy)  # type: ignore[arg-type]
        seen = [limiter.hit_all(charges).remaining for _ in range(6)]
        assert seen == [4, 3, 2, 1, 0, 0], (store, seen)
        assert limiter.hit("1.2.3.4", "5/minute", scope="api").allowed is False
