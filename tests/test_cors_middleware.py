"""The ASGI and WSGI CORS shells: preflights answered, headers and Vary on every covered response, overrides."""

from __future__ import annotations

import asyncio
import http.client
from collections.abc import Iterable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from backend_guard.asgi import CORSMiddleware
from backend_guard.cors import STATE_KEY, CORSPolicy, cors_route
from backend_guard.exceptions import ConfigurationError
from backend_guard.wsgi import CORSMiddleware as WSGICORSMiddleware

from .servers import run_asgi

ORIGIN = "https://app.example.com"
POLICY = CORSPolicy(
    allow_origins=[ORIGIN],
    allow_methods=["GET", "PUT"],
    allow_headers=["authorization"],
    expose_headers=["X-Total"],
    allow_credentials=True,
)
OTHER = CORSPolicy(allow_origins=["https://other.example.com"])


# -- a bare ASGI app ------------------------------------------------------------------------------------------


def make_asgi_app(status: int = 200, headers: list[tuple[bytes, bytes]] | None = None, override: Any = None) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            return
        if override is not None:
            scope.setdefault("state", {})[STATE_KEY] = override
        await send({"type": "http.response.start", "status": status, "headers": headers if headers is not None else []})
        await send({"type": "http.response.body", "body": b"app"})

    return app


async def call(
    app: Any, method: str = "GET", path: str = "/", headers: Iterable[tuple[str, str]] = ()
) -> tuple[int, list[tuple[str, str]], bytes]:
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "query_string": b"",
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], [(k.decode(), v.decode()) for k, v in start["headers"]], body


def names(headers: list[tuple[str, str]]) -> list[str]:
    return [k.lower() for k, _ in headers]


def value(headers: list[tuple[str, str]], name: str) -> str | None:
    found = [v for k, v in headers if k.lower() == name.lower()]
    assert len(found) <= 1, f"{name} repeated: {found}"
    return found[0] if found else None


def acl(headers: list[tuple[str, str]]) -> list[str]:
    return [k for k in names(headers) if k.startswith("access-control-allow")]


async def test_allowed_actual_response() -> None:
    app = CORSMiddleware(make_asgi_app(headers=[(b"vary", b"Accept-Encoding")]), policy=POLICY)
    status, headers, body = await call(app, headers=[("origin", ORIGIN)])
    assert (status, body) == (200, b"app")
    assert value(headers, "access-control-allow-origin") == ORIGIN
    assert value(headers, "access-control-allow-credentials") == "true"
    assert value(headers, "access-control-expose-headers") == "X-Total"
    assert value(headers, "vary") == "Accept-Encoding, Origin"


@pytest.mark.parametrize("status", [200, 404, 429, 500])
@pytest.mark.parametrize(
    "request_headers",
    [
        [],
        [("origin", "https://evil.example")],
        [("origin", ORIGIN), ("origin", "https://evil.example")],
        [("origin", ORIGIN), ("origin", ORIGIN)],
        [("origin", "null")],
        [("origin", "https://" + "a" * 20_000)],
        [("origin", "https://exämple.com")],
        [("origin", "\x00\xff garbage")],
    ],
    ids=["none", "denied", "two-origins", "same-twice", "null", "huge", "non-ascii", "garbage"],
)
async def test_vary_on_every_response_and_nothing_else_when_not_allowed(
    status: int, request_headers: list[tuple[str, str]]
) -> None:
    app = CORSMiddleware(make_asgi_app(status, headers=[(b"Vary", b"origin"), (b"vary", b"Cookie")]), policy=POLICY)
    got, headers, _ = await call(app, headers=request_headers)
    assert got == status
    assert value(headers, "vary") == "origin, Cookie"
    assert acl(headers) == []


@pytest.mark.parametrize("status", [404, 429, 500])
async def test_error_responses_of_allowed_origins_carry_cors(status: int) -> None:
    app = CORSMiddleware(make_asgi_app(status), policy=POLICY)
    _, headers, _ = await call(app, headers=[("origin", ORIGIN)])
    assert value(headers, "access-control-allow-origin") == ORIGIN
    assert value(headers, "vary") == "Origin"


async def test_app_cors_headers_replaced_not_duplicated() -> None:
    inner = make_asgi_app(headers=[(b"access-control-allow-origin", b"*")])
    _, headers, _ = await call(CORSMiddleware(inner, policy=POLICY), headers=[("origin", ORIGIN)])
    assert value(headers, "access-control-allow-origin") == ORIGIN
    # a refused origin leaves the app's own headers alone (the app decided them)
    _, headers, _ = await call(CORSMiddleware(inner, policy=POLICY), headers=[("origin", "https://evil.example")])
    assert value(headers, "access-control-allow-origin") == "*"


