"""FastAPI and Starlette integration: the whole stack in one call, problem responses in OpenAPI.

Everything here only wires the ASGI shells and the exception handlers onto an app; no policy lives here.

Example::

    from fastapi import FastAPI
    import backend_guard as bg
    import backend_guard.fastapi

    app = FastAPI()
    guard = backend_guard.fastapi.install(app, bg.GuardSettings(cors={"allow_origins": ["https://app.example"]}))

    @app.post("/login", dependencies=[Depends(guard.limiter.dependency("5/minute"))])
    async def login(...): ...
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ._routes import problem_statuses
from ._shell_browser import ExemptPaths
from ._stack import StackParts
from .asgi import _shells as asgi_shells
from .config import GuardSettings
from .csrf import SAFE_METHODS, is_csrf_exempt
from .errors import ErrorPolicy, status_title
from .headers import OVERRIDE_KEY, ContentSecurityPolicy, SecureHeaders
from .integrations._errors_fastapi import install_fastapi_error_handlers
from .storage import Store

__all__ = ["PROBLEM_SCHEMA", "docs_headers", "document_problem_responses", "install", "install_error_handlers"]

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

# On every operation. 401/403 and the like only where a guard can answer them (its hooks' ``statuses``), and
# 401 wherever the operation has an OpenAPI security requirement, whoever declared it.
_DEFAULT_STATUSES = (422, 429, 500)


def docs_headers() -> SecureHeaders:
    """The security headers for FastAPI's own ``/docs`` and ``/redoc`` pages.

    Those pages load Swagger UI / ReDoc from ``cdn.jsdelivr.net`` and start them with an inline script that
    FastAPI writes, so the strict stack policy would leave them blank. This policy allows exactly those
    origins and inline code on those pages only; every other route keeps the stack's policy.

    Example::

        backend_guard.fastapi.install(app, settings, docs_policy=backend_guard.fastapi.docs_headers())
    """
    return SecureHeaders(
        preset="web",
        csp=ContentSecurityPolicy(
            {
                "default-src": ["'self'"],
                "script-src": ["'self'", "https://cdn.jsdelivr.net", "'unsafe-inline'"],
                "style-src": ["'self'", "https://cdn.jsdelivr.net", "https://fonts.googleapis.com", "'unsafe-inline'"],
                "img-src": ["'self'", "https://fastapi.tiangolo.com", "https://cdn.redoc.ly", "data:"],
                "font-src": ["https://fonts.gstatic.com"],
                "worker-src": ["blob:"],
                "connect-src": ["'self'"],
                "frame-ancestors": ["'none'"],
                "base-uri": ["'none'"],
                "object-src": ["'none'"],
            }
        ),
    )


def _relax_docs(app: Any, policy: SecureHeaders) -> None:
    """Give FastAPI's docs routes ``policy`` (a per-route override read by SecureHeadersMiddleware)."""
    paths = {getattr(app, name, None) for name in ("docs_url", "redoc_url", "swagger_ui_oauth2_redirect_url")}
    paths.discard(None)
    for route in getattr(app, "routes", ()):
        if getattr(route, "path", None) in paths:
            inner = route.app

            async def docs_page(scope: Any, receive: Any, send: Any, inner: Any = inner) -> None:
                scope.setdefault("state", {})[OVERRIDE_KEY] = policy
                await inner(scope, receive, send)

            route.app = docs_page


def install(
    app: Any,
    settings: GuardSettings | None = None,
    *,
    store: Store | None = None,
    openapi: bool = True,
    docs_policy: SecureHeaders | None = None,
) -> StackParts:
    """Put the whole stack on a FastAPI or Starlette ``app``, in the documented order; return its parts.

    Adds (outermost first) ProxyHeaders (with ``trusted_proxies``: the client address, scheme and host resolved
    once and written into the request for every layer, decorator and ``request.client``), RequestId,
    SecureHeaders, CORS, the error handlers and ErrorEnvelope, and RateLimit,
    each when enabled in ``settings``; documents the problem responses in FastAPI's OpenAPI (422/429/500 on
    every operation, 401/403 only where a guard can answer them; see :func:`document_problem_responses`;
    ``openapi=False`` to skip). FastAPI's own ``/docs`` and ``/redoc`` pages get ``docs_policy`` (default:
    :func:`docs_headers`, which lets Swagger UI and ReDoc load; disable the docs in production with
    ``FastAPI(docs_url=None, redoc_url=None)``). The returned :class:`~backend_guard._stack.StackParts` holds
    the shared store, the limiter (always a RateLimiter on that store, with or without ``rate_limit``
    settings) and the configured parts on the same store: ``guard.lockout()``, ``guard.tokens()``,
    ``guard.passwords()``, each built once; it is also ``app.state.backend_guard``.

    Example::

        app = FastAPI()
        guard = backend_guard.fastapi.install(app, bg.GuardSettings.from_env())
        lock = guard.lockout()

        @app.get("/search")
        @guard.limiter.limit("10/second")
        async def search(q: str): ...
    """
    parts = StackParts.build(settings, store=store)
    # Starlette puts the middleware added last outermost: add them from the inside out, as parts.middlewares
    # lists them.
    for section, cls, options in parts.middlewares(asgi_shells):
        if section == "errors":  # the exception handlers, and the envelope for what they do not catch
            install_fastapi_error_handlers(app, parts.errors, middleware=True)
            continue
        app.add_middleware(cls, **options)
        if section == "secure_headers":
            _relax_docs(app, docs_policy if docs_policy is not None else docs_headers())
    if openapi and hasattr(app, "openapi_schema"):
        exempt = parts.csrf_exempt_paths if parts.csrf is not None else None
        document_problem_responses(app, _documented_statuses(parts), csrf_exempt_paths=exempt)
    app.state.backend_guard = parts
    return parts


