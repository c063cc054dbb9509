"""Path-scoped policies under an ASGI ``root_path`` (``uvicorn --root-path /api``, a prefix-stripping proxy, a
Starlette ``Mount``): rate limit rules, CORS policies, CSRF, HTTPS-redirect and no-store paths match the path the
app routes on (``scope["path"]`` without ``scope["root_path"]``, as Starlette's router does), and the start-up
route check agrees with run time. A path that does not start with the root path is matched as it is.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

import backend_guard as bg
from backend_guard._http import route_path
from backend_guard.asgi import (
    CORSMiddleware,
    CrossOriginProtectionMiddleware,
    HTTPSRedirectMiddleware,
    RateLimitMiddleware,
    SecureHeadersMiddleware,
)
from backend_guard.exceptions import ConfigurationError
from backend_guard.integrations._known_routes import starlette_routes
from backend_guard.ratelimit import RateLimiter, RateLimitRule

from .servers import run_asgi


def _scope(path: str, root_path: str, method: str = "GET", headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    return {"type": "http", "scheme": "http", "method": method, "path": path, "raw_path": path.encode(),
            "root_path": root_path, "query_string": b"", "client": ("192.0.2.7", 5000),
            "headers": [(b"host", b"app.example"), *(headers or [])]}  # fmt: skip


async def _call(app: Any, scope: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


# -- the route path -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "root_path", "expected"),
    [
        ("/api/ws", "/api", "/ws"),
        ("/api", "/api", "/"),
        ("/api/", "/api", "/"),
        ("/apix/ws", "/api", "/apix/ws"),  # not at a segment boundary: as it is
        ("/other/ws", "/api", "/other/ws"),  # the prefix is absent: as it is (fail closed)
        ("/ws", "", "/ws"),
        ("/api/api/ws", "/api", "/api/ws"),  # what Starlette routes
    ],
)
def test_the_route_path_is_the_path_without_the_root_path(path: str, root_path: str, expected: str) -> None:
    assert route_path({"path": path, "root_path": root_path}) == expected


_SEGMENT = st.text(alphabet="abcz-_.%~", min_size=1, max_size=4)
_PATH = st.lists(_SEGMENT, max_size=4).map(lambda parts: "/" + "/".join(parts))


@given(root=st.one_of(st.just(""), _PATH), path=_PATH)
def test_the_route_path_is_starlettes_and_never_drops_more_than_the_root_path(root: str, path: str) -> None:
    from starlette._utils import get_route_path

    scope = {"path": path, "root_path": root}
    found = route_path(scope)
    assert found == (get_route_path(scope) or "/")  # Starlette's router sees the same path ("" is the root)
    if root and path.startswith(root + "/"):
        assert root + found == path
    elif path != root:
        assert found == path  # no root path, or not under it: matched as it is


# -- plain scopes: each path-scoped policy ----------------------------------------------------------------------------


async def test_a_rule_limits_the_route_path_and_a_path_outside_the_root_as_it_is() -> None:
    mw = RateLimitMiddleware(ok, limiter=RateLimiter(), rules=[RateLimitRule("/login", "1/minute")])
    assert (await _call(mw, _scope("/api/login", "/api")))[0]["status"] == 200
    assert (await _call(mw, _scope("/api/login", "/api")))[0]["status"] == 429
    # Served without the prefix (a proxy that did not strip it, say): the path is matched as it is, still limited.
    other = RateLimitMiddleware(ok, limiter=RateLimiter(), rules=[RateLimitRule("/login", "1/minute")])
    assert (await _call(other, _scope("/login", "/api")))[0]["status"] == 200
    assert (await _call(other, _scope("/login", "/api")))[0]["status"] == 429
    # A rule written with the root path matches nothing the app routes any more.
    prefixed = RateLimitMiddleware(ok, limiter=RateLimiter(), rules=[RateLimitRule("/api/login", "1/minute")])
    assert [(await _call(prefixed, _scope("/api/login", "/api")))[0]["status"] for _ in range(2)] == [200, 200]


async def test_a_cors_policy_for_a_path_applies_to_the_route_path() -> None:
    policy = bg.CORSPolicy(allow_origins=["https://app.example.com"], paths=["/public"])
    mw = CORSMiddleware(ok, policy=[policy])
    origin = [(b"origin", b"https://app.example.com")]
    sent = await _call(mw, _scope("/api/public/x", "/api", headers=origin))
    assert (b"access-control-allow-origin", b"https://app.example.com") in sent[0]["headers"]
    sent = await _call(mw, _scope("/api/private", "/api", headers=origin))
    assert not any(k == b"access-control-allow-origin" for k, _ in sent[0]["headers"])


async def test_a_csrf_exempt_path_is_the_route_path() -> None:
    mw = CrossOriginProtectionMiddleware(ok, policy=bg.CrossOriginProtection(), exempt_paths=("/hooks/",))
    cross = [(b"origin", b"https://evil.example"), (b"sec-fetch-site", b"cross-site")]
    assert (await _call(mw, _scope("/api/hooks/stripe", "/api", "POST", cross)))[0]["status"] == 200
    assert (await _call(mw, _scope("/api/login", "/api", "POST", cross)))[0]["status"] == 403
    # Exempting the prefixed path exempts nothing: a refusal, never a request let through by a prefix.
    strict = CrossOriginProtectionMiddleware(ok, policy=bg.CrossOriginProtection(), exempt_paths=("/api/hooks/",))
    assert (await _call(strict, _scope("/api/hooks/stripe", "/api", "POST", cross)))[0]["status"] == 403


async def test_an_https_redirect_exempt_path_is_the_route_path_and_the_location_keeps_the_root() -> None:
    mw = HTTPSRedirectMiddleware(ok, exempt_paths=("/health",))
    assert (await _call(mw, _scope("/api/health", "/api")))[0]["status"] == 200
    sent = await _call(mw, _scope("/api/login", "/api"))
    assert sent[0]["status"] == 301
    assert dict(sent[0]["headers"])[b"location"] == b"https://app.example/api/login"


async def test_a_no_store_path_is_the_route_path() -> None:
    mw = SecureHeadersMiddleware(ok, policy=bg.SecureHeaders(no_store_paths=["/account"]))
    sent = await _call(mw, _scope("/api/account/keys", "/api"))
    assert (b"cache-control", b"no-store") in [(k.lower(), v) for k, v in sent[0]["headers"]]
    sent = await _call(mw, _scope("/api/news", "/api"))
    assert (b"cache-control", b"no-store") not in [(k.lower(), v) for k, v in sent[0]["headers"]]


# -- a real server under --root-path ----------------------------------------------------------------------------------


def _app(rule_path: str) -> tuple[Any, list[str]]:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket

    failures: list[str] = []

    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse("hello")

    async def socket(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("hello")
        await ws.close()

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield

    app = Starlette(routes=[Route("/hello", hello), WebSocketRoute("/ws", socket)], lifespan=lifespan)
    rules = [RateLimitRule(rule_path + "hello", "2/minute"), RateLimitRule(rule_path + "ws", "2/minute")]
    return RateLimitMiddleware(app, limiter=RateLimiter(), rules=rules), failures


@pytest.mark.server
def test_uvicorn_with_a_root_path_limits_http_and_handshakes_by_the_apps_own_paths() -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    app, _ = _app("/")
    with run_asgi(app, lifespan="on", root_path="/api") as url:  # the start-up check accepted both rules
        statuses = [httpx.get(url + "/hello").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        ws_url = url.replace("http://", "ws://") + "/ws"
        for _ in range(2):
            with connect(ws_url, open_timeout=5) as ws:
                assert ws.recv(timeout=5) == "hello"
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url, open_timeout=5)
        assert refused.value.response.status_code == 429
        assert json.loads(refused.value.response.body or b"")["code"] == "rate-limited"


def test_a_rule_written_with_the_root_path_fails_the_startup_check() -> None:
    app, _ = _app("/api/")
    routes = starlette_routes(app.app)
    assert routes is not None
    with pytest.raises(ConfigurationError, match="/api/hello"):
        app.check_rules(routes)


async def test_guard_limits_the_route_path_under_a_root_path() -> None:
    from backend_guard.asgi import Guard

    guard = Guard(ok, bg.GuardSettings(rate_limit={"rules": [{"path": "/login", "limits": "1/minute"}]}))
    assert [(await _call(guard, _scope("/api/login", "/api")))[0]["status"] for _ in range(2)] == [200, 429]