async def test_allowed_preflight_never_reaches_the_app() -> None:
    app = CORSMiddleware(make_asgi_app(500), policy=POLICY)
    status, headers, body = await call(
        app,
        "OPTIONS",
        headers=[
            ("origin", ORIGIN),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "authorization"),
        ],
    )
    assert (status, body) == (204, b"")
    assert value(headers, "access-control-allow-origin") == ORIGIN
    assert value(headers, "access-control-allow-methods") == "GET, PUT"
    assert value(headers, "access-control-allow-headers") == "authorization"
    assert value(headers, "access-control-max-age") == "600"
    assert value(headers, "vary") == "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"


@pytest.mark.parametrize(
    "request_headers",
    [
        [("origin", "https://evil.example"), ("access-control-request-method", "GET")],
        [("origin", ORIGIN), ("access-control-request-method", "DELETE")],
        [("origin", ORIGIN), ("access-control-request-method", "GET"), ("access-control-request-headers", "x-a")],
        [("origin", ORIGIN), ("origin", ORIGIN), ("access-control-request-method", "GET")],
        [("origin", "null"), ("access-control-request-method", "GET")],
    ],
    ids=["origin", "method", "header", "two-origins", "null"],
)
async def test_refused_preflight_is_4xx_without_allow_headers(request_headers: list[tuple[str, str]]) -> None:
    status, headers, body = await call(
        CORSMiddleware(make_asgi_app(), policy=POLICY), "OPTIONS", headers=request_headers
    )
    assert status == 403
    assert acl(headers) == []
    assert "Origin" in (value(headers, "vary") or "")
    assert b"app" not in body


async def test_private_network_preflight() -> None:
    policy = CORSPolicy(allow_origins=[ORIGIN], allow_private_network=True)
    pre = [("origin", ORIGIN), ("access-control-request-method", "GET")]
    _, headers, _ = await call(
        CORSMiddleware(make_asgi_app(), policy=policy),
        "OPTIONS",
        headers=[*pre, ("access-control-request-private-network", "true")],
    )
    assert value(headers, "access-control-allow-private-network") == "true"
    assert "Access-Control-Request-Private-Network" in (value(headers, "vary") or "")
    _, headers, _ = await call(CORSMiddleware(make_asgi_app(), policy=policy), "OPTIONS", headers=pre)
    assert value(headers, "access-control-allow-private-network") is None


async def test_options_without_request_method_is_an_actual_request() -> None:
    status, headers, body = await call(
        CORSMiddleware(make_asgi_app(405), policy=POLICY), "OPTIONS", headers=[("origin", ORIGIN)]
    )
    assert (status, body) == (405, b"app")
    assert value(headers, "access-control-allow-origin") == ORIGIN


async def test_path_scoping_and_policy_lists() -> None:
    api = CORSPolicy(allow_origins=[ORIGIN], paths=["/api"])
    public = CORSPolicy(allow_origins=["*"], paths=["/public"])
    app = CORSMiddleware(make_asgi_app(), policy=[api, public])
    _, headers, _ = await call(app, path="/api/x", headers=[("origin", ORIGIN)])
    assert value(headers, "access-control-allow-origin") == ORIGIN
    _, headers, _ = await call(app, path="/public/x", headers=[("origin", "https://anyone.example")])
    assert value(headers, "access-control-allow-origin") == "*"
    _, headers, _ = await call(app, path="/other", headers=[("origin", ORIGIN)])
    assert headers == []  # not covered: untouched, no Vary
    status, _, body = await call(
        app, "OPTIONS", path="/other", headers=[("origin", ORIGIN), ("access-control-request-method", "GET")]
    )
    assert (status, body) == (200, b"app")  # the app's own OPTIONS handling


async def test_per_route_override_for_actual_responses() -> None:
    app = CORSMiddleware(make_asgi_app(override=OTHER), policy=POLICY)
    _, headers, _ = await call(app, headers=[("origin", "https://other.example.com")])
    assert value(headers, "access-control-allow-origin") == "https://other.example.com"
    _, headers, _ = await call(app, headers=[("origin", ORIGIN)])
    assert acl(headers) == []
    assert value(headers, "vary") == "Origin"


async def test_non_http_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    await CORSMiddleware(app, policy=POLICY)({"type": "lifespan"}, None, None)
    assert seen == ["lifespan"]


def test_middleware_arguments() -> None:
    app = make_asgi_app()
    assert CORSMiddleware(app, allow_origins=[ORIGIN]).policies[0].allow_origins == (ORIGIN,)
    with pytest.raises(ConfigurationError):
        CORSMiddleware(app)
    with pytest.raises(ConfigurationError):
        CORSMiddleware(app, policy=POLICY, allow_origins=[ORIGIN])
    with pytest.raises(ConfigurationError):
        CORSMiddleware(app, policy=[])
    with pytest.raises(ConfigurationError):
        CORSMiddleware(app, allow_origins=["*"], allow_credentials=True)


