"""The rate limiter core over the memory store and the real Redis: exactness, all-or-nothing, window maths."""

from __future__ import annotations

import logging
import multiprocessing
import re
import threading
from fractions import Fraction

import limits
import pytest
import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from backend_guard.exceptions import ConfigurationError, StorageError
from backend_guard.ratelimit import (
    STRATEGIES,
    Charge,
    LimitState,
    Rate,
    RateLimiter,
    RateLimitResult,
    format_headers,
    parse_limits,
)
from backend_guard.storage import MemoryStore, RedisStore, Store

from .conftest import REDIS_URL, FrozenClock, free_port

# A long window: the exactness tests must never straddle a sliding-window edge.
FIFTY = "50 per 1000 days"
ALIGNED = 1_699_999_980.0  # a multiple of 60 s: minute windows start here


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_two_limits_all_or_nothing(store: Store, strategy: str) -> None:
    limiter = RateLimiter(store, strategy=strategy)
    results = [limiter.hit("client", "100/minute", "2/minute") for _ in range(5)]
    assert [r.allowed for r in results] == [True, True, False, False, False]
    large, small = results[-1].limits
    assert (large.limit, large.remaining) == (100, 98)
    assert (small.limit, small.remaining) == (2, 0)
    assert results[-1].limit == 2
    assert results[-1].retry_after > 0
    assert results[1].retry_after == 0


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_peek_spends_nothing_and_reset_forgets(store: Store, strategy: str) -> None:
    limiter = RateLimiter(store, strategy=strategy)
    assert limiter.hit("k", "3/minute").remaining == 2
    for _ in range(3):
        peek = limiter.test("k", "3/minute")
        assert peek.allowed
        assert peek.remaining == 2
    assert not limiter.test("k", "3/minute", cost=3).allowed
    assert limiter.hit("k", "3/minute", cost=2).remaining == 0
    assert not limiter.hit("k", "3/minute").allowed
    assert limiter.hit("other", "3/minute").allowed
    assert limiter.reset("k", "3/minute") == 1
    assert limiter.hit("k", "3/minute").remaining == 2
    limiter.hit("k", "10/hour", scope="route")
    assert limiter.reset("k") == 2
    assert limiter.hit("other", "3/minute").remaining == 1  # another key is untouched


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_async_twins(astore: Store, strategy: str) -> None:
    limiter = RateLimiter(astore, strategy=strategy)
    first = await limiter.ahit("k", "2/minute")
    second = await limiter.ahit("k", "2/minute")
    third = await limiter.ahit("k", "2/minute")
    assert (first.remaining, second.remaining, third.allowed) == (1, 0, False)
    assert not (await limiter.atest("k", "2/minute")).allowed
    assert await limiter.areset("k") == 1
    assert (await limiter.ahit("k", "2/minute")).allowed


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_concurrent_threads_admit_exactly_the_limit(store: Store, strategy: str) -> None:
    limiter = RateLimiter(store, strategy=strategy)
    admitted: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(25):
            ok = limiter.hit("shared", FIFTY).allowed
            with lock:
                admitted.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 200
    assert sum(admitted) == 50


def _process_worker(job: tuple[str, str, str, int]) -> int:
    url, prefix, strategy, n = job
    store = RedisStore(url, prefix=prefix, socket_timeout=5, connect_timeout=5)
    try:
        limiter = RateLimiter(store, strategy=strategy)
        return sum(limiter.hit("shared", FIFTY).allowed for _ in range(n))
    finally:
        store.close()


@pytest.mark.redis
@pytest.mark.slow
def test_concurrent_processes_admit_exactly_the_limit_on_redis(redis_store: RedisStore) -> None:
    ctx = multiprocessing.get_context("spawn")
    jobs = [(REDIS_URL, f"{redis_store.prefix}:{strategy}", strategy, 25) for strategy in STRATEGIES for _ in range(8)]
    with ctx.Pool(4) as pool:
        counts = pool.map(_process_worker, jobs, chunksize=1)
    for i, strategy in enumerate(STRATEGIES):
        assert sum(counts[i * 8 : (i + 1) * 8]) == 50, strategy


