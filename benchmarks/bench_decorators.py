"""Benchmark the route decorators against the same decision through the middleware path, and against peers.

For each framework (Starlette, Flask, Django) the same route, in the same run, interleaved:

1. Rate limit (memory store, one limit, headers on): the bare route; the peer's decorator (slowapi,
   Flask-Limiter, django-ratelimit when installed); our rate limit middleware (ASGI or WSGI shell around the
   app); our ``@limiter.limit``.
2. Access tokens (HS256): the route verifying ``Authorization: Bearer`` by hand with ``tm.verify_access`` (the
   decision with no plumbing: there is no token middleware) against ``@tm.require_auth()``.
3. Lockout (memory store, a JSON login body): the route reading the name and calling ``lock.attempt`` by hand
   against ``@lock.protect()``.

The figure claimed per case is its overhead over the bare route (median over rounds of the difference, see
_harness.py), measured in CPU time of this process (``time.process_time``: other processes on a loaded
machine do not count). The targets: a decorator's overhead at most 1.5x the same decision through the
middleware (or by hand); on Starlette at most 0.2x slowapi's decorator overhead, on Flask at most 0.15x
Flask-Limiter's.

Usage::

    python benchmarks/bench_decorators.py            # full run
    python benchmarks/bench_decorators.py --quick    # smoke run
    python benchmarks/bench_decorators.py --only flask --part lockout   # one framework, one part

Results are printed and written to benchmarks/results/decorators.json (and decorators.md).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import compare, save, table

from backend_guard._keys import generate_key
from backend_guard.lockout import Lockout
from backend_guard.ratelimit import RateLimiter
from backend_guard.storage import MemoryStore
from backend_guard.tokens import TokenManager

BIG = "1000000000/hour"  # never refuses during a run: every call does the full decision
ISS, AUD = "https://auth.example", "https://api.example"
TM = TokenManager(generate_key("HS256")[0], "HS256", issuer=ISS, audience=AUD, access_ttl=86400.0)
TOKEN = TM.issue("user-42", {"scope": "read"}).access_token
LOGIN = json.dumps({"username": "alice", "password": "x"}).encode()
#: The targets: decorator overhead / middleware (or by-hand) overhead, and / the peer decorator's overhead.
MAX_OVER_MIDDLEWARE = 1.5
MAX_OVER_PEER = {"starlette": 0.2, "flask": 0.15}
#: The case that is the bare route plus, set by hand as constants through the framework's own response API, the
#: two fields the rate limit decorator adds: what the framework itself charges for carrying them (a middleware
#: writes them into the server's header list and never pays it).
FLOOR = "floor: bare route + the fields by hand"
#: The fields the floor sets (the shape of ours for the benchmark's route and limit).
FLOOR_FIELDS = (
    ("RateLimit-Policy", '"/users/{id}";q=1000000000;w=3600'),
    ("RateLimit", '"/users/{id}";r=999999999;t=1'),
)


def _over(results: dict[str, Any], case: str, reference: str) -> float | None:
    """``case``'s overhead over the bare route divided by ``reference``'s (None when a case is missing)."""
    if case not in results or reference not in results or results[reference].overhead_us <= 0:
        return None
    return round(results[case].overhead_us / results[reference].overhead_us, 3)


def _over_floor(results: dict[str, Any], case: str, reference: str) -> float | None:
    """``case``'s overhead beyond the :data:`FLOOR` case's (the framework's own cost of the fields ``case`` adds)
    divided by ``reference``'s overhead (None when a case is missing)."""
    if FLOOR not in results or case not in results or reference not in results or results[reference].overhead_us <= 0:
        return None
    return round((results[case].overhead_us - results[FLOOR].overhead_us) / results[reference].overhead_us, 3)


def _measure(cases: dict[str, Callable[[], Any]], base: str, args: Any, *, is_async: bool = False) -> Any:
    return compare(cases, base, rounds=args.rounds, calls=args.calls, is_async=is_async, clock=time.process_time)


# ------------------------------------------------------------------------------------------------ Starlette


def _asgi_call(app: Any, sink: list[Any], *, method: str = "GET", path: str = "/users/42", **kw: Any) -> Any:
    headers = [(b"host", b"api.example.com"), (b"user-agent", b"bench"), (b"accept", b"application/json")]
    headers += kw.get("headers", [])
    body = kw.get("body", b"")

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sink.append(message)

    async def call() -> None:
        sink.clear()
        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": method,
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "headers": headers,
            "client": ("203.0.113.9", 40000),
            "server": ("api.example.com", 80),
            "scheme": "http",
            "query_string": b"",
        }
        await app(scope, receive, send)

    return call


