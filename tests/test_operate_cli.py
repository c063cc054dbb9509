"""The operator verbs on the command line (a subprocess on the real Redis), and end to end with a real app."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import backend_guard as bg
from backend_guard._stack import StackParts
from backend_guard.config import GuardSettings

from .servers import run_asgi

pytestmark = pytest.mark.redis

SRC = str(Path(__file__).resolve().parent.parent / "src")
SECRET = "operate-cli-secret-of-32-bytes!!"


@pytest.fixture
def url(redis_store: object, redis_url: str, prefix: str) -> str:
    """A store URL under this test's prefix (the redis_store fixture deletes its keys afterwards)."""
    return f"{redis_url}?prefix={prefix}"


def app_settings(url: str) -> GuardSettings:
    return GuardSettings(
        store=url,
        lockout={"max_failures": 3, "secret": SECRET},
        rate_limit={"default_limits": "100/minute"},
        tokens={"key": SECRET, "algorithm": "HS256"},
    )


def cli(*argv: str, env: dict[str, str] | None = None, secret: bool = True) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BACKEND_GUARD_")}
    environ.update({"PYTHONPATH": SRC, **({"BACKEND_GUARD_LOCKOUT__SECRET": SECRET} if secret else {}), **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "backend_guard.cli", *argv],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
    )


def test_locks_list_and_unlock_on_the_command_line(url: str) -> None:
    parts = StackParts.build(app_settings(url))
    lock = parts.lockout()
    for _ in range(3):
        lock.record_failure("alice", "203.0.113.7")
    listed = cli("locks", "list", "--json", "--store", url)
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)["items"]
    assert row["account_id"] == lock.account_id("alice")
    assert row["scope"] == "pair"
    assert "alice" not in listed.stdout  # digested unless the operator names the account
    named = cli("locks", "list", "--account", "alice", "--store", url)
    assert named.stdout.startswith("alice  scope=pair")
    done = cli("locks", "unlock", "--account", "alice", "--by", "jane", "--store", url)
    assert done.returncode == 0, done.stderr
    assert f"operator jane locks.unlock account:{lock.account_id('alice')}" in done.stderr
    assert not lock.check("alice", "203.0.113.7").locked
    again = cli("locks", "unlock", "--account", "alice", "--store", url)
    assert again.returncode == 1
    assert again.stderr.strip().splitlines()[-1].startswith("backend-guard locks unlock: nothing to unlock")


def test_limits_show_and_reset_on_the_command_line(url: str) -> None:
    parts = StackParts.build(app_settings(url))
    parts.limiter.hit("ip:203.0.113.7", "100/minute", scope="global")
    env = {"BACKEND_GUARD_RATE_LIMIT__DEFAULT_LIMITS": "100/minute"}
    shown = cli("limits", "show", "--address", "203.0.113.7", "--json", "--store", url, env=env)
    assert shown.returncode == 0, shown.stderr
    (row,) = json.loads(shown.stdout)["items"]
    assert (row["rule"], row["remaining"], row["limit"]) == ("global", 99, 100)
    reset = cli("limits", "reset", "--address", "203.0.113.7", "--by", "jane", "--store", url, env=env)
    assert reset.returncode == 0, reset.stderr
    assert reset.stdout.strip() == "reset: 1 removed"


@pytest.mark.parametrize("address", ["203.0.113.8O", "not-an-ip", "203.0.113"])
def test_limits_show_refuses_an_address_that_is_no_address_instead_of_a_fresh_bucket(url: str, address: str) -> None:
    # A typo (a letter O for a zero) read as an untouched bucket: "ok", exit 0, for a client over its limit.
    env = {"BACKEND_GUARD_RATE_LIMIT__DEFAULT_LIMITS": "100/minute"}
    shown = cli("limits", "show", "--address", address, "--store", url, env=env)
    assert (shown.returncode, shown.stdout) == (2, ""), shown.stdout
    assert "is not an IP address" in shown.stderr
    assert "Traceback" not in shown.stderr


def test_limits_show_without_the_apps_rules_says_so_instead_of_none(url: str) -> None:
    """Run without the app's BACKEND_GUARD_RATE_LIMIT__* (the runbook's first try), `limits show` printed "(none)"
    with exit status 0 for a client over its limit: it now says which settings it needs (status 2)."""
    parts = StackParts.build(app_settings(url))
    parts.limiter.hit("ip:203.0.113.7", "100/minute", scope="global")
    shown = cli("limits", "show", "--address", "203.0.113.7", "--store", url)
    assert (shown.returncode, shown.stdout) == (2, ""), shown.stdout
    assert "BACKEND_GUARD_RATE_LIMIT__DEFAULT_LIMITS" in shown.stderr
    assert "Traceback" not in shown.stderr
    reset = cli("limits", "reset", "--address", "203.0.113.7", "--by", "jane", "--store", url)
    assert (reset.returncode, reset.stdout.strip()) == (0, "reset: 1 removed"), reset.stderr


