"""The OpenAPI side of bearer-token routes in FastAPI: one HTTP ``bearer`` security scheme, declared per route.

Routes guarded by :meth:`~backend_guard.tokens.TokenManager.require_auth` or using
:meth:`~backend_guard.tokens.TokenManager.dependency` get a ``Security`` parameter naming this scheme (with the
route's scopes), so FastAPI lists ``components.securitySchemes``, the route's ``security`` requirement, and
Swagger UI shows its "Authorize" button. The scheme only declares itself: the token is read and checked by
backend_guard's own hooks, so this adds no second parsing of the header.
"""

# No ``from __future__ import annotations`` here: FastAPI < 0.115 resolves a callable instance's annotations in
# an empty namespace, so ``_DeclaredBearer.__call__`` must carry the real ``HTTPConnection`` class, not its name.
import inspect
from collections.abc import Sequence
from typing import Any

from fastapi import Security
from fastapi.security import HTTPBearer
from starlette.requests import HTTPConnection

__all__ = ["BEARER_SCHEME_NAME", "bearer_parameter"]

#: The name of the security scheme in ``components.securitySchemes`` (HTTP ``bearer``, ``bearerFormat: JWT``).
BEARER_SCHEME_NAME = "bearerAuth"

_PARAMETER = "bg_bearer__"


class _DeclaredBearer(HTTPBearer):
    """An HTTP bearer scheme for the OpenAPI document only; backend_guard checks the token itself."""

    # HTTPConnection, not Request: FastAPI fills it on WebSocket routes too (a Request parameter it cannot).
    async def __call__(self, request: HTTPConnection) -> None:
        return None


_SCHEME = _DeclaredBearer(
    bearerFormat="JWT",
    scheme_name=BEARER_SCHEME_NAME,
    description="An access token from backend_guard's TokenManager: `Authorization: Bearer <token>`.",
    auto_error=False,
)


def bearer_parameter(scopes: Sequence[str]) -> inspect.Parameter:
    """A keyword-only parameter declaring the bearer scheme (and ``scopes``) on a FastAPI route or dependency.

    Example::

        sig = sig.replace(parameters=[*sig.parameters.values(), bearer_parameter(["admin"])])
    """
    default: Any = Security(_SCHEME, scopes=list(scopes))
    return inspect.Parameter(_PARAMETER, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Any)