def _check_asgi(cases: dict[str, Callable[[], Any]], sink: list[Any], header: bytes | None) -> None:
    """Each case answered 200 (and, for a rate limit, said so in its headers): no short-circuit is timed."""
    loop = asyncio.new_event_loop()
    try:
        for name, case in cases.items():
            loop.run_until_complete(case())
            assert sink[0]["status"] == 200, (name, sink[0])
            names = {k.lower() for k, _ in sink[0]["headers"]}
            if header and "bare" not in name and "by hand" not in name:
                assert names & {header, b"x-ratelimit-remaining"}, (name, names)
    finally:
        loop.close()


def _starlette_app(endpoint: Any, path: str = "/users/{id}", methods: list[str] | None = None) -> Any:
    from starlette.applications import Starlette
    from starlette.routing import Route

    return Starlette(routes=[Route(path, endpoint, methods=methods)])


def starlette_ratelimit(args: Any) -> dict[str, Any]:
    return _measure(starlette_ratelimit_cases(), "bare route", args, is_async=True)


def starlette_ratelimit_cases() -> dict[str, Callable[[], Any]]:
    """The cases of :func:`starlette_ratelimit`, each checked once (decorator_instructions.py drives them too)."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    from backend_guard.asgi import RateLimitMiddleware

    async def plain(request: Request) -> JSONResponse:
        return JSONResponse({})

    async def floor(request: Request) -> JSONResponse:
        response = JSONResponse({})
        for name, value in FLOOR_FIELDS:
            response.headers[name] = value
        return response

    ours = RateLimiter(MemoryStore())

    @ours.limit(BIG)
    async def decorated(request: Request) -> JSONResponse:
        return JSONResponse({})

    apps: dict[str, Any] = {"bare route": _starlette_app(plain), FLOOR: _starlette_app(floor)}
    try:
        from slowapi import Limiter, _rate_limit_exceeded_handler
        from slowapi.errors import RateLimitExceeded
        from slowapi.util import get_remote_address
    except ImportError:
        pass
    else:
        slow = Limiter(key_func=get_remote_address, storage_uri="memory://", headers_enabled=True)

        @slow.limit(BIG)
        async def with_slowapi(request: Request) -> JSONResponse:
            return JSONResponse({})

        app = _starlette_app(with_slowapi)
        app.state.limiter = slow
        app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)
        apps["peer: slowapi @limit"] = app
    mw = RateLimitMiddleware(_starlette_app(plain), limiter=RateLimiter(MemoryStore()), limits=BIG)
    apps["ours: RateLimitMiddleware"] = mw
    apps["ours: @limiter.limit"] = _starlette_app(decorated)
    sink: list[Any] = []
    cases = {name: _asgi_call(app, sink) for name, app in apps.items()}
    _check_asgi(cases, sink, b"ratelimit")
    return cases


def starlette_tokens(args: Any) -> dict[str, Any]:
    return _measure(starlette_tokens_cases(), "bare route", args, is_async=True)


def starlette_tokens_cases() -> dict[str, Callable[[], Any]]:
    """The cases of :func:`starlette_tokens`, each checked once (decorator_instructions.py drives them too)."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    async def plain(request: Request) -> JSONResponse:
        return JSONResponse({})

    async def by_hand(request: Request) -> JSONResponse:
        request.state.auth = TM.verify_access(request.headers["authorization"][7:])
        return JSONResponse({})

    @TM.require_auth()
    async def decorated(request: Request) -> JSONResponse:
        return JSONResponse({})

    sink: list[Any] = []
    auth = [(b"authorization", b"Bearer " + TOKEN.encode())]
    cases = {
        "bare route": _asgi_call(_starlette_app(plain), sink, headers=auth),
        "ours: verify_access by hand": _asgi_call(_starlette_app(by_hand), sink, headers=auth),
        "ours: @tm.require_auth()": _asgi_call(_starlette_app(decorated), sink, headers=auth),
    }
    _check_asgi(cases, sink, None)
    return cases


