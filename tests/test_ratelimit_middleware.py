"""RateLimitMiddleware (ASGI and WSGI) and ``@limiter.limit`` on routes: buckets, keys, headers, failures."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import pytest
from werkzeug.test import Client

from backend_guard.asgi import RateLimitMiddleware
from backend_guard.clientip import ClientIP
from backend_guard.ratelimit import RateLimiter, RateLimitRule, bucket_method
from backend_guard.storage import MemoryStore, RedisStore, Store
from backend_guard.wsgi import RateLimitMiddleware as WSGIRateLimitMiddleware

from .conftest import free_port
from .servers import run_asgi, run_wsgi

# -- tiny apps -----------------------------------------------------------------------------------------------------


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await send({"type": "lifespan.startup.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    for chunk in (b"one ", b"two ", b"three"):  # streamed in chunks
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return iter([b"one ", b"two ", b"three"])


class Both:
    """One interface over the ASGI and WSGI middleware: ``get(path, peer=..., headers=...)``."""

    def __init__(self, kind: str, limiter: RateLimiter, **options: Any) -> None:
        self.kind = kind
        if kind == "asgi":
            self.asgi = RateLimitMiddleware(asgi_app, limiter=limiter, **options)
        else:
            self.wsgi = Client(WSGIRateLimitMiddleware(wsgi_app, limiter=limiter, **options))

    async def request(
        self, method: str, path: str, peer: str = "203.0.113.9", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes, list[str]]:
        if self.kind == "asgi":
            transport = httpx.ASGITransport(app=self.asgi, client=(peer, 1234))
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                resp = await client.request(method, path, headers=headers)
            names = [k.decode().lower() for k, _ in resp.headers.raw]
            return resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, resp.content, names
        wresp = self.wsgi.open(path, method=method, headers=headers or {}, environ_base={"REMOTE_ADDR": peer})
        names = [k.lower() for k, _ in wresp.headers.items()]
        return wresp.status_code, {k.lower(): v for k, v in wresp.headers.items()}, wresp.get_data(), names

    async def get(self, path: str, **kw: Any) -> tuple[int, dict[str, str], bytes, list[str]]:
        return await self.request("GET", path, **kw)


KINDS = ["asgi", "wsgi"]


@pytest.mark.parametrize("kind", KINDS)
async def test_route_pattern_is_one_bucket_and_429_is_a_problem(astore: Store, kind: str) -> None:
    mw = Both(kind, RateLimiter(astore), rules=[RateLimitRule("/users/{id}", "2/minute")])
    assert (await mw.get("/users/1"))[0] == 200
    assert (await mw.get("/users/2"))[0] == 200
    status, headers, body, names = await mw.get("/users/3")
    assert status == 429
    assert headers["content-type"] == "application/problem+json"
    assert int(headers["retry-after"]) > 0
    doc = json.loads(body)
    assert doc["code"] == "rate-limited"
    assert doc["retry_after"] == int(headers["retry-after"])
    assert headers["ratelimit"].endswith(";r=0;t=" + headers["ratelimit"].rsplit("t=", 1)[1])
    assert names.count("ratelimit") == 1
    assert (await mw.get("/other"))[0] == 200  # no rule: not limited


@pytest.mark.parametrize("kind", KINDS)
async def test_global_and_route_limits_one_header_each_and_streaming_intact(kind: str) -> None:
    mw = Both(
        kind,
        RateLimiter(),
        limits="100/minute",
        rules=[RateLimitRule("/login", "5/minute", methods=["POST"], name="login")],
    )
    status, headers, body, names = await mw.request("POST", "/login")
    assert status == 200
    assert body == b"one two three"
    assert names.count("ratelimit") == 1
    assert names.count("ratelimit-policy") == 1
    assert headers["ratelimit-policy"] == '"global";q=100;w=60, "login";q=5;w=60'
    assert headers["ratelimit"].startswith('"global";r=99;t=')
    assert '"login";r=4;t=' in headers["ratelimit"]
    status, headers, _, _ = await mw.request("GET", "/login")  # method filter: only the global limit
    assert headers["ratelimit-policy"] == '"global";q=100;w=60'


@pytest.mark.parametrize("kind", KINDS)
async def test_all_or_nothing_across_rules(kind: str) -> None:
    limiter = RateLimiter()
    mw = Both(kind, limiter, limits="100/minute", rules=[RateLimitRule("/x", "2/minute", name="x")])
    statuses = [(await mw.get("/x"))[0] for _ in range(5)]
    assert statuses == [200, 200, 429, 429, 429]
    headers = (await mw.get("/y"))[1]
    assert headers["ratelimit"].startswith('"global";r=97;')  # the refused requests spent no global quota


@pytest.mark.parametrize("kind", KINDS)
async def test_spoofed_forwarded_for_from_an_untrusted_peer_does_not_change_the_key(kind: str) -> None:
    mw = Both(kind, RateLimiter(), limits="2/minute", client_ip=ClientIP(["10.0.0.0/8"]))
    for i in range(2):
        assert (await mw.get("/", peer="198.51.100.7", headers={"x-forwarded-for": f"1.1.1.{i}"}))[0] == 200
    assert (await mw.get("/", peer="198.51.100.7", headers={"x-forwarded-for": "1.1.1.9"}))[0] == 429
    # Through a trusted proxy, the forwarded client is the key.
    for i in range(3):
        assert (await mw.get("/", peer="10.0.0.2", headers={"x-forwarded-for": f"1.1.1.{i}"}))[0] == 200


@pytest.mark.parametrize("kind", KINDS)
async def test_ipv6_clients_share_their_64(kind: str) -> None:
    mw = Both(kind, RateLimiter(), limits="2/minute")
    assert (await mw.get("/", peer="2001:db8:1:2::1"))[0] == 200
    assert (await mw.get("/", peer="2001:db8:1:2:ffff::9"))[0] == 200
    assert (await mw.get("/", peer="2001:db8:1:2::77"))[0] == 429
    assert (await mw.get("/", peer="2001:db8:1:3::1"))[0] == 200


@pytest.mark.parametrize("kind", KINDS)
async def test_api_key_header_and_callable_keys(kind: str) -> None:
    store = MemoryStore()
    mw = Both(kind, RateLimiter(store), limits="1/minute", key="header:X-API-Key")
    assert (await mw.get("/", headers={"x-api-key": "secret-one"}))[0] == 200
    assert (await mw.get("/", headers={"x-api-key": "secret-one"}))[0] == 429
    assert (await mw.get("/", headers={"x-api-key": "secret-two"}))[0] == 200
    assert not any("secret" in k for k in store.scan("*"))  # API keys never land in the store in clear

    def user_key(view: Any) -> str | None:
        user = view.header("x-user")
        return None if user == "admin" else f"user:{user}"

    mw2 = Both(kind, RateLimiter(), limits="1/minute", key=user_key)
    assert (await mw2.get("/", headers={"x-user": "ann"}))[0] == 200
    assert (await mw2.get("/", headers={"x-user": "ann"}))[0] == 429
    assert [(await mw2.get("/", headers={"x-user": "admin"}))[0] for _ in range(3)] == [200] * 3


@pytest.mark.parametrize("kind", KINDS)
async def test_exempt_rules_shared_scopes_and_headers_off(kind: str) -> None:
    limiter = RateLimiter(headers=False, legacy_headers=True)
    mw = Both(
        kind,
        limiter,
        limits="100/minute",
        rules=[
            RateLimitRule("/health", exempt=True),
            RateLimitRule("/a", "2/minute", scope="ab"),
            RateLimitRule("/b", "2/minute", scope="ab"),
        ],
    )
    assert [(await mw.get("/health"))[0] for _ in range(3)] == [200] * 3
    status, headers, _, _ = await mw.get("/a")
    assert status == 200
    assert "ratelimit" not in headers
    assert (await mw.get("/b"))[0] == 200
    status, headers, _, _ = await mw.get("/b")
    assert status == 429
    assert headers["x-ratelimit-remaining"] == "0"  # refusals always carry the fields


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("mode", "expected"), [("allow", 200), ("deny", 503)])
async def test_dead_redis_gives_the_configured_answer_without_traceback(
    kind: str, mode: str, expected: int, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", breaker_cooldown=30)
    mw = Both(kind, RateLimiter(store, on_storage_error=mode), limits="5/minute")  # type: ignore[arg-type]
    try:
        with caplog.at_level(logging.WARNING):
            results = [await mw.get("/") for _ in range(3)]
    finally:
        await store.aclose()
        store.close()
    assert [r[0] for r in results] == [expected] * 3
    if expected == 503:
        assert results[0][1]["retry-after"] == "1"
        assert json.loads(results[0][2])["code"] == "storage-unavailable"
    assert not any(r.exc_info for r in caplog.records)
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)
    assert len([r for r in caplog.records if r.name == "backend_guard.ratelimit"]) == 1


async def test_lifespan_and_unmatched_requests_pass_through() -> None:
    mw = RateLimitMiddleware(asgi_app, limiter=RateLimiter(), rules=[RateLimitRule("/x", "1/minute")])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await mw({"type": "lifespan"}, receive, send)
    assert sent == [{"type": "lifespan.startup.complete"}]


def test_middleware_needs_rules() -> None:
    from backend_guard.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError):
        RateLimitMiddleware(asgi_app, limiter=RateLimiter())
    with pytest.raises(ConfigurationError):
        RateLimitMiddleware(asgi_app, limiter=RateLimiter(), limits="1/minute", key="cookie:sid")


# -- @limiter.limit on routes ----------------------------------------------------------------------------------------


async def test_fastapi_decorator_and_dependency_share_nothing_and_keep_openapi() -> None:
    from fastapi import Depends, FastAPI

    limiter = RateLimiter()
    app = FastAPI()

    @app.get("/items/{item_id}")
    @limiter.limit("2/minute")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/sync")
    @limiter.limit("1/minute")
    def sync_route() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/dep", dependencies=[Depends(limiter.dependency("1/minute"))])
    async def dep() -> dict[str, str]:
        return {"ok": "dep"}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r1 = await client.get("/items/1")
        r2 = await client.get("/items/2")
        r3 = await client.get("/items/3")
        assert (r1.status_code, r2.status_code, r3.status_code) == (200, 200, 429)
        assert r1.json() == {"id": 1}
        assert r1.headers["ratelimit"].startswith('"/items/{item_id}";r=1;t=')  # one bucket per route
        assert r3.headers["content-type"] == "application/problem+json"
        assert [(await client.get("/sync")).status_code for _ in range(2)] == [200, 429]
        assert [(await client.get("/dep")).status_code for _ in range(2)] == [200, 429]
        schema = (await client.get("/openapi.json")).json()
    params = schema["paths"]["/items/{item_id}"]["get"]["parameters"]
    assert [p["name"] for p in params] == ["item_id"]


def test_flask_decorator_uses_the_route_template() -> None:
    from flask import Flask

    limiter = RateLimiter(legacy_headers=True)
    app = Flask(__name__)

    @app.get("/users/<int:uid>")
    @limiter.limit("2/minute")
    def user(uid: int) -> dict[str, int]:
        return {"id": uid}

    client = app.test_client()
    statuses = [client.get(f"/users/{i}").status_code for i in range(3)]
    assert statuses == [200, 200, 429]
    resp = client.get("/users/9")
    assert resp.headers["X-RateLimit-Remaining"] == "0"
    assert resp.json is not None
    assert resp.json["code"] == "rate-limited"


# -- HEAD is GET: one bucket for a route's methods, through real servers -------------------------------------------
# A HEAD request runs the GET handler (the server drops the body): counted apart, or not at all, it would let a
# client alternate GET and HEAD for twice its quota on an expensive route.

ALTERNATE = ["GET", "HEAD", "GET", "HEAD"]


def _statuses(base: str, calls: list[tuple[str, str]]) -> list[int]:
    with httpx.Client(base_url=base) as client:
        return [client.request(method, path).status_code for method, path in calls]


def _starlette_app(limiter: RateLimiter) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    @limiter.limit("2/minute")
    async def shared(request: Request) -> PlainTextResponse:
        return PlainTextResponse("shared")

    @limiter.limit("2/minute", per_method=True)
    async def apart(request: Request) -> PlainTextResponse:
        return PlainTextResponse("apart")

    async def plain(request: Request) -> PlainTextResponse:
        return PlainTextResponse("plain")

    return Starlette(
        routes=[
            Route("/shared/{item}", shared, methods=["GET", "POST"]),
            Route("/apart", apart, methods=["GET", "POST"]),
            Route("/rule/{item}", plain, methods=["GET", "POST"]),
        ]
    )


@pytest.mark.server
def test_starlette_get_and_head_share_one_bucket_through_decorator_and_middleware() -> None:
    limiter = RateLimiter()
    app = RateLimitMiddleware(
        _starlette_app(limiter), limiter=limiter, rules=[RateLimitRule("/rule/{item}", "2/minute", methods=["GET"])]
    )
    with run_asgi(app) as url:
        # the decorator: one bucket for the route, whatever the method (HEAD and POST count with GET)
        assert _statuses(url, [(m, "/shared/1") for m in ALTERNATE]) == [200, 200, 429, 429]
        assert _statuses(url, [("POST", "/shared/2")]) == [429]
        # per_method=True: GET and POST apart, HEAD still GET's
        assert _statuses(url, [(m, "/apart") for m in ALTERNATE]) == [200, 200, 429, 429]
        assert _statuses(url, [("POST", "/apart"), ("POST", "/apart"), ("POST", "/apart")]) == [200, 200, 429]
        # the middleware: a rule for GET counts HEAD in the same bucket, and leaves POST alone
        assert _statuses(url, [(m, f"/rule/{i}") for i, m in enumerate(ALTERNATE)]) == [200, 200, 429, 429]
        assert _statuses(url, [("POST", "/rule/1")] * 3) == [200, 200, 200]


async def test_fastapi_get_and_head_share_the_decorators_bucket() -> None:
    from fastapi import FastAPI

    limiter = RateLimiter()
    app = FastAPI()

    @app.api_route("/items/{item_id}", methods=["GET", "HEAD"])
    @limiter.limit("2/minute")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.api_route("/own", methods=["GET", "HEAD", "POST"])
    @limiter.limit("1/minute", per_method=True)
    async def own() -> dict[str, str]:
        return {"ok": "own"}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        statuses = [(await client.request(m, f"/items/{i}")).status_code for i, m in enumerate(ALTERNATE)]
        assert statuses == [200, 200, 429, 429]
        own = [(await client.request(m, "/own")).status_code for m in ("HEAD", "GET", "POST", "POST")]
        assert own == [200, 429, 200, 429]


@pytest.mark.server
def test_flask_get_and_head_share_one_bucket_through_decorator_and_middleware() -> None:
    from flask import Flask

    limiter = RateLimiter()
    app = Flask(__name__)

    @app.route("/shared/<int:item>", methods=["GET", "POST"])
    @limiter.limit("2/minute")
    def shared(item: int) -> str:
        return "shared"

    @app.route("/apart", methods=["GET", "POST"])
    @limiter.limit("2/minute", per_method=True)
    def apart() -> str:
        return "apart"

    @app.route("/rule/<int:item>", methods=["GET", "POST"])
    def plain(item: int) -> str:
        return "plain"

    wrapped = WSGIRateLimitMiddleware(
        app.wsgi_app, limiter=limiter, rules=[RateLimitRule("/rule/{item}", "2/minute", methods=["GET"])]
    )
    with run_wsgi(wrapped) as url:
        assert _statuses(url, [(m, "/shared/1") for m in ALTERNATE]) == [200, 200, 429, 429]
        assert _statuses(url, [("POST", "/shared/2")]) == [429]
        assert _statuses(url, [(m, "/apart") for m in ALTERNATE]) == [200, 200, 429, 429]
        assert _statuses(url, [("POST", "/apart")] * 3) == [200, 200, 429]
        assert _statuses(url, [(m, f"/rule/{i}") for i, m in enumerate(ALTERNATE)]) == [200, 200, 429, 429]
        assert _statuses(url, [("POST", "/rule/1")] * 3) == [200, 200, 200]


@pytest.mark.server
def test_django_get_and_head_share_the_decorators_bucket() -> None:
    from django.http import HttpRequest, HttpResponse
    from django.urls import path

    from .django_app import add_urls, wsgi_app

    limiter = RateLimiter()

    @limiter.limit("2/minute")
    def shared(request: HttpRequest, item: int) -> HttpResponse:
        return HttpResponse("shared")

    @limiter.limit("2/minute", per_method=True)
    def apart(request: HttpRequest) -> HttpResponse:
        return HttpResponse("apart")

    add_urls(path("rl-head/shared/<int:item>", shared), path("rl-head/apart", apart))
    with run_wsgi(wsgi_app([])) as url:
        assert _statuses(url, [(m, f"/rl-head/shared/{i}") for i, m in enumerate(ALTERNATE)]) == [200, 200, 429, 429]
        assert _statuses(url, [("POST", "/rl-head/shared/9")]) == [429]
        assert _statuses(url, [(m, "/rl-head/apart") for m in ALTERNATE]) == [200, 200, 429, 429]
        assert _statuses(url, [("POST", "/rl-head/apart")] * 3) == [200, 200, 429]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_rule_matches_its_methods_in_any_case(kind: str) -> None:
    # Werkzeug and Django upper-case the method before routing: "post" runs the POST handler, and is counted.
    rule = RateLimitRule("/login", "1/minute", methods=["post"])
    assert rule.matches("POST", "/login")
    assert rule.matches("post", "/login")
    assert RateLimitRule("/x", "1/minute", methods=["GET"]).matches("head", "/x")
    assert not RateLimitRule("/x", "1/minute", methods=["HEAD"]).matches("GET", "/x")
    both = Both(kind, RateLimiter(), rules=[RateLimitRule("/login", "1/minute", methods=["POST"])])
    assert (await both.request("POST", "/login"))[0] == 200
    if kind == "asgi":  # raw ASGI: a server may hand the method over as the client spelled it
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "post", "path": "/login", "headers": [], "client": ("203.0.113.9", 1)}
        await both.asgi(scope, receive, send)
        assert sent[0]["status"] == 429
    else:
        environ = {"REQUEST_METHOD": "post", "REMOTE_ADDR": "203.0.113.9"}
        assert both.wsgi.open("/login", environ_overrides=environ).status_code == 429


@pytest.mark.server
def test_a_per_method_bucket_cannot_be_multiplied_by_inventing_methods() -> None:
    # A Django function view answers any method: with one bucket per method *name*, a client sending FOO, BAR,
    # BAZ... to a per-method route got a fresh quota each time. Methods outside HTTP's standard ones share the
    # route's one bucket.
    from django.http import HttpRequest, HttpResponse
    from django.urls import path

    from .django_app import add_urls, wsgi_app

    limiter = RateLimiter()

    @limiter.limit("2/minute", per_method=True)
    def search(request: HttpRequest) -> HttpResponse:
        return HttpResponse("results")

    add_urls(path("rl-invented/search", search))
    with run_wsgi(wsgi_app([])) as url:
        assert _statuses(url, [("GET", "/rl-invented/search")] * 3) == [200, 200, 429]
        invented = [(m, "/rl-invented/search") for m in ("FOO", "BAR", "BAZ", "QUX", "PROPFIND")]
        assert _statuses(url, invented) == [200, 200, 429, 429, 429]
        assert _statuses(url, [("POST", "/rl-invented/search")] * 3) == [200, 200, 429]  # standard: its own
    assert [bucket_method(m) for m in ("head", "Get", "post", "FOO", "get ")] == ["GET", "GET", "POST", None, None]


# -- one bucket per decorated handler, not per path -----------------------------------------------------------------
# GET and PUT on one path are usually two handlers (read and write): one shared counter let a client's reads starve
# its own writes. A handler answering several methods keeps one bucket (HEAD with GET) unless per_method=True.

READS_THEN_WRITE = ["GET", "GET", "HEAD", "PUT", "PUT", "PUT"]


def _fastapi_handlers(limiter: RateLimiter) -> Any:
    from fastapi import Depends, FastAPI

    app = FastAPI()
    per_route = limiter.dependency("2/minute")

    @app.api_route("/items/{item_id}", methods=["GET", "HEAD"])  # FastAPI's app.get answers no HEAD
    @limiter.limit("2/minute")
    async def read_item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.put("/items/{item_id}")
    @limiter.limit("2/minute")
    async def write_item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.api_route("/both/{item_id}", methods=["GET", "HEAD", "PUT"])
    @limiter.limit("2/minute")
    def both(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.api_route("/apart/{item_id}", methods=["GET", "HEAD", "PUT"])
    @limiter.limit("2/minute", per_method=True)
    def apart(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.api_route("/dep/{item_id}", methods=["GET", "HEAD"], dependencies=[Depends(per_route)])
    async def read_dep(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.put("/dep/{item_id}", dependencies=[Depends(per_route)])
    async def write_dep(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    return app


@pytest.mark.server
def test_fastapi_get_and_put_handlers_on_one_path_count_in_two_buckets() -> None:
    limiter = RateLimiter()
    with run_asgi(_fastapi_handlers(limiter)) as url:
        # two handlers: the reads use up their own quota only (HEAD with GET, any item id)
        calls = [(m, f"/items/{i}") for i, m in enumerate(READS_THEN_WRITE)]
        assert _statuses(url, calls) == [200, 200, 429, 200, 200, 429]
        with httpx.Client(base_url=url) as client:
            shown = client.get("/items/9").headers["ratelimit-policy"]
        assert shown == '"/items/{item_id}";q=2;w=60'  # clients still see the route template
        # one handler for GET and PUT: one bucket
        assert _statuses(url, [(m, f"/both/{i}") for i, m in enumerate(READS_THEN_WRITE)]) == [200, 200] + [429] * 4
        # per_method=True: one bucket per method, HEAD with GET
        calls = [(m, f"/apart/{i}") for i, m in enumerate(READS_THEN_WRITE)]
        assert _statuses(url, calls) == [200, 200, 429, 200, 200, 429]
        # one dependency object on two handlers of one path: a bucket per handler, as the decorator
        calls = [(m, f"/dep/{i}") for i, m in enumerate(READS_THEN_WRITE)]
        assert _statuses(url, calls) == [200, 200, 429, 200, 200, 429]


@pytest.mark.server
def test_starlette_get_and_put_endpoints_on_one_path_count_in_two_buckets() -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    limiter = RateLimiter()

    @limiter.limit("2/minute")
    async def read(request: Request) -> PlainTextResponse:
        return PlainTextResponse("read")

    @limiter.limit("2/minute")
    async def write(request: Request) -> PlainTextResponse:
        return PlainTextResponse("write")

    app = Starlette(routes=[Route("/docs/{d}", read, methods=["GET"]), Route("/docs/{d}", write, methods=["PUT"])])
    with run_asgi(app) as url:
        calls = [(m, f"/docs/{i}") for i, m in enumerate(READS_THEN_WRITE)]
        assert _statuses(url, calls) == [200, 200, 429, 200, 200, 429]


@pytest.mark.server
def test_flask_get_and_put_views_on_one_path_count_in_two_buckets() -> None:
    from flask import Flask

    limiter = RateLimiter()
    app = Flask(__name__)

    @app.get("/items/<int:item>")
    @limiter.limit("2/minute")
    def read_item(item: int) -> str:
        return "read"

    @app.put("/items/<int:item>")
    @limiter.limit("2/minute")
    def write_item(item: int) -> str:
        return "write"

    @app.route("/both/<int:item>", methods=["GET", "PUT"])
    @limiter.limit("2/minute")
    def both(item: int) -> str:
        return "both"

    @app.route("/apart/<int:item>", methods=["GET", "PUT"])
    @limiter.limit("2/minute", per_method=True)
    def apart(item: int) -> str:
        return "apart"

    with run_wsgi(app) as url:
        calls = [(m, f"/items/{i}") for i, m in enumerate(READS_THEN_WRITE)]
        assert _statuses(url, calls) == [200, 200, 429, 200, 200, 429]
        with httpx.Client(base_url=url) as client:
            assert client.put("/items/9").headers["ratelimit"].startswith('"/items/<int:item>";r=0;')
        assert _statuses(url, [(m, f"/both/{i}") for i, m in enumerate(READS_THEN_WRITE)]) == [200, 200] + [429] * 4
        calls = [(m, f"/apart/{i}") for i, m in enumerate(READS_THEN_WRITE)]
        assert _statuses(url, calls) == [200, 200, 429, 200, 200, 429]


@pytest.mark.server
def test_a_django_function_view_keeps_one_bucket_for_every_method_unless_per_method() -> None:
    from django.http import HttpRequest, HttpResponse
    from django.urls import path

    from .django_app import add_urls, wsgi_app

    limiter = RateLimiter()

    @limiter.limit("2/minute")
    def document(request: HttpRequest, item: int) -> HttpResponse:
        return HttpResponse("doc")

    @limiter.limit("2/minute", per_method=True)
    def sheet(request: HttpRequest, item: int) -> HttpResponse:
        return HttpResponse("sheet")

    add_urls(path("rl-handler/doc/<int:item>", document), path("rl-handler/sheet/<int:item>", sheet))
    with run_wsgi(wsgi_app([])) as url:
        calls = [(m, f"/rl-handler/doc/{i}") for i, m in enumerate(READS_THEN_WRITE)]
        assert _statuses(url, calls) == [200, 200] + [429] * 4
        calls = [(m, f"/rl-handler/sheet/{i}") for i, m in enumerate(READS_THEN_WRITE)]
        assert _statuses(url, calls) == [200, 200, 429, 200, 200, 429]


def _same_named_handlers(limiter: RateLimiter) -> Any:
    """An app whose two handlers on one path share a name (made in a loop), and one decorator object used twice."""
    from fastapi import FastAPI

    app = FastAPI()
    for methods in (["GET", "HEAD"], ["PUT"]):

        @app.api_route("/made/{item_id}", methods=methods)
        @limiter.limit("2/minute")
        async def made(item_id: int) -> dict[str, int]:
            return {"id": item_id}

    two_per_minute = limiter.limit("2/minute")

    @app.api_route("/reused/{item_id}", methods=["GET", "HEAD"])
    @two_per_minute
    async def read_reused(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.put("/reused/{item_id}")
    @two_per_minute
    async def write_reused(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    return app


@pytest.mark.server
def test_handlers_sharing_a_name_or_a_decorator_object_still_count_apart() -> None:
    limiter = RateLimiter()
    with run_asgi(_same_named_handlers(limiter)) as url:
        for route in ("/made", "/reused"):
            calls = [(m, f"{route}/{i}") for i, m in enumerate(READS_THEN_WRITE)]
            assert _statuses(url, calls) == [200, 200, 429, 200, 200, 429], route


@pytest.mark.server
@pytest.mark.redis
def test_workers_built_from_the_same_code_share_each_handlers_bucket(redis_store: RedisStore) -> None:
    # Two workers (the app built twice, each with its own limiter, as every worker process does) on one Redis:
    # a handler's bucket is named from code (module and name), never from objects of one process, so the
    # workers count together, and still apart per handler.
    def worker() -> Any:
        return _fastapi_handlers(RateLimiter(store=redis_store))

    with run_asgi(worker()) as one, run_asgi(worker()) as two:
        assert _statuses(one, [("GET", "/items/1")]) + _statuses(two, [("HEAD", "/items/2")]) == [200, 200]
        assert _statuses(one, [("GET", "/items/3")]) + _statuses(two, [("GET", "/items/4")]) == [429, 429]
        assert _statuses(two, [("PUT", "/items/5")]) + _statuses(one, [("PUT", "/items/6")]) == [200, 200]
        assert _statuses(one, [("PUT", "/items/7")]) == [429]
        assert _statuses(two, [("GET", "/dep/1"), ("PUT", "/dep/1")]) == [200, 200]
        assert _statuses(one, [("GET", "/dep/2"), ("PUT", "/dep/2")]) == [200, 200]
        assert _statuses(two, [("GET", "/dep/3"), ("PUT", "/dep/3")]) == [429, 429]


@pytest.mark.server
def test_no_request_a_client_can_shape_gets_a_handler_fresh_quota() -> None:
    # Property: whatever a client varies (the method and its spelling, invented methods, path parameters, a
    # trailing slash, the path's case), a decorated handler answers at most its quota. A Django function view
    # answers every method, the widest handler there is. Each example is a fresh client (its own API key).
    from django.http import HttpRequest, HttpResponse
    from django.urls import path
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from .django_app import add_urls, wsgi_app

    limiter = RateLimiter()

    @limiter.limit("2/minute", key="header:X-API-Key")
    def anything(request: HttpRequest, item: int) -> HttpResponse:
        return HttpResponse("ok")

    add_urls(path("rl-shape/<int:item>", anything))
    methods = st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "FOO", "PROPFIND"])
    paths = st.builds(
        lambda item, slash, upper: ("/RL-SHAPE/" if upper else "/rl-shape/") + str(item) + ("/" if slash else ""),
        st.integers(0, 10**6),
        st.sampled_from([False, False, True]),  # mostly routed, so that the quota is actually spent
        st.sampled_from([False, False, True]),
    )
    counter = iter(range(10**6))
    with run_wsgi(wsgi_app([])) as url, httpx.Client(base_url=url) as client:

        @settings(max_examples=30, deadline=None)
        @given(st.lists(st.tuples(methods, paths), min_size=3, max_size=10))
        def at_most_the_quota(calls: list[tuple[str, str]]) -> None:
            headers = {"X-API-Key": f"client-{next(counter)}"}
            answered = [client.request(m, p, headers=headers).status_code for m, p in calls]
            assert sum(1 for s in answered if s == 200) <= 2, list(zip(calls, answered, strict=True))

        at_most_the_quota()
