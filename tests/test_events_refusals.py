"""Events of the refusals made per request: an actual CORS request from an origin not allowed, a refused access
token (401/403) and an unknown Host (400); once per request, and nothing called while nobody listens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import backend_guard as bg
from backend_guard import asgi as bg_asgi
from backend_guard import events
from backend_guard import wsgi as bg_wsgi
from backend_guard.events import Event

from .test_cors_middleware import call, make_asgi_app, make_wsgi_app, wsgi_call

SECRET = "refusal-events-secret-of-32-byte"
APP = "https://app.example"
EVIL = "https://evil.example"


@pytest.fixture
def seen() -> Iterator[list[Event]]:
    found: list[Event] = []
    with events.subscribe(found.append):
        yield found


def refused(found: list[Event]) -> list[tuple[str, dict[str, Any]]]:
    return [(e.name, dict(e.fields)) for e in found]


# -- CORS: an actual request from an origin not allowed -------------------------------------------------------------


async def test_an_actual_request_from_a_refused_origin_is_one_event(seen: list[Event]) -> None:
    app = bg_asgi.CORSMiddleware(make_asgi_app(), policy=bg.CORSPolicy(allow_origins=[APP]))
    await call(app, "POST", headers=[("Host", "api.example"), ("Origin", APP)])
    await call(app, "GET", headers=[("Host", "api.example")])  # no Origin: no CORS request
    await call(app, "POST", headers=[("Host", "api.example"), ("Origin", "https://api.example")])  # same origin
    await call(app, "POST", headers=[("Origin", "https://x.example"), ("Sec-Fetch-Site", "same-origin")])
    assert seen == []
    status, headers, _ = await call(app, "POST", headers=[("Host", "api.example"), ("Origin", EVIL + "\n")])
    assert status == 200  # served: the browser withholds the response
    assert not any(k.lower().startswith("access-control-") for k, _ in headers)
    assert refused(seen) == [("cors.refused", {"reason": "origin", "origin": EVIL + "\\n", "preflight": False})]


async def test_a_route_policy_and_a_path_scoped_policy_also_publish_once(seen: list[Event]) -> None:
    scoped = bg_asgi.CORSMiddleware(
        make_asgi_app(), policy=[bg.CORSPolicy(allow_origins=[APP], paths=["/api/"]), bg.CORSPolicy()]
    )
    await call(scoped, "GET", "/api/x", headers=[("Origin", EVIL)])
    own = bg_asgi.CORSMiddleware(make_asgi_app(override=bg.CORSPolicy(allow_origins=[EVIL])), policy=bg.CORSPolicy())
    await call(own, "GET", headers=[("Origin", EVIL)])  # the route allows it: no event
    refusing = bg_asgi.CORSMiddleware(
        make_asgi_app(override=bg.CORSPolicy(allow_origins=[APP])), policy=bg.CORSPolicy(allow_origins=[EVIL])
    )
    await call(refusing, "GET", headers=[("Origin", EVIL)])  # the route refuses it
    assert [e.fields["origin"] for e in seen] == [EVIL, EVIL]


async def test_the_fused_guard_publishes_a_cors_refusal_once(seen: list[Event]) -> None:
    settings = bg.GuardSettings(cors={"allow_origins": [APP]}, errors={"enabled": True})
    app = bg_asgi.Guard(make_asgi_app(headers=[(b"x-app", b"1")]), settings)
    await call(app, "GET", headers=[("Host", "api.example"), ("Origin", EVIL)])
    await call(app, "GET", headers=[("Host", "api.example"), ("Origin", APP)])
    assert [e.name for e in seen] == ["cors.refused"]


def test_both_response_steps_of_one_request_publish_once(seen: list[Event]) -> None:
    """A Guard may ask a layer's ``appended`` and then, when another layer must merge, its ``on_response_start``."""
    layer = bg_asgi.CORSMiddleware(make_asgi_app(), policy=bg.CORSPolicy(allow_origins=[APP]))
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"origin", EVIL.encode())]}
    context = layer.on_request(scope)
    layer.appended(context, 200, [])  # type: ignore[arg-type]
    layer.on_response_start(context, 200, [])  # type: ignore[arg-type]
    assert [e.name for e in seen] == ["cors.refused"]


