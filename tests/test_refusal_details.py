"""A 429's ``detail`` says what happened: which limit refused and when to retry, or that sign-ins are locked for a
while; never the key, the client's address or the account name, and generic lockout mode stays a wrong password."""

from __future__ import annotations

import json
import math
import re

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend_guard._durations import wait_text, window_text
from backend_guard.errors import problem_response
from backend_guard.exceptions import AccountLocked, RateLimited
from backend_guard.lockout import InvalidCredentials, Lockout
from backend_guard.ratelimit import STRATEGIES, RateLimiter, RateLimitRule
from backend_guard.storage import MemoryStore, Store

from .conftest import FrozenClock
from .servers import run_asgi, run_wsgi

IP = "203.0.113.7"
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def _seconds_of(text: str) -> int:
    """The seconds that a ``wait_text`` answer says ("1 hour 5 minutes" -> 3900)."""
    parts = re.fullmatch(r"(\d+) (second|minute|hour|day)s?(?: (\d+) (second|minute|hour|day)s?)?", text)
    assert parts is not None, text
    total = int(parts[1]) * _UNIT_SECONDS[parts[2]]
    if parts[3]:
        total += int(parts[3]) * _UNIT_SECONDS[parts[4]]
    return total


# -- durations in words ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "1 second"),
        (0.2, "1 second"),
        (1, "1 second"),
        (36.2, "37 seconds"),
        (60, "1 minute"),
        (61, "1 minute 1 second"),
        (720, "12 minutes"),
        (3599.5, "1 hour"),
        (3601, "1 hour 1 minute"),
        (86399, "1 day"),
        (90000, "1 day 1 hour"),
    ],
)
def test_a_wait_is_said_in_words_rounded_up(seconds: float, text: str) -> None:
    assert wait_text(seconds) == text


@given(st.floats(min_value=0, max_value=10 * 365 * 86400, allow_nan=False))
def test_a_wait_in_words_is_never_shorter_than_retry_after_and_at_most_one_small_unit_longer(seconds: float) -> None:
    said = _seconds_of(wait_text(seconds))
    header = max(1, math.ceil(seconds - 1e-9))  # Retry-After's whole seconds (at least one in words)
    assert said >= header
    slack = 1 if header < 3600 else 60 if header < 86400 else 3600
    assert said - header < slack


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(1, "second"), (10, "10 seconds"), (60, "minute"), (90, "90 seconds"), (7200, "2 hours"), (86400, "day")],
)
def test_a_window_is_said_in_its_largest_whole_unit(seconds: float, text: str) -> None:
    assert window_text(seconds) == text


# -- the rate limiter's refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_refusal_names_the_limit_and_when_to_retry_for_every_strategy(strategy: str) -> None:
    limiter = RateLimiter(MemoryStore(clock=FrozenClock()), strategy=strategy)
    for _ in range(3):
        assert limiter.hit(f"ip:{IP}", "3/minute", scope="POST /login").allowed
    refused = limiter.hit(f"ip:{IP}", "3/minute", scope="POST /login")
    assert not refused.allowed
    error = refused.error()
    wait = wait_text(refused.retry_after)
    assert error.detail == f'Too many requests: the limit is 3 per minute ("POST /login"); retry in {wait}.'
    assert _seconds_of(wait) == int(error.headers["Retry-After"])
    assert IP not in error.detail


def test_of_several_limits_the_detail_names_the_one_that_refused() -> None:
    limiter = RateLimiter(MemoryStore(clock=FrozenClock()))
    for _ in range(2):
        assert limiter.hit("client-key", "100/hour", "2/10 seconds").allowed
    refused = limiter.hit("client-key", "100/hour", "2/10 seconds")
    detail = refused.error().detail
    assert detail.startswith('Too many requests: the limit is 2 per 10 seconds ("default-2-per-10s"); retry in ')
    assert "client-key" not in detail
    assert "100" not in detail


def test_the_limit_is_named_by_its_policy_name_never_by_its_key_or_store_key() -> None:
    store = MemoryStore(clock=FrozenClock())
    limiter = RateLimiter(store, strategy="fixed-window", key_prefix="secret-prefix")
    limiter.hit("user:alice", "1/day", scope="exports")
    detail = limiter.hit("user:alice", "1/day", scope="exports").error().detail
    assert detail.startswith('Too many requests: the limit is 1 per day ("exports"); retry in 1 day')
    assert "alice" not in detail
    assert "secret-prefix" not in detail


def test_a_refusal_when_the_store_failed_closed_only_says_when_to_retry() -> None:
    class Down(MemoryStore):
        def run(self, *args: object, **kwargs: object) -> object:
            from backend_guard.exceptions import StorageError

            raise StorageError("down")

    limiter = RateLimiter(Down(), on_storage_error="deny")
    assert limiter.hit("k", "5/minute").error().detail == "Too many requests; retry in 1 second."


def test_a_rate_limited_error_raised_by_hand_says_when_to_retry() -> None:
    assert RateLimited(retry_after=12.5).detail == "Too many requests; retry in 13 seconds."
    assert RateLimited(retry_after=5, detail="Slow down.").detail == "Slow down."


