"""Kinds of response: which profile of headers a response gets, read from its status and ``Content-Type``.

This module owns the classification a policy applies per response: :data:`OTHER` (every response but the two
below), :data:`DOCUMENT` (an HTML document: ``text/html`` or ``application/xhtml+xml``, which gets the document
CSP and headers) and :data:`NOT_MODIFIED` (a 304, which gets only the headers every response gets alike).
Content-Type values already seen are kept in a small bounded cache, so classifying an ASGI response is one
dict lookup; :func:`is_document_type` is the same answer for text (the CLI uses it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from .._cache import BoundedCache

__all__ = ["DOCUMENT", "NOT_MODIFIED", "OTHER", "content_type_of", "is_document_raw", "is_document_type"]

#: Every response but an HTML document or a 304.
OTHER: Final = 0
#: An HTML document (``text/html``, ``application/xhtml+xml``).
DOCUMENT: Final = 1
#: A ``304 Not Modified``.
NOT_MODIFIED: Final = 2

_DOCUMENT_TYPES: Final = frozenset({"text/html", "application/xhtml+xml"})
_DOCUMENT_TYPES_RAW: Final = frozenset(t.encode() for t in _DOCUMENT_TYPES)

# Content-Type values already classified (an app sends few distinct ones): a hit is one dict lookup.
_SEEN_TYPES: BoundedCache[bytes, bool] = BoundedCache("headers.content_types", max_entries=64, max_bytes=64 << 10)
# Its hit path bound once (``BoundedCache.get`` is the dict's own, kept by ``clear()``): on every response.
_seen_type = _SEEN_TYPES.get


def is_document_raw(content_type: bytes) -> bool:
    """:func:`is_document_type` for an ASGI ``Content-Type`` value (bytes), remembered per value.

    Example::

        is_document_raw(b"text/html; charset=utf-8")   # True
    """
    found = _seen_type(content_type)
    if found is None:
        found = content_type.split(b";", 1)[0].strip().lower() in _DOCUMENT_TYPES_RAW
        _SEEN_TYPES.put(content_type, found)
    return found


def is_document_type(content_type: str) -> bool:
    """True when a ``Content-Type`` value names an HTML document (``text/html``, ``application/xhtml+xml``).

    Example::

        >>> is_document_type("text/html; charset=utf-8"), is_document_type("application/json")
        (True, False)
    """
    return content_type.split(";", 1)[0].strip().lower() in _DOCUMENT_TYPES


def content_type_of(headers: Iterable[tuple[str, str]]) -> str | None:
    """The ``Content-Type`` of WSGI header pairs (the first, whatever its case), or None.

    Example::

        content_type_of([("Content-Type", "text/html")])   # 'text/html'
    """
    for name, value in headers:
        if name.lower() == "content-type":
            return value
    return None


def kind_of(status: int, content_type: str | None, splits_documents: bool) -> int:
    """The kind of a response from its status and ``Content-Type`` text (:data:`DOCUMENT` only for a policy
    whose documents get other headers).

    Example::

        kind_of(200, "text/html", True)   # DOCUMENT
    """
    if status == 304:
        return NOT_MODIFIED
    return DOCUMENT if splits_documents and _names_document(content_type) else OTHER


def _names_document(content_type: str | None) -> bool:
    return content_type is not None and is_document_type(content_type)
