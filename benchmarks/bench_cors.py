"""Benchmark the CORS middlewares: a simple cross-origin GET (and a preflight) through ours vs Starlette's vs none.

ASGI: a bare ASGI app (no framework, so the middleware's own cost is what differs), wrapped by
``backend_guard.asgi.CORSMiddleware`` and by ``starlette.middleware.cors.CORSMiddleware`` with the same policy.
WSGI: a bare WSGI app, wrapped by ``backend_guard.wsgi.CORSMiddleware``; and a minimal Flask app bare, with our
WSGI middleware, and with flask-cors (when importable). Interleaved shuffled rounds, medians (see _harness.py).

Usage::

    python benchmarks/bench_cors.py            # full run (about half a minute on 2 cores)
    python benchmarks/bench_cors.py --quick    # smoke run

Results are printed and written to benchmarks/results/cors.json (and cors.md).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import compare, save, table

from backend_guard.asgi import CORSMiddleware
from backend_guard.cors import CORSPolicy
from backend_guard.wsgi import CORSMiddleware as WSGICORSMiddleware

ORIGIN = "https://app.example.com"
ORIGINS = [ORIGIN, "https://admin.example.com"]
POLICY = CORSPolicy(allow_origins=ORIGINS, allow_methods=["GET", "POST", "PUT"], allow_headers=["authorization"])
REQUEST_HEADERS = [
    (b"host", b"api.example.com"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) benchmark"),
    (b"accept", b"application/json"),
    (b"accept-encoding", b"gzip, deflate, br"),
    (b"origin", ORIGIN.encode()),
    (b"referer", b"https://app.example.com/page"),
]
PREFLIGHT_HEADERS = [
    *REQUEST_HEADERS,
    (b"access-control-request-method", b"PUT"),
    (b"access-control-request-headers", b"authorization"),
]


async def bare_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b""}


def asgi_case(
    app: Any, method: str, headers: list[tuple[bytes, bytes]], sink: list[Any]
) -> Callable[[], Awaitable[None]]:
    async def send(message: dict[str, Any]) -> None:
        sink.append(message)

    async def run() -> None:
        sink.clear()
        scope = {"type": "http", "method": method, "path": "/items", "headers": headers, "query_string": b""}
        await app(scope, _receive, send)

    return run


def check_asgi(case: Callable[[], Awaitable[None]], sink: list[Any], want_cors: bool, status: int) -> None:
    import asyncio

    asyncio.run(case())
    start = sink[0]
    assert start["status"] == status, start
    has = any(k.lower() == b"access-control-allow-origin" for k, _ in start["headers"])
    assert has is want_cors, start


def bare_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b"{}"]


def environ_for(method: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": "/items",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "api.example.com",
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "https",
        "wsgi.input": None,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    for k, v in headers:
        name = k.decode().upper().replace("-", "_")
        env["CONTENT_TYPE" if name == "CONTENT_TYPE" else "HTTP_" + name] = v.decode()
    return env


def wsgi_case(app: Any, method: str, headers: list[tuple[bytes, bytes]], sink: list[Any]) -> Callable[[], None]:
    import io

    base = environ_for(method, headers)

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        sink[:] = [status, response_headers]

    def run() -> None:
        env = dict(base)
        env["wsgi.input"] = io.BytesIO(b"")
        body = app(env, start_response)
        for _ in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()

    return run


def check_wsgi(case: Callable[[], None], sink: list[Any], want_cors: bool) -> None:
    case()
    has = any(k.lower() == "access-control-allow-origin" for k, _ in sink[1])
    assert sink[0].startswith(("200", "204")), sink
    assert has is want_cors, sink


def flask_app(kind: str) -> Any:
    import flask

    app = flask.Flask("bench")

    @app.get("/items")
    def items() -> Any:
        return app.response_class(b"{}", mimetype="application/json")

    if kind == "ours":
        app.wsgi_app = WSGICORSMiddleware(app.wsgi_app, policy=POLICY)  # type: ignore[method-assign]
    elif kind == "flask-cors":
        import flask_cors

        flask_cors.CORS(app, origins=ORIGINS, methods=["GET", "POST", "PUT"], allow_headers=["authorization"])
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few rounds, few calls")
    args = parser.parse_args()
    rounds, calls = (3, 300) if args.quick else (21, 5000)

    from starlette.middleware.cors import CORSMiddleware as StarletteCORS

    starlette_kwargs: dict[str, Any] = {
        "allow_origins": ORIGINS,
        "allow_methods": ["GET", "POST", "PUT"],
        "allow_headers": ["authorization"],
    }
    payload: dict[str, Any] = {"rounds": rounds, "calls_per_round": calls}
    md = ["# CORS benchmark\n"]

    sinks: dict[str, list[Any]] = {n: [] for n in ("bare", "ours", "starlette")}
    asgi_apps = {
        "bare": bare_asgi,
        "ours": CORSMiddleware(bare_asgi, policy=POLICY),
        "starlette": StarletteCORS(bare_asgi, **starlette_kwargs),
    }
    simple = {n: asgi_case(a, "GET", REQUEST_HEADERS, sinks[n]) for n, a in asgi_apps.items()}
    for n, case in simple.items():
        check_asgi(case, sinks[n], want_cors=n != "bare", status=200)
    res = compare(simple, "bare", rounds=rounds, calls=calls, is_async=True)
    payload["asgi_simple"] = res
    md.append(table(res, "bare", "ASGI: simple cross-origin GET (allowed origin)"))

    pre_sinks: dict[str, list[Any]] = {n: [] for n in ("ours", "starlette")}
    preflight = {n: asgi_case(asgi_apps[n], "OPTIONS", PREFLIGHT_HEADERS, pre_sinks[n]) for n in pre_sinks}
    check_asgi(preflight["ours"], pre_sinks["ours"], want_cors=True, status=204)
    check_asgi(preflight["starlette"], pre_sinks["starlette"], want_cors=True, status=200)
    res = compare(preflight, "starlette", rounds=rounds, calls=calls, is_async=True)
    payload["asgi_preflight"] = res
    md.append(table(res, "starlette", "ASGI: allowed preflight (answered by the middleware)"))

    wsinks: dict[str, list[Any]] = {n: [] for n in ("bare", "ours")}
    wsgi_cases = {
        "bare": wsgi_case(bare_wsgi, "GET", REQUEST_HEADERS, wsinks["bare"]),
        "ours": wsgi_case(WSGICORSMiddleware(bare_wsgi, policy=POLICY), "GET", REQUEST_HEADERS, wsinks["ours"]),
    }
    for n, case in wsgi_cases.items():
        check_wsgi(case, wsinks[n], want_cors=n != "bare")
    res = compare(wsgi_cases, "bare", rounds=rounds, calls=calls)
    payload["wsgi_simple"] = res
    md.append(table(res, "bare", "WSGI: simple cross-origin GET, bare WSGI app"))

    kinds = ["bare", "ours"]
    try:
        import flask_cors  # noqa: F401

        kinds.append("flask-cors")
    except ImportError:
        payload["flask_cors"] = "not installed"
    fsinks: dict[str, list[Any]] = {k: [] for k in kinds}
    flask_cases = {k: wsgi_case(flask_app(k), "GET", REQUEST_HEADERS, fsinks[k]) for k in kinds}
    for k, case in flask_cases.items():
        check_wsgi(case, fsinks[k], want_cors=k != "bare")
    fcalls = max(100, calls // 5)
    res = compare(flask_cases, "bare", rounds=rounds, calls=fcalls)
    payload["flask_simple"] = res
    md.append(table(res, "bare", "Flask: simple cross-origin GET"))

    text = "\n".join(md)
    print(text)
    path = save("cors", payload, text)
    print(f"written {path}")


if __name__ == "__main__":
    main()