# -- lockout -----------------------------------------------------------------------------------------------------


def test_a_locked_account_says_when_to_try_again_and_nothing_of_the_account() -> None:
    lock = Lockout(store=MemoryStore(clock=FrozenClock()), max_failures=1, lockout_duration=720)
    with pytest.raises(InvalidCredentials), lock.attempt("alice@example.com", IP):
        raise lock.invalid_credentials()
    with pytest.raises(AccountLocked) as info, lock.attempt("alice@example.com", IP):
        pytest.fail("a locked attempt must not reach the verifier")
    _, headers, body = problem_response(info.value)
    doc = json.loads(body)
    assert doc["detail"] == "Too many failed sign-in attempts; try again in 12 minutes."
    assert dict(headers)["retry-after"] == "720"
    assert "alice" not in body.decode()
    assert IP not in body.decode()


def test_generic_mode_still_answers_a_lock_exactly_as_a_wrong_password() -> None:
    lock = Lockout(store=MemoryStore(clock=FrozenClock()), max_failures=1, generic=True)
    with pytest.raises(InvalidCredentials) as wrong, lock.attempt("alice", IP):
        raise lock.invalid_credentials()
    with pytest.raises(InvalidCredentials) as locked, lock.attempt("alice", IP):
        pytest.fail("a locked attempt must not reach the verifier")
    assert problem_response(wrong.value) == problem_response(locked.value)
    assert "try again" not in json.loads(problem_response(locked.value)[2])["detail"]


# -- through real servers ----------------------------------------------------------------------------------------


def _check_429(response: httpx.Response, limit: str, policy: str, *secrets: str) -> None:
    assert response.status_code == 429
    doc = response.json()
    assert doc["code"] == "rate-limited"
    assert doc["detail"].startswith(f'Too many requests: the limit is {limit} ("{policy}"); retry in ')
    said = _seconds_of(doc["detail"].rsplit("retry in ", 1)[1].rstrip("."))
    assert said == int(response.headers["retry-after"])
    for secret in ("127.0.0.1", *secrets):
        assert secret not in response.text


def test_an_asgi_middleware_429_names_the_route_limit_and_the_retry_time_without_the_client() -> None:
    from backend_guard.asgi import RateLimitMiddleware

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]

    rules = [RateLimitRule("/users/{id}", "2/minute", key="header:x-api-key")]
    guarded = RateLimitMiddleware(app, limiter=RateLimiter(key_prefix="store-prefix"), rules=rules)
    with run_asgi(guarded) as url, httpx.Client(base_url=url, headers={"x-api-key": "key-of-carol"}) as client:
        assert [client.get(f"/users/{i}").status_code for i in range(2)] == [200, 200]
        _check_429(client.get("/users/3"), "2 per minute", "* /users/{id}", "key-of-carol", "store-prefix")


def test_a_wsgi_decorated_route_429_names_the_route_limit_and_the_retry_time() -> None:
    from flask import Flask

    limiter = RateLimiter()
    app = Flask(__name__)

    @app.post("/login/<int:team>")
    @limiter.limit("1 per 10 seconds")
    def login(team: int) -> str:
        return "ok"

    with run_wsgi(app) as url, httpx.Client(base_url=url) as client:
        assert client.post("/login/1").status_code == 200
        refused = client.post("/login/2")
        _check_429(refused, "1 per 10 seconds", "/login/<int:team>", "test_refusal_details")


@pytest.mark.parametrize("generic", [False, True])
def test_a_locked_login_through_a_server_says_when_to_try_again_and_generic_mode_is_unchanged(generic: bool) -> None:
    from flask import Flask, g, request

    from backend_guard.flask import install_error_handlers

    lock = Lockout(max_failures=1, lockout_duration=300, generic=generic)
    app = Flask(__name__)

    @app.post("/login")
    @lock.protect(field="email")
    def login() -> tuple[str, int]:
        if request.get_json()["password"] == "right":
            g.login_attempt.succeeded()
            return "ok", 200
        raise lock.invalid_credentials()

    install_error_handlers(app)
    with run_wsgi(app) as url, httpx.Client(base_url=url) as client:
        wrong = client.post("/login", json={"email": "dave@example.com", "password": "x"})
        locked = client.post("/login", json={"email": "dave@example.com", "password": "right"})
    assert wrong.status_code == 401
    if generic:
        assert (locked.status_code, locked.content) == (wrong.status_code, wrong.content)
        return
    assert locked.status_code == 429
    assert locked.json()["detail"] == "Too many failed sign-in attempts; try again in 5 minutes."
    assert "dave" not in locked.text
    assert "127.0.0.1" not in locked.text


def test_the_detail_is_the_same_over_memory_and_redis(store: Store) -> None:
    limiter = RateLimiter(store)
    limiter.hit("k", "1/hour", scope="reports")
    detail = limiter.hit("k", "1/hour", scope="reports").error().detail
    assert re.fullmatch(r'Too many requests: the limit is 1 per hour \("reports"\); retry in .+\.', detail)
