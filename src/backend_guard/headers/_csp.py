"""The Content-Security-Policy builder: :class:`ContentSecurityPolicy`, validated once and rendered per nonce.

This module owns one policy's life: merging its directives from a mapping and keywords (or parsing header
text), validating each through :mod:`._sources`, and rendering the header value. A policy is compiled at
construction into the value without a nonce and, when it uses the ``'nonce'`` placeholder, a template (the
value split around the nonce) so a response's header is one ``join``. Without a nonce a directive left with
``'strict-dynamic'`` and no hash becomes ``'none'``, which is what a CSP3 browser would enforce anyway.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final, TypeGuard

from .._check import check_bool, check_mapping, check_str
from ..exceptions import ConfigurationError
from ._sources import (
    BOOLEAN_DIRECTIVES,
    HASH_RE,
    NONCE_RE,
    NONCE_SOURCE,
    CSPValue,
    Sources,
    directive_name,
    validate_directive,
)

__all__ = ["CSPValue", "ContentSecurityPolicy", "holds_nonce"]

# Stands for the nonce while rendering the template: a character no validated source can hold.
_MARK = "\x00"
_BAD_TEXT_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f,]")


def _merged(directives: Mapping[str, CSPValue] | None, kwargs: Mapping[str, CSPValue]) -> dict[str, CSPValue]:
    """The directives of the mapping and the keywords, by header name; a name given twice is refused."""
    merged: dict[str, CSPValue] = {}
    for source in (check_mapping("directives", {} if directives is None else directives), kwargs):
        for raw_name, value in source.items():
            name = directive_name(check_str("CSP directive name", raw_name))
            if name in merged:
                raise ConfigurationError(f"CSP directive {name!r} is given twice.")
            merged[name] = value
    return merged


def _check_header_text(text: object) -> str:
    if not isinstance(text, str) or _BAD_TEXT_RE.search(text):
        raise ConfigurationError("CSP text must be one line without ',' or control characters.")
    return text


def _parsed_value(name: str, sources: list[str]) -> CSPValue:
    """A parsed directive's value: its sources, or True for a boolean directive written alone."""
    return True if name in BOOLEAN_DIRECTIVES and not sources else sources


def _parsed(text: str) -> dict[str, CSPValue]:
    """The directives of header text, by name (a boolean directive without sources is True)."""
    directives: dict[str, CSPValue] = {}
    for tokens in filter(None, (chunk.split() for chunk in _check_header_text(text).split(";"))):
        name = tokens[0].lower()
        if name in directives:
            raise ConfigurationError(f"CSP directive {name!r} is given twice.")
        directives[name] = _parsed_value(name, tokens[1:])
    return directives


def _trusts_nothing(kept: Sources) -> bool:
    """True when sources left without the nonce allow nothing: none, or ``'strict-dynamic'`` with no hash."""
    return not kept or ("'strict-dynamic'" in kept and not any(HASH_RE.fullmatch(i) for i in kept))


def _without_nonce(items: Sources) -> Sources:
    """A directive's sources for a response that used no nonce: the placeholder dropped, and ``'none'`` when
    nothing (or ``'strict-dynamic'`` with no hash to trust) is left."""
    kept = tuple(i for i in items if i != NONCE_SOURCE)
    return ("'none'",) if _trusts_nothing(kept) else kept


def _with_nonce(items: Sources, nonce: str | None) -> Sources:
    """A directive's sources with the placeholder written as ``nonce`` (None: dropped, see _without_nonce)."""
    if nonce is None:
        return _without_nonce(items)
    return tuple(f"'nonce-{nonce}'" if i == NONCE_SOURCE else i for i in items)


def _directive_text(name: str, items: Sources, nonce: str | None) -> str:
    if not items:
        return name
    if NONCE_SOURCE in items:
        items = _with_nonce(items, nonce)
    return name + " " + " ".join(items)


def _check_complete(directives: Mapping[str, Sources], allow_missing_default_src: bool) -> None:
    """A policy has a directive, and ``default-src`` unless the caller said its absence is intended."""
    if not directives:
        raise ConfigurationError("A ContentSecurityPolicy needs at least one directive.")
    if "default-src" not in directives and not allow_missing_default_src:
        raise ConfigurationError(
            "CSP without default-src leaves every other fetch unrestricted; add default_src "
            "(e.g. [\"'self'\"] or [\"'none'\"]) or pass allow_missing_default_src=True."
        )


def holds_nonce(policy: ContentSecurityPolicy | None) -> TypeGuard[ContentSecurityPolicy]:
    """True when ``policy`` is a policy whose value holds the nonce placeholder (None holds none).

    Example::

        holds_nonce(ContentSecurityPolicy(default_src=[ContentSecurityPolicy.NONCE]))   # True
    """
    return policy is not None and policy.uses_nonce


