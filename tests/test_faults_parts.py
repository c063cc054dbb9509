"""Every stateful part under Redis faults, through a real server running Guard.

A private redis-server (tests/faults.py; the shared one on 6379 is never touched) sits behind a TCP proxy
that can stall or cut connections, and the test also stops and restarts the server itself. The app (Starlette
under uvicorn, wrapped in ``Guard``) exposes the rate limiter (allow / deny / raise), the lockout (deny /
allow), refresh rotation and one-time tokens, all on one RedisStore with a short timeout.

Claims proved here:

- during each fault every route answers as its part is configured (200 / 429 / 401 / 503), never a 500;
- rotation never leaves two live successors, even when a rotation's reply was lost;
- when Redis returns (restarted or healed) the app answers normally again without a restart.

How long each answer took is recorded (``FaultRun.timings``; ``benchmarks/bench_faults.py`` writes them to
benchmarks/results/faults.json) but never asserted: wall-clock speed is the benchmarks' business.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import backend_guard as bg
from backend_guard.asgi import Guard
from backend_guard.fastapi import install_error_handlers
from backend_guard.storage import RedisStore

from .faults import FaultProxy, PrivateRedis, fault_proxy, private_redis
from .servers import run_asgi

pytestmark = [pytest.mark.redis, pytest.mark.server, pytest.mark.slow]

SECRET = b"fault-test-secret-0123456789abcdef-xyz"
SOCKET_TIMEOUT = 0.2

#: What each route answers while the store is unreachable: its part's configured degraded answer.
EXPECT_DOWN: dict[str, set[int]] = {
    "rl_allow": {200},  # fail open
    "rl_deny": {503},  # fail closed
    "rl_raise": {503},  # StorageError rendered by the error envelope
    "mw_deny": {503},  # Guard's RateLimitMiddleware rule, on_storage_error="deny"
    "login_deny": {503},  # lockout fails closed: no password check without the counter
    "login_allow": {401},  # lockout fails open: the (wrong) password is checked, unlimited
    "issue": {503},
    "rotate": {503},
    "consume": {503},
}
#: What each route answers on a healthy store.
EXPECT_UP: dict[str, set[int]] = {
    "rl_allow": {200},
    "rl_deny": {200},
    "rl_raise": {200},
    "mw_deny": {200},
    "login_deny": {401},
    "login_allow": {401},
    "issue": {200},
    "rotate": {200},
    "consume": {200},
}


@dataclass
class Parts:
    """The parts on the store under test, kept so the test can inspect them."""

    store: RedisStore
    tokens: bg.TokenManager
    onetime: bg.OneTimeTokens


def build_app(store: RedisStore) -> tuple[Guard, Parts]:
    """Starlette routes for every stateful part on ``store``, wrapped in Guard."""
    limiters = {
        mode: bg.RateLimiter(store=store, on_storage_error=mode, key_prefix=mode) for mode in ("allow", "deny", "raise")
    }
    lock_deny = bg.Lockout(store=store, on_storage_error="deny", secret=SECRET, namespace="ld", max_failures=50)
    lock_allow = bg.Lockout(store=store, on_storage_error="allow", secret=SECRET, namespace="la", max_failures=50)
    tokens = bg.TokenManager(SECRET, "HS256", issuer="https://faults.test", audience="api", store=store)
    onetime = bg.OneTimeTokens(SECRET, purpose="reset", store=store)

    def rl_route(mode: str) -> Any:
        @limiters[mode].limit("100000/minute")
        async def endpoint(request: Request) -> JSONResponse:
            return JSONResponse({"ok": True})

        return endpoint

    def login_route(lock: bg.Lockout) -> Any:
        @lock.protect(field="username")
        async def endpoint(request: Request) -> JSONResponse:
            body = await request.json()
            if body.get("password") == "right":
                return JSONResponse({"ok": True})
            raise lock.invalid_credentials()

        return endpoint

    async def plain(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def issue(request: Request) -> JSONResponse:
        return JSONResponse((await tokens.aissue("fault-user")).as_dict())

    async def rotate(request: Request) -> JSONResponse:
        return JSONResponse((await tokens.arotate((await request.body()).decode("latin-1"))).as_dict())

    async def create_link(request: Request) -> JSONResponse:
        return JSONResponse({"token": onetime.create("fault-user")})

    async def consume(request: Request) -> JSONResponse:
        payload = await onetime.aconsume((await request.body()).decode("latin-1"))
        return JSONResponse({"subject": payload.subject})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await store.aclose()  # the async client belongs to the server's event loop: close it there

    inner = Starlette(
        lifespan=lifespan,
        routes=[
            Route("/rl/allow", rl_route("allow")),
            Route("/rl/deny", rl_route("deny")),
            Route("/rl/raise", rl_route("raise")),
            Route("/mw", plain),
            Route("/health", plain),
            Route("/login/deny", login_route(lock_deny), methods=["POST"]),
            Route("/login/allow", login_route(lock_allow), methods=["POST"]),
            Route("/issue", issue, methods=["POST"]),
            Route("/rotate", rotate, methods=["POST"]),
            Route("/link", create_link, methods=["POST"]),
            Route("/consume", consume, methods=["POST"]),
        ],
    )
    install_error_handlers(inner, middleware=False)
    settings = bg.GuardSettings(
        rate_limit={"rules": [{"path": "/mw", "limits": "100000/minute"}], "on_storage_error": "deny"}
    )
    return Guard(inner, settings, store=store), Parts(store, tokens, onetime)


@dataclass
class FaultRun:
    """A running app on a private Redis behind a proxy, with helpers to probe every part and time it."""

    server: PrivateRedis
    proxy: FaultProxy
    parts: Parts
    url: str
    client: httpx.Client
    timings: list[dict[str, Any]] = field(default_factory=list)
    refresh: str = ""
    received: list[str] = field(default_factory=list)  # every refresh token the app ever handed out

    def _request(self, name: str) -> httpx.Response:
        c = self.client
        if name.startswith("rl_"):
            return c.get(f"{self.url}/rl/{name[3:]}")
        if name == "mw_deny":
            return c.get(f"{self.url}/mw")
        if name.startswith("login_"):
            return c.post(f"{self.url}/login/{name[6:]}", json={"username": "alice", "password": "wrong"})
        if name == "issue":
            return c.post(f"{self.url}/issue")
        if name == "rotate":
            return c.post(f"{self.url}/rotate", content=self.refresh)
        if name == "consume":
            link = c.post(f"{self.url}/link").json()["token"]
            return c.post(f"{self.url}/consume", content=link)
        raise AssertionError(name)

    def probe(self, name: str, fault: str) -> httpx.Response:
        """One request to the route ``name``; its status and duration are recorded under ``fault``."""
        start = time.perf_counter()
        response = self._request(name)
        elapsed = time.perf_counter() - start
        self.timings.append({"fault": fault, "route": name, "status": response.status_code, "seconds": elapsed})
        assert response.status_code != 500, (fault, name, response.text)
        if response.status_code == 200 and name in ("issue", "rotate"):
            token = response.json()["refresh_token"]
            self.received.append(token)
            self.refresh = token
        return response

    def expect(self, fault: str, table: dict[str, set[int]]) -> None:
        """Probe every route once; each must answer as ``table`` says."""
        got = {name: self.probe(name, fault).status_code for name in table}
        wrong = {n: s for n, s in got.items() if s not in table[n]}
        assert not wrong, (fault, wrong)

    def wait_recovered(self, fault: str, seconds: float = 10.0) -> None:
        """Poll until every part answers normally again (bounded; the app is never restarted)."""
        deadline = time.monotonic() + seconds
        while True:
            ok = all(self.probe(n, fault + ":recovering").status_code in EXPECT_UP[n] for n in ("rl_raise", "issue"))
            if ok:
                break
            assert time.monotonic() < deadline, f"no recovery after {fault}"
            time.sleep(0.05)
        self.expect(fault + ":recovered", EXPECT_UP)

    def redis_client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.server.port)

    def live_successors(self) -> int:
        """The most live successors any one family has: refresh tokens ever handed out that are the current
        token of their family in Redis (a correct store keeps this at 0 or 1 per family)."""
        tm = self.parts.tokens
        client = self.redis_client()
        per_family: dict[str, int] = {}
        try:
            for token in set(self.received):
                claims = tm._decode(token, "rt+jwt", verify_exp=False)
                cur: Any = client.hget(tm._family_keys(claims["sub"], claims["sid"])[0], "cur")
                live = cur is not None and cur.decode() == _store_digest(token)
                per_family[claims["sid"]] = per_family.get(claims["sid"], 0) + int(live)
        finally:
            client.close()
        return max(per_family.values(), default=0)


def _store_digest(token: str) -> str:
    from backend_guard.tokens import _digest

    return _digest(token.encode("ascii"))


@contextmanager
def fault_run() -> Iterator[FaultRun]:
    """Private Redis, proxy, store (short timeout), app under uvicorn, and an HTTP client; all closed after."""
    with ExitStack() as stack:
        server = stack.enter_context(private_redis())
        proxy = stack.enter_context(fault_proxy(server.port))
        store = RedisStore(
            proxy.url,
            prefix="bgfault",
            socket_timeout=SOCKET_TIMEOUT,
            connect_timeout=SOCKET_TIMEOUT,
            breaker_cooldown=0.2,
        )
        stack.callback(store.close)
        app, parts = build_app(store)
        url = stack.enter_context(run_asgi(app, lifespan="on"))
        client = stack.enter_context(httpx.Client(timeout=10))
        run = FaultRun(server, proxy, parts, url, client)
        run.expect("healthy", EXPECT_UP)
        yield run


# -- scenarios (shared with benchmarks/bench_faults.py) --------------------------------------------------------


def scenario_stopped(run: FaultRun) -> None:
    """The server is stopped (connection refused), then started again on the same port (its data is gone)."""
    run.server.stop()
    run.expect("stopped", EXPECT_DOWN)
    run.expect("stopped:breaker-open", EXPECT_DOWN)  # a second round, answered by the open circuit breaker
    run.server.start()
    # The families died with the server's data: rotation now says "session ended" (401), still never a 500.
    response = run.probe("rotate", "restarted")
    assert response.status_code in (401, 503), response.text
    run.wait_recovered("restarted")


def scenario_stalled(run: FaultRun) -> None:
    """The server stops answering (the proxy holds the bytes): each call costs one timeout, then fails fast."""
    run.proxy.stall()
    run.expect("stalled", EXPECT_DOWN)
    run.expect("stalled:breaker-open", EXPECT_DOWN)
    run.proxy.heal()
    run.proxy.cut()  # the stalled connections hold half-read replies: drop them
    run.wait_recovered("healed")


def scenario_cut(run: FaultRun) -> None:
    """Every connection is closed under the app: the one transparent retry on a fresh connection hides it."""
    for _ in range(3):
        run.proxy.cut()
        run.expect("cut", EXPECT_UP)


SCENARIOS = {"stopped": scenario_stopped, "stalled": scenario_stalled, "cut": scenario_cut}


# -- tests -------------------------------------------------------------------------------------------------------


def _report(run: FaultRun) -> None:
    worst: dict[str, float] = {}
    for t in run.timings:
        worst[t["fault"]] = max(worst.get(t["fault"], 0.0), t["seconds"])
    print({k: round(v * 1000, 1) for k, v in worst.items()}, "ms (slowest answer per fault)")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_part_answers_as_configured_under_the_fault(name: str) -> None:
    with fault_run() as run:
        SCENARIOS[name](run)
        assert run.live_successors() <= 1
        _report(run)


def test_lost_rotation_reply_never_leaves_two_live_successors() -> None:
    """A rotation reaches Redis while the client times out (the reply is held by a stalled proxy, then
    delivered late). Presenting the old token again must give the same successor (grace) or reuse, never a
    second live successor."""
    with fault_run() as run:
        old = run.refresh
        run.proxy.stall()
        run.probe("rotate", "stalled-rotation")  # 503: the client gave up; the request sits in the proxy
        run.proxy.heal()  # the held request now reaches Redis and rotates the family behind the client's back
        time.sleep(SOCKET_TIMEOUT + 0.1)
        run.proxy.cut()
        deadline = time.monotonic() + 10
        while True:
            run.refresh = old
            response = run.probe("rotate", "retry-after-lost-reply")
            if response.status_code != 503:
                break
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # Within the grace window the retry gets the one successor back (200), or the reuse alarm (401).
        assert response.status_code in (200, 401), response.text
        assert run.live_successors() <= 1
        if response.status_code == 200:
            again = run.client.post(f"{run.url}/rotate", content=old)
            assert again.status_code == 401  # the grace replay is single use
            assert run.live_successors() == 0  # ... and the reuse revoked the family
