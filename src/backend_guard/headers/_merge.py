"""Merging a policy's compiled headers with the headers an application already set on its response.

This module owns the merge rules, as pure functions over header lists: the disclosure headers (``removed``) are
dropped; the app's own headers win and ours are only added when missing, unless the policy is a per-route
override (``replace``), which drops the app's headers of the same names first (never two CSPs); a CSP template
is filled with this response's nonce. :class:`~backend_guard.headers.SecureHeaders` keeps its hot path (no
header of ours present) inline and calls :func:`merge_over` for the rest.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from ._csp import holds_nonce
from ._variants import CSP_NAMES, Profile, Templates, Variant

__all__ = ["filled_templates", "merge_over", "merge_text", "text_without", "with_nonce_csps"]

RawHeaders = list[tuple[bytes, bytes]]
TextHeaders = list[tuple[str, str]]


def filled_templates(templates: Templates, nonce: str | None, present: Collection[bytes] = ()) -> RawHeaders:
    """The CSP templates filled with ``nonce`` (a checked one), leaving out the names in ``present``.

    Example::

        filled_templates([(b"content-security-policy", (b"script-src 'nonce-", b"'"))], "abc...")
    """
    encoded = nonce.encode() if nonce is not None else b""
    return [(name, encoded.join(parts)) for name, parts in templates if name not in present]


def _without(headers: RawHeaders, present: set[bytes], names: Collection[bytes]) -> RawHeaders:
    """``headers`` without those named in ``names`` (the list itself when ``present`` shows none of them)."""
    return headers if present.isdisjoint(names) else [h for h in headers if h[0].lower() not in names]


def _missing(variant: Variant, present: set[bytes]) -> RawHeaders:
    """The variant's pairs whose names are not in ``present``."""
    if present.isdisjoint(variant.names):
        return list(variant.raw)
    return [p for p in variant.raw if p[0] not in present]


def merge_over(
    headers: Iterable[tuple[bytes, bytes]],
    present: set[bytes],
    variant: Variant,
    nonce: str | None,
    replace: bool,
    removed_raw: frozenset[bytes],
) -> RawHeaders:
    """ASGI ``headers`` (whose lower-case names are ``present``) with ``variant`` merged in, when the app set
    (or must lose) some of the headers the policy writes: the slow path of ``SecureHeaders.merge_raw``."""
    out = _without(list(headers), present, removed_raw)
    if replace:
        out = _without(out, present, variant.names)
        present = set()
    out.extend(_missing(variant, present))
    if variant.templates:
        out.extend(filled_templates(variant.templates, nonce, present))
    return out


def merge_text(
    headers: Iterable[tuple[str, str]], ours: Sequence[tuple[str, str]], removed: Collection[str], *, replace: bool
) -> TextHeaders:
    """WSGI ``headers`` with ``ours`` merged in (the same rules as :func:`merge_over`, case-insensitive).

    Example::

        merge_text([("Server", "x")], [("X-Frame-Options", "DENY")], {"server"}, replace=False)
    """
    kept = text_without(headers, removed)
    return _replaced(kept, ours) if replace else _completed(kept, ours)


def text_without(headers: Iterable[tuple[str, str]], names: Collection[str]) -> TextHeaders:
    """WSGI header pairs but those whose lower-case name is in ``names``.

    Example::

        text_without([("Server", "x"), ("ETag", '"1"')], {"server"})   # [("ETag", '"1"')]
    """
    return [h for h in headers if h[0].lower() not in names]


def _replaced(headers: TextHeaders, ours: Sequence[tuple[str, str]]) -> TextHeaders:
    """``headers`` without the names of ``ours``, then ``ours``: a per-route override's merge."""
    ours_lower = {k.lower() for k, _ in ours}
    return [*text_without(headers, ours_lower), *ours]


def _completed(headers: TextHeaders, ours: Sequence[tuple[str, str]]) -> TextHeaders:
    """``headers`` then those of ``ours`` they do not name: the app's own headers win."""
    present = {k.lower() for k, _ in headers}
    return [*headers, *(h for h in ours if h[0].lower() not in present)]


def with_nonce_csps(out: TextHeaders, profile: Profile, nonce: str, skip: Collection[str]) -> TextHeaders:
    """``out`` with the CSP and CSP-Report-Only of ``profile`` that hold the nonce placeholder put first, filled
    with ``nonce`` (those named in ``skip`` left out)."""
    csps = (profile.csp, profile.report_only)
    for position, (name, policy) in enumerate(zip(CSP_NAMES, csps, strict=True)):
        if holds_nonce(policy) and name.lower() not in skip:
            out.insert(position, (name, policy.header_value(nonce)))
    return out
