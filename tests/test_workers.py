"""Several real uvicorn worker processes sharing the real Redis: limits, lockout and rotation stay exact.

The app is tests/worker_app.py, served by ``python -m uvicorn tests.worker_app:app --workers 3`` in a
subprocess under a per-test key prefix. A bounded thread pool sends the requests concurrently; the
subprocess is always terminated, and every key under the prefix is deleted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from .conftest import _cleanup, free_port
from .login_attacks import REFUSALS, flood

pytestmark = [pytest.mark.redis, pytest.mark.server, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 3


def start_server(
    env_extra: dict[str, str], workers: int = WORKERS, app: str = "tests.worker_app:app"
) -> tuple[subprocess.Popen[bytes], str]:
    """Start uvicorn with ``workers`` processes on a free port; wait until several distinct workers answer."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), **env_extra)
    proc = subprocess.Popen(  # noqa: S603 - our own app, loopback only
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
            # Forwarding headers are left to the app: uvicorn's own proxy headers would trust loopback.
            "--no-proxy-headers",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("uvicorn exited: " + (proc.stderr.read() if proc.stderr else b"").decode()[-2000:])
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        stop_server(proc)
        raise RuntimeError("uvicorn workers did not start")
    # One answer means one worker is up; the others may still be importing on a busy machine. Wait (bounded)
    # until several distinct workers answer, so the exactness tests really span processes.
    seen: set[int] = set()
    while len(seen) < min(2, workers):
        if time.monotonic() > deadline:
            stop_server(proc)
            raise RuntimeError(f"only {len(seen)} uvicorn worker(s) answered")
        with ThreadPoolExecutor(max_workers=8) as pool:
            replies = pool.map(
                lambda _: httpx.get(url + "/health", headers={"Connection": "close"}, timeout=5), range(16)
            )
            seen.update(r.json()["pid"] for r in replies if r.status_code == 200)
    return proc, url


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the uvicorn process group (the supervisor and its workers), then reap it."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    if proc.stderr is not None:
        proc.stderr.close()


@pytest.fixture
def server(redis_url: str, prefix: str) -> Iterator[str]:
    proc, url = start_server(
        {
            "BG_WORKER_STORE": redis_url,
            "BG_WORKER_PREFIX": prefix,
            # A day window: the sliding-window counter weighs the previous window by the time elapsed, so a run
            # that straddles a minute boundary on a loaded machine could admit one more; a day moves it by nothing.
            "BG_WORKER_LIMIT": "50/day",
            "BG_WORKER_MAX_FAILURES": "5",
        }
    )
    try:
        yield url
    finally:
        stop_server(proc)
        _cleanup(prefix)


def _pids(url: str, tries: int = 60) -> set[int]:
    with httpx.Client(timeout=5) as client:
        return {client.get(url + "/health", headers={"Connection": "close"}).json()["pid"] for _ in range(tries)}


def _fan_out(n: int, send: object) -> list[httpx.Response]:
    assert callable(send)
    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(lambda _: send(), range(n)))


def test_requests_reach_several_workers(server: str) -> None:
    # Fresh connections are spread by the kernel over the workers' shared socket; at least two must answer.
    assert len(_pids(server)) >= 2


def test_rate_limit_is_exact_across_workers(server: str) -> None:
    def send() -> httpx.Response:
        return httpx.get(server + "/limited", headers={"Connection": "close"}, timeout=10)

    codes = Counter(r.status_code for r in _fan_out(120, send))
    assert codes == {200: 50, 429: 70}, codes


def test_lockout_is_exact_across_workers(server: str) -> None:
    def send() -> httpx.Response:
        return httpx.post(
            server + "/login",
            json={"username": "alice", "password": "guess"},
            headers={"Connection": "close"},
            timeout=10,
        )

    responses = _fan_out(40, send)
    codes = Counter(r.status_code for r in responses)
    assert 500 not in codes, codes
    assert 503 not in codes, codes
    # Exactly max_failures attempts reached the verifier; every other one was refused before it.
    count = httpx.get(server + "/count", timeout=5).json()["count"]
    assert count == 5, (count, codes)
    assert codes[401] == 5, codes
    assert codes[429] == 35, codes


