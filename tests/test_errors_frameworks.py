"""Error documents and request ids through real servers: uvicorn (FastAPI, Starlette, Django ASGI) and
waitress (Flask, Django WSGI)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from backend_guard.asgi._errors import ErrorEnvelopeMiddleware
from backend_guard.asgi._request_id import RequestIdMiddleware
from backend_guard.exceptions import RateLimited
from backend_guard.integrations._errors_fastapi import install_fastapi_error_handlers
from backend_guard.integrations._errors_flask import install_flask_error_handlers, install_flask_request_id

from .servers import run_asgi, run_wsgi

pytestmark = pytest.mark.server

SECRET = "secret-123"
PROBLEM = "application/problem+json"


class User(BaseModel):  # module level: FastAPI resolves the route's string annotations here
    email: str
    password: str


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "backend_guard.errors"]


def assert_secret_500(response: httpx.Response, caplog: pytest.LogCaptureFixture, route: str) -> None:
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    doc = response.json()
    assert doc["status"] == 500
    rid = response.headers["x-request-id"]
    assert doc["request_id"] == rid
    assert SECRET not in response.text
    assert "Traceback" not in response.text
    (record,) = [r for r in error_records(caplog) if getattr(r, "request_id", None) == rid]
    assert record.http_route == route  # type: ignore[attr-defined]
    assert record.http_method == "GET"  # type: ignore[attr-defined]
    assert record.exc_info is not None
    assert "tok-abc" not in caplog.text  # the Authorization header never reaches the log


# --- FastAPI ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fastapi_url() -> Iterator[str]:
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import StreamingResponse

    app = FastAPI()
    install_fastapi_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)

    @app.get("/boom/{item}")
    def boom(item: int) -> None:
        raise RuntimeError(SECRET)

    @app.post("/users")
    def create(user: User) -> dict[str, str]:
        return {"email": user.email}

    @app.get("/conflict")
    def conflict() -> None:
        raise HTTPException(409, "Already there", headers={"X-Extra": "1"})

    @app.get("/limited")
    async def limited() -> None:
        raise RateLimited(retry_after=4.2)

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def body() -> Any:
            yield b"first chunk\n"
            raise RuntimeError(SECRET)

        return StreamingResponse(body(), media_type="text/plain")

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    with run_asgi(app) as url:
        yield url


def test_fastapi_500(fastapi_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        r = httpx.get(fastapi_url + "/boom/7", headers={"Authorization": "Bearer tok-abc"})
    assert_secret_500(r, caplog, "/boom/{item}")


def test_fastapi_422_has_pointer_not_input(fastapi_url: str) -> None:
    r = httpx.post(fastapi_url + "/users", json={"password": "hunter2"})
    assert r.status_code == 422
    doc = r.json()
    assert doc["status"] == 422
    assert [e["pointer"] for e in doc["errors"]] == ["/body/email"]
    assert "hunter2" not in r.text
    assert "input" not in r.text
    assert "ctx" not in r.text
    assert doc["request_id"] == r.headers["x-request-id"]


# --- 422 bodies never echo what was submitted ---------------------------------------------------------------
# Validators that put the submitted values in their messages, each its own way: a model-level validator (its
# input is the whole dict), a field validator that transforms the value before quoting it, a custom error whose
# ctx carries the value, an assert quoting it, a validator of the email. None of it may reach the body.


class SignupModelCheck(BaseModel):
    email: str
    password: str

    @model_validator(mode="before")
    @classmethod
    def whole_payload(cls, data: Any) -> Any:
        raise ValueError(f"cannot accept {data!r}")


class SignupUpperCheck(BaseModel):
    email: str
    password: str

    @field_validator("password")
    @classmethod
    def shout(cls, value: str) -> str:
        raise ValueError(f"{value.upper()} is too weak, {value.lower()} too")


class SignupCustomCheck(BaseModel):
    email: str
    password: str

    @field_validator("password")
    @classmethod
    def custom(cls, value: str) -> str:
        raise PydanticCustomError("weak_password", "password {value} is weak", {"value": value, "upper": value.upper()})


class SignupAssertCheck(BaseModel):
    email: str
    password: str

    @field_validator("password")
    @classmethod
    def asserted(cls, value: str) -> str:
        assert value == "expected", f"{value!r} is not the expected password"
        return value


class SignupAfterCheck(BaseModel):
    email: str
    password: str

    @model_validator(mode="after")
    def taken(self) -> SignupAfterCheck:
        raise ValueError(f"{self.email.upper()} is already registered ({self.password[::-1]!r} reversed)")


class SignupShortCheck(BaseModel):
    email: str
    password: Annotated[str, Field(min_length=1000)]


class StrictLogin(BaseModel):
    """A schema that refuses undeclared fields: the name of one is the client's text, not the schema's."""

    model_config = ConfigDict(extra="forbid")
    email: str
    password: str


class ShortKeys(BaseModel):
    """Keys of this mapping must be short: a refused key is the client's text."""

    scores: dict[Annotated[str, Field(max_length=8)], int]