def _documented_statuses(parts: StackParts) -> tuple[int, ...]:
    """The statuses every operation of an installed app can answer: the defaults, and 400 with a ``Host``
    allowlist (the cross-origin 403 concerns only the unsafe operations not exempt: :func:`_cross_origin_guarded`)."""
    return (*_DEFAULT_STATUSES, 400) if parts.trusted_hosts is not None else _DEFAULT_STATUSES


def install_error_handlers(app: Any, policy: ErrorPolicy | None = None, **options: Any) -> ErrorPolicy:
    """Only the problem-document exception handlers (and the error middleware) on a FastAPI/Starlette app.

    ``options`` are :class:`~backend_guard.errors.ErrorPolicy` fields, e.g. ``format="envelope"``.

    Example::

        backend_guard.fastapi.install_error_handlers(app, format="envelope")
    """
    return install_fastapi_error_handlers(app, policy, **options)


def _guard_statuses(app: Any) -> dict[tuple[str, str], frozenset[int]]:
    """(path, method) -> the statuses the backend_guard guards of that route can answer with.

    Guards are found on the route function (decorators such as ``tm.require_auth``) and in its dependency
    tree (``Depends(tm.dependency())``, router-level dependencies).
    """
    found: dict[tuple[str, str], frozenset[int]] = {}
    for route in getattr(app, "routes", ()):
        path = getattr(route, "path_format", None)
        endpoint = getattr(route, "endpoint", None)
        if path is None or endpoint is None:
            continue
        statuses = problem_statuses(endpoint)
        pending = list(getattr(getattr(route, "dependant", None), "dependencies", ()))
        while pending:
            dependant = pending.pop()
            call = getattr(dependant, "call", None)
            if call is not None:
                statuses |= problem_statuses(call)
            pending.extend(getattr(dependant, "dependencies", ()))
        for method in getattr(route, "methods", None) or ():
            found[(path, method.lower())] = statuses
    return found


def _cross_origin_guarded(app: Any, exempt_paths: Iterable[str]) -> set[tuple[str, str]]:
    """(path, method) of each operation the cross-origin protection judges: an unsafe method, a route not marked
    ``csrf_exempt``, a path not exempt (templates are matched as written: ``/hooks/`` exempts ``/hooks/{id}``)."""
    exempt = ExemptPaths(exempt_paths)
    found: set[tuple[str, str]] = set()
    for route in getattr(app, "routes", ()):
        path = getattr(route, "path_format", None)
        if path is None or is_csrf_exempt(getattr(route, "endpoint", None)) or exempt.is_exempt(path):
            continue
        found.update((path, m.lower()) for m in getattr(route, "methods", None) or () if m not in SAFE_METHODS)
    return found


def document_problem_responses(
    app: Any, statuses: tuple[int, ...] = _DEFAULT_STATUSES, *, csrf_exempt_paths: Iterable[str] | None = None
) -> None:
    """Declare ``application/problem+json`` responses in a FastAPI app's OpenAPI, where they can happen.

    ``statuses`` (default 422, 429, 500) go on every operation. 401 and 403 go only on the operations that can
    answer them: a route guarded by ``tm.require_auth`` or ``Depends(tm.dependency())`` gets 401, and 403 when
    it requires scopes; any operation with an OpenAPI ``security`` requirement gets 401; a login route guarded
    by ``lock.protect()`` or ``Depends(lock.dependency())`` gets the lockout's 400, 413, 415, 429 (401 in
    generic mode) and 503. Listing 401 or 403 in ``statuses`` puts them on every operation. With
    ``csrf_exempt_paths`` (not None: cross-origin protection runs, these paths exempt), every unsafe operation
    not exempt gets the 403 ``cross-origin-request``; ``install`` passes it when ``csrf`` is on.

    Example::

        document_problem_responses(app, statuses=(422, 429))
    """
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema  # type: ignore[no-any-return]
        schema: dict[str, Any] = original()
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        content = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        guarded = _guard_statuses(app)
        cross_origin = set() if csrf_exempt_paths is None else _cross_origin_guarded(app, csrf_exempt_paths)
        for path, path_item in schema.get("paths", {}).items():
            for method, operation in path_item.items():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                own = set(guarded.get((path, method), ()))
                if operation.get("security"):
                    own.add(401)
                if (path, method) in cross_origin:
                    own.add(403)
                for status in sorted({*statuses, *own}):
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
    return f'"#/components/schemas/{name}"' in json.dumps(schema)
