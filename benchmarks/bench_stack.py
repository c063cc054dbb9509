"""Benchmark the whole stack in-process: our middlewares and ``Guard`` against the peer stacks, ASGI and WSGI.

ASGI (a Starlette app with one JSON route, called directly on one event loop: no server, no network), every
middleware added the same way, through Starlette's ``middleware=[...]``:

- ``starlette_bare`` (the baseline) and ``asgi_passthrough`` (a pure-ASGI middleware that forwards the call:
  the floor of any middleware), ``basehttp_empty`` (one empty ``BaseHTTPMiddleware``, for contrast);
- each of our middlewares alone (RequestId, SecureHeaders, CORS, ErrorEnvelope, RateLimit on memory);
- ``ours_guard``: our whole stack from one ``GuardSettings`` (CORS and a memory rate limit configured);
- ``peer_stack``: Starlette's ``CORSMiddleware`` + ``secure``'s ``SecureASGIMiddleware`` + slowapi's pure-ASGI
  ``SlowAPIASGIMiddleware`` (memory storage, headers on), the same policy; ``peer_stack_basehttp``: the same
  with slowapi's ``SlowAPIMiddleware`` (the one its quick start shows, a ``BaseHTTPMiddleware``).

WSGI (a Flask app with one JSON route): ``flask_bare`` (baseline), ``flask_ours`` (``backend_guard.wsgi.Guard``
with the same settings) and ``flask_peer`` (flask-cors + flask-talisman + Flask-Limiter, memory storage,
headers on).

Every request is a cross-origin GET over https with an ``Origin`` the policy allows; the rate limit is set so
high it is never reached (the decision and its headers are the work measured). Each case runs once first and
is checked for its status and the headers it must add, so nothing is timed that skipped the work. Interleaved
shuffled rounds, medians, and per round the overhead over the baseline (see ``_harness.py``). The ratio
ours/peer is the median over rounds of (ours - bare) / (peer - bare).

Targets (2-core machine): ``ours_guard`` adds at most 15 µs a request and at most 0.25x ``peer_stack``'s
overhead; ``flask_ours`` at most 0.25x ``flask_peer``'s overhead.

Usage::

    python benchmarks/bench_stack.py            # full run (about a minute on 2 cores)
    python benchmarks/bench_stack.py --quick    # smoke run, a few seconds

Results are printed and written to benchmarks/results/stack.json (and stack.md); ``--quick`` writes
stack-quick.json (and .md) instead, so a smoke run never overwrites the figures of a full one.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import sys
from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import CaseResult, compare, save, table

import backend_guard as bg
from backend_guard.asgi import (
    CORSMiddleware,
    ErrorEnvelopeMiddleware,
    Guard,
    RateLimitMiddleware,
    RequestIdMiddleware,
    SecureHeadersMiddleware,
)
from backend_guard.wsgi import Guard as WSGIGuard

ORIGIN = "https://app.example.com"
ORIGINS = [ORIGIN, "https://admin.example.com"]
METHODS = ["GET", "POST", "PUT"]
ALLOW_HEADERS = ["authorization", "content-type"]
LIMIT = "1000000000/hour"  # never reached: the decision and its headers are what is measured
BODY = b'{"items":[1,2,3]}'
CLIENT = ("203.0.113.7", 50123)
REQUEST_HEADERS = [
    (b"host", b"api.example.com"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) benchmark"),
    (b"accept", b"application/json"),
    (b"accept-encoding", b"gzip, deflate, br"),
    (b"origin", ORIGIN.encode()),
    (b"referer", b"https://app.example.com/page"),
]
TARGET_ASGI_OVERHEAD_US = 15.0
TARGET_RATIO = 0.25

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


def guard_settings() -> bg.GuardSettings:
    """The settings of our stack in every case that uses Guard (ASGI, WSGI, the server benchmark)."""
    return bg.GuardSettings(
        cors={"allow_origins": ORIGINS, "allow_methods": METHODS, "allow_headers": ALLOW_HEADERS},
        rate_limit={"default_limits": LIMIT},
    )


# --------------------------------------------------------------------------------------------------- ASGI


class Passthrough:
    """The floor: a pure-ASGI middleware that forwards the call unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def starlette_app(middleware: list[Any]) -> Any:
    """A Starlette app with one JSON route, wrapped (outermost first) by ``middleware``."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def items(request: Request) -> Response:
        return Response(BODY, media_type="application/json")

    return Starlette(routes=[Route("/items", items)], middleware=middleware)


def empty_basehttp() -> Any:
    from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
    from starlette.requests import Request
    from starlette.responses import Response

    class Empty(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            return await call_next(request)

    return Empty


def peer_asgi_app(*, basehttp: bool = False) -> Any:
    """Starlette's CORSMiddleware + secure's SecureASGIMiddleware + slowapi, with the same policy as ours."""
    import secure
    from secure.middleware import SecureASGIMiddleware
    from slowapi import Limiter, _rate_limit_exceeded_handler
    from slowapi.errors import RateLimitExceeded
    from slowapi.middleware import SlowAPIASGIMiddleware, SlowAPIMiddleware
    from slowapi.util import get_remote_address
    from starlette.middleware import Middleware
    from starlette.middleware.cors import CORSMiddleware as StarletteCORS

    app = starlette_app(
        [
            Middleware(StarletteCORS, allow_origins=ORIGINS, allow_methods=METHODS, allow_headers=ALLOW_HEADERS),
            Middleware(SecureASGIMiddleware, secure=secure.Secure.with_default_headers()),
            Middleware(SlowAPIMiddleware if basehttp else SlowAPIASGIMiddleware),
        ]
    )
    app.state.limiter = Limiter(
        key_func=get_remote_address, default_limits=[LIMIT], headers_enabled=True, storage_uri="memory://"
    )
    app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)
    return app


def asgi_apps() -> dict[str, tuple[Any, list[bytes]]]:
    """Every ASGI case: (app, header names its response must carry)."""
    from starlette.middleware import Middleware

    limiter = bg.RateLimiter("memory://")
    cors = bg.CORSPolicy(allow_origins=ORIGINS, allow_methods=METHODS, allow_headers=ALLOW_HEADERS)
    secure_names = [b"strict-transport-security", b"x-content-type-options"]
    apps: dict[str, tuple[Any, list[bytes]]] = {
        "starlette_bare": (starlette_app([]), []),
        "asgi_passthrough": (starlette_app([Middleware(Passthrough)]), []),
        "basehttp_empty": (starlette_app([Middleware(empty_basehttp())]), []),
        "ours_request_id": (starlette_app([Middleware(RequestIdMiddleware)]), [b"x-request-id"]),
        "ours_secure_headers": (starlette_app([Middleware(SecureHeadersMiddleware)]), secure_names),
        "ours_cors": (
            starlette_app([Middleware(CORSMiddleware, policy=cors)]),
            [b"access-control-allow-origin"],
        ),
        "ours_errors": (starlette_app([Middleware(ErrorEnvelopeMiddleware)]), []),
        "ours_ratelimit": (
            starlette_app([Middleware(RateLimitMiddleware, limiter=limiter, limits=LIMIT)]),
            [b"ratelimit", b"ratelimit-policy"],
        ),
        "ours_guard": (
            starlette_app([Middleware(Guard, settings=guard_settings())]),
            [b"x-request-id", *secure_names, b"access-control-allow-origin", b"ratelimit"],
        ),
        "peer_stack": (
            peer_asgi_app(),
            [*secure_names, b"access-control-allow-origin", b"x-ratelimit-limit"],
        ),
        "peer_stack_basehttp": (
            peer_asgi_app(basehttp=True),
            [*secure_names, b"access-control-allow-origin", b"x-ratelimit-limit"],
        ),
    }
    return apps


def asgi_scope() -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("10.0.0.2", 443),
        "client": CLIENT,
        "scheme": "https",
        "method": "GET",
        "root_path": "",
        "path": "/items",
        "raw_path": b"/items",
        "query_string": b"",
        "headers": REQUEST_HEADERS,
        "state": {},
    }


def asgi_case(app: Any, sink: list[Message]) -> Callable[[], Awaitable[None]]:
    """One request through ``app``; the response start lands in ``sink[0]``, the body in ``sink[1]``."""
    template = asgi_scope()
    request = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> Message:
        return request

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            sink[0] = message
        elif message.get("body"):
            sink[1] = message

    async def run() -> None:
        scope = dict(template)
        scope["state"] = {}
        await app(scope, receive, send)

    return run


def check_asgi(name: str, case: Callable[[], Awaitable[None]], sink: list[Message], must: list[bytes]) -> None:
    """Run once; assert a 200 with the body and every header the case must add."""
    sink[:] = [{}, {}]

    async def once() -> None:
        await case()

    asyncio.run(once())
    start, body = sink
    assert start.get("status") == 200, (name, start)
    assert body.get("body") == BODY, (name, body)
    names = {k.lower() for k, _ in start["headers"]}
    missing = [h.decode() for h in must if h not in names]
    assert not missing, f"{name}: missing response headers {missing}"
    if b"access-control-allow-origin" in must:
        value = dict((k.lower(), v) for k, v in start["headers"])[b"access-control-allow-origin"]
        assert value == ORIGIN.encode(), (name, value)


# --------------------------------------------------------------------------------------------------- WSGI


def flask_app(kind: str) -> Any:
    """A Flask app with one JSON route: bare, with our WSGI Guard, or with the peer extensions."""
    import flask

    app = flask.Flask(f"bench_{kind}")

    @app.get("/items")
    def items() -> Any:
        return app.response_class(BODY, mimetype="application/json")

    if kind == "ours":
        app.wsgi_app = WSGIGuard(app.wsgi_app, guard_settings())  # type: ignore[method-assign]
    elif kind == "peer":
        import flask_cors
        from flask_limiter import Limiter
        from flask_limiter.util import get_remote_address
        from flask_talisman import Talisman

        flask_cors.CORS(app, origins=ORIGINS, methods=METHODS, allow_headers=ALLOW_HEADERS)
        Talisman(app)
        Limiter(get_remote_address, app=app, default_limits=[LIMIT], storage_uri="memory://", headers_enabled=True)
    return app


def wsgi_apps() -> dict[str, tuple[Any, list[str]]]:
    secure_names = ["strict-transport-security", "x-content-type-options"]
    return {
        "flask_bare": (flask_app("bare"), []),
        "flask_ours": (
            flask_app("ours"),
            ["x-request-id", *secure_names, "access-control-allow-origin", "ratelimit"],
        ),
        "flask_peer": (flask_app("peer"), [*secure_names, "access-control-allow-origin", "x-ratelimit-limit"]),
    }


def environ() -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/items",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "api.example.com",
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": CLIENT[0],
        "REMOTE_PORT": str(CLIENT[1]),
        "wsgi.url_scheme": "https",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    for k, v in REQUEST_HEADERS:
        env["HTTP_" + k.decode().upper().replace("-", "_")] = v.decode()
    return env


def wsgi_case(app: Any, sink: list[Any]) -> Callable[[], None]:
    """One request through ``app``; sink = [status, headers, body]."""
    template = environ()

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
        sink[0] = status
        sink[1] = headers
        return lambda data: None

    def run() -> None:
        env = dict(template)
        env["wsgi.input"] = io.BytesIO(b"")
        body = app(env, start_response)
        try:
            sink[2] = b"".join(body)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    return run


def check_wsgi(name: str, case: Callable[[], None], sink: list[Any], must: list[str]) -> None:
    sink[:] = ["", [], b""]
    case()
    status, headers, body = sink
    assert status.startswith("200"), (name, status)
    assert body == BODY, (name, body)
    names = {k.lower(): v for k, v in headers}
    missing = [h for h in must if h not in names]
    assert not missing, f"{name}: missing response headers {missing}"
    if "access-control-allow-origin" in must:
        assert names["access-control-allow-origin"] == ORIGIN, (name, names)


# --------------------------------------------------------------------------------------------------- run


def overhead_ratio(results: dict[str, CaseResult], base: str, ours: str, peer: str) -> float:
    """Median over rounds of (ours - base) / (peer - base)."""
    b, o, p = (results[n].samples_us for n in (base, ours, peer))
    return round(statistics.median((oi - bi) / (pi - bi) for bi, oi, pi in zip(b, o, p, strict=True)), 3)


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in (
        "backend-guard",
        "starlette",
        "secure",
        "slowapi",
        "limits",
        "flask",
        "flask-cors",
        "flask-talisman",
        "Flask-Limiter",
    ):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smoke run: few rounds, few calls")
    args = parser.parse_args()
    rounds, calls = (3, 200) if args.quick else (21, 3000)

    asgi_sink: list[Message] = [{}, {}]
    asgi_cases: dict[str, Callable[[], Awaitable[None]]] = {}
    for name, (app, must_bytes) in asgi_apps().items():
        asgi_cases[name] = asgi_case(app, asgi_sink)
        check_asgi(name, asgi_cases[name], asgi_sink, must_bytes)
    wsgi_sink: list[Any] = ["", [], b""]
    wsgi_cases: dict[str, Callable[[], None]] = {}
    for name, (app, must_str) in wsgi_apps().items():
        wsgi_cases[name] = wsgi_case(app, wsgi_sink)
        check_wsgi(name, wsgi_cases[name], wsgi_sink, must_str)
    print("checked: every case answered 200 with the headers it must add")

    asgi = compare(asgi_cases, "starlette_bare", rounds=rounds, calls=calls, is_async=True)
    wsgi = compare(wsgi_cases, "flask_bare", rounds=rounds, calls=calls)

    guard_overhead = asgi["ours_guard"].overhead_us
    asgi_ratio = overhead_ratio(asgi, "starlette_bare", "ours_guard", "peer_stack")
    asgi_ratio_basehttp = overhead_ratio(asgi, "starlette_bare", "ours_guard", "peer_stack_basehttp")
    wsgi_ratio = overhead_ratio(wsgi, "flask_bare", "flask_ours", "flask_peer")
    targets: dict[str, Any] = {
        "asgi_guard_overhead_us": guard_overhead,
        "asgi_guard_overhead_target_us": TARGET_ASGI_OVERHEAD_US,
        "asgi_peer_overhead_us": asgi["peer_stack"].overhead_us,
        "asgi_ours_over_peer": asgi_ratio,
        "asgi_ours_over_peer_basehttp": asgi_ratio_basehttp,
        "wsgi_guard_overhead_us": wsgi["flask_ours"].overhead_us,
        "wsgi_peer_overhead_us": wsgi["flask_peer"].overhead_us,
        "wsgi_ours_over_peer": wsgi_ratio,
        "ratio_target": TARGET_RATIO,
    }
    targets["met"] = {
        "asgi_overhead": guard_overhead <= TARGET_ASGI_OVERHEAD_US,
        "asgi_ratio": asgi_ratio <= TARGET_RATIO,
        "wsgi_ratio": wsgi_ratio <= TARGET_RATIO,
    }

    text = "\n".join(
        [
            "## Whole stack, in-process",
            "",
            table(asgi, "starlette_bare", "ASGI (Starlette, one JSON route, cross-origin GET)"),
            table(wsgi, "flask_bare", "WSGI (Flask, one JSON route, cross-origin GET)"),
            "### Targets",
            "",
            "| figure | measured | target | met |",
            "|---|---:|---:|:---:|",
            f"| ASGI: `ours_guard` overhead | {guard_overhead:.2f} µs | <= {TARGET_ASGI_OVERHEAD_US:.0f} µs"
            f" | {'yes' if targets['met']['asgi_overhead'] else 'NO'} |",
            f"| ASGI: ours / peer overhead | {asgi_ratio:.3f}x | <= {TARGET_RATIO}x"
            f" | {'yes' if targets['met']['asgi_ratio'] else 'NO'} |",
            f"| ASGI: ours / peer (slowapi BaseHTTPMiddleware) overhead | {asgi_ratio_basehttp:.3f}x | | |",
            f"| WSGI: ours / peer overhead | {wsgi_ratio:.3f}x | <= {TARGET_RATIO}x"
            f" | {'yes' if targets['met']['wsgi_ratio'] else 'NO'} |",
            "",
        ]
    )
    print(text)
    payload = {
        "benchmark": "stack",
        "quick": args.quick,
        "versions": versions(),
        "asgi": {"baseline": "starlette_bare", "results": asgi},
        "wsgi": {"baseline": "flask_bare", "results": wsgi},
        "targets": targets,
    }
    print("written:", save("stack-quick" if args.quick else "stack", payload, text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
