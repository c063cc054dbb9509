"""Problem-document exception handlers for FastAPI and Starlette apps.

:func:`install_fastapi_error_handlers` registers handlers for ``HTTPException`` (headers kept),
``RequestValidationError`` and pydantic ``ValidationError`` (422 with JSON pointers, never the input) and
every :class:`~backend_guard.exceptions.GuardError`, and adds the ASGI
:class:`~backend_guard.asgi._errors.ErrorEnvelopeMiddleware` for everything else (an unexpected exception
becomes a generic 500 inside the user middleware stack, so RequestId/SecureHeaders/CORS still apply to it).
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any

from .._http import request_id_from_scope
from .._logging import log_server_error
from ..asgi._errors import ErrorEnvelopeMiddleware
from ..errors import ErrorPolicy
from ..exceptions import GuardError
from ..request import _scope_route

__all__ = ["install_fastapi_error_handlers", "problem_exception_handler"]


def problem_exception_handler(policy: ErrorPolicy) -> Any:
    """An ``async (request, exc) -> Response`` Starlette exception handler rendering ``exc`` under ``policy``.

    Example::

        app.add_exception_handler(MyError, problem_exception_handler(ErrorPolicy()))
    """
    from starlette.responses import Response

    async def handler(request: Any, exc: Exception) -> Any:
        status_code = getattr(exc, "status_code", None)
        if isinstance(status_code, int) and status_code < 400 and not isinstance(exc, GuardError):
            # An HTTPException used for a redirect or a 304: not an error, keep its status and headers.
            return Response(status_code=status_code, headers=getattr(exc, "headers", None))
        scope = request.scope
        info = policy.info(exc)
        if info.server_error:
            with contextlib.suppress(Exception):
                log_server_error(
                    exc,
                    logger=policy.logger,
                    request_id=request_id_from_scope(scope),
                    method=str(scope.get("method", "")),
                    route=_scope_route(scope) or str(scope.get("path", "")),
                    status=info.status,
                )
        status, headers, body = policy.render(info, request_id=request_id_from_scope(scope), path=scope.get("path"))
        response = Response(status_code=status)
        response.body = body
        response.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        return response

    return handler


def install_fastapi_error_handlers(
    app: Any, policy: ErrorPolicy | None = None, *, middleware: bool = True, **options: Any
) -> ErrorPolicy:
    """Make every error of a FastAPI or Starlette ``app`` a problem document (or the policy's format).

    ``options`` are :class:`~backend_guard.errors.ErrorPolicy` fields (``format="envelope"``,
    ``expose_exception_details=True`` for development only). With ``middleware=True`` (default) an
    :class:`~backend_guard.asgi._errors.ErrorEnvelopeMiddleware` is added for unexpected exceptions; add
    RequestId/SecureHeaders/CORS *after* calling this, so they wrap it. Returns the policy.

    Example::

        app = FastAPI()
        install_fastapi_error_handlers(app, format="envelope")
        app.add_middleware(RequestIdMiddleware)
    """
    from starlette.exceptions import HTTPException

    policy = policy if policy is not None else ErrorPolicy(**options)
    handler = problem_exception_handler(policy)
    app.add_exception_handler(HTTPException, handler)
    app.add_exception_handler(GuardError, handler)
    try:
        from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
    except ImportError:  # plain Starlette
        pass
    else:
        app.add_exception_handler(RequestValidationError, handler)
        app.add_exception_handler(WebSocketRequestValidationError, handler)
    from pydantic import ValidationError

    app.add_exception_handler(ValidationError, handler)
    if middleware:
        # The handlers already convert the framework's own errors; the app's deliberate responses stay, unless
        # rewrite_plain_errors="always" asks for every plain error page (a mounted app's 404/405 among them).
        inner = policy if policy.rewrite_plain_errors == "always" else replace(policy, rewrite_plain_errors="never")
        app.add_middleware(ErrorEnvelopeMiddleware, policy=inner)
    else:
        app.add_exception_handler(Exception, handler)
    return policy