SIGNUP_CHECKS = {
    "model": SignupModelCheck,
    "upper": SignupUpperCheck,
    "custom": SignupCustomCheck,
    "assert": SignupAssertCheck,
    "after": SignupAfterCheck,
    "short": SignupShortCheck,
}


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    from fastapi import FastAPI

    app = FastAPI()
    install_fastapi_error_handlers(app)

    @app.post("/model")
    def model(body: SignupModelCheck) -> None: ...

    @app.post("/upper")
    def upper(body: SignupUpperCheck) -> None: ...

    @app.post("/custom")
    def custom(body: SignupCustomCheck) -> None: ...

    @app.post("/assert")
    def asserted(body: SignupAssertCheck) -> None: ...

    @app.post("/after")
    def after(body: SignupAfterCheck) -> None: ...

    @app.post("/short")
    def short(body: SignupShortCheck) -> None: ...

    @app.post("/strict")
    def strict(body: StrictLogin) -> None: ...

    @app.post("/keys")
    def keys(body: ShortKeys) -> None: ...

    @app.post("/inside")
    def inside() -> None:
        # Validation inside a route (a pydantic ValidationError, not FastAPI's RequestValidationError).
        SignupUpperCheck.model_validate({"email": "x", "password": ECHO_SECRET})

    with run_asgi(app) as url:
        yield url


ECHO_SECRET = "Hunter2-Correct-Horse"


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def assert_no_echo(response: httpx.Response, *secrets: str) -> None:
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    texts = [response.text, *_strings(response.json())]
    for secret in secrets:
        for form in {secret, secret.upper(), secret.lower(), repr(secret)[1:-1], secret[::-1]}:
            assert not any(form in text for text in texts), (form, response.text)


@pytest.mark.parametrize("route", sorted(SIGNUP_CHECKS))
def test_422_bodies_never_echo_the_submitted_password_or_email(echo_url: str, route: str) -> None:
    email, password = "alice.secret@example.com", ECHO_SECRET
    r = httpx.post(f"{echo_url}/{route}", json={"email": email, "password": password})
    assert_no_echo(r, email, password)
    doc = r.json()
    assert doc["code"] == "validation-failed"
    for entry in doc["errors"]:
        assert set(entry) == {"pointer", "detail", "type"}
    for member in ('"input"', '"ctx"', '"url"', '"msg"', "errors.pydantic.dev"):
        assert member not in r.text