def test_tokens_list_and_revoke_on_the_command_line(url: str) -> None:
    tm = StackParts.build(app_settings(url)).tokens()
    pair = tm.issue("user-42")
    tm.issue("user-42")
    listed = cli("tokens", "list", "user-42", "--limit", "1", "--json", "--store", url)
    page = json.loads(listed.stdout)
    assert len(page["items"]) == 1
    assert page["cursor"] == page["items"][0]["family"]
    one = cli("tokens", "revoke", "user-42", f"--family={page['items'][0]['family']}", "--store", url)
    assert one.stdout.strip() == "revoke: 1 removed"
    rest = cli("tokens", "revoke", "user-42", "--by", "jane", "--json", "--store", url)
    assert json.loads(rest.stdout) == {"done": "revoke", "count": 1}
    with pytest.raises(bg.InvalidToken, match="session of this refresh token has ended"):
        tm.rotate(pair.refresh_token)
    none = cli("tokens", "revoke", "user-42", "--store", url)
    assert none.returncode == 1


def test_a_store_that_is_down_is_one_line_and_status_1() -> None:
    proc = cli("locks", "list", "--store", "redis://127.0.0.1:1/0?connect_timeout=0.2")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("backend-guard locks list: the store is unavailable")


def test_bad_input_is_a_usage_error_with_status_2() -> None:
    for argv in (["locks", "list", "--limit", "0"], ["locks", "frobnicate"], ["tokens", "list"]):
        proc = cli(*argv, "--store", "memory://")
        assert proc.returncode == 2, argv
        assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "group", [("locks", "list"), ("limits", "show", "--address", "203.0.113.7"), ("tokens", "list", "user-42")]
)
def test_a_command_with_no_shared_store_says_so_instead_of_an_empty_answer(group: tuple[str, ...]) -> None:
    # Without BACKEND_GUARD_STORE or --store, the command read a fresh memory store of its own: "(none)", exit 0,
    # while the app had accounts locked (operators' trial).
    env = {"BACKEND_GUARD_RATE_LIMIT__DEFAULT_LIMITS": "100/minute"}
    proc = cli(*group, env=env)
    assert (proc.returncode, proc.stdout) == (2, ""), proc.stdout
    assert "no shared store to read" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_sections_own_memory_store_is_refused_even_with_store(url: str) -> None:
    # The lockout's own store wins over --store, as in the app: reading it answered "(none)" (review of fab9b23).
    proc = cli("locks", "list", "--store", url, env={"BACKEND_GUARD_LOCKOUT__STORE": "memory://"})
    assert (proc.returncode, proc.stdout) == (2, ""), proc.stdout
    assert "no shared store to read" in proc.stderr
    assert "flask guard" not in proc.stderr  # a process of its own too: no use against a memory store


def test_naming_an_account_without_the_lockout_secret_says_why_it_may_not_be_found(url: str) -> None:
    proc = cli("locks", "list", "--account", "alice", "--store", url, secret=False)
    assert proc.returncode == 0, proc.stderr
    assert "no lockout secret" in proc.stderr
    with_secret = cli("locks", "list", "--account", "alice", "--store", url)
    assert "no lockout secret" not in with_secret.stderr


def test_a_malformed_store_url_is_one_line_and_status_2_without_its_password() -> None:
    for url in ("redis://:s3cret@127.0.0.1:notaport/0", "redis://:s3cret@[::1/0", "redis+cluster://:s3cret@h:x"):
        proc = cli("locks", "list", "--store", url)
        assert proc.returncode == 2, (url, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert proc.stderr.count("\n") == 1, proc.stderr
        assert "s3cret" not in proc.stderr


# -- end to end: a real app on Redis locks an account, the CLI lists and unlocks it, the app lets the user in ------


@pytest.fixture
def app_url(url: str) -> Iterator[str]:
    lock = StackParts.build(app_settings(url)).lockout()

    @lock.protect(field="username")
    async def login(request: Request) -> JSONResponse:
        form = await request.json()
        if form["password"] != "right":
            return JSONResponse({"ok": False}, status_code=401)
        request.state.login_attempt.succeeded()
        return JSONResponse({"ok": True})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await lock.store.aclose()

    app = Starlette(routes=[Route("/login", login, methods=["POST"])], lifespan=lifespan)
    with run_asgi(app, lifespan="on") as base:  # the shutdown closes the async Redis client in the server's loop
        yield base


def test_end_to_end_a_locked_customer_is_listed_unlocked_and_let_in(url: str, app_url: str) -> None:
    with httpx.Client(base_url=app_url) as client:
        for _ in range(3):
            assert client.post("/login", json={"username": "carol", "password": "wrong"}).status_code == 401
        assert client.post("/login", json={"username": "carol", "password": "right"}).status_code == 429
        listed = cli("locks", "list", "--account", "carol", "--json", "--store", url)
        (row,) = json.loads(listed.stdout)["items"]
        assert (row["account"], row["scope"]) == ("carol", "pair")
        assert cli("locks", "unlock", "--account", "carol", "--by", "support", "--store", url).returncode == 0
        assert client.post("/login", json={"username": "carol", "password": "right"}).status_code == 200