class ContentSecurityPolicy:
    """A Content-Security-Policy, validated when built; renders the header value with or without a nonce.

    Directives are keyword arguments with ``_`` for ``-`` (``default_src=["'self'"]``) or a mapping given
    first (``{"default-src": ["'self'"]}``); boolean directives take ``True``. The placeholder source
    ``'nonce'`` (:attr:`NONCE`) stands for this response's nonce. Refused with
    :class:`~backend_guard.exceptions.ConfigurationError`: unquoted keywords (``self``, ``none``, ...), fixed
    nonces, spaces, ``;``, ``,`` or control characters inside a source, unknown or duplicate directives, a
    missing ``default-src`` (unless ``allow_missing_default_src=True``), ``'none'`` beside other sources, and
    ``'strict-dynamic'`` without a nonce or hash source in the same directive.

    Example::

        csp = ContentSecurityPolicy(
            default_src=["'self'"],
            script_src=[ContentSecurityPolicy.NONCE, "'strict-dynamic'"],
            object_src=["'none'"],
            base_uri=["'none'"],
        )
        csp.header_value()            # "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'"
        csp.header_value("abc...")    # "... script-src 'nonce-abc...' 'strict-dynamic'; ..."
    """

    #: Placeholder source replaced by this response's nonce (``'nonce-...'``), or dropped when none was used.
    NONCE: Final = NONCE_SOURCE

    __slots__ = ("_directives", "_no_nonce", "_parts")

    def __init__(
        self,
        directives: Mapping[str, CSPValue] | None = None,
        /,
        *,
        allow_missing_default_src: bool = False,
        **kwargs: CSPValue,
    ) -> None:
        check_bool("allow_missing_default_src", allow_missing_default_src)
        merged = _merged(directives, kwargs)
        self._directives = {name: validate_directive(name, value) for name, value in merged.items()}
        _check_complete(self._directives, allow_missing_default_src)
        self._no_nonce = self._render(None)
        self._parts = tuple(self._render(_MARK).split(_MARK)) if self.uses_nonce else ()

    @classmethod
    def parse(cls, text: str, *, allow_missing_default_src: bool = False) -> ContentSecurityPolicy:
        """A policy from header text (``"default-src 'self'; img-src https:"``), validated the same way.

        Example::

            csp = ContentSecurityPolicy.parse("default-src 'none'; frame-ancestors 'none'")
        """
        return cls(_parsed(text), allow_missing_default_src=allow_missing_default_src)

    @property
    def directives(self) -> dict[str, tuple[str, ...]]:
        """The directives as ``{name: sources}`` (a copy; boolean directives have no sources)."""
        return dict(self._directives)

    @property
    def uses_nonce(self) -> bool:
        """True when some directive holds the :attr:`NONCE` placeholder."""
        return any(self.NONCE in items for items in self._directives.values())

    @property
    def has_reporting(self) -> bool:
        """True when the policy names a ``report-to`` endpoint or a ``report-uri``."""
        return "report-to" in self._directives or "report-uri" in self._directives

    @property
    def report_to(self) -> str | None:
        """The ``report-to`` endpoint name, if any."""
        items = self._directives.get("report-to")
        return items[0] if items else None

    def _render(self, nonce: str | None) -> str:
        return "; ".join(_directive_text(name, items, nonce) for name, items in self._directives.items())

    def nonce_template(self) -> tuple[str, ...]:
        """The header value split where the nonce goes (``()`` when the policy uses none): joined with a
        well-formed nonce it is ``header_value(nonce)``, which lets a caller compile the value once.

        Example::

            csp = ContentSecurityPolicy(default_src=["'self'"], script_src=[ContentSecurityPolicy.NONCE])
            nonce = "abcdefghijklmnopqrstuvwx"
            nonce.join(csp.nonce_template()) == csp.header_value(nonce)   # True
        """
        return self._parts

    def header_value(self, nonce: str | None = None) -> str:
        """The header value, with ``nonce`` in place of the placeholder (or without it when None).

        Example::

            csp.header_value(csp_nonce(request))
        """
        if nonce is None or not self._parts:
            return self._no_nonce
        if not NONCE_RE.fullmatch(nonce):
            raise ConfigurationError("A CSP nonce must be 16-128 base64 characters.")
        return nonce.join(self._parts)

    def __str__(self) -> str:
        return self._render(_MARK).replace(f"'nonce-{_MARK}'", self.NONCE)

    def __repr__(self) -> str:
        return f"ContentSecurityPolicy.parse({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ContentSecurityPolicy):
            return NotImplemented
        return self._directives == other._directives

    def __hash__(self) -> int:
        return hash(tuple(self._directives.items()))
