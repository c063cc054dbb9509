"""asgi.Guard's fused path answers exactly as the nested stack it stands for (``Guard.app``).

For HTTP requests Guard does the work of RequestId, SecureHeaders, CORS, ErrorEnvelope and RateLimit in one
call, with a fast path for responses whose headers no layer needs to merge. Whatever the app sends (headers
that collide with a layer's, any case, error statuses, exceptions, route overrides, a CSP nonce), the response
must be the one the nested middlewares give.
"""

from __future__ import annotations

import asyncio
import re
import sys
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import backend_guard as bg
from backend_guard import wsgi
from backend_guard._logging import request_id_var
from backend_guard.asgi import Guard
from backend_guard.cors import STATE_KEY as CORS_KEY
from backend_guard.headers import NONCE_KEY, OVERRIDE_KEY

ORIGIN = b"https://app.example.com"

# Names a layer merges, replaces or drops, in several cases, and names nobody touches.
NAMES = st.sampled_from(
    [
        b"content-type",
        b"content-length",
        b"vary",
        b"Vary",
        b"ratelimit",
        b"RateLimit-Policy",
        b"x-ratelimit-limit",
        b"x-request-id",
        b"X-Request-ID",
        b"access-control-allow-origin",
        b"Access-Control-Expose-Headers",
        b"content-security-policy",
        b"Strict-Transport-Security",
        b"x-frame-options",
        b"server",
        b"X-Powered-By",
        b"cache-control",
        b"etag",
        b"x-custom",
    ]
)
# Values include HTML and JSON content types: an HTML document gets other security headers than the rest.
VALUES = st.sampled_from([b"a", b"Accept-Encoding", b"*", b"1", b"text/html; charset=utf-8", b"application/json"])
HEADERS = st.lists(st.tuples(NAMES, VALUES), max_size=6)


def _settings(variant: int) -> bg.GuardSettings:
    cors: dict[str, Any] = {"allow_origins": [ORIGIN.decode()], "expose_headers": ["x-total"]}
    if variant == 1:
        return bg.GuardSettings(
            cors=cors,
            rate_limit={"default_limits": "1000/hour"},
            secure_headers={"preset": "web", "no_store_paths": ["/items"]},
        )
    if variant == 2:  # only some parts
        return bg.GuardSettings(rate_limit={"default_limits": "1000/hour"}, request_id={"enabled": False})
    if variant == 3:  # the browser-session layers inside the envelope
        return bg.GuardSettings(
            cors=cors, rate_limit={"default_limits": "1000/hour"}, trusted_hosts=["api.example.com"],
            https_redirect=True, csrf=True,
        )  # fmt: skip
    if variant == 4:  # the browser-session layers without an envelope
        return bg.GuardSettings(
            errors={"enabled": False}, trusted_hosts=["*.example.com"], csrf={"trusted_origins": [ORIGIN.decode()]},
            https_redirect={"enabled": True, "exempt_paths": ["/items"], "safe_status": 308},
        )  # fmt: skip
    return bg.GuardSettings(cors=cors, rate_limit={"default_limits": "1000/hour"})