def test_a_cost_larger_than_the_limit_is_refused_and_spends_nothing(store: Store) -> None:
    limiter = RateLimiter(store)
    result = limiter.hit("k", "5/minute", cost=6)
    assert not result.allowed
    assert result.retry_after > 0
    assert limiter.hit("k", "5/minute").remaining == 4


def test_cost_zero_is_a_free_pass() -> None:
    limiter = RateLimiter()
    assert limiter.hit("k", "1/minute", cost=0).allowed
    assert limiter.hit("k", "1/minute").allowed
    with pytest.raises(ConfigurationError):
        limiter.hit("k", "1/minute", cost=-1)


@pytest.mark.parametrize("cost", [1.5, True, float("nan"), float("inf"), "2"])
def test_a_cost_that_is_not_a_whole_number_is_refused_whatever_the_store(store: Store, cost: object) -> None:
    # The memory store would count int(cost), Redis a fraction or nothing: refused before either runs, so the
    # count never depends on the store (and a NaN is a clear ConfigurationError, not a storage outage).
    limiter = RateLimiter(store)
    with pytest.raises(ConfigurationError, match="cost must be a whole number"):
        limiter.hit("k", "5/minute", cost=cost)  # type: ignore[arg-type]
    assert limiter.hit("k", "5/minute").remaining == 4  # nothing was spent


# -- window maths on a frozen clock ------------------------------------------------------------------------------


def _limiter(clock: FrozenClock, strategy: str) -> RateLimiter:
    return RateLimiter(MemoryStore(clock=clock), strategy=strategy)


def test_fixed_window_starts_at_first_hit(clock: FrozenClock) -> None:
    rl = _limiter(clock, "fixed-window")
    assert [rl.hit("k", "3/minute").allowed for _ in range(4)] == [True, True, True, False]
    clock.advance(45)
    denied = rl.hit("k", "3/minute")
    assert not denied.allowed
    assert denied.retry_after == pytest.approx(15, abs=0.002)
    clock.advance(15)
    fresh = rl.hit("k", "3/minute")
    assert fresh.allowed
    assert fresh.remaining == 2
    assert fresh.reset_after == pytest.approx(60, abs=0.002)


def test_sliding_window_counter_weighs_the_previous_window() -> None:
    clock = FrozenClock(ALIGNED)
    rl = _limiter(clock, "sliding-window-counter")
    for _ in range(10):
        assert rl.hit("k", "10/minute").allowed
    assert not rl.hit("k", "10/minute").allowed
    clock.advance(60 + 15)  # next window, 25 % in: the previous 10 weigh 7.5
    peek = rl.test("k", "10/minute")
    assert peek.remaining == 2
    assert [rl.hit("k", "10/minute").allowed for _ in range(3)] == [True, True, False]
    denied = rl.hit("k", "10/minute")
    # 2 + 10 * (1 - e) + 1 <= 10  ->  e >= 0.3: 3 s from now
    assert denied.retry_after == pytest.approx(3, abs=0.002)
    clock.advance(denied.retry_after)
    assert rl.hit("k", "10/minute").allowed


def test_moving_window_is_an_exact_log(clock: FrozenClock) -> None:
    rl = _limiter(clock, "moving-window")
    for _ in range(3):
        assert rl.hit("k", "3/minute").allowed
        clock.advance(10)
    denied = rl.hit("k", "3/minute")
    assert not denied.allowed
    assert denied.retry_after == pytest.approx(30, abs=0.002)
    clock.advance(30)
    ok = rl.hit("k", "3/minute")
    assert ok.allowed
    assert ok.remaining == 0
    assert ok.reset_after == pytest.approx(10, abs=0.002)  # the hit 50 s ago leaves in 10 s


def test_gcra_allows_a_burst_then_the_rate(clock: FrozenClock) -> None:
    rl = _limiter(clock, "gcra")
    assert [rl.hit("k", "3/minute").allowed for _ in range(4)] == [True, True, True, False]
    denied = rl.test("k", "3/minute")
    assert denied.retry_after == pytest.approx(20, abs=0.002)
    assert denied.reset_after == pytest.approx(20, abs=0.002)  # one unit back, not the whole bucket (60 s)
    clock.advance(20)
    assert rl.hit("k", "3/minute").allowed
    assert not rl.hit("k", "3/minute").allowed


