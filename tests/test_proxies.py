"""Trusted proxies configured once, honoured everywhere: one resolution per request, every part uses it.

Through real servers on loopback (uvicorn for FastAPI, wsgiref's threaded server for Flask and Django) on the
real Redis: the "load balancer" is the test client on 127.0.0.1 writing ``X-Forwarded-For`` for two
different clients. With ``trusted_proxies`` naming loopback, the rate limit decorator and the lockout built
from the settings key each client on its own and the framework's own request sees the client; with a peer
that is not trusted the forwarding headers are ignored. Several workers: tests/test_workers.py. Unit tests
of the shells and properties of the resolution follow.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request  # at module level: FastAPI resolves the route's annotations here

import backend_guard as bg
from backend_guard import asgi as bg_asgi
from backend_guard import wsgi as bg_wsgi
from backend_guard.clientip import FIELDS, ORIGINAL_KEY, RESOLVED_KEY, ClientIP, ResolvedClient
from backend_guard.storage import RedisStore

from .conftest import _cleanup
from .servers import run_asgi, run_wsgi

A = "203.0.113.10"
B = "198.51.100.20"
LOOPBACK = "127.0.0.1"
#: waitress as tests/servers.py starts it clears forwarding headers itself; wsgiref hands them to the app.
WSGI_SERVER = "wsgiref"


def _settings(trusted: bool, store: str = "memory://") -> bg.GuardSettings:
    return bg.GuardSettings(
        store=store,
        trusted_proxies=[LOOPBACK] if trusted else ["10.0.0.0/8"],
        lockout={"max_failures": 2, "account_max_failures": None},
    )


# -- the three frameworks' apps: /limited (a RateLimiter decorator built beside the guard, no client_ip),
# -- /login (guard.lockout().protect(), always a wrong password), /whoami (the framework's own view).


@contextmanager
def _fastapi(trusted: bool, store: RedisStore) -> Iterator[str]:
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    import backend_guard.fastapi

    app = FastAPI()
    guard = backend_guard.fastapi.install(app, _settings(trusted), store=store)
    lock = guard.lockout()
    limiter = bg.RateLimiter(store, key_prefix="deco")

    @app.get("/limited")
    @limiter.limit("2/minute")
    async def limited() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/login")
    @lock.protect()
    async def login() -> JSONResponse:
        return JSONResponse({"ok": False}, status_code=401)

    @app.get("/whoami")
    async def whoami(request: Request) -> dict[str, Any]:
        return {"client": request.client.host if request.client else None, "secure": request.url.scheme == "https"}

    with run_asgi(app, proxy_headers=False) as url:  # uvicorn's own proxy headers off: the app decides
        yield url


@contextmanager
def _flask(trusted: bool, store: RedisStore) -> Iterator[str]:
    from flask import Flask, request

    import backend_guard.flask

    app = Flask(__name__)
    parts = backend_guard.flask.Guard(app, _settings(trusted), store=store).parts
    assert parts is not None
    lock = parts.lockout()
    limiter = bg.RateLimiter(store, key_prefix="deco")

    @app.get("/limited")
    @limiter.limit("2/minute")
    def limited() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/login")
    @lock.protect()
    def login() -> tuple[dict[str, bool], int]:
        return {"ok": False}, 401

    @app.get("/whoami")
    def whoami() -> dict[str, Any]:
        return {"client": request.remote_addr, "secure": request.is_secure}

    with run_wsgi(app, server=WSGI_SERVER) as url:
        yield url


@contextmanager
def _django(trusted: bool, store: RedisStore, *, asgi: bool = False) -> Iterator[str]:
    from django.conf import settings
    from django.http import JsonResponse
    from django.urls import path

    import backend_guard.django
    from tests.django_app import add_urls, asgi_app, setup, wsgi_app

    setup()
    url_store = f"{store.url}?prefix={store.prefix}"
    settings.BACKEND_GUARD = _settings(trusted, url_store).model_dump(exclude_unset=True)
    try:
        handler = (asgi_app if asgi else wsgi_app)(["backend_guard.django.GuardMiddleware"])
    finally:
        del settings.BACKEND_GUARD
    parts = backend_guard.django.GuardMiddleware.parts
    assert parts is not None
    lock = parts.lockout()
    limiter = bg.RateLimiter(parts.store, key_prefix="deco")

    @limiter.limit("2/minute")
    def limited(request: Any) -> JsonResponse:
        return JsonResponse({"ok": True})

    @lock.protect()
    def login(request: Any) -> JsonResponse:
        return JsonResponse({"ok": False}, status=401)

    def whoami(request: Any) -> JsonResponse:
        return JsonResponse({"client": request.META["REMOTE_ADDR"], "secure": request.is_secure()})

    base = f"p{uuid.uuid4().hex[:8]}"  # Django's URL list lives for the process: paths of this test's own
    add_urls(path(f"{base}/limited", limited), path(f"{base}/login", login), path(f"{base}/whoami", whoami))
    # Under ASGI Django reads the scheme from its scope: the resolved one is copied there too.
    server = run_asgi(handler, proxy_headers=False) if asgi else run_wsgi(handler, server=WSGI_SERVER)
    with server as url:
        yield f"{url}/{base}"


def _django_asgi(trusted: bool, store: RedisStore) -> AbstractContextManager[str]:
    return _django(trusted, store, asgi=True)


SERVERS: dict[str, Callable[[bool, RedisStore], AbstractContextManager[str]]] = {
    "fastapi": _fastapi,
    "flask": _flask,
    "django": _django,
    "django-asgi": _django_asgi,
}


@pytest.fixture
def store(redis_url: str, prefix: str) -> Iterator[RedisStore]:
    shared = RedisStore(redis_url, prefix=prefix, socket_timeout=2.0, connect_timeout=2.0)
    try:
        yield shared
    finally:
        shared.close()
        _cleanup(prefix)


def _as(client: str, **extra: str) -> dict[str, str]:
    return {"X-Forwarded-For": client, **extra}


@pytest.mark.redis
@pytest.mark.server
@pytest.mark.parametrize("trusted", [True, False], ids=["trusted-peer", "untrusted-peer"])
@pytest.mark.parametrize("framework", sorted(SERVERS))
def test_limits_and_lockout_key_the_client_the_trusted_proxy_forwarded(
    framework: str, trusted: bool, store: RedisStore
) -> None:
    with SERVERS[framework](trusted, store) as url, httpx.Client(timeout=10) as http:
        a_limited = [http.get(url + "/limited", headers=_as(A)).status_code for _ in range(3)]
        b_limited = http.get(url + "/limited", headers=_as(B)).status_code
        a_login = [http.post(url + "/login", json={"username": "alice"}, headers=_as(A)).status_code for _ in range(3)]
        b_login = http.post(url + "/login", json={"username": "alice"}, headers=_as(B)).status_code
        who = http.get(url + "/whoami", headers=_as(A, **{"X-Forwarded-Proto": "https"})).json()
    assert a_limited == [200, 200, 429]
    assert a_login == [401, 401, 429]
    if trusted:
        # Client B has its own bucket and its own lock; the framework's own request sees client A over HTTPS.
        assert (b_limited, b_login) == (200, 401)
        assert who == {"client": A, "secure": True}
    else:
        # The peer is not a trusted proxy: its forwarding headers are ignored, everyone is the peer.
        assert (b_limited, b_login) == (429, 429)
        assert who == {"client": LOOPBACK, "secure": False}


@pytest.mark.server
@pytest.mark.parametrize("trusted", [True, False], ids=["trusted-peer", "untrusted-peer"])
def test_hsts_is_sent_when_the_trusted_proxy_sets_only_x_forwarded_proto(trusted: bool) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def home(request: Any) -> PlainTextResponse:
        return PlainTextResponse(request.url.scheme)

    app = bg_asgi.Guard(Starlette(routes=[Route("/", home)]), _settings(trusted))
    with run_asgi(app, proxy_headers=False) as url:
        reply = httpx.get(url + "/", headers={"X-Forwarded-Proto": "https"}, timeout=10)
    assert reply.status_code == 200
    assert ("strict-transport-security" in reply.headers) is trusted
    assert reply.text == ("https" if trusted else "http")


@pytest.mark.server
def test_hsts_is_sent_by_the_wsgi_guard_when_the_trusted_proxy_sets_only_x_forwarded_proto() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["wsgi.url_scheme"].encode()]

    with run_wsgi(bg_wsgi.Guard(app, _settings(True)), server=WSGI_SERVER) as url:
        reply = httpx.get(url + "/", headers={"X-Forwarded-Proto": "https"}, timeout=10)
    assert "strict-transport-security" in reply.headers
    assert reply.text == "https"


# -- the shells, unit by unit ----------------------------------------------------------------------------


def _scope(peer: str, *headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": "/",
        "scheme": "http",
        "client": (peer, 50000),
        "headers": [(b"host", b"svc.internal"), *headers],
    }


async def _seen_by_asgi_app(wrap: Callable[[Any], Any], scope: dict[str, Any]) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(scope)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    await wrap(app)(scope, receive, send)
    return seen


HOSTED = ClientIP([LOOPBACK], forwarded_fields=FIELDS)


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(lambda app: bg_asgi.Guard(app, bg.GuardSettings(trusted_proxies=[LOOPBACK])), id="guard"),
        pytest.param(lambda app: bg_asgi.ProxyHeadersMiddleware(app, HOSTED), id="proxy-headers"),
        pytest.param(
            lambda app: bg_asgi.RateLimitMiddleware(app, limits="100/minute", client_ip=HOSTED), id="ratelimit-alone"
        ),
    ],
)
async def test_asgi_shells_rewrite_the_scope_once_and_keep_the_originals(wrap: Callable[[Any], Any]) -> None:
    forwarded = (
        (b"x-forwarded-for", f"6.6.6.6, {A}".encode()),
        (b"x-forwarded-proto", b"https"),
    )
    seen = await _seen_by_asgi_app(wrap, _scope(LOOPBACK, *forwarded))
    assert seen["client"] == (A, 0)
    assert seen["scheme"] == "https"
    assert seen[RESOLVED_KEY] == ResolvedClient(A, "https", seen[RESOLVED_KEY].host, proxied=True)
    assert seen[ORIGINAL_KEY]["client"] == (LOOPBACK, 50000)
    assert seen[ORIGINAL_KEY]["scheme"] == "http"


async def test_asgi_guard_leaves_a_scope_from_an_untrusted_peer_alone() -> None:
    wrap = lambda app: bg_asgi.Guard(app, bg.GuardSettings(trusted_proxies=["10.0.0.0/8"]))  # noqa: E731
    seen = await _seen_by_asgi_app(wrap, _scope(LOOPBACK, (b"x-forwarded-for", A.encode())))
    assert seen["client"] == (LOOPBACK, 50000)
    assert seen[RESOLVED_KEY].address == LOOPBACK
    assert not seen[RESOLVED_KEY].proxied


async def test_asgi_guard_with_no_trusted_proxy_changes_nothing_and_records_nothing() -> None:
    seen = await _seen_by_asgi_app(lambda app: bg_asgi.Guard(app), _scope(LOOPBACK, (b"x-forwarded-for", A.encode())))
    assert seen["client"] == (LOOPBACK, 50000)
    assert RESOLVED_KEY not in seen


def test_forwarded_host_rewrites_the_host_header_only_when_the_proxy_is_declared_to_write_it() -> None:
    headers = ((b"x-forwarded-for", A.encode()), (b"x-forwarded-host", b"api.example.com"))
    declared, undeclared = _scope(LOOPBACK, *headers), _scope(LOOPBACK, *headers)
    HOSTED.apply_scope(declared)
    ClientIP([LOOPBACK]).apply_scope(undeclared)
    assert (b"host", b"api.example.com") in declared["headers"]
    assert (b"host", b"svc.internal") not in declared["headers"]
    assert declared[ORIGINAL_KEY]["host"] == b"svc.internal"
    assert (b"host", b"svc.internal") in undeclared["headers"]


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(lambda app: bg_wsgi.Guard(app, bg.GuardSettings(trusted_proxies=[LOOPBACK])), id="guard"),
        pytest.param(lambda app: bg_wsgi.ProxyHeadersMiddleware(app, HOSTED), id="proxy-headers"),
        pytest.param(
            lambda app: bg_wsgi.RateLimitMiddleware(app, limits="100/minute", client_ip=HOSTED), id="ratelimit-alone"
        ),
    ],
)
def test_wsgi_shells_rewrite_the_environ_once_and_keep_the_originals(wrap: Callable[[Any], Any]) -> None:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        start_response("204 No Content", [])
        return []

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "REMOTE_ADDR": LOOPBACK,
        "wsgi.url_scheme": "http",
        "HTTP_HOST": "svc.internal",
        "HTTP_X_FORWARDED_FOR": f"6.6.6.6, {A}",
        "HTTP_X_FORWARDED_PROTO": "https",
    }
    list(wrap(app)(environ, lambda status, headers, exc_info=None: None))
    assert (seen["REMOTE_ADDR"], seen["wsgi.url_scheme"]) == (A, "https")
    assert seen[RESOLVED_KEY].address == A
    assert seen[ORIGINAL_KEY]["REMOTE_ADDR"] == LOOPBACK
    assert seen[ORIGINAL_KEY]["wsgi.url_scheme"] == "http"


def test_a_resolved_request_is_never_resolved_again_by_a_wider_trust() -> None:
    # The guard trusts loopback: the client is A. A decorator trusting everyone must not walk on to the
    # client-written 6.6.6.6 on top of that result.
    scope = _scope(LOOPBACK, (b"x-forwarded-for", f"6.6.6.6, {A}".encode()))
    ClientIP([LOOPBACK]).apply_scope(scope)
    everyone = ClientIP(["0.0.0.0/0"])
    assert everyone.from_scope(scope) == A
    assert bg.request.view_from_scope(scope, everyone).client == A
    environ = {"REMOTE_ADDR": LOOPBACK, "HTTP_X_FORWARDED_FOR": f"6.6.6.6, {A}", "wsgi.url_scheme": "http"}
    ClientIP([LOOPBACK]).apply_environ(environ)
    assert everyone.from_environ(environ) == A


def test_lockout_built_from_settings_uses_the_settings_trusted_proxies() -> None:
    settings = bg.GuardSettings(trusted_proxies=["10.0.0.0/8"])
    cip = settings.client_ip()
    assert settings.lockout.build("memory://", cip).client_ip is cip
    from backend_guard._stack import StackParts

    parts = StackParts.build(settings)
    assert parts.lockout().client_ip is parts.client_ip
    assert parts.limiter.client_ip is parts.client_ip


# -- item 3: each forwarding header on its own, only the one the proxy writes -----------------------------

PROXY = "10.0.0.5"
NAMES = ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded")
values = st.one_of(
    st.sampled_from(["https", "http", "203.0.113.7", "6.6.6.6, 10.0.0.9", "evil.example", "for=6.6.6.6;proto=https"]),
    st.text(max_size=40),
)
header_sets = st.dictionaries(st.sampled_from(NAMES), values, max_size=4)
field_sets = st.lists(st.sampled_from(FIELDS), unique=True).map(tuple)
families = st.sampled_from(["x-forwarded-for", "forwarded"])


@given(header_sets, families, field_sets, st.sampled_from(["198.51.100.1", "2001:db8::1", "127.0.0.1"]))
def test_a_header_from_an_untrusted_peer_is_never_believed(
    headers: dict[str, str], family: str, fields: tuple[str, ...], peer: str
) -> None:
    cip = ClientIP(["10.0.0.0/8"], forwarded_header=family, forwarded_fields=fields)
    resolved = cip.resolve(peer, headers, scheme="http", host="svc.internal")
    assert resolved == ResolvedClient(peer, "http", "svc.internal", proxied=False)


def _declared(family: str, fields: tuple[str, ...]) -> set[str]:
    if family == "forwarded":
        return {"forwarded"} if fields else set()
    return {{"for": "x-forwarded-for", "proto": "x-forwarded-proto", "host": "x-forwarded-host"}[f] for f in fields}


@given(header_sets, families, field_sets)
def test_a_header_the_declared_proxy_does_not_write_is_never_believed(
    headers: dict[str, str], family: str, fields: tuple[str, ...]
) -> None:
    cip = ClientIP(["10.0.0.0/8"], forwarded_header=family, forwarded_fields=fields)
    only_declared = {k: v for k, v in headers.items() if k in _declared(family, fields)}
    everything = cip.resolve(PROXY, headers, scheme="http", host="svc.internal")
    assert everything == cip.resolve(PROXY, only_declared, scheme="http", host="svc.internal")
    if "for" not in fields:
        assert everything.address == PROXY
    if "proto" not in fields:
        assert everything.scheme == "http"
    if "host" not in fields:
        assert everything.host == "svc.internal"


@given(st.sampled_from(["https", "http"]), st.sampled_from(["x-forwarded-for", "forwarded"]))
def test_the_scheme_alone_is_applied_without_a_forwarded_address(proto: str, family: str) -> None:
    cip = ClientIP(["10.0.0.0/8"], forwarded_header=family)
    header = {"forwarded": f"proto={proto}"} if family == "forwarded" else {"x-forwarded-proto": proto}
    resolved = cip.resolve(PROXY, header, scheme="http")
    assert (resolved.address, resolved.scheme) == (PROXY, proto)


def test_a_client_written_forwarded_header_is_ignored_when_the_proxy_appends_x_forwarded_for() -> None:
    cip = ClientIP(["10.0.0.0/8"])
    headers = {"forwarded": "for=6.6.6.6;proto=https", "x-forwarded-for": A}
    resolved = cip.resolve(PROXY, headers, scheme="http")
    assert (resolved.address, resolved.scheme) == (A, "http")


def test_forwarded_fields_must_name_known_values() -> None:
    with pytest.raises(bg.ConfigurationError, match="forwarded_fields"):
        ClientIP(["10.0.0.0/8"], forwarded_fields=("for", "port"))
    with pytest.raises(bg.ConfigurationError, match="forwarded_header"):
        bg.GuardSettings(trusted_proxies=["10.0.0.0/8"], forwarded_header="any")


# -- review: the request's own kind of scheme, no empty client, whole host values only --------------------


@pytest.mark.server
@pytest.mark.parametrize(("proto", "scheme"), [("wss", "https"), ("ws", "http"), ("WSS", "https")])
@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_a_forwarded_websocket_scheme_makes_an_http_request_http_or_https(kind: str, proto: str, scheme: str) -> None:
    # An HTTP request is never "wss": frameworks would build wss:// URLs for it and disagree with HSTS.
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def home(request: Any) -> PlainTextResponse:
        return PlainTextResponse(request.url.scheme)

    def wsgi_home(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["wsgi.url_scheme"].encode()]

    if kind == "asgi":
        server = run_asgi(bg_asgi.Guard(Starlette(routes=[Route("/", home)]), _settings(True)), proxy_headers=False)
    else:
        server = run_wsgi(bg_wsgi.Guard(wsgi_home, _settings(True)), server=WSGI_SERVER)
    with server as url:
        reply = httpx.get(url + "/", headers={"X-Forwarded-Proto": proto}, timeout=10)
    assert reply.text == scheme
    assert ("strict-transport-security" in reply.headers) is (scheme == "https")


def test_a_websocket_stays_ws_or_wss_whatever_the_proxy_writes() -> None:
    cip = ClientIP([LOOPBACK])
    for proto, scheme in (("https", "wss"), ("wss", "wss"), ("http", "ws"), ("ws", "ws")):
        scope = {**_scope(LOOPBACK, (b"x-forwarded-proto", proto.encode())), "type": "websocket", "scheme": "ws"}
        assert cip.apply_scope(scope).scheme == scheme
        assert scope["scheme"] == scheme


@pytest.mark.server
def test_a_unix_socket_client_stays_unknown_when_the_proxy_forwards_only_the_scheme(tmp_path: Any) -> None:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from .servers import run_asgi_unix

    async def home(request: Any) -> JSONResponse:
        return JSONResponse(
            {"client": None if request.client is None else request.client.host, "scheme": request.url.scheme}
        )

    app = bg_asgi.Guard(Starlette(routes=[Route("/", home)]), bg.GuardSettings(trusted_proxies=["unix"]))
    path = str(tmp_path / "app.sock")
    transport = httpx.HTTPTransport(uds=path)
    with run_asgi_unix(app, path, proxy_headers=False), httpx.Client(transport=transport, timeout=10) as http:
        seen = http.get("http://app/", headers={"X-Forwarded-Proto": "https"}).json()
    assert seen == {"client": None, "scheme": "https"}


_HOST_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]")


@given(
    st.sampled_from(["api.example.com", "[2001:db8::1]:443", "a.example:8443"]),
    st.sampled_from(["\n", "\r\n", "\r", " ", "\t", "\x00", ",evil.example", "/evil", "@evil.example"]),
    st.sampled_from(["x-forwarded-for", "forwarded"]),
)
def test_a_forwarded_host_is_taken_only_whole_never_with_a_newline_or_other_characters(
    host: str, junk: str, family: str
) -> None:
    cip = ClientIP(["10.0.0.0/8"], forwarded_header=family, forwarded_fields=FIELDS)
    for value in (host + junk, junk + host):
        quoted = value.replace('"', "")
        headers = (
            {"forwarded": f'for=203.0.113.9;host="{quoted}"'} if family == "forwarded" else {"x-forwarded-host": value}
        )
        resolved = cip.resolve(PROXY, headers, scheme="http", host="svc.internal")
        assert resolved.host is not None
        assert set(resolved.host) <= _HOST_CHARS