def test_422_entries_carry_a_fixed_message_per_error_type(echo_url: str) -> None:
    r = httpx.post(f"{echo_url}/custom", json={"email": "e@example.com", "password": ECHO_SECRET})
    assert r.json()["errors"] == [{"pointer": "/body/password", "detail": "Invalid value.", "type": "weak_password"}]
    r = httpx.post(f"{echo_url}/upper", json={"password": ECHO_SECRET})
    assert {(e["pointer"], e["detail"], e["type"]) for e in r.json()["errors"]} == {
        ("/body/email", "Field required", "missing"),
        ("/body/password", "Invalid value.", "value_error"),
    }
    # A constraint of the schema may be stated: it is the app's, not the input's.
    r = httpx.post(f"{echo_url}/short", json={"email": "e@example.com", "password": ECHO_SECRET})
    assert r.json()["errors"] == [
        {
            "pointer": "/body/password",
            "detail": "String should have at least 1000 characters",
            "type": "string_too_short",
        }
    ]


def test_validation_inside_a_route_never_echoes_either(echo_url: str) -> None:
    assert_no_echo(httpx.post(f"{echo_url}/inside"), ECHO_SECRET)


def test_a_key_the_schema_refused_never_reaches_a_422_pointer(echo_url: str) -> None:
    # A password pasted as a field name (extra="forbid"), and a mapping key that failed its own validation:
    # the pointer stops at the object that holds the key, and the type says what was wrong with it.
    r = httpx.post(f"{echo_url}/strict", json={"email": "e@example.com", "password": "x", ECHO_SECRET: 1})
    assert_no_echo(r, ECHO_SECRET)
    assert r.json()["errors"] == [
        {"pointer": "/body", "detail": "Extra inputs are not permitted", "type": "extra_forbidden"}
    ]
    r = httpx.post(f"{echo_url}/keys", json={"scores": {"ok": 1, ECHO_SECRET: 2}})
    assert_no_echo(r, ECHO_SECRET)
    assert r.json()["errors"] == [
        {"pointer": "/body/scores", "detail": "String should have at most 8 characters", "type": "string_too_long"}
    ]
    # Declared field names still make the pointer.
    r = httpx.post(f"{echo_url}/strict", json={"email": "e@example.com"})
    assert [e["pointer"] for e in r.json()["errors"]] == ["/body/password"]


@given(
    secret=st.text(alphabet=st.characters(exclude_categories=["Cs", "Cc"]), min_size=6, max_size=40).map("Zq".__add__),
    route=st.sampled_from(sorted(SIGNUP_CHECKS)),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_no_submitted_secret_ever_reaches_a_422_body(echo_url: str, secret: str, route: str) -> None:
    email = secret + "@example.com"
    r = httpx.post(f"{echo_url}/{route}", json={"email": email, "password": secret})
    assert_no_echo(r, secret, email)


@pytest.mark.parametrize(
    "content", [b'{"email": "a@b", "password": ', b'{"email": "\xff\xfe", "password": "x"}', b"[" * 5000]
)
def test_fastapi_malformed_bodies_are_clean_problems(fastapi_url: str, content: bytes) -> None:
    r = httpx.post(fastapi_url + "/users", content=content, headers={"content-type": "application/json"})
    assert r.status_code in (400, 422)
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["status"] == r.status_code
    assert "\\ufffd" not in r.text


def test_fastapi_http_exception_headers_survive(fastapi_url: str) -> None:
    r = httpx.get(fastapi_url + "/conflict")
    assert r.status_code == 409
    assert r.headers["x-extra"] == "1"
    assert r.json()["detail"] == "Already there"
    r = httpx.get(fastapi_url + "/limited")
    assert (r.status_code, r.headers["retry-after"], r.json()["retry_after"]) == (429, "5", 5)


def test_fastapi_own_404_and_405(fastapi_url: str) -> None:
    r = httpx.get(fastapi_url + "/nope")
    assert (r.status_code, r.headers["content-type"], r.json()["status"]) == (404, PROBLEM, 404)
    r = httpx.delete(fastapi_url + "/ok")
    assert (r.status_code, r.headers["allow"], r.json()["status"]) == (405, "GET", 405)


def test_fastapi_stream_error_closes_connection(fastapi_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR), httpx.Client() as client:
        with client.stream("GET", fastapi_url + "/stream") as r:
            assert r.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                for _ in r.iter_bytes():
                    pass
        # the server keeps serving
        assert client.get(fastapi_url + "/ok").json() == {"ok": True}
    records = error_records(caplog)
    assert len(records) == 1
    assert records[0].request_id == r.headers["x-request-id"]  # type: ignore[attr-defined]


CTX_SECRET = "SECRET-" + "CTX"  # built, so the traceback's source lines do not show it either


class Session(BaseModel):  # a response model the routes below return the wrong data through
    token: int
    user_id: int


@pytest.fixture(scope="module")
def response_model_url() -> Iterator[str]:
    from fastapi import FastAPI
    from pydantic import ValidationError

    app = FastAPI()
    install_fastapi_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)

    @app.get("/session/{sid}", response_model=Session)
    def session(sid: int) -> Any:
        return {"token": "SECRET-RESP"}  # token is not an int, user_id missing: the input is the whole dict

    @app.get("/wrapped")
    def wrapped() -> None:
        try:
            User.model_validate({"email": [CTX_SECRET], "password": 7})
        except ValidationError as exc:
            raise RuntimeError("could not load the user") from exc

    @app.get("/context")
    def context() -> None:
        try:
            Session.model_validate({"token": CTX_SECRET})
        except ValidationError:
            raise LookupError("no session")  # noqa: B904 - the validation error is the implicit __context__

    with run_asgi(app) as url:
        yield url


