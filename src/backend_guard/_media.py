"""Reading a media type out of a ``Content-Type`` value: the one place that rule is written.

``media_type`` is re-exported by ``backend_guard._http`` (the protocol helpers), which is where callers find it.
It lives in this leaf module, which imports nothing of the package, because ``_http`` itself imports
``backend_guard.errors`` (its problem-response senders) and the errors policy needs the rule too: a home in
``_http`` would make ``errors`` and ``_http`` import each other.
"""

from __future__ import annotations

__all__ = ["media_type"]


def media_type(value: str | None) -> str:
    """The media type of a ``Content-Type`` value: parameters dropped, whitespace trimmed, lower case.

    ``""`` for None or an empty value.

    Example::

        >>> media_type("Text/HTML; charset=utf-8")
        'text/html'
        >>> media_type(None)
        ''
    """
    return (value or "").partition(";")[0].strip().lower()
