"""The backend-guard command: keys, calibrate, check, and the demo served over real HTTP."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

import backend_guard as bg
from backend_guard import asgi as bg_asgi
from backend_guard.cli import grade_headers, main

from .conftest import free_port
from .servers import run_asgi


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


@pytest.mark.parametrize("algorithm", ["EdDSA", "ES256", "HS256"])
def test_keys_makes_a_usable_key_and_a_public_jwks(algorithm: str) -> None:
    code, text = _run("keys", "--algorithm", algorithm)
    assert code == 0
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    json_start = next(i for i, line in enumerate(lines) if line.startswith("{"))
    secret = "\n".join(lines[:json_start])
    jwks = json.loads("\n".join(lines[json_start:]))
    tm = bg.TokenManager(secret, algorithm, issuer="https://i", audience="a")
    assert tm.verify_access(tm.issue("u").access_token)["sub"] == "u"
    for key in jwks["keys"]:
        assert "d" not in key
        assert "k" not in key


def test_calibrate_prints_parameters_at_or_above_owasp() -> None:
    code, text = _run("calibrate", "--target-ms", "30")
    assert code == 0
    assert "memory_cost=19456" in text
    assert "bg.PasswordHasher(bg.Argon2Parameters(" in text


def test_grade_headers_rewards_the_defaults_and_flags_gaps() -> None:
    assert grade_headers({}, https=True).grade == "F"
    weak = grade_headers(
        {"content-security-policy": "script-src 'unsafe-inline'", "x-powered-by": "PHP/8"}, https=False
    )
    assert weak.grade != "A+"
    assert any("unsafe-inline" in a for a in weak.advice)
    assert any("x-powered-by" in a for a in weak.advice)


@pytest.mark.server
def test_check_grades_a_guarded_app_above_a_bare_one() -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def home(request: object) -> PlainTextResponse:
        return PlainTextResponse("hi")

    bare = Starlette(routes=[Route("/", home)])
    guarded = bg_asgi.Guard(
        Starlette(routes=[Route("/", home)]), bg.GuardSettings(cors={"allow_origins": ["https://a.example"]})
    )
    with run_asgi(guarded) as url:
        code, text = _run("check", url + "/", "--origin", "https://a.example")
    assert code == 0, text
    assert "Grade: A+" in text
    assert "access-control-allow-origin: https://a.example" in text
    with run_asgi(bare) as url:
        code, text = _run("check", url + "/")
    assert code == 1
    assert "Grade: F" in text or "Grade: D" in text


@pytest.fixture
def demo_url() -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "BACKEND_GUARD_DEMO_FAST_HASH": "1"}
    proc = subprocess.Popen(  # noqa: S603 - our own entry point, loopback only
        [sys.executable, "-m", "backend_guard.cli", "demo", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, "the demo exited"
            assert time.monotonic() < deadline, "the demo did not answer"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.mark.server
@pytest.mark.slow
def test_demo_serves_the_whole_stack(demo_url: str) -> None:
    with httpx.Client(base_url=demo_url) as client:
        health = client.get("/health")
        assert health.headers["x-content-type-options"] == "nosniff"
        assert "x-request-id" in health.headers
        assert "server" not in health.headers
        assert client.post("/register", json={"email": "d@example.com", "password": "pw-123456789"}).status_code == 201
        pair = client.post("/login", json={"email": "d@example.com", "password": "pw-123456789"}).json()
        me = client.get("/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
        assert me.json() == {"sub": "d@example.com"}
        page = client.get("/")
        assert "'nonce-" in page.headers["content-security-policy"]
