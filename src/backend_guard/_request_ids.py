"""The request id a RequestIdMiddleware left on a framework's request object (Starlette, Flask, Django): what
route refusals and the token cookies' problem documents carry."""

from __future__ import annotations

from typing import Any

__all__ = ["request_id_of"]


def request_id_of(request: Any) -> str | None:
    """The request id a RequestIdMiddleware left on a framework request (Starlette, Flask, Django), if any.

    Example::

        native_problem("flask", exc, request_id_of(flask.request))
    """
    rid = _scope_request_id(request) or _environ_request_id(request)
    return str(rid) if rid else None


def _scope_request_id(request: Any) -> Any:
    """The request id an ASGI RequestIdMiddleware left in ``scope["state"]``, if any."""
    scope = getattr(request, "scope", None)
    if isinstance(scope, dict) and scope.get("state"):
        return scope["state"].get("request_id")
    return None


def _environ_request_id(request: Any) -> Any:
    """The request id a WSGI RequestIdMiddleware left in the environ (or on the request object), if any."""
    environ = getattr(request, "environ", None) or getattr(request, "META", None) or {}
    return environ.get("backend_guard.request_id") or getattr(request, "request_id", None)