def _app(headers: list[tuple[bytes, bytes]], state: dict[str, Any], fail: bool) -> Any:
    """An app answering with the status the request asks for (``x-status``): a page, then a 304..."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["state"].update(state)
        if fail:
            raise RuntimeError("boom")
        status = int(dict(scope["headers"])[b"x-status"])
        await send({"type": "http.response.start", "status": status, "headers": list(headers)})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


def _call(
    app: Any,
    origin: bytes | None,
    scheme: str,
    status: int = 200,
    method: str = "GET",
    host: bytes = b"api.example.com",
    accept: bytes | None = None,
) -> list[Any]:
    headers = [(b"host", host), (b"x-request-id", b"fixed-id-1"), (b"x-status", str(status).encode())]
    if accept is not None:
        headers.append((b"accept", accept))
    if origin is not None:
        headers.append((b"origin", origin))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": scheme,
        "method": method,
        "path": "/items",
        "raw_path": b"/items",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("203.0.113.9", 5000),
        "server": ("10.0.0.1", 443),
    }
    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    async def main() -> None:
        try:
            await app(scope, receive, send)
        except Exception as exc:  # the same exception from both, if any
            sent.append(type(exc).__name__)

    asyncio.run(main())
    # The reset time of the rate limit field may cross a second between the two calls.
    return [
        {**m, "headers": [(k, re.sub(rb"t=\d+", b"t=T", v)) for k, v in m["headers"]]}
        if isinstance(m, dict) and "headers" in m
        else m
        for m in sent
    ]


@settings(max_examples=300, deadline=None)
@example(  # the app's own CORS header, dropped for ours
    variant=0,
    statuses=[200],
    headers=[(b"Access-Control-Expose-Headers", b"1")],
    origin=ORIGIN,
    scheme="https",
    overrides=set(),
    fail=False,
    method="GET",
    host=b"api.example.com",
)
@example(  # a page, then a 304 to its revalidation: the fused Guard's headers remembered for one are not the other's
    variant=0,
    statuses=[200, 304, 200],
    headers=[(b"content-type", b"text/html; charset=utf-8")],
    origin=None,
    scheme="https",
    overrides=set(),
    fail=False,
    method="GET",
    host=b"api.example.com",
)
@example(  # a 304, then another response of no HTML document
    variant=2,
    statuses=[304, 200, 304],
    headers=[(b"content-type", b"application/json")],
    origin=None,
    scheme="http",
    overrides=set(),
    fail=False,
    method="GET",
    host=b"api.example.com",
)
@given(
    variant=st.sampled_from([0, 1, 2, 3, 4]),
    # several responses from one Guard: what it remembers from one must not answer another
    statuses=st.lists(st.sampled_from([200, 204, 304, 404, 429, 500]), min_size=1, max_size=3),
    headers=HEADERS,
    origin=st.sampled_from([ORIGIN, b"https://evil.example", None]),
    scheme=st.sampled_from(["https", "http"]),
    overrides=st.sets(st.sampled_from(["cors", "secure_headers", "nonce"])),
    fail=st.booleans(),
    method=st.sampled_from(["GET", "POST"]),
    host=st.sampled_from([b"api.example.com", b"evil.net"]),
)
def test_fused_guard_answers_as_the_nested_stack(
    variant: int,
    statuses: list[int],
    headers: list[tuple[bytes, bytes]],
    origin: bytes | None,
    scheme: str,
    overrides: set[str],
    fail: bool,
    method: str,
    host: bytes,
) -> None:
    state: dict[str, Any] = {}
    if "cors" in overrides:
        state[CORS_KEY] = bg.CORSPolicy(allow_origins=["https://evil.example"])
    if "secure_headers" in overrides:
        state[OVERRIDE_KEY] = bg.SecureHeaders(preset="web")
    if "nonce" in overrides:
        state[NONCE_KEY] = "bm9uY2Vub25jZW5vbmNl"
    app = _app(headers, state, fail)
    fused = Guard(app, _settings(variant))
    nested = Guard(app, _settings(variant)).app  # its own store: the same remaining quota
    for status in statuses:
        assert _call(fused, origin, scheme, status, method, host) == _call(nested, origin, scheme, status, method, host)


def test_a_304_after_a_page_through_the_fused_guard_gets_no_csp_and_the_page_keeps_its_own() -> None:
    app = _app([(b"content-type", b"text/html; charset=utf-8")], {}, fail=False)
    fused = Guard(app, _settings(0))
    nested = Guard(app, _settings(0)).app
    for status in (200, 304, 200, 304):
        start = _call(fused, None, "https", status)[0]
        assert start == _call(nested, None, "https", status)[0]
        headers = dict(start["headers"])
        if status == 304:
            assert b"content-security-policy" not in headers
            assert b"referrer-policy" not in headers
            assert headers[b"x-content-type-options"] == b"nosniff"
        else:
            assert b"form-action 'self'" in headers[b"content-security-policy"]


def _headers_app(make_headers: Any, seen: list[Any]) -> Any:
    """An app answering ``x-status`` with the header pairs ``make_headers()`` gives (any iterable, as ASGI allows)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append("state" in scope)
        status = int(dict(scope["headers"])[b"x-status"])
        await send({"type": "http.response.start", "status": status, "headers": make_headers()})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


@pytest.mark.parametrize(
    "options",
    [
        {"errors": {"enabled": False}},  # no envelope: every layer on the one send wrapper
        {},  # an error status under the envelope: the layers inside it, then the outer ones
    ],
)
@pytest.mark.parametrize("status", [200, 418])
def test_guard_keeps_every_header_of_a_one_shot_iterable(options: dict[str, Any], status: int) -> None:
    """ASGI's ``headers`` may be any iterable of pairs: a generator's are read once, none lost (the app's Vary
    merged with ours, its own header kept)."""
    pairs = [(b"vary", b"Accept-Encoding"), (b"x-app", b"1")]
    settings = bg.GuardSettings(
        cors={"allow_origins": [ORIGIN.decode()]},
        rate_limit={"default_limits": "1000/hour"},
        errors={**options.get("errors", {}), "rewrite_plain_errors": "never"},
    )
    for make in (lambda: list(pairs), lambda: (pair for pair in pairs)):
        guard = Guard(_headers_app(make, []), settings)
        headers = _call(guard, ORIGIN, "https", status)[0]["headers"]
        assert (b"vary", b"Accept-Encoding, Origin") in headers
        assert (b"x-app", b"1") in headers


