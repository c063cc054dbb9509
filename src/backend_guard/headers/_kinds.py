"""Kinds of response: which profile of headers a response gets, read from its status and ``Content-Type``.

This module owns the classification a policy applies per response: :data:`OTHER` (every response but the two
below), :data:`DOCUMENT` (an HTML document: ``text/html`` or ``application/xhtml+xml``, which gets the document
CSP and headers) and :data:`NOT_MODIFIED` (a 304, which gets only the headers every response gets alike).
Content-Type values already seen are kept in small bounded caches (bytes and text apart), so classifying a
response is one dict lookup; :func:`is_document_type` is the answer for text (the WSGI shell and the CLI use it).
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
#: HTTP's whitespace (RFC 9110 OWS, and the line ends of Fetch's MIME type parsing), the only characters trimmed
#: around a media type: a browser reads "\xa0text/html" as no HTML, and so do both classifications here.
_HTTP_SPACE: Final = " \t\r\n"
_HTTP_SPACE_RAW: Final = _HTTP_SPACE.encode()

# Content-Type values already classified (an app sends few distinct ones): a hit is one dict lookup. Bytes (ASGI)
# and text (WSGI) apart: a bytes key and a str key with the same letters hash alike.
_SEEN_TYPES: BoundedCache[bytes, bool] = BoundedCache("headers.content_types", max_entries=64, max_bytes=64 << 10)
_SEEN_TEXT: BoundedCache[str, bool] = BoundedCache("headers.content_types_text", max_entries=64, max_bytes=64 << 10)
# Their hit paths bound once (``BoundedCache.get`` is the dict's own, kept by ``clear()``): on every response.
_seen_type = _SEEN_TYPES.get
_seen_text = _SEEN_TEXT.get


def is_document_raw(content_type: bytes) -> bool:
    """:func:`is_document_type` for an ASGI ``Content-Type`` value (bytes), remembered per value.

    Example::

        is_document_raw(b"text/html; charset=utf-8")   # True
    """
    found = _seen_type(content_type)
    if found is None:
        found = content_type.split(b";", 1)[0].strip(_HTTP_SPACE_RAW).lower() in _DOCUMENT_TYPES_RAW
        _SEEN_TYPES.put(content_type, found)
    return found


def is_document_type(content_type: str) -> bool:
    """True when a ``Content-Type`` value names an HTML document (``text/html``, ``application/xhtml+xml``),
    remembered per value.

    Example::

        >>> is_document_type("text/html; charset=utf-8"), is_document_type("application/json")
        (True, False)
    """
    found = _seen_text(content_type)
    if found is None:
        found = content_type.split(";", 1)[0].strip(_HTTP_SPACE).lower() in _DOCUMENT_TYPES
        _SEEN_TEXT.put(content_type, found)
    return found


def content_type_of(headers: Iterable[tuple[str, str]]) -> str | None:
    """The ``Content-Type`` of WSGI header pairs (the first, whatever its case), or None.

    Example::

        content_type_of([("Content-Type", "text/html")])   # 'text/html'
    """
    for name, value in headers:
        if name.lower() == "content-type":
            return value
    return None
