"""The error core (problem documents, formats, redaction) and the ASGI/WSGI ErrorEnvelope middlewares."""

from __future__ import annotations

import builtins
import io
import json
import logging
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from backend_guard._logging import log_server_error
from backend_guard.asgi._errors import ErrorEnvelopeMiddleware
from backend_guard.errors import (
    MINIMAL_500_BODY,
    ErrorPolicy,
    FieldError,
    ResponseAborted,
    error_info,
    problem_document,
    problem_response,
    validation_field_errors,
)
from backend_guard.errors._redact import REDACTED, is_sensitive_key, redact_headers, redact_mapping
from backend_guard.exceptions import (
    AuthenticationError,
    ConfigurationError,
    InvalidToken,
    RateLimited,
    StorageError,
)
from backend_guard.wsgi._errors import ErrorEnvelopeMiddleware as WSGIErrorEnvelope

SECRET = "secret-123"


# --- problem documents -------------------------------------------------------------------------------------


def test_foreign_exception_is_a_generic_500_without_its_message() -> None:
    status, headers, body = problem_response(RuntimeError(SECRET))
    doc = json.loads(body)
    assert status == 500 == doc["status"]
    assert doc["code"] == "internal-error"
    assert SECRET not in body.decode()
    assert "Traceback" not in body.decode()
    assert ("content-type", "application/problem+json") in headers
    assert ("cache-control", "no-store") in headers


def test_a_configuration_error_met_on_a_request_tells_the_client_nothing_of_the_configuration() -> None:
    exc = ConfigurationError(f"rate limit rule '/admin-{SECRET}' matches no route of the app")
    status, _, body = problem_response(exc)
    doc = json.loads(body)
    assert status == 500 == doc["status"]
    assert doc["code"] == "configuration-error"
    assert SECRET not in body.decode()
    assert error_info(exc).server_error  # logged, with its text, for the operator
    assert SECRET in error_info(exc, expose_exception_details=True).detail  # shown in development, as any error's


def test_expose_exception_details_is_explicit() -> None:
    try:
        raise RuntimeError(SECRET)
    except RuntimeError as exc:
        doc = problem_document(exc, expose_exception_details=True)
    assert SECRET in doc["detail"]
    assert any("RuntimeError" in line for line in doc["traceback"])


def test_guard_error_keeps_its_headers_and_extensions() -> None:
    status, headers, body = problem_response(RateLimited(retry_after=2.1), request_id="rid-1")
    doc = json.loads(body)
    assert status == 429 == doc["status"]
    assert doc["retry_after"] == 3
    assert doc["request_id"] == "rid-1"
    assert ("retry-after", "3") in headers
    status, headers, _ = problem_response(InvalidToken())
    assert status == 401
    assert ("www-authenticate", 'Bearer error="invalid_token"') in headers


def test_server_side_guard_errors_are_marked_for_logging() -> None:
    assert error_info(StorageError()).server_error
    assert not error_info(AuthenticationError()).server_error


@pytest.mark.parametrize("status", [400, 404, 418, 503, 599])
def test_bare_status(status: int) -> None:
    code, _, body = problem_response(status)
    assert code == status == json.loads(body)["status"]


@given(
    st.integers(min_value=400, max_value=599),
    st.dictionaries(st.sampled_from(["status", "type", "title", "x", "code"]), st.integers()),
)
def test_body_status_always_equals_http_status(status: int, extensions: dict[str, int]) -> None:
    for fmt in ("problem", "envelope"):
        code, _, body = problem_response(status, extensions=extensions, format=fmt)  # type: ignore[arg-type]
        assert code == status
        if fmt == "problem":
            assert json.loads(body)["status"] == status


