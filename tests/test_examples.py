"""One behaviour suite run against every example app through a real server (uvicorn for ASGI, waitress for WSGI).

The same requests and the same expectations for FastAPI, Starlette, Flask and Django: headers, error documents,
CORS, rate limits, lockout, password hashing, token rotation and the CSP nonce page.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

import backend_guard as bg

from .servers import run_asgi, run_wsgi

pytestmark = pytest.mark.server

ORIGIN = "https://app.example.com"
PASSWORD = "correct horse battery staple"

# name -> (module, "asgi" | "wsgi"[, factory]); the factory (default create_app) takes (settings, service) and
# returns the app to serve.
APPS: dict[str, tuple[str, ...]] = {
    "fastapi": ("backend_guard.examples.fastapi_app", "asgi"),
    "starlette": ("backend_guard.examples.starlette_app", "asgi"),
    "flask": ("backend_guard.examples.flask_app", "wsgi"),
    "django": ("backend_guard.examples.django_app", "wsgi"),
    "django-asgi": ("backend_guard.examples.django_app", "asgi", "create_asgi_app"),
}


def _settings() -> bg.GuardSettings:
    return bg.GuardSettings(cors={"allow_origins": [ORIGIN], "allow_headers": ["authorization", "content-type"]})


@contextmanager
def serve(name: str) -> Iterator[httpx.Client]:
    os.environ["BACKEND_GUARD_DEMO_FAST_HASH"] = "1"
    try:
        module_name, kind, *factory = APPS[name]
        if name.startswith("django"):
            from .django_app import setup

            setup()  # the test project's settings (other tests share the process); the example adds its own
        module = importlib.import_module(module_name)
        from backend_guard.examples.service import AuthService

        create_app = getattr(module, factory[0] if factory else "create_app")
        app: Any = create_app(_settings(), AuthService.create())
    finally:
        del os.environ["BACKEND_GUARD_DEMO_FAST_HASH"]
    runner = run_asgi if kind == "asgi" else run_wsgi
    with runner(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


@pytest.fixture(params=sorted(APPS))
def client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    with serve(request.param) as c:
        yield c


def _secure(r: httpx.Response) -> None:
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" in r.headers
    assert re.fullmatch(r"[A-Za-z0-9._:-]{8,128}", r.headers["x-request-id"])
    assert "server" not in r.headers or not any(ch.isdigit() for ch in r.headers["server"])


def _problem(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code
    assert body["request_id"] == r.headers["x-request-id"]
    _secure(r)
    return body


def _register(client: httpx.Client, email: str, password: str = PASSWORD) -> None:
    r = client.post("/register", json={"email": email, "password": password})
    assert r.status_code == 201, r.text


def _login(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/login", json={"email": email, "password": password})


def test_health_and_framework_errors_carry_headers(client: httpx.Client) -> None:
    r = client.get("/health", headers={"Origin": ORIGIN})
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    _secure(r)
    assert r.headers["access-control-allow-origin"] == ORIGIN
    _problem(client.get("/no-such-page", headers={"Accept": "application/json"}), 404)
    _problem(client.delete("/health", headers={"Accept": "application/json"}), 405)


def test_cors_preflight(client: httpx.Client) -> None:
    ok = client.options(
        "/login",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert ok.status_code in (200, 204)
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    bad = client.options("/login", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert bad.status_code == 403
    assert "access-control-allow-origin" not in bad.headers


def test_nonce_page(client: httpx.Client) -> None:
    r = client.get("/")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce, csp
    assert "'strict-dynamic'" in csp
    assert f'nonce="{nonce.group(1)}"' in r.text
    again = client.get("/").headers["content-security-policy"]
    assert again != csp  # never shared between two responses


def test_register_login_me_and_duplicate(client: httpx.Client) -> None:
    _register(client, "ada@example.com")
    _problem(client.post("/register", json={"email": "ADA@example.com", "password": "x" * 12}), 409, "email-taken")
    r = _login(client, "ada@example.com")
    assert r.status_code == 200, r.text
    pair = r.json()
    assert pair["token_type"].lower() == "bearer"
    me = client.get("/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    sub = me.json()["sub"]  # the user's id: the e-mail is kept out of the token and the store's keys
    assert re.fullmatch(r"[0-9a-f]{16}", sub), sub
    unauth = client.get("/me")
    _problem(unauth, 401)
    assert unauth.headers["www-authenticate"].startswith("Bearer")
    forged = client.get("/me", headers={"Authorization": f"Bearer {pair['access_token']}x"})
    _problem(forged, 401, "invalid-token")


def test_bad_bodies_are_clean_4xx(client: httpx.Client) -> None:
    for body in (b"not json", b"{}", b'{"email": 1, "password": []}', b"[" * 5000):
        r = client.post("/login", content=body, headers={"Content-Type": "application/json"})
        assert 400 <= r.status_code < 500, (body[:20], r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    secret = client.post("/register", json={"email": "x@example.com"}, headers={"Authorization": "Bearer hunter2"})
    assert 400 <= secret.status_code < 500
    assert "hunter2" not in secret.text


def test_lockout_is_generic_and_exact(client: httpx.Client) -> None:
    _register(client, "bob@example.com")
    wrong = [_login(client, "bob@example.com", "wrong password!") for _ in range(5)]
    bodies = [_problem(r, 401, "invalid-credentials") for r in wrong]
    locked = _login(client, "bob@example.com")  # the right password, but the account is locked
    locked_body = _problem(locked, 401, "invalid-credentials")
    strip = ("request_id",)
    assert {k: v for k, v in locked_body.items() if k not in strip} == {
        k: v for k, v in bodies[0].items() if k not in strip
    }
    unknown = _problem(_login(client, "nobody@example.com", "whatever pw"), 401, "invalid-credentials")
    assert {k: v for k, v in unknown.items() if k not in strip} == {
        k: v for k, v in bodies[0].items() if k not in strip
    }


def test_login_rate_limit(client: httpx.Client) -> None:
    statuses = [_login(client, f"nobody{i}@example.com", "whatever pw").status_code for i in range(11)]
    assert statuses[:10] == [401] * 10
    assert statuses[10] == 429
    r = _login(client, "nobody@example.com", "whatever pw")
    body = _problem(r, 429, "rate-limited")
    assert int(r.headers["retry-after"]) >= 1
    assert body["retry_after"] >= 1
    assert "ratelimit" in r.headers


def test_refresh_rotation_reuse_and_logout_everywhere(client: httpx.Client) -> None:
    _register(client, "cy@example.com")
    first = _login(client, "cy@example.com").json()
    second = client.post("/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    replay = client.post("/refresh", json={"refresh_token": first["refresh_token"]})  # inside the grace window
    assert replay.status_code == 200
    assert replay.json()["refresh_token"] == second.json()["refresh_token"]
    _problem(client.post("/refresh", json={"refresh_token": first["refresh_token"]}), 401, "token-reused")
    _problem(client.post("/refresh", json={"refresh_token": second.json()["refresh_token"]}), 401)
    fresh = _login(client, "cy@example.com").json()
    auth = {"Authorization": f"Bearer {fresh['access_token']}"}
    assert client.post("/logout-all", headers=auth).status_code == 204
    _problem(client.post("/refresh", json={"refresh_token": fresh["refresh_token"]}), 401)
