"""The per-route exemption: a marker attribute on a view (webhooks signed by their sender, not by a browser).

What lives here: :func:`csrf_exempt` (the decorator that sets the marker) and :func:`is_csrf_exempt` (how the
shells read it). The marker is a plain attribute so every framework's view object carries it unchanged.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["EXEMPT_ATTRIBUTE", "csrf_exempt", "is_csrf_exempt"]

#: The attribute :func:`csrf_exempt` sets on a view; the shells look it up on the route's endpoint.
EXEMPT_ATTRIBUTE = "__backend_guard_csrf_exempt__"

_View = TypeVar("_View")


def csrf_exempt(view: _View) -> _View:
    """Mark a view as exempt from cross-origin request protection; returns the view itself (not a wrapper).

    For endpoints other sites are meant to call with unsafe methods and that authenticate the call themselves
    (a webhook checking its sender's signature). Never exempt a view that trusts the browser's cookies.

    Example::

        >>> from backend_guard.csrf import csrf_exempt, is_csrf_exempt
        >>> @csrf_exempt
        ... def stripe_webhook(request): ...
        >>> is_csrf_exempt(stripe_webhook)
        True
    """
    try:
        setattr(view, EXEMPT_ATTRIBUTE, True)
    except (AttributeError, TypeError):
        # A built-in or a slotted object cannot carry the marker: saying so now beats a protected webhook later.
        raise TypeError(f"csrf_exempt cannot mark {view!r}: it takes no attributes; wrap it in a function.") from None
    return view


def is_csrf_exempt(view: object) -> bool:
    """True when ``view`` was marked by :func:`csrf_exempt` (only the value ``True`` counts).

    Example::

        >>> is_csrf_exempt(print)
        False
    """
    return getattr(view, EXEMPT_ATTRIBUTE, False) is True
