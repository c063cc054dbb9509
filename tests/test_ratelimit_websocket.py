"""Rate limits on WebSocket handshakes (issue #25): a handshake is charged as a ``GET`` of its path, with the
same rules, key and client resolution as HTTP; over the limit it is refused before ``websocket.accept`` (the
socket never reaches the app): a 429 denial response when the server offers the ``websocket.http.response``
extension, else ``websocket.close`` 1008. Plain scopes, hypothesis, and a real uvicorn with a real client, on
the memory store and the real Redis, through the middleware, ``asgi.Guard``'s settings and ``fastapi.install``;
and headless Chromium opening sockets from the app's own page.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import backend_guard as bg
from backend_guard.asgi import Guard, RateLimitMiddleware
from backend_guard.integrations._known_routes import starlette_routes
from backend_guard.ratelimit import RateLimiter, RateLimitRule
from backend_guard.storage import MemoryStore, Store

from .servers import run_asgi

DENIAL = {"websocket.http.response": {}}


class Socket:
    """An ASGI app counting the handshakes that reach it (accepts, says hello, closes) and the HTTP requests."""

    def __init__(self) -> None:
        self.entered = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.entered += 1
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": "hello"})
            await send({"type": "websocket.close", "code": 1000})
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})


def _scope(kind: str, path: str, extensions: dict[str, Any], client: str = "192.0.2.7") -> dict[str, Any]:
    scope = {"type": kind, "scheme": "ws" if kind == "websocket" else "http", "path": path,
             "raw_path": path.encode("utf-8"), "query_string": b"", "root_path": "", "client": (client, 5000),
             "headers": [(b"host", b"app.example")]}  # fmt: skip
    if kind == "websocket":
        scope.update(extensions=extensions, subprotocols=[])
    else:
        scope["method"] = "GET"
    return scope


async def _call(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    first = "websocket.connect" if scope["type"] == "websocket" else "http.request"

    async def receive() -> dict[str, Any]:
        return {"type": first}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


# -- plain scopes ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("denial", [False, True], ids=["close", "denial-response"])
async def test_the_handshake_over_the_limit_never_reaches_the_app(astore: Store, denial: bool) -> None:
    app = Socket()
    mw = RateLimitMiddleware(app, limiter=RateLimiter(store=astore), rules=[RateLimitRule("/ws", "3/minute")])
    extensions = DENIAL if denial else {}
    for remaining in (2, 1, 0):
        sent = await _call(mw, _scope("websocket", "/ws", extensions))
        accept = dict(sent[0]["headers"])
        assert sent[0]["type"] == "websocket.accept"  # the fields ride on the handshake response
        assert accept[b"ratelimit-policy"] == b'"* /ws";q=3;w=60'
        assert accept[b"ratelimit"].startswith(b'"* /ws";r=%d;' % remaining)
    refused = await _call(mw, _scope("websocket", "/ws", extensions))
    assert app.entered == 3
    if not denial:
        assert refused == [{"type": "websocket.close", "code": 1008}]
        return
    assert [m["type"] for m in refused] == ["websocket.http.response.start", "websocket.http.response.body"]
    headers = {k.decode().lower(): v.decode() for k, v in refused[0]["headers"]}
    assert refused[0]["status"] == 429
    assert headers["content-type"] == "application/problem+json"
    assert int(headers["retry-after"]) > 0
    assert headers["ratelimit"].startswith('"* /ws";r=0;')
    assert json.loads(refused[1]["body"])["code"] == "rate-limited"
    # another client has its own bucket (the same key resolution as HTTP: the peer address)
    other = await _call(mw, _scope("websocket", "/ws", extensions, client="192.0.2.8"))
    assert other[0]["type"] == "websocket.accept"


async def test_a_handshake_and_a_get_of_the_same_path_share_the_bucket() -> None:
    app = Socket()
    mw = RateLimitMiddleware(app, limiter=RateLimiter(), rules=[RateLimitRule("/ws", "2/minute", methods=["GET"])])
    assert (await _call(mw, _scope("http", "/ws", {})))[0]["status"] == 200
    assert (await _call(mw, _scope("websocket", "/ws", {})))[0]["type"] == "websocket.accept"
    assert (await _call(mw, _scope("websocket", "/ws", {}))) == [{"type": "websocket.close", "code": 1008}]
    assert (await _call(mw, _scope("http", "/ws", {})))[0]["status"] == 429


async def test_a_key_function_sees_the_handshake_as_a_get_and_keys_its_bucket() -> None:
    seen: list[tuple[str, str]] = []

    def user(view: bg.RequestView) -> str | None:
        seen.append((view.method, view.path))
        return view.header("x-user")

    app = Socket()
    mw = RateLimitMiddleware(app, limiter=RateLimiter(), limits="1/minute", key=user)

    def as_user(name: bytes) -> dict[str, Any]:
        scope = _scope("websocket", "/ws", {})
        scope["headers"] = [*scope["headers"], (b"x-user", name)]
        return scope

    assert (await _call(mw, as_user(b"ann")))[0]["type"] == "websocket.accept"
    assert (await _call(mw, as_user(b"bob")))[0]["type"] == "websocket.accept"  # another key, another bucket
    assert await _call(mw, as_user(b"ann")) == [{"type": "websocket.close", "code": 1008}]
    assert (await _call(mw, _scope("websocket", "/ws", {})))[0]["type"] == "websocket.accept"  # None: not limited
    assert set(seen) == {("GET", "/ws")}
    assert app.entered == 3


@pytest.mark.parametrize("denial", [False, True], ids=["close", "denial-response"])
async def test_guard_settings_limit_handshakes_and_the_denial_carries_the_request_id(denial: bool) -> None:
    app = Socket()
    guard = Guard(app, bg.GuardSettings(rate_limit={"default_limits": "1/minute"}))
    extensions = DENIAL if denial else {}
    assert (await _call(guard, _scope("websocket", "/ws", extensions)))[0]["type"] == "websocket.accept"
    refused = await _call(guard, _scope("websocket", "/ws", extensions))
    assert app.entered == 1
    if not denial:
        assert refused == [{"type": "websocket.close", "code": 1008}]
        return
    assert refused[0]["status"] == 429
    request_id = dict(refused[0]["headers"])[b"x-request-id"].decode()  # the outer layers see the denial too
    assert json.loads(refused[1]["body"])["request_id"] == request_id


async def test_a_store_failing_closed_refuses_the_handshake_with_503() -> None:
    from .conftest import free_port

    store = bg.storage.RedisStore(f"redis://127.0.0.1:{free_port()}/0", breaker_cooldown=30)
    limiter = RateLimiter(store=store, on_storage_error="deny")
    app = Socket()
    mw = RateLimitMiddleware(app, limiter=limiter, limits="5/minute")
    try:
        refused = await _call(mw, _scope("websocket", "/ws", DENIAL))
        assert refused[0]["status"] == 503
        assert (b"retry-after", b"1") in refused[0]["headers"]
        assert json.loads(refused[1]["body"])["code"] == "storage-unavailable"
        assert await _call(mw, _scope("websocket", "/ws", {})) == [{"type": "websocket.close", "code": 1008}]
        assert app.entered == 0
    finally:
        await store.aclose()
        store.close()


async def test_lifespan_passes_straight_through() -> None:
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    mw = RateLimitMiddleware(app, limiter=RateLimiter(), limits="1/minute", check_routes=False)
    for _ in range(3):
        await _call(mw, {"type": "lifespan", "asgi": {"version": "3.0"}})
    assert seen == ["lifespan"] * 3


_PATHS = st.sampled_from(["/ws", "/ws/", "/ws/1", "/chat", "/chat/room", "/"])
_METHODS = st.one_of(st.none(), st.lists(st.sampled_from(["GET", "POST", "HEAD", "PUT"]), min_size=1, unique=True))


@settings(max_examples=150, deadline=None)
@given(
    rule_path=st.sampled_from(["/ws", "/ws/{room}", "/chat*", "/"]),
    methods=_METHODS,
    path=_PATHS,
    ws_first=st.booleans(),
)
async def test_a_handshake_is_limited_exactly_as_a_get_of_its_path(
    rule_path: str, methods: list[str] | None, path: str, ws_first: bool
) -> None:
    """Property: against any rule, a handshake is charged iff a ``GET`` of the same path is, in the same bucket."""
    rule = RateLimitRule(rule_path, "1/minute", methods=methods)
    app = Socket()
    mw = RateLimitMiddleware(app, limiter=RateLimiter(store=MemoryStore()), rules=[rule], check_routes=False)
    first, second = ("websocket", "http") if ws_first else ("http", "websocket")
    await _call(mw, _scope(first, path, {}))
    after = await _call(mw, _scope(second, path, {}))
    get_is_limited = rule.matches("GET", path)  # the method a handshake counts as
    refused = after[0].get("status") == 429 or after[0]["type"] == "websocket.close"
    assert refused == get_is_limited
    assert app.entered == (1 if get_is_limited else 2)


def test_a_rule_for_a_websocket_route_reaches_a_route_at_startup() -> None:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    app = Starlette(routes=[WebSocketRoute("/ws/{room}", Socket())])
    routes = starlette_routes(app)
    assert routes is not None
    mw = RateLimitMiddleware(app, limiter=RateLimiter(), rules=[RateLimitRule("/ws/{room}", "5/minute")])
    assert routes.serves("/ws/1")
    assert "/ws/1" in routes.samples
    mw.check_rules(routes)  # no ConfigurationError: the handshake is limited, the rule reaches a route


# -- a real server and a real client ---------------------------------------------------------------------------------


@pytest.fixture(params=["middleware", "guard", "install"])
def served(request: pytest.FixtureRequest, store: Store) -> Iterator[tuple[str, Socket]]:
    """A Starlette app with a WebSocket route under uvicorn (lifespan on: the route check runs), limited to 3
    handshakes a minute on ``/ws`` by the middleware, by ``Guard``'s settings or by ``fastapi.install``'s, on
    ``store``."""
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        await store.aclose()  # the async Redis client lives in the server's loop

    socket = Socket()
    app = Starlette(routes=[WebSocketRoute("/ws", socket)], lifespan=lifespan)
    settings = bg.GuardSettings(rate_limit={"rules": [{"path": "/ws", "limits": "3/minute"}]})
    if request.param == "guard":
        wrapped: Any = Guard(app, settings, store=store)
    elif request.param == "install":
        from backend_guard.fastapi import install

        install(app, settings, store=store)
        wrapped = app
    else:
        wrapped = RateLimitMiddleware(app, limiter=RateLimiter(store=store), rules=[RateLimitRule("/ws", "3/minute")])
    with run_asgi(wrapped, lifespan="on") as url:
        yield url.replace("http://", "ws://") + "/ws", socket


@pytest.mark.server
def test_a_real_client_gets_n_handshakes_then_429(served: tuple[str, Socket]) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url, socket = served
    for remaining in (2, 1, 0):
        with connect(url, open_timeout=5) as ws:
            assert ws.recv(timeout=5) == "hello"
            assert ws.response is not None
            assert ws.response.headers["RateLimit"].startswith(f'"* /ws";r={remaining};')
    with pytest.raises(InvalidStatus) as refused:
        connect(url, open_timeout=5)
    response = refused.value.response
    assert response.status_code == 429  # uvicorn offers the denial response
    assert int(response.headers["Retry-After"]) > 0
    assert json.loads(response.body or b"")["code"] == "rate-limited"
    assert socket.entered == 3  # the refused socket never reached the app


# -- from Chromium ---------------------------------------------------------------------------------------------------

_OPEN_SOCKET = """new Promise(done => {
  const ws = new WebSocket(%s);
  const timer = setTimeout(() => done("timeout"), 5000);
  ws.onmessage = e => { clearTimeout(timer); done("message:" + e.data); };
  ws.onerror = () => { clearTimeout(timer); done("error"); };
})"""


@pytest.mark.server
@pytest.mark.slow
def test_chromium_opens_n_sockets_and_the_next_handshake_is_answered_429() -> None:
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route, WebSocketRoute

    from .browser import Page, chromium_path

    chromium_path()
    statuses: list[int] = []

    def recording(app: Any) -> Any:
        """Outside the Guard: the status each handshake was answered with (101 accepted)."""

        async def record(scope: dict[str, Any], receive: Any, send: Any) -> None:
            async def noting(message: dict[str, Any]) -> None:
                if message["type"] == "websocket.accept":
                    statuses.append(101)
                elif message["type"] == "websocket.http.response.start":
                    statuses.append(message["status"])
                await send(message)

            await app(scope, receive, noting if scope["type"] == "websocket" else send)

        return record

    async def page(request: Any) -> HTMLResponse:
        return HTMLResponse("<!doctype html><html><body><p>app</p></body></html>")

    socket = Socket()
    app = Starlette(routes=[Route("/", page), WebSocketRoute("/ws", socket)])
    settings = bg.GuardSettings(csrf=True, rate_limit={"rules": [{"path": "/ws", "limits": "3/minute"}]})
    with run_asgi(recording(Guard(app, settings))) as url, Page(timeout=15.0) as browser:
        browser.goto(url + "/")
        target = json.dumps(url.replace("http://", "ws://") + "/ws")
        opened = [browser.evaluate(_OPEN_SOCKET % target) for _ in range(4)]
    assert opened == ["message:hello"] * 3 + ["error"]  # the browser's own page: the CSRF check lets it through
    assert statuses == [101, 101, 101, 429]
    assert socket.entered == 3


async def test_a_rule_the_startup_check_accepts_limits_the_handshake_under_a_root_path() -> None:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    socket = Socket()
    app = Starlette(routes=[WebSocketRoute("/ws", socket)])
    mw = RateLimitMiddleware(app, limiter=RateLimiter(), rules=[RateLimitRule("/ws", "1/minute")])
    routes = starlette_routes(app)
    assert routes is not None
    mw.check_rules(routes)  # accepted at start-up: the rule reaches the WebSocketRoute

    def handshake() -> dict[str, Any]:  # what uvicorn --root-path /api hands over for ws://host/ws
        scope = _scope("websocket", "/api/ws", {})
        scope["root_path"] = "/api"
        return scope

    assert (await _call(mw, handshake()))[0]["type"] == "websocket.accept"
    assert await _call(mw, handshake()) == [{"type": "websocket.close", "code": 1008}]
    assert socket.entered == 1


async def test_guard_refuses_a_handshake_with_503_when_the_store_raises() -> None:
    from .conftest import free_port

    app = Socket()
    settings = bg.GuardSettings(
        rate_limit={
            "default_limits": "5/minute",
            "store": f"redis://127.0.0.1:{free_port()}/0",
            "on_storage_error": "raise",
        }
    )
    guard = Guard(app, settings)
    try:
        assert (await _call(guard, _scope("http", "/ws", {})))[0]["status"] == 503  # the envelope's document
        refused = await _call(guard, _scope("websocket", "/ws", DENIAL))  # raises StorageError today
        assert refused[0]["type"] == "websocket.http.response.start"
        assert refused[0]["status"] == 503
        assert app.entered == 0
    finally:
        store = guard.parts.store
        await store.aclose()
        store.close()
