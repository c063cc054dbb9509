"""Problem-document error handlers and the request id for Flask apps.

:func:`install_flask_error_handlers` registers handlers for werkzeug ``HTTPException`` (Flask's own 404/405
become problem documents for API clients; ``Allow`` and other headers kept), every
:class:`~backend_guard.exceptions.GuardError`, pydantic ``ValidationError`` (422) and any other exception
(a generic 500, logged once; also in debug mode). :func:`install_flask_request_id` adds the request id.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any

from .._http import ENVIRON_REQUEST_ID
from .._logging import RequestIdPolicy, log_server_error
from ..errors import ErrorPolicy, prefers_html
from ..exceptions import GuardError
from ..wsgi._errors import ErrorEnvelopeMiddleware
from ..wsgi._request_id import RequestIdMiddleware

__all__ = ["install_flask_error_handlers", "install_flask_request_id"]


def _request_id() -> str | None:
    from flask import g, request

    rid = getattr(g, "request_id", None)
    return rid if isinstance(rid, str) else request.environ.get(ENVIRON_REQUEST_ID)


def install_flask_error_handlers(
    app: Any, policy: ErrorPolicy | None = None, *, middleware: bool = True, **options: Any
) -> ErrorPolicy:
    """Make every error of a Flask ``app`` a problem document (or the policy's format).

    ``options`` are :class:`~backend_guard.errors.ErrorPolicy` fields. Werkzeug's own error pages follow
    ``rewrite_plain_errors`` (default ``"api"``: a browser asking for HTML still gets the HTML page). With
    ``middleware=True`` (default) ``app.wsgi_app`` is also wrapped in the WSGI ErrorEnvelopeMiddleware, which
    catches what Flask's handlers cannot see: errors raised while a streamed body is being sent.
    Returns the policy.

    Example::

        app = Flask(__name__)
        install_flask_request_id(app)
        install_flask_error_handlers(app)
    """
    from flask import Response, request
    from pydantic import ValidationError
    from werkzeug.exceptions import HTTPException

    policy = policy if policy is not None else ErrorPolicy(**options)

    def render(exc: BaseException) -> Any:
        info = policy.info(exc)
        rid = _request_id()
        if info.server_error:
            with contextlib.suppress(Exception):
                rule = request.url_rule
                log_server_error(
                    exc,
                    logger=policy.logger,
                    request_id=rid,
                    method=request.method,
                    route=rule.rule if rule is not None else request.path,
                    status=info.status,
                )
        status, headers, body = policy.render(info, request_id=rid, path=request.path)
        return Response(body, status=status, headers=headers)

    def on_http_exception(exc: HTTPException) -> Any:
        if exc.code is None or exc.code < 400:  # a routing redirect, not an error
            return exc
        mode = policy.rewrite_plain_errors
        if mode == "never" or (mode == "api" and prefers_html(request.headers.get("Accept"))):
            return exc
        return render(exc)

    app.register_error_handler(HTTPException, on_http_exception)
    app.register_error_handler(GuardError, render)
    app.register_error_handler(ValidationError, render)
    # Registered for Exception itself, Flask calls it directly (no InternalServerError wrapping, no second
    # log line from Flask, no debug page): one generic 500, logged once by us.
    app.register_error_handler(Exception, render)
    if middleware:
        # The handlers already convert Flask's own pages; the app's deliberate responses stay as they are.
        app.wsgi_app = ErrorEnvelopeMiddleware(app.wsgi_app, replace(policy, rewrite_plain_errors="never"))
    return policy


def install_flask_request_id(app: Any, policy: RequestIdPolicy | None = None, **options: Any) -> RequestIdPolicy:
    """Give every request of a Flask ``app`` an id: ``g.request_id``, the response header and log records.

    Wraps ``app.wsgi_app`` in the WSGI :class:`~backend_guard.wsgi._request_id.RequestIdMiddleware` (so even
    Flask's own 500s carry the header) and copies the id to ``flask.g`` before each request.

    Example::

        install_flask_request_id(app, trust_incoming=False)

        @app.get("/")
        def home():
            return {"request_id": g.request_id}
    """
    from flask import g, request

    policy = policy if policy is not None else RequestIdPolicy(**options)
    app.wsgi_app = RequestIdMiddleware(app.wsgi_app, policy)

    def set_request_id() -> None:
        g.request_id = request.environ.get(ENVIRON_REQUEST_ID)

    app.before_request(set_request_id)
    return policy
