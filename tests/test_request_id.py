"""Request ids: validation of incoming ids, the ASGI/WSGI middlewares, the logging context and filter."""

from __future__ import annotations

import json
import logging
import os
import re
from contextvars import ContextVar
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend_guard._logging import (
    RequestIdFilter,
    RequestIdPolicy,
    current_request_id,
    is_valid_request_id,
    new_request_id,
    request_id_var,
)
from backend_guard.asgi._errors import ErrorEnvelopeMiddleware
from backend_guard.asgi._request_id import RequestIdMiddleware
from backend_guard.exceptions import ConfigurationError
from backend_guard.wsgi._errors import ErrorEnvelopeMiddleware as WSGIErrorEnvelope
from backend_guard.wsgi._request_id import RequestIdMiddleware as WSGIRequestId

SAFE = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-", min_size=1, max_size=128)


@given(SAFE)
def test_safe_ids_are_kept(value: str) -> None:
    assert RequestIdPolicy().choose(value.encode()) == value


@given(st.binary(max_size=200))
def test_any_incoming_value_gives_a_safe_id(raw: bytes) -> None:
    rid = RequestIdPolicy().choose(raw)
    assert is_valid_request_id(rid)
    if rid.encode() != raw:
        assert len(rid) == 32


@pytest.mark.parametrize("bad", [b"x" * 129, b"a b", b"<script>", b"id\r\nx: y", "é".encode(), b""])
def test_unsafe_incoming_ids_are_replaced(bad: bytes) -> None:
    rid = RequestIdPolicy().choose(bad)
    assert rid != bad.decode("latin-1")
    assert len(rid) == 32


def test_untrusted_incoming_and_custom_generator() -> None:
    assert RequestIdPolicy(trust_incoming=False, generator=lambda: "fixed").choose(b"abc") == "fixed"
    assert len(RequestIdPolicy(generator=lambda: "bad id!").choose(None)) == 32  # unsafe generator output
    assert new_request_id() != new_request_id()
    with pytest.raises(ConfigurationError):
        RequestIdPolicy(header="X Bad")


def test_filter_adds_request_id() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    token = request_id_var.set("r-1")
    try:
        assert RequestIdFilter().filter(record)
        assert record.request_id == "r-1"  # type: ignore[attr-defined]
    finally:
        request_id_var.reset(token)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    RequestIdFilter().filter(record)
    assert record.request_id == "-"  # type: ignore[attr-defined]
    assert current_request_id() is None