@pytest.mark.parametrize("middleware", [CORSMiddleware, WSGICORSMiddleware], ids=["asgi", "wsgi"])
def test_a_wrong_keyword_names_the_middleware_and_its_arguments(middleware: Any) -> None:
    """It was CORSPolicy's bare TypeError (``CORSPolicy.__init__() got an unexpected keyword argument``), naming a
    class the caller never called; Starlette's own middlewares name themselves."""
    with pytest.raises(ConfigurationError, match=r"'policies'; it takes policy= .*allow_origins, ") as found:
        middleware(make_asgi_app(), policies=[POLICY])
    assert "CORSMiddleware" in str(found.value)
    with pytest.raises(ConfigurationError, match=r"'allow_origin';"):
        middleware(make_asgi_app(), allow_origin=[ORIGIN])
    with pytest.raises(ConfigurationError, match=r"'policies'"):  # reported before "not both"
        middleware(make_asgi_app(), policy=POLICY, policies=[POLICY])
    assert middleware(make_asgi_app(), allow_origins=[ORIGIN], max_age=5).policies[0].max_age == 5


# -- Starlette, through httpx --------------------------------------------------------------------------------


def starlette_app() -> Starlette:
    async def ok(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True}, headers={"X-Total": "1"})

    async def limited(request: Request) -> PlainTextResponse:
        return PlainTextResponse("slow down", status_code=429)

    app = Starlette(routes=[Route("/ok", ok, methods=["GET", "PUT"]), Route("/limited", limited)])
    app.add_middleware(CORSMiddleware, policy=POLICY)
    return app


async def test_starlette_add_middleware() -> None:
    transport = httpx.ASGITransport(app=starlette_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.get("/ok", headers={"Origin": ORIGIN})
        assert r.headers["access-control-allow-origin"] == ORIGIN
        assert r.headers["vary"] == "Origin"
        r = await client.get("/missing", headers={"Origin": ORIGIN})
        assert r.status_code == 404
        assert r.headers["access-control-allow-origin"] == ORIGIN
        r = await client.get("/limited", headers={"Origin": "https://evil.example"})
        assert r.status_code == 429
        assert "access-control-allow-origin" not in r.headers
        assert r.headers["vary"] == "Origin"
        r = await client.options("/ok", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "PUT"})
        assert r.status_code == 204
        r = await client.options("/ok", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "PATCH"})
        assert r.status_code == 403
        assert r.headers["content-type"].startswith("application/problem+json")
        assert not [k for k in r.headers if k.startswith("access-control-allow")]


# -- a real server, once ---------------------------------------------------------------------------------------


def raw_request(port: int, method: str, headers: list[tuple[str, str]]) -> tuple[int, list[tuple[str, str]]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.putrequest(method, "/ok")
        for k, v in headers:
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        resp.read()
        return resp.status, resp.getheaders()
    finally:
        conn.close()


@pytest.mark.server
async def test_through_a_real_uvicorn_server() -> None:
    with run_asgi(starlette_app()) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        status, headers = await asyncio.to_thread(raw_request, port, "GET", [("Origin", ORIGIN)])
        assert status == 200
        assert value(headers, "access-control-allow-origin") == ORIGIN
        # two Origin headers on the wire: refused, not a 500
        status, headers = await asyncio.to_thread(
            raw_request, port, "GET", [("Origin", ORIGIN), ("Origin", "https://evil.example")]
        )
        assert status == 200
        assert acl(headers) == []
        assert value(headers, "vary") == "Origin"
        status, headers = await asyncio.to_thread(
            raw_request, port, "OPTIONS", [("Origin", ORIGIN), ("Access-Control-Request-Method", "PUT")]
        )
        assert status == 204
        assert value(headers, "access-control-allow-methods") == "GET, PUT"


# -- WSGI ---------------------------------------------------------------------------------------------------------


def make_wsgi_app(status: str = "200 OK", headers: list[tuple[str, str]] | None = None, override: Any = None) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if override is not None:
            environ[STATE_KEY] = override
        start_response(status, list(headers or []))
        return [b"app"]

    return app


def wsgi_call(
    app: Any, method: str = "GET", path: str = "/", headers: dict[str, str] | None = None
) -> tuple[str, list[tuple[str, str]], bytes]:
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": ""}
    for k, v in (headers or {}).items():
        environ["HTTP_" + k.upper().replace("-", "_")] = v
    got: list[Any] = []

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        got.extend([status, response_headers])

    body = b"".join(app(environ, start_response))
    return got[0], got[1], body


def test_wsgi_actual_and_vary() -> None:
    app = WSGICORSMiddleware(make_wsgi_app(headers=[("Vary", "Accept-Encoding")]), policy=POLICY)
    status, headers, body = wsgi_call(app, headers={"Origin": ORIGIN})
    assert (status, body) == ("200 OK", b"app")
    assert value(headers, "access-control-allow-origin") == ORIGIN
    assert value(headers, "vary") == "Accept-Encoding, Origin"
    for bad in ["https://evil.example", f"{ORIGIN},{ORIGIN}", "null", "https://ex\xe4mple.com", "x" * 10_000]:
        status, headers, _ = wsgi_call(
            WSGICORSMiddleware(make_wsgi_app("500 Internal Server Error"), policy=POLICY), headers={"Origin": bad}
        )
        assert status.startswith("500")
        assert acl(headers) == []
        assert value(headers, "vary") == "Origin"


def test_wsgi_preflight() -> None:
    app = WSGICORSMiddleware(make_wsgi_app(), policy=POLICY)
    status, headers, body = wsgi_call(
        app,
        "OPTIONS",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "Authorization",
        },
    )
    assert (status, body) == ("204 No Content", b"")
    assert value(headers, "access-control-allow-headers") == "authorization"
    status, headers, body = wsgi_call(
        app, "OPTIONS", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "DELETE"}
    )
    assert status.startswith("403")
    assert acl(headers) == []
    assert b"app" not in body


