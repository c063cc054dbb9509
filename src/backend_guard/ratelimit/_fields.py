"""Merging rate limit header fields into a response's own: one field each, list fields joined.

What lives here: :func:`merge_header_fields`, :func:`merge_raw_fields` (ASGI, bytes) and
:func:`merge_str_fields` (WSGI, text), and the names of the rate limit fields the shells look for
(``_RL_FIELDS_ALL``). A route's own ``RateLimit`` items come first; legacy ``X-RateLimit-*`` fields the route
set are kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

__all__ = ["_RL_FIELDS_ALL", "_RL_STR_FIELDS", "merge_header_fields", "merge_raw_fields", "merge_str_fields"]


_RL_NAMES = ("ratelimit", "ratelimit-policy", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")
_RL_FIELDS_ALL = frozenset(n.encode("latin-1") for n in _RL_NAMES)
_RL_STR_FIELDS = frozenset(_RL_NAMES)
_RL_LIST_FIELDS = (b"ratelimit", b"ratelimit-policy")
_RL_STR_LIST_FIELDS = ("ratelimit", "ratelimit-policy")


def merge_header_fields(
    existing: list[tuple[bytes, bytes]], ours: list[tuple[str, str]], *, lower: bool = True
) -> list[tuple[bytes, bytes]]:
    """Add ``ours`` to response headers without duplicating a field: list fields are joined into one.

    A route's own ``RateLimit``/``RateLimit-Policy`` items come first; legacy ``X-RateLimit-*`` already set by
    the route are kept as they are (the route's limit is the narrower one). ``lower``: add new names in lower
    case (ASGI); WSGI keeps their case.

    Example::

        merge_header_fields([(b"ratelimit", b'"route";r=1;t=5')], [("RateLimit", '"global";r=99;t=60')])
    """
    raw = [
        (name.lower().encode("latin-1") if lower else name.encode("latin-1"), value.encode("latin-1"))
        for name, value in ours
    ]
    return merge_raw_fields(existing, raw)


def merge_raw_fields(
    existing: Iterable[tuple[bytes, bytes]], ours: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """:func:`merge_header_fields` for header pairs already encoded (as the ASGI shell keeps them).

    The common case (the response has no rate limit field yet) is a plain append.

    Example::

        merge_raw_fields([(b"content-type", b"text/plain")], [(b"ratelimit", b'"global";r=99;t=60')])
    """
    return _merge_fields(existing, ours, _RL_FIELDS_ALL, _RL_LIST_FIELDS, b", ")


def merge_str_fields(existing: Iterable[tuple[str, str]], ours: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """:func:`merge_raw_fields` for WSGI header pairs (text); new names keep their case.

    Example::

        merge_str_fields([("Content-Type", "text/plain")], [("RateLimit", '"global";r=99;t=60')])
    """
    return _merge_fields(existing, ours, _RL_STR_FIELDS, _RL_STR_LIST_FIELDS, ", ")


_S = TypeVar("_S", str, bytes)


def _merge_fields(
    existing: Iterable[tuple[_S, _S]],
    ours: list[tuple[_S, _S]],
    names: frozenset[_S],
    list_names: tuple[_S, ...],
    sep: _S,
) -> list[tuple[_S, _S]]:
    """``existing`` with ``ours`` added: a name already there is joined (``list_names``) or kept as it is."""
    out = list(existing)
    for name, _ in out:
        if name.lower() in names:
            break
    else:  # the common case: no rate limit field yet, a plain append
        out += ours
        return out
    _join_fields(out, ours, list_names, sep)
    return out


def _join_fields(out: list[tuple[_S, _S]], ours: list[tuple[_S, _S]], list_names: tuple[_S, ...], sep: _S) -> None:
    """Add ``ours`` to ``out`` in place: a list field already there gets our items after its own; another field
    already there is kept as it is; a new one is appended."""
    index = {k.lower(): i for i, (k, _) in enumerate(out)}
    for name, value in ours:
        lname = name.lower()
        i = index.get(lname)
        if i is None:
            out.append((name, value))
        elif lname in list_names:
            out[i] = (out[i][0], out[i][1] + sep + value)
