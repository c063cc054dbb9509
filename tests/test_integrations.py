"""The framework integrations' own promises, beyond the shared example suite (tests/test_examples.py).

FastAPI: the problem responses in OpenAPI (and ``install(openapi=False)``). Flask: ``g.request_id``, the Jinja
``csp_nonce()``, an app factory with ``Guard().init_app`` and settings from ``app.config``. Django:
``request.request_id``, the nonce context processor, decorated class-based and async views, and settings from
``settings.BACKEND_GUARD``. Each bad configuration fails at start-up with a message naming where it came from.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

import backend_guard as bg
import backend_guard.django as bg_django
import backend_guard.fastapi as bg_fastapi
import backend_guard.flask as bg_flask

ORIGIN = "https://app.example.com"
PROBLEM_STATUSES = ("422", "429", "500")
NONCE = re.compile(r"'nonce-([A-Za-z0-9+/_=-]+)'")


# -- FastAPI ---------------------------------------------------------------------------------------------------------


class Item(BaseModel):
    """A request body (at module level: FastAPI resolves the postponed annotation in the module)."""

    name: str


def _fastapi_app(**install_options: Any) -> Any:
    from fastapi import FastAPI

    app = FastAPI()
    bg_fastapi.install(app, bg.GuardSettings(), **install_options)
    limiter = bg.RateLimiter()

    @app.post("/items")
    @limiter.limit("5/minute")
    def create(item: Item) -> dict[str, str]:
        return {"name": item.name}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def test_fastapi_openapi_documents_problem_responses() -> None:
    schema = _fastapi_app().openapi()
    assert schema["components"]["schemas"]["Problem"] == bg_fastapi.PROBLEM_SCHEMA
    ref = {"$ref": "#/components/schemas/Problem"}
    for path, method in (("/items", "post"), ("/health", "get")):
        responses = schema["paths"][path][method]["responses"]
        for status in PROBLEM_STATUSES:
            assert responses[status]["content"] == {"application/problem+json": {"schema": ref}}, (path, status)
            assert responses[status]["description"]
        assert "200" in responses
        assert "401" not in responses  # no guard on these routes answers 401 or 403
        assert "403" not in responses
    # FastAPI's own 422 model is replaced, and the decorator's injected parameters stay out of the document.
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert "bg_request__" not in str(schema)
    assert "bg_response__" not in str(schema)
    assert schema["paths"]["/items"]["post"]["requestBody"]["content"]["application/json"]


def _listed_scopes(scopes: list[str]) -> list[str]:
    """The scopes this FastAPI lists in a route's requirement for an HTTP bearer scheme it was given them for."""
    from fastapi import FastAPI, Security
    from fastapi.security import HTTPBearer

    probe = FastAPI()
    requirement = Security(HTTPBearer(scheme_name="probe", auto_error=False), scopes=scopes)

    @probe.get("/p")
    def p(_: Any = requirement) -> None: ...

    listed: list[str] = probe.openapi()["paths"]["/p"]["get"]["security"][0]["probe"]
    return listed


def _fastapi_app_with_tokens() -> tuple[Any, bg.TokenManager]:
    from fastapi import Depends, FastAPI

    tm = bg.TokenManager(bg.generate_key("EdDSA")[0], issuer="https://auth.example", audience="api")
    app = FastAPI()
    bg_fastapi.install(app, bg.GuardSettings())

    @app.get("/open")
    async def open_route() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/me")
    @tm.require_auth()
    async def me() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/admin")
    @tm.require_auth(scopes=["admin"])
    def admin() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/reports")
    async def reports(claims: dict[str, Any] = Depends(tm.dependency(scopes="read"))) -> dict[str, Any]:  # noqa: B008
        return {"sub": claims["sub"]}

    @app.get("/profile")
    async def profile(claims: dict[str, Any] = Depends(tm.dependency())) -> dict[str, Any]:  # noqa: B008
        return {"sub": claims["sub"]}

    return app, tm