def test_envelope_format() -> None:
    errors = [{"loc": ("body", "email"), "msg": "Field required", "type": "missing"}]
    pydantic = pytest.importorskip("pydantic")

    class M(pydantic.BaseModel):
        email: str

    with pytest.raises(pydantic.ValidationError) as caught:
        M.model_validate({"password": "hunter2"})
    status, headers, body = problem_response(caught.value, request_id="r1", format="envelope", now=0.5)
    doc = json.loads(body)
    assert status == 422
    assert ("content-type", "application/json") in headers
    assert doc == {
        "success": False,
        "error": {
            "code": "validation-failed",
            "message": "The request is not valid.",
            "details": [{"field": "/email", "message": "Field required"}],
        },
        "meta": {"timestamp": "1970-01-01T00:00:00.500Z", "request_id": "r1"},
    }
    assert "hunter2" not in body.decode()
    assert validation_field_errors(errors)[0].pointer == "/body/email"


def test_custom_renderer_and_broken_renderer() -> None:
    status, _, body = problem_response(404, format=lambda doc: {"err": doc["code"]})
    assert (status, json.loads(body)) == (404, {"err": "not-found"})

    def broken(doc: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError(SECRET)

    status, _headers, body = problem_response(RuntimeError(SECRET), format=broken)
    assert (status, body) == (500, MINIMAL_500_BODY)
    assert json.loads(body)["status"] == 500


def test_unserialisable_extension_still_renders() -> None:
    status, _, body = problem_response(400, extensions={"x": object()})
    assert status == 400
    assert json.loads(body)["status"] == 400


def test_validation_errors_drop_input_and_ctx() -> None:
    items = [
        {"loc": ("body", "a/b", 0), "msg": "bad", "type": "t", "input": "hunter2", "ctx": {"k": "hunter2"}},
        {"loc": ("body", "pw"), "msg": "Value error, hunter2 is weak", "type": "value_error", "input": "hunter2"},
    ]
    out = validation_field_errors(items)
    assert out[0] == FieldError(pointer="/body/a~1b/0", message="Invalid value.", type="t")
    assert "hunter2" not in out[1].message
    assert "hunter2" not in json.dumps([e.as_dict() for e in out])


@given(
    secret=st.text(min_size=4).map("Zq".__add__),
    kind=st.one_of(
        st.sampled_from(["value_error", "assertion_error", "string_too_short", "greater_than", "missing"]), st.text()
    ),
    ctx_key=st.sampled_from(["error", "min_length", "gt", "value", "actual_length"]),
)
def test_field_errors_never_carry_msg_input_ctx_or_url(secret: str, kind: str, ctx_key: str) -> None:
    assume(secret not in kind)  # the error type is the app's code (a constant), never built from the input
    item = {
        "loc": ("body", "password"),
        "msg": f"{secret.upper()} / {secret}",
        "type": kind,
        "input": {"password": secret},
        "ctx": {ctx_key: secret, "error": ValueError(secret)},
        "url": f"https://errors.pydantic.dev/{secret}",
    }
    (err,) = validation_field_errors([item])
    rendered = json.dumps(err.as_dict(), ensure_ascii=False)
    assert secret not in rendered
    assert secret.upper() not in rendered
    assert "errors.pydantic.dev" not in rendered


def test_field_messages_state_numeric_schema_constraints_only() -> None:
    def message(kind: str, ctx: object) -> str:
        return validation_field_errors([{"loc": ("x",), "msg": "m", "type": kind, "ctx": ctx}])[0].message

    assert (
        message("string_too_short", {"min_length": 8, "actual_length": 3}) == "String should have at least 8 characters"
    )
    assert message("greater_than", {"gt": 0.5}) == "Input should be greater than 0.5"
    # Not a plain number (text, bool, a date, NaN): the type's plain message.
    assert message("string_too_short", {"min_length": "8"}) == "String is too short"
    assert message("greater_than", {"gt": True}) == "Input is too small"
    assert message("greater_than", {"gt": float("nan")}) == "Input is too small"
    assert message("too_long", {"actual_length": 99}) == "Input has too many items"
    # An error type that is not an identifier is not repeated.
    (err,) = validation_field_errors([{"loc": (), "msg": "m", "type": "bad type with spaces"}])
    assert err.type == "value_error"


@given(st.lists(st.one_of(st.text(max_size=20), st.integers()), max_size=5))
def test_json_pointer_round_trip(loc: list[Any]) -> None:
    assume("[key]" not in loc)  # pydantic's marker of a refused mapping key: see the test below
    (err,) = validation_field_errors([{"loc": tuple(loc), "msg": "m", "type": "t"}])
    if not loc:
        assert err.pointer == ""
        return
    parts = [p.replace("~1", "/").replace("~0", "~") for p in err.pointer[1:].split("/")]
    assert parts == [str(p) for p in loc]


def test_framework_exceptions_map_to_their_status() -> None:
    from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
    from django.http import Http404
    from starlette.exceptions import HTTPException
    from werkzeug.exceptions import MethodNotAllowed, NotFound

    assert error_info(Http404("/secret/path")).status == 404
    assert error_info(PermissionDenied(SECRET)).status == 403
    assert error_info(SuspiciousOperation(SECRET)).status == 400
    assert error_info(BadRequest(SECRET)).status == 400
    assert SECRET not in json.dumps(problem_document(PermissionDenied(SECRET)))
    info = error_info(HTTPException(409, "Already there", headers={"X-A": "1"}))
    assert (info.status, info.detail, info.headers) == (409, "Already there", (("X-A", "1"),))
    info = error_info(MethodNotAllowed(valid_methods=["GET"]))
    assert info.status == 405
    assert ("Allow", "GET") in info.headers
    assert error_info(NotFound()).detail is None  # werkzeug's stock description is not repeated


def test_policy_validates() -> None:
    with pytest.raises(ConfigurationError):
        ErrorPolicy(format="xml")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        ErrorPolicy(rewrite_plain_errors="sometimes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mode", "ctype", "accept", "expected"),
    [
        ("api", "text/plain; charset=utf-8", "*/*", True),
        ("api", "text/html", "text/html,application/xhtml+xml", False),
        ("api", "application/json", "*/*", False),
        ("always", "text/html", "text/html", True),
        ("never", "text/plain", None, False),
    ],
)
def test_wants_rewrite(mode: Any, ctype: str, accept: str | None, expected: bool) -> None:
    assert ErrorPolicy(rewrite_plain_errors=mode).wants_rewrite(404, ctype, accept) is expected


