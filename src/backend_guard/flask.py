"""Flask integration: an extension that puts the whole stack on an app, configured from ``app.config``.

Example::

    from flask import Flask
    import backend_guard.flask

    app = Flask(__name__)
    app.config["BACKEND_GUARD"] = {"cors": {"allow_origins": ["https://app.example.com"]}}
    guard = backend_guard.flask.Guard(app)     # or Guard() and guard.init_app(app) in a factory

    @app.post("/login")
    @backend_guard.flask.parts(app).limiter.limit("5/minute")
    def login(): ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .integrations._errors_flask import install_flask_error_handlers, install_flask_request_id

if TYPE_CHECKING:
    from .errors import ErrorPolicy
    from .integrations._guard_flask import Guard, parts
else:
    # ``Guard`` and ``parts`` are imported when first read (PEP 562): they build the stack from GuardSettings,
    # which loads pydantic; ``install_error_handlers`` and ``install_request_id`` alone load no settings.
    from ._lazy import lazy_names

    __getattr__, __dir__ = lazy_names(
        __package__, globals(), {name: (".integrations._guard_flask", name) for name in ("Guard", "parts")}
    )


__all__ = ["Guard", "install_error_handlers", "install_request_id", "parts"]


def install_error_handlers(app: Any, policy: ErrorPolicy | None = None, **options: Any) -> ErrorPolicy:
    """Only the problem-document error handlers on a Flask app (``options``: ErrorPolicy fields).

    Example::

        backend_guard.flask.install_error_handlers(app, format="envelope")
    """
    return install_flask_error_handlers(app, policy, **options)


def install_request_id(app: Any, **options: Any) -> Any:
    """Only request ids on a Flask app: ``g.request_id``, the response header, log records.

    Example::

        backend_guard.flask.install_request_id(app, trust_incoming=False)
    """
    return install_flask_request_id(app, **options)
