"""The Flask example: the same routes as the FastAPI one, on the ``backend_guard.flask.Guard`` extension.

Run: ``flask --app backend_guard.examples.flask_app run`` (development server) or, for real,
``waitress-serve --port 8000 backend_guard.examples.flask_app:app``. Settings come from
``app.config["BACKEND_GUARD"]`` when set, else from ``BACKEND_GUARD_...`` variables.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, Response, g, jsonify, request

from ..config import GuardSettings
from ..flask import Guard
from ..headers import SecureHeaders, csp_nonce
from .service import PAGE, AuthService, BadRequest

__all__ = ["app", "create_app"]


def read_json() -> Any:
    """The current request's JSON body, or BadRequest (a clean 400 problem document) when it is not JSON."""
    try:
        return json.loads(request.get_data(cache=False))
    except (ValueError, RecursionError):  # RecursionError: pathologically nested input
        raise BadRequest("The body is not valid JSON.") from None


def create_app(settings: GuardSettings | None = None, service: AuthService | None = None) -> Flask:
    """The example app; ``settings`` default to the environment (``GuardSettings.from_env()``).

    Example::

        app = create_app(bg.GuardSettings(cors={"allow_origins": ["https://app.example.com"]}))
    """
    app = Flask(__name__)
    app.config["BACKEND_GUARD"] = settings if settings is not None else GuardSettings.from_env()
    svc = service if service is not None else AuthService.create()
    guard = Guard()
    parts = guard.init_app(app)  # reads app.config["BACKEND_GUARD"]; an app factory does just this
    web = SecureHeaders(preset="web")
    limiter = svc.limiter
    auth = svc.tokens.require_auth()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/")
    @web.route()
    def page() -> str:
        return PAGE.format(nonce=csp_nonce())

    @app.post("/register")
    @limiter.limit("20/minute")
    def register() -> tuple[Response, int]:
        return jsonify(svc.register(read_json())), 201

    @app.post("/login")
    @limiter.limit(AuthService.LOGIN_LIMIT)
    def login() -> dict[str, Any]:
        address = parts.client_ip.from_environ(request.environ)
        return svc.pair_json(svc.login(read_json(), address))

    @app.post("/refresh")
    def refresh() -> dict[str, Any]:
        return svc.pair_json(svc.refresh(read_json()))

    @app.get("/me")
    @auth
    def me() -> dict[str, Any]:
        return {"sub": g.auth["sub"]}

    @app.post("/logout-all")
    @auth
    def logout_all() -> tuple[str, int]:
        svc.logout_all(g.auth)
        return "", 204

    app.extensions["backend_guard_demo"] = svc
    return app


app = create_app()