# --- redaction ---------------------------------------------------------------------------------------------


def test_redact_headers_str_and_bytes() -> None:
    pairs = [("Authorization", "Bearer t"), ("Cookie", "s=1"), ("Set-Cookie", "a"), ("Accept", "*/*")]
    assert redact_headers(pairs) == [
        ("Authorization", REDACTED),
        ("Cookie", REDACTED),
        ("Set-Cookie", REDACTED),
        ("Accept", "*/*"),
    ]
    assert redact_headers([(b"proxy-authorization", b"Basic x")]) == [(b"proxy-authorization", REDACTED.encode())]


def test_redact_mapping_nested() -> None:
    data = {"user": {"email": "a@b", "password": "p"}, "items": [{"api_key": "k"}], "refresh_token": "t"}
    out = redact_mapping(data)
    assert out == {
        "user": {"email": "a@b", "password": REDACTED},
        "items": [{"api_key": REDACTED}],
        "refresh_token": REDACTED,
    }
    assert data["user"]["password"] == "p"  # the original is untouched
    assert not is_sensitive_key("email")


# --- ASGI middleware ---------------------------------------------------------------------------------------


async def call_asgi(
    app: Any, path: str = "/", headers: list[tuple[bytes, bytes]] | None = None
) -> list[dict[str, Any]]:
    scope = {"type": "http", "method": "GET", "path": path, "headers": headers or [], "state": {"request_id": "rid-7"}}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_asgi_exception_becomes_problem(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError(SECRET)

    with caplog.at_level(logging.ERROR, logger="backend_guard.errors"):
        sent = await call_asgi(ErrorEnvelopeMiddleware(app), headers=[(b"authorization", b"Bearer tok-9")])
    start, body = sent
    assert start["status"] == 500
    assert (b"x-request-id", b"rid-7") in start["headers"]
    doc = json.loads(body["body"])
    assert doc["request_id"] == "rid-7"
    assert SECRET not in body["body"].decode()
    (record,) = caplog.records
    assert record.request_id == "rid-7"  # type: ignore[attr-defined]
    assert record.http_status == 500  # type: ignore[attr-defined]
    assert record.exc_info is not None
    assert "tok-9" not in caplog.text


@pytest.mark.parametrize("shell", ["asgi", "wsgi"])
async def test_a_store_outage_met_by_a_route_is_one_warning_line_per_request_not_an_error_traceback(
    shell: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A route calling tokens.arotate() during a Redis outage logged "Unhandled StorageError" at ERROR with the
    # whole traceback on every request, though the store logs the outage itself (once when it starts, once when
    # it ends): a log flood. The 503 problem document is unchanged.
    cause = ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise StorageError("Redis unavailable during lockout_reserve.", original=cause, outage=True)

    def wsgi_app(environ: Any, start_response: Any) -> Any:
        raise StorageError("Redis unavailable during lockout_reserve.", original=cause, outage=True)

    with caplog.at_level(logging.DEBUG, logger="backend_guard.errors"):
        for _ in range(3):
            if shell == "asgi":
                start, body = await call_asgi(ErrorEnvelopeMiddleware(app))
                status, doc = start["status"], json.loads(body["body"])
            else:
                got: list[str] = []
                chunks = WSGIErrorEnvelope(wsgi_app)(
                    {"REQUEST_METHOD": "POST", "PATH_INFO": "/refresh", "wsgi.errors": io.StringIO()},
                    lambda s, h, exc_info=None, got=got: got.append(s),
                )
                body_bytes = b"".join(chunks)
                status, doc = int(got[0][:3]), json.loads(body_bytes)
            assert status == 503
            assert doc["code"] == "storage-unavailable"
    assert [r.levelno for r in caplog.records] == [logging.WARNING] * 3
    assert all(r.exc_info is None for r in caplog.records)
    assert all(r.http_status == 503 for r in caplog.records)  # type: ignore[attr-defined]
    assert "StorageError" in caplog.records[0].getMessage()
    assert "ConnectionError" in caplog.records[0].getMessage()  # the cause, named


async def test_a_store_failure_that_is_no_outage_is_logged_in_full(caplog: pytest.LogCaptureFixture) -> None:
    # An exhausted pool, an error reply (NOPERM, OOM), a full memory store: the store logs none of them, so the
    # handler logs each with its traceback (the outage's one quiet line would hide them).
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise StorageError("Redis error during lockout_reserve.", original=ValueError("NOPERM this user has no ..."))

    with caplog.at_level(logging.DEBUG, logger="backend_guard.errors"):
        start, _ = await call_asgi(ErrorEnvelopeMiddleware(app))
    assert start["status"] == 503
    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None


def test_the_redis_store_marks_an_outage_and_nothing_else_as_one() -> None:
    from backend_guard.storage import RedisStore
    from backend_guard.storage._redis_errors import Breaker, wrap_failure

    store = RedisStore("redis://127.0.0.1:9/0", socket_timeout=0.2, connect_timeout=0.2)  # nobody listens there
    try:
        for _ in range(2):  # refused, then the open circuit
            with pytest.raises(StorageError) as refused:
                store.scan("bgtest:outage:*")
            assert refused.value.outage is True
    finally:
        store.close()
    assert wrap_failure(ValueError("WRONGTYPE"), "a script", Breaker(1.0, "redis://x")).outage is False


async def test_asgi_exception_after_start_sends_no_second_start(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise RuntimeError(SECRET)

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    with caplog.at_level(logging.ERROR, logger="backend_guard.errors"), pytest.raises(ResponseAborted) as caught:
        await ErrorEnvelopeMiddleware(app)({"type": "http", "method": "GET", "path": "/s"}, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    assert len(caplog.records) == 1


async def test_asgi_plain_framework_error_is_rewritten_keeping_headers() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"allow", b"GET"), (b"content-length", b"18")]
        await send({"type": "http.response.start", "status": 405, "headers": headers})
        await send({"type": "http.response.body", "body": b"Method Not Allowed"})

    start, body = await call_asgi(ErrorEnvelopeMiddleware(app))
    assert start["status"] == 405
    assert (b"allow", b"GET") in start["headers"]
    assert (b"content-type", b"application/problem+json") in start["headers"]
    assert json.loads(body["body"])["status"] == 405
    # a browser keeps the framework's page
    start, body = await call_asgi(ErrorEnvelopeMiddleware(app), headers=[(b"accept", b"text/html")])
    assert body["body"] == b"Method Not Allowed"


async def test_asgi_app_json_errors_and_successes_pass_untouched() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 400, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"mine":1}'})

    _, body = await call_asgi(ErrorEnvelopeMiddleware(app))
    assert body["body"] == b'{"mine":1}'


async def test_asgi_non_http_scopes_pass_through() -> None:
    seen = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])
        raise RuntimeError("lifespan failure propagates")

    with pytest.raises(RuntimeError):
        await ErrorEnvelopeMiddleware(app)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]


