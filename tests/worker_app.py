"""An ASGI app for the multi-worker and hostile-input tests, configured from environment variables.

Served as ``python -m uvicorn tests.worker_app:app --workers 3`` by tests/test_workers.py (every worker
imports this module and builds its own parts on the shared Redis), and as a single subprocess by
tests/test_hostile.py (to measure the server process's memory).

Environment (the test sets every one of them):

- ``BG_WORKER_STORE``: ``redis://...`` (shared state) or ``memory://``.
- ``BG_WORKER_PREFIX``: the per-test key prefix; every key lives under it.
- ``BG_WORKER_LIMIT``: the rate limit of ``GET /limited`` (e.g. ``50/minute``).
- ``BG_WORKER_MAX_FAILURES``: the lockout threshold of ``POST /login``.
- ``BG_WORKER_TRUSTED_PROXIES`` (optional): Guard's ``trusted_proxies``, comma-separated.

Routes: ``GET /decorated`` (the limit through a ``RateLimiter(...).limit`` decorator built beside the Guard,
with no client_ip of its own), ``GET /limited`` (rate-limited by Guard's rule), ``POST /login``
(lockout-protected; the "password verifier" counts its calls in the store key ``<prefix>:verifier`` and always
refuses), ``POST /issue`` and ``POST /rotate`` (refresh rotation),
``POST /login-any`` (a second lockout with an account-wide threshold of 20 over a route that parses any body as
JSON; its verifier counts alice's checks in ``<prefix>:verifier-any``), ``GET /me`` (require_auth),
``POST /echo`` (parses a JSON body), ``GET /count?of=verifier-any`` (a verifier count), ``GET /health``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import backend_guard as bg
from backend_guard.asgi import Guard
from backend_guard.fastapi import install_error_handlers
from backend_guard.storage import MemoryStore, RedisStore, Script, Store

SECRET = b"worker-app-test-secret-0123456789abcdef"
MAX_BODY = 1 << 20


def _store() -> Store:
    url = os.environ.get("BG_WORKER_STORE", "memory://")
    prefix = os.environ.get("BG_WORKER_PREFIX", "bgworker")
    if url.startswith("memory://"):
        return MemoryStore(prefix=prefix)
    # Generous timeouts: several workers on 2 cores hammered at once must not time out on a healthy Redis.
    return RedisStore(url, prefix=prefix, socket_timeout=2.0, connect_timeout=2.0)


STORE = _store()
LOCK = bg.Lockout(
    store=STORE,
    max_failures=int(os.environ.get("BG_WORKER_MAX_FAILURES", "5")),
    account_max_failures=None,
    secret=SECRET,
)
LIMITER = bg.RateLimiter(STORE, key_prefix="deco")
# A second lockout with an account-wide threshold, for guesses spread over many addresses (/login-any).
LOCK_ANY = bg.Lockout(store=STORE, max_failures=5, account_max_failures=20, secret=SECRET, namespace="any")
TOKENS = bg.TokenManager(SECRET, "HS256", issuer="https://worker.test", audience="api", store=STORE, grace_window=0)


_INCR = Script(
    name="worker_verifier_incr",
    lua="return redis.call('INCR', KEYS[1])",
    memory=lambda db, keys, args: db.incr(keys[0]),
)
_GET = Script(
    name="worker_verifier_get",
    lua="return tonumber(redis.call('GET', KEYS[1]) or '0')",
    memory=lambda db, keys, args: int(db.get(keys[0], 0)),
)


async def _count_verifier(name: str = "verifier") -> int:
    """Increment and return the verifier counter, in the shared store (through the public Store API)."""
    return int(await STORE.arun(_INCR, [f"{STORE.prefix}:{name}"], []))


async def _read_count(name: str = "verifier") -> int:
    return int(await STORE.arun(_GET, [f"{STORE.prefix}:{name}"], []))


async def limited(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


@LIMITER.limit(os.environ.get("BG_WORKER_LIMIT", "50/minute"))
async def decorated(request: Request) -> JSONResponse:
    return JSONResponse({"client": request.client.host if request.client else None})


@LOCK.protect(field="username")
async def login(request: Request) -> JSONResponse:
    await _count_verifier()
    raise LOCK.invalid_credentials()


@LOCK_ANY.protect(field="username")
async def login_any(request: Request) -> JSONResponse:
    # The most permissive route: JSON whatever the Content-Type says, of any size.
    data = json.loads(await request.body())
    if data.get("username") == "alice":
        await _count_verifier("verifier-any")
    raise LOCK_ANY.invalid_credentials()


async def count(request: Request) -> JSONResponse:
    return JSONResponse({"count": await _read_count(request.query_params.get("of", "verifier"))})


async def issue(request: Request) -> JSONResponse:
    pair = await TOKENS.aissue("worker-user")
    return JSONResponse(pair.as_dict())


async def rotate(request: Request) -> JSONResponse:
    body = await request.body()
    pair = await TOKENS.arotate(body.decode("latin-1"))
    return JSONResponse(pair.as_dict())


@TOKENS.require_auth()
async def me(request: Request) -> JSONResponse:
    return JSONResponse({"sub": request.state.auth["sub"]})


async def echo(request: Request) -> Response:
    body = await request.body()
    if len(body) > MAX_BODY:
        return JSONResponse({"error": "too large"}, status_code=413)
    try:
        data: Any = json.loads(body)
    except (ValueError, RecursionError):
        return JSONResponse({"error": "bad json"}, status_code=400)
    return JSONResponse({"type": type(data).__name__})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"pid": os.getpid()})


def build() -> Guard:
    """The app: Starlette routes wrapped in the whole Guard stack on the shared store."""
    routes = [
        Route("/limited", limited),
        Route("/decorated", decorated),
        Route("/login", login, methods=["POST"]),
        Route("/login-any", login_any, methods=["POST"]),
        Route("/count", count),
        Route("/issue", issue, methods=["POST"]),
        Route("/rotate", rotate, methods=["POST"]),
        Route("/me", me),
        Route("/echo", echo, methods=["POST"]),
        Route("/health", health),
    ]
    proxies = [p for p in os.environ.get("BG_WORKER_TRUSTED_PROXIES", "").split(",") if p]
    settings = bg.GuardSettings(
        trusted_proxies=proxies,
        rate_limit={
            "rules": [{"path": "/limited", "limits": os.environ.get("BG_WORKER_LIMIT", "50/minute")}],
            "on_storage_error": "deny",
        },
    )
    inner = Starlette(routes=routes)
    # GuardErrors raised inside Starlette routes (invalid credentials, token reuse) become problem documents.
    install_error_handlers(inner, middleware=False)
    return Guard(inner, settings, store=STORE)


app = build()