@pytest.mark.parametrize("strategy", STRATEGIES)
@settings(max_examples=25, deadline=None)
@given(gaps=st.lists(st.integers(0, 30_000), min_size=1, max_size=30), cost=st.integers(1, 3))
def test_retry_after_is_honest(strategy: str, gaps: list[int], cost: int) -> None:
    """After waiting the advertised retry_after, the same request passes."""
    ms = int(ALIGNED * 1000)
    clock = FrozenClock(ALIGNED)
    rl = _limiter(clock, strategy)
    for gap in gaps:
        ms += gap  # whole milliseconds, so the float clock never drifts below the advertised instant
        clock.now = ms / 1000
        result = rl.hit("k", "5/10 seconds", "8/minute", cost=cost)
        if not result.allowed:
            ms += round(result.retry_after * 1000)
            clock.now = ms / 1000
            assert rl.test("k", "5/10 seconds", "8/minute", cost=cost).allowed


# -- a model of the limiter, checked by a state machine -----------------------------------------------------------

MODEL_LIMITS = ((4, 8_000), (5, 60_000))  # amount, window in ms: windows divide evenly (exact GCRA intervals)
MODEL_SPECS = ("4 per 8 seconds", "5/minute")


class LimiterMachine(RuleBasedStateMachine):
    """The memory-store limiter against a plain model of each strategy (time in whole ms)."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FrozenClock(1_700_000_000.0)
        self.now = 1_700_000_000_000
        self.strategy = ""
        self.limiter: RateLimiter | None = None
        self.fixed: list[tuple[int, int]] = [(0, 0)] * 2  # (count, window end)
        self.log: list[list[int]] = [[], []]
        self.tat: list[Fraction] = [Fraction(0)] * 2

    @initialize(strategy=st.sampled_from(["fixed-window", "moving-window", "gcra"]))
    def setup(self, strategy: str) -> None:
        self.strategy = strategy
        self.limiter = RateLimiter(MemoryStore(clock=self.clock), strategy=strategy)

    def _model(self, cost: int, spend: bool) -> tuple[bool, list[int]]:
        oks, remaining = [], []
        for i, (amount, window) in enumerate(MODEL_LIMITS):
            if self.strategy == "fixed-window":
                count, end = self.fixed[i]
                if self.now >= end:
                    count = 0
                oks.append(count + cost <= amount)
            elif self.strategy == "moving-window":
                live = [t for t in self.log[i] if t > self.now - window]
                oks.append(len(live) + cost <= amount)
            else:
                interval = Fraction(window, amount)
                tat = max(self.tat[i], Fraction(self.now))
                oks.append(tat + cost * interval - self.now <= window)
        ok = all(oks)
        for i, (amount, window) in enumerate(MODEL_LIMITS):
            if self.strategy == "fixed-window":
                count, end = self.fixed[i]
                if self.now >= end:
                    count, end = 0, self.now + window
                if ok and spend:
                    count += cost
                    self.fixed[i] = (count, end)
                remaining.append(amount - count)
            elif self.strategy == "moving-window":
                live = [t for t in self.log[i] if t > self.now - window]
                if ok and spend:
                    live += [self.now] * cost
                    self.log[i] = live
                remaining.append(amount - len(live))
            else:
                interval = Fraction(window, amount)
                tat = max(self.tat[i], Fraction(self.now))
                if ok and spend:
                    tat += cost * interval
                    self.tat[i] = tat
                remaining.append(min(amount, int((window - (tat - self.now)) // interval)))
        return ok, remaining

    def _check(self, result: RateLimitResult, ok: bool, remaining: list[int]) -> None:
        assert result.allowed == ok
        assert [s.remaining for s in result.limits] == remaining

    @rule(cost=st.integers(1, 3))
    def hit(self, cost: int) -> None:
        assert self.limiter is not None
        result = self.limiter.hit("k", *MODEL_SPECS, cost=cost)
        self._check(result, *self._model(cost, spend=True))

    @rule(cost=st.integers(1, 6))
    def peek(self, cost: int) -> None:
        assert self.limiter is not None
        result = self.limiter.test("k", *MODEL_SPECS, cost=cost)
        self._check(result, *self._model(cost, spend=False))

    @rule(ms=st.sampled_from([0, 1, 500, 1_000, 2_000, 4_000, 7_999, 8_000, 30_000, 61_000]))
    def advance(self, ms: int) -> None:
        self.now += ms
        self.clock.now = self.now / 1000

    @precondition(lambda self: self.limiter is not None)
    @rule()
    def reset(self) -> None:
        assert self.limiter is not None
        self.limiter.reset("k")
        self.fixed = [(0, 0)] * 2
        self.log = [[], []]
        self.tat = [Fraction(0)] * 2

    @invariant()
    def never_more_than_the_limit_in_a_window(self) -> None:
        for i, (amount, window) in enumerate(MODEL_LIMITS):
            if self.strategy == "moving-window":
                assert len([t for t in self.log[i] if t > self.now - window]) <= amount


LimiterMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestLimiterMachine = LimiterMachine.TestCase


# -- storage failures ---------------------------------------------------------------------------------------------


def _dead_store() -> RedisStore:
    return RedisStore(f"redis://127.0.0.1:{free_port()}/0", breaker_cooldown=30)


@pytest.mark.parametrize(("mode", "allowed"), [("allow", True), ("deny", False)])
def test_dead_store_gives_the_configured_answer_logged_once(
    mode: str, allowed: bool, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = RateLimiter(_dead_store(), on_storage_error=mode)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        results = [limiter.hit("k", "5/minute") for _ in range(5)]
    assert all(r.allowed is allowed and r.degraded for r in results)
    assert all(r.headers() == [] for r in results)
    mine = [r for r in caplog.records if r.name == "backend_guard.ratelimit"]
    assert len(mine) == 1
    assert mode in mine[0].getMessage()


async def test_dead_store_async_and_raise_mode() -> None:
    limiter = RateLimiter(_dead_store(), on_storage_error="raise")
    with pytest.raises(StorageError):
        await limiter.ahit("k", "5/minute")
    deny = RateLimiter(_dead_store(), on_storage_error="deny")
    result = await deny.ahit("k", "5/minute")
    assert not result.allowed
    assert result.retry_after > 0


@pytest.mark.redis
def test_recovery_without_restart(redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    store = RedisStore(redis_url, prefix=prefix, breaker_cooldown=0.01)
    limiter = RateLimiter(store, on_storage_error="deny")
    try:
        limiter._failed(StorageError("simulated"))  # an outage as seen by the limiter
        with caplog.at_level(logging.WARNING):
            assert limiter.hit("k", "5/minute").allowed
        assert any("available again" in r.getMessage() for r in caplog.records)
    finally:
        store.delete(*store.scan(f"{prefix}:*"))
        store.close()


def test_memory_store_stays_bounded_under_a_flood_of_keys() -> None:
    store = MemoryStore(max_keys=200)
    limiter = RateLimiter(store)
    for i in range(5_000):
        limiter.hit(f"ip:{i}", "5/minute", "100/hour")
    assert len(store) <= 200


# -- configuration, keys and headers ------------------------------------------------------------------------------


def test_bad_configuration_is_refused_at_start() -> None:
    with pytest.raises(ConfigurationError):
        RateLimiter(strategy="leaky")
    with pytest.raises(ConfigurationError):
        RateLimiter(on_storage_error="maybe")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        parse_limits(["lots/minute"])
    with pytest.raises(ConfigurationError):
        parse_limits([])
    with pytest.raises(ConfigurationError):
        parse_limits([3.5])
    assert RateLimiter(strategy="token-bucket").strategy == "gcra"


def test_keys_of_one_decision_share_a_cluster_hash_tag() -> None:
    store = MemoryStore(prefix="p")
    limiter = RateLimiter(store, key_prefix="api")
    limiter.hit("user:{42}", "5/minute", "100/hour", scope="GET /x")
    keys = store.scan("p:*")
    assert len(keys) == 2
    tags = {re.search(r"\{[^}]*\}", k).group(0) for k in keys}  # type: ignore[union-attr]
    assert len(tags) == 1
    assert all(k.startswith("p:rl:") and ":api:" in k for k in keys)


def test_limits_items_and_rates_are_accepted() -> None:
    from limits import RateLimitItemPerMinute

    limiter = RateLimiter()
    result = limiter.hit("k", RateLimitItemPerMinute(3), Rate(10, 3600.0, "10/hour", name="hourly"))
    assert [s.limit for s in result.limits] == [3, 10]
    assert result.limits[1].name == "hourly"


@settings(max_examples=50)
@given(
    amount=st.integers(1, 10_000),
    multiples=st.integers(1, 100),
    unit=st.sampled_from([("second", 1), ("minute", 60), ("hour", 3600), ("day", 86400)]),
)
def test_rate_strings_round_trip(amount: int, multiples: int, unit: tuple[str, int]) -> None:
    (rate,) = Rate.parse(f"{amount} per {multiples} {unit[0]}")
    assert rate.amount == amount
    assert rate.window == multiples * unit[1]
    assert Rate.parse(rate.text) == (rate,)


def test_headers_follow_the_latest_draft() -> None:
    state = LimitState("default", 100, 60.0, 98, 29.2, 0.0, True)
    result = RateLimitResult(True, 100, 98, 29.2, 0.0, (state,))
    assert format_headers(result) == [
        ("RateLimit-Policy", '"default";q=100;w=60'),
        ("RateLimit", '"default";r=98;t=30'),
    ]
    legacy = dict(result.headers(legacy=True, policy=False))
    assert "RateLimit-Policy" not in legacy
    assert legacy["X-RateLimit-Remaining"] == "98"
    assert legacy["X-RateLimit-Reset"] == "30"


_SF_ITEM = re.compile(r'^"((?:[^"\\]|\\["\\])*)";q=(\d+);w=(\d+)$')


@given(name=st.text(max_size=30), q=st.integers(1, 10**6), w=st.integers(1, 10**6))
def test_policy_names_are_always_valid_structured_strings(name: str, q: int, w: int) -> None:
    state = LimitState(name, q, float(w), 0, 1.0, 0.0, True)
    value = dict(format_headers(RateLimitResult(True, q, 0, 1.0, 0.0, (state,))))["RateLimit-Policy"]
    match = _SF_ITEM.match(value)
    assert match is not None
    assert all(" " <= ch <= "~" for ch in value)
    assert (int(match.group(2)), int(match.group(3))) == (q, w)


def test_hit_all_names_policies_per_charge() -> None:
    limiter = RateLimiter()
    result = limiter.hit_all(
        [
            Charge("ip:1", parse_limits(["100/minute"]), scope="global", name="global"),
            Charge("ip:1", parse_limits(["5/minute;50/hour"]), scope="POST /login"),
        ]
    )
    assert [s.name for s in result.limits] == ["global", "POST /login-5-per-60s", "POST /login-50-per-3600s"]
    assert result.remaining == 4
    assert limiter.hit_all([]).allowed


# -- the RateLimit "t" parameter of the sliding-window counter ------------------------------------------------
# draft-ietf-httpapi-ratelimit-headers-10: "t" is the number of seconds until additional quota is made
# available: the next whole unit (with sliding windows that can come before the window ends), not the time until
# every count has decayed, nor the window's end when no unit comes back then.


def test_sliding_window_t_is_the_next_unit_not_the_whole_quota() -> None:
    clock = FrozenClock(ALIGNED)
    rl = _limiter(clock, "sliding-window-counter")
    rl.hit("k", "10/minute", cost=10)
    clock.advance(60 + 15)  # next window, 25 % in: the previous 10 weigh 7.5, 2 left
    peek = rl.test("k", "10/minute")
    assert (peek.remaining, peek.reset_after) == (2, 3)  # 3 left when they weigh 7, at 30 %; all 10 in 45 s
    assert peek.headers()[1] == ("RateLimit", '"default";r=2;t=3')
    fresh = _limiter(FrozenClock(ALIGNED), "sliding-window-counter").test("k", "1000/hour")
    assert (fresh.remaining, fresh.reset_after) == (1000, 0)


def test_sliding_window_t_can_pass_the_windows_end_when_no_unit_comes_back_there() -> None:
    hour = 3600.0
    clock = FrozenClock(1_699_999_200.0 + 2582)  # 2582 s into an hour window (hour-aligned start)
    rl = _limiter(clock, "sliding-window-counter")
    result = rl.hit("k", "1000/hour")
    # 999 left; at the window's end that hit still weighs 1 and decays through the next window: the 1000th
    # unit is back only when it has decayed fully (before the fix: t=1018, the window's end, a promise broken)
    assert result.remaining == 999
    assert result.reset_after == pytest.approx(2 * hour - 2582, abs=0.002)
    clock.advance(hour - 2582)
    assert rl.test("k", "1000/hour").remaining == 999


@settings(max_examples=60, deadline=None)
@given(
    amount=st.integers(1, 50),
    hits_before=st.integers(0, 60),
    hits_now=st.integers(0, 60),
    offset=st.integers(0, 59_999),
)
def test_sliding_window_reset_is_the_next_unit(amount: int, hits_before: int, hits_now: int, offset: int) -> None:
    clock = FrozenClock(ALIGNED)
    rl = _limiter(clock, "sliding-window-counter")
    for _ in range(hits_before):
        rl.hit("k", f"{amount}/minute")
    clock.advance(60 + offset / 1000)  # into the next window
    for _ in range(hits_now):
        rl.hit("k", f"{amount}/minute")
    now = rl.test("k", f"{amount}/minute")
    if now.remaining == amount:
        assert now.reset_after == 0
        return
    assert 0 < now.reset_after <= 120
    # whether the previous window's decay frees the unit within this window or this window's own count must
    # decay in the next one: exactly then
    clock.advance(now.reset_after - 0.002)
    assert rl.test("k", f"{amount}/minute").remaining == now.remaining
    clock.advance(0.002)
    assert rl.test("k", f"{amount}/minute").remaining >= now.remaining + 1


@pytest.mark.parametrize("limits", [("1000/hour",), ("1000/hour", "50/minute")])
def test_sliding_window_t_after_one_hit_is_when_it_has_decayed_on_every_store(
    store: Store, limits: tuple[str, ...]
) -> None:
    # memory (Python twin) and Redis (Lua) alike: one hit, so the next unit needs it to decay fully, which
    # takes the rest of this window and the whole next one
    limiter = RateLimiter(store, strategy="sliding-window-counter")
    fresh = limiter.test("t-client", *limits)
    assert all(state.reset_after == 0 for state in fresh.limits)
    result = limiter.hit("t-client", *limits)
    for state in result.limits:
        assert state.window < state.reset_after <= 2 * state.window


# -- reset takes its key literally -------------------------------------------------------------------------------

RESET_KEY = st.text(alphabet=st.sampled_from("ae\\[]*?^-:{}"), min_size=1, max_size=6)


def _counts(limiter: RateLimiter, keys: list[str]) -> list[tuple[int, int]]:
    """Per key: what is left of its unscoped limit and of its scoped one."""
    return [(limiter.test(k, "10/minute").remaining, limiter.test(k, "20/hour", scope="route").remaining) for k in keys]


@pytest.mark.redis
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    keys=st.lists(RESET_KEY, min_size=2, max_size=5, unique=True),
    victim=st.integers(0, 4),
    key_prefix=st.sampled_from(["", "api", "a*[", "\\"]),
)
@example(keys=["login:alice", "login:alic\\e"], victim=1, key_prefix="")
@example(keys=["a", "*"], victim=1, key_prefix="")
@example(keys=["]", "[]]"], victim=1, key_prefix="")
def test_reset_forgets_exactly_its_own_key_on_every_store(
    redis_store: RedisStore, keys: list[str], victim: int, key_prefix: str
) -> None:
    victim %= len(keys)
    limiters = [
        RateLimiter(MemoryStore(prefix=redis_store.prefix), key_prefix=key_prefix),
        RateLimiter(redis_store, key_prefix=key_prefix),
    ]
    seen = []
    try:
        for limiter in limiters:
            for i, k in enumerate(keys):
                for _ in range(i + 1):
                    limiter.hit(k, "10/minute")
                limiter.hit(k, "20/hour", scope="route")
            before = _counts(limiter, keys)
            forgotten = limiter.reset(keys[victim])
            after = _counts(limiter, keys)
            expected = [(10, 20) if i == victim else counts for i, counts in enumerate(before)]
            assert after == expected
            seen.append((forgotten, after))
        assert seen[0] == seen[1]  # the memory store and Redis agree
        assert seen[0][0] == 2  # the key's two counters, and no other key's
    finally:
        for k in keys:
            limiters[1].reset(k)


# -- the RateLimit "t" of every strategy: until more quota is available ------------------------------------------
# draft-ietf-httpapi-ratelimit-headers: "t" is the time until additional quota is made available; here, until a
# request of remaining + 1 would pass (nothing spent meanwhile). 0 when the whole quota is available.


def _t(result: RateLimitResult) -> str:
    return dict(result.headers())["RateLimit"].rsplit(";t=", 1)[1]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_an_unused_key_has_no_time_to_wait_on_every_store(store: Store, strategy: str) -> None:
    limiter = RateLimiter(store, strategy=strategy)
    fresh = limiter.test("unused", "3/minute")
    assert (fresh.remaining, fresh.reset_after, _t(fresh)) == (3, 0, "0")
    used = limiter.hit("unused", "3/minute")
    assert used.remaining == 2
    assert 0 < used.reset_after <= 2 * 60  # the sliding counter: until that hit has decayed, in the next window


def test_fixed_window_t_is_when_the_window_ends() -> None:
    clock = FrozenClock(ALIGNED)
    rl = _limiter(clock, "fixed-window")
    assert rl.test("k", "3/minute").reset_after == 0  # before the fix: 60 for a key never used
    rl.hit("k", "3/minute")
    clock.advance(20)
    peek = rl.test("k", "3/minute")
    assert (peek.remaining, peek.reset_after) == (2, pytest.approx(40, abs=0.0011))


def test_moving_window_t_is_when_the_oldest_hit_leaves() -> None:
    clock = FrozenClock(ALIGNED)
    rl = _limiter(clock, "moving-window")
    for _ in range(3):
        rl.hit("k", "3/minute")
        clock.advance(10)
    clock.advance(-5)  # 25 s after the first hit
    peek = rl.test("k", "3/minute")
    # before the fix: 55 s, when the newest hit leaves (the whole log is gone)
    assert (peek.remaining, peek.reset_after, peek.retry_after) == (0, 35, 35)
    assert _t(peek) == "35"
    clock.advance(35)
    assert rl.test("k", "3/minute").remaining == 1


def test_gcra_t_is_when_one_more_unit_drips_back() -> None:
    clock = FrozenClock(ALIGNED)
    rl = _limiter(clock, "gcra")
    rl.hit("k", "3/minute", cost=2)  # one unit per 20 s: the bucket is full again in 40 s
    peek = rl.test("k", "3/minute")
    assert (peek.remaining, peek.reset_after) == (1, 20)  # before the fix: 40
    clock.advance(20)
    assert rl.test("k", "3/minute").remaining == 2


def test_sliding_window_t_waits_for_this_windows_count_to_decay_when_it_must() -> None:
    clock = FrozenClock(ALIGNED)
    rl = _limiter(clock, "sliding-window-counter")
    rl.hit("k", "10/minute", cost=10)
    clock.advance(30)
    peek = rl.test("k", "10/minute")
    # the window ends in 30 s, but then its 10 weigh fully; one unit is back 6 s later (10 * (1 - 6/60) = 9)
    assert (peek.remaining, peek.reset_after) == (0, 36)  # before the fix: 30
    clock.advance(36 - 0.001)
    assert not rl.test("k", "10/minute").allowed
    clock.advance(0.001)
    assert rl.test("k", "10/minute").allowed


SPECS = {"3/minute": 3, "5/10 seconds": 5, "7 per 45 seconds": 7}


@pytest.mark.parametrize("strategy", STRATEGIES)
@settings(max_examples=80, deadline=None)
@given(
    spec=st.sampled_from(sorted(SPECS)),
    steps=st.lists(st.tuples(st.integers(0, 20_000), st.integers(1, 4)), min_size=0, max_size=25),
    last_gap=st.integers(0, 20_000),
)
def test_t_is_exactly_when_one_more_request_would_pass(
    strategy: str, spec: str, steps: list[tuple[int, int]], last_gap: int
) -> None:
    """Waiting the reported t admits a request of remaining + 1; waiting one millisecond less does not."""
    ms = int(ALIGNED * 1000)
    clock = FrozenClock(ALIGNED)
    rl = _limiter(clock, strategy)
    for gap, cost in steps:
        ms += gap  # whole milliseconds on the injected clock
        clock.now = ms / 1000
        rl.hit("k", spec, cost=cost)
    ms += last_gap
    clock.now = ms / 1000
    state = rl.test("k", spec)
    (limit,) = state.limits
    t_ms = round(limit.reset_after * 1000)
    assert _t(state) == str(-(-t_ms // 1000))
    more = limit.remaining + 1
    if limit.remaining == SPECS[spec]:
        assert t_ms == 0
        return
    if t_ms > 0:  # earlier first: a peek may drop what has expired
        clock.now = (ms + t_ms - 1) / 1000
        assert not rl.test("k", spec, cost=more).allowed
    clock.now = (ms + t_ms) / 1000
    assert rl.test("k", spec, cost=more).allowed


_REDIS_TIME = "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
_INJECTED = "local now = tonumber(ARGV[#ARGV])\n"  # the test's clock, in microseconds, as the last argument
CLOCKED = ("sliding-window-counter", "moving-window", "gcra")  # fixed-window is timed by PTTL, not TIME


@pytest.mark.redis
@pytest.mark.parametrize("strategy", CLOCKED)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    limits=st.sampled_from([((3, 60_000),), ((5, 10_000),), ((7, 45_000), (4, 10_000))]),
    steps=st.lists(st.tuples(st.integers(0, 20_000), st.integers(0, 4), st.booleans()), min_size=1, max_size=20),
)
def test_lua_and_memory_report_the_same_numbers_on_one_clock(
    redis_store: RedisStore, strategy: str, limits: tuple[tuple[int, int], ...], steps: list[tuple[int, int, bool]]
) -> None:
    """Every reply number (t included) of the Lua script equals its Python twin's, on the same injected clock."""
    from backend_guard.ratelimit._scripts import SCRIPTS

    script = SCRIPTS[strategy]
    assert _REDIS_TIME in script.source
    lua = script.source.replace(_REDIS_TIME, _INJECTED)
    client = redis.Redis.from_url(REDIS_URL)
    keys = [redis_store.key("eq", strategy, i) for i in range(len(limits))]
    ms = int(ALIGNED * 1000)
    clock = FrozenClock(ALIGNED)
    memory = MemoryStore(clock=clock)
    try:
        for gap, cost, spend in steps:
            ms += gap
            clock.now = ms / 1000
            args = [1 if spend else 0, *[n for amount, window in limits for n in (amount, window, cost)]]
            ours = memory.run(script, keys, args)
            theirs = client.eval(lua, len(keys), *keys, *args, ms * 1000)
            assert [int(x) for x in theirs] == ours
    finally:
        client.delete(*keys)
        client.close()


@pytest.mark.parametrize("strategy", ["sliding-window-counter", "fixed-window", "moving-window", "gcra"])
def test_a_rate_of_zero_or_a_window_of_zero_is_refused_when_given_not_a_crash_later(strategy: str) -> None:
    # A Rate or a limits item built by hand skipped the string parser's check: GCRA and the sliding window then
    # divided by zero on the first hit (a 500), and a negative window never limited anything.
    limiter = RateLimiter(strategy=strategy)
    for bad in (
        lambda: Rate(0, 60.0, "0/minute"),
        lambda: Rate(3, 0.0, "3/0s"),
        lambda: Rate(3, -1.0, "3/-1s"),
        lambda: limiter.hit("k", limits.RateLimitItemPerMinute(0)),
        lambda: limiter.hit("k", Rate(1, 60.0, "ok"), limits.RateLimitItemPerSecond(0)),
    ):
        with pytest.raises(ConfigurationError, match="must be positive"):
            bad()
    assert limiter.hit("k", Rate(1, 60.0, "1/minute")).allowed