async def test_asgi_broken_renderer_gives_minimal_500() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError(SECRET)

    def renderer(doc: dict[str, Any]) -> dict[str, Any]:
        raise ValueError(SECRET)

    start, body = await call_asgi(ErrorEnvelopeMiddleware(app, format=renderer))
    assert start["status"] == 500
    assert body["body"] == MINIMAL_500_BODY


# --- WSGI middleware ---------------------------------------------------------------------------------------


def call_wsgi(app: Any, environ: dict[str, Any] | None = None) -> tuple[str, list[tuple[str, str]], bytes]:
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if "status" in captured and exc_info is None:
            raise AssertionError("headers already set")
        captured["status"], captured["headers"] = status, headers
        return lambda data: None

    env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/x", "backend_guard.request_id": "rid-w", **(environ or {})}
    result = app(env, start_response)
    try:
        body = b"".join(result)
    finally:
        getattr(result, "close", lambda: None)()
    return captured["status"], captured["headers"], body


def test_wsgi_exception_becomes_problem() -> None:
    def app(environ: Any, start_response: Any) -> Any:
        raise RuntimeError(SECRET)

    status, headers, body = call_wsgi(WSGIErrorEnvelope(app))
    assert status.startswith("500 ")
    assert ("x-request-id", "rid-w") in headers
    assert json.loads(body)["request_id"] == "rid-w"
    assert SECRET not in body.decode()