def starlette_lockout(args: Any) -> dict[str, Any]:
    return _measure(starlette_lockout_cases(), "bare route", args, is_async=True)


def starlette_lockout_cases() -> dict[str, Callable[[], Any]]:
    """The cases of :func:`starlette_lockout`, each checked once (decorator_instructions.py drives them too)."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    lock = Lockout(MemoryStore())

    async def plain(request: Request) -> JSONResponse:
        json.loads(await request.body())
        return JSONResponse({})

    async def by_hand(request: Request) -> JSONResponse:
        name = json.loads(await request.body())["username"]
        async with lock.aattempt(name, request.client.host if request.client else None) as attempt:
            attempt.succeeded()
        return JSONResponse({})

    @lock.protect()
    async def decorated(request: Request) -> JSONResponse:
        json.loads(await request.body())
        request.state.login_attempt.succeeded()
        return JSONResponse({})

    sink: list[Any] = []
    kw = {"method": "POST", "path": "/login", "body": LOGIN, "headers": [(b"content-type", b"application/json")]}
    kw["headers"].append((b"content-length", str(len(LOGIN)).encode()))
    cases = {
        name: _asgi_call(_starlette_app(fn, "/login", ["POST"]), sink, **kw)
        for name, fn in (
            ("bare route", plain),
            ("ours: lock.aattempt by hand", by_hand),
            ("ours: @lock.protect()", decorated),
        )
    }
    _check_asgi(cases, sink, None)
    return cases


# ------------------------------------------------------------------------------------------------ WSGI


def _environ(method: str = "GET", path: str = "/users/42", body: bytes = b"", **headers: str) -> dict[str, Any]:
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "api.example.com",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.9",
        "HTTP_HOST": "api.example.com",
        "HTTP_ACCEPT": "application/json",
        "HTTP_USER_AGENT": "bench",
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "_body": body,
    }
    if body:
        environ["CONTENT_TYPE"] = "application/json"
        environ["CONTENT_LENGTH"] = str(len(body))
    environ.update(headers)
    return environ


def _wsgi_call(app: Any, seen: list[Any], environ: dict[str, Any]) -> Callable[[], None]:
    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        seen[:] = [status, headers]

    def call() -> None:
        env = dict(environ)
        env["wsgi.input"] = io.BytesIO(env.pop("_body"))
        body = app(env, start_response)
        for _ in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()

    return call


def _check_wsgi(cases: dict[str, Callable[[], None]], seen: list[Any], header: str | None) -> None:
    for name, case in cases.items():
        case()
        assert seen[0].startswith("200"), (name, seen)
        names = {k.lower() for k, _ in seen[1]}
        if header and "bare" not in name and "by hand" not in name and "django-ratelimit" not in name:
            assert names & {header, "x-ratelimit-remaining"}, (name, names)


def _flask(name: str, rule: str, view: Any, methods: list[str] | None = None) -> Any:
    from flask import Flask

    app = Flask(name)
    app.logger.disabled = True
    app.add_url_rule(rule, "view", view, methods=methods)
    return app


def flask_ratelimit(args: Any) -> dict[str, Any]:
    return _measure(flask_ratelimit_cases(), "bare route", args)


def flask_ratelimit_cases() -> dict[str, Callable[[], Any]]:
    """The cases of :func:`flask_ratelimit`, each checked once (decorator_instructions.py drives them too)."""
    from flask import make_response

    from backend_guard.wsgi import RateLimitMiddleware

    ours = RateLimiter(MemoryStore())

    @ours.limit(BIG)
    def decorated(id: int) -> dict[str, Any]:
        return {}

    def floor(id: int) -> Any:
        response = make_response({})
        for name, value in FLOOR_FIELDS:
            response.headers.add(name, value)
        return response

    apps: dict[str, Any] = {
        "bare route": _flask("plain", "/users/<int:id>", lambda id: {}),
        FLOOR: _flask("floor", "/users/<int:id>", floor),
    }
    try:
        from flask_limiter import Limiter
        from flask_limiter.util import get_remote_address
    except ImportError:
        pass
    else:
        app = _flask("flask_limiter", "/users/<int:id>", lambda id: {})
        fl = Limiter(get_remote_address, app=app, storage_uri="memory://", headers_enabled=True)
        app.view_functions["view"] = fl.limit(BIG)(app.view_functions["view"])
        apps["peer: Flask-Limiter @limit"] = app
    mw = _flask("ours_mw", "/users/<int:id>", lambda id: {})
    mw.wsgi_app = RateLimitMiddleware(mw.wsgi_app, limiter=RateLimiter(MemoryStore()), limits=BIG)  # type: ignore[method-assign]
    apps["ours: WSGI RateLimitMiddleware"] = mw
    apps["ours: @limiter.limit"] = _flask("ours_dec", "/users/<int:id>", decorated)
    seen: list[Any] = []
    cases = {name: _wsgi_call(app, seen, _environ()) for name, app in apps.items()}
    _check_wsgi(cases, seen, "ratelimit")
    return cases


def flask_tokens(args: Any) -> dict[str, Any]:
    from flask import g, request

    def by_hand() -> dict[str, Any]:
        g.auth = TM.verify_access(request.headers["Authorization"][7:])
        return {}

    @TM.require_auth()
    def decorated() -> dict[str, Any]:
        return {}

    seen: list[Any] = []
    environ = _environ(path="/me", HTTP_AUTHORIZATION="Bearer " + TOKEN)
    cases = {
        "bare route": _wsgi_call(_flask("plain", "/me", lambda: {}), seen, environ),
        "ours: verify_access by hand": _wsgi_call(_flask("hand", "/me", by_hand), seen, environ),
        "ours: @tm.require_auth()": _wsgi_call(_flask("dec", "/me", decorated), seen, environ),
    }
    _check_wsgi(cases, seen, None)
    return _measure(cases, "bare route", args)


def flask_lockout(args: Any) -> dict[str, Any]:
    return _measure(flask_lockout_cases(), "bare route", args)


def flask_lockout_cases() -> dict[str, Callable[[], Any]]:
    """The cases of :func:`flask_lockout`, each checked once (decorator_instructions.py drives them too)."""
    from flask import g, request

    lock = Lockout(MemoryStore())

    def plain() -> dict[str, Any]:
        request.get_json()
        return {}

    def by_hand() -> dict[str, Any]:
        with lock.attempt(request.get_json()["username"], request.remote_addr) as attempt:
            attempt.succeeded()
        return {}

    @lock.protect()
    def decorated() -> dict[str, Any]:
        request.get_json()
        g.login_attempt.succeeded()
        return {}

    seen: list[Any] = []
    environ = _environ("POST", "/login", LOGIN)
    cases = {
        name: _wsgi_call(_flask(name, "/login", fn, ["POST"]), seen, environ)
        for name, fn in (
            ("bare route", plain),
            ("ours: lock.attempt by hand", by_hand),
            ("ours: @lock.protect()", decorated),
        )
    }
    _check_wsgi(cases, seen, None)
    return cases


# ------------------------------------------------------------------------------------------------ Django

_URLS = types.ModuleType("bench_decorators_urls")
_URLS.urlpatterns = []  # type: ignore[attr-defined]
#: Each view's own URLconf, by its path: every case resolves its URL among one pattern (in one shared URLconf a
#: view registered later would pay the failed matches of every view before it).
_URLCONF_OF_PATH: dict[str, str] = {}


def one_urlconf_per_view(get_response: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Django middleware: the request resolves in its view's own URLconf (the same look-up for every case)."""

    def middleware(request: Any) -> Any:
        request.urlconf = _URLCONF_OF_PATH.get(request.path_info)
        return get_response(request)

    return middleware