def test_a_response_that_fails_its_model_is_a_500_whose_log_never_shows_the_returned_data(
    response_model_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        r = httpx.get(response_model_url + "/session/3")
    assert (r.status_code, r.headers["content-type"], r.json()["code"]) == (500, PROBLEM, "internal-error")
    assert "SECRET-RESP" not in r.text
    (record,) = [rec for rec in error_records(caplog) if getattr(rec, "request_id", None) == r.headers["x-request-id"]]
    assert record.http_route == "/session/{sid}"  # type: ignore[attr-defined]
    assert "SECRET-RESP" not in caplog.text
    # What failed is still there: the class, each pointer and error type, and the frames of the traceback.
    assert "Unhandled ResponseValidationError in GET /session/{sid}" in caplog.text
    assert "fastapi.exceptions.ResponseValidationError: 2 validation errors" in caplog.text
    assert "/response/token int_parsing" in caplog.text
    assert "/response/user_id missing" in caplog.text
    assert "in serialize_response" in caplog.text


@pytest.mark.parametrize("route", ["/wrapped", "/context"])
def test_a_validation_error_behind_the_exception_never_shows_its_input_in_the_log(
    response_model_url: str, caplog: pytest.LogCaptureFixture, route: str
) -> None:
    with caplog.at_level(logging.ERROR):
        r = httpx.get(response_model_url + route)
    assert r.status_code == 500
    assert CTX_SECRET not in caplog.text
    assert "pydantic_core._pydantic_core.ValidationError" in caplog.text  # the chained error is still shown
    assert "could not load the user" in caplog.text or "no session" in caplog.text  # the app's own message stays


# --- Starlette, plain: only the ASGI middlewares ------------------------------------------------------------


@pytest.fixture(scope="module")
def starlette_url() -> Iterator[str]:
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    async def boom(request: Request) -> None:
        raise RuntimeError(SECRET)

    async def conflict(request: Request) -> None:
        raise HTTPException(409, headers={"X-Extra": "1"})

    async def stream(request: Request) -> StreamingResponse:
        async def body() -> Any:
            yield b"first chunk\n"
            raise RuntimeError(SECRET)

        return StreamingResponse(body())

    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse({"request_id": request.state.request_id})

    app = Starlette(
        routes=[
            Route("/boom", boom),
            Route("/conflict", conflict),
            Route("/stream", stream),
            Route("/whoami", whoami),
        ]
    )
    app.add_middleware(ErrorEnvelopeMiddleware)
    app.add_middleware(RequestIdMiddleware)
    starts: list[int] = []

    async def recorder(scope: Any, receive: Any, send: Any) -> None:
        async def recording_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                starts.append(message["status"])
            await send(message)

        await app(scope, receive, recording_send)

    recorder.starts = starts  # type: ignore[attr-defined]
    with run_asgi(recorder) as url:
        yield url


def test_starlette_500(starlette_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        r = httpx.get(starlette_url + "/boom", headers={"Authorization": "Bearer tok-abc", "Cookie": "s=tok-abc"})
    assert_secret_500(r, caplog, "/boom")


def test_starlette_plain_text_errors_become_problems(starlette_url: str) -> None:
    r = httpx.get(starlette_url + "/conflict")
    assert (r.status_code, r.headers["x-extra"], r.headers["content-type"]) == (409, "1", PROBLEM)
    r = httpx.post(starlette_url + "/whoami")
    assert (r.status_code, r.json()["status"]) == (405, 405)
    assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD"}
    r = httpx.get(starlette_url + "/nope", headers={"Accept": "text/html"})
    assert (r.status_code, r.text) == (404, "Not Found")  # a browser keeps the framework's page


def test_starlette_request_id_in_state_and_header(starlette_url: str) -> None:
    r = httpx.get(starlette_url + "/whoami", headers={"X-Request-ID": "abc:1"})
    assert r.json() == {"request_id": "abc:1"}
    assert r.headers["x-request-id"] == "abc:1"
    r = httpx.get(starlette_url + "/whoami", headers={"X-Request-ID": "x" * 129})
    assert r.json()["request_id"] == r.headers["x-request-id"] != "x" * 129


def test_starlette_stream_error_single_start(starlette_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR), httpx.Client() as client:
        with client.stream("GET", starlette_url + "/stream") as r, pytest.raises(httpx.RemoteProtocolError):
            for _ in r.iter_bytes():
                pass
        assert client.get(starlette_url + "/whoami").status_code == 200
    assert len(error_records(caplog)) == 1


# --- Flask (waitress) ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flask_url() -> Iterator[str]:
    from flask import Flask, Response, abort, g, request

    app = Flask(__name__)
    install_flask_error_handlers(app)
    install_flask_request_id(app)

    @app.get("/boom/<int:item>")
    def boom(item: int) -> None:
        raise RuntimeError(SECRET)

    @app.post("/users")
    def create() -> dict[str, str]:
        return {"email": User.model_validate(request.get_json()).email}

    @app.post("/strict")
    def strict() -> dict[str, str]:
        return {"email": StrictLogin.model_validate(request.get_json()).email}

    @app.get("/conflict")
    def conflict() -> None:
        abort(Response("x", status=409, headers={"X-Extra": "1"}))

    @app.get("/limited")
    def limited() -> None:
        raise RateLimited(retry_after=5)

    @app.get("/stream")
    def stream() -> Response:
        def body() -> Any:
            yield b"first chunk\n"
            raise RuntimeError(SECRET)

        return Response(body())

    @app.get("/whoami")
    def whoami() -> dict[str, str]:
        return {"request_id": g.request_id}

    with run_wsgi(app) as url:
        yield url


def test_flask_500(flask_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        r = httpx.get(flask_url + "/boom/3", headers={"Authorization": "Bearer tok-abc"})
    assert_secret_500(r, caplog, "/boom/<int:item>")
    assert not [rec for rec in caplog.records if rec.name.startswith("flask")]  # logged once, by us


def test_flask_422_and_malformed_json(flask_url: str) -> None:
    r = httpx.post(flask_url + "/users", json={"password": "hunter2"})
    assert r.status_code == 422
    assert [e["pointer"] for e in r.json()["errors"]] == ["/email"]
    assert "hunter2" not in r.text
    r = httpx.post(flask_url + "/users", content=b'{"email": \xff', headers={"content-type": "application/json"})
    assert (r.status_code, r.headers["content-type"], r.json()["status"]) == (400, PROBLEM, 400)


def test_flask_422_pointers_never_carry_a_key_the_schema_refused(flask_url: str) -> None:
    r = httpx.post(flask_url + "/strict", json={"email": "e@example.com", "password": "x", ECHO_SECRET: 1})
    assert_no_echo(r, ECHO_SECRET)
    assert [(e["pointer"], e["type"]) for e in r.json()["errors"]] == [("", "extra_forbidden")]


def test_flask_errors_keep_headers(flask_url: str) -> None:
    r = httpx.get(flask_url + "/limited")
    assert (r.status_code, r.headers["retry-after"]) == (429, "5")
    r = httpx.post(flask_url + "/whoami")
    assert (r.status_code, r.headers["content-type"]) == (405, PROBLEM)
    assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    r = httpx.get(flask_url + "/conflict")  # abort(Response(...)): the app's own response, kept as is
    assert (r.status_code, r.headers["x-extra"], r.text) == (409, "1", "x")
    r = httpx.get(flask_url + "/nope")
    assert (r.status_code, r.json()["status"]) == (404, 404)
    assert r.json()["request_id"] == r.headers["x-request-id"]
    r = httpx.get(flask_url + "/nope", headers={"Accept": "text/html"})
    assert r.headers["content-type"].startswith("text/html")


def test_flask_request_id_on_g(flask_url: str) -> None:
    r = httpx.get(flask_url + "/whoami", headers={"X-Request-ID": "req.9"})
    assert r.json() == {"request_id": "req.9"}
    assert r.headers["x-request-id"] == "req.9"


def test_flask_stream_error(flask_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR), httpx.Client() as client:
        with client.stream("GET", flask_url + "/stream") as r:
            assert r.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                for _ in r.iter_bytes():
                    pass
        assert client.get(flask_url + "/whoami").status_code == 200
    assert len(error_records(caplog)) == 1


# --- Django (waitress for WSGI, uvicorn for ASGI) ------------------------------------------------------------

MIDDLEWARE = [
    "backend_guard.integrations._errors_django.DjangoRequestIdMiddleware",
    "backend_guard.integrations._errors_django.DjangoErrorEnvelopeMiddleware",
]


def _django_urls() -> None:
    from django.core.exceptions import PermissionDenied, SuspiciousOperation
    from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
    from django.urls import path

    from .django_app import add_urls

    def boom(request: HttpRequest, item: int) -> None:
        raise RuntimeError(SECRET)

    def denied(request: HttpRequest) -> None:
        raise PermissionDenied(SECRET)

    def suspicious(request: HttpRequest) -> None:
        raise SuspiciousOperation(SECRET)

    def limited(request: HttpRequest) -> None:
        raise RateLimited(retry_after=5)

    def whoami(request: HttpRequest) -> JsonResponse:
        return JsonResponse({"request_id": request.request_id})  # type: ignore[attr-defined]

    def stream(request: HttpRequest) -> StreamingHttpResponse:
        def body() -> Any:
            yield b"first chunk\n"
            raise RuntimeError(SECRET)

        return StreamingHttpResponse(body())

    add_urls(
        path("errors/boom/<int:item>", boom),
        path("errors/denied", denied),
        path("errors/suspicious", suspicious),
        path("errors/limited", limited),
        path("errors/whoami", whoami),
        path("errors/stream", stream),
    )


@pytest.fixture(scope="module")
def django_url() -> Iterator[str]:
    from backend_guard.wsgi._errors import ErrorEnvelopeMiddleware as WSGIErrorEnvelope

    from .django_app import wsgi_app

    _django_urls()
    # The WSGI ErrorEnvelope around Django catches what Django's middlewares cannot: streamed-body errors.
    with run_wsgi(WSGIErrorEnvelope(wsgi_app(MIDDLEWARE))) as url:
        yield url


def test_django_500(django_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        r = httpx.get(django_url + "/errors/boom/4", headers={"Authorization": "Bearer tok-abc"})
    assert_secret_500(r, caplog, "/errors/boom/<int:item>")
    assert not [rec for rec in caplog.records if rec.name == "django.request"]  # logged once, by us


@pytest.mark.parametrize(("path", "status"), [("/errors/denied", 403), ("/errors/suspicious", 400), ("/nope", 404)])
def test_django_exceptions(django_url: str, path: str, status: int) -> None:
    r = httpx.get(django_url + path)
    assert (r.status_code, r.headers["content-type"], r.json()["status"]) == (status, PROBLEM, status)
    assert SECRET not in r.text
    assert r.json()["request_id"] == r.headers["x-request-id"]


def test_django_html_404_for_browsers_and_headers(django_url: str) -> None:
    r = httpx.get(django_url + "/nope", headers={"Accept": "text/html"})
    assert (r.status_code, r.headers["content-type"].split(";")[0]) == (404, "text/html")
    r = httpx.get(django_url + "/errors/limited")
    assert (r.status_code, r.headers["retry-after"]) == (429, "5")
    r = httpx.get(django_url + "/errors/whoami", headers={"X-Request-ID": "dj-1"})
    assert r.json() == {"request_id": "dj-1"}


def test_django_stream_error(django_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR), httpx.Client() as client:
        with client.stream("GET", django_url + "/errors/stream") as r:
            assert r.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                for _ in r.iter_bytes():
                    pass
        assert client.get(django_url + "/errors/whoami").status_code == 200
    assert len(error_records(caplog)) == 1


def test_django_asgi_500(caplog: pytest.LogCaptureFixture) -> None:
    from .django_app import asgi_app

    _django_urls()
    with run_asgi(asgi_app(MIDDLEWARE)) as url, caplog.at_level(logging.ERROR):
        r = httpx.get(url + "/errors/boom/5", headers={"Authorization": "Bearer tok-abc"})
        assert_secret_500(r, caplog, "/errors/boom/<int:item>")
        r = httpx.get(url + "/errors/whoami", headers={"X-Request-ID": "dj-2"})
        assert r.json() == {"request_id": "dj-2"}


def test_envelope_format_through_a_server() -> None:
    from fastapi import FastAPI

    app = FastAPI()
    install_fastapi_error_handlers(app, format="envelope")
    app.add_middleware(RequestIdMiddleware)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError(SECRET)

    with run_asgi(app) as url:
        r = httpx.get(url + "/boom")
    doc = r.json()
    assert r.status_code == 500
    assert doc["success"] is False
    assert doc["error"]["code"] == "internal-error"
    assert doc["meta"]["request_id"] == r.headers["x-request-id"]
    assert SECRET not in json.dumps(doc)


@pytest.mark.parametrize(("mode", "problem"), [(None, False), ("always", True)])
def test_a_mounted_apps_plain_404_and_405_follow_rewrite_plain_errors_under_fastapi(
    mode: str | None, problem: bool
) -> None:
    # install() set the inner envelope to "never" whatever the setting said: "always" was ignored (FastAPI trial).
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    import backend_guard as bg
    import backend_guard.fastapi

    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse("hello")

    app = FastAPI()
    app.mount("/sub", Starlette(routes=[Route("/hello", hello)]))
    errors = {"rewrite_plain_errors": mode} if mode else {}
    backend_guard.fastapi.install(app, bg.GuardSettings(errors=errors))
    with TestClient(app) as client:
        for method, path, status in (("GET", "/sub/nope", 404), ("POST", "/sub/hello", 405)):
            answer = client.request(method, path, headers={"Accept": "application/json"})
            assert answer.status_code == status
            is_problem = answer.headers["content-type"] == "application/problem+json"
            assert is_problem is problem, answer.headers["content-type"]
        assert client.get("/sub/hello").text == "hello"