def test_the_wsgi_cors_middleware_publishes_a_refused_origin_once(seen: list[Event]) -> None:
    app = bg_wsgi.CORSMiddleware(make_wsgi_app(), policy=bg.CORSPolicy(allow_origins=[APP]))
    wsgi_call(app, "POST", headers={"Host": "api.example", "Origin": APP})
    wsgi_call(app, "POST", headers={"Host": "api.example", "Origin": "https://api.example"})
    wsgi_call(app, "POST", headers={"Origin": EVIL, "Sec-Fetch-Site": "same-origin"})
    assert seen == []
    wsgi_call(app, "POST", headers={"Host": "api.example", "Origin": EVIL})
    assert refused(seen) == [("cors.refused", {"reason": "origin", "origin": EVIL, "preflight": False})]


def test_the_fused_wsgi_guard_publishes_a_cors_refusal_once_per_request(seen: list[Event]) -> None:
    # the WSGI Guard appends the CORS answer through the layer's cached ``appended`` step: a refusal found there
    # (the same Origin twice: the second answer comes from the cache) is still published, once per request
    settings = bg.GuardSettings(cors={"allow_origins": [APP]})
    app = bg_wsgi.Guard(make_wsgi_app(), settings)
    wsgi_call(app, "GET", headers={"Host": "api.example", "Origin": APP})
    for _ in range(2):
        wsgi_call(app, "GET", headers={"Host": "api.example", "Origin": EVIL})
    assert [e.name for e in seen] == ["cors.refused", "cors.refused"]


