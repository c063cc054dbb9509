"""The signature a route decorator gives a FastAPI route: its own parameters, the ``Request``/``Response`` FastAPI
fills for the guards (injected only where the route declares none) and the hooks' own parameters."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from .integrations._adapter_starlette import fastapi_classes

__all__ = ["INJECTED_REQUEST", "INJECTED_RESPONSE", "route_signature"]

#: The names of the keyword-only parameters injected for FastAPI to fill (left out of its OpenAPI schema).
INJECTED_REQUEST = "bg_request__"
INJECTED_RESPONSE = "bg_response__"


def route_signature(
    func: Callable[..., Any], declared: list[inspect.Parameter]
) -> tuple[inspect.Signature | None, str, str, list[str]]:
    """The route's signature plus the injected FastAPI parameters (annotations resolved in the route's module)
    and the hooks' own ``declared`` parameters the route does not declare itself.

    FastAPI fills only one ``Request`` and one ``Response`` parameter per route, so when the route declares
    its own, that one is used and nothing is injected for it. Returns (signature, request name, response name,
    the names of the hooks' own parameters added here); ``(None, ...)`` without FastAPI or a signature.

    Example::

        sig, req_name, resp_name, own = route_signature(login, hooks.fastapi_parameters())
    """
    classes = fastapi_classes()
    if classes is None:
        return None, INJECTED_REQUEST, INJECTED_RESPONSE, []
    Request, Response = classes  # noqa: N806  (the classes, named as FastAPI users know them)
    sig = _route_signature(func)
    if sig is None:
        return None, INJECTED_REQUEST, INJECTED_RESPONSE, []
    params = list(sig.parameters.values())
    req_name = _annotated(params, Request) or INJECTED_REQUEST
    resp_name = _annotated(params, Response) or INJECTED_RESPONSE
    names = {p.name for p in params}
    own = [p for p in declared if p.name not in names]
    extra = _missing_parameters(names, {req_name: Request, resp_name: Response}) + own
    if not extra:
        return sig, req_name, resp_name, []
    return sig.replace(parameters=_with_extra(params, extra)), req_name, resp_name, [p.name for p in own]


def _route_signature(func: Callable[..., Any]) -> inspect.Signature | None:
    """The route's signature, its annotations resolved in the route's module where they can be; None if none."""
    try:
        return inspect.signature(func, eval_str=True)
    except (NameError, TypeError, ValueError):
        pass
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):
        return None


def _missing_parameters(names: set[str], wanted: dict[str, type]) -> list[inspect.Parameter]:
    """Keyword-only parameters for the ``Request`` and ``Response`` the route does not declare itself."""
    kind = inspect.Parameter.KEYWORD_ONLY
    return [inspect.Parameter(name, kind, annotation=cls) for name, cls in wanted.items() if name not in names]


def _with_extra(params: list[inspect.Parameter], extra: list[inspect.Parameter]) -> list[inspect.Parameter]:
    """The route's parameters with ``extra`` added, before a ``**kwargs`` (which must stay last)."""
    return sorted(params + extra, key=lambda p: p.kind is inspect.Parameter.VAR_KEYWORD)  # a stable sort


def _annotated(params: list[inspect.Parameter], cls: type) -> str | None:
    """The name of the route's own parameter annotated ``cls`` (or a subclass), if it has one."""
    for p in params:
        if isinstance(p.annotation, type) and issubclass(p.annotation, cls):
            return p.name
    return None
