"""The Starlette example: the same routes as the FastAPI one, with plain Starlette endpoints.

Run: ``uvicorn backend_guard.examples.starlette_app:app`` (settings from ``BACKEND_GUARD_...`` variables).

The endpoints are ``async``; the password work of the service (argon2, by design slow) runs in Starlette's
thread pool so it never blocks the event loop. The decorators come from the library and need no extra
parameter: Starlette hands them the request.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from .. import fastapi as bg_fastapi
from ..config import GuardSettings
from ..headers import SecureHeaders, csp_nonce
from .service import PAGE, AuthService, BadRequest

__all__ = ["app", "create_app"]


async def read_json(request: Request) -> Any:
    """The request's JSON body, or BadRequest (a clean 400 problem document) when it is not JSON."""
    body = await request.body()
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: pathologically nested input
        raise BadRequest("The body is not valid JSON.") from None


def create_app(settings: GuardSettings | None = None, service: AuthService | None = None) -> Starlette:
    """The example app; ``settings`` default to the environment (``GuardSettings.from_env()``).

    Example::

        app = create_app(bg.GuardSettings(cors={"allow_origins": ["https://app.example.com"]}))
    """
    settings = settings if settings is not None else GuardSettings.from_env()
    svc = service if service is not None else AuthService.create()
    web = SecureHeaders(preset="web")
    limiter = svc.limiter
    auth = svc.tokens.require_auth()

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @web.route()
    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE.format(nonce=csp_nonce(request)))

    @limiter.limit("20/minute")
    async def register(request: Request) -> Response:
        body = await read_json(request)
        return JSONResponse(await run_in_threadpool(svc.register, body), status_code=201)

    @limiter.limit(AuthService.LOGIN_LIMIT)
    async def login(request: Request) -> Response:
        body = await read_json(request)
        address = guard.client_ip.from_scope(request.scope)
        pair = await run_in_threadpool(svc.login, body, address)
        return JSONResponse(svc.pair_json(pair))

    async def refresh(request: Request) -> Response:
        body = await read_json(request)
        return JSONResponse(svc.pair_json(await run_in_threadpool(svc.refresh, body)))

    @auth
    async def me(request: Request) -> Response:
        return JSONResponse({"sub": request.state.auth["sub"]})

    @auth
    async def logout_all(request: Request) -> Response:
        await run_in_threadpool(svc.logout_all, request.state.auth)
        return Response(status_code=204)

    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/", page, methods=["GET"]),
            Route("/register", register, methods=["POST"]),
            Route("/login", login, methods=["POST"]),
            Route("/refresh", refresh, methods=["POST"]),
            Route("/me", me, methods=["GET"]),
            Route("/logout-all", logout_all, methods=["POST"]),
        ]
    )
    guard = bg_fastapi.install(app, settings)
    app.state.service = svc
    return app


app = create_app()