def test_wsgi_exception_in_first_chunk_replaces_started_headers() -> None:
    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield from ()
        raise RuntimeError(SECRET)

    status, _, body = call_wsgi(WSGIErrorEnvelope(app))
    assert status.startswith("500 ")
    assert json.loads(body)["status"] == 500


def test_wsgi_exception_after_first_chunk_aborts() -> None:
    closed = []

    class Body:
        def __iter__(self) -> Any:
            yield b"part"
            raise RuntimeError(SECRET)

        def close(self) -> None:
            closed.append(True)

    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Body()

    with pytest.raises(ResponseAborted):
        call_wsgi(WSGIErrorEnvelope(app))
    assert closed == [True]


def test_wsgi_html_404_rewritten_for_api_clients_only() -> None:
    def app(environ: Any, start_response: Any) -> Any:
        start_response("404 NOT FOUND", [("Content-Type", "text/html"), ("X-Keep", "1")])
        return [b"<h1>Not Found</h1>"]

    status, headers, body = call_wsgi(WSGIErrorEnvelope(app), {"HTTP_ACCEPT": "application/json"})
    assert status.startswith("404 ")
    assert ("X-Keep", "1") in headers
    assert json.loads(body)["status"] == 404
    _, _, body = call_wsgi(WSGIErrorEnvelope(app), {"HTTP_ACCEPT": "text/html"})
    assert body == b"<h1>Not Found</h1>"


