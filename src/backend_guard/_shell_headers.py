"""Header-list steps both protocol shells share: ASGI's ``(bytes, bytes)`` pairs and WSGI's ``(str, str)``.

Each returns a new list (the app's may be a shared constant) and keeps the pairs' type.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from ._http import merge_vary

__all__ = ["stamp", "with_cors"]

_T = TypeVar("_T", str, bytes)
_ORIGIN = ("Origin",)


def stamp(headers: Iterable[tuple[_T, _T]], lname: _T, name: _T, value: _T) -> list[tuple[_T, _T]]:
    """``headers`` with ``name: value`` added, replacing the app's own header of that (lower-case) ``lname``.

    Example::

        stamp([(b"X-Request-ID", b"app")], b"x-request-id", b"x-request-id", b"ours")
        # [(b"x-request-id", b"ours")]
    """
    size = len(lname)
    for k, _ in headers:
        if len(k) == size and k.lower() == lname:  # the app set one: ours replaces it (the length test is cheap)
            out = [(k, v) for k, v in headers if k.lower() != lname]
            out.append((name, value))
            return out
    out = list(headers)
    out.append((name, value))
    return out


def with_cors(
    headers: Iterable[tuple[_T, _T]], extra: Sequence[tuple[_T, _T]], vary_origin: tuple[_T, _T], prefix: _T
) -> list[tuple[_T, _T]]:
    """``headers`` with ``Vary: Origin`` merged (``vary_origin``: that pair, one Vary left) and the CORS answer
    ``extra`` added, dropping the app's own headers starting with ``prefix`` (``access-control-``) when
    ``extra`` is not empty, so a response never carries two.

    Example::

        with_cors([("Vary", "Accept")], [], ("Vary", "Origin"), "access-control-")   # [("Vary", "Accept, Origin")]
    """
    vary = vary_origin[0].lower()
    for name, _ in headers:
        lower = name.lower()
        if lower == vary or (extra and lower.startswith(prefix)):
            return _merged(headers, extra, vary_origin, prefix)
    out = list(headers)  # the common case: nothing to merge
    out.append(vary_origin)
    out += extra
    return out


def _merged(
    headers: Iterable[tuple[_T, _T]], extra: Sequence[tuple[_T, _T]], vary_origin: tuple[_T, _T], prefix: _T
) -> list[tuple[_T, _T]]:
    name = vary_origin[0]
    vary = name.lower()
    existing: list[str] = []
    keep: list[tuple[_T, _T]] = []
    for item in headers:
        lower = item[0].lower()
        if lower == vary:
            existing.append(_text(item[1]))
        elif not (extra and lower.startswith(prefix)):
            keep.append(item)
    merged = merge_vary(", ".join(existing) if existing else None, _ORIGIN)
    value: Any = merged.encode("latin-1") if isinstance(name, bytes) else merged
    keep.append((name, value))
    keep.extend(extra)
    return keep


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value