async def run(app: Any, headers: list[tuple[bytes, bytes]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/", "headers": headers}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return scope, sent


async def test_asgi_request_id_everywhere() -> None:
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen["state"] = scope["state"]["request_id"]
        seen["var"] = current_request_id()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-request-id", b"app-set")]})
        await send({"type": "http.response.body", "body": b""})

    _, sent = await run(RequestIdMiddleware(app), [(b"x-request-id", b"abc-1")])
    assert seen == {"state": "abc-1", "var": "abc-1"}
    assert [v for k, v in sent[0]["headers"] if k == b"x-request-id"] == [b"abc-1"]
    assert current_request_id() is None  # reset after the request


async def test_a_repeated_incoming_id_is_replaced_on_asgi_as_on_wsgi() -> None:
    # ASGI took the first of two X-Request-ID fields while a WSGI server joins them ("a, b", no valid id) and got
    # a new one: one request, two ids depending on the server. Both replace it now.
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    repeated = [(b"x-request-id", b"trace-1"), (b"accept", b"*/*"), (b"X-Request-ID", b"trace-2")]
    scope, _ = await run(RequestIdMiddleware(app), repeated)
    assert scope["state"]["request_id"] not in ("trace-1", "trace-2")
    assert len(scope["state"]["request_id"]) == 32
    scope, _ = await run(RequestIdMiddleware(app), repeated[:2])
    assert scope["state"]["request_id"] == "trace-1"

    def wsgi_app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [])
        return [b""]

    environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_X_REQUEST_ID": "trace-1, trace-2"}
    list(WSGIRequestId(wsgi_app)(environ, lambda status, headers, exc_info=None: None))
    assert environ["backend_guard.request_id"] not in ("trace-1", "trace-2")
    assert len(environ["backend_guard.request_id"]) == 32


async def test_asgi_request_id_on_500_from_error_middleware() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    _, sent = await run(RequestIdMiddleware(ErrorEnvelopeMiddleware(app)), [(b"x-request-id", b"bad id")])
    rid = json.loads(sent[1]["body"])["request_id"]
    assert [v for k, v in sent[0]["headers"] if k == b"x-request-id"] == [rid.encode()]
    assert len(rid) == 32


async def test_asgi_lifespan_passes_through() -> None:
    seen = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append("state" in scope)

    await RequestIdMiddleware(app)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == [False]


def test_wsgi_request_id_and_reset_on_close() -> None:
    def app(environ: Any, start_response: Any) -> Any:
        raise RuntimeError("boom")

    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"], captured["headers"] = status, headers

    environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_X_REQUEST_ID": "given:1"}
    result = WSGIRequestId(WSGIErrorEnvelope(app))(environ, start_response)
    body = b"".join(result)
    result.close()  # type: ignore[attr-defined]
    assert current_request_id() is None
    assert captured["status"].startswith("500")
    assert ("X-Request-ID", "given:1") in captured["headers"]
    assert json.loads(body)["request_id"] == "given:1"
    assert environ["backend_guard.request_id"] == "given:1"


def test_wsgi_request_id_is_set_while_the_app_runs_and_never_leaks() -> None:
    seen: list[str | None] = []

    class Body:
        def __iter__(self) -> Any:
            seen.append(current_request_id())
            yield b"a"
            seen.append(current_request_id())
            yield b"b"

        def close(self) -> None:
            seen.append(current_request_id())

    def app(environ: Any, start_response: Any) -> Any:
        seen.append(current_request_id())
        start_response("200 OK", [])
        return Body()

    environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_X_REQUEST_ID": "given:2"}
    result = WSGIRequestId(app)(environ, lambda *a: None)
    assert current_request_id() is None  # between the call and the body: nothing leaks
    assert b"".join(result) == b"ab"
    assert current_request_id() is None  # a server that never closes the body leaks nothing either
    result.close()  # type: ignore[attr-defined]
    assert seen == ["given:2", "given:2", "given:2", "given:2"]
    assert current_request_id() is None


def test_new_ids_are_a_process_prefix_and_a_counter() -> None:
    ids = [new_request_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(len(i) == 32 and re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len({i[:16] for i in ids}) == 1  # one random prefix per process
    counters = [int(i[16:], 16) for i in ids]
    assert counters == list(range(counters[0], counters[0] + 1000))
    assert RequestIdPolicy().choose(None)[:16] == ids[0][:16]  # the policy's fast path makes the same kind


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_draws_a_new_prefix() -> None:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(write_end, new_request_id().encode())
        finally:
            os._exit(0)
    os.close(write_end)
    child = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    parent = new_request_id()
    assert len(child) == 32
    assert child[:16] != parent[:16]


def test_a_generator_set_after_construction_is_used_and_validated() -> None:
    policy = RequestIdPolicy()
    policy.generator = lambda: "custom-1"
    assert policy.choose(None) == "custom-1"
    policy.generator = lambda: "not safe!"
    assert len(policy.choose(None)) == 32


async def test_asgi_replaces_an_app_set_id_and_keeps_other_headers() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"X-Request-ID", b"from-app"), (b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    scope, sent = await run(RequestIdMiddleware(app), [(b"X-REQUEST-ID", b"given-2"), (b"accept", b"*/*")])
    assert scope["state"]["request_id"] == "given-2"  # a header name in any case is found
    assert sent[0]["headers"] == [(b"content-type", b"text/plain"), (b"x-request-id", b"given-2")]

    async def plain(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": ((b"etag", b'"1"'),)})
        await send({"type": "http.response.body", "body": b""})

    scope, sent = await run(RequestIdMiddleware(plain), [])
    rid = scope["state"]["request_id"]
    assert sent[0]["headers"] == [(b"etag", b'"1"'), (b"x-request-id", rid.encode())]


_BODY_VAR: ContextVar[str | None] = ContextVar("test_body_var", default=None)


def test_wsgi_body_resets_a_context_variable_the_app_set() -> None:
    """A body may reset a context variable the app set while it was called (Flask 3.0's stream_with_context
    pushes the request context in the view and pops it when the body ends): its steps and its close run in
    the server's context, with the request id set, and the id is left set nowhere afterwards."""
    seen: list[tuple[str | None, str | None]] = []

    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [])

        def body() -> Any:
            token = _BODY_VAR.set("set by the app")
            yield b""
            try:
                seen.append((current_request_id(), _BODY_VAR.get()))
                yield b"a"
            finally:
                _BODY_VAR.reset(token)  # a token made in the context the app was called in

        started = body()
        next(started)  # the view runs it to its first step, as stream_with_context does
        return started

    environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_X_REQUEST_ID": "given:3"}
    result = WSGIRequestId(app)(environ, lambda *a: None)
    assert b"".join(result) == b"a"
    result.close()  # type: ignore[attr-defined]
    assert seen == [("given:3", "set by the app")]
    assert (current_request_id(), _BODY_VAR.get()) == (None, None)


def test_wsgi_replaces_an_app_set_id() -> None:
    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [("x-request-id", "from-app"), ("Content-Type", "text/plain")])
        return [b""]

    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["headers"] = headers

    environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}
    WSGIRequestId(app)(environ, start_response).close()  # type: ignore[attr-defined]
    rid = environ["backend_guard.request_id"]
    assert captured["headers"] == [("Content-Type", "text/plain"), ("X-Request-ID", rid)]