def test_a_bare_500_from_the_app_has_the_code_of_an_unhandled_exception() -> None:
    """Django turns an exception of an inner middleware into its own 500 page before the guard sees it; that 500
    was ``internal-server-error`` while a 500 from an exception is ``internal-error``: one code per status."""

    def bare(environ: Any, start_response: Any) -> Any:
        start_response("500 Internal Server Error", [("Content-Type", "text/html")])
        return [b"<h1>Server Error (500)</h1>"]

    def raising(environ: Any, start_response: Any) -> Any:
        raise RuntimeError("boom")

    accept = {"HTTP_ACCEPT": "application/json"}
    codes = {json.loads(call_wsgi(WSGIErrorEnvelope(app), accept)[2])["code"] for app in (bare, raising)}
    assert codes == {"internal-error"}
    assert json.loads(problem_response(500)[2])["code"] == "internal-error"


def test_wsgi_success_untouched() -> None:
    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"a", b"b"]

    assert call_wsgi(WSGIErrorEnvelope(app)) == ("200 OK", [("Content-Type", "text/plain")], b"ab")


@given(secret=st.text(min_size=6, max_size=40).map("Zq".__add__))
def test_a_name_the_schema_refused_never_reaches_the_pointer(secret: str) -> None:
    # Real pydantic errors whose location holds the client's text: an undeclared field (extra="forbid"), an
    # unexpected keyword argument, a mapping key that failed its own validation. The pointer stops before it.
    from typing import Annotated

    from pydantic import BaseModel, ConfigDict, Field, ValidationError, validate_call

    class Strict(BaseModel):
        model_config = ConfigDict(extra="forbid")
        inner: dict[Annotated[str, Field(pattern="^[a-y]{1,8}$")], int] = {}

    @validate_call
    def call(a: int) -> None: ...

    cases: list[tuple[Any, list[str]]] = [
        (lambda: Strict.model_validate({secret: 1}), [""]),
        (lambda: Strict.model_validate({"inner": {"ok": 1, secret: 2}}), ["/inner"]),
        (lambda: call(a=1, **{secret: 2}), [""]),
    ]
    for run, pointers in cases:
        with pytest.raises(ValidationError) as caught:
            run()
        errors = validation_field_errors(caught.value.errors())
        assert [e.pointer for e in errors] == pointers
        assert not any(secret in json.dumps(e.as_dict(), ensure_ascii=False) for e in errors)


_GROUP: Any = getattr(builtins, "ExceptionGroup", None)  # Python 3.11+
_LINKS = ["cause", "context"] + (["group"] if _GROUP is not None else [])


class _Login(BaseModel):
    password: int


def _raise_validation_error(secret: str) -> None:
    _Login.model_validate({"password": secret})


def _chained(secret: str, links: list[str]) -> BaseException:
    """A validation error quoting ``secret``, wrapped in ``links`` (cause, context, group) from inside out."""
    try:
        _raise_validation_error(secret)
    except ValidationError as exc:
        caught: BaseException = exc
    for link in links:
        try:
            if link == "cause":
                raise RuntimeError("while loading") from caught
            if link == "group":
                raise _GROUP("several", [KeyError("k"), caught])
            try:
                raise caught
            except BaseException:
                raise LookupError("while handling")  # noqa: B904 - the implicit __context__ is the point
        except BaseException as outer:
            caught = outer
    return caught


@given(
    secret=st.from_regex(r"SECRET-[A-Za-z0-9]{4,16}", fullmatch=True),
    links=st.lists(st.sampled_from(_LINKS), max_size=4),
)
def test_a_logged_server_error_never_shows_a_validation_errors_input_however_deep_in_the_chain(
    secret: str, links: list[str]
) -> None:
    exc = _chained(secret, links)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    log = logging.getLogger("tests.errors.chain")
    log.addHandler(handler)
    log.propagate = False
    try:
        log_server_error(exc, logger=log, request_id="r1", method="POST", route="/login", status=500)
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert secret not in text
    assert "pydantic_core._pydantic_core.ValidationError: 1 validation error (input not logged): /password" in text
    assert "int_parsing" in text
    assert "in _raise_validation_error" in text  # the frames stay
    assert ("cause" not in links) or "RuntimeError: while loading" in text
    assert ("context" not in links) or "LookupError: while handling" in text
    assert ("group" not in links) or "ExceptionGroup: several" in text
    # The application's own exception objects are left as they were.
    inner = exc
    while not isinstance(inner, ValidationError):
        group = _GROUP is not None and isinstance(inner, _GROUP)
        inner = inner.exceptions[1] if group else (inner.__cause__ or inner.__context__)  # type: ignore[attr-defined]
    assert secret in str(inner)