def _django() -> Any:
    """A Django WSGI handler (settings configured once, a local-memory cache), each view in its own URLconf."""
    from django.conf import settings

    if not settings.configured:
        sys.modules[_URLS.__name__] = _URLS
        settings.configure(
            DEBUG=False,
            SECRET_KEY="bench-only-not-a-secret",
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=_URLS.__name__,
            MIDDLEWARE=[f"{__name__}.one_urlconf_per_view"],
            INSTALLED_APPS=[],
            DATABASES={},
            USE_TZ=True,
            LOGGING_CONFIG=None,
            CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
            SILENCED_SYSTEM_CHECKS=["django_ratelimit.E003", "django_ratelimit.W001"],
        )
        import django

        django.setup()
    from django.core.handlers.wsgi import WSGIHandler

    return WSGIHandler()


def _django_routes(views: dict[str, Any]) -> dict[str, str]:
    """Each view at its own path (``/r<n>/users/42/``, ``n`` counting the views registered in this process: the
    parts' views never share a path), alone in its own URLconf; the paths by case name."""
    from django.urls import clear_url_caches, path

    paths = {}
    for name, view in views.items():
        i = len(_URLCONF_OF_PATH)
        urls = types.ModuleType(f"bench_decorators_urls_{i}")
        urls.urlpatterns = [path(f"r{i}/users/<int:id>/", view)]  # type: ignore[attr-defined]
        sys.modules[urls.__name__] = urls
        paths[name] = f"/r{i}/users/42/"
        _URLCONF_OF_PATH[paths[name]] = urls.__name__
    clear_url_caches()
    return paths


