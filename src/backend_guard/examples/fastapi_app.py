"""The FastAPI example (also what ``backend-guard demo`` serves).

Run: ``uvicorn backend_guard.examples.fastapi_app:app`` (settings from ``BACKEND_GUARD_...`` variables).
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from .. import fastapi as bg_fastapi
from ..config import GuardSettings
from ..headers import SecureHeaders, csp_nonce
from .service import PAGE, AuthService


class Credentials(BaseModel):
    """The login and register body."""

    email: str
    password: str


class RefreshBody(BaseModel):
    """The refresh body."""

    refresh_token: str


def create_app(settings: GuardSettings | None = None, service: AuthService | None = None) -> FastAPI:
    """The example app; ``settings`` default to the environment (``GuardSettings.from_env()``)."""
    settings = settings if settings is not None else GuardSettings.from_env()
    service = service if service is not None else AuthService.create()
    web = SecureHeaders(preset="web")
    app = FastAPI(title="backend_guard demo", docs_url=None, redoc_url=None)
    guard = bg_fastapi.install(app, settings)
    limiter = service.limiter

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse)
    @web.route()
    def page(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE.format(nonce=csp_nonce(request)))

    @app.post("/register", status_code=201)
    @limiter.limit("20/minute")
    def register(body: Credentials) -> dict[str, str]:
        return service.register(body.model_dump())

    @app.post("/login")
    @limiter.limit(AuthService.LOGIN_LIMIT)
    def login(body: Credentials, request: Request) -> dict[str, Any]:
        address = guard.client_ip.from_scope(request.scope)
        return service.pair_json(service.login(body.model_dump(), address))

    @app.post("/refresh")
    def refresh(body: RefreshBody) -> dict[str, Any]:
        return service.pair_json(service.refresh(body.model_dump()))

    @app.get("/me")
    def me(claims: dict[str, Any] = Depends(service.tokens.dependency())) -> dict[str, Any]:  # noqa: B008
        return {"sub": claims["sub"]}

    @app.post("/logout-all", status_code=204)
    def logout_all(claims: dict[str, Any] = Depends(service.tokens.dependency())) -> Response:  # noqa: B008
        service.logout_all(claims)
        return Response(status_code=204)

    app.state.service = service
    return app


app = create_app()
