"""FastAPI and Starlette integration: the whole stack in one call, problem responses in OpenAPI.

Everything here only wires the ASGI shells and the exception handlers onto an app; no policy lives here.

Example::

    from fastapi import FastAPI
    import backend_guard as bg
    import backend_guard.fastapi

    app = FastAPI()
    guard = backend_guard.fastapi.install(app, bg.GuardSettings(cors={"allow_origins": ["https://app.example"]}))
    limiter = guard.limiter or bg.RateLimiter()

    @app.post("/login", dependencies=[Depends(limiter.dependency("5/minute"))])
    async def login(...): ...
"""

from __future__ import annotations

from typing import Any

from ._stack import StackParts
from .config import GuardSettings
from .errors import ErrorPolicy, status_title
from .integrations._errors_fastapi import install_fastapi_error_handlers
from .storage import Store

__all__ = ["PROBLEM_SCHEMA", "document_problem_responses", "install", "install_error_handlers"]

#: JSON Schema of an RFC 9457 problem document as backend_guard writes it.
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri-reference", "default": "about:blank"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "code": {"type": "string", "description": "A stable slug, e.g. rate-limited."},
        "request_id": {"type": "string"},
        "retry_after": {"type": "integer", "description": "Seconds to wait (429)."},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "pointer": {"type": "string", "description": "JSON pointer, e.g. /body/email"},
                    "detail": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}

_DEFAULT_STATUSES = (401, 403, 422, 429, 500)


def install(
    app: Any,
    settings: GuardSettings | None = None,
    *,
    store: Store | None = None,
    openapi: bool = True,
) -> StackParts:
    """Put the whole stack on a FastAPI or Starlette ``app``, in the documented order; return its parts.

    Adds (outermost first) RequestId, SecureHeaders, CORS, the error handlers and ErrorEnvelope, and RateLimit,
    each when enabled in ``settings``; documents the 401/403/422/429/500 problem responses in FastAPI's OpenAPI
    (``openapi=False`` to skip). The returned :class:`~backend_guard._stack.StackParts` holds the shared store,
    the limiter and factories for the lockout and token parts on the same store; it is also
    ``app.state.backend_guard``.

    Example::

        app = FastAPI()
        guard = backend_guard.fastapi.install(app, bg.GuardSettings.from_env())
        lock = guard.lockout()
    """
    from .asgi import CORSMiddleware, RateLimitMiddleware, RequestIdMiddleware, SecureHeadersMiddleware

    parts = StackParts.build(settings, store=store)
    # Starlette puts the middleware added last outermost: add from the inside out.
    if parts.limiter is not None:
        app.add_middleware(RateLimitMiddleware, **parts.rate_limit_options())
    if parts.errors is not None:
        install_fastapi_error_handlers(app, parts.errors, middleware=True)
    if parts.cors is not None:
        app.add_middleware(CORSMiddleware, policy=parts.cors)
    if parts.secure_headers is not None:
        app.add_middleware(SecureHeadersMiddleware, policy=parts.secure_headers, client_ip=parts.client_ip)
    if parts.request_id is not None:
        app.add_middleware(RequestIdMiddleware, **parts.request_id)
    if openapi and hasattr(app, "openapi_schema"):
        document_problem_responses(app)
    app.state.backend_guard = parts
    return parts


def install_error_handlers(app: Any, policy: ErrorPolicy | None = None, **options: Any) -> ErrorPolicy:
    """Only the problem-document exception handlers (and the error middleware) on a FastAPI/Starlette app.

    ``options`` are :class:`~backend_guard.errors.ErrorPolicy` fields, e.g. ``format="envelope"``.

    Example::

        backend_guard.fastapi.install_error_handlers(app, format="envelope")
    """
    return install_fastapi_error_handlers(app, policy, **options)


def document_problem_responses(app: Any, statuses: tuple[int, ...] = _DEFAULT_STATUSES) -> None:
    """Declare ``application/problem+json`` responses for ``statuses`` on every operation of a FastAPI app.

    Example::

        document_problem_responses(app, statuses=(401, 429))
    """
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema  # type: ignore[no-any-return]
        schema: dict[str, Any] = original()
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        content = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                for status in statuses:
                    entry = operation["responses"].setdefault(str(status), {"description": status_title(status)})
                    entry["content"] = content
        schemas = schema["components"]["schemas"]
        for unused in ("HTTPValidationError", "ValidationError"):
            if not _referenced(schema, unused):
                schemas.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi


def _referenced(schema: dict[str, Any], name: str) -> bool:
    import json

    return f'"#/components/schemas/{name}"' in json.dumps(schema)