async def test_nothing_is_called_while_nobody_listens_to_cors(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused origin's request costs no event work when no callback wants CORS events (another part's may)."""
    from backend_guard.asgi import _cors as asgi_cors
    from backend_guard.wsgi import _cors as wsgi_cors

    def boom(*args: Any) -> None:
        raise AssertionError("an event was built while nobody listens")

    monkeypatch.setattr(asgi_cors, "actual_refused", boom)
    monkeypatch.setattr(wsgi_cors, "actual_refused", boom)
    with events.subscribe(lambda e: None, parts=["lockout"]):
        app = bg_asgi.CORSMiddleware(make_asgi_app(), policy=bg.CORSPolicy(allow_origins=[APP]))
        assert (await call(app, headers=[("Origin", EVIL)]))[0] == 200
        wsgi = bg_wsgi.CORSMiddleware(make_wsgi_app(), policy=bg.CORSPolicy(allow_origins=[APP]))
        assert wsgi_call(wsgi, headers={"Origin": EVIL})[0] == "200 OK"


# -- tokens: a refused access token ---------------------------------------------------------------------------------


def _token_app(tm: bg.TokenManager) -> Starlette:
    @tm.require_auth(scopes=["admin"])
    async def admin(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/admin", admin)])


async def test_a_refused_access_token_is_an_event_with_its_code_never_the_token(seen: list[Event]) -> None:
    clock = [1_800_000_000.0]
    tm = bg.TokenManager(SECRET, "HS256", issuer="https://i", audience="a", clock=lambda: clock[0])
    good = tm.issue("user-42", {"scope": "admin"}).access_token
    weak = tm.issue("user-42", {"scope": "read"}).access_token
    transport = httpx.ASGITransport(app=_token_app(tm))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/admin", headers={"Authorization": f"Bearer {good}"})).status_code == 200
        assert (await client.get("/admin")).status_code == 401
        assert (await client.get("/admin", headers={"Authorization": f"Bearer {good}x"})).status_code == 401
        assert (await client.get("/admin", headers={"Authorization": f"Bearer {weak}"})).status_code == 403
        clock[0] += 3600
        assert (await client.get("/admin", headers={"Authorization": f"Bearer {good}"})).status_code == 401
    assert refused(seen) == [
        ("tokens.refused", {"reason": "unauthenticated", "status": 401}),
        ("tokens.refused", {"reason": "invalid-token", "status": 401}),
        ("tokens.refused", {"reason": "forbidden", "status": 403}),
        ("tokens.refused", {"reason": "token-expired", "status": 401}),
    ]
    assert all(good not in str(e.as_dict()) and "user-42" not in str(e.as_dict()) for e in seen)


# -- hosts: an unknown Host -----------------------------------------------------------------------------------------


async def test_an_unknown_host_is_an_event_and_an_https_redirect_is_not(seen: list[Event]) -> None:
    app = bg_asgi.TrustedHostMiddleware(make_asgi_app(), policy=["api.example"])
    assert (await call(app, headers=[("Host", "api.example")]))[0] == 200
    assert (await call(app, headers=[("Host", "evil.example\x1b[2J")]))[0] == 400
    assert (await call(app, headers=[("Host", "api.example"), ("Host", "evil.example")]))[0] == 400
    assert (await call(app))[0] == 400
    redirect = bg_asgi.HTTPSRedirectMiddleware(make_asgi_app())
    scope_status = (await call(redirect, headers=[("Host", "api.example")]))[0]
    assert scope_status in (301, 308, 200)
    assert refused(seen) == [
        ("hosts.refused", {"reason": "unknown", "host": "evil.example\\x1b[2J"}),
        ("hosts.refused", {"reason": "several", "host": "api.example"}),
        ("hosts.refused", {"reason": "missing", "host": None}),
    ]


def test_the_wsgi_trusted_host_middleware_publishes_too(seen: list[Event]) -> None:
    app = bg_wsgi.TrustedHostMiddleware(make_wsgi_app(), policy=["api.example"])
    assert wsgi_call(app, headers={"Host": "api.example"})[0] == "200 OK"
    assert wsgi_call(app, headers={"Host": "evil.example"})[0].startswith("400")
    assert refused(seen) == [("hosts.refused", {"reason": "unknown", "host": "evil.example"})]


def test_the_new_names_are_counted_by_the_otel_counter() -> None:
    pytest.importorskip("opentelemetry.sdk.metrics")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

    from backend_guard import otel

    reader = InMemoryMetricReader()
    otel.instrument(MeterProvider(metric_readers=[reader]))
    try:
        app = bg_wsgi.TrustedHostMiddleware(make_wsgi_app(), policy=["api.example"])
        wsgi_call(app, headers={"Host": "evil.example"})
        events.emit("tokens", "tokens.refused", reason="invalid-token", status=401)
    finally:
        otel.uninstrument()
    data = reader.get_metrics_data()
    assert data is not None
    points = [
        dict(point.attributes or {})
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
        if isinstance(point, NumberDataPoint)
    ]
    assert {p["backend_guard.event"] for p in points} == {"hosts.refused", "tokens.refused"}
    assert all(set(p) == {"backend_guard.event", "backend_guard.part", "backend_guard.outcome"} for p in points)


# -- CSRF: only a request actually refused is an event ------------------------------------------------------------


async def test_a_cross_site_request_to_an_exempt_path_or_view_is_no_csrf_event(seen: list[Event]) -> None:
    """An exempt path (ASGI and WSGI) and a ``csrf_exempt`` Starlette endpoint let the request through: no
    ``csrf.refused`` (it was a false alarm); a refused request is still one event."""

    @bg.csrf.csrf_exempt
    async def hook(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hook")

    routed = bg_asgi.CrossOriginProtectionMiddleware(Starlette(routes=[Route("/hook", hook, methods=["POST"])]))
    asgi = bg_asgi.CrossOriginProtectionMiddleware(make_asgi_app(), exempt_paths=["/hooks/"])
    wsgi = bg_wsgi.CrossOriginProtectionMiddleware(make_wsgi_app(), exempt_paths=["/hooks/"])
    assert (await call(routed, "POST", "/hook", headers=[("Origin", EVIL)]))[0] == 200
    assert (await call(asgi, "POST", "/hooks/stripe", headers=[("Origin", EVIL)]))[0] == 200
    assert wsgi_call(wsgi, "POST", "/hooks/stripe", headers={"Origin": EVIL})[0].startswith("200")
    assert seen == []
    assert (await call(asgi, "POST", "/transfer", headers=[("Sec-Fetch-Site", "cross-site")]))[0] == 403
    assert wsgi_call(wsgi, "POST", "/transfer", headers={"Origin": EVIL, "Host": "api.example"})[0].startswith("403")
    assert refused(seen) == [
        ("csrf.refused", {"rule": "fetch-cross-site", "websocket": False}),
        ("csrf.refused", {"rule": "origin-mismatch", "websocket": False}),
    ]