def test_guard_gives_the_app_a_state_even_without_request_id_and_secure_headers() -> None:
    """Guard makes ``scope["state"]`` for the app (where route decorators and csp_nonce leave their values),
    whichever layers are on."""
    seen: list[Any] = []
    settings = bg.GuardSettings(request_id={"enabled": False}, secure_headers={"enabled": False})
    guard = Guard(_headers_app(list, seen), settings)
    _call(guard, None, "https", 200)
    assert seen == [True]


# -- the app's ways of answering, through the fused Guard and the nested stack (ASGI and WSGI) ------------------

ASGI_KINDS = ["stream", "raise", "raise_after_start", "raise_after_body", "page", "page_chunks", "page500_raise"]


def _kind_app(kind: str, headers: list[tuple[bytes, bytes]]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        page = [(b"content-type", b"text/plain"), *headers]
        if kind == "raise":
            raise RuntimeError("boom")
        status = 404 if kind.startswith("page") and kind != "page500_raise" else 500 if kind == "page500_raise" else 200
        await send({"type": "http.response.start", "status": status, "headers": page})
        if kind in ("stream", "page_chunks", "raise_after_start"):
            await send({"type": "http.response.body", "body": b"a", "more_body": True})
        if kind == "raise_after_start":
            raise RuntimeError("after start")
        await send({"type": "http.response.body", "body": b"b"})
        if kind in ("raise_after_body", "page500_raise"):
            raise RuntimeError("after body")

    return app


@settings(max_examples=100, deadline=None)
@given(
    variant=st.sampled_from([0, 1, 2]),
    kind=st.sampled_from(ASGI_KINDS),
    headers=HEADERS,
    origin=st.sampled_from([ORIGIN, None]),
    accept=st.sampled_from([b"text/html", b"application/json"]),
)
def test_fused_guard_streams_fails_and_replaces_pages_as_the_nested_stack(
    variant: int, kind: str, headers: list[tuple[bytes, bytes]], origin: bytes | None, accept: bytes
) -> None:
    app = _kind_app(kind, headers)
    fused = Guard(app, _settings(variant))
    nested = Guard(app, _settings(variant)).app
    assert _call(fused, origin, "https", accept=accept) == _call(nested, origin, "https", accept=accept)


class _Body:
    """A WSGI body recording its close() and the request id it ran under."""

    def __init__(self, events: list[Any], fail: bool) -> None:
        self.events = events
        self.fail = fail

    def __iter__(self) -> Any:
        self.events.append(("iter", request_id_var.get()))
        if self.fail:
            raise RuntimeError("in body")
        yield b"a"

    def close(self) -> None:
        self.events.append(("close", request_id_var.get()))


WSGI_KINDS = ["plain", "raise", "raise_in_body", "page", "exc_info", "generator_late_start"]


def _wsgi_app(kind: str, status: str, headers: list[tuple[str, str]], events: list[Any]) -> Any:
    def late(start_response: Any) -> Any:
        start_response(status, list(headers))
        yield b"g"

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        events.append(("app", request_id_var.get()))
        if kind == "raise":
            raise RuntimeError("boom")
        if kind == "generator_late_start":
            return late(start_response)
        if kind == "page":
            start_response("404 Not Found", [("Content-Type", "text/plain"), *headers])
        elif kind == "exc_info":
            start_response(status, list(headers))
            try:
                raise KeyError("k")
            except KeyError:
                start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
        else:
            start_response(status, list(headers))
        return _Body(events, fail=kind == "raise_in_body")

    return app


def _serve_wsgi(app: Any, origin: str | None, accept: str) -> list[Any]:
    """A strict server: the start_response calls, the body, the exception, and the request id along the way."""
    log: list[Any] = []
    environ = {
        "REQUEST_METHOD": "GET", "PATH_INFO": "/items", "SCRIPT_NAME": "", "QUERY_STRING": "",
        "SERVER_NAME": "api.example.com", "SERVER_PORT": "443", "HTTP_HOST": "api.example.com",
        "wsgi.url_scheme": "https", "REMOTE_ADDR": "203.0.113.9", "HTTP_ACCEPT": accept,
        "HTTP_X_REQUEST_ID": "fixed-id-1",
    }  # fmt: skip
    if origin is not None:
        environ["HTTP_ORIGIN"] = origin

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        fields = [(k, re.sub(r"t=\d+", "t=T", v)) for k, v in headers]
        log.append(("start", status, fields, exc_info is not None))
        return lambda data: log.append(("write", data))

    result = None
    try:
        result = app(environ, start_response)
        log.extend(("chunk", chunk) for chunk in result)
    except Exception as exc:  # the same exception from both, if any
        log.append(("raised", type(exc).__name__))
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    log.append(("after", request_id_var.get()))
    return log


@settings(max_examples=100, deadline=None)
@given(
    variant=st.sampled_from([0, 1, 2]),
    kind=st.sampled_from(WSGI_KINDS),
    status=st.sampled_from(["200 OK", "304 Not Modified", "404 Not Found", "500 Internal Server Error"]),
    headers=st.lists(st.tuples(NAMES.map(bytes.decode), VALUES.map(bytes.decode)), max_size=4),
    origin=st.sampled_from([ORIGIN.decode(), None]),
    accept=st.sampled_from(["text/html", "application/json"]),
)
def test_wsgi_guard_answers_as_the_nested_stack(
    variant: int, kind: str, status: str, headers: list[tuple[str, str]], origin: str | None, accept: str
) -> None:
    """wsgi.Guard drives its layers in one call: the same start_response calls, body, close() and request id in
    the logging context as the nested middlewares give."""
    fused_events: list[Any] = []
    nested_events: list[Any] = []
    fused = wsgi.Guard(_wsgi_app(kind, status, headers, fused_events), _settings(variant))
    nested = wsgi.Guard(_wsgi_app(kind, status, headers, nested_events), _settings(variant)).app
    assert _serve_wsgi(fused, origin, accept) == _serve_wsgi(nested, origin, accept)
    assert fused_events == nested_events


@pytest.mark.parametrize("scheme", ["https", "http"])
@pytest.mark.parametrize(
    ("status", "content_type"),
    [("200 OK", "text/html; charset=utf-8"), ("200 OK", "application/json"), ("304 Not Modified", "text/html")],
)
@pytest.mark.parametrize("preset", ["api", "web"])
def test_wsgi_guard_adds_each_kind_of_response_its_own_headers(
    preset: str, status: str, content_type: str, scheme: str
) -> None:
    """The fused WSGI Guard appends the headers computed once per kind of response (an HTML document, anything
    else, a 304) and scheme: the same as the nested middlewares merge, the document's CSP on a document only."""
    settings = bg.GuardSettings(
        cors={"allow_origins": [ORIGIN.decode()]},
        rate_limit={"default_limits": "1000/hour"},
        secure_headers={"preset": preset},
    )

    def app(environ: Any, start_response: Any) -> Any:
        start_response(status, [("Content-Type", content_type)])
        return [b"x"]

    def serve(guard: Any) -> list[tuple[str, str]]:
        starts: list[Any] = []
        environ = {
            "REQUEST_METHOD": "GET", "PATH_INFO": "/items", "SCRIPT_NAME": "", "SERVER_NAME": "api.example.com",
            "SERVER_PORT": "443", "wsgi.url_scheme": scheme, "REMOTE_ADDR": "203.0.113.9",
            "HTTP_ORIGIN": ORIGIN.decode(), "HTTP_X_REQUEST_ID": "fixed-id-1234",
        }  # fmt: skip
        list(guard(environ, lambda s, headers, exc_info=None: starts.append(headers)))
        # the RateLimit item's reset (t=) is the time left in the window: two Guards asked a second apart differ
        return [(k, re.sub(r";t=\d+", ";t=*", v) if k.lower() == "ratelimit" else v) for k, v in starts[0]]

    fused = serve(wsgi.Guard(app, settings))
    assert fused == serve(wsgi.Guard(app, settings).app)
    names = [name.lower() for name, _ in fused]
    assert ("strict-transport-security" in names) == (scheme == "https")
    assert {"access-control-allow-origin", "x-request-id", "ratelimit"} <= set(names)
    csp = dict((k.lower(), v) for k, v in fused).get("content-security-policy")
    documents_differ = bg.SecureHeaders(preset=preset).splits_documents
    if documents_differ and status.startswith("200"):
        api = bg.SecureHeaders(preset=preset).headers_for(secure=True, content_type="application/json")
        api_csp = dict((k.lower(), v) for k, v in api).get("content-security-policy")
        assert (csp != api_csp) == content_type.startswith("text/html")