def django_ratelimit(args: Any) -> dict[str, Any]:
    return _measure(django_ratelimit_cases(), "bare route", args)


def django_ratelimit_cases() -> dict[str, Callable[[], Any]]:
    """The cases of :func:`django_ratelimit`, each checked once (decorator_instructions.py drives them too)."""
    handler = _django()
    from django.http import JsonResponse

    from backend_guard.wsgi import RateLimitMiddleware

    def plain(request: Any, id: int) -> Any:
        return JsonResponse({})

    def floor(request: Any, id: int) -> Any:
        response = JsonResponse({})
        for name, value in FLOOR_FIELDS:
            response[name] = value
        return response

    ours = RateLimiter(MemoryStore())

    @ours.limit(BIG)
    def decorated(request: Any, id: int) -> Any:
        return JsonResponse({})

    views: dict[str, Any] = {"bare route": plain, FLOOR: floor}
    try:
        from django_ratelimit.decorators import ratelimit
    except ImportError:
        pass
    else:
        views["peer: django-ratelimit @ratelimit"] = ratelimit(key="ip", rate="1000000000/h", block=True)(plain)
    views["ours: @limiter.limit"] = decorated
    paths = _django_routes(views)
    mw = RateLimitMiddleware(handler, limiter=RateLimiter(MemoryStore()), limits=BIG)
    seen: list[Any] = []
    cases = {name: _wsgi_call(handler, seen, _environ(path=paths[name])) for name in views}
    cases["ours: WSGI RateLimitMiddleware"] = _wsgi_call(mw, seen, _environ(path=paths["bare route"]))
    _check_wsgi(cases, seen, "ratelimit")
    return cases


def django_tokens(args: Any) -> dict[str, Any]:
    handler = _django()
    from django.http import JsonResponse

    def plain(request: Any, id: int) -> Any:
        return JsonResponse({})

    def by_hand(request: Any, id: int) -> Any:
        request.auth = TM.verify_access(request.headers["Authorization"][7:])
        return JsonResponse({})

    @TM.require_auth()
    def decorated(request: Any, id: int) -> Any:
        return JsonResponse({})

    views = {"bare route": plain, "ours: verify_access by hand": by_hand, "ours: @tm.require_auth()": decorated}
    paths = _django_routes(views)
    seen: list[Any] = []
    auth = {"HTTP_AUTHORIZATION": "Bearer " + TOKEN}
    cases = {name: _wsgi_call(handler, seen, _environ(path=paths[name], **auth)) for name in views}
    _check_wsgi(cases, seen, None)
    return _measure(cases, "bare route", args)


def django_lockout(args: Any) -> dict[str, Any]:
    return _measure(django_lockout_cases(), "bare route", args)


def django_lockout_cases() -> dict[str, Callable[[], Any]]:
    """The cases of :func:`django_lockout`, each checked once (decorator_instructions.py drives them too)."""
    handler = _django()
    from django.http import JsonResponse

    lock = Lockout(MemoryStore())

    def plain(request: Any, id: int) -> Any:
        json.loads(request.body)
        return JsonResponse({})

    def by_hand(request: Any, id: int) -> Any:
        with lock.attempt(json.loads(request.body)["username"], request.META.get("REMOTE_ADDR")) as attempt:
            attempt.succeeded()
        return JsonResponse({})

    @lock.protect()
    def decorated(request: Any, id: int) -> Any:
        json.loads(request.body)
        request.login_attempt.succeeded()
        return JsonResponse({})

    views = {"bare route": plain, "ours: lock.attempt by hand": by_hand, LOCK: decorated}
    paths = _django_routes(views)
    seen: list[Any] = []
    cases = {name: _wsgi_call(handler, seen, _environ("POST", paths[name], LOGIN)) for name in views}
    _check_wsgi(cases, seen, None)
    return cases


