"""A small immutable view of a request, built from any framework's request, for the sans-IO core.

The core never sees a framework object: shells and decorators build a :class:`RequestView` (method, path,
route template, headers, client address, scheme, host) and pass plain values on. Builders exist for an ASGI
scope and a WSGI environ (in ``_view.py``) and, through each framework's adapter (``_adapter.py``), for
Starlette/FastAPI, Flask (werkzeug) and Django request objects. This module is the public path of them all.
"""

from __future__ import annotations

from typing import Any

from ._adapter import adapter_named, adapter_of
from ._view import RequestView, view_from_environ, view_from_scope

# Re-exported (``x as x``): the paths other modules read these by (the ASGI and WSGI error envelopes).
from ._view import _scope_route as _scope_route
from ._view import _wsgi_text as _wsgi_text
from ._view import headers_from_pairs as headers_from_pairs
from .clientip import ClientIP

__all__ = ["RequestView", "framework_view", "view_from_environ", "view_from_request", "view_from_scope"]


def framework_of(obj: Any) -> str | None:
    """``"starlette"``, ``"flask"`` or ``"django"`` for a request object of that framework, else None.

    Example::

        framework_of(flask.request)   # "flask"
    """
    adapter = adapter_of(obj)
    return None if adapter is None else adapter.name


def view_from_request(request: Any, client_ip: ClientIP | None = None) -> RequestView:
    """A view of a Starlette/FastAPI, Flask (werkzeug) or Django request object.

    Example::

        @app.get("/")
        async def home(request: Request):
            view = view_from_request(request)
    """
    adapter = adapter_of(request)
    if adapter is None:
        raise TypeError(f"Not a request object backend_guard knows: {type(request).__name__}")
    return adapter.view(request, client_ip)


def framework_view(framework: str, request: Any, client_ip: ClientIP | None = None) -> RequestView:
    """A view of a request of a known framework (what :func:`framework_of` answered for it).

    Example::

        view = framework_view("flask", flask.request)
    """
    return adapter_named(framework).view(request, client_ip)
