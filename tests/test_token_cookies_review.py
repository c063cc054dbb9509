"""Adversarial review of cookie tokens: what a cross-site page must not reach through the cookie."""

from __future__ import annotations

from typing import Any

import flask
import pytest
from fastapi import FastAPI, Request

import backend_guard as bg

SECRET = "cookie-review-secret-" + "k" * 20
REFRESH = "__Secure-refresh"


def _manager() -> bg.TokenManager:
    return bg.TokenManager(
        SECRET, "HS256", issuer="https://auth.test", audience="app", store="memory://", grace_window=0
    )


def _cookies(tm: bg.TokenManager) -> bg.TokenCookies:
    return bg.TokenCookies(tm, refresh_path="/auth/refresh", csrf=bg.CrossOriginProtection())


#: A sibling subdomain (SameSite=Strict cookies are sent to same-site requests) and a cross-site page.
_FORGED = [
    {"sec-fetch-site": "same-site", "origin": "https://user-content.app.test"},
    {"sec-fetch-site": "cross-site", "origin": "https://evil.test"},
    {"origin": "https://evil.test"},  # an older browser: no Fetch Metadata
]


def _starlette_app(cookies: bg.TokenCookies) -> Any:
    app = FastAPI()

    @app.api_route("/auth/refresh", methods=["GET", "HEAD", "POST"])
    async def refresh(request: Request) -> Any:
        return await cookies.arefresh(request)

    @app.api_route("/auth/refresh/sync", methods=["GET", "POST"])
    def refresh_sync(request: Request) -> Any:
        return cookies.refresh(request)

    @app.api_route("/auth/refresh/logout", methods=["GET", "POST"])
    async def logout(request: Request) -> Any:
        return await cookies.alogout(request)

    @app.api_route("/auth/refresh/logout-sync", methods=["GET", "POST"])
    def logout_sync(request: Request) -> Any:
        return cookies.logout(request)

    return app


def _still_alive(tm: bg.TokenManager, refresh_token: str) -> bool:
    try:
        tm.rotate(refresh_token)
    except bg.GuardError:
        return False
    return True


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("headers", _FORGED)
def test_refresh_and_logout_served_on_a_safe_method_still_refuse_another_site(
    method: str, headers: dict[str, str]
) -> None:
    """Refresh and logout change state whatever method the app serves them on: a forged GET (an ``<img>`` on a
    sibling subdomain, which the Strict refresh cookie reaches) must not rotate, revoke or clear."""
    from fastapi.testclient import TestClient

    tm = _manager()
    cookies = _cookies(tm)
    with TestClient(_starlette_app(cookies), base_url="https://app.test") as client:
        paths = ["/auth/refresh", "/auth/refresh/sync", "/auth/refresh/logout", "/auth/refresh/logout-sync"]
        for path in paths if method == "GET" else paths[:1]:
            pair = tm.issue("user-42")
            answer = client.request(method, path, headers=headers | {"cookie": f"{REFRESH}={pair.refresh_token}"})
            assert answer.status_code == 403, (path, answer.status_code)
            assert not answer.headers.get_list("set-cookie"), path
            assert _still_alive(tm, pair.refresh_token), path
        own = tm.issue("user-42")  # the app's own page still refreshes over GET
        answer = client.get(
            "/auth/refresh", headers={"sec-fetch-site": "same-origin", "cookie": f"{REFRESH}={own.refresh_token}"}
        )
        assert answer.status_code == 200


def test_flask_refresh_on_get_refuses_another_site() -> None:
    tm = _manager()
    cookies = _cookies(tm)
    app = flask.Flask(__name__)

    @app.get("/auth/refresh")
    def refresh() -> Any:
        return cookies.refresh(flask.request)

    @app.get("/auth/refresh/logout")
    def logout() -> Any:
        return cookies.logout(flask.request)

    client = app.test_client(use_cookies=False)
    for path in ("/auth/refresh", "/auth/refresh/logout"):
        pair = tm.issue("user-42")
        headers = _FORGED[0] | {"Cookie": f"{REFRESH}={pair.refresh_token}"}
        answer = client.get(path, headers=headers, base_url="https://app.test")
        assert answer.status_code == 403, path
        assert _still_alive(tm, pair.refresh_token), path


def test_django_deploy_check_warns_when_no_middleware_runs_the_cross_origin_protection() -> None:
    """Cookie tokens switch csrf on, but Django's one-part middlewares (SecureHeaders, CORS, RateLimit) leave it
    out: with neither GuardMiddleware nor Django's CsrfViewMiddleware, only TokenCookies' own routes are checked
    (a login form, any other view is open to cross-site posts). ``manage.py check --deploy`` says so."""
    from backend_guard.integrations._checks_django import deploy_findings

    keyed = {"key": SECRET, "algorithm": "HS256"}
    guard = bg.GuardSettings(token_cookies=True, tokens=keyed)
    headers_only = ["backend_guard.django.SecureHeadersMiddleware", "backend_guard.django.CORSMiddleware"]
    assert "backend_guard.W006" in [f.id for f in deploy_findings(guard, middleware=headers_only)]
    assert "backend_guard.W006" in [f.id for f in deploy_findings(bg.GuardSettings(csrf=True), middleware=headers_only)]
    for covered in (
        ["backend_guard.django.GuardMiddleware"],
        [*headers_only, "django.middleware.csrf.CsrfViewMiddleware"],
    ):
        assert "backend_guard.W006" not in [f.id for f in deploy_findings(guard, middleware=covered)]
    assert "backend_guard.W006" not in [f.id for f in deploy_findings(bg.GuardSettings(), middleware=headers_only)]


_HANDSHAKE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13"}


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (_HANDSHAKE | {"Origin": "https://evil.test"}, 403),  # an older browser: Origin alone
        (_HANDSHAKE | {"Origin": "https://evil.test", "Sec-Fetch-Site": "cross-site"}, 403),
        (_HANDSHAKE | {"Origin": "https://user-content.app.test", "Sec-Fetch-Site": "same-site"}, 403),
        ({"Upgrade": "WebSocket", "Origin": "null"}, 403),
        (_HANDSHAKE | {"Origin": "https://app.test", "Sec-Fetch-Site": "same-origin"}, 200),
        (_HANDSHAKE, 200),  # no browser headers: not a browser
    ],
)
def test_wsgi_middleware_judges_a_websocket_handshake_as_unsafe(headers: dict[str, str], status: int) -> None:
    """A WSGI WebSocket route (flask-sock, simple-websocket) authenticated by the session cookie: the handshake is a
    GET the browser sends from any page with the user's cookies (cross-site WebSocket hijacking). The ASGI
    middleware judges it as unsafe; the WSGI one must too, before the view runs."""
    import backend_guard.flask

    reached: list[str] = []
    app = flask.Flask(__name__)
    backend_guard.flask.Guard(app, bg.GuardSettings(csrf=True))

    @app.route("/ws", websocket=True)  # as flask-sock registers its routes
    def socket() -> str:
        reached.append("ws")
        return "opened"

    @app.get("/page")
    def page() -> str:
        return "page"

    client = app.test_client()
    answer = client.get("/ws", headers=headers, base_url="https://app.test")
    assert answer.status_code == status
    assert bool(reached) is (status == 200)
    if status == 403:
        assert answer.get_json()["code"] == "cross-origin-request"
    link = {"Origin": "https://evil.test", "Sec-Fetch-Site": "cross-site"}  # a plain GET (a link) stays safe
    assert client.get("/page", headers=link, base_url="https://app.test").status_code == 200
