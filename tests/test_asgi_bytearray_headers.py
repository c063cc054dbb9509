"""An ASGI app may send header names and values as ``bytearray`` or ``memoryview`` (uvicorn accepts them): every
ASGI shell answers such a response exactly as it answers the same headers as ``bytes`` (a success, a framework's
404 page the error envelope replaces, a 500 page), instead of a 500 of its own (a bytearray cannot be looked up in a
dict or a set)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import backend_guard as bg
from backend_guard import asgi
from backend_guard.ratelimit import RateLimiter
from backend_guard.storage import MemoryStore

APP = "https://app.example"

NAMES = st.sampled_from(
    [b"content-type", b"Content-Type", b"x-own", b"vary", b"cache-control", b"content-security-policy", b"ratelimit"]
)
VALUES = st.sampled_from([b"text/html; charset=utf-8", b"application/json", b"\xa0text/html", b"Origin", b"no-store"])
KINDS = st.sampled_from([bytes, bytearray, memoryview, lambda b: memoryview(bytearray(b))])
STATUSES = st.sampled_from([200, 304, 404, 500])


def _app(headers: list[tuple[Any, Any]], status: int = 200, container: type = list) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": container(headers)})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def _stacks(inner: Any) -> dict[str, Any]:
    """Each ASGI shell that reads or merges response headers, alone and fused, around ``inner``."""
    return {
        "Guard": asgi.Guard(inner, bg.GuardSettings(cors={"allow_origins": [APP]})),
        "Guard (web)": asgi.Guard(
            inner, bg.GuardSettings(secure_headers={"preset": "web"}, rate_limit={"default_limits": "100/minute"})
        ),
        "SecureHeadersMiddleware": asgi.SecureHeadersMiddleware(inner),
        "CORSMiddleware": asgi.CORSMiddleware(inner, allow_origins=[APP]),
        "RateLimitMiddleware": asgi.RateLimitMiddleware(inner, limiter=RateLimiter(MemoryStore()), limits="100/minute"),
        "RequestIdMiddleware": asgi.RequestIdMiddleware(inner),
        "ErrorEnvelopeMiddleware": asgi.ErrorEnvelopeMiddleware(inner),
        "nested": asgi.RequestIdMiddleware(
            asgi.SecureHeadersMiddleware(asgi.CORSMiddleware(asgi.ErrorEnvelopeMiddleware(inner), allow_origins=[APP]))
        ),
    }


async def _start(app: Any) -> dict[str, Any]:
    """The response start ``app`` sends for a cross-origin GET over HTTPS."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "https",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "client": ("192.0.2.7", 5000),
        "server": ("app.example", 443),
        "headers": [(b"host", b"app.example"), (b"origin", APP.encode())],
    }
    await app(scope, receive, send)
    return sent[0]


def _comparable(start: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]]]:
    """The status and headers as bytes, but for the values that differ per request (request id, reset time)."""
    varying = {b"x-request-id", b"ratelimit"}
    pairs = [(bytes(k).lower(), bytes(v)) for k, v in start["headers"]]
    return start["status"], [(k, b"" if k in varying else v) for k, v in pairs]


@pytest.mark.parametrize("kind", [bytearray, memoryview])
async def test_an_html_page_sent_as_a_bytearray_gets_the_headers_of_an_html_page(kind: type) -> None:
    as_bytes = [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", b"2")]
    odd = [(kind(k), kind(v)) for k, v in as_bytes]
    for (name, expected), (_, shell) in zip(_stacks(_app(as_bytes)).items(), _stacks(_app(odd)).items(), strict=True):
        answered = _comparable(await _start(shell))
        assert answered == _comparable(await _start(expected)), name
        assert answered[0] == 200
    csp = dict(_comparable(await _start(asgi.SecureHeadersMiddleware(_app(odd))))[1])[b"content-security-policy"]
    assert b"form-action 'self'" in csp  # the document policy, as for bytes


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(NAMES, VALUES, KINDS), max_size=5), STATUSES, st.sampled_from([list, tuple]))
async def test_any_response_headers_as_bytearrays_are_answered_as_the_same_bytes(
    headers: list[tuple[bytes, bytes, Any]], status: int, container: type
) -> None:
    as_bytes = [(name, value) for name, value, _ in headers]
    odd = [(kind(name), kind(value)) for name, value, kind in headers]
    expected, odd_stacks = _stacks(_app(as_bytes, status, container)), _stacks(_app(odd, status, container))
    for name, shell in odd_stacks.items():
        assert _comparable(await _start(shell)) == _comparable(await _start(expected[name])), name


async def test_a_framework_error_page_sent_with_bytearray_names_is_replaced_keeping_its_allow_header() -> None:
    page = [(bytearray(b"content-type"), bytearray(b"text/plain")), (bytearray(b"allow"), bytearray(b"GET"))]
    for shell in (asgi.ErrorEnvelopeMiddleware(_app(page, 405)), asgi.Guard(_app(page, 405), bg.GuardSettings())):
        answered = dict(_comparable(await _start(shell))[1])
        assert answered[b"content-type"] == b"application/problem+json"
        assert answered[b"allow"] == b"GET"


async def test_a_header_name_that_is_text_is_still_an_application_error() -> None:
    # Not bytes at all (an app bug no server accepts): the error envelope's 500, as before.
    answered = await _start(asgi.Guard(_app([("content-type", "text/html")]), bg.GuardSettings()))
    assert answered["status"] == 500