def test_lockout_counts_or_refuses_every_login_body_across_workers(server: str) -> None:
    # 180 guesses at alice from 30 addresses, in every body shape: padded past the read limit, chunked, labelled
    # as a form or text, the name twice or in the query. The route parses any body as JSON, so each guess the
    # lockout did not count would reach the password check: only the account-wide threshold's 20 may.
    statuses = flood(server + "/login-any")
    assert set(statuses) <= REFUSALS | {401, 429}, statuses
    count = httpx.get(server + "/count", params={"of": "verifier-any"}, timeout=5).json()["count"]
    assert count == 20, (count, statuses)
    late = httpx.post(server + "/login-any", json={"username": "alice", "password": "x"}, timeout=5)
    assert late.status_code == 429  # the account is locked for every address it never logged in from


def test_rotation_yields_one_successor_across_workers(server: str) -> None:
    pair = httpx.post(server + "/issue", timeout=5).json()
    old = pair["refresh_token"]

    def send() -> httpx.Response:
        return httpx.post(server + "/rotate", content=old, headers={"Connection": "close"}, timeout=10)

    responses = _fan_out(30, send)
    codes = Counter(r.status_code for r in responses)
    winners = [r.json()["refresh_token"] for r in responses if r.status_code == 200]
    # One rotation wins; every other presentation of the same token is reuse (401) and revokes the family.
    assert len(winners) == 1, codes
    assert codes[401] == 29, codes
    # The family is revoked by the reuse: even the one successor is dead now.
    again = httpx.post(server + "/rotate", content=winners[0], timeout=5)
    assert again.status_code == 401
    assert again.json()["code"] == "token-reused"


@pytest.fixture(params=["trusted", "untrusted"])
def proxied_server(request: pytest.FixtureRequest, redis_url: str, prefix: str) -> Iterator[tuple[str, bool]]:
    """The worker app behind a "load balancer" on loopback: Guard trusts 127.0.0.1, or only 10.0.0.0/8."""
    trusted = request.param == "trusted"
    proc, url = start_server(
        {
            "BG_WORKER_STORE": redis_url,
            "BG_WORKER_PREFIX": prefix,
            "BG_WORKER_LIMIT": "5/day",  # see above: exact counts need a window far longer than the run
            "BG_WORKER_MAX_FAILURES": "3",
            "BG_WORKER_TRUSTED_PROXIES": "127.0.0.1" if trusted else "10.0.0.0/8",
        }
    )
    try:
        yield url, trusted
    finally:
        stop_server(proc)
        _cleanup(prefix)


CLIENT_A = {"X-Forwarded-For": "203.0.113.10", "Connection": "close"}
CLIENT_B = {"X-Forwarded-For": "198.51.100.20", "Connection": "close"}


def test_decorator_and_lockout_key_each_forwarded_client_across_workers(proxied_server: tuple[str, bool]) -> None:
    url, trusted = proxied_server

    def login(headers: dict[str, str]) -> int:
        body = {"username": "alice", "password": "guess"}
        return httpx.post(url + "/login", json=body, headers=headers, timeout=10).status_code

    # Client A exhausts its decorator limit (5/minute) and locks alice from its address (3 failures).
    a_limit = Counter(r.status_code for r in _fan_out(8, lambda: httpx.get(url + "/decorated", headers=CLIENT_A)))
    a_login = Counter(login(CLIENT_A) for _ in range(4))
    assert a_limit == {200: 5, 429: 3}, a_limit
    assert a_login == {401: 3, 429: 1}, a_login
    b_limit = httpx.get(url + "/decorated", headers=CLIENT_B, timeout=10)
    b_login = login(CLIENT_B)
    if trusted:
        # Behind the trusted proxy each client has its own bucket and its own lock, in every worker.
        assert b_limit.status_code == 200
        assert b_limit.json() == {"client": "198.51.100.20"}
        assert b_login == 401
    else:
        # From a peer that is not a trusted proxy the headers are ignored: everyone is the peer.
        assert b_limit.status_code == 429
        assert b_login == 429
