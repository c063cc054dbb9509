"""The Flask extension :class:`Guard` and :func:`parts`, re-exported by ``backend_guard.flask``.

They live here, loaded when first read from ``backend_guard.flask``, because they build the stack from
:class:`~backend_guard.config.GuardSettings` (pydantic); the error handlers and request ids alone need neither.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .._http import ENVIRON_REQUEST_ID
from .._stack import StackParts
from ..config import GuardSettings
from ..exceptions import ConfigurationError
from ..ratelimit import check_rule_routes
from ..storage import Store
from ..wsgi import Guard as WSGIGuard
from ._errors_flask import install_flask_error_handlers
from ._headers_jinja import init_flask
from ._known_routes import flask_routes
from ._operate_flask import guard_command

__all__ = ["CONFIG_KEY", "Guard", "parts"]

CONFIG_KEY = "BACKEND_GUARD"


class Guard:
    """The Flask extension: RequestId, SecureHeaders, CORS, error handlers + ErrorEnvelope and RateLimit.

    Settings come from ``settings=`` or ``app.config["BACKEND_GUARD"]`` (a dict or a GuardSettings; a dict, or
    none, is read over the ``BACKEND_GUARD_...`` environment variables, the dict winning field by field). After
    ``init_app``, ``g.request_id`` and the Jinja global ``csp_nonce()`` are available in requests, and the parts
    are at ``app.extensions["backend_guard"]`` and :func:`parts` (``.limiter``, always a RateLimiter; ``.store``;
    ``.lockout()``, ``.tokens()``, ``.passwords()``, each built once from the settings and then shared).

    Example::

        guard = backend_guard.flask.Guard()

        def create_app():
            app = Flask(__name__)
            app.config["BACKEND_GUARD"] = {"rate_limit": {"default_limits": "100/minute"}}
            guard.init_app(app)
            return app
    """

    def __init__(self, app: Any = None, settings: GuardSettings | None = None, *, store: Store | None = None) -> None:
        self.settings = settings
        self.store = store
        self.parts: StackParts | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Any) -> StackParts:
        """Install the stack on ``app``; returns its parts."""
        from flask import g, request

        settings = (
            self.settings
            if self.settings is not None
            else GuardSettings.coerce(app.config.get(CONFIG_KEY), f"app.config[{CONFIG_KEY!r}]")
        )
        parts = StackParts.build(settings, store=self.store)
        if parts.errors is not None:
            install_flask_error_handlers(app, parts.errors, middleware=False)
            # Flask's handlers already shape every error; the middleware only catches what escapes Flask.
            parts.errors = replace(parts.errors, rewrite_plain_errors="never")
        app.wsgi_app = WSGIGuard(app.wsgi_app, parts=parts)

        def expose_request_id() -> None:
            g.request_id = request.environ.get(ENVIRON_REQUEST_ID)

        app.before_request(expose_request_id)
        if parts.rate_limit and parts.rules and parts.settings.rate_limit.check_routes:
            app.before_request(_RouteCheck(app, parts))
        init_flask(app)
        app.cli.add_command(guard_command(lambda: parts))  # flask guard locks list, ... on these parts
        app.extensions["backend_guard"] = parts
        self.parts = parts
        return parts


class _RouteCheck:
    """Before the first request (Flask has no start-up hook; routes are registered after ``init_app``), refuse
    a rate limit rule matching none of the app's routes: that request and every later one fail with the
    ConfigurationError (a logged 500) until the rule is fixed."""

    def __init__(self, app: Any, parts: StackParts) -> None:
        self.app = app
        self.rules = parts.rules
        self.done = False

    def __call__(self) -> None:
        if self.done:
            return
        from flask import request

        routes = flask_routes(self.app, request.script_root)
        if routes is not None:
            check_rule_routes(self.rules, routes)
        self.done = True


def parts(app: Any = None) -> StackParts:
    """The parts :class:`Guard` installed on ``app`` (default: the current app): the objects its stack uses.

    ``.limiter`` (a RateLimiter on the stack's store, with or without ``rate_limit`` limits), ``.store``, and
    ``.lockout()``, ``.tokens()``, ``.passwords()`` built from the settings on the first call and the same
    object on every later call. Raises ConfigurationError when ``Guard`` was not installed on the app.

    Example::

        from flask import current_app

        def login():
            lock = backend_guard.flask.parts().lockout()   # in a request or app context
            ...
    """
    if app is None:
        from flask import current_app

        app = current_app
    found = app.extensions.get("backend_guard")
    if not isinstance(found, StackParts):
        raise ConfigurationError("backend_guard.flask.Guard is not installed on this app: call Guard(app) first.")
    return found