def test_wsgi_paths_and_override() -> None:
    scoped = WSGICORSMiddleware(make_wsgi_app(), policy=CORSPolicy(allow_origins=[ORIGIN], paths=["/api"]))
    assert wsgi_call(scoped, path="/other", headers={"Origin": ORIGIN})[1] == []
    _, headers, _ = wsgi_call(scoped, path="/api/x", headers={"Origin": ORIGIN})
    assert value(headers, "access-control-allow-origin") == ORIGIN
    overridden = WSGICORSMiddleware(make_wsgi_app(override=OTHER), allow_origins=[ORIGIN])
    _, headers, _ = wsgi_call(overridden, headers={"Origin": "https://other.example.com"})
    assert value(headers, "access-control-allow-origin") == "https://other.example.com"


def test_flask_app() -> None:
    import flask

    app = flask.Flask(__name__)

    @app.get("/ok")
    def ok() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/boom")
    def boom() -> tuple[str, int]:
        return "boom", 500

    app.wsgi_app = WSGICORSMiddleware(app.wsgi_app, policy=POLICY)  # type: ignore[method-assign]
    client = app.test_client()
    r = client.get("/ok", headers={"Origin": ORIGIN})
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    r = client.get("/boom", headers={"Origin": ORIGIN})
    assert r.status_code == 500
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert r.headers["Vary"] == "Origin"


# -- the per-route decorator ------------------------------------------------------------------------------------


async def test_cors_route_decorator_on_starlette() -> None:
    @cors_route(OTHER)
    async def special(request: Request) -> PlainTextResponse:
        return PlainTextResponse("special")

    app = Starlette(routes=[Route("/special", special)])
    app.add_middleware(CORSMiddleware, policy=POLICY)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.get("/special", headers={"Origin": "https://other.example.com"})
        assert r.text == "special"
        assert r.headers["access-control-allow-origin"] == "https://other.example.com"
        r = await client.get("/special", headers={"Origin": ORIGIN})
        assert "access-control-allow-origin" not in r.headers
        assert r.headers["vary"] == "Origin"


def test_cors_route_decorator_on_flask() -> None:
    import flask

    app = flask.Flask(__name__)

    @app.get("/special")
    @cors_route(OTHER)
    def special() -> str:
        return "special"

    app.wsgi_app = WSGICORSMiddleware(app.wsgi_app, policy=POLICY)  # type: ignore[method-assign]
    r = app.test_client().get("/special", headers={"Origin": "https://other.example.com"})
    assert r.headers["Access-Control-Allow-Origin"] == "https://other.example.com"
    r = app.test_client().get("/special", headers={"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in r.headers


def test_cors_route_needs_a_policy() -> None:
    with pytest.raises(ConfigurationError):
        cors_route("https://a.example")  # type: ignore[arg-type]


async def test_app_header_list_is_not_changed_in_place() -> None:
    shared = [(b"content-type", b"text/plain")]
    app = CORSMiddleware(make_asgi_app(headers=shared), policy=POLICY)
    for _ in range(3):
        _, headers, _ = await call(app, headers=[("origin", ORIGIN)])
        assert value(headers, "vary") == "Origin"
    assert shared == [(b"content-type", b"text/plain")]