def test_fastapi_token_routes_declare_a_bearer_scheme_and_only_they_document_401_and_403() -> None:
    app, _ = _fastapi_app_with_tokens()
    schema = app.openapi()
    schemes = schema["components"]["securitySchemes"]
    assert list(schemes.values()) == [
        {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": schemes["bearerAuth"]["description"]}
    ]
    ops = {path: item["get"] for path, item in schema["paths"].items()}
    assert ops["/me"]["security"] == [{"bearerAuth": []}]
    # FastAPI lists a route's scopes for an HTTP scheme since its later releases; older ones only for OAuth2.
    assert ops["/admin"]["security"] == [{"bearerAuth": _listed_scopes(["admin"])}]
    assert ops["/reports"]["security"] == [{"bearerAuth": _listed_scopes(["read"])}]
    assert ops["/profile"]["security"] == [{"bearerAuth": []}]
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path in ("/me", "/admin", "/reports", "/profile"):
        assert ops[path]["responses"]["401"]["content"] == problem, path
    for path in ("/admin", "/reports"):  # scopes required: a token without them is a 403
        assert ops[path]["responses"]["403"]["content"] == problem, path
    for path in ("/me", "/profile"):
        assert "403" not in ops[path]["responses"], path
    assert "security" not in ops["/open"]
    assert "401" not in ops["/open"]["responses"]
    assert "403" not in ops["/open"]["responses"]
    assert "bg_bearer__" not in str(schema)


def test_fastapi_token_routes_still_check_the_token_the_authorize_button_sends() -> None:
    from fastapi.testclient import TestClient

    app, tm = _fastapi_app_with_tokens()
    reader = {"Authorization": f"Bearer {tm.issue(42, {'scope': ['read']}).access_token}"}
    with TestClient(app) as client:
        assert client.get("/me").status_code == 401
        assert client.get("/me", headers=reader).json() == {"ok": "yes"}
        assert client.get("/admin", headers=reader).status_code == 403
        assert client.get("/reports", headers=reader).json() == {"sub": "42"}
        assert client.get("/reports").status_code == 401
        assert client.get("/profile", headers={"Authorization": "Bearer nope"}).status_code == 401


class Credentials(BaseModel):
    username: str
    password: str


def test_fastapi_lockout_protected_login_routes_document_the_statuses_the_lockout_answers_with() -> None:
    from fastapi import Depends, FastAPI

    app = FastAPI()
    bg_fastapi.document_problem_responses(app, statuses=(500,))  # only what a guard adds beyond a 500
    lock = bg.Lockout()
    generic = bg.Lockout(generic=True, on_storage_error="allow", namespace="generic")

    @app.post("/login")
    @lock.protect()
    async def login(body: Credentials) -> dict[str, bool]:
        return {"ok": True}

    @app.post("/token")
    async def token(attempt: bg.Attempt = Depends(lock.dependency())) -> dict[str, bool]:  # noqa: B008
        return {"ok": True}

    @app.post("/quiet-login")
    @generic.protect()
    def quiet_login(body: Credentials) -> dict[str, bool]:
        return {"ok": True}

    @app.post("/header-login")
    @lock.protect(account=lambda call: call.view.header("x-account"))
    async def header_login() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/open")
    async def open_route(body: Credentials) -> dict[str, bool]:
        return {"ok": True}

    paths = app.openapi()["paths"]

    def documented(path: str) -> set[int]:
        responses = paths[path]["post"]["responses"]
        problem = {k for k, v in responses.items() if "application/problem+json" in v.get("content", {})}
        return {int(k) for k in problem}

    assert documented("/login") == {400, 413, 415, 429, 500, 503}
    assert documented("/token") == {400, 413, 415, 429, 500, 503}
    # generic mode: a locked account answers as a wrong password (401), and never 429, even in the document
    assert documented("/quiet-login") == {400, 401, 413, 415, 500}
    # the name comes from the app's own getter: no body is read, so no 413 or 415
    assert documented("/header-login") == {400, 429, 500, 503}
    assert documented("/open") == {500}


def test_fastapi_install_without_openapi_leaves_the_document_alone() -> None:
    schema = _fastapi_app(openapi=False).openapi()
    assert "Problem" not in schema.get("components", {}).get("schemas", {})
    for path_item in schema["paths"].values():
        for operation in path_item.values():
            assert "429" not in operation["responses"]
            assert "application/problem+json" not in str(operation["responses"])


def test_fastapi_install_exposes_its_parts_on_app_state() -> None:
    from fastapi.testclient import TestClient

    app = _fastapi_app()
    parts = app.state.backend_guard
    assert parts.rate_limit is False  # no rate_limit settings: the middleware is off, route decorators still work
    with TestClient(app) as client:
        r = client.post("/items", json={"name": 3})
        assert r.status_code == 422
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["errors"][0]["pointer"].startswith("/body")
        assert r.json()["request_id"] == r.headers["x-request-id"]


# -- Flask -----------------------------------------------------------------------------------------------------------

flask_guard = bg_flask.Guard()  # one extension object, many apps: the application-factory pattern


def _flask_factory(config: Any) -> Any:
    from flask import Flask, g, render_template_string

    app = Flask(__name__)
    app.config["BACKEND_GUARD"] = config
    flask_guard.init_app(app)

    @app.get("/rid")
    def rid() -> dict[str, Any]:
        return {"request_id": g.request_id}

    @app.get("/page")
    def page() -> str:
        return render_template_string('<script nonce="{{ csp_nonce() }}">go()</script>{{ g.csp_nonce }}')

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret-in-exception")

    return app


def test_flask_request_id_in_g_and_on_the_response() -> None:
    app = _flask_factory({})
    client = app.test_client()
    r = client.get("/rid")
    assert r.json is not None
    assert r.json["request_id"] == r.headers["X-Request-ID"]
    assert re.fullmatch(r"[A-Za-z0-9._:-]{8,128}", r.headers["X-Request-ID"])
    r = client.get("/rid", headers={"X-Request-ID": "trace-abc-123"})
    assert r.json == {"request_id": "trace-abc-123"}
    assert r.headers["X-Request-ID"] == "trace-abc-123"


def test_flask_jinja_csp_nonce_matches_the_header() -> None:
    app = _flask_factory({"secure_headers": {"preset": "web"}})
    client = app.test_client()
    r = client.get("/page")
    nonce = NONCE.search(r.headers["Content-Security-Policy"])
    assert nonce is not None
    assert r.text == f'<script nonce="{nonce.group(1)}">go()</script>{nonce.group(1)}'
    assert client.get("/page").text != r.text  # a new nonce per response


def test_flask_factory_one_extension_many_apps() -> None:
    first = _flask_factory({"cors": {"allow_origins": [ORIGIN]}})
    second = _flask_factory(bg.GuardSettings(cors={"allow_origins": ["https://other.example"]}))
    assert first.extensions["backend_guard"] is not second.extensions["backend_guard"]
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    ok = first.test_client().options("/rid", headers=preflight)
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    refused = second.test_client().options("/rid", headers=preflight)
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused.headers
    boom = first.test_client().get("/boom")
    assert boom.status_code == 500
    assert boom.headers["Content-Type"].startswith("application/problem+json")
    assert "secret-in-exception" not in boom.text


def test_flask_explicit_settings_win_over_app_config() -> None:
    from flask import Flask

    app = Flask(__name__)
    app.config["BACKEND_GUARD"] = {"corss": {}}  # would fail: the explicit settings are used instead
    parts = bg_flask.Guard(app, settings=bg.GuardSettings(secure_headers={"enabled": False})).parts
    assert parts is not None
    assert parts.secure_headers is None


@pytest.mark.parametrize(
    ("config", "error", "message"),
    [
        ({"corss": {"allow_origins": [ORIGIN]}}, bg.ConfigurationError, r"app\.config\['BACKEND_GUARD'\]: .*corss"),
        (
            {"cors": {"allow_origins": ["*"], "allow_credentials": True}},
            bg.ConfigurationError,
            r"app\.config\['BACKEND_GUARD'\]: .*cors.*allow_credentials",
        ),
        ({"rate_limit": {"default_limits": "lots"}}, bg.ConfigurationError, r"rate_limit\.default_limits.*'lots'"),
        ("cors=on", bg.ConfigurationError, r"must be a dict or a GuardSettings, not str"),
    ],
)
def test_flask_bad_config_fails_at_init_app(config: Any, error: type[Exception], message: str) -> None:
    from flask import Flask

    app = Flask(__name__)
    app.config["BACKEND_GUARD"] = config
    with pytest.raises(error, match=message):
        bg_flask.Guard().init_app(app)


#: A limit only the environment sets, for the apps below whose own settings set something else.
ENV_LIMIT = {"BACKEND_GUARD_RATE_LIMIT__DEFAULT_LIMITS": "2/minute", "BACKEND_GUARD_RATE_LIMIT__KEY": "ip"}


def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV_LIMIT.items():
        monkeypatch.setenv(name, value)


def test_flask_config_dict_takes_the_environment_variables_it_does_not_set(monkeypatch: pytest.MonkeyPatch) -> None:
    # app.config["BACKEND_GUARD"] with CORS alone ignored BACKEND_GUARD_RATE_LIMIT__* (and BACKEND_GUARD_STORE):
    # the app ran unlimited while the operator's environment (and backend-guard) said otherwise.
    _env(monkeypatch)
    app = _flask_factory({"cors": {"allow_origins": [ORIGIN]}})
    client = app.test_client()
    statuses = [client.get("/rid", headers={"Origin": ORIGIN}) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert statuses[2].headers["Access-Control-Allow-Origin"] == ORIGIN  # the dict's CORS, on the env's refusal


def test_asgi_guard_without_settings_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from backend_guard.asgi import Guard

    _env(monkeypatch)
    app = Guard(Starlette(routes=[Route("/", lambda request: PlainTextResponse("ok"))]))
    with TestClient(app) as client:
        assert [client.get("/").status_code for _ in range(3)] == [200, 200, 429]
    given = Guard(Starlette(routes=[Route("/", lambda request: PlainTextResponse("ok"))]), bg.GuardSettings())
    with TestClient(given) as client:  # a GuardSettings built in Python is taken whole
        assert [client.get("/").status_code for _ in range(3)] == [200, 200, 200]


# -- Django ----------------------------------------------------------------------------------------------------------

_tm = bg.TokenManager("django-integration-tests-secret-0123456789abcdef", "HS256", issuer="t", audience="t")
_limiter = bg.RateLimiter()


def _django_urls() -> Any:
    from django.http import HttpRequest, HttpResponse, JsonResponse
    from django.template import engines
    from django.urls import path
    from django.utils.decorators import method_decorator
    from django.views import View

    def rid(request: HttpRequest) -> HttpResponse:
        return JsonResponse({"request_id": request.request_id})

    def page(request: HttpRequest) -> HttpResponse:
        template = engines["django"].from_string('<script nonce="{{ csp_nonce }}">go()</script>')
        return HttpResponse(template.render(request=request))

    def quiet(request: HttpRequest) -> HttpResponse:
        template = engines["django"].from_string("no script here")
        return HttpResponse(template.render(request=request))

    class Items(View):  # type: ignore[misc]
        @_limiter.limit("2/minute")
        def get(self, request: HttpRequest) -> HttpResponse:
            return JsonResponse({"items": []})

    @method_decorator(_tm.require_auth(), name="dispatch")
    class Me(View):  # type: ignore[misc]
        def get(self, request: HttpRequest) -> HttpResponse:
            return JsonResponse({"sub": request.auth["sub"]})

    @_tm.require_auth()
    async def async_me(request: HttpRequest) -> HttpResponse:
        return JsonResponse({"sub": request.auth["sub"], "rid": request.request_id})

    @_limiter.limit("1/minute")
    async def async_limited(request: HttpRequest) -> HttpResponse:
        return JsonResponse({"ok": True})

    def boom(request: HttpRequest) -> HttpResponse:
        raise RuntimeError("secret-123")

    class URLs:
        urlpatterns = [
            path("rid", rid),
            path("page", page),
            path("quiet", quiet),
            path("items", Items.as_view()),
            path("me", Me.as_view()),
            path("async-me", async_me),
            path("async-limited", async_limited),
            path("boom", boom),
        ]

    return URLs


@pytest.fixture
def django_settings() -> Iterator[None]:
    """The test project's Django, with GuardMiddleware first and this file's URLs, for one test."""
    from django.test import override_settings

    from .django_app import setup

    setup()
    templates = [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "OPTIONS": {"context_processors": ["backend_guard.django.csp_nonce_context"]},
        }
    ]
    with override_settings(
        ROOT_URLCONF=_django_urls(),
        MIDDLEWARE=["backend_guard.django.GuardMiddleware"],
        BACKEND_GUARD={"secure_headers": {"preset": "web"}, "cors": {"allow_origins": [ORIGIN]}},
        TEMPLATES=templates,
        ALLOWED_HOSTS=["*"],
    ):
        yield


def test_django_request_id_on_the_request(django_settings: None) -> None:
    from django.test import Client

    client = Client()
    r = client.get("/rid")
    assert r.json()["request_id"] == r["X-Request-ID"]
    r = client.get("/rid", HTTP_X_REQUEST_ID="trace-dj-42")
    assert r.json() == {"request_id": "trace-dj-42"}
    assert r["X-Request-ID"] == "trace-dj-42"


def test_django_context_processor_nonce_matches_the_header(django_settings: None) -> None:
    from django.test import Client

    client = Client()
    r = client.get("/page")
    nonce = NONCE.search(r["Content-Security-Policy"])
    assert nonce is not None
    assert r.content.decode() == f'<script nonce="{nonce.group(1)}">go()</script>'
    quiet = client.get("/quiet")  # the nonce is made only when a template uses it
    assert quiet.status_code == 200
    assert "'nonce-" not in quiet["Content-Security-Policy"]


def test_django_class_based_views_with_decorators(django_settings: None) -> None:
    from django.test import Client

    client = Client(REMOTE_ADDR="203.0.113.21")
    assert [client.get("/items").status_code for _ in range(2)] == [200, 200]
    limited = client.get("/items", HTTP_ORIGIN=ORIGIN)
    assert limited.status_code == 429
    assert limited["Content-Type"].startswith("application/problem+json")
    assert limited.json()["request_id"] == limited["X-Request-ID"]
    assert int(limited["Retry-After"]) >= 1
    assert limited["Access-Control-Allow-Origin"] == ORIGIN  # the stack's headers on a decorator's refusal
    assert limited["X-Content-Type-Options"] == "nosniff"

    assert client.get("/me").status_code == 401
    token = _tm.issue("dj-user").access_token
    me = client.get("/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert me.json() == {"sub": "dj-user"}


async def test_django_async_views_under_asgi(django_settings: None) -> None:
    from django.test import AsyncClient

    client = AsyncClient()
    token = (await _tm.aissue("dj-async")).access_token
    r = await client.get("/async-me", headers={"Authorization": f"Bearer {token}", "X-Request-ID": "trace-async-1"})
    assert r.status_code == 200
    assert r.json() == {"sub": "dj-async", "rid": "trace-async-1"}
    assert r["X-Request-ID"] == "trace-async-1"
    unauth = await client.get("/async-me")
    assert unauth.status_code == 401
    assert unauth["WWW-Authenticate"].startswith("Bearer")
    assert unauth["Content-Type"].startswith("application/problem+json")
    other = AsyncClient(REMOTE_ADDR="198.51.100.9")
    assert (await other.get("/async-limited")).status_code == 200
    limited = await other.get("/async-limited")
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate-limited"


def test_django_settings_from_backend_guard(django_settings: None) -> None:
    from django.test import Client

    current = bg_django.settings()
    assert current.cors.allow_origins == [ORIGIN]
    assert current.secure_headers.preset == "web"
    r = Client().options("/rid", HTTP_ORIGIN=ORIGIN, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert r.status_code in (200, 204)
    assert r["Access-Control-Allow-Origin"] == ORIGIN


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ({"corss": {"allow_origins": [ORIGIN]}}, bg.ConfigurationError, r"settings\.BACKEND_GUARD: .*corss"),
        (
            {"cors": {"allow_origins": ["*"], "allow_credentials": True}},
            bg.ConfigurationError,
            r"settings\.BACKEND_GUARD: .*cors.*allow_credentials",
        ),
        ({"secure_headers": {"csp": "script-src self"}}, bg.ConfigurationError, r"settings\.BACKEND_GUARD: .*"),
        (["cors"], bg.ConfigurationError, r"settings\.BACKEND_GUARD must be a dict or a GuardSettings, not list"),
    ],
)
def test_django_bad_settings_fail_when_the_handler_is_built(value: Any, error: type[Exception], message: str) -> None:
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    from .django_app import setup

    setup()
    with override_settings(BACKEND_GUARD=value, MIDDLEWARE=["backend_guard.django.GuardMiddleware"]):
        with pytest.raises(error, match=message):
            bg_django.settings()
        with pytest.raises(error, match=message):
            WSGIHandler()


def test_django_settings_dict_takes_the_environment_variables_it_does_not_set(
    django_settings: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.test import Client, override_settings

    _env(monkeypatch)
    with override_settings(BACKEND_GUARD={"cors": {"allow_origins": [ORIGIN]}, "request_id": {"header": "X-Trace"}}):
        client = Client(REMOTE_ADDR="203.0.113.77")
        statuses = [client.get("/rid", HTTP_ORIGIN=ORIGIN) for _ in range(3)]
        assert [r.status_code for r in statuses] == [200, 200, 429]
        assert statuses[2]["Access-Control-Allow-Origin"] == ORIGIN
        assert "X-Trace" in statuses[0]


def test_django_settings_accepts_a_guard_settings_object() -> None:
    from django.test import override_settings

    from .django_app import setup

    setup()
    given = bg.GuardSettings(rate_limit={"default_limits": "10/second"})
    with override_settings(BACKEND_GUARD=given):
        assert bg_django.settings() is given
    with override_settings(BACKEND_GUARD=None):
        assert bg_django.settings() == bg.GuardSettings()


def test_fastapi_docs_pages_get_their_own_policy_and_other_routes_keep_the_strict_one() -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    import backend_guard.fastapi as bg_fastapi

    app = FastAPI()

    @app.get("/items")
    def items() -> list[int]:
        return [1]

    bg_fastapi.install(app)
    with TestClient(app) as client:
        docs = client.get("/docs")
        assert docs.status_code == 200
        csp = docs.headers["content-security-policy"]
        assert "https://cdn.jsdelivr.net" in csp
        assert "frame-ancestors 'none'" in csp
        assert client.get("/redoc").headers["content-security-policy"] == csp
        strict = client.get("/items").headers["content-security-policy"]
        assert "cdn.jsdelivr.net" not in strict
        assert "default-src 'none'" in strict
        assert client.get("/openapi.json").status_code == 200


def _assert_500_carries_everything(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 500
    lowered = {k.lower(): v for k, v in headers.items()}
    assert lowered["content-type"].startswith("application/problem+json")
    assert lowered["x-content-type-options"] == "nosniff"
    assert "content-security-policy" in lowered
    assert lowered["access-control-allow-origin"] == "https://app.example.com"
    assert "x-request-id" in lowered
    assert b"secret-123" not in body


_CORS = {"cors": {"allow_origins": ["https://app.example.com"]}}


def test_fastapi_install_500_carries_every_header() -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    import backend_guard as bg
    import backend_guard.fastapi as bg_fastapi

    app = FastAPI()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret-123")

    bg_fastapi.install(app, bg.GuardSettings(**_CORS))
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/boom", headers={"Origin": "https://app.example.com"})
        _assert_500_carries_everything(r.status_code, dict(r.headers), r.content)


def test_flask_guard_500_carries_every_header() -> None:
    from flask import Flask

    import backend_guard.flask as bg_flask

    app = Flask(__name__)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret-123")

    app.config["BACKEND_GUARD"] = _CORS
    bg_flask.Guard(app)
    r = app.test_client().get("/boom", headers={"Origin": "https://app.example.com"})
    _assert_500_carries_everything(r.status_code, dict(r.headers), r.data)


def test_django_guard_middleware_500_carries_every_header(django_settings: None) -> None:
    from django.test import Client

    r = Client(raise_request_exception=False).get("/boom", HTTP_ORIGIN=ORIGIN, HTTP_ACCEPT="application/json")
    _assert_500_carries_everything(r.status_code, dict(r.items()), r.content)


def test_django_one_class_per_part(django_settings: None) -> None:
    from django.test import Client, override_settings

    parts = [
        "backend_guard.django.RequestIdMiddleware",
        "backend_guard.django.SecureHeadersMiddleware",
        "backend_guard.django.CORSMiddleware",
    ]
    with override_settings(MIDDLEWARE=parts):
        r = Client().get("/rid", HTTP_ORIGIN=ORIGIN)
        assert r.status_code == 200
        assert r["X-Content-Type-Options"] == "nosniff"
        assert r["Access-Control-Allow-Origin"] == ORIGIN
        assert r.json()["request_id"] == r["X-Request-ID"]
    with override_settings(MIDDLEWARE=["backend_guard.django.SecureHeadersMiddleware"]):
        r = Client().get("/quiet", HTTP_ORIGIN=ORIGIN)
        assert "Access-Control-Allow-Origin" not in r
        assert "X-Request-ID" not in r
        assert "Content-Security-Policy" in r
    rules = {"rate_limit": {"rules": [{"path": "/quiet", "limits": "1/minute"}]}}
    with override_settings(MIDDLEWARE=["backend_guard.django.RateLimitMiddleware"], BACKEND_GUARD=rules):
        client = Client()
        assert client.get("/quiet").status_code == 200
        limited = client.get("/quiet")
        assert limited.status_code == 429
        assert "Content-Security-Policy" not in limited