# ------------------------------------------------------------------------------------------------ main

RL, AUTH, LOCK = "ours: @limiter.limit", "ours: @tm.require_auth()", "ours: @lock.protect()"
HAND = "ours: verify_access by hand"
ASGI_MW, WSGI_MW = "ours: RateLimitMiddleware", "ours: WSGI RateLimitMiddleware"

#: (framework, part, the benchmark, the decorator's case, the reference case, the peer's case)
PARTS: list[tuple[str, str, Callable[[Any], Any], str, str, str | None]] = [
    ("starlette", "ratelimit", starlette_ratelimit, RL, ASGI_MW, "peer: slowapi @limit"),
    ("starlette", "tokens", starlette_tokens, AUTH, HAND, None),
    ("starlette", "lockout", starlette_lockout, LOCK, "ours: lock.aattempt by hand", None),
    ("flask", "ratelimit", flask_ratelimit, RL, WSGI_MW, "peer: Flask-Limiter @limit"),
    ("flask", "tokens", flask_tokens, AUTH, HAND, None),
    ("flask", "lockout", flask_lockout, LOCK, "ours: lock.attempt by hand", None),
    ("django", "ratelimit", django_ratelimit, RL, WSGI_MW, "peer: django-ratelimit @ratelimit"),
    ("django", "tokens", django_tokens, AUTH, HAND, None),
    ("django", "lockout", django_lockout, LOCK, "ours: lock.attempt by hand", None),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run with few rounds")
    parser.add_argument("--only", nargs="+", metavar="FRAMEWORK", help="starlette, flask and/or django")
    parser.add_argument("--part", nargs="+", metavar="PART", help="ratelimit, tokens and/or lockout")
    args = parser.parse_args()
    args.rounds, args.calls = (3, 200) if args.quick else (15, 1500)
    payload: dict[str, Any] = {"quick": args.quick, "clock": "process_time", "targets": {}}
    parts: list[str] = []
    for framework, part, bench, case, reference, peer in PARTS:
        if (args.only and framework not in args.only) or (args.part and part not in args.part):
            continue
        results = bench(args)
        payload[f"{framework}_{part}"] = results
        target = {
            "over_reference": _over(results, case, reference),
            "reference": reference,
            "over_peer": _over(results, case, peer) if peer else None,
            "peer": peer if peer in results else None,
        }
        target["met_reference"] = (
            None if target["over_reference"] is None else target["over_reference"] <= MAX_OVER_MIDDLEWARE
        )
        beyond = _over_floor(results, case, reference)
        if beyond is not None:  # the same ratio with the framework's own cost of the two fields left out
            target["over_reference_beyond_floor"] = beyond
            target["met_reference_beyond_floor"] = beyond <= MAX_OVER_MIDDLEWARE
        limit = MAX_OVER_PEER.get(framework) if part == "ratelimit" else None
        target["max_over_peer"] = limit
        target["met_peer"] = None if limit is None or target["over_peer"] is None else target["over_peer"] <= limit
        payload["targets"][f"{framework}_{part}"] = target
        md = table(results, "bare route", f"{framework.capitalize()}, {part}: decorator vs reference (CPU time)")
        md += f"\nDecorator overhead / {reference}'s: {target['over_reference']} (target <= {MAX_OVER_MIDDLEWARE}x)"
        if beyond is not None:
            md += f"; beyond the framework's own cost of the fields (`{FLOOR}`): {beyond}"
        if target["peer"]:
            md += f"; / {peer}'s: {target['over_peer']}" + (f" (target <= {limit}x)" if limit else "")
        parts.append(md + "\n")
        print(parts[-1], flush=True)
    name = "decorators-quick" if args.quick else "decorators"
    print("written:", save(name, payload, "\n".join(parts)))


if __name__ == "__main__":
    main()
