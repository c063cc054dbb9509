"""The CSP nonce as a Jinja global, for Flask and for Starlette/FastAPI's ``Jinja2Templates``.

In templates: ``<script nonce="{{ csp_nonce() }}">`` (Flask) or ``{{ csp_nonce(request) }}`` (Starlette).
"""

from __future__ import annotations

from typing import Any

from ..headers import csp_nonce

__all__ = ["init_flask", "register_jinja"]


def register_jinja(env: Any) -> None:
    """Make ``csp_nonce`` a global of a Jinja ``Environment`` (e.g. ``Jinja2Templates(...).env``).

    Example::

        templates = Jinja2Templates(directory="templates")
        register_jinja(templates.env)       # {{ csp_nonce(request) }}
    """
    env.globals["csp_nonce"] = csp_nonce


def init_flask(app: Any) -> None:
    """Offer ``csp_nonce()`` to a Flask app's templates (it also sets ``g.csp_nonce`` when first used).

    Example::

        init_flask(app)                     # {{ csp_nonce() }} in a template
    """
    register_jinja(app.jinja_env)