def test_a_chain_without_a_validation_error_is_logged_as_it_is(caplog: pytest.LogCaptureFixture) -> None:
    exc = RuntimeError("boom")
    with caplog.at_level(logging.ERROR, logger="backend_guard.errors"):
        log_server_error(exc, request_id=None, method="GET", route="/", status=500)
    (record,) = caplog.records
    assert record.exc_info is not None
    assert record.exc_info[1] is exc


class _QuotingError(Exception):
    def __init__(self, original: BaseException) -> None:
        super().__init__("wrapped")
        self.original = original

    def __str__(self) -> str:
        return f"could not log in: {self.original}"


def _wrapped(secret: str, how: str) -> BaseException:
    try:
        try:
            _raise_validation_error(secret)
        except ValidationError as exc:
            if how == "args":
                raise RuntimeError(exc)  # noqa: B904 - the implicit __context__ is the point
            if how == "formatted":
                raise RuntimeError(f"while loading: {exc}") from None
            if how == "attribute":
                raise _QuotingError(exc) from exc
            raise LookupError(f"no account for token {secret!r}")  # noqa: B904 - quotes the failed input itself
    except Exception as outer:
        return outer
    raise AssertionError("unreachable")


@pytest.mark.parametrize("how", ["args", "formatted", "attribute", "input"])
def test_an_exception_whose_message_quotes_a_validation_error_in_its_chain_is_logged_without_that_message(
    how: str, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "SECRET-" + "tok3n" * 3
    exc = _wrapped(secret, how)
    with caplog.at_level(logging.ERROR, logger="backend_guard.errors"):
        log_server_error(exc, request_id="r1", method="POST", route="/login", status=500)
    text = caplog.text
    assert secret not in text
    assert f"{type(exc).__module__}.{type(exc).__qualname__}" in text  # the class is still named
    assert "in _wrapped" in text  # the frames stay
    assert how == "formatted" or "in _raise_validation_error" in text  # (from None hides the context)
    # What a handler reading the record itself (Sentry's, a JSON formatter) sees: no original exception.
    (record,) = caplog.records
    assert record.exc_info is not None
    seen: list[BaseException] = []
    link: BaseException | None = record.exc_info[1]
    while link is not None and len(seen) < 10:
        seen.append(link)
        link = link.__cause__ or link.__context__
    assert not any(secret in str(e) for e in seen)
    assert secret in str(exc)  # the application's own exception is unchanged


@pytest.mark.parametrize(
    "bad",
    [("X-Price", "5 €"), ("X-Injected", "a\r\nSet-Cookie: session=evil"), ("Bad Name", "1"), ("", "1")],
)
async def test_an_app_error_header_no_server_could_send_is_dropped_not_a_server_error(bad: tuple[str, str]) -> None:
    # the app's own HTTPException carries a header that is not a valid field: the envelope still answers its
    # status (the good headers kept), instead of failing to encode it and leaving the server a traceback
    from starlette.exceptions import HTTPException

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise HTTPException(409, "Already there", headers={"X-Good": "1", bad[0]: bad[1]})

    start, _body = await call_asgi(ErrorEnvelopeMiddleware(app))
    assert start["status"] == 409
    assert (b"x-good", b"1") in start["headers"]
    assert not any(b"evil" in v or b"\xe2" in v for _, v in start["headers"])

    def wsgi_app(environ: Any, start_response: Any) -> Any:
        raise HTTPException(409, headers={"X-Good": "1", bad[0]: bad[1]})

    status, headers, _ = call_wsgi(WSGIErrorEnvelope(wsgi_app))
    assert status.startswith("409")
    assert ("x-good", "1") in [(k.lower(), v) for k, v in headers]
    assert all(k and "\r" not in v and "\n" not in v and "€" not in v for k, v in headers)
